//! Comfort noise (RFC 3389), sans-IO: the CN payload, a noise generator
//! for the receive side, and the policy that decides when the send side
//! replaces silent audio with CN updates.
//!
//! # The payload (RFC 3389 §3)
//!
//! ```text
//!  0 1 2 3 4 5 6 7   then optional spectral coefficients, one byte each
//! +-+-+-+-+-+-+-+-+
//! |0|   level     |
//! +-+-+-+-+-+-+-+-+
//! ```
//!
//! `level` is the noise's power in −dBov, 0–127, where 0 dBov is the
//! overload point of the system: here a full-scale square wave (RMS
//! 32767), so a full-scale sine is −3 dBov as the RFC's example says. The
//! spectral coefficients describe the noise's shape; RFC 3389 allows a
//! receiver to ignore them and a sender to omit them, and both are done
//! here: we play white noise at the signalled level, and send the level
//! only.
//!
//! # Receiving
//!
//! A CN packet takes a sequence number like audio does (it goes through the
//! jitter buffer, [`crate::jitter::Playout::ComfortNoise`]), so the gap it
//! opens is not loss; after it the stream is silent until the next CN
//! update or audio, and the leg fills that silence with [`NoiseGenerator`]
//! noise instead of zeros (like a DTX gap, not fed to concealment).
//!
//! # Sending ([`CnSender`])
//!
//! Audio to a peer that negotiated CN is judged frame by frame: a frame is
//! silent when its level is [`SILENCE_DBOV`] or quieter. After
//! [`HANGOVER_FRAMES`] silent frames in a row (so word endings and short
//! pauses still go as audio) a CN packet with the measured level replaces
//! the audio, then one more every [`UPDATE_FRAMES`] frames while the
//! silence lasts, nothing in between (media time runs on). The first loud
//! frame goes out as audio with the marker bit set (a new talkspurt, RFC
//! 3551 §4.1).

use crate::MediaError;

/// Frames this level or quieter (−dBov) are silence to the sender: about
/// RMS 30 of 32767, well under any speech and under most line noise.
pub const SILENCE_DBOV: u8 = 60;

/// Silent frames (20 ms each) before switching to CN: 100 ms.
pub const HANGOVER_FRAMES: u32 = 5;

/// Frames between two CN updates during a silence: 200 ms.
pub const UPDATE_FRAMES: u32 = 10;

/// Full scale for dBov: RMS of a full-scale square wave.
const OVERLOAD: f32 = 32_767.0;

/// Reads a CN payload's noise level (−dBov); spectral coefficients, if
/// any, are ignored. Errors on an empty payload.
pub fn parse_level(payload: &[u8]) -> Result<u8, MediaError> {
    match payload.first() {
        // The top bit is reserved (sent as 0); a sender that sets it still
        // means the 7-bit level.
        Some(&b) => Ok(b & 0x7f),
        None => Err(MediaError::Unsupported(
            "empty comfort noise payload".into(),
        )),
    }
}

/// Writes a level-only CN payload; returns its length (1), or 0 if `out`
/// is empty.
pub fn write_level(level: u8, out: &mut [u8]) -> usize {
    match out.first_mut() {
        Some(b) => {
            *b = level.min(127);
            1
        }
        None => 0,
    }
}

/// The level of a frame in −dBov (127 for digital silence).
pub fn level_of(pcm: &[i16]) -> u8 {
    if pcm.is_empty() {
        return 127;
    }
    let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / pcm.len() as f64).sqrt() as f32;
    if rms < 1e-3 {
        return 127;
    }
    let dbov = -20.0 * (rms / OVERLOAD).log10();
    dbov.round().clamp(0.0, 127.0) as u8
}

/// White noise at a CN level. Allocation-free; its own small PRNG
/// (xorshift32), since the noise need not be random, only unstructured.
#[derive(Clone, Debug)]
pub struct NoiseGenerator {
    state: u32,
    /// Peak of the uniform noise for the current level.
    peak: f32,
    level: u8,
}

impl Default for NoiseGenerator {
    fn default() -> Self {
        let mut g = NoiseGenerator {
            state: 0x9e37_79b9,
            peak: 0.0,
            level: 127,
        };
        g.set_level(127);
        g
    }
}

impl NoiseGenerator {
    /// Sets the level (−dBov) the noise is played at.
    pub fn set_level(&mut self, level: u8) {
        self.level = level.min(127);
        let rms = OVERLOAD * 10f32.powf(-f32::from(self.level) / 20.0);
        // Uniform noise in [-p, p] has RMS p/√3.
        self.peak = rms * 3f32.sqrt();
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    /// Fills `out` with noise at the level.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.state = x;
            let unit = (x as f32 / u32::MAX as f32) * 2.0 - 1.0;
            *s = (unit * self.peak).clamp(-32_768.0, 32_767.0) as i16;
        }
    }
}

