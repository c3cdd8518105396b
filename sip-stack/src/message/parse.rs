//! The wire parser and its errors.
//!
//! Framing is datagram-oriented (one message per buffer, as on UDP). Lines
//! may end in CRLF or bare LF; continuation lines (starting with SP/HTAB)
//! are joined with one space. A malformed header line does not stop the
//! parse: the remaining lines are still read so that, if the request is
//! answerable, [`ParseError::reply_400`] has the Via/From/To/Call-ID/CSeq it
//! needs.

use bytes::Bytes;

use super::headers::{canonical_name, Headers};
use super::request::{parse_cseq, Request, Response, SipMessage};
use super::via::{is_token_byte, name_addr_uri, Via};
use super::{generate_tag, Method};

/// Bounds against hostile or broken peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest datagram accepted, body included (default 64 KiB, the UDP max).
    pub max_message_size: usize,
    /// Most header lines accepted after unfolding (default 128).
    pub max_headers: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_message_size: 64 * 1024,
            max_headers: 128,
        }
    }
}

/// What was wrong with a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("empty message")]
    Empty,
    #[error("message of {size} bytes exceeds the {max} byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("more than {max} header lines")]
    TooManyHeaders { max: usize },
    #[error("malformed start line {0:?}")]
    InvalidStartLine(String),
    #[error("unsupported SIP version {0:?}")]
    BadVersion(String),
    #[error("malformed header line {0:?}")]
    InvalidHeaderLine(String),
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("invalid {name} header {value:?}")]
    InvalidHeader { name: &'static str, value: String },
    #[error("CSeq method {cseq} does not match request method {request}")]
    CSeqMethodMismatch { cseq: String, request: String },
    #[error("invalid Content-Length {0:?}")]
    InvalidContentLength(String),
    #[error("Content-Length {declared} exceeds the {available} body bytes present")]
    BodyTooShort { declared: usize, available: usize },
}

impl ParseErrorKind {
    /// A short, fixed phrase for the reason line: never echo peer input.
    fn reason_detail(&self) -> &'static str {
        match self {
            ParseErrorKind::MissingHeader("Call-ID") => "missing Call-ID",
            ParseErrorKind::MissingHeader("From") => "missing From",
            ParseErrorKind::MissingHeader("To") => "missing To",
            ParseErrorKind::MissingHeader("CSeq") => "missing CSeq",
            ParseErrorKind::InvalidHeader { name: "CSeq", .. } => "invalid CSeq",
            ParseErrorKind::InvalidHeader { name: "From", .. } => "invalid From",
            ParseErrorKind::InvalidHeader { name: "To", .. } => "invalid To",
            ParseErrorKind::CSeqMethodMismatch { .. } => "CSeq method mismatch",
            ParseErrorKind::InvalidContentLength(_) => "invalid Content-Length",
            ParseErrorKind::BodyTooShort { .. } => "Content-Length exceeds body",
            ParseErrorKind::InvalidHeaderLine(_) => "malformed header",
            ParseErrorKind::TooManyHeaders { .. } => "too many headers",
            _ => "malformed message",
        }
    }
}

/// A parse failure plus, for requests, what was read of the message, so the
/// caller can still answer it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// The request line and headers read before/despite the error.
    partial: Option<Box<Request>>,
}

impl ParseError {
    fn new(kind: ParseErrorKind) -> Self {
        ParseError {
            kind,
            partial: None,
        }
    }

    /// The stateless answer to a broken request, or `None` when nobody can
    /// be answered (garbage, responses, ACKs, oversized input, no usable Via).
    ///
    /// Our rule: a request line plus a parseable top Via suffices. Response
    /// routing needs only the Via (RFC 3261 §18.2.2), and the peer's client
    /// transaction matches on the Via branch and CSeq method (§17.1.3), so a
    /// 400 without a Call-ID still stops its retransmissions. Whatever of
    /// From/To/Call-ID/CSeq was readable is copied. An unsupported SIP
    /// version gets 505 instead of 400 (RFC 3261 §21.5.6, as the RFC 4475 torture tests expect).
    pub fn reply_400(&self) -> Option<Response> {
        let req = self.partial.as_deref()?;
        if req.method == Method::Ack || req.top_via().is_none() {
            return None;
        }
        let mut resp = match self.kind {
            ParseErrorKind::BadVersion(_) => {
                Response::for_request(req, 505, "Version Not Supported")
            }
            ParseErrorKind::TooLarge { .. } | ParseErrorKind::Empty => return None,
            _ => {
                let reason = format!("Bad Request - {}", self.kind.reason_detail());
                Response::for_request(req, 400, &reason)
            }
        };
        resp.set_to_tag(&generate_tag());
        Some(resp)
    }
}

/// Parses one datagram with the default [`ParseLimits`].
pub fn parse(buf: &[u8]) -> Result<SipMessage, ParseError> {
    parse_with_limits(buf, &ParseLimits::default())
}

