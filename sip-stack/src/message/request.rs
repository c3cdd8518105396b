//! Requests, responses and what every layer asks of them.

use bytes::Bytes;

use super::headers::Headers;
use super::via::{name_addr_param, name_addr_uri, Via};
use super::Method;

/// A SIP request. `body` is raw bytes: SDP, DTMF info, or anything else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: String,
    pub headers: Headers,
    pub body: Bytes,
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Bytes,
}

/// Whatever arrived in a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SipMessage {
    Request(Request),
    Response(Response),
}

impl SipMessage {
    pub fn headers(&self) -> &Headers {
        match self {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
        }
    }
}

/// Parses `CSeq: 4711 INVITE`.
pub(crate) fn parse_cseq(value: &str) -> Option<(u32, Method)> {
    let mut parts = value.split_ascii_whitespace();
    let num = parts.next()?;
    if !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = num.parse().ok()?;
    let method = parts.next()?;
    if parts.next().is_some() || !method.bytes().all(super::via::is_token_byte) {
        return None;
    }
    Some((num, Method::parse(method)))
}

/// Accessors both requests and responses need, so transaction and dialog
/// code reads the same way for either.
impl Headers {
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID").filter(|v| !v.is_empty())
    }

    pub fn cseq(&self) -> Option<(u32, Method)> {
        self.get("CSeq").and_then(parse_cseq)
    }

    pub fn from_tag(&self) -> Option<&str> {
        self.get("From")
            .and_then(|v| name_addr_param(v, "tag"))
            .filter(|t| !t.is_empty())
    }

    pub fn to_tag(&self) -> Option<&str> {
        self.get("To")
            .and_then(|v| name_addr_param(v, "tag"))
            .filter(|t| !t.is_empty())
    }

    pub fn top_via(&self) -> Option<Via> {
        self.vias().next().and_then(Via::parse)
    }

    pub fn contact_uri(&self) -> Option<String> {
        self.get_split("Contact")
            .next()
            .and_then(name_addr_uri)
            .map(str::to_string)
    }

    pub fn content_type(&self) -> Option<&str> {
        self.get("Content-Type")
    }
}

