//! Blind transfer (RFC 3515 REFER, and the `Transfer` RPC): the caller is
//! handed to a new party. A REFER with Replaces (attended transfer) comes
//! here too: `attended` joins a consultation call the engine holds, and a
//! dialog held elsewhere gets the INVITE with Replaces (RFC 3891).
//!
//! The engine is a B2BUA, so the caller never sees the transfer: the
//! engine calls the target from a new media leg and, when it answers,
//! bridges the caller to it, sends BYE to the party it replaces and keeps
//! the same call (same Call-ID, recording and event stream). A REFER from
//! the bridged-to party gets 202 and NOTIFYs with the target's progress
//! (`message/sipfrag`). Until the target answers nothing changes for the
//! caller; a refusal leaves the call as it was, unless the transferor has
//! already hung up, in which case the caller is released.

use super::attended::Named;
use super::call::{EndReason, Outbound};
use super::outbound::{ack_answer, target_uri, uri_user, Answer, PartyInvite};
use super::{ClientPurpose, ControlError, Signalling};
use crate::proto::{call_event, Transferred};
use sip_stack::message::{name_addr_uri, Method, Request, Response};
use sip_stack::replaces::{EmbeddedHeaderError, ReferTarget, Replaces};
use sip_stack::transaction::{ClientTxId, ServerTxId};
use sip_stack::transport::Peer;
use tracing::{info, warn};

/// What a transfer is to: a party to call (blind), or the other party
/// of a consultation call the engine holds (attended).
#[derive(Debug)]
pub enum TransferTo {
    Target(String),
    Consultation(String),
}

/// A blind transfer to start: whom to call, and what to tell them.
struct TransferAsk {
    uri: String,
    target: Peer,
    by: &'static str,
    referred_by: Option<String>,
    /// An attended transfer to a dialog the target holds (RFC 3891).
    replaces: Option<Replaces>,
}

/// A transfer in progress.
pub struct Transfer {
    /// The new party, being called.
    pub target: Outbound,
    /// The Refer-To URI (or the RPC's target), for the event.
    pub uri: String,
    /// "callee" (its REFER) or "control" (the RPC).
    pub by: &'static str,
}

impl Signalling {
    /// A REFER in a call's dialog. Only the bridged-to party may transfer
    /// (the caller would be transferring itself away from a B2BUA).
    pub(super) fn on_refer(&mut self, tx: ServerTxId, req: Request) {
        // (Blind, or attended with Replaces: see `attended`.)
        let call_id = req.call_id().unwrap_or_default();
        let owner = self
            .outbound_ids
            .get(call_id)
            .filter(|owner| {
                self.calls
                    .get(*owner)
                    .and_then(|c| c.outbound.as_ref())
                    .and_then(|o| o.dialog.as_ref())
                    .is_some_and(|d| d.matches(&req))
            })
            .cloned();
        let Some(owner) = owner else {
            let from_caller = self
                .calls
                .get(call_id)
                .is_some_and(|c| c.dialog.matches(&req));
            return match from_caller {
                true => self.reject(tx, &req, 403, "Only the bridged-to party can transfer"),
                false => self.reject(tx, &req, 481, "Call/Transaction Does Not Exist"),
            };
        };
        let refer_to = req
            .headers
            .get("Refer-To")
            .map(|v| name_addr_uri(v).unwrap_or(v).trim().to_owned());
        let Some(refer_to) = refer_to else {
            return self.reject(tx, &req, 400, "Missing Refer-To");
        };
        let refer_to = match ReferTarget::parse(&refer_to) {
            Ok(target) => target,
            Err(EmbeddedHeaderError::Unsupported(_)) => {
                return self.reject(tx, &req, 501, "Only Replaces may be embedded in Refer-To")
            }
            Err(_) => return self.reject(tx, &req, 400, "Malformed Refer-To headers"),
        };
        if let Some(replaces) = &refer_to.replaces {
            match self.dialog_named_by(replaces) {
                Named::CallerOf(consultation) => {
                    return self.refer_to_consultation(tx, &req, &owner, &consultation)
                }
                Named::CalleeOf(other) => {
                    // Both remaining parties would be callers of the engine.
                    warn!(call_id = %owner, other, "attended transfer between two callers");
                    return self.reject(tx, &req, 501, "Cannot join two calls' callers");
                }
                Named::NotOurs => {} // the target holds it: INVITE it with Replaces
            }
        }
        let Some(target) = transfer_target(&refer_to.uri) else {
            return self.reject(
                tx,
                &req,
                400,
                "Refer-To must be a sip: URI with an IP address",
            );
        };
        let referred_by = req
            .headers
            .get("Referred-By")
            .map(str::to_owned)
            .or_else(|| req.headers.get("From").map(sip_stack::message::without_tag));
        let ask = TransferAsk {
            uri: refer_to.uri,
            target,
            by: "callee",
            referred_by,
            replaces: refer_to.replaces,
        };
        match self.start_transfer(&owner, ask) {
            Ok(()) => {
                self.respond(tx, Response::for_request(&req, 202, "Accepted"));
                self.notify_transferor(&owner, "SIP/2.0 100 Trying", false);
            }
            Err(ControlError::FailedPrecondition(_)) => {
                self.reject(tx, &req, 491, "Request Pending")
            }
            Err(_) => self.reject(tx, &req, 503, "Service Unavailable"),
        }
    }

