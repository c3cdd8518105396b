//! A WebSocket server playing the audio fork's far end: it records every
//! stream it receives (start message, frames in arrival order, stop message).

use futures_util::StreamExt;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Default, Clone)]
pub struct ForkedStream {
    pub start: Option<Value>,
    /// One entry per binary message, in arrival order.
    pub frames: Vec<Vec<i16>>,
    pub stop: Option<Value>,
    /// Messages that broke the protocol (binary before start, text not JSON…).
    pub violations: Vec<String>,
}

impl ForkedStream {
    pub fn samples(&self) -> Vec<i16> {
        self.frames.iter().flatten().copied().collect()
    }
}

pub struct ForkServer {
    pub addr: SocketAddr,
    pub streams: Arc<Mutex<Vec<ForkedStream>>>,
}

impl ForkServer {
    pub async fn start() -> ForkServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fork server");
        let addr = listener.local_addr().expect("addr");
        let streams = Arc::new(Mutex::new(Vec::new()));
        let all = streams.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let all = all.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let index = {
                        let mut v = all.lock().expect("lock");
                        v.push(ForkedStream::default());
                        v.len() - 1
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        let mut v = all.lock().expect("lock");
                        let s = &mut v[index];
                        match msg {
                            Message::Text(t) => match serde_json::from_str::<Value>(t.as_str()) {
                                Ok(json) if json["event"] == "start" && s.start.is_none() => {
                                    s.start = Some(json)
                                }
                                Ok(json) if json["event"] == "stop" && s.start.is_some() => {
                                    s.stop = Some(json)
                                }
                                _ => s.violations.push(format!("unexpected text: {t}")),
                            },
                            Message::Binary(b) => {
                                if s.start.is_none() || s.stop.is_some() {
                                    s.violations.push("binary outside start/stop".into());
                                }
                                if b.len() % 2 != 0 {
                                    s.violations.push(format!("odd frame length {}", b.len()));
                                }
                                s.frames.push(
                                    b.chunks_exact(2)
                                        .map(|c| i16::from_le_bytes([c[0], c[1]]))
                                        .collect(),
                                );
                            }
                            Message::Close(_) => break,
                            _ => {}
                        }
                    }
                });
            }
        });
        ForkServer { addr, streams }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/fork", self.addr)
    }

    /// Waits (bounded) until a stream has its stop message.
    pub async fn wait_stopped(&self, limit: std::time::Duration) -> ForkedStream {
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = self
                .streams
                .lock()
                .expect("lock")
                .iter()
                .find(|s| s.stop.is_some())
            {
                return s.clone();
            }
            assert!(
                start.elapsed() < limit,
                "no complete fork stream within {limit:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
