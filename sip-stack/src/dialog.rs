//! Dialog state (RFC 3261 §12): the peer-to-peer relationship an INVITE
//! creates, which outlives its transactions and routes every later
//! request (BYE, re-INVITE, INFO) of the call.

use std::net::{IpAddr, SocketAddr};

use crate::message::{generate_branch, name_addr_uri, without_tag, Method, Request, Response};
use crate::transport::{Peer, TransportKind};

/// One side of a dialog, identified by Call-ID + local tag + remote tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    /// `None` only for RFC 2543 peers that send no From tag.
    pub remote_tag: Option<String>,
    /// Our From/To header value without its tag.
    pub local_uri: String,
    pub remote_uri: String,
    /// The peer's Contact URI: where in-dialog requests go.
    pub remote_target: String,
    /// Record-Route values, in the order our requests must visit them.
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    /// Our Contact URI (`sip:...`), sent in our requests.
    pub local_contact: String,
}

impl Dialog {
    /// Builds the UAS side from an INVITE we answer (RFC 3261 §12.1.1):
    /// route set from Record-Route in order; remote target from Contact.
    /// `None` if the INVITE lacks Call-ID, From, To, CSeq or Contact.
    pub fn new_uas(invite: &Request, local_tag: &str, local_contact: &str) -> Option<Dialog> {
        Some(Dialog {
            call_id: invite.call_id()?.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: invite.from_tag().map(str::to_string),
            local_uri: without_tag(invite.headers.get("To")?),
            remote_uri: without_tag(invite.headers.get("From")?),
            remote_target: invite.contact_uri()?,
            route_set: invite
                .headers
                .get_split("Record-Route")
                .map(str::to_string)
                .collect(),
            local_cseq: initial_cseq(),
            remote_cseq: invite.cseq()?.0,
            local_contact: local_contact.to_string(),
        })
    }

    /// Builds the UAC side from our INVITE and a 2xx (or tagged 1xx)
    /// response to it (RFC 3261 §12.1.2): route set from the response's
    /// Record-Route reversed; remote target from its Contact.
    pub fn new_uac(invite: &Request, response: &Response, local_contact: &str) -> Option<Dialog> {
        let mut route_set: Vec<String> = response
            .headers
            .get_split("Record-Route")
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Some(Dialog {
            call_id: invite.call_id()?.to_string(),
            local_tag: invite.from_tag()?.to_string(),
            remote_tag: response.to_tag().map(str::to_string),
            local_uri: without_tag(invite.headers.get("From")?),
            remote_uri: without_tag(response.headers.get("To")?),
            remote_target: response.contact_uri()?,
            route_set,
            local_cseq: invite.cseq()?.0,
            remote_cseq: 0,
            local_contact: local_contact.to_string(),
        })
    }

