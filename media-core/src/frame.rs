//! Frame arithmetic shared by every module.
//!
//! Everything in media-core moves in 20 ms frames: the worker ticks every 20
//! ms, the jitter buffer plays one frame per tick, taps and the recorder get
//! one frame per tick. Keeping that one number here means a change of frame
//! size is one edit, and every buffer can be sized at construction.

/// Duration of one frame, in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Highest sample rate a leg may run at (Opus/wideband legs later).
pub const MAX_RATE: u32 = 48_000;

/// Samples in one frame at [`MAX_RATE`]: the size of every scratch buffer that
/// must hold a frame of any leg without allocating.
pub const MAX_FRAME_SAMPLES: usize = (MAX_RATE * FRAME_MS / 1000) as usize;

/// Number of mono samples in one [`FRAME_MS`] frame at `rate` Hz.
pub const fn samples_per_frame(rate: u32) -> usize {
    (rate as u64 * FRAME_MS as u64 / 1000) as usize
}

/// The frame duration as a [`std::time::Duration`], for tick scheduling.
pub const fn frame_duration() -> std::time::Duration {
    std::time::Duration::from_millis(FRAME_MS as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes() {
        assert_eq!(samples_per_frame(8_000), 160);
        assert_eq!(samples_per_frame(16_000), 320);
        assert_eq!(samples_per_frame(48_000), MAX_FRAME_SAMPLES);
    }
}
