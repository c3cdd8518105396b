//! The table of open TCP and TLS connections.
//!
//! One table serves both stream transports. It answers one question for
//! every outbound message — which connection carries it — by these rules:
//!
//! 1. the connection the [`Peer`] names, if it is still open (a response
//!    goes back over the connection its request came in on, RFC 3261
//!    §18.2.2; so does a request within a dialog that arrived over one);
//! 2. else any open connection to the same transport and address, whoever
//!    opened it (RFC 3261 §18.1.1: reuse before opening);
//! 3. else a new one, opened in the background: the message waits in the
//!    new connection's queue, so the signalling task never waits on a TCP
//!    or TLS handshake.
//!
//! It holds at most `max_connections`; beyond that, new inbound connections
//! are closed at once and new outbound ones refused ("shed"), so a flood of
//! connections costs a bounded amount of memory. A connection with no
//! traffic for `idle_timeout` (keep-alive pings count) is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rustls::client::ClientConfig;
use rustls::server::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

use super::sip_transports::{Received, SendError};
use super::{stream, ConnectionId, Peer, TransportKind};

/// Messages queued on one connection before sends to it fail.
const QUEUE_DEPTH: usize = 128;

/// Limits and timeouts of the stream transports.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// Largest SIP message accepted on a stream (`sip.max_message_bytes`).
    pub max_message: usize,
    /// A connection silent this long is closed (`sip.tcp_idle_secs`).
    pub idle_timeout: Duration,
    /// Connections held at most, both directions (`sip.max_connections`).
    pub max_connections: usize,
    /// Bound on TCP connect plus TLS handshake, either direction.
    pub handshake_timeout: Duration,
    /// Bound on writing one message to a peer that does not read.
    pub write_timeout: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            max_message: 65_535,
            idle_timeout: Duration::from_secs(1800),
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// TCP and TLS: listeners, the connection table, and sends.
#[derive(Clone)]
pub struct StreamTransports {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) config: StreamConfig,
    table: Mutex<Table>,
    next_id: AtomicU64,
    pub(super) inbound: mpsc::Sender<Received>,
    tls_server: Option<TlsAcceptor>,
    tls_client: Option<TlsConnector>,
    tasks: Mutex<Vec<AbortHandle>>,
}

#[derive(Default)]
struct Table {
    conns: HashMap<ConnectionId, Entry>,
    by_remote: HashMap<(TransportKind, SocketAddr), ConnectionId>,
}

struct Entry {
    transport: TransportKind,
    remote: SocketAddr,
    queue: mpsc::Sender<Bytes>,
}

