//! A call's own timers: both dialogs' session timers (RFC 4028) and the
//! retransmission of our reliable provisionals (RFC 3262).
//!
//! Both state machines are sans-IO in `sip-stack`; this module feeds them
//! the time from the signalling loop's timer heap and does what they ask:
//! refresh a session (UPDATE when the peer allows it, else a re-INVITE
//! with our unchanged SDP), hang up when it expires, resend a 180, or give
//! up on a caller that never PRACKs.
//!
//! The engine is a B2BUA, so it keeps each dialog alive on its own: the
//! caller's (we are its UAS) and the callee's (we are its UAC, and ask for
//! timers in the INVITE). Whichever side the peer makes us refresh, we
//! refresh; whichever side stops refreshing ends the whole call.

use super::call::{Call, EndReason, KeepAlive};
use super::{ClientPurpose, Signalling};
use sip_stack::dialog::Dialog;
use sip_stack::message::{Method, Request, Response};
use sip_stack::reliable::UasAction;
use sip_stack::session_timer::{self, Refresher, TimerAction};
use sip_stack::transaction::ClientTxId;
use sip_stack::transport::Peer;
use std::cmp::Reverse;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Which of a call's two dialogs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller's dialog: we are its UAS.
    Caller,
    /// The bridged-to party's dialog: we are its UAC.
    Callee,
}

/// One dialog of a call, borrowed for a refresh.
struct DialogSide<'a> {
    dialog: &'a mut Dialog,
    keepalive: &'a mut KeepAlive,
    /// Where requests go when the remote target names no usable address.
    fallback: Peer,
    /// Our current SDP in that dialog, for a refresh by re-INVITE.
    sdp: Vec<u8>,
}

fn side_of(call: &mut Call, side: Side) -> Option<DialogSide<'_>> {
    match side {
        Side::Caller => Some(DialogSide {
            sdp: call.answer.to_string().into_bytes(),
            dialog: &mut call.dialog,
            keepalive: &mut call.keepalive,
            fallback: call.signalling_source,
        }),
        Side::Callee => {
            let out = call.outbound.as_mut()?;
            Some(DialogSide {
                sdp: out.invite.body.to_vec(),
                dialog: out.dialog.as_mut()?,
                keepalive: &mut out.keepalive,
                fallback: out.dest,
            })
        }
    }
}

impl Signalling {
    /// Puts the call's next due time on the heap (if it has one).
    pub(super) fn schedule_call_timers(&mut self, call_id: &str) {
        let Some(call) = self.calls.get(call_id).filter(|c| !c.is_ending()) else {
            return;
        };
        let caller = call.keepalive.timer.map(|s| s.deadline());
        let callee = call
            .outbound
            .as_ref()
            .and_then(|o| o.keepalive.timer)
            .map(|s| s.deadline());
        let reliable = call.reliable.as_ref().and_then(|r| r.deadline());
        if let Some(at) = [caller, callee, reliable].into_iter().flatten().min() {
            self.call_timers.push(Reverse((at, call_id.to_owned())));
        }
    }

