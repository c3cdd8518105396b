//! What a leg sends: silence, a tone cadence, or a WAV prompt, produced one
//! 20 ms frame at a time.
//!
//! WAV files are decoded (and resampled to the leg rate) once at leg
//! creation, on the control thread, so the worker only copies samples.
//! Tones are synthesised per frame with a phase accumulator so cadences stay
//! click-free and exact over hours.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::resample::resample_clip;
use crate::MediaError;

/// Longest prompt file accepted, in seconds, to bound per-leg memory.
pub const MAX_PROMPT_SECONDS: u32 = 600;

/// The audio a leg plays to the far end.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    Silence,
    /// A sine cadence: `on_ms` of tone then `off_ms` of silence, repeated.
    /// `off_ms == 0` is a continuous tone (e.g. 1 kHz test tone).
    Tone {
        freq_hz: f32,
        on_ms: u32,
        off_ms: u32,
        amplitude: i16,
    },
    /// A 16-bit PCM WAV file (mixed to mono, resampled to the leg rate).
    Wav {
        path: PathBuf,
        looped: bool,
    },
}

/// Generates a [`Prompt`] frame by frame.
#[derive(Debug)]
pub struct PromptPlayer {
    source: Source,
}

#[derive(Debug)]
enum Source {
    Silence,
    Tone {
        /// Phase in cycles, kept in [0, 1) so precision never degrades.
        phase: f64,
        step: f64,
        amplitude: f64,
        on: u64,
        period: u64,
        pos: u64,
    },
    Clip {
        samples: Arc<[i16]>,
        pos: usize,
        looped: bool,
    },
}

impl PromptPlayer {
    /// Prepares `prompt` for a leg running at `rate` Hz (loads WAV files).
    pub fn new(prompt: &Prompt, rate: u32) -> Result<PromptPlayer, MediaError> {
        let source = match prompt {
            Prompt::Silence => Source::Silence,
            Prompt::Tone {
                freq_hz,
                on_ms,
                off_ms,
                amplitude,
            } => {
                if !(freq_hz.is_finite() && *freq_hz > 0.0 && *freq_hz < rate as f32 / 2.0) {
                    return Err(MediaError::Unsupported(format!(
                        "tone of {freq_hz} Hz at a {rate} Hz sample rate"
                    )));
                }
                let on = *on_ms as u64 * rate as u64 / 1000;
                let off = *off_ms as u64 * rate as u64 / 1000;
                Source::Tone {
                    phase: 0.0,
                    step: *freq_hz as f64 / rate as f64,
                    amplitude: *amplitude as f64,
                    on,
                    period: if off == 0 { 0 } else { on + off },
                    pos: 0,
                }
            }
            Prompt::Wav { path, looped } => Source::Clip {
                samples: load_wav(path, rate)?.into(),
                pos: 0,
                looped: *looped,
            },
        };
        Ok(PromptPlayer { source })
    }

    /// True once a non-looped file has played to its end (then silence).
    pub fn finished(&self) -> bool {
        match &self.source {
            Source::Clip {
                samples,
                pos,
                looped,
            } => !looped && *pos >= samples.len(),
            _ => false,
        }
    }

    /// Fills `out` with the next samples.
    pub fn next_frame(&mut self, out: &mut [i16]) {
        match &mut self.source {
            Source::Silence => out.fill(0),
            Source::Tone {
                phase,
                step,
                amplitude,
                on,
                period,
                pos,
            } => {
                for o in out.iter_mut() {
                    let in_cadence = if *period == 0 { *pos } else { *pos % *period };
                    if *period != 0 && in_cadence == 0 {
                        *phase = 0.0; // each burst starts at zero crossing
                    }
                    *o = if *period == 0 || in_cadence < *on {
                        let v = *amplitude * (std::f64::consts::TAU * *phase).sin();
                        *phase = (*phase + *step).fract();
                        v as i16
                    } else {
                        0
                    };
                    *pos = pos.wrapping_add(1);
                }
            }
            Source::Clip {
                samples,
                pos,
                looped,
            } => {
                let mut filled = 0;
                while filled < out.len() {
                    if *pos >= samples.len() {
                        if *looped && !samples.is_empty() {
                            *pos = 0;
                        } else {
                            break;
                        }
                    }
                    let n = (samples.len() - *pos).min(out.len() - filled);
                    out[filled..filled + n].copy_from_slice(&samples[*pos..*pos + n]);
                    filled += n;
                    *pos += n;
                }
                out[filled..].fill(0);
            }
        }
    }
}

