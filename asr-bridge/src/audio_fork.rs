//! Audio fork: raw frames over a WebSocket, framed by JSON start/stop messages.
//!
//! Wire format, one WebSocket per stream (call × channel):
//! 1. text `{"event":"start","call_id":…,"channel":…,"sample_rate":16000,"encoding":"linear16","channels":1,"frame_ms":20}`
//! 2. one binary message per 20 ms frame: little-endian i16 samples, mono;
//! 3. text `{"event":"stop","call_id":…,"channel":…,"frames":N,"dropped":D}`, then a close.
//!
//! The receiver can check completeness with `frames` and order by position.

use crate::{AsrBackend, AsrError, StreamInfo, StreamSummary};
use async_trait::async_trait;
use futures_util::SinkExt;
use media_core::TapFrame;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

#[derive(Clone, Debug)]
pub struct AudioForkConfig {
    /// `ws://host:port/path`.
    pub url: String,
    /// How long connecting (TCP + WebSocket handshake) may take.
    pub connect_timeout: Duration,
    /// How long one send may take before the backend counts as failed.
    pub send_timeout: Duration,
}

impl AudioForkConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout: Duration::from_secs(3),
            send_timeout: Duration::from_secs(2),
        }
    }
}

pub struct AudioForkBackend {
    config: AudioForkConfig,
    socket: Option<WebSocketStream<MaybeTlsStream<TcpStream>>>,
    info: Option<StreamInfo>,
}

impl AudioForkBackend {
    pub fn new(config: AudioForkConfig) -> Self {
        Self {
            config,
            socket: None,
            info: None,
        }
    }

    async fn send(&mut self, msg: Message) -> Result<(), AsrError> {
        let backend = self.name().to_owned();
        let millis = self.config.send_timeout.as_millis() as u64;
        let socket = self.socket.as_mut().ok_or_else(|| AsrError::Stream {
            backend: backend.clone(),
            reason: "not started".into(),
        })?;
        match tokio::time::timeout(self.config.send_timeout, socket.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AsrError::Stream {
                backend,
                reason: e.to_string(),
            }),
            Err(_) => Err(AsrError::Timeout { backend, millis }),
        }
    }
}

#[async_trait]
impl AsrBackend for AudioForkBackend {
    fn name(&self) -> &str {
        "audio_fork"
    }

    async fn start(&mut self, info: &StreamInfo) -> Result<(), AsrError> {
        let url = self.config.url.clone();
        let connect = tokio_tungstenite::connect_async(url.as_str());
        let (socket, _) = tokio::time::timeout(self.config.connect_timeout, connect)
            .await
            .map_err(|_| AsrError::Connect {
                url: url.clone(),
                reason: "timed out".into(),
            })?
            .map_err(|e| AsrError::Connect {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        self.socket = Some(socket);
        self.info = Some(info.clone());
        let start = serde_json::json!({
            "event": "start",
            "call_id": info.call_id,
            "channel": info.channel,
            "sample_rate": info.sample_rate,
            "encoding": info.encoding,
            "channels": 1,
            "frame_ms": 20,
        });
        self.send(Message::text(start.to_string())).await
    }

    async fn send_frame(&mut self, frame: &TapFrame) -> Result<(), AsrError> {
        // One owned buffer per frame: the WebSocket keeps it until written.
        let mut payload = Vec::with_capacity(frame.samples.len() * 2);
        for s in frame.samples.iter() {
            payload.extend_from_slice(&s.to_le_bytes());
        }
        self.send(Message::binary(payload)).await
    }

    async fn finish(&mut self, summary: &StreamSummary) -> Result<(), AsrError> {
        let (call_id, channel) = self
            .info
            .as_ref()
            .map(|i| (i.call_id.clone(), i.channel.clone()))
            .unwrap_or_default();
        let stop = serde_json::json!({
            "event": "stop",
            "call_id": call_id,
            "channel": channel,
            "frames": summary.frames_sent,
            "dropped": summary.frames_dropped,
        });
        self.send(Message::text(stop.to_string())).await?;
        if let Some(mut socket) = self.socket.take() {
            // The stream is complete once `stop` is out; a peer that does not
            // answer the close handshake loses nothing.
            let _ = tokio::time::timeout(self.config.send_timeout, socket.close(None)).await;
        }
        Ok(())
    }
}
