//! SRTP and SRTCP (RFC 3711), sans-IO: protect and unprotect packets in
//! place, in the caller's buffer, without allocating.
//!
//! A leg that speaks SRTP holds two [`SrtpContext`]s: one keyed with our
//! master key for what we send, one keyed with the far end's for what we
//! receive. Where the master keys come from is not this module's business:
//! SDES (`a=crypto`, RFC 4568) hands them over in the SDP today; DTLS-SRTP
//! (RFC 5764) will hand over the exporter's output (client and server
//! write keys and salts) the same way, as a [`MasterKey`] per direction.
//!
//! ```
//! use media_core::srtp::{MasterKey, SrtpContext, SrtpProfile};
//! use media_core::rtp::RtpWriter;
//!
//! let key = MasterKey::new(SrtpProfile::AesCm128HmacSha1_80, [7; 16], [9; 14]);
//! let (mut tx, mut rx) = (SrtpContext::new(&key), SrtpContext::new(&key));
//! let mut buf = [0u8; 200];
//! let len = RtpWriter::new(0, 160).write(&[0xff; 160], &mut buf)?;
//! let protected = tx.protect_rtp(&mut buf, len)?; // encrypts, appends the tag
//! assert_eq!(protected, len + 10);
//! let plain = rx.unprotect_rtp(&mut buf[..protected])?; // checks, decrypts
//! assert_eq!(&buf[12..plain], &[0xff; 160][..]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is implemented, and why it looks like this
//!
//! - Profiles `AES_CM_128_HMAC_SHA1_80` and `_32` (RFC 4568 §6.2): every
//!   SDES peer has them. SRTCP always carries the 80-bit tag (RFC 3711
//!   §5.2 makes HMAC-SHA1-80 the SRTCP default; RFC 4568 keeps it for `_32`).
//! - Key derivation with a key derivation rate of 0 (RFC 3711 §4.3): the
//!   session keys are derived once per master key, so the per-packet path
//!   is one AES-CTR pass and one HMAC over a pre-keyed state.
//! - The rollover counter is estimated per SSRC (§3.3.1), and a 128-packet
//!   replay window (§3.3.2, which asks for at least 64) is kept per SSRC for
//!   SRTP and for SRTCP. A leg sees few SSRCs (its far end, a relayed
//!   stream after a transfer), so streams live in a small fixed table.
//! - State only changes after a packet authenticates: a forged or replayed
//!   packet cannot move the ROC, the window, or (in the leg) the latched
//!   remote address.
//! - Errors are values ([`SrtpError`]); nothing here panics on input.
//!
//! Not implemented: MKI, key lifetimes (a context refuses to protect past
//! 2^48 SRTP / 2^31 SRTCP packets, far beyond any call), non-zero key
//! derivation rates, AEAD_AES_128_GCM (RFC 7714).

mod context;
mod kdf;
mod leg;
mod replay;
#[cfg(test)]
mod tests;

pub use context::SrtpContext;
pub(crate) use leg::LegCrypto;

use std::fmt;

/// Bytes a protected packet may grow by: the largest tag plus the SRTCP
/// index. Buffers that are protected in place need this much spare room.
pub const SRTP_MAX_OVERHEAD: usize = 4 + 10;

/// Master key length of the AES-128 profiles (bytes).
pub const MASTER_KEY_LEN: usize = 16;

/// Master salt length (bytes).
pub const MASTER_SALT_LEN: usize = 14;

/// An SRTP protection profile (crypto suite).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.
    AesCm128HmacSha1_80,
    /// Same cipher, 32-bit SRTP tag (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl SrtpProfile {
    /// Length of the SRTP authentication tag (bytes).
    pub fn rtp_tag_len(self) -> usize {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => 10,
            SrtpProfile::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Length of the SRTCP authentication tag (bytes).
    pub fn rtcp_tag_len(self) -> usize {
        10
    }

    /// The RFC 4568 suite name.
    pub fn sdes_name(self) -> &'static str {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpProfile::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }
}

/// One direction's master key and salt (what SDES `inline:` carries, or
/// what a DTLS exporter yields for one side).
///
/// `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub profile: SrtpProfile,
    pub key: [u8; MASTER_KEY_LEN],
    pub salt: [u8; MASTER_SALT_LEN],
}

impl MasterKey {
    pub fn new(
        profile: SrtpProfile,
        key: [u8; MASTER_KEY_LEN],
        salt: [u8; MASTER_SALT_LEN],
    ) -> MasterKey {
        MasterKey { profile, key, salt }
    }

    /// From SDES' concatenated key || salt (30 bytes for the AES-128
    /// profiles); `None` for any other length.
    pub fn from_key_salt(profile: SrtpProfile, key_salt: &[u8]) -> Option<MasterKey> {
        let (key, salt) = key_salt.split_first_chunk::<MASTER_KEY_LEN>()?;
        Some(MasterKey::new(profile, *key, salt.try_into().ok()?))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// The keys of an SRTP leg: ours protects what we send; the far end's
/// unprotects what we receive. `remote: None` means SRTP is required but
/// the far end's key is not known yet (an outbound offer before its
/// answer): every inbound packet is dropped until it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpKeys {
    pub local: MasterKey,
    pub remote: Option<MasterKey>,
}

/// Why a packet was not protected or unprotected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Shorter than a header plus tag (or the header's own lengths lie).
    #[error("packet too short for SRTP/SRTCP: {0} bytes")]
    TooShort(usize),
    /// Not RTP/RTCP version 2.
    #[error("not an RTP/RTCP version 2 packet")]
    BadVersion,
    /// The authentication tag does not match: forged, corrupted, wrong key,
    /// or plain RTP where SRTP was agreed.
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// Already received, or older than the replay window.
    #[error("SRTP packet replayed or too old")]
    Replayed,
    /// The buffer has no room for the tag (and SRTCP index).
    #[error("buffer too small to protect in place: need {0} bytes")]
    BufferTooSmall(usize),
    /// No key for this direction yet.
    #[error("no SRTP key for this direction yet")]
    NoKey,
    /// The packet index space of the master key is used up, or the stream
    /// table is full of streams that cannot be forgotten safely.
    #[error("SRTP key exhausted for this stream")]
    KeyExhausted,
}
