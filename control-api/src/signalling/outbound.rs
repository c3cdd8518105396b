//! The bridged-to side of a call: the engine as UAC (RFC 3261 §13.2).
//!
//! When `routing.bridge_to` is set, a caller's INVITE gets a 180 and an
//! outbound INVITE goes to the target with our offer for a second media leg
//! on the same worker. The callee's 2xx is ACKed, its answer sets where that
//! leg sends, the two legs are bridged, and only then does the caller get
//! its 200 OK. A refusal or no answer is passed back to the caller.

use super::call::{EndReason, Outbound};
use super::{ClientPurpose, Signalling};
use crate::proto::call_event;
use media_core::{Codec, LegHandle, LegSpec, Prompt};
use sip_stack::auth::{authorize_request, UserCredentials};
use sip_stack::dialog::Dialog;
use sip_stack::message::{
    generate_call_id, generate_tag, name_addr_uri, Method, Request, Response,
};
use sip_stack::sdp::{self, AudioOffer, NegotiatedAudio, SessionDescription};
use sip_stack::transaction::ClientTxId;
use sip_stack::transport::{Peer, TransportKind};
use tracing::{info, warn};

impl Signalling {
    /// Opens the outbound leg and sends its INVITE. Err: what to answer the caller.
    pub(super) fn start_outbound(
        &mut self,
        call_id: &str,
        caller_invite: &Request,
        caller_leg: &LegHandle,
        negotiated: &NegotiatedAudio,
        codec: Codec,
        target: Peer,
    ) -> Result<Outbound, (u16, &'static str)> {
        let max_forwards = match caller_invite.headers.get("Max-Forwards") {
            Some(v) => v.trim().parse::<u32>().map_err(|_| (400, "Bad Request"))?,
            None => 70,
        };
        if max_forwards == 0 {
            return Err((483, "Too Many Hops"));
        }
        let mut spec = LegSpec::new(call_id, codec);
        spec.payload_type = negotiated.payload_type;
        // The callee's fmtp is not known yet; while bridged the leg relays
        // the caller's packets and encodes nothing anyway.
        spec.opus = super::invite::opus_params(negotiated);
        spec.ptime_ms = negotiated.ptime_ms;
        spec.telephone_event_pt = negotiated.telephone_event_pt;
        spec.dtmf = Some(self.dtmf_sink(call_id, "callee"));
        spec.prompt = Prompt::Silence;
        spec.colocate_with = Some(caller_leg.clone());
        let leg = self.media.create_leg(spec).map_err(|e| {
            warn!(error = %e, "no media leg for the outbound side");
            (503, "Service Unavailable")
        })?;
        let offer = AudioOffer {
            codec: negotiated.codec,
            payload_type: negotiated.payload_type,
            telephone_event_pt: negotiated.telephone_event_pt,
            ptime_ms: negotiated.ptime_ms,
        };
        let rtp_ip = self.config.server.listen_ip;
        let sdp = sdp::offer_audio(
            &offer,
            rtp_ip,
            leg.local_addr().port(),
            super::sdp_session_id(),
        );

        let user = uri_user(&caller_invite.uri).unwrap_or("switchboard");
        let from_user = caller_invite
            .headers
            .get("From")
            .and_then(name_addr_uri)
            .and_then(uri_user)
            .unwrap_or("switchboard");
        let sips = super::identity::is_sips(self.config.routing.bridge_to.trim());
        let target_uri = target_uri(user, target, sips);
        let outbound_call_id = generate_call_id(self.me.host());
        let mut invite = Request::new(Method::Invite, target_uri.clone());
        let h = &mut invite.headers;
        let sent_by = self.me.sent_by(target.transport);
        let contact = self.me.contact(target.transport, sips);
        h.push("Via", self.me.via(target.transport));
        h.push("Max-Forwards", (max_forwards - 1).min(70).to_string());
        h.push(
            "From",
            format!("<sip:{from_user}@{sent_by}>;tag={}", generate_tag()),
        );
        h.push("To", format!("<{target_uri}>"));
        h.push("Call-ID", outbound_call_id.clone());
        h.push("CSeq", "1 INVITE");
        h.push("Contact", format!("<{contact}>"));
        h.push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
        h.push("Content-Type", "application/sdp");
        invite.body = sdp.to_string().into_bytes().into();

        let dest = sip_stack::transport::size::promote_large_request(
            &mut invite,
            target,
            self.me.tcp_port(),
        );
        info!(target = %dest, outbound_call_id = %outbound_call_id, "bridging: INVITE to the target");
        let invite_tx = self
            .endpoint
            .send_request(std::time::Instant::now(), invite.clone(), dest);
        self.client_txs.insert(
            invite_tx,
            (call_id.to_owned(), ClientPurpose::OutboundInvite),
        );
        self.outbound_ids
            .insert(outbound_call_id.clone(), call_id.to_owned());
        Ok(Outbound {
            call_id: outbound_call_id,
            invite,
            dest,
            offer,
            leg,
            dialog: None,
            ack: None,
            auth_attempts: 0,
        })
    }

