//! Transports: how SIP bytes reach the wire — UDP, TCP and TLS behind one
//! shape, so the sans-IO transaction layer never does I/O itself.
//!
//! Everything above this module names a remote party with a [`Peer`]: the
//! transport kind, the address, and — for a stream transport — the
//! connection a message arrived on. Inbound messages come tagged with
//! theirs ([`Received`]); outbound ones go to one ([`SipTransports::send`]).
//!
//! ```text
//!              ┌─ UdpTransport ──── one socket, one datagram = one message
//!  SipTransports ┤
//!              └─ StreamTransports ─ listeners (TCP, TLS) + connection table
//!                     each connection: a task with a StreamFramer (bytes →
//!                     messages, CRLF keep-alive pings answered), a write
//!                     queue, and an idle timer
//! ```
//!
//! The parts, each with one job:
//! - [`framer`]: sans-IO stream framing (RFC 3261 §18.3, RFC 5626 §4.4.1);
//! - `udp`: the datagram socket;
//! - `connections`: the table of open TCP/TLS connections: reuse (RFC
//!   3261 §18.1.1, §18.2.2), opening on demand, idle expiry, a bound;
//! - `stream`: one connection's task;
//! - [`tls`]: certificates and rustls configurations (ring provider);
//! - [`size`]: RFC 3261 §18.1.1 — a large request leaves UDP for TCP.

mod connections;
pub mod framer;
mod sip_transports;
pub mod size;
mod stream;
pub mod tls;
mod udp;

pub use connections::{StreamConfig, StreamTransports};
pub use framer::{Frame, FrameError, StreamFramer};
pub use sip_transports::{Received, SendError, SipTransports, TransportConfig};
pub use udp::UdpTransport;

use std::fmt;
use std::net::SocketAddr;

/// Which transport carries a message. The names are the Via tokens of
/// RFC 3261 §18 (TLS is TLS over TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
}

impl TransportKind {
    /// TCP and TLS deliver in order or fail: the transaction layer does
    /// not retransmit over them (RFC 3261 §17.1.1.2, §17.2.1).
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// The Via `sent-protocol` transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }

    /// The `transport=` URI parameter value.
    pub fn uri_param(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
        }
    }

    /// Parses a Via token or a `transport=` value (any case).
    pub fn parse(token: &str) -> Option<TransportKind> {
        match token.to_ascii_lowercase().as_str() {
            "udp" => Some(TransportKind::Udp),
            "tcp" => Some(TransportKind::Tcp),
            "tls" => Some(TransportKind::Tls),
            _ => None,
        }
    }

    /// RFC 3261 §19.1.2: 5060 for UDP and TCP, 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            TransportKind::Tls => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri_param())
    }
}

/// One TCP or TLS connection, for as long as it is open. Ids are never
/// reused within a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Where a message came from or goes to.
///
/// `connection` matters only for stream transports: a response (RFC 3261
/// §18.2.2), or a request within a dialog that arrived over a connection,
/// goes back over that connection while it is open; when it has closed,
/// the message goes to `addr` over a connection opened (or found) for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: TransportKind,
    pub addr: SocketAddr,
    pub connection: Option<ConnectionId>,
}

impl Peer {
    pub fn new(transport: TransportKind, addr: SocketAddr) -> Peer {
        Peer {
            transport,
            addr,
            connection: None,
        }
    }

    pub fn udp(addr: SocketAddr) -> Peer {
        Peer::new(TransportKind::Udp, addr)
    }

    /// The same peer, reached over `connection` while it is open.
    pub fn via_connection(self, connection: Option<ConnectionId>) -> Peer {
        Peer { connection, ..self }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)?;
        if let Some(ConnectionId(id)) = self.connection {
            write!(f, "#{id}")?;
        }
        Ok(())
    }
}
