//! `WWW-Authenticate`/`Proxy-Authenticate` challenges and
//! `Authorization`/`Proxy-Authorization` credentials (RFC 3261 §25.1
//! grammar, RFC 7616 §3.3-3.4): parsing with limits, and formatting.
//!
//! The parser works on bytes, so the fuzz target and the transport can feed
//! it raw input; any non-UTF-8 value is an error. It is lenient where real
//! peers differ (quoted or bare `algorithm`/`qop`/`nc`, any case in names,
//! empty list items) and strict where a mistake could authorise the wrong
//! thing (duplicate parameters, control characters, unknown algorithms).

use std::fmt::{self, Write};

use super::{Algorithm, AuthError, Qop};

/// Bounds on one auth header value. The defaults fit any real challenge or
/// credentials (about 400 bytes and 11 parameters) many times over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthLimits {
    pub max_len: usize,
    pub max_params: usize,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            max_len: 4096,
            max_params: 32,
        }
    }
}

/// One `name=value` after unquoting. `name` is lowercased.
#[derive(Debug)]
struct Param {
    name: String,
    value: String,
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_lws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits `Digest a=b, c="d"` into unquoted params; the scheme must be
/// Digest. Duplicates and control characters are errors.
fn parse_params(input: &[u8], limits: &AuthLimits) -> Result<Vec<Param>, AuthError> {
    if input.len() > limits.max_len {
        return Err(AuthError::TooLong {
            len: input.len(),
            max: limits.max_len,
        });
    }
    let mut i = skip(input, 0, is_lws);
    let scheme_end = skip(input, i, is_token_byte);
    if !input[i..scheme_end].eq_ignore_ascii_case(b"Digest") {
        return Err(AuthError::NotDigest);
    }
    i = scheme_end;
    if i < input.len() && !is_lws(input[i]) {
        return Err(AuthError::Syntax {
            at: i,
            what: "expected space after scheme",
        });
    }
    let mut params: Vec<Param> = Vec::new();
    loop {
        i = skip(input, i, |b| is_lws(b) || b == b',');
        if i >= input.len() {
            return Ok(params);
        }
        let name_end = skip(input, i, is_token_byte);
        if name_end == i {
            return Err(AuthError::Syntax {
                at: i,
                what: "expected parameter name",
            });
        }
        let name = String::from_utf8_lossy(&input[i..name_end]).to_ascii_lowercase();
        i = skip(input, name_end, is_lws);
        if input.get(i) != Some(&b'=') {
            return Err(AuthError::Syntax {
                at: i,
                what: "expected `=`",
            });
        }
        i = skip(input, i + 1, is_lws);
        let (raw, next) = if input.get(i) == Some(&b'"') {
            quoted_string(input, i)?
        } else {
            let end = skip(input, i, |b| b.is_ascii_graphic() && b != b',' && b != b'"');
            if end == i {
                return Err(AuthError::Syntax {
                    at: i,
                    what: "expected parameter value",
                });
            }
            (input[i..end].to_vec(), end)
        };
        i = skip(input, next, is_lws);
        if i < input.len() && input[i] != b',' {
            return Err(AuthError::Syntax {
                at: i,
                what: "expected `,`",
            });
        }
        if params.iter().any(|p| p.name == name) {
            return Err(AuthError::Duplicate(name));
        }
        if params.len() >= limits.max_params {
            return Err(AuthError::TooManyParams {
                max: limits.max_params,
            });
        }
        let value = String::from_utf8(raw).map_err(|_| AuthError::NotUtf8)?;
        params.push(Param { name, value });
    }
}

fn skip(input: &[u8], mut i: usize, pred: impl Fn(u8) -> bool) -> usize {
    while i < input.len() && pred(input[i]) {
        i += 1;
    }
    i
}

/// Reads a quoted-string starting at the opening quote; returns the
/// unescaped bytes and the index after the closing quote. qdtext excludes
/// controls but HTAB (RFC 3261 §25.1); quoted-pair allows most of them
/// escaped, but no auth parameter needs one, so we refuse those too.
fn quoted_string(input: &[u8], start: usize) -> Result<(Vec<u8>, usize), AuthError> {
    let mut out = Vec::new();
    let mut i = start + 1;
    while let Some(&b) = input.get(i) {
        match b {
            b'"' => return Ok((out, i + 1)),
            b'\\' => match input.get(i + 1) {
                Some(&e) if !e.is_ascii_control() || e == b'\t' => {
                    out.push(e);
                    i += 2;
                    continue;
                }
                _ => {
                    return Err(AuthError::Syntax {
                        at: i,
                        what: "bad escape in quoted string",
                    })
                }
            },
            b if (b < 0x20 && b != b'\t') || b == 0x7f => {
                return Err(AuthError::Syntax {
                    at: i,
                    what: "control character in quoted string",
                })
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Err(AuthError::Syntax {
        at: start,
        what: "unterminated quoted string",
    })
}

/// Moves the named values out of the parsed list.
fn take(params: &mut [Param], name: &str) -> Option<String> {
    params
        .iter_mut()
        .find(|p| p.name == name)
        .map(|p| std::mem::take(&mut p.value))
}

fn algorithm(params: &mut [Param]) -> Result<Algorithm, AuthError> {
    match take(params, "algorithm") {
        // RFC 7616 §3.3: absent means MD5.
        None => Ok(Algorithm::Md5),
        Some(a) => Algorithm::parse(&a).ok_or(AuthError::UnsupportedAlgorithm),
    }
}

/// A digest challenge, as found in `WWW-Authenticate` or `Proxy-Authenticate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The qop options we understand, in the server's order; empty means
    /// RFC 2069 (no qop parameter at all).
    pub qop: Vec<Qop>,
    /// Offered qop options we don't understand, so a client can tell
    /// "RFC 2069" from "only unknown options" and refuse the latter.
    pub unknown_qop: bool,
    pub stale: bool,
}

impl Challenge {
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        Self::parse_bytes(value.as_bytes(), &AuthLimits::default())
    }

    pub fn parse_bytes(value: &[u8], limits: &AuthLimits) -> Result<Challenge, AuthError> {
        let mut params = parse_params(value, limits)?;
        let realm = take(&mut params, "realm").ok_or(AuthError::Missing("realm"))?;
        let nonce = take(&mut params, "nonce").ok_or(AuthError::Missing("nonce"))?;
        let algorithm = algorithm(&mut params)?;
        let mut qop = Vec::new();
        let mut unknown_qop = false;
        if let Some(list) = take(&mut params, "qop") {
            for opt in list.split(',').map(str::trim) {
                match Qop::parse(opt) {
                    Some(q) if !qop.contains(&q) => qop.push(q),
                    Some(_) => {}
                    None => unknown_qop = true,
                }
            }
        }
        let stale = take(&mut params, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(Challenge {
            realm,
            nonce,
            opaque: take(&mut params, "opaque"),
            algorithm,
            qop,
            unknown_qop,
            stale,
        })
    }
}

/// `Digest realm="…", nonce="…", [opaque="…",] algorithm=…, [qop="…",] [stale=true]`.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest realm=")?;
        quote(f, &self.realm)?;
        f.write_str(", nonce=")?;
        quote(f, &self.nonce)?;
        if let Some(o) = &self.opaque {
            f.write_str(", opaque=")?;
            quote(f, o)?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if !self.qop.is_empty() {
            let list: Vec<_> = self.qop.iter().map(|q| q.as_str()).collect();
            write!(f, ", qop=\"{}\"", list.join(","))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// Digest credentials, as found in `Authorization` or `Proxy-Authorization`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// Lowercase hex, as the RFCs write it (uppercase input is folded).
    pub response: String,
    pub algorithm: Algorithm,
    pub opaque: Option<String>,
    /// `(qop, nc, cnonce)`: all three or none (RFC 7616 §3.4).
    pub qop: Option<(Qop, u32, String)>,
}

impl Credentials {
    pub fn parse(value: &str) -> Result<Credentials, AuthError> {
        Self::parse_bytes(value.as_bytes(), &AuthLimits::default())
    }

    pub fn parse_bytes(value: &[u8], limits: &AuthLimits) -> Result<Credentials, AuthError> {
        let mut params = parse_params(value, limits)?;
        let mut need = |name: &'static str| take(&mut params, name).ok_or(AuthError::Missing(name));
        let username = need("username")?;
        let realm = need("realm")?;
        let nonce = need("nonce")?;
        let uri = need("uri")?;
        let response = need("response")?.to_ascii_lowercase();
        if response.is_empty() || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::BadValue("response"));
        }
        let algorithm = algorithm(&mut params)?;
        let qop = match (
            take(&mut params, "qop"),
            take(&mut params, "nc"),
            take(&mut params, "cnonce"),
        ) {
            (None, None, None) => None,
            (Some(q), Some(nc), Some(cnonce)) => {
                let q = Qop::parse(&q).ok_or(AuthError::BadValue("qop"))?;
                if cnonce.is_empty() {
                    return Err(AuthError::BadValue("cnonce"));
                }
                Some((q, parse_nc(&nc)?, cnonce))
            }
            (None, _, _) => return Err(AuthError::Missing("qop")),
            (_, None, _) => return Err(AuthError::Missing("nc")),
            (_, _, None) => return Err(AuthError::Missing("cnonce")),
        };
        Ok(Credentials {
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            opaque: take(&mut params, "opaque"),
            qop,
        })
    }
}

/// `nc` is exactly 8 hex digits (RFC 7616 §3.4: 8LHEX).
fn parse_nc(s: &str) -> Result<u32, AuthError> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::BadValue("nc"));
    }
    u32::from_str_radix(s, 16).map_err(|_| AuthError::BadValue("nc"))
}

/// RFC 7616 §3.4 spelling: algorithm, qop and nc bare, the rest quoted.
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in [
            ("Digest username=", &self.username),
            (", realm=", &self.realm),
            (", nonce=", &self.nonce),
            (", uri=", &self.uri),
            (", response=", &self.response),
        ] {
            f.write_str(name)?;
            quote(f, value)?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if let Some((qop, nc, cnonce)) = &self.qop {
            f.write_str(", cnonce=")?;
            quote(f, cnonce)?;
            write!(f, ", qop={}, nc={nc:08x}", qop.as_str())?;
        }
        if let Some(o) = &self.opaque {
            f.write_str(", opaque=")?;
            quote(f, o)?;
        }
        Ok(())
    }
}

/// Writes a quoted-string. `"` and `\` are escaped; ASCII control
/// characters but HTAB cannot be escaped in SIP (quoted-pair excludes CR/LF)
/// and are dropped, so no value can inject a header line. The parser
/// refuses them too, so parse → format → parse is exact.
fn quote(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                f.write_char('\\')?;
                f.write_char(c)?;
            }
            c if c.is_ascii_control() && c != '\t' => {}
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}
