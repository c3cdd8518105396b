//! The latency probe carried in every RTP payload.
//!
//! A probe is 45 bytes at the start of a 160-byte PCMU payload. Each byte
//! carries one 4-bit nibble as `0xE0 | nibble`, so every probe byte is a
//! non-zero µ-law code (0xE0..=0xEF: small positive samples, never 0x7F or
//! 0xFF, the two codes for zero that a decoder may normalize). Any correct
//! G.711 decoder followed by an encoder maps those codes back to themselves,
//! so the probe survives a pass-through bridge *and* a µ-law decode and
//! re-encode. The rest of the payload is a fixed non-zero pattern
//! (0xF0..=0xFE, quiet noise).
//!
//! Nibbles, most significant first: magic (4), run id (4), direction (1),
//! call index (8), sequence (8), send time in ns since the run's start on a
//! monotonic clock (16), Fletcher-16 of everything before it (4).

/// PCMU payload length of a 20 ms packet.
pub const PAYLOAD_LEN: usize = 160;
/// Bytes of the payload the probe occupies.
pub const PROBE_LEN: usize = 45;
const BASE: u8 = 0xE0;
const MAGIC: [u8; 4] = [0xB, 0xE, 0x4, 0xC];

/// Which way a packet travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// Sent by the calling leg (the tool's UAC), received by the called leg.
    AToB = 0,
    /// Sent by the called leg (the tool's UAS), received by the calling leg.
    BToA = 1,
}

impl Dir {
    pub const ALL: [Dir; 2] = [Dir::AToB, Dir::BToA];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            Dir::AToB => "A->B",
            Dir::BToA => "B->A",
        }
    }
}

/// What one probe says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub run: u16,
    pub call: u32,
    pub dir: Dir,
    pub seq: u32,
    pub send_ns: u64,
}

fn push(nibbles: &mut [u8; PROBE_LEN], at: &mut usize, value: u64, count: usize) {
    for i in (0..count).rev() {
        nibbles[*at] = ((value >> (4 * i)) & 0xF) as u8;
        *at += 1;
    }
}

/// Fletcher-16 over nibbles. The sums are reduced mod 255 once at the end
/// rather than at every step (the same value: a probe's 41 nibbles cannot
/// overflow a u32), since the sender computes one per packet.
fn fletcher16(nibbles: &[u8]) -> u16 {
    let (mut a, mut b) = (0u32, 0u32);
    for &n in nibbles {
        a += u32::from(n);
        b += a;
    }
    (((b % 255) as u16) << 8) | (a % 255) as u16
}

impl Probe {
    /// Writes the probe and the filler into a 160-byte payload.
    pub fn encode(&self, out: &mut [u8; PAYLOAD_LEN]) {
        let mut n = [0u8; PROBE_LEN];
        let mut at = 0;
        for m in MAGIC {
            n[at] = m;
            at += 1;
        }
        push(&mut n, &mut at, u64::from(self.run), 4);
        push(&mut n, &mut at, self.dir as u64, 1);
        push(&mut n, &mut at, u64::from(self.call), 8);
        push(&mut n, &mut at, u64::from(self.seq), 8);
        push(&mut n, &mut at, self.send_ns, 16);
        let check = fletcher16(&n[..at]);
        push(&mut n, &mut at, u64::from(check), 4);
        debug_assert_eq!(at, PROBE_LEN);
        for (o, nib) in out.iter_mut().zip(n) {
            *o = BASE | nib;
        }
        fill(&mut out[PROBE_LEN..]);
    }

    /// Reads a probe back; `None` for anything that is not an intact probe.
    pub fn decode(payload: &[u8]) -> Option<Probe> {
        let bytes = payload.get(..PROBE_LEN)?;
        let mut n = [0u8; PROBE_LEN];
        for (d, &b) in n.iter_mut().zip(bytes) {
            if b & 0xF0 != BASE {
                return None;
            }
            *d = b & 0x0F;
        }
        if n[..4] != MAGIC {
            return None;
        }
        let read = |from: usize, count: usize| {
            n[from..from + count]
                .iter()
                .fold(0u64, |acc, &x| (acc << 4) | u64::from(x))
        };
        let check = read(41, 4) as u16;
        if fletcher16(&n[..41]) != check {
            return None;
        }
        let dir = match read(8, 1) {
            0 => Dir::AToB,
            1 => Dir::BToA,
            _ => return None,
        };
        Some(Probe {
            run: read(4, 4) as u16,
            dir,
            call: read(9, 8) as u32,
            seq: read(17, 8) as u32,
            send_ns: read(25, 16),
        })
    }
}