    /// A new in-dialog request (RFC 3261 §12.2.1.1) with a fresh branch in a
    /// `SIP/2.0/<transport> <via_sent_by>;branch=...;rport` Via and
    /// Max-Forwards 70. `transport` is the one the request will go over.
    /// Increments `local_cseq`, except for ACK, which reuses the INVITE's
    /// CSeq number (§13.2.2.4): build the ACK before any other request.
    pub fn new_request(
        &mut self,
        method: Method,
        transport: TransportKind,
        via_sent_by: &str,
    ) -> Request {
        if method != Method::Ack {
            self.local_cseq = self.local_cseq.wrapping_add(1);
        }
        let (uri, routes) = self.request_uri_and_routes();
        let mut req = Request::new(method.clone(), uri);
        let h = &mut req.headers;
        h.push(
            "Via",
            format!(
                "SIP/2.0/{} {via_sent_by};branch={};rport",
                transport.via_token(),
                generate_branch()
            ),
        );
        h.push("Max-Forwards", "70");
        h.push("From", format!("{};tag={}", self.local_uri, self.local_tag));
        h.push(
            "To",
            match &self.remote_tag {
                Some(tag) => format!("{};tag={tag}", self.remote_uri),
                None => self.remote_uri.clone(),
            },
        );
        h.push("Call-ID", self.call_id.clone());
        h.push("CSeq", format!("{} {method}", self.local_cseq));
        for r in routes {
            h.push("Route", r);
        }
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Refer | Method::Subscribe | Method::Notify
        ) {
            h.push("Contact", format!("<{}>", self.local_contact));
        }
        req
    }

    /// RFC 3261 §12.2.1.1: with a loose-routing first hop (`;lr`) the
    /// Request-URI is the remote target and Route is the route set; with a
    /// strict router the first route becomes the Request-URI and the remote
    /// target goes last in Route.
    fn request_uri_and_routes(&self) -> (String, Vec<String>) {
        let Some(first) = self.route_set.first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        let first_uri = name_addr_uri(first).unwrap_or(first);
        let loose = first_uri.split(';').skip(1).any(|p| {
            p.trim().eq_ignore_ascii_case("lr") || p.trim().to_ascii_lowercase().starts_with("lr=")
        });
        if loose {
            return (self.remote_target.clone(), self.route_set.clone());
        }
        let mut routes: Vec<String> = self.route_set.iter().skip(1).cloned().collect();
        routes.push(format!("<{}>", self.remote_target));
        (first_uri.to_string(), routes)
    }

    /// Whether an incoming in-dialog request belongs to this dialog: same
    /// Call-ID, its From tag is the remote tag, its To tag is ours.
    pub fn matches(&self, req: &Request) -> bool {
        req.call_id() == Some(self.call_id.as_str())
            && req.from_tag() == self.remote_tag.as_deref()
            && req.to_tag() == Some(self.local_tag.as_str())
    }

    /// Takes in a request that [`Dialog::matches`]: rejects an out-of-order
    /// CSeq (the TU answers 500, RFC 3261 §12.2.2), else records it and
    /// refreshes the remote target on target-refresh requests.
    pub fn accept_remote(&mut self, req: &Request) -> bool {
        let Some((cseq, method)) = req.cseq() else {
            return false;
        };
        if method != Method::Ack && method != Method::Cancel {
            if cseq <= self.remote_cseq && self.remote_cseq != 0 {
                return false;
            }
            self.remote_cseq = cseq;
        }
        if matches!(method, Method::Invite | Method::Update) {
            if let Some(target) = req.contact_uri() {
                self.remote_target = target;
            }
        }
        true
    }
}

/// RFC 3261 §8.1.1.5: any value below 2^31; a random start makes requests of
/// a restarted node unlikely to look like retransmissions.
fn initial_cseq() -> u32 {
    use rand::Rng;
    rand::rng().random_range(1..10_000)
}

/// Where to send a request for a `sip:`/`sips:` URI whose host is an IP
/// literal: its port, else 5060 (5061 for sips). `None` for host names
/// (the caller falls back to the signalling source address) and for a
/// `maddr`-less URI we cannot read.
pub fn request_destination(uri: &str) -> Option<SocketAddr> {
    let uri = strip_angles(uri)?;
    let (scheme, rest) = uri.split_once(':')?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "sip" => 5060,
        "sips" => 5061,
        _ => return None,
    };
    // The user part may contain ';' (tel-style params), so cut the URI
    // headers first, then the userinfo, then the URI parameters.
    let rest = rest.split(['?', '>']).next()?;
    let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hostport = host_part.split(';').next()?;
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let ip: IpAddr = host.parse().ok()?;
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some(SocketAddr::new(ip, port))
}

/// Where to send a request for a URI, with its transport: the
/// `transport=` parameter, TLS for `sips:`, UDP otherwise (RFC 3263 §4.1
/// without DNS); the port as in [`request_destination`], 5061 for TLS.
/// `None` when the host is not an IP literal or the transport is unknown.
pub fn request_target(uri: &str) -> Option<Peer> {
    let sips = strip_angles(uri)?
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    let transport = match uri_param(uri, "transport") {
        Some(t) => TransportKind::parse(t)?,
        None if sips => TransportKind::Tls,
        None => TransportKind::Udp,
    };
    let mut addr = request_destination(uri)?;
    if transport == TransportKind::Tls && !sips && !has_port(uri) {
        addr.set_port(TransportKind::Tls.default_port());
    }
    Some(Peer::new(transport, addr))
}

