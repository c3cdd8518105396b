//! The digest arithmetic of RFC 7616 §3.4.1-3.4.3 (same as RFC 2617 §3.2.2
//! for MD5): HA1, HA2, the response, in lowercase hex as the RFCs print them.

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::{Algorithm, Qop};

/// What the server knows about a user. A precomputed HA1
/// (`H(username:realm:password)`) lets config hold no plain passwords; it is
/// per hash, so a server offering SHA-256 and MD5 needs both to accept both.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    Ha1 {
        md5: Option<String>,
        sha256: Option<String>,
    },
}

impl Secret {
    /// HA1 for `algorithm`'s hash, before any `-sess` step; `None` when only
    /// the other hash's HA1 was stored.
    fn base_ha1(&self, algorithm: Algorithm, username: &str, realm: &str) -> Option<String> {
        match (self, algorithm.base()) {
            (Secret::Password(p), base) => Some(ha1(base, username, realm, p)),
            (Secret::Ha1 { md5, .. }, Algorithm::Md5) => {
                md5.as_ref().map(|h| h.to_ascii_lowercase())
            }
            (Secret::Ha1 { sha256, .. }, _) => sha256.as_ref().map(|h| h.to_ascii_lowercase()),
        }
    }
}

/// Never prints the secret: configs and verdicts get logged.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Secret::Password(<redacted>)"),
            Secret::Ha1 { .. } => f.write_str("Secret::Ha1(<redacted>)"),
        }
    }
}

/// `H(username ":" realm ":" password)` with `algorithm`'s hash: what to
/// store in [`Secret::Ha1`] instead of the password.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    hash_hex(algorithm, &[username, realm, password])
}

/// The hash of the parts joined by `:`, in lowercase hex.
pub(crate) fn hash_hex(algorithm: Algorithm, parts: &[&str]) -> String {
    fn run<D: Digest>(parts: &[&str]) -> String {
        let mut d = D::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(p.as_bytes());
        }
        to_hex(&d.finalize())
    }
    match algorithm.base() {
        Algorithm::Md5 => run::<Md5>(parts),
        _ => run::<Sha256>(parts),
    }
}

/// SHA-256 of raw bytes, for nonce MACs and auth-int bodies.
pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

pub(crate) fn body_hash(algorithm: Algorithm, body: &[u8]) -> String {
    match algorithm.base() {
        Algorithm::Md5 => to_hex(&Md5::digest(body)),
        _ => to_hex(&Sha256::digest(body)),
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Everything the response hash covers besides HA1's inputs.
pub(crate) struct ResponseInput<'a> {
    pub algorithm: Algorithm,
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    /// `(qop, nc as 8 hex digits, cnonce)`, or `None` for RFC 2069.
    pub qop: Option<(Qop, &'a str, &'a str)>,
    /// Only read for auth-int.
    pub body: &'a [u8],
}

/// The `response` value, or `None` if `secret` has no HA1 for this hash.
/// RFC 2069 (no qop) with a `-sess` algorithm has no cnonce to hash, so it
/// is refused too.
pub(crate) fn response(input: &ResponseInput<'_>, secret: &Secret) -> Option<String> {
    let alg = input.algorithm;
    let mut ha1 = secret.base_ha1(alg, input.username, input.realm)?;
    if alg.is_sess() {
        let (_, _, cnonce) = input.qop?;
        ha1 = hash_hex(alg, &[&ha1, input.nonce, cnonce]);
    }
    let ha2 = match input.qop {
        Some((Qop::AuthInt, _, _)) => {
            let body = body_hash(alg, input.body);
            hash_hex(alg, &[input.method, input.uri, &body])
        }
        _ => hash_hex(alg, &[input.method, input.uri]),
    };
    Some(match input.qop {
        Some((qop, nc, cnonce)) => {
            hash_hex(alg, &[&ha1, input.nonce, nc, cnonce, qop.as_str(), &ha2])
        }
        None => hash_hex(alg, &[&ha1, input.nonce, &ha2]),
    })
}

/// Equality whose running time depends only on the lengths, so a forger
/// cannot learn a valid response byte by byte from timing.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
