//! The one shape the signalling task sees: every transport's messages from
//! one `recv`, and one `send` that picks the transport from the [`Peer`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rustls::client::ClientConfig;
use rustls::server::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{Peer, StreamConfig, StreamTransports, TransportKind, UdpTransport};

/// Messages read from connections, queued for the signalling task. A full
/// queue makes the connections wait (backpressure), not drop.
const INBOUND_DEPTH: usize = 1024;

/// What a transport delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// One message: a UDP datagram (possibly oversized: check its length)
    /// or a message framed off a connection.
    Message { source: Peer, data: Bytes },
    /// A connection we opened for `dest` failed (refused, unreachable,
    /// TLS handshake): whatever was queued for it is lost.
    ConnectFailed { dest: Peer },
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0} is not a stream transport")]
    NotAStream(TransportKind),
    #[error("{0} is not enabled")]
    Disabled(TransportKind),
    #[error("TLS client configuration missing: cannot open TLS connections")]
    TlsNotConfigured,
    #[error("connection limit reached: no new connection")]
    TooManyConnections,
    #[error("the connection to {0} has too many messages queued")]
    Backlog(Peer),
}

/// Where and how to listen.
pub struct TransportConfig {
    pub udp: SocketAddr,
    /// TCP listener (port 0: ephemeral); `None`: no TCP at all.
    pub tcp: Option<SocketAddr>,
    /// TLS listener and its configuration; `None`: no inbound TLS.
    pub tls: Option<(SocketAddr, Arc<ServerConfig>)>,
    /// For TLS connections we open; `None`: no outbound TLS.
    pub tls_client: Option<Arc<ClientConfig>>,
    pub stream: StreamConfig,
}

/// UDP, TCP and TLS together.
pub struct SipTransports {
    udp: UdpTransport,
    streams: StreamTransports,
    inbound: mpsc::Receiver<Received>,
    tcp_local: Option<SocketAddr>,
    tls_local: Option<SocketAddr>,
    /// One byte more than the largest message, so truncation shows.
    buf: Vec<u8>,
}

impl SipTransports {
    /// Binds every configured listener (all before accepting anything, so
    /// a port clash fails the start, not the first call).
    pub async fn bind(config: TransportConfig) -> io::Result<SipTransports> {
        let udp = UdpTransport::bind(config.udp).await?;
        let tcp = match config.tcp {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let (tls, tls_server) = match config.tls {
            Some((addr, server)) => (Some(TcpListener::bind(addr).await?), Some(server)),
            None => (None, None),
        };
        let (inbound_tx, inbound) = mpsc::channel(INBOUND_DEPTH);
        let buf = vec![0u8; config.stream.max_message + 1];
        let streams =
            StreamTransports::new(config.stream, inbound_tx, tls_server, config.tls_client);
        let tcp_local = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
        let tls_local = tls.as_ref().map(TcpListener::local_addr).transpose()?;
        if let Some(listener) = tcp {
            streams.listen(TransportKind::Tcp, listener);
        }
        if let Some(listener) = tls {
            streams.listen(TransportKind::Tls, listener);
        }
        Ok(SipTransports {
            udp,
            streams,
            inbound,
            tcp_local,
            tls_local,
            buf,
        })
    }

    /// The bound address of a transport's listener (`None`: not enabled).
    pub fn local_addr(&self, kind: TransportKind) -> Option<SocketAddr> {
        match kind {
            TransportKind::Udp => Some(self.udp.local_addr()),
            TransportKind::Tcp => self.tcp_local,
            TransportKind::Tls => self.tls_local,
        }
    }

    /// Open TCP and TLS connections.
    pub fn connections(&self) -> usize {
        self.streams.len()
    }

    /// The next message from any transport. Cancel-safe (for `select!`).
    pub async fn recv(&mut self) -> io::Result<Received> {
        tokio::select! {
            datagram = self.udp.recv_from(&mut self.buf) => {
                let (len, source) = datagram?;
                let data = Bytes::copy_from_slice(self.buf.get(..len).unwrap_or_default());
                Ok(Received::Message { source: Peer::udp(source), data })
            }
            Some(received) = self.inbound.recv() => Ok(received),
        }
    }

    /// Sends `data` to `dest` over its transport. Stream sends only queue:
    /// a connection that then fails is reported as
    /// [`Received::ConnectFailed`] (if we opened it) or just closes.
    pub async fn send(&self, dest: &Peer, data: Vec<u8>) -> Result<(), SendError> {
        match dest.transport {
            TransportKind::Udp => Ok(self.udp.send_to(&data, dest.addr).await?),
            TransportKind::Tcp if self.tcp_local.is_none() => {
                Err(SendError::Disabled(TransportKind::Tcp))
            }
            _ => self.streams.send(dest, Bytes::from(data)),
        }
    }
}
