//! The codecs a leg speaks: G.711 µ-law (PCMU) and A-law (PCMA), per
//! ITU-T G.711, here; G.722 in [`crate::g722`]; Opus in [`crate::opus`].
//! [`CodecState`] is what a leg encodes and decodes with (G.722 keeps
//! ADPCM state between frames, Opus a libopus encoder and decoder).
//!
//! Whole frames are encoded/decoded into caller-provided buffers so the media
//! path never allocates. Decoding goes through 256-entry tables built at
//! compile time (a frame decode is 160 loads); encoding computes the segment
//! from the position of the highest set bit, which is cheaper than a 64 KiB
//! table and keeps the cache free for the legs.

use crate::g722::{G722Decoder, G722Encoder};
use crate::opus::{OpusDecoder, OpusEncoder, OpusParams, MAX_OPUS_PACKET, OPUS_RATE};
use crate::MediaError;

/// µ-law bias (33 in 14-bit units, 0x84 in 16-bit), G.711 section on µ-law.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law can represent before the bias is added.
const ULAW_CLIP: i32 = 32_635;

/// An audio codec a leg can speak.
///
/// Non-exhaustive so more codecs can come; callers must handle the
/// unknown case (usually by rejecting the offer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.722 at 64 kbit/s, static payload type 9: 16 kHz audio on an
    /// 8 kHz RTP clock (RFC 3551 §4.5.2).
    G722,
    /// Opus (RFC 7587), mono 20 ms frames, 48 kHz audio on a 48 kHz RTP
    /// clock, dynamic payload type (111 unless negotiated otherwise).
    Opus,
}

impl Codec {
    /// The static payload type from RFC 3551 table 4; for Opus the
    /// dynamic one we offer (111, the number browsers use).
    pub const fn payload_type_default(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
            Codec::Opus => 111,
        }
    }

    /// The RTP clock rate (what RTP timestamps count), RFC 3551.
    pub const fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma | Codec::G722 => 8_000,
            Codec::Opus => OPUS_RATE,
        }
    }

    /// The PCM rate the codec decodes to. Equal to the clock rate for G.711;
    /// differs for G.722 (16 kHz audio on an 8 kHz RTP clock), hence separate.
    pub const fn sample_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8_000,
            Codec::G722 => 16_000,
            Codec::Opus => OPUS_RATE,
        }
    }

    /// PCM samples in a packet of `ptime_ms` milliseconds.
    pub const fn samples_per_frame(self, ptime_ms: u32) -> usize {
        (self.sample_rate() as u64 * ptime_ms as u64 / 1000) as usize
    }

    /// RTP timestamp increment for a packet of `ptime_ms` milliseconds.
    pub const fn timestamp_step(self, ptime_ms: u32) -> u32 {
        (self.clock_rate() as u64 * ptime_ms as u64 / 1000) as u32
    }

    /// Encoded bytes for `samples` PCM samples (one byte per sample for
    /// G.711, one per two for G.722); for Opus, whose rate varies, the
    /// largest frame it may send (RFC 6716 §3.2.1).
    pub const fn encoded_len(self, samples: usize) -> usize {
        match self {
            Codec::Pcmu | Codec::Pcma => samples,
            Codec::G722 => samples / 2,
            Codec::Opus => MAX_OPUS_PACKET,
        }
    }

    /// The SDP `a=rtpmap` encoding name.
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }

    /// Looks a codec up by its SDP encoding name (case-insensitive, RFC 4566).
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus]
            .into_iter()
            .find(|c| c.encoding_name().eq_ignore_ascii_case(name))
    }

    /// Encodes as many samples as fit in both buffers; returns bytes
    /// written. Stateless codecs (G.711) only: G.722 and Opus need a
    /// [`CodecState`], and get 0 here.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        // One loop per law (not a function pointer) so each inlines and
        // the compiler can vectorize it.
        let pairs = out.iter_mut().zip(pcm);
        match self {
            Codec::Pcmu => pairs.for_each(|(o, &s)| *o = ulaw_encode(s)),
            Codec::Pcma => pairs.for_each(|(o, &s)| *o = alaw_encode(s)),
            Codec::G722 | Codec::Opus => return 0,
        }
        n
    }

    /// Decodes as many bytes as fit in both buffers; returns samples
    /// written. Stateless codecs (G.711) only: G.722 and Opus get 0 here.
    pub fn decode(self, payload: &[u8], out: &mut [i16]) -> usize {
        let n = payload.len().min(out.len());
        let table = match self {
            Codec::Pcmu => &ULAW_DECODE,
            Codec::Pcma => &ALAW_DECODE,
            Codec::G722 | Codec::Opus => return 0,
        };
        for (o, &b) in out.iter_mut().zip(payload) {
            *o = table[b as usize];
        }
        n
    }
}

