//! Transports: how SIP bytes reach the wire. The skeleton has UDP; TCP, TLS
//! and WebSocket come with the trunk milestone behind the same shape (bytes
//! and a peer address in, bytes and a peer address out), so the sans-IO
//! transaction layer never learns which one carried a message.

use std::io;
use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// A bound SIP UDP socket.
pub struct UdpTransport {
    socket: UdpSocket,
    local: SocketAddr,
}

impl UdpTransport {
    pub async fn bind(addr: SocketAddr) -> io::Result<UdpTransport> {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        Ok(UdpTransport { socket, local })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Receives one datagram into `buf`. A datagram longer than `buf` is
    /// truncated by the kernel: give `buf` one byte more than the largest
    /// message accepted, and treat a full buffer as oversized.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf).await
    }

    pub async fn send_to(&self, data: &[u8], dest: SocketAddr) -> io::Result<()> {
        let sent = self.socket.send_to(data, dest).await?;
        if sent != data.len() {
            return Err(io::Error::other(format!(
                "sent {sent} of {} bytes to {dest}",
                data.len()
            )));
        }
        Ok(())
    }
}