    /// The `Transfer` RPC.
    pub(super) fn transfer_by_control(
        &mut self,
        call_id: &str,
        to: TransferTo,
    ) -> Result<(), ControlError> {
        let target = match to {
            TransferTo::Target(target) => target,
            TransferTo::Consultation(consultation) => {
                return self.join_consultation(call_id, &consultation, "control")
            }
        };
        let peer = transfer_target(&target).ok_or_else(|| {
            ControlError::InvalidArgument(format!(
                "target {target:?} is not a sip: URI with an IP address"
            ))
        })?;
        let ask = TransferAsk {
            uri: target,
            target: peer,
            by: "control",
            referred_by: None,
            replaces: None,
        };
        self.start_transfer(call_id, ask)
    }

    /// Calls the target for an answered call. Err when the call is not
    /// there or not answered, or a transfer is already under way.
    fn start_transfer(&mut self, call_id: &str, ask: TransferAsk) -> Result<(), ControlError> {
        let TransferAsk {
            uri,
            target,
            by,
            referred_by,
            replaces,
        } = ask;
        let call = self
            .calls
            .get(call_id)
            .filter(|c| !c.is_ending())
            .ok_or_else(|| ControlError::NotFound(format!("no call with id {call_id}")))?;
        if call.is_ringing() || call.transfer.is_some() {
            return Err(ControlError::FailedPrecondition(
                "the call is not answered, or a transfer is already under way".into(),
            ));
        }
        let offer = call.caller_media;
        let Some(codec) = super::invite::media_codec(offer.codec) else {
            return Err(ControlError::FailedPrecondition(
                "the call's codec cannot be offered".into(),
            ));
        };
        let user = uri_user(&uri).unwrap_or("switchboard");
        let sips = super::identity::is_sips(&uri);
        let party = PartyInvite {
            call_id,
            caller_invite: &call.invite.clone(),
            caller_leg: &call.leg().clone(),
            offer,
            srtp: self.srtp_mode_for_trunk(None),
            codec,
            target,
            uri: target_uri(user, target, sips),
            purpose: ClientPurpose::TransferInvite,
            referred_by,
            replaces,
        };
        let span = call.span.clone();
        let out = span
            .in_scope(|| self.invite_party(party))
            .map_err(|(_, why)| ControlError::Unavailable(why.into()))?;
        span.in_scope(|| info!(%uri, by, "transfer: calling the target"));
        if let Some(call) = self.calls.get_mut(call_id) {
            call.transfer = Some(Transfer {
                target: out,
                uri,
                by,
            });
        }
        Ok(())
    }

    /// The transfer target's answer to our INVITE.
    pub(super) fn on_transfer_response(&mut self, call_id: &str, tx: ClientTxId, resp: Response) {
        match resp.status {
            100..=199 => self.on_party_provisional(call_id, &resp, true),
            200..=299 => self.on_transfer_answered(call_id, resp),
            status => {
                self.client_txs.remove(&tx);
                self.transfer_failed(call_id, status, &resp.reason);
            }
        }
    }