/// A leg's encoder and decoder. G.711 is a table; G.722 carries its
/// sub-band ADPCM state from frame to frame, one state per direction;
/// Opus a libopus encoder and decoder (both boxed: a G.711 leg should not
/// carry the others' state inline).
pub enum CodecState {
    G711(Codec),
    G722 {
        encoder: Box<G722Encoder>,
        decoder: Box<G722Decoder>,
    },
    Opus {
        encoder: Box<OpusEncoder>,
        decoder: Box<OpusDecoder>,
    },
}

impl CodecState {
    /// The state for `codec`; `opus` sets the Opus encoder (ignored by the
    /// others). Fails only if libopus cannot create its state.
    pub fn new(codec: Codec, opus: OpusParams) -> Result<CodecState, MediaError> {
        Ok(match codec {
            Codec::G722 => CodecState::G722 {
                encoder: Box::new(G722Encoder::new()),
                decoder: Box::new(G722Decoder::new()),
            },
            Codec::Opus => CodecState::Opus {
                encoder: Box::new(OpusEncoder::new(opus)?),
                decoder: Box::new(OpusDecoder::new()?),
            },
            other => CodecState::G711(other),
        })
    }

    /// Encodes a frame of PCM at the codec's sample rate; returns bytes
    /// written. 0 means nothing to send this frame (an Opus DTX frame).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self {
            CodecState::G711(codec) => codec.encode(pcm, out),
            CodecState::G722 { encoder, .. } => encoder.encode(pcm, out),
            CodecState::Opus { encoder, .. } => encoder.encode(pcm, out),
        }
    }

    /// Decodes a payload to PCM at the codec's sample rate; returns samples.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        match self {
            CodecState::G711(codec) => codec.decode(payload, out),
            CodecState::G722 { decoder, .. } => decoder.decode(payload, out),
            CodecState::Opus { decoder, .. } => decoder.decode(payload, out),
        }
    }

    /// Whether the codec conceals loss itself ([`CodecState::conceal_loss`],
    /// [`CodecState::fill_gap`]); the others get the leg's generic
    /// concealment.
    pub fn conceals(&self) -> bool {
        matches!(self, CodecState::Opus { .. })
    }

    /// A lost frame, with the packet after it if already received (Opus
    /// recovers the frame from its in-band FEC); returns samples written.
    pub fn conceal_loss(&mut self, next: Option<&[u8]>, out: &mut [i16]) -> usize {
        match self {
            CodecState::Opus { decoder, .. } => decoder.conceal_loss(next, out),
            _ => 0,
        }
    }

    /// A frame with no packet at all (DTX or underrun); returns samples
    /// written, 0 for silence.
    pub fn fill_gap(&mut self, out: &mut [i16]) -> usize {
        match self {
            CodecState::Opus { decoder, .. } => decoder.fill_gap(out),
            _ => 0,
        }
    }
}

/// Encodes one 16-bit linear sample to µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut mag = sample as i32;
    let sign = if mag < 0 {
        mag = -mag;
        0x80
    } else {
        0
    };
    let biased = mag.min(ULAW_CLIP) + ULAW_BIAS;
    // biased is in [0x84, 0x7fff]: its top bit is bit 7..=14, i.e. segment 0..=7.
    let exponent = (31 - (biased as u32).leading_zeros()) as i32 - 7;
    let mantissa = (biased >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Decodes one µ-law byte to 16-bit linear.
pub const fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let mag = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -mag as i16
    } else {
        mag as i16
    }
}

/// Encodes one 16-bit linear sample to A-law (G.711 works on 13 bits).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    let x = (sample as i32) >> 3;
    // Negative values map to one's complement magnitude, as in G.711 table 1b.
    let (mag, sign) = if x >= 0 { (x, 0x80) } else { (-x - 1, 0x00) };
    let mag = mag.min(0x0fff);
    let segment = if mag < 32 {
        0
    } else {
        (31 - (mag as u32).leading_zeros()) as i32 - 4
    };
    let mantissa = (mag >> segment.max(1)) & 0x0f;
    // Even bits are inverted on the line (the 0x55 mask) per G.711.
    ((sign | (segment << 4) | mantissa) as u8) ^ 0x55
}