    /// Routes a response to one of our client transactions.
    pub(super) fn on_response(&mut self, tx: ClientTxId, response: Response) {
        match self.client_txs.get(&tx) {
            Some((call_id, ClientPurpose::OutboundInvite)) => {
                let call_id = call_id.clone();
                self.on_outbound_response(&call_id, tx, response);
            }
            Some((_, ClientPurpose::TrunkPing(i))) => {
                let i = *i;
                self.on_trunk_ping(tx, i, Some(response.status));
            }
            Some(_) => self.on_request_answered(tx, response.status),
            None => {}
        }
    }

    fn on_outbound_response(&mut self, call_id: &str, tx: ClientTxId, response: Response) {
        match response.status {
            100..=199 => {}
            200..=299 => self.on_outbound_answered(call_id, response),
            401 | 407 if self.retry_with_credentials(call_id, tx, &response) => {}
            status => {
                self.client_txs.remove(&tx);
                let passed = if (400..500).contains(&status) || status >= 600 {
                    (status, response.reason.clone())
                } else {
                    (480, "Temporarily Unavailable".to_owned())
                };
                if let Some(call) = self.calls.get(call_id) {
                    call.span
                        .in_scope(|| info!(status, "bridged-to party refused the call"));
                }
                self.fail_outbound(call_id, passed.0, &passed.1);
            }
        }
    }

    /// Answers the target's digest challenge by re-sending the INVITE with
    /// credentials (new branch, next CSeq). False when we have none to give
    /// or already tried twice (the second try covers a stale nonce).
    fn retry_with_credentials(
        &mut self,
        call_id: &str,
        tx: ClientTxId,
        challenge: &Response,
    ) -> bool {
        let routing = &self.config.routing;
        if routing.bridge_username.is_empty() {
            return false;
        }
        let creds = UserCredentials::new(&routing.bridge_username, &routing.bridge_password);
        let Some(call) = self.calls.get_mut(call_id).filter(|c| !c.is_ending()) else {
            return false;
        };
        let span = call.span.clone();
        let Some(out) = call.outbound.as_mut().filter(|o| o.auth_attempts < 2) else {
            return false;
        };
        if let Err(e) = authorize_request(&mut out.invite, challenge, &creds) {
            span.in_scope(|| warn!(error = %e, "cannot answer the target's challenge"));
            return false;
        }
        out.auth_attempts += 1;
        span.in_scope(|| {
            info!(
                status = challenge.status,
                "answering the target's digest challenge"
            )
        });
        let (invite, dest) = (out.invite.clone(), out.dest);
        let (new_tx, dest) = self.send_originated(invite, dest);
        if let Some(out) = self
            .calls
            .get_mut(call_id)
            .and_then(|c| c.outbound.as_mut())
        {
            out.dest = dest;
        }
        self.client_txs.remove(&tx);
        self.client_txs
            .insert(new_tx, (call_id.to_owned(), ClientPurpose::OutboundInvite));
        true
    }

    /// A 2xx from the callee: ACK it, point the leg at its media, bridge, answer the caller.
    fn on_outbound_answered(&mut self, call_id: &str, response: Response) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let span = call.span.clone();
        let _entered = span.enter();
        let ending = call.is_ending();
        let caller_leg = call.leg().clone();
        let Some(out) = call.outbound.as_mut() else {
            return;
        };
        if let Some((ack, dest)) = &out.ack {
            // A retransmitted 2xx: our ACK was lost (RFC 3261 §13.2.2.4).
            self.endpoint.send_stateless(*dest, ack.clone());
            return;
        }
        let sips = super::identity::is_sips(&out.invite.uri);
        let contact = self.me.contact(out.dest.transport, sips);
        let Some(mut dialog) = Dialog::new_uac(&out.invite, &response, &contact) else {
            warn!("2xx without the headers a dialog needs; releasing the call");
            drop(_entered);
            return self.fail_outbound(call_id, 502, "Bad Gateway");
        };
        let dest = super::identity::dialog_target(&dialog.remote_target, out.dest);
        let sent_by = self.me.sent_by(dest.transport);
        let ack = dialog
            .new_request(Method::Ack, dest.transport, &sent_by)
            .to_bytes();
        self.endpoint.send_stateless(dest, ack.clone());
        out.ack = Some((ack, dest));
        out.dialog = Some(dialog);

