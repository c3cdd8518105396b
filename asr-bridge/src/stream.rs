//! The queue between a media tap and a backend, and the task that drains it.

use crate::{AsrBackend, AsrError, StreamInfo, StreamSummary};
use media_core::{TapFrame, TapSink};
use tokio::sync::mpsc;

/// The media side of a tap queue: `try_push` never blocks a media worker.
pub struct ChannelTapSink(mpsc::Sender<TapFrame>);

/// The async side of a tap queue. It ends when the media leg drops its sink.
pub type TapReceiver = mpsc::Receiver<TapFrame>;

impl TapSink for ChannelTapSink {
    fn try_push(&mut self, frame: TapFrame) -> Result<(), TapFrame> {
        self.0.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(f) | mpsc::error::TrySendError::Closed(f) => f,
        })
    }
}

/// A bounded tap queue holding at most `frames` 20 ms frames (50 = one second).
pub fn tap_channel(frames: usize) -> (ChannelTapSink, TapReceiver) {
    let (tx, rx) = mpsc::channel(frames.max(1));
    (ChannelTapSink(tx), rx)
}

/// Streams every frame of `frames` to `backend` until the media leg ends the
/// tap, then tells the backend how many frames it got and how many were lost.
pub async fn run_stream(
    mut frames: TapReceiver,
    backend: &mut dyn AsrBackend,
    info: &StreamInfo,
) -> Result<StreamSummary, AsrError> {
    backend.start(info).await?;
    let mut summary = StreamSummary::default();
    let mut next_seq = 0u64;
    while let Some(frame) = frames.recv().await {
        summary.frames_dropped += frame.seq.saturating_sub(next_seq);
        next_seq = frame.seq + 1;
        backend.send_frame(&frame).await?;
        summary.frames_sent += 1;
    }
    backend.finish(&summary).await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use media_core::TAP_SAMPLES;

    #[derive(Default)]
    struct Recorder {
        seqs: Vec<u64>,
        finished: Option<StreamSummary>,
    }

    #[async_trait]
    impl AsrBackend for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        async fn start(&mut self, _: &StreamInfo) -> Result<(), AsrError> {
            Ok(())
        }
        async fn send_frame(&mut self, frame: &TapFrame) -> Result<(), AsrError> {
            self.seqs.push(frame.seq);
            Ok(())
        }
        async fn finish(&mut self, summary: &StreamSummary) -> Result<(), AsrError> {
            self.finished = Some(*summary);
            Ok(())
        }
    }

    fn frame(seq: u64) -> TapFrame {
        TapFrame {
            seq,
            rtp_timestamp: 0,
            samples: [0; TAP_SAMPLES],
        }
    }

    #[tokio::test]
    async fn counts_gaps_as_drops_and_full_queue_rejects() {
        let (mut sink, rx) = tap_channel(3);
        for seq in [0, 1, 3] {
            assert!(sink.try_push(frame(seq)).is_ok());
        }
        assert!(sink.try_push(frame(4)).is_err(), "queue of 3 must be full");
        drop(sink);
        let info = StreamInfo {
            call_id: "c".into(),
            channel: "caller".into(),
            sample_rate: 16_000,
            encoding: "linear16",
        };
        let mut backend = Recorder::default();
        let summary = run_stream(rx, &mut backend, &info).await.unwrap();
        assert_eq!(backend.seqs, vec![0, 1, 3]);
        assert_eq!(
            summary,
            StreamSummary {
                frames_sent: 3,
                frames_dropped: 1
            }
        );
        assert_eq!(backend.finished, Some(summary));
    }
}
