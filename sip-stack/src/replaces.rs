//! The Replaces header (RFC 3891) and the headers a REFER embeds in its
//! Refer-To URI (RFC 3515 §2.1, RFC 3261 §19.1.1).
//!
//! Attended transfer: the transferor has two dialogs, one with the party
//! to transfer and one with the transfer target (the consultation). It
//! REFERs the first party to the target with
//! `Refer-To: <sip:target?Replaces=call-id%3Bto-tag%3Dt%3Bfrom-tag%3Df>`,
//! naming the consultation dialog; whoever holds that dialog swaps the
//! transferor out of it. The tags are given as the recipient of the
//! INVITE-with-Replaces sees them: `to-tag` is its local tag, `from-tag`
//! the remote one (RFC 3891 §3).

use crate::dialog::Dialog;

/// A dialog named by a Replaces header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    /// The local tag of the dialog at whoever receives the Replaces.
    pub to_tag: String,
    /// Its remote tag.
    pub from_tag: String,
    /// Replace only a dialog that is still early (not yet answered).
    pub early_only: bool,
}

impl Replaces {
    /// Parses a header value: `call-id;to-tag=..;from-tag=..[;early-only]`.
    /// Both tags are required (RFC 3891 §6.1); unknown parameters are
    /// ignored.
    pub fn parse(value: &str) -> Option<Replaces> {
        let mut parts = value.trim().split(';');
        let call_id = parts.next()?.trim();
        if call_id.is_empty() || call_id.contains(char::is_whitespace) {
            return None;
        }
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for param in parts {
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (param.trim(), None),
            };
            if name.eq_ignore_ascii_case("to-tag") {
                to_tag = value.filter(|v| !v.is_empty());
            } else if name.eq_ignore_ascii_case("from-tag") {
                from_tag = value.filter(|v| !v.is_empty());
            } else if name.eq_ignore_ascii_case("early-only") {
                early_only = true;
            }
        }
        Some(Replaces {
            call_id: call_id.to_owned(),
            to_tag: to_tag?.to_owned(),
            from_tag: from_tag?.to_owned(),
            early_only,
        })
    }

    /// Whether `dialog` (as we hold it) is the one named.
    pub fn names(&self, dialog: &Dialog) -> bool {
        dialog.call_id == self.call_id
            && dialog.local_tag == self.to_tag
            && dialog.remote_tag.as_deref() == Some(self.from_tag.as_str())
    }
}

impl std::fmt::Display for Replaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        )?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        Ok(())
    }
}

/// Why a Refer-To URI's embedded headers cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmbeddedHeaderError {
    /// Not `name=value` pairs joined by `&`, or a bad `%` escape.
    Malformed,
    /// A header we would not put in the triggered INVITE.
    Unsupported(String),
    /// A Replaces header that does not name a dialog.
    BadReplaces,
}

/// A Refer-To URI split into the URI proper and what its `?headers`
/// ask for. Only Replaces is honoured; any other embedded header is an
/// error, so a REFER cannot make us send headers we never vetted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferTarget {
    /// The URI without its `?headers` part.
    pub uri: String,
    pub replaces: Option<Replaces>,
}

impl ReferTarget {
    pub fn parse(uri: &str) -> Result<ReferTarget, EmbeddedHeaderError> {
        let uri = uri.trim();
        let Some((bare, query)) = uri.split_once('?') else {
            return Ok(ReferTarget {
                uri: uri.to_owned(),
                replaces: None,
            });
        };
        let mut replaces = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or(EmbeddedHeaderError::Malformed)?;
            let name = percent_decode(name).ok_or(EmbeddedHeaderError::Malformed)?;
            let value = percent_decode(value).ok_or(EmbeddedHeaderError::Malformed)?;
            if !name.eq_ignore_ascii_case("Replaces") {
                return Err(EmbeddedHeaderError::Unsupported(name));
            }
            if replaces.is_some() {
                return Err(EmbeddedHeaderError::BadReplaces);
            }
            replaces = Some(Replaces::parse(&value).ok_or(EmbeddedHeaderError::BadReplaces)?);
        }
        Ok(ReferTarget {
            uri: bare.to_owned(),
            replaces,
        })
    }
}

