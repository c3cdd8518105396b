//! Server transactions: RFC 3261 §17.2 with the RFC 6026 Accepted state.

use std::time::Instant;

use super::{response_destination, Endpoint, Retransmit, ServerTxId, TxError, TxEvent, TxId};
use crate::message::{generate_tag, Method, Request, Response, Via};
use crate::transport::Peer;

/// RFC 3261 §17.2.3 matching key. ACK is keyed as INVITE so it finds the
/// transaction whose non-2xx it acknowledges.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum ServerKey {
    /// Branch with the magic cookie + sent-by + method.
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 2543 peers (no magic cookie): the §17.2.3 fallback, simplified to
    /// Call-ID, From tag, CSeq number, the raw top Via and method.
    Legacy {
        call_id: String,
        from_tag: String,
        cseq: u32,
        via: String,
        method: Method,
    },
}

impl ServerKey {
    fn new(req: &Request, via: &Via, method: Method) -> ServerKey {
        match via.rfc3261_branch() {
            Some(branch) => ServerKey::Rfc3261 {
                branch: branch.to_string(),
                sent_by: via.sent_by().to_ascii_lowercase(),
                method,
            },
            None => ServerKey::Legacy {
                call_id: req.call_id().unwrap_or_default().to_string(),
                from_tag: req.from_tag().unwrap_or_default().to_string(),
                cseq: req.cseq().map_or(0, |(n, _)| n),
                via: req.headers.vias().next().unwrap_or_default().to_string(),
                method,
            },
        }
    }
}

/// How an ACK for a 2xx finds its INVITE: Call-ID, CSeq number, From tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct AckKey {
    call_id: String,
    cseq: u32,
    from_tag: String,
}