        let media =
            parse_sdp(&response.body).and_then(|sdp| sdp::accept_answer(&sdp, &out.offer).ok());
        let bridged = match media {
            Some(n) => {
                out.leg.set_remote(n.remote_rtp);
                self.media
                    .bridge(&caller_leg, &out.leg)
                    .map_err(|e| e.to_string())
            }
            None => Err("the callee's SDP answer is not usable".to_owned()),
        };
        if ending {
            drop(_entered);
            return self.release_answered_outbound(call_id);
        }
        if let Err(why) = bridged {
            warn!(%why, "bridge failed; releasing both sides");
            drop(_entered);
            self.release_answered_outbound(call_id);
            return self.fail_call(
                call_id,
                500,
                "Server Internal Error",
                EndReason::MediaFailed,
            );
        }
        let mut ok = Response::for_request(&call.invite, 200, "OK");
        ok.set_to_tag(&call.dialog.local_tag);
        let answer = call.answer.clone();
        let answered_event = call.answered_event.clone();
        call.mark_answered();
        let invite_tx = call.invite_tx;
        info!("bridged: answering the caller");
        drop(_entered);
        let contact = call.dialog.local_contact.clone();
        let ok = super::invite::ok_with_sdp(ok, &answer, &contact);
        self.respond(invite_tx, ok);
        self.bus
            .publish(call_id, call_event::Event::Answered(answered_event));
        metrics::counter!("switchboard_calls_answered_total").increment(1);
    }

    /// BYE to a callee whose 2xx we just ACKed but no longer want.
    fn release_answered_outbound(&mut self, call_id: &str) {
        let Some(out) = self
            .calls
            .get_mut(call_id)
            .and_then(|c| c.outbound.as_mut())
        else {
            return;
        };
        let Some(dialog) = out.dialog.as_mut() else {
            return;
        };
        let dest = super::identity::dialog_target(&dialog.remote_target, out.dest);
        let bye = dialog.new_request(
            Method::Bye,
            dest.transport,
            &self.me.sent_by(dest.transport),
        );
        out.dialog = None;
        let (tx, _) = self.send_originated(bye, dest);
        self.client_txs
            .insert(tx, (call_id.to_owned(), ClientPurpose::Bye));
    }

    /// The callee refused or never answered: tell the caller, end the call.
    pub(super) fn fail_outbound(&mut self, call_id: &str, status: u16, reason: &str) {
        self.fail_call(call_id, status, reason, EndReason::OutboundFailed);
    }

    fn fail_call(&mut self, call_id: &str, status: u16, reason: &str, why: EndReason) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        if call.is_ringing() {
            let resp = Response::for_request(&call.invite, status, reason);
            let tx = call.invite_tx;
            self.respond(tx, resp);
        }
        self.end_call(call_id, why);
    }
}

fn parse_sdp(body: &[u8]) -> Option<SessionDescription> {
    SessionDescription::parse(std::str::from_utf8(body).ok()?).ok()
}

/// The Request-URI (and To) of the outbound INVITE: the caller's user at
/// the target, naming the transport for the hops after it.
fn target_uri(user: &str, target: Peer, sips: bool) -> String {
    match target.transport {
        TransportKind::Tls if sips => format!("sips:{user}@{}", target.addr),
        TransportKind::Udp => format!("sip:{user}@{}", target.addr),
        kind => format!("sip:{user}@{};transport={kind}", target.addr),
    }
}

/// The user part of a SIP URI: `sip:alice@host` → `alice`.
fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let (user, _) = rest.split_once('@')?;
    let user = user.split(';').next()?;
    let safe = !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()+%".contains(&b));
    safe.then_some(user)
}

#[cfg(test)]
mod tests {
    use super::{target_uri, uri_user};
    use sip_stack::transport::{Peer, TransportKind};

    #[test]
    fn target_uris_carry_the_transport() {
        let at = |k| Peer::new(k, "10.0.0.5:5070".parse().unwrap());
        assert_eq!(
            target_uri("7", at(TransportKind::Udp), false),
            "sip:7@10.0.0.5:5070"
        );
        assert_eq!(
            target_uri("7", at(TransportKind::Tcp), false),
            "sip:7@10.0.0.5:5070;transport=tcp"
        );
        assert_eq!(
            target_uri("7", at(TransportKind::Tls), false),
            "sip:7@10.0.0.5:5070;transport=tls"
        );
        assert_eq!(
            target_uri("7", at(TransportKind::Tls), true),
            "sips:7@10.0.0.5:5070"
        );
    }

    #[test]
    fn uri_user_is_taken_only_when_safe() {
        assert_eq!(uri_user("sip:bench-1-7@127.0.0.1:5060"), Some("bench-1-7"));
        assert_eq!(uri_user("sip:+15551234;npdi@carrier"), Some("+15551234"));
        assert_eq!(uri_user("sip:127.0.0.1"), None);
        assert_eq!(uri_user("sip:a\r\nX: y@host"), None);
    }
}
