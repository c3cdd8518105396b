//! Packet loss concealment for G.711, deliberately simple: repeat the last
//! good frame with falling gain for a few frames, then silence.
//!
//! (G.711 Appendix I's pitch-based concealment is better and can replace
//! this behind the same two calls.)

/// Frames concealed by repetition before falling back to silence.
pub const CONCEAL_FRAMES: u32 = 3;

/// Remembers the last good frame of a leg.
#[derive(Debug)]
pub struct Concealer {
    last: Box<[i16]>,
    run: u32,
}

impl Concealer {
    /// Allocates the one-frame history for frames of `samples`.
    pub fn new(samples: usize) -> Concealer {
        Concealer {
            last: vec![0; samples].into_boxed_slice(),
            run: CONCEAL_FRAMES,
        }
    }

    /// Records a correctly received frame.
    pub fn good(&mut self, frame: &[i16]) {
        let n = frame.len().min(self.last.len());
        self.last[..n].copy_from_slice(&frame[..n]);
        self.run = 0;
    }

    /// Fills `out` for a lost frame.
    pub fn conceal(&mut self, out: &mut [i16]) {
        self.run = self.run.saturating_add(1);
        if self.run > CONCEAL_FRAMES {
            out.fill(0);
            return;
        }
        // Gain steps down linearly: 3/4, 2/4, 1/4 for three frames.
        let gain = (CONCEAL_FRAMES + 1 - self.run) as i32;
        for (o, &s) in out.iter_mut().zip(self.last.iter()) {
            *o = (s as i32 * gain / (CONCEAL_FRAMES + 1) as i32) as i16;
        }
    }

    /// Nothing to play at all (underrun): silence, and no stale repeat later.
    pub fn silence(&mut self, out: &mut [i16]) {
        self.run = CONCEAL_FRAMES;
        out.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_attenuated_then_silence() {
        let mut c = Concealer::new(4);
        let mut out = [0i16; 4];
        c.conceal(&mut out);
        assert_eq!(out, [0; 4], "nothing received yet");
        c.good(&[400; 4]);
        let mut seen = Vec::new();
        for _ in 0..5 {
            c.conceal(&mut out);
            seen.push(out[0]);
        }
        assert_eq!(seen, [300, 200, 100, 0, 0]);
        c.good(&[400; 4]);
        c.silence(&mut out);
        c.conceal(&mut out);
        assert_eq!(out, [0; 4]);
    }
}