impl AckKey {
    fn of(req: &Request) -> Option<AckKey> {
        Some(AckKey {
            call_id: req.call_id()?.to_string(),
            cseq: req.cseq()?.0,
            from_tag: req.from_tag().unwrap_or_default().to_string(),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ServerState {
    /// Non-INVITE, nothing sent yet.
    Trying,
    Proceeding,
    /// INVITE answered 2xx (RFC 6026); `acked` once the ACK came.
    Accepted {
        acked: bool,
    },
    Completed,
    /// INVITE error response ACKed; Timer I absorbs ACK retransmissions.
    Confirmed,
}

pub(super) struct ServerTx {
    key: ServerKey,
    invite: bool,
    state: ServerState,
    dest: Peer,
    last_response: Option<Vec<u8>>,
    /// The To tag our responses carry, reused in the 200 to a CANCEL.
    to_tag: Option<String>,
    ack_key: Option<AckKey>,
    retransmit: Option<Retransmit>,
    /// Timer H, I, J or L depending on state.
    deadline: Option<Instant>,
    pub(super) scheduled: Option<Instant>,
}

impl ServerTx {
    fn next_deadline(&self) -> Option<Instant> {
        let r = self.retransmit.map(|r| r.at);
        match (r, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Endpoint {
    pub(super) fn handle_request(&mut self, now: Instant, req: Request, source: Peer) {
        let Some(via) = req.top_via() else {
            tracing::debug!(%source, "request without a usable Via dropped");
            return;
        };
        if req.method == Method::Ack {
            return self.handle_ack(now, req, &via, source);
        }
        let key = ServerKey::new(&req, &via, req.method.clone());
        if let Some(&id) = self.server_index.get(&key) {
            // A retransmission: resend whatever we last said.
            if let Some(tx) = self.servers.get(&id) {
                if let Some(data) = tx.last_response.clone() {
                    let dest = tx.dest;
                    self.transmit(dest, data);
                }
            }
            return;
        }
        let dest = response_destination(&via, source);
        if self.len() >= self.max_transactions {
            tracing::warn!(%source, max = self.max_transactions, "transaction limit reached, 503");
            let mut busy = Response::for_request(&req, 503, "Service Unavailable");
            busy.headers.push("Retry-After", "5");
            busy.set_to_tag(&generate_tag());
            return self.transmit(dest, busy.to_bytes());
        }
        if req.method == Method::Cancel {
            return self.handle_cancel(now, &req, &via, key, dest);
        }
        let invite = req.method == Method::Invite;
        let id = ServerTxId(self.next_id());
        let mut tx = ServerTx {
            key: key.clone(),
            invite,
            state: ServerState::Trying,
            dest,
            last_response: None,
            to_tag: None,
            ack_key: None,
            retransmit: None,
            deadline: None,
            scheduled: None,
        };
        if invite {
            let trying = Response::for_request(&req, 100, "Trying").to_bytes();
            tx.state = ServerState::Proceeding;
            tx.last_response = Some(trying.clone());
            self.transmit(dest, trying);
        }
        self.servers.insert(id, tx);
        self.server_index.insert(key, id);
        self.event(TxEvent::NewRequest {
            tx: id,
            request: req,
            source,
        });
    }

    fn handle_ack(&mut self, now: Instant, req: Request, via: &Via, source: Peer) {
        let key = ServerKey::new(&req, via, Method::Invite);
        let id = self
            .server_index
            .get(&key)
            .or_else(|| AckKey::of(&req).and_then(|k| self.ack_index.get(&k)))
            .copied();
        let Some(tx) = id.and_then(|id| self.servers.get_mut(&id).map(|tx| (id, tx))) else {
            return self.event(TxEvent::Ack {
                request: req,
                source,
            });
        };
        let (id, tx) = tx;
        match tx.state {
            ServerState::Completed => {
                // Timer I: absorb ACK retransmissions for T4 (UDP), then vanish.
                tx.state = ServerState::Confirmed;
                tx.retransmit = None;
                let reliable = tx.dest.transport.is_reliable();
                tx.deadline = Some(now + self.timers.timer_i_k(reliable));
                self.reschedule_server(id);
            }
            ServerState::Accepted { acked: false } => {
                // Stop the 2xx retransmissions; Timer L keeps absorbing
                // INVITE retransmissions until it fires.
                tx.state = ServerState::Accepted { acked: true };
                tx.retransmit = None;
                self.reschedule_server(id);
                self.event(TxEvent::Ack {
                    request: req,
                    source,
                });
            }
            _ => {}
        }
    }

    fn handle_cancel(
        &mut self,
        now: Instant,
        cancel: &Request,
        via: &Via,
        key: ServerKey,
        dest: Peer,
    ) {
        let invite_key = ServerKey::new(cancel, via, Method::Invite);
        let invite = self.server_index.get(&invite_key).copied();
        let mut response = match invite {
            Some(_) => Response::for_request(cancel, 200, "OK"),
            None => Response::for_request(cancel, 481, "Call/Transaction Does Not Exist"),
        };
        let invite_tx = invite.and_then(|id| self.servers.get(&id).map(|tx| (id, tx)));
        let tag = invite_tx
            .and_then(|(_, tx)| tx.to_tag.clone())
            .unwrap_or_else(generate_tag);
        response.set_to_tag(&tag);
        let pending = invite_tx
            .filter(|(_, tx)| tx.state == ServerState::Proceeding)
            .map(|(id, _)| id);
        // The CANCEL is a transaction of its own, so its retransmissions get
        // the same answer.
        let id = ServerTxId(self.next_id());
        let data = response.to_bytes();
        self.servers.insert(
            id,
            ServerTx {
                key: key.clone(),
                invite: false,
                state: ServerState::Completed,
                dest,
                last_response: Some(data.clone()),
                to_tag: Some(tag),
                ack_key: None,
                retransmit: None,
                // Timer J
                deadline: Some(now + self.timers.timer_j(dest.transport.is_reliable())),
                scheduled: None,
            },
        );
        self.server_index.insert(key, id);
        self.reschedule_server(id);
        self.transmit(dest, data);
        if let Some(invite_tx) = pending {
            self.event(TxEvent::Cancelled { invite_tx });
        }
    }

    /// Answers server transaction `id`. Give every response of one
    /// transaction the same To tag ([`Response::set_to_tag`]).
    ///
    /// INVITE: 1xx keeps it Proceeding (and is what a retransmitted INVITE
    /// gets back); 2xx moves it to Accepted (RFC 6026): the 2xx is
    /// retransmitted on the Timer G schedule (T1, 2T1, ... capped at T2)
    /// until the ACK arrives, and Timer L (64*T1) ends it, with
    /// [`TxEvent::Timeout`] if no ACK came; further 2xx are allowed.
    /// 3xx-6xx moves it to Completed: retransmitted on Timer G until the
    /// ACK (absorbed), Timer H gives [`TxEvent::Timeout`]; after the ACK,
    /// Confirmed for Timer I (T4). Non-INVITE: Trying/Proceeding, then
    /// Completed on a final, kept for Timer J (64*T1) to answer
    /// retransmissions. Over TCP/TLS: no Timer G (the 2xx is still
    /// retransmitted, RFC 3261 §13.3.1.4), and Timers I and J are zero.
    pub fn respond(
        &mut self,
        now: Instant,
        id: ServerTxId,
        response: Response,
    ) -> Result<(), TxError> {
        if !(100..700).contains(&response.status) {
            return Err(TxError::InvalidStatus(response.status));
        }
        let t = self.timers;
        let tx = self
            .servers
            .get_mut(&id)
            .ok_or(TxError::UnknownTransaction(id))?;
        let status = response.status;
        let data = response.to_bytes();
        let reliable = tx.dest.transport.is_reliable();
        match (tx.invite, tx.state, status) {
            (_, ServerState::Trying | ServerState::Proceeding, 100..=199) => {
                tx.state = ServerState::Proceeding;
            }
            (true, ServerState::Proceeding, 200..=299)
            | (true, ServerState::Accepted { .. }, 200..=299) => {
                if !matches!(tx.state, ServerState::Accepted { .. }) {
                    tx.deadline = Some(now + t.t1x64()); // Timer L
                }
                tx.state = ServerState::Accepted { acked: false };
                tx.retransmit = Some(Retransmit::start(now, t.t1, Some(t.t2)));
                tx.ack_key = AckKey::of_response(&response);
            }
            (true, ServerState::Proceeding, _) => {
                tx.state = ServerState::Completed;
                tx.retransmit = (!reliable).then(|| Retransmit::start(now, t.t1, Some(t.t2))); // Timer G
                tx.deadline = Some(now + t.t1x64()); // Timer H
            }
            (false, ServerState::Trying | ServerState::Proceeding, _) => {
                tx.state = ServerState::Completed;
                tx.deadline = Some(now + t.timer_j(reliable)); // Timer J
            }
            _ => return Err(TxError::FinalAlreadySent(id)),
        }
        if let Some(tag) = response.to_tag() {
            tx.to_tag = Some(tag.to_string());
        }
        tx.last_response = Some(data.clone());
        let dest = tx.dest;
        if let Some(k) = tx.ack_key.clone() {
            self.ack_index.insert(k, id);
        }
        self.reschedule_server(id);
        self.transmit(dest, data);
        self.prune_deadlines();
        Ok(())
    }

    pub(super) fn fire_server(&mut self, now: Instant, id: ServerTxId, at: Instant) {
        let Some(tx) = self.servers.get_mut(&id) else {
            return;
        };
        if tx.scheduled != Some(at) {
            return; // stale heap entry
        }
        tx.scheduled = None;
        if tx.deadline.is_some_and(|d| d <= now) {
            let timed_out = matches!(
                (tx.invite, tx.state),
                (
                    true,
                    ServerState::Accepted { acked: false } | ServerState::Completed
                )
            );
            self.remove_server(id);
            if timed_out {
                self.event(TxEvent::Timeout {
                    tx: TxId::Server(id),
                });
            }
            return;
        }
        let resend = tx.retransmit.as_mut().is_some_and(|r| r.fire(now));
        if let (true, Some(data)) = (resend, tx.last_response.clone()) {
            let dest = tx.dest;
            self.transmit(dest, data);
        }
        self.reschedule_server(id);
    }

    fn reschedule_server(&mut self, id: ServerTxId) {
        let Some(tx) = self.servers.get_mut(&id) else {
            return;
        };
        let next = tx.next_deadline();
        if next != tx.scheduled {
            tx.scheduled = next;
            self.schedule(next, TxId::Server(id));
        }
    }

    fn remove_server(&mut self, id: ServerTxId) {
        let Some(tx) = self.servers.remove(&id) else {
            return;
        };
        if self.server_index.get(&tx.key) == Some(&id) {
            self.server_index.remove(&tx.key);
        }
        if let Some(k) = tx.ack_key {
            if self.ack_index.get(&k) == Some(&id) {
                self.ack_index.remove(&k);
            }
        }
    }
}

impl AckKey {
    /// The key the ACK to this 2xx will carry (same Call-ID, CSeq number
    /// and From tag as the INVITE the response copied them from).
    fn of_response(resp: &Response) -> Option<AckKey> {
        Some(AckKey {
            call_id: resp.call_id()?.to_string(),
            cseq: resp.cseq()?.0,
            from_tag: resp.from_tag().unwrap_or_default().to_string(),
        })
    }
}
