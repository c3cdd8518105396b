//! SDES: the `a=crypto` attribute (RFC 4568 §9.1) that carries SRTP master
//! keys in the SDP, and making fresh ones.
//!
//! Only what can be honoured is accepted: the two AES-CM-128/HMAC-SHA1
//! suites, one `inline:` key without MKI, an optional lifetime (read and
//! ignored: a call never gets near 2^31 packets), and no session
//! parameters (RFC 4568 §6.3: a line with one we do not understand must not
//! be chosen). Anything else is an error for that line, never a panic, and
//! the answerer moves on to the next line.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Key || salt length of the AES-CM-128 suites (16 + 14 bytes).
pub const KEY_SALT_LEN: usize = 30;

/// The SRTP crypto suites we speak (RFC 4568 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn from_name(name: &str) -> Option<CryptoSuite> {
        [
            CryptoSuite::AesCm128HmacSha1_80,
            CryptoSuite::AesCm128HmacSha1_32,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// Why an `a=crypto` line cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("a=crypto is not <tag> <suite> <key-params>")]
    Malformed,
    #[error("unsupported crypto suite {0}")]
    UnknownSuite(String),
    #[error("MKI in key parameters is not supported")]
    Mki,
    #[error("more than one key in a=crypto is not supported")]
    ManyKeys,
    #[error("unsupported key method or bad inline key")]
    BadKey,
    #[error("unsupported SDES session parameter {0}")]
    SessionParam(String),
    #[error("no random numbers from the OS for an SRTP key")]
    Rng,
}

/// One `a=crypto` line. `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// Identifies the line; the answer reuses the chosen offer's tag.
    pub tag: u32,
    pub suite: CryptoSuite,
    /// The master key followed by the master salt.
    pub key_salt: [u8; KEY_SALT_LEN],
}

impl fmt::Debug for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl CryptoAttribute {
    /// A line with a fresh key from the OS CSPRNG.
    pub fn generate(tag: u32, suite: CryptoSuite) -> Result<CryptoAttribute, CryptoError> {
        Ok(CryptoAttribute {
            tag,
            suite,
            key_salt: fresh_key()?,
        })
    }

    /// Parses the value of an `a=crypto` attribute (after `crypto:`).
    pub fn parse(value: &str) -> Result<CryptoAttribute, CryptoError> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(key_params)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(CryptoError::Malformed);
        };
        if let Some(param) = fields.next() {
            return Err(CryptoError::SessionParam(truncated(param)));
        }
        let tag_ok = (1..=9).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_digit());
        let tag = tag
            .parse()
            .ok()
            .filter(|_| tag_ok)
            .ok_or(CryptoError::Malformed)?;
        let suite = CryptoSuite::from_name(suite)
            .ok_or_else(|| CryptoError::UnknownSuite(truncated(suite)))?;
        if key_params.contains(';') {
            return Err(CryptoError::ManyKeys);
        }
        let info = key_params
            .strip_prefix("inline:")
            .ok_or(CryptoError::BadKey)?;
        let mut parts = info.split('|');
        let key = parts.next().unwrap_or_default();
        for extra in parts {
            if extra.contains(':') {
                return Err(CryptoError::Mki);
            }
            if !valid_lifetime(extra) {
                return Err(CryptoError::BadKey);
            }
        }
        // 40 base64 characters hold exactly 30 bytes; checking the length
        // first keeps a hostile line from making us decode megabytes.
        if key.len() != 40 {
            return Err(CryptoError::BadKey);
        }
        let bytes = STANDARD.decode(key).map_err(|_| CryptoError::BadKey)?;
        let key_salt = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(CryptoAttribute {
            tag,
            suite,
            key_salt,
        })
    }

    /// The attribute value: `<tag> <suite> inline:<base64 key||salt>`.
    pub fn value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key_salt)
        )
    }
}

/// `2^n` or a decimal packet count.
fn valid_lifetime(s: &str) -> bool {
    let digits = s.strip_prefix("2^").unwrap_or(s);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

fn truncated(s: &str) -> String {
    s.chars().take(40).collect()
}

/// 30 bytes from the OS CSPRNG (getrandom), for a key and salt.
pub fn fresh_key() -> Result<[u8; KEY_SALT_LEN], CryptoError> {
    let mut key = [0u8; KEY_SALT_LEN];
    getrandom::fill(&mut key).map_err(|_| CryptoError::Rng)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4568 §9.1's example key.
    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn parses_and_writes_inline_keys() {
        let a = CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20"))
            .unwrap();
        assert_eq!((a.tag, a.suite), (1, CryptoSuite::AesCm128HmacSha1_80));
        assert_eq!(&a.key_salt[..4], b"YS__");
        assert_eq!(a.value(), format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"));
        let b =
            CryptoAttribute::parse(&format!("  7   AES_CM_128_HMAC_SHA1_32 inline:{KEY}")).unwrap();
        assert_eq!((b.tag, b.suite), (7, CryptoSuite::AesCm128HmacSha1_32));
        assert_eq!(CryptoAttribute::parse(&b.value()).unwrap(), b);
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let bad = |v: &str| CryptoAttribute::parse(v).unwrap_err();
        assert_eq!(
            bad(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4")),
            CryptoError::Mki
        );
        assert_eq!(
            bad(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1:4")),
            CryptoError::Mki
        );
        assert!(matches!(
            bad(&format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}")),
            CryptoError::UnknownSuite(_)
        ));
        assert!(matches!(
            bad(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} KDR=1")),
            CryptoError::SessionParam(_)
        ));
        assert_eq!(
            bad(&format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}"
            )),
            CryptoError::ManyKeys
        );
        assert_eq!(
            bad("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ="),
            CryptoError::BadKey
        );
        assert_eq!(
            bad(&format!("1 AES_CM_128_HMAC_SHA1_80 uri:{KEY}")),
            CryptoError::BadKey
        );
        assert_eq!(
            bad(&format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{}",
                "!".repeat(40)
            )),
            CryptoError::BadKey
        );
        assert_eq!(
            bad(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^x")),
            CryptoError::BadKey
        );
        assert_eq!(
            bad("1234567890 AES_CM_128_HMAC_SHA1_80 inline:x"),
            CryptoError::Malformed
        );
        assert_eq!(
            bad("x AES_CM_128_HMAC_SHA1_80 inline:x"),
            CryptoError::Malformed
        );
        assert_eq!(bad("1 AES_CM_128_HMAC_SHA1_80"), CryptoError::Malformed);
        assert_eq!(bad(""), CryptoError::Malformed);
    }

    #[test]
    fn fresh_keys_differ_and_stay_out_of_debug() {
        let a = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80).unwrap();
        let b = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80).unwrap();
        assert_ne!(a.key_salt, b.key_salt);
        assert!(!format!("{a:?}").contains(&STANDARD.encode(a.key_salt)[..8]));
    }
}
