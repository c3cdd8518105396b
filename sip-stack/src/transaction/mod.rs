//! The sans-IO transaction layer (RFC 3261 §17, amended by RFC 6026).
//!
//! An [`Endpoint`] owns every client and server transaction. It never reads
//! a clock or a socket: the caller feeds it parsed messages and the current
//! [`Instant`], then drains [`Endpoint::poll_output`] (datagrams to send,
//! events for the transaction user) and sleeps until
//! [`Endpoint::poll_timeout`].
//!
//! Every peer is a [`Peer`]: transport, address and (for TCP/TLS) the
//! connection. The transport decides the timers (RFC 3261 §17, table 4):
//! over UDP requests and non-2xx finals are retransmitted (Timers A, E, G)
//! and finished transactions linger to absorb retransmissions (Timers D,
//! I, J, K). Over TCP and TLS the transport is reliable: nothing is
//! retransmitted hop by hop and Timers D, I, J and K are zero. Timers B, F,
//! H, L and M (64·T1) still bound how long we wait for the other side. The
//! 2xx to an INVITE is the exception: it is retransmitted until the ACK on
//! every transport, because the UAS core owes that end to end (§13.3.1.4:
//! a proxy on the path may forward over UDP).
//!
//! What the layer does on its own, so the TU does not have to:
//! - answers a new INVITE with `100 Trying` at once (RFC 3261 §17.2.1 allows
//!   it and it stops the peer's Timer A early);
//! - absorbs request retransmissions, resending the last response;
//! - answers CANCEL (200 if it matches an INVITE transaction, else 481) and
//!   tells the TU with [`TxEvent::Cancelled`];
//! - retransmits a 2xx to INVITE until the ACK arrives (the RFC puts that in
//!   the UAS core, §13.3.1.4; it lives here so the TU has one timer less);
//! - sends the ACK for non-2xx finals to our INVITEs;
//! - answers `503` statelessly when [`Endpoint::max_transactions`] is reached.
//!
//! Response routing (RFC 3261 §18.2.2, RFC 3581): over TCP/TLS a response
//! goes back over the connection the request arrived on, and, if that has
//! closed, to the source IP at the Via sent-by port (the transport's
//! default port without one). Over UDP, when the top Via carries `rport`,
//! responses go back to the packet's source address and port (symmetric,
//! NAT-friendly); otherwise to the Via sent-by host and port (default 5060)
//! if the host is an IP literal, and to the source address if it is a name
//! (we do not resolve DNS in the transaction layer).

mod client;
mod server;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{Request, Response, SipMessage, Via};
use crate::transport::{Peer, TransportKind};

use client::{ClientKey, ClientTx};
use server::{AckKey, ServerKey, ServerTx};

/// RFC 3261 §17.1.1.1 timer base values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE
    /// responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// Timers B, F, H, L and M (and J on UDP) run for 64*T1 (32 s by default).
    fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: how long a completed INVITE client transaction absorbs
    /// final response retransmissions (RFC 3261 §17.1.1.2: at least 32 s on
    /// UDP, zero on reliable transports).
    fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            TIMER_D_UDP
        }
    }

    /// Timers I and K: T4 on UDP, zero on reliable transports.
    fn timer_i_k(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J: 64*T1 on UDP, zero on reliable transports.
    fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1x64()
        }
    }
}

/// Timer D on UDP (RFC 3261 §17.1.1.2: at least 32 s).
const TIMER_D_UDP: Duration = Duration::from_secs(32);

/// Guard for an INVITE client transaction stuck in Proceeding: a peer that
/// sends 180 and then nothing would otherwise keep it forever. Same value
/// as the proxy Timer C (RFC 3261 §16.6: more than 3 minutes).
const TIMER_C: Duration = Duration::from_secs(181);

/// Default bound on live transactions.
pub const DEFAULT_MAX_TRANSACTIONS: usize = 10_000;

/// A server transaction (a request we received).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(u64);

/// A client transaction (a request we sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxId {
    Server(ServerTxId),
    Client(ClientTxId),
}

/// What the caller must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `data` as one message to `dest` (one datagram over UDP; over
    /// TCP/TLS on `dest.connection` if still open, see [`Peer`]).
    Transmit {
        dest: Peer,
        data: Vec<u8>,
    },
    Event(TxEvent),
}

/// What happened, for the transaction user (call control, dialogs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxEvent {
    /// A request that created a new server transaction (INVITE, BYE,
    /// OPTIONS, INFO, ...; CANCEL is handled by the layer, see
    /// [`TxEvent::Cancelled`]). Retransmissions are absorbed (the last
    /// response is resent) and never surface again.
    NewRequest {
        tx: ServerTxId,
        request: Request,
        source: Peer,
    },
    /// An ACK for a 2xx: matched to an Accepted INVITE server transaction by
    /// Call-ID + CSeq number + From tag (reported once), or unmatched (every
    /// one is reported; the dialog decides). ACKs for non-2xx finals are
    /// absorbed by their transaction.
    Ack { request: Request, source: Peer },
    /// A response to one of our client transactions, provisional or final.
    /// Retransmitted non-2xx finals are absorbed (the layer re-sends the
    /// ACK); 2xx retransmissions to an INVITE are reported so the TU can
    /// re-send its ACK (RFC 6026 §8.4).
    Response { tx: ClientTxId, response: Response },
    /// A transaction timed out: Timer B/F (no final response), Timer C for
    /// an INVITE stuck after a provisional, or, for an INVITE server
    /// transaction, Timer L (2xx never ACKed) / Timer H (error response
    /// never ACKed). The TU should end the call (send BYE after a 2xx).
    Timeout { tx: TxId },
    /// A CANCEL matched a pending INVITE server transaction (the layer
    /// already answered the CANCEL with 200 OK); the TU should answer the
    /// INVITE with 487.
    Cancelled { invite_tx: ServerTxId },
}

