//! Ending calls: BYE in either direction, CANCEL, hang-up commands, timeouts,
//! and stopping the media once signalling is done with it.

use super::call::{EndReason, Outbound};
use super::identity::LocalIdentity;
use super::{ClientPurpose, Internal, Signalling};
use sip_stack::message::{Method, Request, Response};
use sip_stack::transaction::{ClientTxId, ServerTxId, TxId};
use sip_stack::transport::Peer;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// A request that releases a party we called, its purpose and destination.
pub(super) type Release = (Request, ClientPurpose, Peer);

/// The BYE (answered) or CANCEL (still ringing) that releases a party we
/// called; `None` when it already hung up. Forgets the dialog, so nothing
/// else is sent to it.
pub(super) fn release_request(me: &LocalIdentity, out: &mut Outbound) -> Option<Release> {
    match out.dialog.take() {
        Some(mut dialog) => {
            let dest = super::identity::dialog_target(&dialog.remote_target, out.dest);
            let bye = dialog.new_request(Method::Bye, dest.transport, &me.sent_by(dest.transport));
            Some((bye, ClientPurpose::Bye, dest))
        }
        None if out.ack.is_none() => Some((out.invite.cancel(), ClientPurpose::Cancel, out.dest)),
        None => None,
    }
}

/// How long a media worker gets to stop a leg and finalize its recording.
const LEG_STOP_TIMEOUT: Duration = Duration::from_secs(5);

impl Signalling {
    /// A BYE from the caller, or from the bridged-to party.
    pub(super) fn on_bye(&mut self, tx: ServerTxId, req: Request) {
        let call_id = req.call_id().unwrap_or_default().to_owned();
        if self
            .calls
            .get(&call_id)
            .is_some_and(|c| c.dialog.matches(&req))
        {
            self.respond(tx, Response::for_request(&req, 200, "OK"));
            self.release_outbound(&call_id);
            self.end_call(&call_id, EndReason::RemoteBye);
            return;
        }
        let owner = self.outbound_ids.get(&call_id).cloned();
        let from_callee = owner
            .as_ref()
            .and_then(|id| self.calls.get(id))
            .is_some_and(|c| {
                c.outbound
                    .as_ref()
                    .and_then(|o| o.dialog.as_ref())
                    .is_some_and(|d| d.matches(&req))
            });
        match owner.filter(|_| from_callee) {
            Some(owner) => {
                self.respond(tx, Response::for_request(&req, 200, "OK"));
                let transferring = match self.calls.get_mut(&owner) {
                    Some(call) => {
                        if let Some(out) = call.outbound.as_mut() {
                            out.dialog = None; // that dialog is over: nothing more to send it
                        }
                        call.transfer.is_some()
                    }
                    None => false,
                };
                // A blind transferor may hang up at once: the caller waits
                // for the transfer target instead.
                if !transferring {
                    self.hang_up_caller(&owner, EndReason::CalleeBye);
                }
            }
            None => {
                let resp = Response::for_request(&req, 481, "Call/Transaction Does Not Exist");
                self.respond(tx, resp);
            }
        }
    }

    /// The caller cancelled before we answered (the layer already said 200 to the CANCEL).
    pub(super) fn on_cancelled(&mut self, invite_tx: ServerTxId) {
        let found = self.calls.values().find(|c| c.invite_tx == invite_tx);
        let Some(call_id) = found.map(|c| c.id.clone()) else {
            return;
        };
        if let Some(call) = self.calls.get(&call_id) {
            let resp = Response::for_request(&call.invite, 487, "Request Terminated");
            self.respond(invite_tx, resp);
        }
        self.release_outbound(&call_id);
        self.end_call(&call_id, EndReason::Cancelled);
    }

