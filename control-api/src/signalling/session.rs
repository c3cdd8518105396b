//! A call's own timers: the caller dialog's session timer (RFC 4028) and
//! the retransmission of our reliable provisionals (RFC 3262).
//!
//! Both state machines are sans-IO in `sip-stack`; this module feeds them
//! the time from the signalling loop's timer heap and does what they ask:
//! refresh the session (UPDATE when the caller allows it, else a re-INVITE
//! with our unchanged SDP), hang up when it expires, resend a 180, or give
//! up on a caller that never PRACKs.

use super::call::EndReason;
use super::{ClientPurpose, Signalling};
use sip_stack::message::{Method, Response};
use sip_stack::reliable::UasAction;
use sip_stack::session_timer::{self, Refresher, TimerAction};
use sip_stack::transaction::ClientTxId;
use std::cmp::Reverse;
use std::time::{Duration, Instant};
use tracing::{info, warn};

impl Signalling {
    /// Puts the call's next due time on the heap (if it has one).
    pub(super) fn schedule_call_timers(&mut self, call_id: &str) {
        let Some(call) = self.calls.get(call_id).filter(|c| !c.is_ending()) else {
            return;
        };
        let session = call.session.map(|s| s.deadline());
        let reliable = call.reliable.as_ref().and_then(|r| r.deadline());
        if let Some(at) = [session, reliable].into_iter().flatten().min() {
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
        let session = call.session.as_mut().and_then(|s| s.poll(now));
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
        match session {
            Some(TimerAction::Refresh) => self.send_session_refresh(call_id),
            Some(TimerAction::Expire) => {
                span.in_scope(|| warn!("session timer expired without a refresh: BYE"));
                return self.hangup(call_id, EndReason::SessionExpired);
            }
            None => {}
        }
        self.schedule_call_timers(call_id);
    }

    /// We are the refresher: UPDATE without a body if the caller allows
    /// it (cheaper, no ACK), else a re-INVITE with our unchanged SDP.
    fn send_session_refresh(&mut self, call_id: &str) {
        let min_se = self.config.sip.session_min_se_secs;
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(interval) = call.session.map(|s| s.interval_secs()) else {
            return;
        };
        let method = if call.caller_allows_update {
            Method::Update
        } else {
            Method::Invite
        };
        let dest =
            super::identity::dialog_target(&call.dialog.remote_target, call.signalling_source);
        let sent_by = self.me.sent_by(dest.transport);
        let mut req = call
            .dialog
            .new_request(method.clone(), dest.transport, &sent_by);
        let h = &mut req.headers;
        h.push("Session-Expires", format!("{interval};refresher=uac"));
        h.push("Min-SE", min_se.to_string());
        h.push("Supported", super::SUPPORTED);
        h.push("Allow", super::ALLOW);
        if method == Method::Invite {
            h.push("Content-Type", "application/sdp");
            req.body = call.answer.to_string().into_bytes().into();
        }
        call.refresh_in_flight = Some(method.clone());
        call.refresh_ack = None;
        call.span
            .in_scope(|| info!(%method, interval, "refreshing the session"));
        let (tx, _) = self.send_originated(req, dest);
        let owner = call_id.to_owned();
        self.client_txs
            .retain(|_, (id, why)| *id != owner || *why != ClientPurpose::SessionRefresh);
        self.client_txs
            .insert(tx, (owner, ClientPurpose::SessionRefresh));
    }

    /// The caller's answer to our refresh.
    pub(super) fn on_refresh_response(&mut self, tx: ClientTxId, call_id: &str, resp: Response) {
        if resp.status < 200 {
            return;
        }
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(call_id).filter(|c| !c.is_ending()) else {
            self.client_txs.remove(&tx);
            return;
        };
        let is_invite = resp.cseq().is_some_and(|(_, m)| m == Method::Invite);
        match resp.status {
            200..=299 => {
                if is_invite {
                    // ACK the 2xx ourselves (RFC 3261 §13.2.2.4); the
                    // mapping stays so a retransmitted 2xx gets it again.
                    if let Some((ack, dest)) = &call.refresh_ack {
                        return self.endpoint.send_stateless(*dest, ack.clone());
                    }
                    let dest = super::identity::dialog_target(
                        &call.dialog.remote_target,
                        call.signalling_source,
                    );
                    let sent_by = self.me.sent_by(dest.transport);
                    let mut ack = call
                        .dialog
                        .new_request(Method::Ack, dest.transport, &sent_by);
                    if let Some((n, _)) = resp.cseq() {
                        ack.headers.set("CSeq", format!("{n} ACK"));
                    }
                    let ack = ack.to_bytes();
                    call.refresh_ack = Some((ack.clone(), dest));
                    self.endpoint.send_stateless(dest, ack);
                } else {
                    self.client_txs.remove(&tx);
                }
                if call.refresh_in_flight.take().is_none() {
                    return; // a retransmitted 2xx: already counted
                }
                // Without Session-Expires in the 2xx the session has no timer.
                call.session = session_timer::from_response(&resp).map(|agreed| {
                    let we_refresh = agreed.refresher == Refresher::Uac;
                    session_timer::SessionTimer::new(now, agreed.interval, we_refresh)
                });
                call.span
                    .in_scope(|| info!(status = resp.status, "session refresh answered"));
            }
            481 | 408 => {
                self.client_txs.remove(&tx);
                call.span.in_scope(|| {
                    warn!(
                        status = resp.status,
                        "session refresh says the dialog is gone"
                    )
                });
                return self.hangup(call_id, EndReason::SessionExpired);
            }
            491 => {
                // Glare: the caller owns the Call-ID, so we wait 0–2 s
                // (RFC 3261 §14.1) and try again.
                self.client_txs.remove(&tx);
                call.refresh_in_flight = None;
                let wait = Duration::from_millis(rand::random_range(0..2_000));
                if let Some(session) = call.session.as_mut() {
                    session.retry_refresh(now + wait);
                }
            }
            405 | 501 if !is_invite => {
                // The caller listed UPDATE but refuses it: use re-INVITE.
                self.client_txs.remove(&tx);
                call.refresh_in_flight = None;
                call.caller_allows_update = false;
                if let Some(session) = call.session.as_mut() {
                    session.retry_refresh(now);
                }
            }
            status => {
                // Anything else: the session lives on until it expires
                // (RFC 4028 §10), then we hang up.
                self.client_txs.remove(&tx);
                call.refresh_in_flight = None;
                call.span
                    .in_scope(|| warn!(status, "session refresh refused"));
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