/// The fixed filler after the probe: 0xF0..=0xFE repeating. Built once at
/// compile time: the sender writes it into every packet, and a per-byte
/// modulo there was a measurable share of the sender's time.
const FILLER: [u8; PAYLOAD_LEN - PROBE_LEN] = {
    let mut f = [0u8; PAYLOAD_LEN - PROBE_LEN];
    let mut i = 0;
    while i < f.len() {
        f[i] = 0xF0 | (i % 15) as u8;
        i += 1;
    }
    f
};

fn fill(out: &mut [u8]) {
    out.copy_from_slice(&FILLER[..out.len()]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_core::codec::{ulaw_decode, ulaw_encode};
    use media_core::Codec;

    fn sample() -> Probe {
        Probe {
            run: 0xBEEF,
            call: 123_456,
            dir: Dir::BToA,
            seq: 0xFFFF_FFFE,
            send_ns: 0x0123_4567_89AB_CDEF,
        }
    }

    #[test]
    fn round_trips() {
        let mut buf = [0u8; PAYLOAD_LEN];
        for p in [
            sample(),
            Probe {
                run: 0,
                call: 0,
                dir: Dir::AToB,
                seq: 0,
                send_ns: 0,
            },
        ] {
            p.encode(&mut buf);
            assert_eq!(Probe::decode(&buf), Some(p));
        }
    }

    #[test]
    fn fletcher_matches_the_stepwise_definition() {
        let stepwise = |n: &[u8]| {
            let (mut a, mut b) = (0u16, 0u16);
            for &x in n {
                a = (a + u16::from(x)) % 255;
                b = (b + a) % 255;
            }
            (b << 8) | a
        };
        let mut n = [0u8; 41];
        for round in 0..200u32 {
            for (i, x) in n.iter_mut().enumerate() {
                *x = ((round.wrapping_mul(2_654_435_761) >> (i % 28)) & 0xF) as u8;
            }
            assert_eq!(fletcher16(&n), stepwise(&n));
        }
        assert_eq!(fletcher16(&[0xF; 41]), stepwise(&[0xF; 41]));
    }

    #[test]
    fn never_uses_the_zero_codes() {
        let mut buf = [0u8; PAYLOAD_LEN];
        sample().encode(&mut buf);
        assert!(buf.iter().all(|&b| b != 0x7F && b != 0xFF));
    }

    #[test]
    fn survives_ulaw_decode_and_reencode() {
        let mut buf = [0u8; PAYLOAD_LEN];
        sample().encode(&mut buf);
        // Frame-wise, as a transcoding bridge does it.
        let mut pcm = [0i16; PAYLOAD_LEN];
        assert_eq!(Codec::Pcmu.decode(&buf, &mut pcm), PAYLOAD_LEN);
        let mut again = [0u8; PAYLOAD_LEN];
        assert_eq!(Codec::Pcmu.encode(&pcm, &mut again), PAYLOAD_LEN);
        assert_eq!(again, buf);
        assert_eq!(Probe::decode(&again), Some(sample()));
        // Sample-wise, every code the probe and filler can use.
        for b in 0xE0..=0xFEu8 {
            assert_eq!(ulaw_encode(ulaw_decode(b)), b, "code {b:#04x}");
        }
    }

    #[test]
    fn rejects_damage() {
        let mut buf = [0u8; PAYLOAD_LEN];
        sample().encode(&mut buf);
        for i in 0..PROBE_LEN {
            let mut bad = buf;
            bad[i] ^= 0x01;
            assert_eq!(Probe::decode(&bad), None, "flipped nibble {i}");
        }
        assert_eq!(Probe::decode(&[0xFFu8; PAYLOAD_LEN]), None);
        assert_eq!(Probe::decode(&buf[..10]), None);
    }
}
