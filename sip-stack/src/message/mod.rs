//! SIP messages (RFC 3261 §7, grammar in §25): parsing, accessors,
//! serialization and the random identifiers (tags, branches, Call-IDs).
//!
//! The parser is our own and tuned for carrier input: compact header names,
//! folded lines, LWS around colons, several values per Via/Contact line,
//! bare LF line ends, and explicit limits on size and header count. Parsed
//! values are owned `String`s: simplicity first, zero-copy when a profile asks.

mod headers;
mod parse;
mod request;
mod via;

pub use headers::{canonical_name, split_comma, unsupported_requirements, Header, Headers};
pub use parse::{parse, parse_with_limits, ParseError, ParseErrorKind, ParseLimits};
pub use request::{Request, Response, SipMessage};
pub use via::{name_addr_param, name_addr_uri, without_tag, Via, MAGIC_COOKIE};

use std::fmt;

/// A request method (RFC 3261 §7.1 plus the extension methods a contact
/// center meets). Methods are case-sensitive: `invite` is `Other("invite")`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Update,
    Prack,
    Refer,
    Notify,
    Subscribe,
    Message,
    Other(String),
}

impl Method {
    /// Maps a method token; never fails because unknown methods are legal
    /// (the UAS answers them 405/501).
    pub fn parse(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "MESSAGE" => Method::Message,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Other(s) => s,
        }
    }

    /// Methods whose 101-299 responses establish a dialog, so the response
    /// copies Record-Route (RFC 3261 §12.1.1, RFC 6665, RFC 3515).
    pub fn creates_dialog(&self) -> bool {
        matches!(self, Method::Invite | Method::Subscribe | Method::Refer)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Method {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Method::parse(s))
    }
}

fn random_hex(bytes: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A From/To tag: 64 random bits, enough for RFC 3261 §19.3's "at least 32
/// bits of randomness".
pub fn generate_tag() -> String {
    random_hex(8)
}

/// A Via branch: the magic cookie plus 64 random bits, so every peer keys
/// its transactions on the branch alone (RFC 3261 §8.1.1.7).
pub fn generate_branch() -> String {
    format!("{MAGIC_COOKIE}{}", random_hex(8))
}

/// A Call-ID: 128 random bits `@host`, unique across nodes behind one load
/// balancer (RFC 3261 §8.1.1.4).
pub fn generate_call_id(host: &str) -> String {
    format!("{}@{host}", random_hex(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip() {
        for m in [
            "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "PUBLISH", "invite",
        ] {
            assert_eq!(Method::parse(m).to_string(), m);
        }
        assert_eq!(Method::parse("invite"), Method::Other("invite".into()));
    }

    #[test]
    fn identifiers_are_fresh() {
        assert!(generate_branch().starts_with("z9hG4bK"));
        assert_ne!(generate_tag(), generate_tag());
        assert!(generate_call_id("10.0.0.1").ends_with("@10.0.0.1"));
    }
}