/// Misuse of [`Endpoint::respond`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("no live server transaction {0:?}")]
    UnknownTransaction(ServerTxId),
    #[error("status {0} is not a SIP status code (100-699)")]
    InvalidStatus(u16),
    #[error("transaction {0:?} already sent a final response")]
    FinalAlreadySent(ServerTxId),
}

/// A scheduled retransmission: fires at `at`, then the interval doubles up
/// to `cap` (Timers A, E, G and the 2xx retransmission).
#[derive(Clone, Copy, Debug)]
struct Retransmit {
    at: Instant,
    interval: Duration,
    cap: Option<Duration>,
}

impl Retransmit {
    fn start(now: Instant, t1: Duration, cap: Option<Duration>) -> Retransmit {
        Retransmit {
            at: now + t1,
            interval: t1,
            cap,
        }
    }

    /// Advances past `now`; true if a retransmission is due.
    fn fire(&mut self, now: Instant) -> bool {
        if self.at > now {
            return false;
        }
        while self.at <= now {
            let doubled = self.interval.saturating_mul(2);
            self.interval = self.cap.map_or(doubled, |cap| doubled.min(cap));
            self.at += self.interval;
        }
        true
    }
}

/// The transaction layer for one SIP endpoint.
pub struct Endpoint {
    timers: TimerConfig,
    max_transactions: usize,
    next_id: u64,
    servers: HashMap<ServerTxId, ServerTx>,
    server_index: HashMap<ServerKey, ServerTxId>,
    /// Accepted INVITE transactions, for ACKs of 2xx (new branch, so the
    /// server key cannot match them).
    ack_index: HashMap<AckKey, ServerTxId>,
    clients: HashMap<ClientTxId, ClientTx>,
    client_index: HashMap<ClientKey, ClientTxId>,
    /// Every transaction's next deadline; entries whose transaction moved
    /// on are skipped when popped (each transaction remembers the one
    /// instant it is scheduled for).
    deadlines: BinaryHeap<Reverse<(Instant, TxId)>>,
    outputs: VecDeque<Output>,
}

impl Endpoint {
    pub fn new(timers: TimerConfig) -> Self {
        Endpoint {
            timers,
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            next_id: 1,
            servers: HashMap::new(),
            server_index: HashMap::new(),
            ack_index: HashMap::new(),
            clients: HashMap::new(),
            client_index: HashMap::new(),
            deadlines: BinaryHeap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Bounds live transactions; a new request beyond it is answered 503
    /// statelessly. Our own requests are never refused.
    pub fn set_max_transactions(&mut self, max: usize) {
        self.max_transactions = max;
    }

    pub fn max_transactions(&self) -> usize {
        self.max_transactions
    }

    /// Feeds a message that arrived from `source`.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage, source: Peer) {
        match msg {
            SipMessage::Request(req) => self.handle_request(now, req, source),
            SipMessage::Response(resp) => self.handle_response(now, resp),
        }
        self.prune_deadlines();
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            match id {
                TxId::Server(id) => self.fire_server(now, id, at),
                TxId::Client(id) => self.fire_client(now, id, at),
            }
        }
        self.prune_deadlines();
    }

    /// Sends something outside any transaction (an ACK for a 2xx, a
    /// stateless error response).
    pub fn send_stateless(&mut self, dest: Peer, data: Vec<u8>) {
        self.outputs.push_back(Output::Transmit { dest, data });
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Live transactions, for metrics.
    pub fn len(&self) -> usize {
        self.servers.len() + self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn transmit(&mut self, dest: Peer, data: Vec<u8>) {
        self.outputs.push_back(Output::Transmit { dest, data });
    }

    fn event(&mut self, event: TxEvent) {
        self.outputs.push_back(Output::Event(event));
    }

    fn schedule(&mut self, at: Option<Instant>, id: TxId) {
        if let Some(at) = at {
            self.deadlines.push(Reverse((at, id)));
        }
    }

    /// Drops stale heap entries at the top so `poll_timeout` is exact.
    fn prune_deadlines(&mut self) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            let live = match id {
                TxId::Server(id) => self
                    .servers
                    .get(&id)
                    .is_some_and(|t| t.scheduled == Some(at)),
                TxId::Client(id) => self
                    .clients
                    .get(&id)
                    .is_some_and(|t| t.scheduled == Some(at)),
            };
            if live {
                break;
            }
            self.deadlines.pop();
        }
    }
}

/// Where responses to a request go (see the module doc).
fn response_destination(via: &Via, source: Peer) -> Peer {
    if source.transport.is_reliable() {
        let port = via.port.unwrap_or(source.transport.default_port());
        return Peer {
            addr: SocketAddr::new(source.addr.ip(), port),
            ..source
        };
    }
    if via.rport.is_some() {
        return source;
    }
    match via.host_ip() {
        Some(ip) => Peer::new(
            TransportKind::Udp,
            SocketAddr::new(ip, via.port.unwrap_or(5060)),
        ),
        None => source,
    }
}

#[cfg(test)]
mod tests;
