//! Fixed-ratio resampling of whole 20 ms frames, wrapping rubato's FFT
//! resampler.
//!
//! Media legs and taps run at different rates (8 kHz G.711, 16 kHz for ASR,
//! 48 kHz for Opus later). A synchronous FFT resampler with both chunk sizes
//! fixed turns one frame into exactly one frame, which is what a 20 ms tick
//! needs; its scratch buffers are allocated in [`Resampler::new`], so
//! [`Resampler::process`] does not allocate. Equal rates are a plain copy.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use crate::frame::samples_per_frame;
use crate::MediaError;

/// Resamples one 20 ms mono i16 frame from `from_rate` to `to_rate` per call.
pub struct Resampler {
    from_rate: u32,
    to_rate: u32,
    input_len: usize,
    output_len: usize,
    fft: Option<FftState>,
}

struct FftState {
    inner: Box<Fft<f32>>,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from_rate", &self.from_rate)
            .field("to_rate", &self.to_rate)
            .finish()
    }
}

impl Resampler {
    /// A resampler for 20 ms frames between two rates.
    pub fn new(from_rate: u32, to_rate: u32) -> Result<Resampler, MediaError> {
        let input_len = samples_per_frame(from_rate);
        let output_len = samples_per_frame(to_rate);
        let err = |reason: String| MediaError::Resampler {
            from: from_rate,
            to: to_rate,
            reason,
        };
        if input_len == 0 || output_len == 0 {
            return Err(err("rate too low for a 20 ms frame".into()));
        }
        let fft = if from_rate == to_rate {
            None
        } else {
            let inner = Fft::<f32>::new(
                from_rate as usize,
                to_rate as usize,
                input_len,
                1,
                FixedSync::Both,
            )
            .map_err(|e| err(e.to_string()))?;
            // With both sides fixed rubato may round the chunk; a frame must
            // map to exactly one frame or ticks would drift.
            if inner.input_frames_next() != input_len || inner.output_frames_next() != output_len {
                return Err(err(format!(
                    "chunk {}->{} is not one 20 ms frame ({input_len}->{output_len})",
                    inner.input_frames_next(),
                    inner.output_frames_next()
                )));
            }
            Some(FftState {
                inner: Box::new(inner),
                input: vec![0.0; input_len],
                output: vec![0.0; output_len],
            })
        };
        Ok(Resampler {
            from_rate,
            to_rate,
            input_len,
            output_len,
            fft,
        })
    }

    /// Samples expected per call (one frame at the input rate).
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Samples produced per call (one frame at the output rate).
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Latency added, in output samples (half an FFT block for rubato's FFT
    /// resampler; zero for a copy).
    pub fn delay_samples(&self) -> usize {
        self.fft.as_ref().map_or(0, |f| f.inner.output_delay())
    }

    /// Forgets the audio of past frames (the filter's history), as a new
    /// stream would start. Allocation-free.
    pub fn reset(&mut self) {
        if let Some(f) = self.fft.as_mut() {
            f.inner.reset();
        }
    }

    /// Resamples one frame: `input` must hold [`Self::input_len`] samples and
    /// `output` at least [`Self::output_len`]; returns samples written.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<usize, MediaError> {
        if input.len() != self.input_len || output.len() < self.output_len {
            return Err(MediaError::FrameSize {
                expected: self.input_len,
                got: input.len(),
            });
        }
        let out = &mut output[..self.output_len];
        let Some(f) = self.fft.as_mut() else {
            out.copy_from_slice(input);
            return Ok(self.output_len);
        };
        for (d, &s) in f.input.iter_mut().zip(input) {
            *d = s as f32 / 32_768.0;
        }
        let err = |e: &dyn std::fmt::Display| MediaError::Resampler {
            from: self.from_rate,
            to: self.to_rate,
            reason: e.to_string(),
        };
        let inbuf = InterleavedSlice::new(&f.input[..], 1, self.input_len).map_err(|e| err(&e))?;
        let mut outbuf = InterleavedSlice::new_mut(&mut f.output[..], 1, self.output_len)
            .map_err(|e| err(&e))?;
        f.inner
            .process_into_buffer(&inbuf, &mut outbuf, None)
            .map_err(|e| err(&e))?;
        for (d, &s) in out.iter_mut().zip(f.output.iter()) {
            *d = to_i16(s);
        }
        Ok(self.output_len)
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32_768.0)
        .round()
        .clamp(i16::MIN as f32, i16::MAX as f32) as i16
}

