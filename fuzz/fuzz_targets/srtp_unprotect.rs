//! SRTP and SRTCP unprotect against hostile datagrams, as an SRTP leg's
//! receive path meets them: nothing may panic, a refused packet leaves
//! the buffer's length alone, and an accepted one comes back shorter by
//! the tag (and SRTCP index).
//!
//! The input is a sequence of records `[kind: u8][len: u8][len bytes]`:
//! kind bit 0 picks SRTP or SRTCP, bit 1 the 80- or 32-bit profile (each
//! profile has its own receiving context, so state carries across records),
//! bit 2 protects the record with the sender's context first, so valid
//! packets (and replays of them) reach the authenticated paths too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_core::srtp::{MasterKey, SrtpContext, SrtpProfile, SRTP_MAX_OVERHEAD};

fuzz_target!(|data: &[u8]| {
    let profiles = [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
    ];
    let key = |p| MasterKey::new(p, [0x2b; 16], [0xf0; 14]);
    let mut tx = profiles.map(|p| SrtpContext::new(&key(p)));
    let mut rx = profiles.map(|p| SrtpContext::new(&key(p)));
    let mut last: Option<(usize, bool, Vec<u8>)> = None;
    let mut rest = data;
    while let [kind, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (record, tail) = tail.split_at(n);
        rest = tail;
        let (rtcp, p) = (kind & 1 != 0, usize::from(kind & 2 != 0));
        let mut buf = [0u8; 256 + SRTP_MAX_OVERHEAD];
        buf[..n].copy_from_slice(record);
        let mut len = n;
        if kind & 4 != 0 {
            let protected = if rtcp {
                tx[p].protect_rtcp(&mut buf, n)
            } else {
                tx[p].protect_rtp(&mut buf, n)
            };
            match protected {
                Ok(m) => len = m,
                Err(_) => continue,
            }
        } else if kind & 8 != 0 {
            // Replay the last record sent through this path.
            if let Some((lp, lrtcp, bytes)) = &last {
                if (*lp, *lrtcp) == (p, rtcp) && bytes.len() <= buf.len() {
                    buf[..bytes.len()].copy_from_slice(bytes);
                    len = bytes.len();
                }
            }
        }
        last = Some((p, rtcp, buf[..len].to_vec()));
        let result = if rtcp {
            rx[p].unprotect_rtcp(&mut buf[..len])
        } else {
            rx[p].unprotect_rtp(&mut buf[..len])
        };
        if let Ok(plain) = result {
            let overhead = if rtcp { 14 } else { profiles[p].rtp_tag_len() };
            assert_eq!(plain + overhead, len);
        }
    }
});
