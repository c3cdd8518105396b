//! Session key derivation (RFC 3711 §4.3) and the AES-CM keystream
//! (§4.1.1), with a key derivation rate of 0: each master key yields its
//! session keys once, when the context is made.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::Aes128;
use hmac::Hmac;
use sha1::Sha1;

use super::{MasterKey, MASTER_SALT_LEN};

pub(super) type HmacSha1 = Hmac<Sha1>;
type Aes128Ctr = ctr::Ctr128BE<Aes128>;
type Aes128CtrCore = ctr::CtrCore<Aes128, ctr::flavors::Ctr128BE>;

/// Labels of RFC 3711 §4.3.1 (SRTP) and §4.3.2 (SRTCP).
#[derive(Clone, Copy)]
pub(super) enum Label {
    RtpEncryption = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// Length of the HMAC-SHA1 session authentication key (n_a = 160 bits).
const AUTH_KEY_LEN: usize = 20;

/// The session keys of one direction of SRTP or of SRTCP, ready to use:
/// the AES key schedule and the HMAC inner/outer states are computed here
/// once, so a packet costs a clone of each, not a re-key.
#[derive(Clone)]
pub(super) struct SessionKeys {
    pub(super) cipher: Aes128,
    pub(super) auth: HmacSha1,
    pub(super) salt: [u8; MASTER_SALT_LEN],
}

impl SessionKeys {
    /// SRTP's (labels 0–2) or SRTCP's (3–5) session keys of `master`.
    pub(super) fn derive(master: &MasterKey, rtcp: bool) -> SessionKeys {
        let (enc, auth, salt) = if rtcp {
            (Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt)
        } else {
            (Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt)
        };
        let mut k_e = [0u8; 16];
        let mut k_a = [0u8; AUTH_KEY_LEN];
        let mut k_s = [0u8; MASTER_SALT_LEN];
        derive(master, enc, &mut k_e);
        derive(master, auth, &mut k_a);
        derive(master, salt, &mut k_s);
        SessionKeys {
            cipher: Aes128::new(&k_e.into()),
            // HMAC takes keys of any length; 20 bytes cannot fail.
            auth: HmacSha1::new_from_slice(&k_a).unwrap_or_else(|_| unreachable!()),
            salt: k_s,
        }
    }

    /// XORs the AES-CM keystream for (`ssrc`, `index`) into `data`.
    pub(super) fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let iv = packet_iv(&self.salt, ssrc, index);
        keystream(&self.cipher, &iv, data);
    }
}

/// The PRF of §4.3.1 with r = 0: AES-CM under the master key with
/// IV = (master_salt XOR (label << 48)) << 16.
pub(super) fn derive(master: &MasterKey, label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(&master.salt);
    // key_id = label || r (48 bits of zero) sits in the low 56 bits of the
    // 112-bit salt: the label lands on byte 7.
    iv[7] ^= label as u8;
    out.fill(0);
    keystream(&Aes128::new(&master.key.into()), &iv, out);
}

/// IV = (k_s << 16) XOR (SSRC << 64) XOR (i << 16) (§4.1.1).
pub(super) fn packet_iv(salt: &[u8; MASTER_SALT_LEN], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, i) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= i;
    }
    iv
}

/// AES in counter mode from `iv` (a 128-bit big-endian counter), XORed in.
pub(super) fn keystream(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    // The key schedule is cloned (a copy), not recomputed.
    let core = Aes128CtrCore::inner_iv_init(cipher.clone(), iv.into());
    Aes128Ctr::from_core(core).apply_keystream(data);
}
