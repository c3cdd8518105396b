//! SDP (RFC 4566): parsing, serialization, and the audio offer/answer
//! of RFC 3264 in [`answer_audio`], with SDES-SRTP (RFC 4568: `RTP/SAVP`
//! and `a=crypto`) in [`answer_audio_srtp`] and [`offer_audio_srtp`].
//!
//! The parser keeps what offer/answer needs as typed fields and every other
//! line verbatim, so an SDP read and written again loses nothing a peer
//! would miss. Lines may end in CRLF or LF; output always uses CRLF.

mod answer;
mod crypto;
mod offer;

pub use answer::{
    answer_audio, answer_audio_srtp, AudioCodec, Direction, NegotiatedAudio, NegotiatedSrtp,
    OpusFmtp, SrtpAnswer, SrtpPolicy,
};
pub use crypto::{fresh_key, CryptoAttribute, CryptoError, CryptoSuite, KEY_SALT_LEN};
pub use offer::{
    accept_answer, accept_answer_srtp, offer_audio, offer_audio_srtp, AudioOffer, SrtpOffer,
};

use std::fmt;
use std::net::IpAddr;

/// Why an SDP could not be read or answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP line {line}: {what}")]
    Invalid { line: usize, what: String },
    #[error("SDP missing the {0}= line")]
    Missing(char),
    #[error("SDP has more than {0} lines")]
    TooManyLines(usize),
    #[error("SDP has more than {0} m= lines")]
    TooManyMedia(usize),
    #[error("offer has no usable audio stream (RTP/AVP with a non-zero port)")]
    NoAudio,
    #[error("offer has no codec in common with ours")]
    NoCommonCodec,
    #[error("offer's audio stream has no usable connection address")]
    NoConnection,
    #[error("no acceptable a=crypto line where SRTP is required")]
    NoAcceptableCrypto,
}

/// Bounds against hostile SDP bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdpLimits {
    /// Default 512: real offers with ICE candidates stay far below.
    pub max_lines: usize,
    /// Default 16 m= lines.
    pub max_media: usize,
}

impl Default for SdpLimits {
    fn default() -> Self {
        SdpLimits {
            max_lines: 512,
            max_media: 16,
        }
    }
}

/// `o=` (RFC 4566 §5.2). Ids are kept as text: some peers use more digits
/// than a u64 holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: String,
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

/// `c=` (RFC 4566 §5.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// As written, possibly with `/ttl[/count]` for multicast.
    pub address: String,
}

impl Connection {
    pub fn new(ip: IpAddr) -> Connection {
        Connection {
            net_type: "IN".into(),
            addr_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.into(),
            address: ip.to_string(),
        }
    }

    /// The address without any multicast suffix, if it is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }
}

/// `a=name[:value]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl Attribute {
    pub fn new(name: &str, value: Option<String>) -> Attribute {
        Attribute {
            name: name.to_string(),
            value,
        }
    }
}

/// One `m=` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: String,
    pub port: u16,
    /// The `/<number of ports>` suffix of the port field, if any.
    pub port_count: Option<u16>,
    pub proto: String,
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub bandwidths: Vec<String>,
    pub attributes: Vec<Attribute>,
    /// `i=` and `k=` lines, verbatim (type letter, value).
    pub other: Vec<(char, String)>,
}

impl MediaDescription {
    /// The value of the first attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attr(&self.attributes, name)
    }
}

/// A whole session description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    pub session_name: String,
    pub connection: Option<Connection>,
    pub bandwidths: Vec<String>,
    /// `t=` values; at least one is written (`0 0` if empty).
    pub timing: Vec<String>,
    pub attributes: Vec<Attribute>,
    /// `i= u= e= p= r= z= k=` lines, verbatim, written where RFC 4566 §5
    /// orders them.
    pub other: Vec<(char, String)>,
    pub media: Vec<MediaDescription>,
}

fn find_attr<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_deref().unwrap_or(""))
}

impl SessionDescription {
    pub fn parse(s: &str) -> Result<Self, SdpError> {
        Self::parse_with_limits(s, &SdpLimits::default())
    }