/// Reads a 16-bit integer PCM WAV, mixes it to mono and resamples it to
/// `rate`. Runs at leg creation (allocates, does file I/O).
pub fn load_wav(path: &Path, rate: u32) -> Result<Vec<i16>, MediaError> {
    let wav_err = |source| MediaError::Wav {
        path: path.to_owned(),
        source,
    };
    let format_err = |reason: String| MediaError::WavFormat {
        path: path.to_owned(),
        reason,
    };
    let mut reader = hound::WavReader::open(path).map_err(wav_err)?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(format_err(format!(
            "{:?} {}-bit samples; only 16-bit PCM is supported",
            spec.sample_format, spec.bits_per_sample
        )));
    }
    let channels = spec.channels.max(1) as usize;
    let frames = reader.duration() as u64;
    if frames > MAX_PROMPT_SECONDS as u64 * spec.sample_rate as u64 {
        return Err(format_err(format!("longer than {MAX_PROMPT_SECONDS} s")));
    }
    let mut mono = Vec::with_capacity(frames as usize);
    let mut acc = 0i32;
    for (i, s) in reader.samples::<i16>().enumerate() {
        acc += s.map_err(wav_err)? as i32;
        if (i + 1) % channels == 0 {
            mono.push((acc / channels as i32) as i16);
            acc = 0;
        }
    }
    resample_clip(&mono, spec.sample_rate, rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_zero() {
        let mut p = PromptPlayer::new(&Prompt::Silence, 8_000).unwrap();
        let mut f = [1i16; 160];
        p.next_frame(&mut f);
        assert!(f.iter().all(|&s| s == 0));
    }

    #[test]
    fn tone_cadence_has_on_and_off_parts() {
        let prompt = Prompt::Tone {
            freq_hz: 400.0,
            on_ms: 40,
            off_ms: 20,
            amplitude: 8_000,
        };
        let mut p = PromptPlayer::new(&prompt, 8_000).unwrap();
        let mut frames = [[0i16; 160]; 6];
        for f in frames.iter_mut() {
            p.next_frame(f);
        }
        let energy = |f: &[i16]| f.iter().map(|&s| (s as i64).pow(2)).sum::<i64>();
        assert!(energy(&frames[0]) > 0 && energy(&frames[1]) > 0);
        assert_eq!(energy(&frames[2]), 0);
        assert!(energy(&frames[3]) > 0);
        assert_eq!(energy(&frames[5]), 0);
        let peak = frames[0].iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((7_900..=8_000).contains(&peak));
    }

    #[test]
    fn bad_tone_is_rejected() {
        let prompt = Prompt::Tone {
            freq_hz: 5_000.0,
            on_ms: 1,
            off_ms: 0,
            amplitude: 1,
        };
        assert!(PromptPlayer::new(&prompt, 8_000).is_err());
    }

    #[test]
    fn wav_prompt_plays_resampled_then_loops_or_stops() {
        let dir = std::env::temp_dir().join(format!("mc-player-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("prompt.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..1_600 {
            // 100 ms, 500 Hz in both channels
            let v = (6_000.0 * (std::f32::consts::TAU * 500.0 * i as f32 / 16_000.0).sin()) as i16;
            w.write_sample(v).unwrap();
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();

        for looped in [false, true] {
            let prompt = Prompt::Wav {
                path: path.clone(),
                looped,
            };
            let mut p = PromptPlayer::new(&prompt, 8_000).unwrap();
            let mut f = [0i16; 160];
            let mut loud_frames = 0;
            for _ in 0..10 {
                p.next_frame(&mut f);
                if f.iter().any(|s| s.unsigned_abs() > 1_000) {
                    loud_frames += 1;
                }
            }
            assert_eq!(p.finished(), !looped);
            if looped {
                assert!(loud_frames >= 9, "{loud_frames}");
            } else {
                assert!((4..=6).contains(&loud_frames), "{loud_frames}");
            }
        }
        assert!(PromptPlayer::new(
            &Prompt::Wav {
                path: dir.join("missing.wav"),
                looped: false
            },
            8_000
        )
        .is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