impl StreamTransports {
    /// `inbound` receives every message read from any connection.
    /// `tls_server` enables accepting TLS, `tls_client` opening it.
    pub fn new(
        config: StreamConfig,
        inbound: mpsc::Sender<Received>,
        tls_server: Option<Arc<ServerConfig>>,
        tls_client: Option<Arc<ClientConfig>>,
    ) -> StreamTransports {
        StreamTransports {
            shared: Arc::new(Shared {
                config,
                table: Mutex::new(Table::default()),
                next_id: AtomicU64::new(1),
                inbound,
                tls_server: tls_server.map(TlsAcceptor::from),
                tls_client: tls_client.map(TlsConnector::from),
                tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Accepts connections of `kind` (TCP or TLS) on `listener` until dropped.
    pub fn listen(&self, kind: TransportKind, listener: TcpListener) {
        let shared = self.shared.clone();
        let task = tokio::spawn(accept_loop(shared, kind, listener));
        self.shared.lock_tasks().push(task.abort_handle());
    }

    /// Open connections right now.
    pub fn len(&self) -> usize {
        self.shared.lock_table().conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `data` for `dest` (see the module doc for which connection).
    pub fn send(&self, dest: &Peer, data: Bytes) -> Result<(), SendError> {
        if !dest.transport.is_reliable() {
            return Err(SendError::NotAStream(dest.transport));
        }
        let mut table = self.shared.lock_table();
        let named = dest.connection.filter(|id| {
            table
                .conns
                .get(id)
                .is_some_and(|e| e.transport == dest.transport)
        });
        let existing = named.or_else(|| table.by_remote.get(&(dest.transport, dest.addr)).copied());
        let queue = existing.and_then(|id| table.conns.get(&id).map(|e| (id, e.queue.clone())));
        let data = match queue {
            Some((id, queue)) => match queue.try_send(data) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => return Err(SendError::Backlog(*dest)),
                // Closing as we speak: forget it and open a new one.
                Err(mpsc::error::TrySendError::Closed(data)) => {
                    table.remove(id);
                    data
                }
            },
            None => data,
        };
        if dest.transport == TransportKind::Tls && self.shared.tls_client.is_none() {
            return Err(SendError::TlsNotConfigured);
        }
        if table.conns.len() >= self.shared.config.max_connections {
            metrics::counter!("switchboard_sip_connections_shed_total", "direction" => "outbound")
                .increment(1);
            return Err(SendError::TooManyConnections);
        }
        let (id, queue) = self.shared.register(&mut table, dest.transport, dest.addr);
        // A fresh queue has room for the first message.
        let _ = table.conns.get(&id).map(|e| e.queue.try_send(data));
        drop(table);
        info!(peer = %dest, connection = id.0, "opening a SIP connection");
        let shared = self.shared.clone();
        let peer = Peer::new(dest.transport, dest.addr).via_connection(Some(id));
        let task = tokio::spawn(connect_and_run(shared, peer, queue));
        self.shared.lock_tasks().push(task.abort_handle());
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
    }
}

impl Shared {
    fn lock_table(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere while holding the lock leaves a table that is
        // still consistent (every change is one insert or remove).
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_tasks(&self) -> MutexGuard<'_, Vec<AbortHandle>> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks
    }

    /// A new table entry: its id and the receiving end of its queue.
    fn register(
        &self,
        table: &mut Table,
        transport: TransportKind,
        remote: SocketAddr,
    ) -> (ConnectionId, mpsc::Receiver<Bytes>) {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        table.conns.insert(
            id,
            Entry {
                transport,
                remote,
                queue,
            },
        );
        table.by_remote.insert((transport, remote), id);
        metrics::gauge!("switchboard_sip_connections").set(table.conns.len() as f64);
        (id, rx)
    }

    /// Called by a connection's task as it ends.
    pub(super) fn forget(&self, id: ConnectionId) {
        let mut table = self.lock_table();
        table.remove(id);
        metrics::gauge!("switchboard_sip_connections").set(table.conns.len() as f64);
    }
}

impl Table {
    fn remove(&mut self, id: ConnectionId) {
        if let Some(e) = self.conns.remove(&id) {
            if self.by_remote.get(&(e.transport, e.remote)) == Some(&id) {
                self.by_remote.remove(&(e.transport, e.remote));
            }
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, kind: TransportKind, listener: TcpListener) {
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, typically: back off, do not spin.
                warn!(transport = %kind, error = %e, "accepting a SIP connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registered = {
            let mut table = shared.lock_table();
            (table.conns.len() < shared.config.max_connections)
                .then(|| shared.register(&mut table, kind, remote))
        };
        let Some((id, queue)) = registered else {
            metrics::counter!("switchboard_sip_connections_shed_total", "direction" => "inbound")
                .increment(1);
            warn!(transport = %kind, %remote, max = shared.config.max_connections, "connection limit reached: closed");
            continue; // dropping `tcp` closes it
        };
        let _ = tcp.set_nodelay(true);
        let peer = Peer::new(kind, remote).via_connection(Some(id));
        debug!(%peer, "SIP connection accepted");
        let shared = shared.clone();
        let task_shared = shared.clone();
        let task = tokio::spawn(async move {
            match kind {
                TransportKind::Tls => {
                    let Some(acceptor) = task_shared.tls_server.clone() else {
                        return task_shared.forget(id);
                    };
                    let timeout = task_shared.config.handshake_timeout;
                    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => stream::run(task_shared, peer, tls, queue).await,
                        Ok(Err(e)) => {
                            info!(%peer, error = %e, "TLS handshake failed");
                            task_shared.forget(id);
                        }
                        Err(_) => {
                            info!(%peer, "TLS handshake timed out");
                            task_shared.forget(id);
                        }
                    }
                }
                _ => stream::run(task_shared, peer, tcp, queue).await,
            }
        });
        shared.lock_tasks().push(task.abort_handle());
    }
}

/// Opens an outbound connection, then runs it; on failure the table forgets
/// it and the signalling task hears of it (its transactions can fail fast).
async fn connect_and_run(shared: Arc<Shared>, peer: Peer, queue: mpsc::Receiver<Bytes>) {
    let timeout = shared.config.handshake_timeout;
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(peer.addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return connect_failed(&shared, peer, &e.to_string()).await,
        Err(_) => return connect_failed(&shared, peer, "timed out").await,
    };
    let _ = tcp.set_nodelay(true);
    match peer.transport {
        TransportKind::Tls => {
            let Some(connector) = shared.tls_client.clone() else {
                return connect_failed(&shared, peer, "TLS not configured").await;
            };
            let name = rustls_pki_types::ServerName::IpAddress(peer.addr.ip().into());
            match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
                Ok(Ok(tls)) => stream::run(shared, peer, tls, queue).await,
                Ok(Err(e)) => connect_failed(&shared, peer, &e.to_string()).await,
                Err(_) => connect_failed(&shared, peer, "TLS handshake timed out").await,
            }
        }
        _ => stream::run(shared, peer, tcp, queue).await,
    }
}

async fn connect_failed(shared: &Arc<Shared>, peer: Peer, why: &str) {
    warn!(%peer, error = why, "SIP connection could not be opened");
    if let Some(id) = peer.connection {
        shared.forget(id);
    }
    let dest = Peer::new(peer.transport, peer.addr);
    let _ = shared.inbound.send(Received::ConnectFailed { dest }).await;
}

#[cfg(test)]
mod tests;