/// Decodes one A-law byte to 16-bit linear.
pub const fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let segment = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0f) as i32;
    // Reconstruct at the middle of the quantisation interval, in 13-bit units.
    let mag13 = if segment == 0 {
        (mantissa << 1) + 1
    } else {
        ((mantissa << 1) + 33) << (segment - 1)
    };
    let mag = (mag13 << 3) as i16;
    if a & 0x80 != 0 {
        mag
    } else {
        -mag
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_DECODE: [i16; 256] = build_table(false);
static ALAW_DECODE: [i16; 256] = build_table(true);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        // G.711: zero is 0xFF (all ones after inversion), full scale 0x80/0x00.
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_encode(32_767), 0x80);
        assert_eq!(ulaw_encode(-32_768), 0x00);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x7f), 0);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_decode(0x00), -32_124);
        // Segment boundary: first step of segment 1.
        assert_eq!(ulaw_decode(0xef), 132);
    }

    #[test]
    fn alaw_known_values() {
        // G.711: the smallest positive value codes as 0xD5, negative as 0x55.
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_encode(32_767), 0xaa);
        assert_eq!(alaw_encode(-32_768), 0x2a);
        assert_eq!(alaw_decode(0xaa), 32_256);
        assert_eq!(alaw_decode(0x2a), -32_256);
    }

    #[test]
    fn every_code_round_trips() {
        // decode(encode(decode(c))) must be decode(c): each code is its own
        // reconstruction level.
        for c in 0..=255u8 {
            let u = ulaw_decode(c);
            assert_eq!(ulaw_decode(ulaw_encode(u)), u, "ulaw code {c:#x}");
            let a = alaw_decode(c);
            assert_eq!(alaw_encode(a), c, "alaw code {c:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        // Both laws reconstruct at the middle of a step that is 1/16 of the
        // segment start, so the error stays below |x|/32 plus the small fixed
        // steps near zero; beyond the largest code the error is the clip.
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let x = s as i32;
            let bound = x.abs() / 32 + 16;
            let u = ulaw_decode(ulaw_encode(s)) as i32;
            let u_clip = (x.abs() - 32_124).max(0);
            assert!((u - x).abs() <= bound.max(u_clip), "ulaw {s} -> {u}");
            let a = alaw_decode(alaw_encode(s)) as i32;
            let a_clip = (x.abs() - 32_256).max(0) + 8;
            assert!((a - x).abs() <= bound.max(a_clip), "alaw {s} -> {a}");
        }
    }

    #[test]
    fn frame_encode_decode_into_buffers() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16_000) as i16).collect();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut enc = [0u8; 160];
            let mut dec = [0i16; 160];
            assert_eq!(codec.encode(&pcm, &mut enc), 160);
            assert_eq!(codec.decode(&enc, &mut dec), 160);
            for (a, b) in pcm.iter().zip(dec.iter()) {
                assert!((*a as i32 - *b as i32).abs() <= 520, "{codec:?} {a} {b}");
            }
            // Short output buffer: no panic, partial count.
            assert_eq!(codec.decode(&enc, &mut dec[..10]), 10);
        }
        assert_eq!(Codec::Pcmu.samples_per_frame(20), 160);
        assert_eq!(Codec::Pcma.payload_type_default(), 8);
        assert_eq!(Codec::from_encoding_name("pcmu"), Some(Codec::Pcmu));
    }

    #[test]
    fn opus_on_the_wire_and_through_codec_state() {
        let c = Codec::Opus;
        assert_eq!(c.payload_type_default(), 111);
        assert_eq!((c.clock_rate(), c.sample_rate()), (48_000, 48_000));
        assert_eq!((c.samples_per_frame(20), c.timestamp_step(20)), (960, 960));
        assert_eq!(Codec::from_encoding_name("OPUS"), Some(Codec::Opus));
        assert_eq!(c.encoding_name(), "opus");
        // Stateless entry points do nothing for a stateful codec.
        assert_eq!(c.encode(&[0; 960], &mut [0; 960]), 0);
        let mut state = CodecState::new(c, OpusParams::default()).unwrap();
        assert!(state.conceals());
        let pcm: Vec<i16> = (0..960)
            .map(|i| (8_000.0 * (i as f64 * 0.0576).sin()) as i16)
            .collect();
        let mut payload = [0u8; 960];
        let n = state.encode(&pcm, &mut payload);
        assert!(n > 2 && n <= c.encoded_len(960), "{n}");
        let mut out = [0i16; 960];
        assert_eq!(state.decode(&payload[..n], &mut out), 960);
        assert_eq!(state.conceal_loss(None, &mut out), 960);
        // G.711 and G.722 leave concealment to the leg.
        let mut g722 = CodecState::new(Codec::G722, OpusParams::default()).unwrap();
        assert!(!g722.conceals());
        assert_eq!(g722.fill_gap(&mut out), 0);
    }
}
