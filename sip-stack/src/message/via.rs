//! Via values (RFC 3261 §20.42, RFC 3581 `rport`) and the name-addr helpers
//! shared by From, To, Contact and Record-Route.

use std::fmt;
use std::net::IpAddr;

/// The RFC 3261 branch prefix that says "this branch is globally unique and
/// may be used as the transaction key" (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One parsed Via value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// Transport token as written (`UDP`, `TCP`, `TLS`, `WS`, ...), upper-cased.
    pub transport: String,
    /// The sent-by host, IPv6 literals without brackets.
    pub host: String,
    pub port: Option<u16>,
    pub branch: Option<String>,
    pub received: Option<String>,
    /// RFC 3581: `None` absent, `Some(None)` present without value (the
    /// client asks for symmetric response routing), `Some(Some(p))` filled in.
    pub rport: Option<Option<u16>>,
    /// Every parameter in order, including the ones broken out above.
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Parses one Via value (already split at commas). LWS around `/`, `:`,
    /// `;` and `=` is accepted (RFC 3261 §25.1 SWS rules).
    pub fn parse(value: &str) -> Option<Via> {
        let (sent, params) = match value.find(';') {
            Some(i) => (&value[..i], &value[i + 1..]),
            None => (value, ""),
        };
        let mut slash = sent.splitn(3, '/');
        let name = slash.next()?.trim();
        let version = slash.next()?.trim();
        let rest = slash.next()?.trim_start();
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return None;
        }
        let transport_end = rest.find([' ', '\t']).unwrap_or(rest.len());
        let transport = &rest[..transport_end];
        if transport.is_empty() || !transport.bytes().all(is_token_byte) {
            return None;
        }
        let sent_by: String = rest[transport_end..]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let (host, port) = split_host_port(&sent_by)?;
        let mut via = Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_string(),
            port,
            branch: None,
            received: None,
            rport: None,
            params: Vec::new(),
        };
        for param in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = match param.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
                None => (param, None),
            };
            if k.is_empty() || !k.bytes().all(is_token_byte) {
                return None;
            }
            match k.to_ascii_lowercase().as_str() {
                "branch" => via.branch = v.clone(),
                "received" => via.received = v.clone(),
                "rport" => via.rport = Some(v.as_deref().and_then(|p| p.parse().ok())),
                _ => {}
            }
            via.params.push((k.to_string(), v));
        }
        Some(via)
    }

    /// `host[:port]` as written on the wire (IPv6 in brackets); together with
    /// the branch this keys a server transaction (RFC 3261 §17.2.3).
    pub fn sent_by(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// The sent-by host when it is an IP literal.
    pub fn host_ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The branch if it carries the RFC 3261 magic cookie.
    pub fn rfc3261_branch(&self) -> Option<&str> {
        self.branch
            .as_deref()
            .filter(|b| b.starts_with(MAGIC_COOKIE))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by())?;
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

/// Splits `host[:port]` / `[v6][:port]`. Returns `None` for an empty host,
/// a bad port or characters no hostname or IP literal can contain.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        host.parse::<std::net::Ipv6Addr>().ok()?;
        (host, &rest[end + 1..])
    } else {
        match s.find(':') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        }
    };
    let port = match port {
        "" => None,
        p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
    host_ok.then_some((host, port))
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Byte index of the first `c` outside a quoted string (display names may
/// contain `<`, `;` and `,`).
fn find_unquoted(s: &str, target: char) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quotes && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == target && !in_quotes {
            return Some(i);
        }
    }
    None
}