/// Whether the URI's hostport names a port.
fn has_port(uri: &str) -> bool {
    let Some(uri) = strip_angles(uri) else {
        return false;
    };
    let rest = uri.split_once(':').map_or("", |(_, r)| r);
    let rest = rest.split(['?', '>']).next().unwrap_or("");
    let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hostport = host_part.split(';').next().unwrap_or("");
    match hostport.rsplit_once(']') {
        Some((_, after)) => after.starts_with(':'),
        None => hostport.contains(':'),
    }
}

/// A bare URI as is, or the URI inside `<...>` of a name-addr. (A bare
/// URI's `;params` are URI parameters here, unlike in a header value.)
fn strip_angles(uri: &str) -> Option<&str> {
    if uri.contains('<') {
        name_addr_uri(uri)
    } else {
        Some(uri.trim())
    }
}

/// The value of a URI parameter such as `transport` (for the lead's
/// transport choice); `Some("")` when present without a value.
pub fn uri_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let params = strip_angles(uri)?.split_once(';')?.1;
    let params = params.split('?').next().unwrap_or("");
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse, SipMessage};

    fn invite() -> Request {
        let text = "INVITE sip:bob@192.0.2.10 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp1\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKu1\r\n\
            Record-Route: <sip:10.0.0.9;lr>, <sip:10.0.0.8;lr>\r\n\
            From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
            To: <sip:bob@example.com>\r\n\
            Call-ID: d1@10.0.0.1\r\n\
            CSeq: 314 INVITE\r\n\
            Contact: <sip:alice@10.0.0.1:5062;transport=udp>\r\n\
            Content-Length: 0\r\n\r\n";
        match parse(text.as_bytes()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn uas_dialog_and_bye() {
        let inv = invite();
        let mut d = Dialog::new_uas(&inv, "b1", "sip:switchboard@192.0.2.10:5060").unwrap();
        assert_eq!(d.remote_tag.as_deref(), Some("a1"));
        assert_eq!(d.remote_uri, "\"Alice\" <sip:alice@example.com>");
        assert_eq!(d.local_uri, "<sip:bob@example.com>");
        assert_eq!(d.remote_target, "sip:alice@10.0.0.1:5062;transport=udp");
        assert_eq!(d.route_set, vec!["<sip:10.0.0.9;lr>", "<sip:10.0.0.8;lr>"]);
        assert_eq!(d.remote_cseq, 314);

        let before = d.local_cseq;
        let bye = d.new_request(Method::Bye, TransportKind::Udp, "192.0.2.10:5060");
        assert_eq!(d.local_cseq, before + 1);
        assert_eq!(bye.uri, "sip:alice@10.0.0.1:5062;transport=udp");
        assert_eq!(bye.cseq(), Some((before + 1, Method::Bye)));
        assert_eq!(bye.from_tag(), Some("b1"));
        assert_eq!(bye.to_tag(), Some("a1"));
        assert_eq!(
            bye.headers.get_all("Route").collect::<Vec<_>>(),
            d.route_set
        );
        let via = bye.top_via().unwrap();
        assert!(via
            .branch
            .as_deref()
            .is_some_and(|b| b.starts_with("z9hG4bK")));
        assert_eq!(
            (via.sent_by(), via.rport),
            ("192.0.2.10:5060".to_string(), Some(None))
        );
        assert_eq!(bye.headers.get("Max-Forwards"), Some("70"));
        // What we send must parse back.
        assert!(parse(&bye.to_bytes()).is_ok());
    }

    #[test]
    fn matching_and_remote_cseq() {
        let inv = invite();
        let mut d = Dialog::new_uas(&inv, "b1", "sip:sb@192.0.2.10").unwrap();
        let mut bye = inv.clone();
        bye.method = Method::Bye;
        bye.headers.set("CSeq", "315 BYE");
        assert!(!d.matches(&bye), "no To tag yet");
        bye.headers.set("To", "<sip:bob@example.com>;tag=b1");
        assert!(d.matches(&bye));
        assert!(d.accept_remote(&bye));
        assert!(!d.accept_remote(&bye), "same CSeq again is out of order");
        bye.headers.set("Call-ID", "other");
        assert!(!d.matches(&bye));
    }

    #[test]
    fn strict_router_rewrites_request_uri() {
        let mut d = Dialog::new_uas(&invite(), "b1", "sip:sb@192.0.2.10").unwrap();
        d.route_set = vec!["<sip:10.0.0.9>".into(), "<sip:10.0.0.8;lr>".into()];
        let bye = d.new_request(Method::Bye, TransportKind::Udp, "192.0.2.10:5060");
        assert_eq!(bye.uri, "sip:10.0.0.9");
        let routes: Vec<_> = bye.headers.get_all("Route").collect();
        assert_eq!(
            routes,
            vec![
                "<sip:10.0.0.8;lr>",
                "<sip:alice@10.0.0.1:5062;transport=udp>"
            ]
        );
    }

    #[test]
    fn uac_dialog_from_2xx() {
        let inv = invite();
        let mut ok = Response::for_request(&inv, 200, "OK");
        ok.set_to_tag("b9");
        ok.headers.push("Contact", "<sip:bob@192.0.2.20>");
        let mut d = Dialog::new_uac(&inv, &ok, "sip:alice@10.0.0.1:5062").unwrap();
        assert_eq!(d.route_set, vec!["<sip:10.0.0.8;lr>", "<sip:10.0.0.9;lr>"]);
        assert_eq!(d.remote_tag.as_deref(), Some("b9"));
        let ack = d.new_request(Method::Ack, TransportKind::Tcp, "10.0.0.1:5062");
        assert_eq!(ack.cseq(), Some((314, Method::Ack)));
        assert_eq!(ack.uri, "sip:bob@192.0.2.20");
        assert_eq!(ack.top_via().unwrap().transport, "TCP");
    }

    #[test]
    fn targets_carry_their_transport() {
        let t = |s| request_target(s);
        let peer = |k, a: &str| Some(Peer::new(k, a.parse().unwrap()));
        assert_eq!(
            t("sip:a@10.0.0.1:5070"),
            peer(TransportKind::Udp, "10.0.0.1:5070")
        );
        assert_eq!(
            t("<sip:a@10.0.0.1;transport=TCP>"),
            peer(TransportKind::Tcp, "10.0.0.1:5060")
        );
        assert_eq!(
            t("sip:a@10.0.0.1;transport=tls"),
            peer(TransportKind::Tls, "10.0.0.1:5061")
        );
        assert_eq!(
            t("sip:a@10.0.0.1:7000;transport=tls"),
            peer(TransportKind::Tls, "10.0.0.1:7000")
        );
        assert_eq!(
            t("sips:a@[2001:db8::1]"),
            peer(TransportKind::Tls, "[2001:db8::1]:5061")
        );
        assert_eq!(t("sip:a@10.0.0.1;transport=sctp"), None);
        assert_eq!(t("sip:a@pbx.example.com;transport=tcp"), None);
    }

    #[test]
    fn destinations() {
        let d = |s| request_destination(s);
        assert_eq!(
            d("sip:alice@10.0.0.1:5062;transport=udp"),
            "10.0.0.1:5062".parse().ok()
        );
        assert_eq!(d("<sip:10.0.0.1>"), "10.0.0.1:5060".parse().ok());
        assert_eq!(d("sips:[2001:db8::1]"), "[2001:db8::1]:5061".parse().ok());
        assert_eq!(
            d("sip:u:pw@[2001:db8::1]:7000?x=y"),
            "[2001:db8::1]:7000".parse().ok()
        );
        assert_eq!(d("sip:alice@pbx.example.com"), None);
        assert_eq!(d("tel:+15551234"), None);
        assert_eq!(d("sip:10.0.0.1:99999"), None);
        assert_eq!(
            d("sip:+1555;phone-context=x@10.0.0.3;user=phone"),
            "10.0.0.3:5060".parse().ok()
        );
        assert_eq!(
            uri_param("sip:a@b;transport=TCP;lr", "transport"),
            Some("TCP")
        );
        assert_eq!(uri_param("<sip:a@b;lr>", "lr"), Some(""));
    }
}
