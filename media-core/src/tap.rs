//! Taps: copies of a leg's audio, as 16 kHz 20 ms frames, for subscribers
//! such as the ASR bridge.
//!
//! A frame travels by value (640 bytes of samples, no heap) and a sink must
//! never block the media worker: when the subscriber is behind it hands the
//! frame back and the tap counts a drop. `seq` increases by one per produced
//! frame even when a frame is dropped, so a subscriber sees the gap.

use crate::frame::samples_per_frame;
use crate::resample::Resampler;
use crate::MediaError;

/// The rate every tap delivers, whatever the leg's native rate.
pub const TAP_RATE: u32 = 16_000;
/// Samples in one tap frame (20 ms at [`TAP_RATE`]).
pub const TAP_SAMPLES: usize = 320;

const _: () = assert!(samples_per_frame(TAP_RATE) == TAP_SAMPLES);

/// 20 ms of mono audio at 16 kHz.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapFrame {
    /// 0, 1, 2, … per tap, one per tick.
    pub seq: u64,
    /// RTP timestamp of the frame, in the leg's RTP clock: the far end's for
    /// inbound, ours for outbound.
    pub rtp_timestamp: u32,
    pub samples: [i16; TAP_SAMPLES],
}

/// Which way the tapped audio flows, seen from the leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TapDirection {
    /// What the far end sent us (after jitter buffer and concealment).
    Inbound,
    /// What we sent.
    Outbound,
}

/// A subscriber for tapped frames.
///
/// The frame travels by value in both directions on purpose: handing it
/// back on `Err` lets a sink refuse without the tap allocating anything.
#[allow(clippy::result_large_err)]
pub trait TapSink: Send + 'static {
    /// Must not block. Err(frame) when the subscriber is behind; the tap
    /// counts a drop.
    fn try_push(&mut self, frame: TapFrame) -> Result<(), TapFrame>;
}

/// The common sink: a bounded crossbeam channel. A full or disconnected
/// channel is a drop.
impl TapSink for crossbeam_channel::Sender<TapFrame> {
    fn try_push(&mut self, frame: TapFrame) -> Result<(), TapFrame> {
        self.try_send(frame).map_err(|e| e.into_inner())
    }
}

/// The taps of one direction of a leg, sharing one resampler.
pub(crate) struct TapSet {
    resampler: Resampler,
    sinks: Vec<(u64, Box<dyn TapSink>)>,
}

impl TapSet {
    pub(crate) fn new(leg_rate: u32, sinks: Vec<Box<dyn TapSink>>) -> Result<TapSet, MediaError> {
        Ok(TapSet {
            resampler: Resampler::new(leg_rate, TAP_RATE)?,
            sinks: sinks.into_iter().map(|s| (0, s)).collect(),
        })
    }

    /// Resamples one leg frame and offers it to every sink; returns how many
    /// sinks dropped it.
    pub(crate) fn feed(&mut self, pcm: &[i16], rtp_timestamp: u32) -> u64 {
        let mut samples = [0i16; TAP_SAMPLES];
        if self.resampler.process(pcm, &mut samples).is_err() {
            // Wrong frame size cannot happen for a leg's own frames; deliver
            // silence rather than skipping a seq.
            samples.fill(0);
        }
        let mut dropped = 0;
        for (seq, sink) in self.sinks.iter_mut() {
            let frame = TapFrame {
                seq: *seq,
                rtp_timestamp,
                samples,
            };
            *seq += 1;
            if sink.try_push(frame).is_err() {
                dropped += 1;
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_all_sinks_and_counts_drops() {
        let (tx1, rx1) = crossbeam_channel::bounded(10);
        let (tx2, rx2) = crossbeam_channel::bounded(1);
        let mut set = TapSet::new(8_000, vec![Box::new(tx1), Box::new(tx2)]).unwrap();
        let pcm = [100i16; 160];
        assert_eq!(set.feed(&pcm, 0), 0);
        assert_eq!(set.feed(&pcm, 160), 1);
        assert_eq!(set.feed(&pcm, 320), 1);
        let got: Vec<u64> = rx1.try_iter().map(|f| f.seq).collect();
        assert_eq!(got, [0, 1, 2]);
        let f = rx2.try_recv().unwrap();
        assert_eq!((f.seq, f.rtp_timestamp), (0, 0));
        drop(rx1);
        // rx2 has room again after the recv; rx1 is gone: one drop.
        assert_eq!(set.feed(&pcm, 480), 1);
    }
}