/// Splits a name-addr / addr-spec header value (From, To, Contact, Route)
/// into the URI and the header parameters after it. In the bare form
/// (`sip:a@b;tag=1`) RFC 3261 §20 says the parameters belong to the header,
/// not the URI.
fn split_name_addr(value: &str) -> Option<(&str, &str)> {
    let value = value.trim();
    match find_unquoted(value, '<') {
        Some(lt) => {
            let rest = &value[lt + 1..];
            let gt = rest.find('>')?;
            Some((rest[..gt].trim(), &rest[gt + 1..]))
        }
        None => {
            let (uri, params) = match value.find(';') {
                Some(i) => (&value[..i], &value[i..]),
                None => (value, ""),
            };
            let uri = uri.trim();
            // A quoted display name without <...> is malformed.
            (!uri.is_empty() && !uri.contains('"')).then_some((uri, params))
        }
    }
}

/// The URI of a name-addr or addr-spec value.
pub fn name_addr_uri(value: &str) -> Option<&str> {
    split_name_addr(value)
        .map(|(uri, _)| uri)
        .filter(|u| u.contains(':') || *u == "*")
}

/// A header parameter (`tag`, `expires`, `lr`...) of a name-addr value;
/// `Some("")` when present without a value.
pub fn name_addr_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let (_, params) = split_name_addr(value)?;
    params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().trim_matches('"'))
        })
}

/// The value with its `tag` parameter removed: the From/To "URI" that
/// identifies a dialog side (RFC 3261 §12.1.1).
pub fn without_tag(value: &str) -> String {
    let value = value.trim();
    let params_start = match find_unquoted(value, '<') {
        Some(lt) => value[lt..].find('>').map(|gt| lt + gt + 1),
        None => value.find(';'),
    };
    let Some(start) = params_start else {
        return value.to_string();
    };
    let mut out = value[..start].to_string();
    for p in value[start..]
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let key = p.split_once('=').map_or(p, |(k, _)| k).trim();
        if !key.eq_ignore_ascii_case("tag") {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_and_params() {
        let v = Via::parse(
            "SIP / 2.0 / udp  10.0.0.1 : 5070 ;branch = z9hG4bKabc;rport;received=1.2.3.4",
        )
        .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "10.0.0.1");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch.as_deref(), Some("z9hG4bKabc"));
        assert_eq!(v.rport, Some(None));
        assert_eq!(v.received.as_deref(), Some("1.2.3.4"));
        assert_eq!(v.sent_by(), "10.0.0.1:5070");
        assert_eq!(v.rfc3261_branch(), Some("z9hG4bKabc"));
    }

    #[test]
    fn via_ipv6_and_rejects() {
        let v = Via::parse("SIP/2.0/TCP [2001:db8::1]:5060;rport=4000").unwrap();
        assert_eq!(v.host, "2001:db8::1");
        assert_eq!(v.rport, Some(Some(4000)));
        assert_eq!(v.sent_by(), "[2001:db8::1]:5060");
        assert!(Via::parse("SIP/2.0/UDP").is_none());
        assert!(Via::parse("SIP/3.0/UDP a").is_none());
        assert!(Via::parse("SIP/2.0/UDP a:99999").is_none());
        assert!(Via::parse("SIP/2.0/UDP [zz]:1").is_none());
        assert!(Via::parse("garbage").is_none());
    }

    #[test]
    fn name_addr_forms() {
        let v = r#""A <b>; c" <sip:a@b;transport=udp>;tag=123;x"#;
        assert_eq!(name_addr_uri(v), Some("sip:a@b;transport=udp"));
        assert_eq!(name_addr_param(v, "tag"), Some("123"));
        assert_eq!(name_addr_param(v, "x"), Some(""));
        assert_eq!(name_addr_param(v, "transport"), None);
        assert_eq!(name_addr_uri("sip:a@b;tag=9"), Some("sip:a@b"));
        assert_eq!(name_addr_param("sip:a@b;TAG=9", "tag"), Some("9"));
        assert_eq!(name_addr_uri("<sip:a@b"), None);
        assert_eq!(without_tag(v), r#""A <b>; c" <sip:a@b;transport=udp>;x"#);
        assert_eq!(without_tag("sip:a@b;tag=1"), "sip:a@b");
    }
}
