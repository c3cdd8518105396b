//! Attended transfer when the engine holds both calls (RFC 3891 Replaces
//! in a REFER, RFC 5589 §7; or the `Transfer` RPC with a consultation call).
//!
//! An agent talking to a caller (call 1, the agent bridged-to) dials a
//! colleague through the engine (call 2, the agent its caller), then
//! transfers: its REFER on call 1 names its call-2 dialog in Replaces. A
//! B2BUA needs no new INVITE for that: both remaining parties are already
//! connected to it. The engine bridges call 1's caller to call 2's
//! bridged-to party, moves that party's leg and dialog into call 1, sends
//! BYE to the agent on both dialogs and ends call 2 (`transferred`). The
//! caller keeps its dialog, recording and event stream, as in a blind
//! transfer; nobody is re-INVITEd, so nobody hears a gap.

use super::call::EndReason;
use super::{ControlError, Signalling};
use crate::proto::{call_event, Transferred};
use sip_stack::message::{Request, Response};
use sip_stack::replaces::Replaces;
use sip_stack::transaction::ServerTxId;
use tracing::{info, warn};

/// Which of the engine's dialogs a Replaces names.
pub(super) enum Named {
    /// A call's caller dialog (the call's id).
    CallerOf(String),
    /// A call's bridged-to dialog (the call's id).
    CalleeOf(String),
    /// None: the transfer target must hold it.
    NotOurs,
}

impl Signalling {
    /// Looks a Replaces up among our confirmed or early dialogs.
    pub(super) fn dialog_named_by(&self, replaces: &Replaces) -> Named {
        if let Some(call) = self.calls.get(&replaces.call_id) {
            if replaces.names(&call.dialog) {
                return Named::CallerOf(call.id.clone());
            }
        }
        let owner = self.outbound_ids.get(&replaces.call_id);
        let named = owner.and_then(|id| self.calls.get(id)).filter(|call| {
            call.outbound
                .as_ref()
                .and_then(|o| o.dialog.as_ref())
                .is_some_and(|d| replaces.names(d))
        });
        match named {
            Some(call) => Named::CalleeOf(call.id.clone()),
            None => Named::NotOurs,
        }
    }

    /// A REFER whose Replaces names `consultation`'s caller dialog: 202,
    /// NOTIFY 100, then the join (whose NOTIFY 200 and BYEs follow).
    pub(super) fn refer_to_consultation(
        &mut self,
        tx: ServerTxId,
        req: &Request,
        call_id: &str,
        consultation: &str,
    ) {
        if let Err(e) = self.check_join(call_id, consultation) {
            let (status, reason) = match e {
                ControlError::FailedPrecondition(_) => (491, "Request Pending"),
                ControlError::InvalidArgument(_) => (400, "Bad Request"),
                _ => (481, "Call/Transaction Does Not Exist"),
            };
            warn!(call_id, consultation, error = %e, "attended transfer refused");
            return self.reject(tx, req, status, reason);
        }
        self.respond(tx, Response::for_request(req, 202, "Accepted"));
        self.notify_transferor(call_id, "SIP/2.0 100 Trying", false);
        if let Err(e) = self.join_consultation(call_id, consultation, "callee") {
            warn!(call_id, consultation, error = %e, "attended transfer failed");
            self.notify_transferor(call_id, "SIP/2.0 500 Server Internal Error", true);
        }
    }

    /// Whether `call_id`'s caller can be handed to `consultation`'s
    /// bridged-to party now: both answered and steady, and that party
    /// still there.
    fn check_join(&self, call_id: &str, consultation: &str) -> Result<(), ControlError> {
        if call_id == consultation {
            return Err(ControlError::InvalidArgument(
                "a call cannot be its own consultation call".into(),
            ));
        }
        let live = |id: &str| {
            self.calls
                .get(id)
                .filter(|c| !c.is_ending())
                .ok_or_else(|| ControlError::NotFound(format!("no call with id {id}")))
        };
        let (call, consult) = (live(call_id)?, live(consultation)?);
        if call.is_ringing() || call.transfer.is_some() {
            return Err(ControlError::FailedPrecondition(
                "the call is not answered, or a transfer is already under way".into(),
            ));
        }
        let answered_party = consult
            .outbound
            .as_ref()
            .is_some_and(|o| o.dialog.is_some());
        if consult.is_ringing() || consult.transfer.is_some() || !answered_party {
            return Err(ControlError::FailedPrecondition(
                "the consultation call has no answered bridged-to party".into(),
            ));
        }
        Ok(())
    }

    /// Bridges `call_id`'s caller to `consultation`'s bridged-to party and
    /// releases whoever handed it over (see the module docs).
    pub(super) fn join_consultation(
        &mut self,
        call_id: &str,
        consultation: &str,
        by: &'static str,
    ) -> Result<(), ControlError> {
        self.check_join(call_id, consultation)?;
        let (Some(call), Some(consult)) = (self.calls.get(call_id), self.calls.get(consultation))
        else {
            return Err(ControlError::NotFound(call_id.into()));
        };
        let Some(party) = consult.outbound.as_ref() else {
            return Err(ControlError::NotFound(consultation.into()));
        };
        // The caller's leg leaves its bridge (or the engine's audio) for
        // the party's, which leaves the agent's; nothing else moves yet.
        self.media
            .bridge(call.leg(), &party.leg)
            .map_err(|e| ControlError::Unavailable(format!("bridging failed: {e}")))?;

        let Some(party) = self
            .calls
            .get_mut(consultation)
            .and_then(|c| c.outbound.take())
        else {
            return Err(ControlError::NotFound(consultation.into()));
        };
        let target = party.invite.uri.clone();
        self.outbound_ids
            .insert(party.call_id.clone(), call_id.to_owned());
        let Some(call) = self.calls.get_mut(call_id) else {
            return Err(ControlError::NotFound(call_id.into()));
        };
        let old = call.outbound.replace(party);
        let span = call.span.clone();
        span.in_scope(|| info!(%target, consultation, by, "attended transfer: bridged"));
        self.release_transferor(call_id, old, by);
        self.schedule_call_timers(call_id); // the party's keep-alive moved too
                                            // The agent's consultation dialog: BYE, and that call is over
                                            // (its bridged-to party lives on in `call_id`).
        self.hang_up_caller(consultation, EndReason::Transferred);
        let event = Transferred {
            target,
            by: by.into(),
            status: 200,
            consultation_call_id: consultation.to_owned(),
        };
        self.bus
            .publish(call_id, call_event::Event::Transferred(event));
        Ok(())
    }
}