    /// Runs every call timer due at `now`.
    pub(super) fn fire_call_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.call_timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, call_id))) = self.call_timers.pop() else {
                break;
            };
            self.run_call_timers(&call_id, now);
        }
    }

    fn run_call_timers(&mut self, call_id: &str, now: Instant) {
        let Some(call) = self.calls.get_mut(call_id).filter(|c| !c.is_ending()) else {
            return;
        };
        let reliable = call.reliable.as_mut().and_then(|r| r.poll(now));
        let resend = call
            .reliable
            .as_ref()
            .and_then(|r| r.pending_response())
            .cloned();
        let caller = call.keepalive.timer.as_mut().and_then(|s| s.poll(now));
        let callee = call
            .outbound
            .as_mut()
            .and_then(|o| o.keepalive.timer.as_mut())
            .and_then(|s| s.poll(now));
        let (span, invite_tx) = (call.span.clone(), call.invite_tx);
        match reliable {
            Some(UasAction::Retransmit) => {
                if let Some(resp) = resend {
                    self.respond(invite_tx, resp);
                }
            }
            Some(UasAction::GiveUp) => {
                span.in_scope(|| warn!("no PRACK for our reliable provisional: 504"));
                self.release_outbound(call_id);
                return self.fail_call(call_id, 504, "Server Time-out", EndReason::PrackTimeout);
            }
            None => {}
        }
        for (side, action) in [(Side::Caller, caller), (Side::Callee, callee)] {
            match action {
                Some(TimerAction::Refresh) => self.send_session_refresh(call_id, side),
                Some(TimerAction::Expire) => {
                    span.in_scope(|| warn!(?side, "session timer expired without a refresh: BYE"));
                    return self.hangup(call_id, EndReason::SessionExpired);
                }
                None => {}
            }
        }
        self.schedule_call_timers(call_id);
    }

    /// We are the refresher: UPDATE without a body if the peer allows it
    /// (cheaper, no ACK), else a re-INVITE with our unchanged SDP.
    fn send_session_refresh(&mut self, call_id: &str, side: Side) {
        let min_se = self.config.sip.session_min_se_secs;
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let span = call.span.clone();
        let Some(d) = side_of(call, side) else {
            return;
        };
        let Some(interval) = d.keepalive.timer.map(|s| s.interval_secs()) else {
            return;
        };
        let method = if d.keepalive.allows_update {
            Method::Update
        } else {
            Method::Invite
        };
        let dest = super::identity::dialog_target(&d.dialog.remote_target, d.fallback);
        let sent_by = self.me.sent_by(dest.transport);
        let mut req = d
            .dialog
            .new_request(method.clone(), dest.transport, &sent_by);
        let h = &mut req.headers;
        h.push("Session-Expires", format!("{interval};refresher=uac"));
        h.push("Min-SE", min_se.to_string());
        h.push("Supported", super::SUPPORTED);
        h.push("Allow", super::ALLOW);
        if method == Method::Invite {
            h.push("Content-Type", "application/sdp");
            req.body = d.sdp.into();
        }
        d.keepalive.in_flight = Some(method.clone());
        d.keepalive.ack = None;
        span.in_scope(|| info!(%method, interval, ?side, "refreshing the session"));
        let (tx, _) = self.send_originated(req, dest);
        let owner = call_id.to_owned();
        let purpose = ClientPurpose::SessionRefresh(side);
        self.client_txs
            .retain(|_, (id, why)| *id != owner || *why != purpose);
        self.client_txs.insert(tx, (owner, purpose));
    }

    /// The peer's answer to our refresh.
    pub(super) fn on_refresh_response(
        &mut self,
        tx: ClientTxId,
        call_id: &str,
        side: Side,
        resp: Response,
    ) {
        if resp.status < 200 {
            return;
        }
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(call_id).filter(|c| !c.is_ending()) else {
            self.client_txs.remove(&tx);
            return;
        };
        let span = call.span.clone();
        let Some(mut d) = side_of(call, side) else {
            self.client_txs.remove(&tx);
            return;
        };
        let is_invite = resp.cseq().is_some_and(|(_, m)| m == Method::Invite);
        match resp.status {
            200..=299 => {
                if is_invite {
                    // ACK the 2xx ourselves (RFC 3261 §13.2.2.4); the
                    // mapping stays so a retransmitted 2xx gets it again.
                    let (ack, dest) = refresh_ack(&self.me, &mut d, &resp);
                    self.endpoint.send_stateless(dest, ack);
                } else {
                    self.client_txs.remove(&tx);
                }
                if d.keepalive.in_flight.take().is_none() {
                    return; // a retransmitted 2xx: already counted
                }
                restart_from_answer(d.keepalive, &resp, now);
                span.in_scope(|| info!(status = resp.status, ?side, "session refresh answered"));
            }
            481 | 408 => {
                self.client_txs.remove(&tx);
                span.in_scope(|| {
                    warn!(
                        status = resp.status,
                        ?side,
                        "session refresh says the dialog is gone"
                    )
                });
                return self.hangup(call_id, EndReason::SessionExpired);
            }
            491 => {
                // Glare: wait 0–2 s (RFC 3261 §14.1) and try again.
                self.client_txs.remove(&tx);
                d.keepalive.in_flight = None;
                let wait = Duration::from_millis(rand::random_range(0..2_000));
                if let Some(timer) = d.keepalive.timer.as_mut() {
                    timer.retry_refresh(now + wait);
                }
            }
            405 | 501 if !is_invite => {
                // The peer listed UPDATE but refuses it: use re-INVITE.
                self.client_txs.remove(&tx);
                d.keepalive.in_flight = None;
                d.keepalive.allows_update = false;
                if let Some(timer) = d.keepalive.timer.as_mut() {
                    timer.retry_refresh(now);
                }
            }
            status => {
                // Anything else: the session lives on until it expires
                // (RFC 4028 §10), then we hang up.
                self.client_txs.remove(&tx);
                d.keepalive.in_flight = None;
                span.in_scope(|| warn!(status, ?side, "session refresh refused"));
            }
        }
        self.schedule_call_timers(call_id);
    }

    /// Our refresh got no answer at all (Timer B/F).
    pub(super) fn on_refresh_timeout(&mut self, call_id: &str) {
        if let Some(call) = self.calls.get(call_id) {
            call.span
                .in_scope(|| warn!("session refresh unanswered: ending the call"));
        }
        self.hangup(call_id, EndReason::SessionExpired);
    }
}

/// The ACK for a 2xx to our refresh re-INVITE: built once, then resent
/// as is for retransmitted 2xx.
fn refresh_ack(
    me: &super::identity::LocalIdentity,
    d: &mut DialogSide<'_>,
    resp: &Response,
) -> (Vec<u8>, Peer) {
    if let Some(ack) = &d.keepalive.ack {
        return ack.clone();
    }
    let dest = super::identity::dialog_target(&d.dialog.remote_target, d.fallback);
    let sent_by = me.sent_by(dest.transport);
    let mut ack: Request = d.dialog.new_request(Method::Ack, dest.transport, &sent_by);
    if let Some((n, _)) = resp.cseq() {
        ack.headers.set("CSeq", format!("{n} ACK"));
    }
    let ack = (ack.to_bytes(), dest);
    d.keepalive.ack = Some(ack.clone());
    ack
}

/// The interval a 2xx to our refresh agreed; without Session-Expires in
/// it the session has no timer any more.
fn restart_from_answer(keepalive: &mut KeepAlive, resp: &Response, now: Instant) {
    keepalive.timer = session_timer::from_response(resp).map(|agreed| {
        let we_refresh = agreed.refresher == Refresher::Uac;
        session_timer::SessionTimer::new(now, agreed.interval, we_refresh)
    });
}
