//! SIP digest authentication (RFC 3261 §22, RFC 7616 syntax, RFC 8760
//! algorithms), both sides, sans-IO.
//!
//! - **Server** ([`DigestServer`]): challenge a request with one
//!   `WWW-Authenticate`/`Proxy-Authenticate` value per offered algorithm
//!   (SHA-256 first, MD5 for old PBXs, as RFC 8760 §2.4 recommends) and
//!   verify the `Authorization` that comes back. Nonces are stateless and
//!   self-validating, so any node behind the load balancer can verify a
//!   nonce another node issued; the only state is a bounded replay map.
//! - **Client** ([`DigestClient`], [`authorize_request`]): answer a 401/407
//!   from a carrier on an outbound INVITE or REGISTER, picking the strongest
//!   algorithm offered ([`choose_challenge`]).
//!
//! Time is an input: the server takes `now: SystemTime` from the caller and
//! never reads a clock. It is wall-clock time, not `Instant`, because a nonce
//! carries its issue time to other nodes and across restarts.
//!
//! ```
//! use std::time::SystemTime;
//! use sip_stack::auth::{DigestClient, DigestServer, DigestServerConfig, Secret, UserCredentials, Verdict};
//! use sip_stack::message::Method;
//!
//! let mut server = DigestServer::new(DigestServerConfig::new("pbx.example.com", b"node secret".to_vec()));
//! let now = SystemTime::now(); // the caller's clock
//! let challenges = server.challenge(now, false); // one WWW-Authenticate value each
//!
//! let creds = UserCredentials::new("agent17", "hunter2");
//! let mut client = DigestClient::new();
//! let strongest = sip_stack::auth::choose_challenge(&challenges.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
//! let authorization = client
//!     .respond(&strongest, &Method::Invite, "sip:queue@pbx.example.com", &creds, b"")
//!     .unwrap();
//!
//! let lookup = |user: &str, _realm: &str| (user == "agent17").then(|| Secret::Password("hunter2".into()));
//! let verdict = server.verify(&Method::Invite, "sip:queue@pbx.example.com", &authorization, lookup, now);
//! assert_eq!(verdict, Verdict::Ok { username: "agent17".into() });
//! ```
//!
//! Not supported, on purpose: `qop=auth-int` on the server (it would need
//! the body, and no carrier we meet asks for it; the client does answer it),
//! `userhash`, `username*` (RFC 7616 §3.4.4), SHA-512-256.

mod client;
mod digest;
mod header;
mod server;
#[cfg(test)]
mod tests;

pub use client::{
    authorize_request, choose_challenge, with_new_branch, DigestClient, UserCredentials,
};
pub use digest::{ha1, Secret};
pub use header::{AuthLimits, Challenge, Credentials};
pub use server::{DigestServer, DigestServerConfig, Unauthorized, Verdict};

use std::fmt;

/// A digest algorithm (RFC 7616 §3.3, RFC 8760). `-sess` variants hash the
/// client nonce into HA1, so a proxy can be handed HA1 for one session only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    /// Case-insensitive, as RFC 7616 §3.3 says tokens are. `None` for
    /// algorithms we do not implement (SHA-512-256, anything new).
    pub fn parse(s: &str) -> Option<Algorithm> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    pub fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// The hash without `-sess`: which HA1 a stored secret must have.
    pub fn base(self) -> Algorithm {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
        }
    }

    /// Rank for [`choose_challenge`]: the hash decides, `-sess` does not.
    fn strength(self) -> u8 {
        match self.base() {
            Algorithm::Sha256 => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality of protection (RFC 7616 §3.3). No qop at all is RFC 2069's
/// legacy form, modelled as `Option<Qop>::None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Qop {
    Auth,
    /// Also covers the body. The client answers it; the server never offers it.
    AuthInt,
}

impl Qop {
    pub fn parse(s: &str) -> Option<Qop> {
        if s.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// Why an auth header could not be parsed or answered. Parse errors carry
/// no input text: the input is hostile and may be huge.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("auth header is {len} bytes, limit {max}")]
    TooLong { len: usize, max: usize },
    #[error("auth header has more than {max} parameters")]
    TooManyParams { max: usize },
    #[error("auth header syntax: {what} at byte {at}")]
    Syntax { at: usize, what: &'static str },
    #[error("auth header value is not UTF-8")]
    NotUtf8,
    #[error("auth scheme is not Digest")]
    NotDigest,
    #[error("auth parameter `{0}` missing")]
    Missing(&'static str),
    #[error("auth parameter `{0}` given twice")]
    Duplicate(String),
    #[error("auth parameter `{0}` has an invalid value")]
    BadValue(&'static str),
    #[error("digest algorithm not supported")]
    UnsupportedAlgorithm,
    #[error("no supported qop offered")]
    UnsupportedQop,
    #[error("no usable Digest challenge in the response")]
    NoUsableChallenge,
    #[error("status {0} is not a 401 or 407 challenge")]
    NotAChallenge(u16),
    #[error("request has no valid CSeq to bump")]
    NoCSeq,
}