    pub(super) fn on_timeout(&mut self, tx: TxId) {
        match tx {
            TxId::Client(id) => match self.client_txs.remove(&id) {
                Some((_, ClientPurpose::Register(i))) => self.on_register_response(id, i, None),
                Some((_, ClientPurpose::TrunkPing(i))) => {
                    // on_trunk_ping forgets the transaction itself; it is gone.
                    self.on_trunk_ping(id, i, None);
                }
                Some((call_id, ClientPurpose::OutboundInvite)) => {
                    warn!(call_id = %call_id, "bridged-to party never answered");
                    if !self.try_next_destination(&call_id, 408) {
                        self.fail_outbound(&call_id, 408, "Request Timeout");
                    }
                }
                Some((call_id, ClientPurpose::SessionRefresh(_))) => {
                    self.on_refresh_timeout(&call_id)
                }
                Some((call_id, ClientPurpose::TransferInvite)) => {
                    self.transfer_failed(&call_id, 408, "Request Timeout")
                }
                Some((call_id, why)) => warn!(call_id = %call_id, ?why, "no answer to our request"),
                None => {}
            },
            TxId::Server(id) => {
                let found = self.calls.values().find(|c| c.invite_tx == id);
                if let Some(call_id) = found.map(|c| c.id.clone()) {
                    self.hangup(&call_id, EndReason::AckTimeout);
                }
            }
        }
    }

    /// Ends a call from our side: both parties are released, then the media stops.
    pub(super) fn hangup(&mut self, call_id: &str, reason: EndReason) {
        self.release_outbound(call_id);
        self.hang_up_caller(call_id, reason);
    }

    /// Releases the caller: BYE once answered, a final response while ringing.
    pub(super) fn hang_up_caller(&mut self, call_id: &str, reason: EndReason) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        if call.is_ending() {
            return;
        }
        if call.is_ringing() {
            let (status, phrase) = match reason {
                EndReason::Shutdown => (503, "Service Unavailable"),
                _ => (480, "Temporarily Unavailable"),
            };
            let resp = Response::for_request(&call.invite, status, phrase);
            let tx = call.invite_tx;
            self.respond(tx, resp);
        } else {
            let dest =
                super::identity::dialog_target(&call.dialog.remote_target, call.signalling_source);
            let sent_by = self.me.sent_by(dest.transport);
            let bye = call
                .dialog
                .new_request(Method::Bye, dest.transport, &sent_by);
            call.span
                .in_scope(|| info!(%dest, ?reason, "sending BYE to the caller"));
            let (tx, _) = self.send_originated(bye, dest);
            self.client_txs
                .insert(tx, (call_id.to_owned(), ClientPurpose::Bye));
        }
        self.end_call(call_id, reason);
    }

    /// Releases the bridged-to party, if any, and a transfer target being
    /// called: BYE once answered, CANCEL before.
    pub(super) fn release_outbound(&mut self, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id).filter(|c| !c.is_ending()) else {
            return;
        };
        let span = call.span.clone();
        let mut releases = Vec::with_capacity(2);
        if let Some(out) = call.outbound.as_mut() {
            releases.extend(release_request(&self.me, out));
        }
        if let Some(transfer) = call.transfer.as_mut() {
            releases.extend(release_request(&self.me, &mut transfer.target));
        }
        for release in releases {
            span.in_scope(|| info!(dest = %release.2, method = %release.0.method, "releasing a party we called"));
            self.send_release(call_id, release);
        }
    }

    /// Sends a BYE or CANCEL from [`release_request`] and tracks it.
    pub(super) fn send_release(&mut self, call_id: &str, (request, purpose, dest): Release) {
        let tx = match purpose {
            // A CANCEL goes exactly where its INVITE went (RFC 3261 §9.1).
            ClientPurpose::Cancel => self.endpoint.send_request(Instant::now(), request, dest),
            _ => self.send_originated(request, dest).0,
        };
        self.client_txs.insert(tx, (call_id.to_owned(), purpose));
    }

    /// A final response to one of our BYE/CANCEL requests, or a provisional.
    pub(super) fn on_request_answered(&mut self, tx: ClientTxId, status: u16) {
        if status < 200 {
            return;
        }
        if let Some((call_id, why)) = self.client_txs.remove(&tx) {
            debug!(call_id = %call_id, ?why, status, "request answered");
        }
    }

    /// Stops the call's media; the call leaves the table once its recording is final.
    pub(super) fn end_call(&mut self, call_id: &str, reason: EndReason) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(receipts) = call.begin_ending(reason) else {
            return;
        };
        let internal = self.internal_tx.clone();
        let call_id = call_id.to_owned();
        tokio::task::spawn_blocking(move || {
            // The caller's leg carries the recording and the call's counters.
            let mut reports = receipts.into_iter().map(|r| r.wait(LEG_STOP_TIMEOUT));
            let report = reports.next().flatten();
            reports.for_each(drop);
            let _ = internal.send(Internal::LegStopped {
                call_id,
                report: report.map(Box::new),
            });
        });
    }
}
