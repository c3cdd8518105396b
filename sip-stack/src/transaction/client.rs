//! Client transactions: RFC 3261 §17.1 with the RFC 6026 Accepted state.

use std::time::Instant;

use super::{ClientTxId, Endpoint, Retransmit, TxEvent, TxId, TIMER_C};
use crate::message::{Method, Request, Response};
use crate::transport::Peer;

/// RFC 3261 §17.1.3: the top Via branch plus the CSeq method (so the
/// CANCEL, which shares the INVITE's branch, is a different transaction).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ClientKey {
    branch: String,
    method: Method,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    /// INVITE "Calling" / non-INVITE "Trying": no response yet.
    Calling,
    Proceeding,
    /// INVITE got a 2xx (RFC 6026): Timer M keeps absorbing strays.
    Accepted,
    Completed,
}

pub(super) struct ClientTx {
    key: ClientKey,
    invite: bool,
    state: ClientState,
    request: Request,
    request_bytes: Vec<u8>,
    dest: Peer,
    /// The ACK we generated for a non-2xx final, resent on retransmissions.
    ack: Option<Vec<u8>>,
    retransmit: Option<Retransmit>,
    /// Timer B, C, D, F, K or M depending on state.
    deadline: Option<Instant>,
    pub(super) scheduled: Option<Instant>,
}

/// RFC 3261 §17.1.1.3: the ACK for a non-2xx final belongs to the INVITE
/// transaction: same Request-URI, top Via, From, Call-ID, CSeq number and
/// Route; To from the response (it carries the peer's tag).
fn ack_for(invite: &Request, response: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(via) = invite.headers.vias().next() {
        ack.headers.push("Via", via);
    }
    ack.headers.push("Max-Forwards", "70");
    if let Some(from) = invite.headers.get("From") {
        ack.headers.push("From", from);
    }
    if let Some(to) = response.headers.get("To") {
        ack.headers.push("To", to);
    }
    if let Some(call_id) = invite.call_id() {
        ack.headers.push("Call-ID", call_id);
    }
    if let Some((n, _)) = invite.cseq() {
        ack.headers.push("CSeq", format!("{n} ACK"));
    }
    for route in invite.headers.get_all("Route") {
        ack.headers.push("Route", route);
    }
    ack
}

impl Endpoint {
    /// Starts a client transaction for `request`, which must carry a top Via
    /// with a fresh branch (as [`crate::dialog::Dialog::new_request`] makes).
    /// INVITE: Timer A retransmits, Timer B times out, and the layer ACKs
    /// non-2xx finals itself. Other methods: Timer E retransmits, Timer F
    /// times out, Timer K absorbs final retransmissions. An ACK is sent
    /// statelessly and the id returned never appears in an event. Over
    /// TCP/TLS there are no retransmissions (no Timer A or E) and Timers D
    /// and K are zero.
    pub fn send_request(&mut self, now: Instant, request: Request, dest: Peer) -> ClientTxId {
        let id = ClientTxId(self.next_id());
        let data = request.to_bytes();
        self.transmit(dest, data.clone());
        if request.method == Method::Ack {
            return id;
        }
        let branch = match request.top_via().and_then(|v| v.branch) {
            Some(b) => b,
            None => {
                tracing::warn!(method = %request.method, "request without a Via branch: responses cannot match");
                format!("missing-branch-{}", id.0)
            }
        };
        let t = self.timers;
        let invite = request.method == Method::Invite;
        let key = ClientKey {
            branch,
            method: request.method.clone(),
        };
        let cap = if invite { None } else { Some(t.t2) };
        let retransmit = (!dest.transport.is_reliable()).then(|| Retransmit::start(now, t.t1, cap));
        let tx = ClientTx {
            key: key.clone(),
            invite,
            state: ClientState::Calling,
            request,
            request_bytes: data,
            dest,
            ack: None,
            retransmit,
            deadline: Some(now + t.t1x64()),
            scheduled: None,
        };
        self.clients.insert(id, tx);
        self.client_index.insert(key, id);
        self.reschedule_client(id);
        self.prune_deadlines();
        id
    }