    fn on_transfer_answered(&mut self, call_id: &str, resp: Response) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let caller_leg = call.leg().clone();
        let ending = call.is_ending();
        let Some(transfer) = call.transfer.as_mut() else {
            return;
        };
        let media = match ack_answer(&self.me, &mut self.endpoint, &mut transfer.target, &resp) {
            Answer::Retransmission => return,
            Answer::NoDialog => return self.transfer_failed(call_id, 502, "Bad Gateway"),
            Answer::Media(media) => media,
        };
        let Some(media) = media.filter(|_| !ending) else {
            // Unusable SDP, or the call ended meanwhile: hang the target up.
            self.release_transfer_target(call_id);
            return self.transfer_failed(call_id, 488, "Not Acceptable Here");
        };
        if transfer.target.srtp.is_some() {
            let keys = media.srtp.as_ref().and_then(super::srtp::media_keys);
            transfer.target.leg.set_srtp(keys);
        }
        transfer.target.leg.set_remote(media.remote_rtp);
        if let Err(e) = self.media.bridge(&caller_leg, &transfer.target.leg) {
            warn!(error = %e, "transfer: bridge failed");
            self.release_transfer_target(call_id);
            return self.transfer_failed(call_id, 500, "Server Internal Error");
        }
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(Transfer { target, uri, by }) = call.transfer.take() else {
            return;
        };
        let old = call.outbound.replace(target);
        let span = call.span.clone();
        span.in_scope(|| info!(%uri, by, "transfer: the target answered and is bridged"));
        self.release_transferor(call_id, old, by);
        self.schedule_call_timers(call_id); // the new party's keep-alive
        let event = Transferred {
            target: uri,
            by: by.into(),
            status: 200,
            consultation_call_id: String::new(),
        };
        self.bus
            .publish(call_id, call_event::Event::Transferred(event));
    }

    /// The target refused or never answered: tell the transferor, forget
    /// the target, and release the caller if nobody is left to talk to.
    pub(super) fn transfer_failed(&mut self, call_id: &str, status: u16, reason: &str) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(transfer) = call.transfer.take() else {
            return;
        };
        call.span
            .in_scope(|| warn!(status, uri = %transfer.uri, "transfer failed"));
        drop(transfer.target.leg.stop());
        self.outbound_ids.remove(&transfer.target.call_id);
        if transfer.by == "callee" {
            self.notify_transferor(call_id, &format!("SIP/2.0 {status} {reason}"), true);
        }
        let event = Transferred {
            target: transfer.uri,
            by: transfer.by.into(),
            status: u32::from(status),
            consultation_call_id: String::new(),
        };
        self.bus
            .publish(call_id, call_event::Event::Transferred(event));
        let transferor_gone = self
            .calls
            .get(call_id)
            .and_then(|c| c.outbound.as_ref())
            .is_some_and(|o| o.dialog.is_none());
        if transferor_gone {
            self.hang_up_caller(call_id, EndReason::TransferFailed);
        }
    }

    /// NOTIFY (RFC 3515 §2.4.5) to the bridged-to party that sent REFER.
    pub(super) fn notify_transferor(&mut self, call_id: &str, sipfrag: &str, terminated: bool) {
        let Some(mut out) = self.calls.get_mut(call_id).and_then(|c| c.outbound.take()) else {
            return;
        };
        self.notify_party(call_id, &mut out, sipfrag, terminated);
        if let Some(call) = self.calls.get_mut(call_id) {
            call.outbound = Some(out);
        }
    }

    pub(super) fn notify_party(
        &mut self,
        call_id: &str,
        out: &mut Outbound,
        sipfrag: &str,
        terminated: bool,
    ) {
        let Some(dialog) = out.dialog.as_mut() else {
            return; // it already hung up
        };
        let dest = super::identity::dialog_target(&dialog.remote_target, out.dest);
        let sent_by = self.me.sent_by(dest.transport);
        let mut notify = dialog.new_request(Method::Notify, dest.transport, &sent_by);
        let h = &mut notify.headers;
        h.push("Event", "refer");
        h.push(
            "Subscription-State",
            if terminated {
                "terminated;reason=noresource"
            } else {
                "active;expires=60"
            },
        );
        h.push("Content-Type", "message/sipfrag;version=2.0");
        notify.body = format!("{sipfrag}\r\n").into_bytes().into();
        let (tx, _) = self.send_originated(notify, dest);
        self.client_txs
            .insert(tx, (call_id.to_owned(), ClientPurpose::Notify));
    }

    /// The party a transfer replaced: the final NOTIFY if its REFER asked
    /// for the transfer, BYE, and its leg stopped.
    pub(super) fn release_transferor(
        &mut self,
        call_id: &str,
        old: Option<Outbound>,
        by: &'static str,
    ) {
        let Some(mut old) = old else {
            return;
        };
        if by == "callee" {
            self.notify_party(call_id, &mut old, "SIP/2.0 200 OK", true);
        }
        self.say_goodbye(call_id, &mut old);
        self.outbound_ids.remove(&old.call_id);
        drop(old.leg.stop());
    }

    /// BYE to a party the transfer replaced (if it has not hung up).
    fn say_goodbye(&mut self, call_id: &str, out: &mut Outbound) {
        if let Some(release) = super::teardown::release_request(&self.me, out) {
            self.send_release(call_id, release);
        }
    }

    /// Hangs up (CANCEL or BYE) a transfer target we no longer want.
    pub(super) fn release_transfer_target(&mut self, call_id: &str) {
        let release = self
            .calls
            .get_mut(call_id)
            .and_then(|c| c.transfer.as_mut())
            .and_then(|t| super::teardown::release_request(&self.me, &mut t.target));
        if let Some(release) = release {
            self.send_release(call_id, release);
        }
    }
}

/// A transfer target: a `sip:`/`sips:` URI whose host is an IP address
/// (the engine does not resolve DNS), with its transport.
fn transfer_target(uri: &str) -> Option<Peer> {
    let lower = uri.trim().to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
        return None;
    }
    sip_stack::dialog::request_target(uri.trim())
}

#[cfg(test)]
mod tests {
    use super::transfer_target;
    use sip_stack::transport::TransportKind;

    #[test]
    fn transfer_targets_are_sip_uris_with_ip_hosts() {
        let t = transfer_target("sip:agent2@127.0.0.1:5070").unwrap();
        assert_eq!(t.addr, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(t.transport, TransportKind::Udp);
        let t = transfer_target("sip:agent2@127.0.0.1:5070;transport=tcp").unwrap();
        assert_eq!(t.transport, TransportKind::Tcp);
        assert!(transfer_target("sip:agent2@pbx.example.com").is_none());
        assert!(transfer_target("tel:+15551234").is_none());
        assert!(transfer_target("127.0.0.1:5070").is_none());
    }
}