/// Parses one datagram.
pub fn parse_with_limits(buf: &[u8], limits: &ParseLimits) -> Result<SipMessage, ParseError> {
    if buf.len() > limits.max_message_size {
        return Err(ParseError::new(ParseErrorKind::TooLarge {
            size: buf.len(),
            max: limits.max_message_size,
        }));
    }
    // RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives).
    let skip = buf
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let buf = buf.get(skip..).unwrap_or_default();
    if buf.is_empty() {
        return Err(ParseError::new(ParseErrorKind::Empty));
    }
    let mut lines = Lines { buf, pos: 0 };
    let start = parse_start_line(&lines.next_line().unwrap_or_default())?;
    let (headers, first_error) = read_headers(&mut lines, limits)?;
    let rest = buf.get(lines.pos..).unwrap_or_default();
    match start {
        StartLine::Response { status, reason } => {
            if let Some(kind) = first_error {
                return Err(ParseError::new(kind));
            }
            validate(&headers, None).map_err(ParseError::new)?;
            let body = body(&headers, rest).map_err(ParseError::new)?;
            Ok(SipMessage::Response(Response {
                status,
                reason,
                headers,
                body,
            }))
        }
        StartLine::Request {
            method,
            uri,
            bad_version,
        } => {
            let mut req = Request {
                method,
                uri,
                headers,
                body: Bytes::new(),
            };
            let checked = match (bad_version, first_error) {
                (Some(v), _) => Err(ParseErrorKind::BadVersion(v)),
                (None, Some(kind)) => Err(kind),
                (None, None) => Ok(()),
            }
            .and_then(|()| validate(&req.headers, Some(&req.method)))
            .and_then(|()| body(&req.headers, rest));
            match checked {
                Ok(b) => {
                    req.body = b;
                    Ok(SipMessage::Request(req))
                }
                Err(kind) => Err(ParseError {
                    kind,
                    partial: Some(Box::new(req)),
                }),
            }
        }
    }
}

/// Splits lines at LF, dropping one trailing CR; stops at the blank line.
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Lines<'_> {
    fn next_line(&mut self) -> Option<String> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let (line, consumed) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (rest.get(..i).unwrap_or_default(), i + 1),
            None => (rest, rest.len()),
        };
        self.pos += consumed;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Old PBXs send Latin-1 display names: keep going with U+FFFD.
        Some(String::from_utf8_lossy(line).into_owned())
    }
}

enum StartLine {
    Request {
        method: Method,
        uri: String,
        bad_version: Option<String>,
    },
    Response {
        status: u16,
        reason: String,
    },
}

fn has_ctl(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\t')
}

fn snippet(s: &str) -> String {
    s.chars().take(80).collect()
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let invalid = || ParseError::new(ParseErrorKind::InvalidStartLine(snippet(line)));
    if has_ctl(line) {
        return Err(invalid());
    }
    if line.len() >= 4
        && line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let code = parts.next().unwrap_or_default();
        let reason = parts.next().unwrap_or_default().trim();
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(ParseError::new(ParseErrorKind::BadVersion(snippet(
                version,
            ))));
        }
        let status = match code.parse::<u16>() {
            Ok(s) if code.len() == 3 && (100..700).contains(&s) => s,
            _ => return Err(invalid()),
        };
        return Ok(StartLine::Response {
            status,
            reason: reason.to_string(),
        });
    }
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if !method.bytes().all(is_token_byte) || !uri.contains(':') {
        return Err(invalid());
    }
    Ok(StartLine::Request {
        method: Method::parse(method),
        uri: uri.to_string(),
        bad_version: (!version.eq_ignore_ascii_case("SIP/2.0")).then(|| snippet(version)),
    })
}

/// Reads header lines up to the blank line. Returns the headers and the
/// first malformed-line error, if any (see the module doc for why parsing
/// goes on).
fn read_headers(
    lines: &mut Lines<'_>,
    limits: &ParseLimits,
) -> Result<(Headers, Option<ParseErrorKind>), ParseError> {
    let mut headers = Headers::new();
    let mut first_error = None;
    while let Some(line) = lines.next_line() {
        if line.is_empty() {
            break;
        }
        let folded = line.starts_with([' ', '\t']);
        let malformed = has_ctl(&line)
            || if folded {
                !headers.append_to_last(line.trim_matches([' ', '\t']))
            } else {
                !push_header_line(&mut headers, &line)
            };
        if malformed && first_error.is_none() {
            first_error = Some(ParseErrorKind::InvalidHeaderLine(snippet(&line)));
        }
        if headers.len() > limits.max_headers {
            return Err(ParseError::new(ParseErrorKind::TooManyHeaders {
                max: limits.max_headers,
            }));
        }
    }
    Ok((headers, first_error))
}