/// Resamples a whole clip (a prompt file at leg creation; allocates, so not
/// for the media path). The resampler's start-up delay is trimmed.
pub fn resample_clip(
    samples: &[i16],
    from_rate: u32,
    to_rate: u32,
) -> Result<Vec<i16>, MediaError> {
    if from_rate == to_rate || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let err = |e: &dyn std::fmt::Display| MediaError::Resampler {
        from: from_rate,
        to: to_rate,
        reason: e.to_string(),
    };
    let mut fft = Fft::<f32>::new(
        from_rate as usize,
        to_rate as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|e| err(&e))?;
    let input: Vec<f32> = samples.iter().map(|&s| s as f32 / 32_768.0).collect();
    let mut output = vec![0.0f32; fft.process_all_needed_output_len(input.len())];
    let inbuf = InterleavedSlice::new(&input[..], 1, input.len()).map_err(|e| err(&e))?;
    let frames = output.len();
    let mut outbuf = InterleavedSlice::new_mut(&mut output[..], 1, frames).map_err(|e| err(&e))?;
    let (_, produced) = fft
        .process_all_into_buffer(&inbuf, &mut outbuf, input.len(), None)
        .map_err(|e| err(&e))?;
    Ok(output[..produced.min(frames)]
        .iter()
        .map(|&s| to_i16(s))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: u32, n: usize, amp: f32) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()) as i16
            })
            .collect()
    }

    /// Frequency from the count of upward zero crossings.
    pub(crate) fn zero_crossing_hz(x: &[i16], rate: u32) -> f32 {
        let ups = x.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        ups as f32 * rate as f32 / x.len() as f32
    }

    #[test]
    fn frame_sizes() {
        for (from, to, i, o) in [
            (8_000, 16_000, 160, 320),
            (16_000, 8_000, 320, 160),
            (48_000, 16_000, 960, 320),
            (16_000, 16_000, 320, 320),
        ] {
            let r = Resampler::new(from, to).unwrap();
            assert_eq!((r.input_len(), r.output_len()), (i, o), "{from}->{to}");
        }
        let mut r = Resampler::new(8_000, 16_000).unwrap();
        let mut out = [0i16; 320];
        assert!(r.process(&[0; 100], &mut out).is_err());
        assert!(r.process(&[0; 160], &mut out[..10]).is_err());
        assert_eq!(r.process(&[0; 160], &mut out).unwrap(), 320);
    }

    #[test]
    fn one_khz_stays_one_khz() {
        let input = tone(1_000.0, 8_000, 160 * 50, 10_000.0);
        let mut r = Resampler::new(8_000, 16_000).unwrap();
        let mut output = Vec::new();
        let mut frame = [0i16; 320];
        for chunk in input.chunks_exact(160) {
            r.process(chunk, &mut frame).unwrap();
            output.extend_from_slice(&frame);
        }
        // Skip the resampler's start-up delay, then measure.
        let steady = &output[r.delay_samples() + 320..];
        let hz = zero_crossing_hz(steady, 16_000);
        assert!((hz - 1_000.0).abs() < 10.0, "measured {hz} Hz");
        let peak = steady.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((9_000..11_000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn clip_resampling_keeps_length_and_pitch() {
        let input = tone(440.0, 44_100, 44_100, 8_000.0);
        let out = resample_clip(&input, 44_100, 8_000).unwrap();
        assert!((out.len() as i64 - 8_000).abs() < 100, "len {}", out.len());
        let hz = zero_crossing_hz(&out[400..7_600], 8_000);
        assert!((hz - 440.0).abs() < 5.0, "measured {hz} Hz");
    }
}