    /// A connection we opened to `dest` could not be set up: every client
    /// transaction to that transport and address still waiting for its
    /// first response ends with [`TxEvent::Timeout`] now instead of after
    /// Timer B/F (RFC 3261 §17.1.1.2, §17.1.2.2: a transport error
    /// terminates the transaction and informs the TU).
    pub fn handle_transport_error(&mut self, dest: Peer) {
        let mut failed: Vec<ClientTxId> = self
            .clients
            .iter()
            .filter(|(_, tx)| {
                tx.state == ClientState::Calling
                    && tx.dest.transport == dest.transport
                    && tx.dest.addr == dest.addr
            })
            .map(|(id, _)| *id)
            .collect();
        failed.sort();
        for id in failed {
            self.remove_client(id);
            self.event(TxEvent::Timeout {
                tx: TxId::Client(id),
            });
        }
        self.prune_deadlines();
    }

    pub(super) fn handle_response(&mut self, now: Instant, response: Response) {
        let key = match (response.top_via().and_then(|v| v.branch), response.cseq()) {
            (Some(branch), Some((_, method))) => ClientKey { branch, method },
            _ => return,
        };
        let Some(&id) = self.client_index.get(&key) else {
            tracing::debug!(
                status = response.status,
                "response matches no client transaction"
            );
            return;
        };
        let t = self.timers;
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        let status = response.status;
        let reliable = tx.dest.transport.is_reliable();
        let fresh = matches!(tx.state, ClientState::Calling | ClientState::Proceeding);
        match (tx.invite, fresh, status) {
            (_, true, 100..=199) => {
                if tx.invite {
                    tx.retransmit = None;
                    tx.deadline = Some(now + TIMER_C);
                } else if let Some(r) = tx.retransmit.as_mut() {
                    // §17.1.2.2: in Proceeding Timer E is reset to T2.
                    r.interval = t.t2;
                }
                tx.state = ClientState::Proceeding;
            }
            (true, true, 200..=299) => {
                tx.state = ClientState::Accepted;
                tx.retransmit = None;
                tx.deadline = Some(now + t.t1x64()); // Timer M
            }
            (true, true, _) => {
                let ack = ack_for(&tx.request, &response).to_bytes();
                tx.state = ClientState::Completed;
                tx.retransmit = None;
                tx.deadline = Some(now + t.timer_d(reliable));
                tx.ack = Some(ack.clone());
                let dest = tx.dest;
                self.transmit(dest, ack);
            }
            (false, true, _) => {
                tx.state = ClientState::Completed;
                tx.retransmit = None;
                tx.deadline = Some(now + t.timer_i_k(reliable)); // Timer K
            }
            (true, false, 200..=299) if tx.state == ClientState::Accepted => {}
            (true, false, 300..) if tx.state == ClientState::Completed => {
                if let Some(ack) = tx.ack.clone() {
                    let dest = tx.dest;
                    self.transmit(dest, ack);
                }
                return;
            }
            _ => return, // retransmission or stray: absorbed
        }
        self.reschedule_client(id);
        self.event(TxEvent::Response { tx: id, response });
    }

    pub(super) fn fire_client(&mut self, now: Instant, id: ClientTxId, at: Instant) {
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        if tx.scheduled != Some(at) {
            return; // stale heap entry
        }
        tx.scheduled = None;
        if tx.deadline.is_some_and(|d| d <= now) {
            let timed_out = matches!(tx.state, ClientState::Calling | ClientState::Proceeding);
            self.remove_client(id);
            if timed_out {
                self.event(TxEvent::Timeout {
                    tx: TxId::Client(id),
                });
            }
            return;
        }
        if tx.retransmit.as_mut().is_some_and(|r| r.fire(now)) {
            let (dest, data) = (tx.dest, tx.request_bytes.clone());
            self.transmit(dest, data);
        }
        self.reschedule_client(id);
    }

    fn reschedule_client(&mut self, id: ClientTxId) {
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        let r = tx.retransmit.map(|r| r.at);
        let next = match (r, tx.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if next != tx.scheduled {
            tx.scheduled = next;
            self.schedule(next, TxId::Client(id));
        }
    }

    fn remove_client(&mut self, id: ClientTxId) {
        if let Some(tx) = self.clients.remove(&id) {
            if self.client_index.get(&tx.key) == Some(&id) {
                self.client_index.remove(&tx.key);
            }
        }
    }
}