/// Writes headers (minus any Content-Length), a Content-Length computed from
/// the body, the blank line and the body: the length can never disagree.
fn write_message(start_line: String, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(start_line.len() + 64 * headers.len() + body.len() + 32);
    out.extend_from_slice(start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in headers.iter().filter(|h| h.name != "Content-Length") {
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

macro_rules! forward_accessors {
    ($t:ty) => {
        impl $t {
            pub fn call_id(&self) -> Option<&str> {
                self.headers.call_id()
            }
            pub fn cseq(&self) -> Option<(u32, Method)> {
                self.headers.cseq()
            }
            pub fn from_tag(&self) -> Option<&str> {
                self.headers.from_tag()
            }
            pub fn to_tag(&self) -> Option<&str> {
                self.headers.to_tag()
            }
            pub fn top_via(&self) -> Option<Via> {
                self.headers.top_via()
            }
            pub fn contact_uri(&self) -> Option<String> {
                self.headers.contact_uri()
            }
            pub fn content_type(&self) -> Option<&str> {
                self.headers.content_type()
            }
        }
    };
}

forward_accessors!(Request);
forward_accessors!(Response);

impl Request {
    /// An empty request; callers add headers and a body.
    pub fn new(method: Method, uri: impl Into<String>) -> Request {
        Request {
            method,
            uri: uri.into(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Serializes with CRLF line ends and a Content-Length from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        write_message(
            format!("{} {} SIP/2.0", self.method, self.uri),
            &self.headers,
            &self.body,
        )
    }

    /// The CANCEL for this (INVITE) request, RFC 3261 §9.1: same
    /// Request-URI, Call-ID, From, To, CSeq number and top Via (so the peer
    /// matches it to the INVITE transaction), same Route set.
    pub fn cancel(&self) -> Request {
        let mut c = Request::new(Method::Cancel, self.uri.clone());
        if let Some(via) = self.headers.vias().next() {
            c.headers.push("Via", via);
        }
        c.headers.push("Max-Forwards", "70");
        for name in ["From", "To", "Call-ID"] {
            if let Some(v) = self.headers.get(name) {
                c.headers.push(name, v);
            }
        }
        if let Some((n, _)) = self.cseq() {
            c.headers.push("CSeq", format!("{n} CANCEL"));
        }
        for r in self.headers.get_all("Route") {
            c.headers.push("Route", r);
        }
        c
    }
}

impl Response {
    /// A response to `req` per RFC 3261 §8.2.6: every Via in order, From,
    /// To, Call-ID and CSeq copied; Record-Route too when the response can
    /// create a dialog (101-299 to INVITE/SUBSCRIBE/REFER, §12.1.1). No body.
    pub fn for_request(req: &Request, status: u16, reason: &str) -> Response {
        let mut headers = Headers::new();
        for v in req.headers.get_all("Via") {
            headers.push("Via", v);
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = req.headers.get(name) {
                headers.push(name, v);
            }
        }
        if (101..300).contains(&status) && req.method.creates_dialog() {
            for rr in req.headers.get_all("Record-Route") {
                headers.push("Record-Route", rr);
            }
        }
        Response {
            status,
            reason: reason.to_string(),
            headers,
            body: Bytes::new(),
        }
    }

    /// Adds `;tag=` to To unless it has one: the UAS's half of the dialog
    /// id (RFC 3261 §8.2.6.2). Keep the same tag for every response of a
    /// transaction.
    pub fn set_to_tag(&mut self, tag: &str) {
        if self.to_tag().is_some() {
            return;
        }
        if let Some(to) = self.headers.get("To") {
            let tagged = format!("{to};tag={tag}");
            self.headers.set("To", tagged);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        write_message(
            format!("SIP/2.0 {} {}", self.status, self.reason),
            &self.headers,
            &self.body,
        )
    }

    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> Request {
        let mut r = Request::new(Method::Invite, "sip:bob@10.0.0.2");
        r.headers.push(
            "Via",
            "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1, SIP/2.0/UDP p;branch=z9hG4bK0",
        );
        r.headers
            .push("Via", "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK2");
        r.headers.push("Record-Route", "<sip:proxy;lr>");
        r.headers.push("From", "<sip:alice@a>;tag=A");
        r.headers.push("To", "<sip:bob@b>");
        r.headers.push("Call-ID", "c1");
        r.headers.push("CSeq", "7 INVITE");
        r.headers
            .push("Contact", "\"Al, ice\" <sip:alice@10.0.0.1:5062>;expires=3");
        r.body = Bytes::from_static(b"v=0\r\n");
        r
    }

    #[test]
    fn accessors() {
        let r = invite();
        assert_eq!(r.call_id(), Some("c1"));
        assert_eq!(r.cseq(), Some((7, Method::Invite)));
        assert_eq!(r.from_tag(), Some("A"));
        assert_eq!(r.to_tag(), None);
        assert_eq!(r.top_via().unwrap().branch.as_deref(), Some("z9hG4bK1"));
        assert_eq!(r.headers.vias().count(), 3);
        assert_eq!(r.contact_uri().as_deref(), Some("sip:alice@10.0.0.1:5062"));
    }

    #[test]
    fn response_copies_per_8_2_6() {
        let r = invite();
        let mut ok = Response::for_request(&r, 200, "OK");
        ok.set_to_tag("B");
        ok.set_to_tag("C");
        assert_eq!(ok.headers.get_all("Via").count(), 2);
        assert_eq!(ok.to_tag(), Some("B"));
        assert_eq!(ok.headers.get("Record-Route"), Some("<sip:proxy;lr>"));
        let trying = Response::for_request(&r, 100, "Trying");
        assert_eq!(trying.headers.get("Record-Route"), None);
        let text = String::from_utf8(ok.to_bytes()).unwrap();
        assert!(text.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1, "));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn cancel_matches_invite() {
        let c = invite().cancel();
        assert_eq!(c.cseq(), Some((7, Method::Cancel)));
        assert_eq!(c.headers.vias().count(), 1);
        assert_eq!(c.top_via(), invite().top_via());
    }
}