/// What to do with one outgoing frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CnDecision {
    /// Send it as audio; `resume` when it ends a CN period (set the
    /// marker bit: a new talkspurt).
    Audio { resume: bool },
    /// Send a CN packet at this level instead of the frame.
    Update { level: u8 },
    /// Send nothing (silence between CN updates); media time runs on.
    Skip,
}

/// The send-side policy; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct CnSender {
    silent_frames: u32,
    /// In a CN period: frames since its last update.
    since_update: Option<u32>,
}

impl CnSender {
    /// Judges the next outgoing frame.
    pub fn on_frame(&mut self, pcm: &[i16]) -> CnDecision {
        let level = level_of(pcm);
        if level < SILENCE_DBOV {
            self.silent_frames = 0;
            let resume = self.since_update.take().is_some();
            return CnDecision::Audio { resume };
        }
        self.silent_frames = self.silent_frames.saturating_add(1);
        match self.since_update {
            None if self.silent_frames > HANGOVER_FRAMES => {
                self.since_update = Some(0);
                CnDecision::Update { level }
            }
            None => CnDecision::Audio { resume: false },
            Some(n) if n + 1 >= UPDATE_FRAMES => {
                self.since_update = Some(0);
                CnDecision::Update { level }
            }
            Some(n) => {
                self.since_update = Some(n + 1);
                CnDecision::Skip
            }
        }
    }

    /// Forgets the silence (the stream was interrupted: hold, DTMF, a
    /// bridge), so the next silence starts with a full hangover.
    pub fn reset(&mut self) {
        *self = CnSender::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_ignores_spectral_coefficients() {
        let mut buf = [0u8; 4];
        assert_eq!(write_level(42, &mut buf), 1);
        assert_eq!(buf[0], 42);
        assert_eq!(parse_level(&buf[..1]).unwrap(), 42);
        assert_eq!(
            parse_level(&[70, 1, 2, 3, 4]).unwrap(),
            70,
            "coefficients ignored"
        );
        assert_eq!(
            parse_level(&[0x80 | 30]).unwrap(),
            30,
            "reserved bit masked"
        );
        assert!(parse_level(&[]).is_err());
        assert_eq!(write_level(200, &mut buf), 1);
        assert_eq!(buf[0], 127, "clamped to 7 bits");
        assert_eq!(write_level(1, &mut []), 0);
    }

    #[test]
    fn levels_are_minus_dbov() {
        assert_eq!(level_of(&[0; 160]), 127);
        assert_eq!(level_of(&[32_767; 160]), 0);
        let sine: Vec<i16> = (0..160)
            .map(|i| (32_767.0 * (std::f32::consts::TAU * i as f32 / 16.0).sin()) as i16)
            .collect();
        assert_eq!(level_of(&sine), 3, "a full-scale sine is -3 dBov");
        assert_eq!(level_of(&[-328; 160]), 40);
    }

    #[test]
    fn noise_is_played_at_the_signalled_level() {
        let mut g = NoiseGenerator::default();
        let mut out = [0i16; 8_000];
        for level in [30u8, 50, 70] {
            g.set_level(level);
            g.fill(&mut out);
            let measured = level_of(&out);
            assert!(measured.abs_diff(level) <= 1, "{level} -> {measured}");
        }
        g.set_level(127);
        g.fill(&mut out);
        assert!(out.iter().all(|&s| s.abs() <= 1));
    }

    #[test]
    fn silence_becomes_cn_updates_and_speech_resumes_with_a_marker() {
        let mut tx = CnSender::default();
        let loud = [3_000i16; 160];
        let quiet = [5i16; 160];
        assert_eq!(tx.on_frame(&loud), CnDecision::Audio { resume: false });
        let hangover: Vec<_> = (0..HANGOVER_FRAMES).map(|_| tx.on_frame(&quiet)).collect();
        assert!(hangover
            .iter()
            .all(|d| *d == CnDecision::Audio { resume: false }));
        let level = level_of(&quiet);
        assert_eq!(tx.on_frame(&quiet), CnDecision::Update { level });
        for _ in 1..UPDATE_FRAMES {
            assert_eq!(tx.on_frame(&quiet), CnDecision::Skip);
        }
        assert_eq!(
            tx.on_frame(&quiet),
            CnDecision::Update { level },
            "every 200 ms"
        );
        assert_eq!(tx.on_frame(&quiet), CnDecision::Skip);
        assert_eq!(tx.on_frame(&loud), CnDecision::Audio { resume: true });
        assert_eq!(tx.on_frame(&loud), CnDecision::Audio { resume: false });
        // A short pause stays audio.
        assert_eq!(tx.on_frame(&quiet), CnDecision::Audio { resume: false });
        tx.reset();
        assert_eq!(tx.on_frame(&loud), CnDecision::Audio { resume: false });
    }
}
