//! One TCP or TLS connection's task: reads through a [`StreamFramer`],
//! answers keep-alive pings, writes queued messages, and closes on error,
//! on idleness, or when the peer closes.
//!
//! Reading and writing share one task so a connection has exactly one
//! owner; the table only holds the sending end of its queue.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info};

use super::connections::Shared;
use super::framer::{Frame, StreamFramer, PONG};
use super::sip_transports::Received;
use super::{ConnectionId, Peer};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Why a connection ended, for the log.
enum Close {
    PeerClosed,
    Idle,
    Framing(String),
    Io(String),
    Shutdown,
}

pub(super) async fn run<S>(
    shared: Arc<Shared>,
    peer: Peer,
    stream: S,
    mut queue: mpsc::Receiver<Bytes>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = peer.connection.unwrap_or(ConnectionId(0));
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut framer = StreamFramer::new(shared.config.max_message);
    let mut buf = vec![0u8; READ_CHUNK];
    let idle = shared.config.idle_timeout;
    let mut deadline = Instant::now() + idle;
    let close = loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) => break Close::PeerClosed,
                    Ok(n) => n,
                    Err(e) => break Close::Io(e.to_string()),
                };
                deadline = Instant::now() + idle;
                framer.push(buf.get(..n).unwrap_or_default());
                if let Some(close) = deliver(&shared, peer, &mut framer, &mut writer).await {
                    break close;
                }
            }
            out = queue.recv() => {
                let Some(data) = out else { break Close::Shutdown };
                deadline = Instant::now() + idle;
                if let Err(e) = write(&shared, &mut writer, &data).await {
                    break Close::Io(e);
                }
            }
            _ = tokio::time::sleep_until(deadline) => break Close::Idle,
        }
    };
    shared.forget(id);
    let _ = writer.shutdown().await;
    match close {
        Close::PeerClosed => debug!(%peer, "SIP connection closed by the peer"),
        Close::Idle => debug!(%peer, "idle SIP connection closed"),
        Close::Shutdown => debug!(%peer, "SIP connection closed"),
        Close::Io(e) => debug!(%peer, error = %e, "SIP connection failed"),
        Close::Framing(e) => info!(%peer, error = %e, "SIP connection closed: unreadable stream"),
    }
}

/// Hands every complete message to the signalling task and answers pings.
/// `Some` when the connection must close.
async fn deliver<W: AsyncWrite + Unpin>(
    shared: &Shared,
    peer: Peer,
    framer: &mut StreamFramer,
    writer: &mut W,
) -> Option<Close> {
    loop {
        match framer.next_frame() {
            Ok(None) => return None,
            Ok(Some(Frame::Ping)) => {
                if let Err(e) = write(shared, writer, PONG).await {
                    return Some(Close::Io(e));
                }
            }
            Ok(Some(Frame::Message(data))) => {
                let received = Received::Message { source: peer, data };
                if shared.inbound.send(received).await.is_err() {
                    return Some(Close::Shutdown);
                }
            }
            Err(e) => {
                metrics::counter!("switchboard_sip_parse_errors_total").increment(1);
                if let Some(reply) = e.reply_400() {
                    let _ = write(shared, writer, &reply.to_bytes()).await;
                }
                return Some(Close::Framing(e.to_string()));
            }
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(
    shared: &Shared,
    writer: &mut W,
    data: &[u8],
) -> Result<(), String> {
    match tokio::time::timeout(shared.config.write_timeout, async {
        writer.write_all(data).await?;
        writer.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("write timed out".into()),
    }
}
