//! Stream framing (RFC 3261 §18.3, RFC 5626 §4.4.1): bytes from a TCP or
//! TLS connection in, whole SIP messages out. Sans-IO: the connection task
//! pushes what it read and pulls frames; no socket, no clock in here.
//!
//! On a datagram transport the datagram is the message. On a stream there
//! are no boundaries, so the header section ends at the first blank line
//! and the body is exactly `Content-Length` bytes — which is why RFC 3261
//! §18.3 makes Content-Length mandatory on streams. A message without it
//! cannot be delimited, so the stream cannot be trusted any further: the
//! framer reports [`FrameError::MissingContentLength`] (with the header
//! section, so a request can still get its 400) and the connection closes.
//!
//! Between messages, RFC 3261 §7.5 lets a sender put CRLFs, and RFC 5626
//! §4.4.1 gives them a meaning: a double CRLF is a keep-alive *ping* the
//! receiver answers with a single CRLF *pong*. A lone CRLF (a pong, or
//! padding) is skipped.
//!
//! Every error is fatal for the stream: after one, drop the framer and
//! close the connection.

use bytes::{Buf, Bytes, BytesMut};

use crate::message::{parse, ParseLimits, Response, SipMessage};

/// The keep-alive ping a client sends (RFC 5626 §4.4.1).
pub const PING: &[u8] = b"\r\n\r\n";
/// The answer to a [`PING`].
pub const PONG: &[u8] = b"\r\n";

/// Most header lines looked at when searching for Content-Length; the
/// parser bounds the real count ([`ParseLimits::max_headers`]).
const MAX_HEAD_LINES: usize = 256;

/// One unit taken off the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete message (start line, headers, body), ready for
    /// [`crate::message::parse`].
    Message(Bytes),
    /// A CRLF CRLF keep-alive: answer it with [`PONG`].
    Ping,
}

/// Why the stream cannot be read any further.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message of at least {size} bytes exceeds the {max} byte limit")]
    TooLarge { size: usize, max: usize },
    /// The header section, kept so a request can be answered 400.
    #[error("message without Content-Length on a stream transport")]
    MissingContentLength { head: Bytes },
    /// The header section is kept here too, for the 400.
    #[error("invalid or conflicting Content-Length {value:?}")]
    InvalidContentLength { value: String, head: Bytes },
}

impl FrameError {
    /// The 400 owed to a request that came without a usable Content-Length
    /// (missing, malformed or conflicting; its header section was read
    /// whole, so it can be answered). `None` for oversized messages,
    /// responses, ACKs and garbage.
    pub fn reply_400(&self) -> Option<Response> {
        let (head, reason) = match self {
            FrameError::MissingContentLength { head } => {
                (head, "Bad Request - missing Content-Length")
            }
            FrameError::InvalidContentLength { head, .. } => {
                (head, "Bad Request - invalid Content-Length")
            }
            FrameError::TooLarge { .. } => return None,
        };
        match parse_head(head) {
            Ok(SipMessage::Request(req)) if req.method != crate::message::Method::Ack => {
                let mut resp = Response::for_request(&req, 400, reason);
                resp.set_to_tag(&crate::message::generate_tag());
                Some(resp)
            }
            Ok(_) => None,
            Err(e) => e.reply_400(),
        }
    }
}

/// Where the framer is between two [`StreamFramer::next_frame`] calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between messages: CRLFs, pings, or the start of a message.
    Idle,
    /// Header section complete; waiting for the whole message.
    Body { total: usize },
}

/// Turns a byte stream into SIP messages and keep-alive pings.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max_message: usize,
    state: State,
    /// How far the search for the blank line got, so a peer dripping one
    /// byte at a time costs linear, not quadratic, work.
    scanned: usize,
}

