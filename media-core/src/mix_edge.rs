//! A conference member's rate conversion, at the edges of the mix.
//!
//! A conference mixes at the highest rate among its members (8, 16 or 48
//! kHz). Each member's decoded frame is resampled **once** into the mix
//! rate, and the minus-one mix it hears **once** back to its own rate;
//! nothing is resampled twice and a member already at the mix rate is a
//! plain copy. Mixing at the highest rate keeps a wideband member's audio
//! wideband for the other wideband members, while a narrowband member only
//! pays for the conversion of its own stream.
//!
//! The mix rate changes while the conference runs (a 48 kHz Opus member
//! joins a room of G.711 legs, or leaves it). So that a rate change never
//! allocates on a media worker, a [`MixEdge`] is built on the control
//! thread when its leg joins, with a resampler pair for **every** mix rate
//! above the leg's own (an 8 kHz leg: 8↔16 and 8↔48 kHz; 16 kHz: 16↔48;
//! 48 kHz: none). The price is memory: up to four FFT resamplers per
//! narrowband member (at most about 100 KB), paid only while it is in a
//! conference.

use crate::frame::{samples_per_frame, MAX_FRAME_SAMPLES};
use crate::resample::Resampler;
use crate::MediaError;

/// The rates a conference can mix at, lowest first.
pub const MIX_RATES: [u32; 3] = [8_000, 16_000, 48_000];

/// Resamplers into (`up`) and out of (`down`) one mix rate.
struct Pair {
    mix_rate: u32,
    up: Resampler,
    down: Resampler,
}

/// One member's conversion state and its two leg-rate frames: what it
/// said (decoded) and what it hears (its mix, converted back).
pub struct MixEdge {
    rate: u32,
    samples: usize,
    pairs: Vec<Pair>,
    said: Box<[i16]>,
    heard: Box<[i16]>,
}

impl MixEdge {
    /// The edge of a leg decoding at `rate` (allocates: call it off the
    /// media path).
    pub fn new(rate: u32) -> Result<MixEdge, MediaError> {
        if !MIX_RATES.contains(&rate) {
            return Err(MediaError::Unsupported(format!(
                "conference member at {rate} Hz (mixing supports {MIX_RATES:?})"
            )));
        }
        let pairs = MIX_RATES
            .iter()
            .filter(|&&m| m > rate)
            .map(|&mix_rate| {
                Ok(Pair {
                    mix_rate,
                    up: Resampler::new(rate, mix_rate)?,
                    down: Resampler::new(mix_rate, rate)?,
                })
            })
            .collect::<Result<Vec<_>, MediaError>>()?;
        Ok(MixEdge {
            rate,
            samples: samples_per_frame(rate),
            pairs,
            said: vec![0; MAX_FRAME_SAMPLES].into_boxed_slice(),
            heard: vec![0; MAX_FRAME_SAMPLES].into_boxed_slice(),
        })
    }

    /// The leg's own rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Where the leg's decoded frame goes each tick (its own rate).
    pub fn said_mut(&mut self) -> &mut [i16] {
        &mut self.said[..self.samples]
    }

    /// What the leg said this tick, and what it hears (after
    /// [`MixEdge::from_mix`]), both at its own rate.
    pub fn frames(&self) -> (&[i16], &[i16]) {
        (&self.said[..self.samples], &self.heard[..self.samples])
    }

    /// Puts this tick's frame into the mixer's `input` at `mix_rate`
    /// (silence if that rate is below ours, which the conference never
    /// does, or a resampler refuses).
    pub fn into_mix(&mut self, mix_rate: u32, input: &mut [i16]) {
        let said = &self.said[..self.samples];
        if mix_rate == self.rate && input.len() == said.len() {
            input.copy_from_slice(said);
            return;
        }
        let done = self
            .pairs
            .iter_mut()
            .find(|p| p.mix_rate == mix_rate)
            .is_some_and(|p| p.up.process(said, input).is_ok());
        if !done {
            input.fill(0);
        }
    }

    /// Converts the mix this member hears (at `mix_rate`) to its own rate.
    pub fn from_mix(&mut self, mix_rate: u32, output: &[i16]) {
        let heard = &mut self.heard[..self.samples];
        if mix_rate == self.rate && output.len() == heard.len() {
            heard.copy_from_slice(output);
            return;
        }
        let done = self
            .pairs
            .iter_mut()
            .find(|p| p.mix_rate == mix_rate)
            .is_some_and(|p| p.down.process(output, heard).is_ok());
        if !done {
            heard.fill(0);
        }
    }

    /// The mix rate changed: the resamplers start afresh (their history
    /// belongs to the old rate). Allocation-free.
    pub fn reset(&mut self) {
        for p in &mut self.pairs {
            p.up.reset();
            p.down.reset();
        }
    }
}

/// The rate a conference mixes at: the highest of its members' rates, and
/// never below `floor` (the rate it was created at).
pub fn mix_rate(floor: u32, member_rates: impl Iterator<Item = u32>) -> u32 {
    member_rates.fold(floor, u32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: u32, start: usize, n: usize) -> Vec<i16> {
        (start..start + n)
            .map(|i| {
                (8_000.0 * (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin()) as i16
            })
            .collect()
    }

    fn zero_crossing_hz(x: &[i16], rate: u32) -> f32 {
        let ups = x.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        ups as f32 * rate as f32 / x.len() as f32
    }

    #[test]
    fn only_rates_above_the_legs_get_resamplers() {
        let counts: Vec<usize> = MIX_RATES
            .iter()
            .map(|&r| MixEdge::new(r).unwrap().pairs.len())
            .collect();
        assert_eq!(counts, [2, 1, 0]);
        assert!(MixEdge::new(44_100).is_err());
        assert_eq!(mix_rate(8_000, [16_000, 8_000].into_iter()), 16_000);
        assert_eq!(mix_rate(8_000, std::iter::empty()), 8_000);
    }

    #[test]
    fn a_narrowband_tone_goes_up_into_the_mix_and_back_down() {
        let mut edge = MixEdge::new(8_000).unwrap();
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let mut mix = [0i16; MAX_FRAME_SAMPLES];
        for k in 0..50 {
            edge.said_mut()
                .copy_from_slice(&tone(700.0, 8_000, k * 160, 160));
            edge.into_mix(48_000, &mut mix);
            up.extend_from_slice(&mix);
            edge.from_mix(48_000, &mix);
            down.extend_from_slice(edge.frames().1);
        }
        let hz = zero_crossing_hz(&up[4_800..], 48_000);
        assert!((hz - 700.0).abs() < 10.0, "in the mix: {hz} Hz");
        let hz = zero_crossing_hz(&down[800..], 8_000);
        assert!((hz - 700.0).abs() < 10.0, "back at 8 kHz: {hz} Hz");
        let peak = down[800..].iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((7_000..9_000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn at_the_mix_rate_the_edge_is_a_copy() {
        let mut edge = MixEdge::new(16_000).unwrap();
        let said = tone(300.0, 16_000, 0, 320);
        edge.said_mut().copy_from_slice(&said);
        let mut mix = [0i16; 320];
        edge.into_mix(16_000, &mut mix);
        assert_eq!(&mix[..], &said[..]);
        edge.from_mix(16_000, &said);
        assert_eq!(edge.frames(), (&said[..], &said[..]));
        // A rate below ours (never asked by a conference) is silence.
        edge.into_mix(8_000, &mut mix[..160]);
        assert!(mix[..160].iter().all(|&s| s == 0));
    }
}