/// `%XX` escapes decoded (RFC 3986 §2.1); `None` for a broken escape or
/// bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog(call_id: &str, local: &str, remote: Option<&str>) -> Dialog {
        Dialog {
            call_id: call_id.into(),
            local_tag: local.into(),
            remote_tag: remote.map(Into::into),
            local_uri: "<sip:engine@127.0.0.1>".into(),
            remote_uri: "<sip:agent@127.0.0.1>".into(),
            remote_target: "sip:agent@127.0.0.1:5070".into(),
            route_set: vec![],
            local_cseq: 1,
            remote_cseq: 1,
            local_contact: "sip:engine@127.0.0.1:5060".into(),
        }
    }

    #[test]
    fn parses_the_rfc_3891_example() {
        let r =
            Replaces::parse("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff;early-only")
                .unwrap();
        assert_eq!(r.call_id, "98732@sip.example.com");
        assert_eq!(r.from_tag, "r33th4x0r");
        assert_eq!(r.to_tag, "ff87ff");
        assert!(r.early_only);
        assert_eq!(Replaces::parse(&r.to_string()), Some(r));
    }

    #[test]
    fn both_tags_are_required() {
        assert!(Replaces::parse("abc;to-tag=1").is_none());
        assert!(Replaces::parse("abc;from-tag=1").is_none());
        assert!(Replaces::parse("abc;to-tag=;from-tag=1").is_none());
        assert!(Replaces::parse(";to-tag=1;from-tag=2").is_none());
        assert!(Replaces::parse("").is_none());
        assert!(Replaces::parse("a b;to-tag=1;from-tag=2").is_none());
    }

    #[test]
    fn names_a_dialog_by_call_id_and_both_tags_from_the_holders_view() {
        let r = Replaces::parse("c1;to-tag=ours;from-tag=theirs").unwrap();
        assert!(r.names(&dialog("c1", "ours", Some("theirs"))));
        assert!(!r.names(&dialog("c1", "theirs", Some("ours"))));
        assert!(!r.names(&dialog("c2", "ours", Some("theirs"))));
        assert!(!r.names(&dialog("c1", "ours", None)));
    }

    #[test]
    fn refer_to_without_headers_is_just_a_uri() {
        let t = ReferTarget::parse(" sip:agent2@127.0.0.1:5070 ").unwrap();
        assert_eq!(t.uri, "sip:agent2@127.0.0.1:5070");
        assert_eq!(t.replaces, None);
    }

    #[test]
    fn refer_to_carries_an_escaped_replaces() {
        let t = ReferTarget::parse(
            "sip:200@127.0.0.1:5060;transport=udp?Replaces=abc%40host%3Bto-tag%3D7%3Bfrom-tag%3D9",
        )
        .unwrap();
        assert_eq!(t.uri, "sip:200@127.0.0.1:5060;transport=udp");
        let r = t.replaces.unwrap();
        assert_eq!(
            (r.call_id.as_str(), r.to_tag.as_str(), r.from_tag.as_str()),
            ("abc@host", "7", "9")
        );
    }

    #[test]
    fn refer_to_refuses_other_headers_and_broken_escapes() {
        assert_eq!(
            ReferTarget::parse("sip:a@127.0.0.1?Subject=hi"),
            Err(EmbeddedHeaderError::Unsupported("Subject".into()))
        );
        assert_eq!(
            ReferTarget::parse("sip:a@127.0.0.1?Replaces=x%3"),
            Err(EmbeddedHeaderError::Malformed)
        );
        assert_eq!(
            ReferTarget::parse("sip:a@127.0.0.1?Replaces"),
            Err(EmbeddedHeaderError::Malformed)
        );
        assert_eq!(
            ReferTarget::parse("sip:a@127.0.0.1?Replaces=x%3Bto-tag%3D1"),
            Err(EmbeddedHeaderError::BadReplaces)
        );
        assert_eq!(
            ReferTarget::parse("sip:a@127.0.0.1?Replaces=x%3Bto-tag%3D1%3Bfrom-tag%3D2&Replaces=y%3Bto-tag%3D1%3Bfrom-tag%3D2"),
            Err(EmbeddedHeaderError::BadReplaces)
        );
        assert_eq!(
            ReferTarget::parse("sip:a@127.0.0.1?Replaces=%FF%FE"),
            Err(EmbeddedHeaderError::Malformed)
        );
        assert_eq!(
            ReferTarget::parse("sip:a@127.0.0.1?Replaces=%+1"),
            Err(EmbeddedHeaderError::Malformed)
        );
        // A multi-byte character right after '%' must not split a char.
        assert_eq!(
            ReferTarget::parse("sip:a@127.0.0.1?Replaces=%é1"),
            Err(EmbeddedHeaderError::Malformed)
        );
    }
}