impl StreamFramer {
    /// `max_message` bounds one message, header section and body
    /// (`sip.max_message_bytes`); it also bounds what the framer buffers.
    pub fn new(max_message: usize) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            max_message,
            state: State::Idle,
            scanned: 0,
        }
    }

    /// With the parser's size limit.
    pub fn with_limits(limits: &ParseLimits) -> Self {
        Self::new(limits.max_message_size)
    }

    /// Appends bytes read from the connection. Call [`next_frame`] until it
    /// returns `Ok(None)` before pushing more, so the buffer stays bounded.
    ///
    /// [`next_frame`]: StreamFramer::next_frame
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that are not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, `Ok(None)` when more bytes are needed, or an error
    /// after which the stream must be closed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            match self.state {
                State::Idle => {
                    if self.buf.starts_with(PING) {
                        self.buf.advance(PING.len());
                        return Ok(Some(Frame::Ping));
                    }
                    if PING.starts_with(&self.buf) {
                        return Ok(None); // empty, or a ping/pong still arriving
                    }
                    if self.scanned == 0 && self.buf.starts_with(PONG) {
                        self.buf.advance(PONG.len());
                        continue;
                    }
                    if self.scanned == 0 && matches!(self.buf.first(), Some(b'\r' | b'\n')) {
                        self.buf.advance(1); // bare LF or CR padding
                        continue;
                    }
                    let Some(head_len) = header_section_len(&self.buf, self.scanned) else {
                        self.scanned = self.buf.len().saturating_sub(3);
                        return self.need_more();
                    };
                    self.scanned = 0;
                    let head = self.buf.get(..head_len).unwrap_or_default();
                    let body_len = match content_length(head) {
                        Ok(Some(n)) => n,
                        Err(value) => {
                            return Err(FrameError::InvalidContentLength {
                                value,
                                head: Bytes::copy_from_slice(head),
                            })
                        }
                        Ok(None) => {
                            return Err(FrameError::MissingContentLength {
                                head: Bytes::copy_from_slice(head),
                            })
                        }
                    };
                    let total = head_len.saturating_add(body_len);
                    if total > self.max_message {
                        return Err(FrameError::TooLarge {
                            size: total,
                            max: self.max_message,
                        });
                    }
                    self.state = State::Body { total };
                }
                State::Body { total } => {
                    if self.buf.len() < total {
                        return Ok(None);
                    }
                    self.state = State::Idle;
                    return Ok(Some(Frame::Message(self.buf.split_to(total).freeze())));
                }
            }
        }
    }

    /// No complete header section yet: fine unless it is already too long.
    fn need_more(&self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() > self.max_message {
            return Err(FrameError::TooLarge {
                size: self.buf.len(),
                max: self.max_message,
            });
        }
        Ok(None)
    }
}

/// Length of the header section including its terminating blank line
/// (CRLF CRLF, or bare LF LF as the parser also accepts), searching from
/// byte `from` on.
fn header_section_len(buf: &[u8], from: usize) -> Option<usize> {
    let lf = buf
        .iter()
        .enumerate()
        .skip(from)
        .filter(|(_, &b)| b == b'\n');
    for (i, _) in lf {
        let rest = buf.get(i + 1..)?;
        if rest.starts_with(b"\r\n") {
            return Some(i + 3);
        }
        if rest.starts_with(b"\n") {
            return Some(i + 2);
        }
    }
    None
}

/// Parses a header section for the 400: its Content-Length headers are
/// what is wrong with it, so they are dropped first (the parser would
/// refuse them too) and the request is read without a body.
fn parse_head(head: &[u8]) -> Result<SipMessage, crate::message::ParseError> {
    let mut clean = Vec::with_capacity(head.len());
    for line in head.split_inclusive(|&b| b == b'\n') {
        let name = line
            .iter()
            .position(|&b| b == b':')
            .map(|colon| line[..colon].trim_ascii());
        let is_length = name.is_some_and(|n| {
            n.eq_ignore_ascii_case(b"content-length") || n.eq_ignore_ascii_case(b"l")
        });
        if !is_length {
            clean.extend_from_slice(line);
        }
    }
    parse(&clean)
}

/// The Content-Length of a header section (`Content-Length` or compact `l`,
/// any case); `Ok(None)` when absent. Several values must agree; Err holds
/// the offending value.
fn content_length(head: &[u8]) -> Result<Option<usize>, String> {
    let mut found: Option<usize> = None;
    // The start line never looks like a header named Content-Length/l.
    for line in head.split(|&b| b == b'\n').take(MAX_HEAD_LINES) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = name.trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        let text = || String::from_utf8_lossy(value).chars().take(20).collect();
        let n = match value {
            v if !v.is_empty() && v.len() <= 10 && v.iter().all(u8::is_ascii_digit) => {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or_else(text)?
            }
            _ => return Err(text()),
        };
        if found.is_some_and(|f| f != n) {
            return Err(text());
        }
        found = Some(n);
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