fn push_header_line(headers: &mut Headers, line: &str) -> bool {
    let Some((name, value)) = line.split_once(':') else {
        return false;
    };
    let name = name.trim_end_matches([' ', '\t']);
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return false;
    }
    headers.push(&canonical_name(name), value.trim_matches([' ', '\t']));
    true
}

/// The checks without which no layer above can work with the message.
fn validate(headers: &Headers, request_method: Option<&Method>) -> Result<(), ParseErrorKind> {
    let invalid = |name: &'static str, value: &str| ParseErrorKind::InvalidHeader {
        name,
        value: snippet(value),
    };
    let via = headers
        .vias()
        .next()
        .ok_or(ParseErrorKind::MissingHeader("Via"))?;
    if Via::parse(via).is_none() {
        return Err(invalid("Via", via));
    }
    for name in ["From", "To"] {
        let v = headers
            .get(name)
            .ok_or(ParseErrorKind::MissingHeader(name))?;
        if name_addr_uri(v).is_none() {
            return Err(invalid(name, v));
        }
    }
    headers
        .call_id()
        .ok_or(ParseErrorKind::MissingHeader("Call-ID"))?;
    let cseq_value = headers
        .get("CSeq")
        .ok_or(ParseErrorKind::MissingHeader("CSeq"))?;
    let (_, cseq_method) = parse_cseq(cseq_value).ok_or_else(|| invalid("CSeq", cseq_value))?;
    if let Some(m) = request_method {
        if *m != cseq_method {
            return Err(ParseErrorKind::CSeqMethodMismatch {
                cseq: snippet(cseq_method.as_str()),
                request: snippet(m.as_str()),
            });
        }
    }
    Ok(())
}

/// The body per Content-Length; without one (legal on UDP, RFC 3261
/// §18.3) the rest of the datagram. Bytes beyond Content-Length are dropped.
fn body(headers: &Headers, rest: &[u8]) -> Result<Bytes, ParseErrorKind> {
    let mut declared: Option<usize> = None;
    for v in headers.get_all("Content-Length") {
        let n = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse::<usize>().ok()
        } else {
            None
        };
        match (n, declared) {
            (None, _) => return Err(ParseErrorKind::InvalidContentLength(snippet(v))),
            (Some(n), Some(d)) if n != d => {
                return Err(ParseErrorKind::InvalidContentLength(snippet(v)))
            }
            (Some(n), _) => declared = Some(n),
        }
    }
    match declared {
        None => Ok(Bytes::copy_from_slice(rest)),
        Some(n) => rest
            .get(..n)
            .map(Bytes::copy_from_slice)
            .ok_or(ParseErrorKind::BodyTooShort {
                declared: n,
                available: rest.len(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKEN: &[u8] = b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKu\r\n\
        no colon here\r\n\
        From: <sip:a@10.0.0.1>;tag=f\r\n\
        To: <sip:b@10.0.0.2>\r\n\
        Call-ID: x@y\r\n\
        CSeq: 1 INVITE\r\n\r\n";

    #[test]
    fn headers_after_a_bad_line_still_answer() {
        let err = parse(BROKEN).unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::InvalidHeaderLine(_)));
        let reply = err.reply_400().unwrap();
        assert_eq!(reply.status, 400);
        assert_eq!(reply.reason, "Bad Request - malformed header");
        assert_eq!(reply.headers.vias().count(), 2);
        assert_eq!(reply.call_id(), Some("x@y"));
        assert!(reply.to_tag().is_some());
        // Our own answer must be a valid message.
        assert!(matches!(
            parse(&reply.to_bytes()),
            Ok(SipMessage::Response(_))
        ));
    }

    #[test]
    fn folded_and_compact_lines() {
        let msg = b"BYE sip:a@b SIP/2.0\n\
            v: SIP/2.0/UDP 10.0.0.1\n\t;branch=z9hG4bKf\n\
            f: <sip:a@b>;tag=1\nt: <sip:c@d>;tag=2\ni: fold\nCSeq: 2 BYE\n\n";
        let Ok(SipMessage::Request(req)) = parse(msg) else {
            panic!("must parse");
        };
        assert_eq!(
            req.headers.get("Via"),
            Some("SIP/2.0/UDP 10.0.0.1 ;branch=z9hG4bKf")
        );
        assert_eq!(
            req.top_via().and_then(|v| v.branch).as_deref(),
            Some("z9hG4bKf")
        );
        assert!(req.body.is_empty());
    }

    #[test]
    fn content_length_shorter_than_datagram_truncates_body() {
        let msg = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
            From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
            Content-Length: 2\r\n\r\nokjunk";
        let Ok(SipMessage::Response(resp)) = parse(msg) else {
            panic!("must parse");
        };
        assert_eq!(&resp.body[..], b"ok");
    }
}
