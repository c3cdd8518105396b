//! Test speech and the checks that compare audio that came out with what went in.

use crate::{run_checked, Scratch};
use std::path::PathBuf;
use std::process::Command;

/// Speech made for a test: the µ-law file SIPp streams, and the same audio
/// decoded back to 8 kHz samples as the reference.
pub struct Speech {
    pub ulaw: PathBuf,
    pub reference: Vec<i16>,
}

impl Speech {
    /// espeak-ng speaks `text`; sox turns it into headerless 8 kHz µ-law
    /// (what SIPp's rtp_stream sends) and back into the reference samples.
    pub fn generate(scratch: &Scratch, text: &str) -> Speech {
        Self::generate_as(scratch, "speech", text)
    }

    /// As [`Speech::generate`], writing `<name>.ulaw` (SIPp scenarios name
    /// their file: `speech.ulaw` for callers, `agent.ulaw` for agents).
    pub fn generate_as(scratch: &Scratch, name: &str, text: &str) -> Speech {
        let wav = scratch.path(&format!("{name}-22k.wav"));
        let ulaw = scratch.path(&format!("{name}.ulaw"));
        let reference_wav = scratch.path(&format!("{name}-ref.wav"));
        run_checked(
            Command::new("espeak-ng")
                .args(["-v", "en-us", "-s", "150", "-w"])
                .arg(&wav)
                .arg(text),
        );
        run_checked(
            Command::new("sox")
                .arg("-D")
                .arg(&wav)
                .args(["-r", "8000", "-c", "1", "-e", "mu-law", "-t", "raw"])
                .arg(&ulaw),
        );
        run_checked(
            Command::new("sox")
                .args(["-D", "-t", "raw", "-r", "8000", "-c", "1", "-e", "mu-law"])
                .arg(&ulaw)
                .args(["-e", "signed-integer", "-b", "16"])
                .arg(&reference_wav),
        );
        let reference = read_mono(&reference_wav);
        Speech { ulaw, reference }
    }

    /// Puts `ms` of µ-law silence before the speech in the file SIPp
    /// plays (the reference stays the speech alone), for a party whose
    /// words must come only after something else happened.
    pub fn delay(&self, ms: usize) {
        let speech = std::fs::read(&self.ulaw).expect("read ulaw");
        let mut padded = vec![0xFF_u8; ms * 8]; // 0xFF: µ-law zero
        padded.extend_from_slice(&speech);
        std::fs::write(&self.ulaw, padded).expect("write ulaw");
    }

    /// RTP packets SIPp sends for one pass over the file (160 bytes each).
    pub fn packets(&self) -> u64 {
        (self.reference.len() / 160) as u64
    }
}

pub fn read_mono(path: &std::path::Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).expect("open wav");
    reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect()
}

/// Splits an interleaved stereo WAV into (left, right) with its sample rate.
pub fn read_stereo(path: &std::path::Path) -> (Vec<i16>, Vec<i16>, u32) {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a readable WAV: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.channels, 2, "recording must be stereo");
    assert_eq!(spec.bits_per_sample, 16);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right, spec.sample_rate)
}

/// Normalized cross-correlation of `reference` against `signal` shifted by
/// `lag` samples (signal[lag + i] vs reference[i]).
pub fn correlation_at(signal: &[i16], reference: &[i16], lag: usize) -> f64 {
    let (mut dot, mut es, mut er) = (0f64, 0f64, 0f64);
    for (i, &r) in reference.iter().enumerate() {
        let s = *signal.get(lag + i).unwrap_or(&0) as f64;
        let r = r as f64;
        dot += s * r;
        es += s * s;
        er += r * r;
    }
    if es == 0.0 || er == 0.0 {
        return 0.0;
    }
    dot / (es.sqrt() * er.sqrt())
}

/// The lag (0..max_lag) at which `reference` best matches `signal`, and the correlation there.
pub fn best_alignment(signal: &[i16], reference: &[i16], max_lag: usize) -> (usize, f64) {
    let mut best = (0, f64::MIN);
    for lag in 0..max_lag.min(signal.len()) {
        let c = correlation_at(signal, reference, lag);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

/// Where `reference` starts in a long `signal` (anywhere in it) and the
/// correlation there: a coarse search at a quarter of the rate, refined at
/// full rate. For audio that starts at an unknown time, e.g. after a transfer.
pub fn locate(signal: &[i16], reference: &[i16]) -> (usize, f64) {
    let quarter = |s: &[i16]| decimate_by_2(&decimate_by_2(s, 0), 0);
    let (coarse_signal, coarse_reference) = (quarter(signal), quarter(reference));
    let span = coarse_signal
        .len()
        .saturating_sub(coarse_reference.len() / 2);
    let (coarse, _) = best_alignment(&coarse_signal, &coarse_reference, span.max(1));
    let from = (coarse * 4).saturating_sub(16);
    let (fine, corr) = best_alignment(&signal[from..], reference, 32);
    (from + fine, corr)
}

/// Checks that every voiced window of `reference` sits at `lag` in `signal`:
/// audio arrived complete and in order, not just similar on the whole.
pub fn assert_windows_aligned(
    signal: &[i16],
    reference: &[i16],
    lag: usize,
    window: usize,
    min: f64,
) {
    let mut checked = 0;
    for (w, chunk) in reference.chunks(window).enumerate() {
        let energy: f64 =
            chunk.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / chunk.len() as f64;
        if chunk.len() < window / 2 || energy < 1e5 {
            continue; // silence between words says nothing about order
        }
        let c = correlation_at(signal, chunk, lag + w * window);
        assert!(c > min, "window {w} correlates only {c:.3} at lag {lag}");
        checked += 1;
    }
    assert!(checked >= 3, "too few voiced windows checked ({checked})");
}

/// Frequency estimate by zero crossings over the non-silent part of `samples`.
pub fn dominant_frequency(samples: &[i16], rate: u32) -> f64 {
    let voiced: Vec<i16> = samples
        .iter()
        .copied()
        .filter(|s| s.unsigned_abs() > 200)
        .collect();
    if voiced.len() < rate as usize / 10 {
        return 0.0;
    }
    let crossings = samples
        .windows(2)
        .filter(|w| w[0].unsigned_abs() > 200 || w[1].unsigned_abs() > 200)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (voiced.len() as f64 / rate as f64)
}

/// Every other sample: 16 kHz → 8 kHz for audio already band-limited to 4 kHz.
pub fn decimate_by_2(samples: &[i16], phase: usize) -> Vec<i16> {
    samples.iter().skip(phase).step_by(2).copied().collect()
}

/// Power of one frequency in `samples` (Goertzel), normalised by the
/// square of the length: a sine of amplitude `a` gives about `a² / 4`,
/// however long the window.
pub fn tone_power(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in samples {
        let s = v as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let n = samples.len().max(1) as f64;
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)
}

/// Mean power (mean square) of `samples`.
pub fn mean_power(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| (s as f64) * (s as f64)).sum();
    sum / samples.len().max(1) as f64
}

/// A headerless 8 kHz µ-law file of a sine (what SIPp's rtp_stream sends).
pub fn tone_ulaw(path: &std::path::Path, freq: u32, seconds: u32) {
    run_checked(
        Command::new("sox")
            .args([
                "-D", "-n", "-r", "8000", "-c", "1", "-e", "mu-law", "-t", "raw",
            ])
            .arg(path)
            .args(["synth", &seconds.to_string(), "sine", &freq.to_string()])
            .args(["vol", "0.3"]),
    );
}