    pub fn parse_with_limits(s: &str, limits: &SdpLimits) -> Result<Self, SdpError> {
        let mut origin = None;
        let mut session_name = None;
        let mut sdp = SessionDescription {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                session_version: String::new(),
                net_type: String::new(),
                addr_type: String::new(),
                address: String::new(),
            },
            session_name: String::new(),
            connection: None,
            bandwidths: Vec::new(),
            timing: Vec::new(),
            attributes: Vec::new(),
            other: Vec::new(),
            media: Vec::new(),
        };
        let lines = s
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.is_empty());
        for (i, line) in lines.enumerate() {
            let n = i + 1;
            if n > limits.max_lines {
                return Err(SdpError::TooManyLines(limits.max_lines));
            }
            let invalid = |what: &str| SdpError::Invalid {
                line: n,
                what: what.to_string(),
            };
            let bytes = line.as_bytes();
            let (Some(&kind), Some(b'=')) = (bytes.first(), bytes.get(1)) else {
                return Err(invalid("expected <type>=<value>"));
            };
            let kind = kind as char;
            let value = line.get(2..).ok_or_else(|| invalid("not UTF-8 at type"))?;
            if n == 1 && (kind != 'v' || value.trim() != "0") {
                return Err(invalid("must start with v=0"));
            }
            let in_media = !sdp.media.is_empty();
            match kind {
                'v' if n == 1 => {}
                'o' if !in_media => {
                    origin = Some(parse_origin(value).ok_or_else(|| invalid("bad o="))?)
                }
                's' if !in_media => session_name = Some(value.to_string()),
                'c' => {
                    let c = parse_connection(value).ok_or_else(|| invalid("bad c="))?;
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = Some(c),
                        None => sdp.connection = Some(c),
                    }
                }
                'b' => match sdp.media.last_mut() {
                    Some(m) => m.bandwidths.push(value.to_string()),
                    None => sdp.bandwidths.push(value.to_string()),
                },
                't' if !in_media => sdp.timing.push(value.to_string()),
                'a' => {
                    let a = parse_attribute(value).ok_or_else(|| invalid("bad a="))?;
                    match sdp.media.last_mut() {
                        Some(m) => m.attributes.push(a),
                        None => sdp.attributes.push(a),
                    }
                }
                'm' => {
                    if sdp.media.len() >= limits.max_media {
                        return Err(SdpError::TooManyMedia(limits.max_media));
                    }
                    sdp.media
                        .push(parse_media(value).ok_or_else(|| invalid("bad m="))?);
                }
                'i' | 'k' if in_media => {
                    if let Some(m) = sdp.media.last_mut() {
                        m.other.push((kind, value.to_string()));
                    }
                }
                'i' | 'u' | 'e' | 'p' | 'r' | 'z' | 'k' if !in_media => {
                    sdp.other.push((kind, value.to_string()))
                }
                _ => return Err(invalid("unexpected line type here")),
            }
        }
        sdp.origin = origin.ok_or(SdpError::Missing('o'))?;
        sdp.session_name = session_name.ok_or(SdpError::Missing('s'))?;
        Ok(sdp)
    }

    /// The value of the first session-level attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attr(&self.attributes, name)
    }
}

fn parse_origin(v: &str) -> Option<Origin> {
    let mut f = v.split_ascii_whitespace();
    let o = Origin {
        username: f.next()?.to_string(),
        session_id: f.next()?.to_string(),
        session_version: f.next()?.to_string(),
        net_type: f.next()?.to_string(),
        addr_type: f.next()?.to_string(),
        address: f.next()?.to_string(),
    };
    f.next().is_none().then_some(o)
}

fn parse_connection(v: &str) -> Option<Connection> {
    let mut f = v.split_ascii_whitespace();
    let c = Connection {
        net_type: f.next()?.to_string(),
        addr_type: f.next()?.to_string(),
        address: f.next()?.to_string(),
    };
    f.next().is_none().then_some(c)
}

fn parse_attribute(v: &str) -> Option<Attribute> {
    let (name, value) = match v.split_once(':') {
        Some((n, val)) => (n, Some(val.to_string())),
        None => (v, None),
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    name_ok.then(|| Attribute::new(name, value))
}

fn parse_media(v: &str) -> Option<MediaDescription> {
    let mut f = v.split_ascii_whitespace();
    let media = f.next()?.to_string();
    let port_field = f.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = f.next()?.to_string();
    Some(MediaDescription {
        media,
        port,
        port_count,
        proto,
        formats: f.map(str::to_string).collect(),
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    })
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c={} {} {}\r\n",
            self.net_type, self.addr_type, self.address
        )
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "a={}:{v}\r\n", self.name),
            None => write!(f, "a={}\r\n", self.name),
        }
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        f.write_str("\r\n")?;
        write_other(f, &self.other, "i")?;
        if let Some(c) = &self.connection {
            write!(f, "{c}")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        write_other(f, &self.other, "k")?;
        self.attributes.iter().try_for_each(|a| write!(f, "{a}"))
    }
}

fn write_other(f: &mut fmt::Formatter<'_>, other: &[(char, String)], kinds: &str) -> fmt::Result {
    other
        .iter()
        .filter(|(k, _)| kinds.contains(*k))
        .try_for_each(|(k, v)| write!(f, "{k}={v}\r\n"))
}

/// Serializes in RFC 4566 §5 order with CRLF line ends.
impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        f.write_str("v=0\r\n")?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        write_other(f, &self.other, "iuep")?;
        if let Some(c) = &self.connection {
            write!(f, "{c}")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        if self.timing.is_empty() {
            f.write_str("t=0 0\r\n")?;
        }
        for t in &self.timing {
            write!(f, "t={t}\r\n")?;
        }
        write_other(f, &self.other, "rzk")?;
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        self.media.iter().try_for_each(|m| write!(f, "{m}"))
    }
}

#[cfg(test)]
mod tests;
