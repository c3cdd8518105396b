//! # asr-bridge — 20 ms audio frames out to speech-to-text backends
//!
//! `media_core` taps hand over per-party 16 kHz frames through a [`TapSink`];
//! this crate carries them to whatever turns speech into text. It does not
//! know where frames came from (SIP, WebRTC, a conference): a stream is a call
//! id, a channel label ("caller", "agent") and a sample rate.
//!
//! ```text
//!  media worker ──try_push──▶ ChannelTapSink ══ bounded queue ══▶ run_stream ──▶ dyn AsrBackend
//!  (never blocks; a full queue                               (tokio task)      (audio fork over
//!   is a counted drop)                                                           WebSocket, …)
//! ```
//!
//! The first backend is an [`AudioForkBackend`]: frames over a WebSocket to a
//! configured URL, framed by a JSON `start` and `stop` message, the shape of
//! Deepgram-style streaming APIs. Failover between backends and replay of
//! buffered audio to a replacement come with the speech-to-text milestone; the
//! [`AsrBackend`] trait is the seam they plug into.

mod audio_fork;
mod stream;

pub use audio_fork::{AudioForkBackend, AudioForkConfig};
pub use media_core::{TapFrame, TapSink, TAP_RATE, TAP_SAMPLES};
pub use stream::{run_stream, tap_channel, ChannelTapSink, TapReceiver};

use async_trait::async_trait;

/// What a backend is told when a stream begins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    pub call_id: String,
    /// Which party: "caller" for what the far end says, "agent" for our side.
    pub channel: String,
    pub sample_rate: u32,
    /// Always "linear16" (signed 16-bit little-endian PCM, mono) for now.
    pub encoding: &'static str,
}

/// What a backend is told when a stream ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// Frames handed to the backend.
    pub frames_sent: u64,
    /// Frames the media side produced but that never reached us (seen as
    /// gaps in the tap sequence numbers: a full queue).
    pub frames_dropped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("connecting to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("backend {backend} failed while streaming: {reason}")]
    Stream { backend: String, reason: String },
    #[error("backend {backend} timed out after {millis} ms")]
    Timeout { backend: String, millis: u64 },
}

/// A speech-to-text backend, fed one stream (one call, one channel) at a time.
///
/// Calls come in order: `start`, any number of `send_frame`, `finish`. An error
/// ends the stream for this backend; the caller decides whether to fail over.
#[async_trait]
pub trait AsrBackend: Send {
    /// A short name for logs and metrics.
    fn name(&self) -> &str;
    async fn start(&mut self, info: &StreamInfo) -> Result<(), AsrError>;
    async fn send_frame(&mut self, frame: &TapFrame) -> Result<(), AsrError>;
    async fn finish(&mut self, summary: &StreamSummary) -> Result<(), AsrError>;
}
