//! The bridged-to side of a call: the engine as UAC (RFC 3261 §13.2).
//!
//! When `routing.bridge_to` is set, a caller's INVITE gets a 180 and an
//! outbound INVITE goes to the target with our offer for a second media leg
//! on the same worker. The callee's 2xx is ACKed, its answer sets where that
//! leg sends, the two legs are bridged, and only then does the caller get
//! its 200 OK. A refusal or no answer is passed back to the caller.

use super::call::{EndReason, Outbound};
use super::{ClientPurpose, Signalling};
use crate::routing::{Destination, Route};
use media_core::{Codec, LegHandle, LegSpec, Prompt};
use sip_stack::auth::{authorize_request, UserCredentials};
use sip_stack::dialog::Dialog;
use sip_stack::message::{
    generate_call_id, generate_tag, name_addr_uri, Method, Request, Response,
};
use sip_stack::sdp::{self, AudioOffer, NegotiatedAudio, SessionDescription};
use sip_stack::session_timer;
use sip_stack::transaction::ClientTxId;
use sip_stack::transport::{Peer, TransportKind};
use tracing::{info, warn};

/// The dynamic payload type we give Opus in an offer (the common choice).
const OPUS_OFFER_PT: u8 = 111;

impl Signalling {
    /// Opens the outbound leg and sends its INVITE to the route's first
    /// destination, for the caller's Request-URI user; the other
    /// destinations wait as fallbacks. Err: what to answer the caller.
    pub(super) fn start_outbound(
        &mut self,
        call_id: &str,
        caller_invite: &Request,
        caller_leg: &LegHandle,
        offer: AudioOffer,
        codec: Codec,
        bridging: Bridging,
    ) -> Result<Outbound, (u16, &'static str)> {
        let Bridging {
            destination,
            fallbacks,
        } = bridging;
        let user = uri_user(&caller_invite.uri).unwrap_or("switchboard");
        let uri = target_uri(user, destination.target, destination.sips);
        if let Some(trunk) = &destination.trunk {
            info!(trunk, "routing the call to a trunk");
        }
        let (offer, codec) = self.offer_for_trunk(destination.trunk.as_deref(), offer, codec);
        let party = PartyInvite {
            call_id,
            caller_invite,
            caller_leg,
            offer,
            srtp: self.srtp_mode_for_trunk(destination.trunk.as_deref()),
            codec,
            target: destination.target,
            uri,
            purpose: ClientPurpose::OutboundInvite,
            referred_by: None,
            replaces: None,
        };
        let mut out = self.invite_party(party)?;
        out.trunk = destination.trunk;
        out.fallbacks = fallbacks;
        Ok(out)
    }

    /// What to offer a trunk: the caller's codec (a transparent, relaying
    /// bridge) unless the trunk's `codecs` leave it out; then the trunk's
    /// first codec, and the bridge transcodes (key presses are regenerated
    /// across it, see media-core's `dtmf_relay`). The caller's
    /// telephone-event payload type is kept, at the new codec's clock.
    fn offer_for_trunk(
        &self,
        trunk: Option<&str>,
        offer: AudioOffer,
        codec: Codec,
    ) -> (AudioOffer, Codec) {
        let wanted = trunk
            .and_then(|name| self.config.trunks.iter().find(|t| t.name == name))
            .map(|t| super::invite::parse_codecs(&t.codecs))
            .filter(|codecs| !codecs.is_empty() && !codecs.contains(&offer.codec));
        let Some(first) = wanted.and_then(|codecs| codecs.first().copied()) else {
            return (offer, codec);
        };
        let Some(media) = super::invite::media_codec(first) else {
            return (offer, codec);
        };
        let payload_type = first.static_payload_type().unwrap_or(OPUS_OFFER_PT);
        info!(caller = ?offer.codec, trunk_codec = ?first, "the trunk does not take the caller's codec: transcoding");
        let offer = AudioOffer {
            codec: first,
            payload_type,
            telephone_event_pt: offer.telephone_event_pt.filter(|&pt| pt != payload_type),
            ptime_ms: offer.ptime_ms,
        };
        (offer, media)
    }

    /// The destinations for a caller's INVITE, in order ([`crate::routing`]),
    /// without trunks that OPTIONS pings found down. Empty: the engine
    /// answers. Err: the route has trunks but every one is down.
    pub(super) fn route_for(&self, invite: &Request) -> Result<Vec<Destination>, ()> {
        let user = uri_user(&invite.uri).unwrap_or_default();
        match self.router.route(user) {
            Route::Answer => Ok(Vec::new()),
            Route::Bridge(all) => {
                let up: Vec<Destination> = all
                    .iter()
                    .filter(|d| d.trunk.as_deref().is_none_or(|t| !self.trunks.is_down(t)))
                    .cloned()
                    .collect();
                if up.is_empty() && !all.is_empty() {
                    Err(())
                } else {
                    Ok(up)
                }
            }
        }
    }

    /// The bridged-to party failed before answering (no answer, 408, 5xx
    /// or a transport failure): try the route's next destination that is
    /// up, from a fresh leg. False when none is left (or the caller is gone).
    pub(super) fn try_next_destination(&mut self, call_id: &str, status: u16) -> bool {
        let Some(call) = self.calls.get_mut(call_id).filter(|c| c.is_ringing()) else {
            return false;
        };
        let Some(out) = call.outbound.as_mut() else {
            return false;
        };
        let mut fallbacks = std::mem::take(&mut out.fallbacks);
        fallbacks.retain(|d| d.trunk.as_deref().is_none_or(|t| !self.trunks.is_down(t)));
        if fallbacks.is_empty() {
            return false;
        }
        let destination = fallbacks.remove(0);
        let (old_call_id, old_leg) = (out.call_id.clone(), out.leg.clone());
        let (invite, leg, offer, span) = (
            call.invite.clone(),
            call.leg().clone(),
            call.caller_media,
            call.span.clone(),
        );
        let Some(codec) = super::invite::media_codec(offer.codec) else {
            return false;
        };
        span.in_scope(|| {
            info!(status, next = %destination.target, trunk = ?destination.trunk, "failing over to the next destination")
        });
        drop(old_leg.stop());
        self.outbound_ids.remove(&old_call_id);
        let bridging = Bridging {
            destination,
            fallbacks,
        };
        let started =
            span.in_scope(|| self.start_outbound(call_id, &invite, &leg, offer, codec, bridging));
        match (started, self.calls.get_mut(call_id)) {
            (Ok(out), Some(call)) => {
                call.outbound = Some(out);
                true
            }
            _ => false,
        }
    }

    /// Opens a leg for a party the engine calls (the bridge target, or a
    /// transfer target) and sends it an INVITE offering the caller's codec.
    pub(super) fn invite_party(
        &mut self,
        party: PartyInvite<'_>,
    ) -> Result<Outbound, (u16, &'static str)> {
        let PartyInvite {
            call_id,
            caller_invite,
            caller_leg,
            offer,
            srtp: srtp_mode,
            codec,
            target,
            uri: target_uri,
            purpose,
            referred_by,
            replaces,
        } = party;
        let max_forwards = match caller_invite.headers.get("Max-Forwards") {
            Some(v) => v.trim().parse::<u32>().map_err(|_| (400, "Bad Request"))?,
            None => 70,
        };
        if max_forwards == 0 {
            return Err((483, "Too Many Hops"));
        }
        let srtp = self
            .srtp_offer(srtp_mode, target.transport)
            .map_err(|why| {
                warn!(why, "no SRTP key for the outbound offer");
                (500, "Server Internal Error")
            })?;
        let mut spec = LegSpec::new(call_id, codec);
        spec.payload_type = offer.payload_type;
        // With our key only: until the answer brings the far end's, the
        // leg drops whatever it receives.
        spec.srtp = srtp.as_ref().and_then(super::srtp::offered_keys);
        // The party's fmtp is not known yet; while bridged the leg relays
        // the caller's packets and encodes nothing anyway.
        spec.opus = Default::default();
        spec.ptime_ms = offer.ptime_ms;
        spec.telephone_event_pt = offer.telephone_event_pt;
        spec.dtmf = Some(self.dtmf_sink(call_id, "callee"));
        spec.prompt = Prompt::Silence;
        spec.colocate_with = Some(caller_leg.clone());
        let leg = self.media.create_leg(spec).map_err(|e| {
            warn!(error = %e, "no media leg for the outbound side");
            (503, "Service Unavailable")
        })?;
        let rtp_ip = self.config.server.listen_ip;
        let sdp = sdp::offer_audio_srtp(
            &offer,
            srtp.as_ref(),
            rtp_ip,
            leg.local_addr().port(),
            super::sdp_session_id(),
        );

        let from_user = caller_invite
            .headers
            .get("From")
            .and_then(name_addr_uri)
            .and_then(uri_user)
            .unwrap_or("switchboard");
        let sips = super::identity::is_sips(&target_uri);
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
        h.push("Allow", super::ALLOW);
        // The callee may make us its refresher (RFC 4028 §7.1); see
        // `session` for both dialogs' keep-alives.
        h.push("Supported", "100rel, timer");
        if let Some(by) = referred_by {
            h.push("Referred-By", by);
        }
        if let Some(replaces) = replaces {
            // Required: a target that ignored it would ring as a new call.
            h.push("Replaces", replaces.to_string());
            h.push("Require", "replaces");
        }
        session_timer::ask_in_request(&mut invite, &self.config.session_timers());
        invite.headers.push("Content-Type", "application/sdp");
        invite.body = sdp.to_string().into_bytes().into();

        let dest = sip_stack::transport::size::promote_large_request(
            &mut invite,
            target,
            self.me.tcp_port(),
        );
        let offered = match &srtp {
            Some(s) if s.savp => "RTP/SAVP",
            Some(_) => "RTP/AVP+crypto",
            None => "RTP/AVP",
        };
        info!(target = %dest, outbound_call_id = %outbound_call_id, ?purpose, offered, "INVITE to the target");
        let invite_tx = self
            .endpoint
            .send_request(std::time::Instant::now(), invite.clone(), dest);
        self.client_txs
            .insert(invite_tx, (call_id.to_owned(), purpose));
        self.outbound_ids
            .insert(outbound_call_id.clone(), call_id.to_owned());
        Ok(Outbound {
            call_id: outbound_call_id,
            invite,
            dest,
            offer,
            srtp,
            srtp_agreed: false,
            leg,
            dialog: None,
            ack: None,
            auth_attempts: 0,
            reliable: Default::default(),
            early_dialog: None,
            keepalive: Default::default(),
            trunk: None,
            fallbacks: Vec::new(),
        })
    }

    /// Routes a response to one of our client transactions.
    pub(super) fn on_response(&mut self, tx: ClientTxId, response: Response) {
        match self.client_txs.get(&tx) {
            Some((call_id, ClientPurpose::OutboundInvite)) => {
                let call_id = call_id.clone();
                self.on_outbound_response(&call_id, tx, response);
            }
            Some((call_id, ClientPurpose::TransferInvite)) => {
                let call_id = call_id.clone();
                self.on_transfer_response(&call_id, tx, response);
            }
            Some((call_id, ClientPurpose::SessionRefresh(side))) => {
                let (call_id, side) = (call_id.clone(), *side);
                self.on_refresh_response(tx, &call_id, side, response);
            }
            Some((_, ClientPurpose::TrunkPing(i))) => {
                let i = *i;
                self.on_trunk_ping(tx, i, Some(response.status));
            }
            Some((_, ClientPurpose::Register(i))) => {
                let i = *i;
                self.on_register_response(tx, i, Some(&response));
            }
            Some(_) => self.on_request_answered(tx, response.status),
            None => {}
        }
    }

    fn on_outbound_response(&mut self, call_id: &str, tx: ClientTxId, response: Response) {
        match response.status {
            100..=199 => self.on_party_provisional(call_id, &response, false),
            200..=299 => self.on_outbound_answered(call_id, response),
            401 | 407 if self.retry_with_credentials(call_id, tx, &response) => {}
            422 if self.retry_with_longer_session(call_id, tx, &response) => {}
            status => {
                self.client_txs.remove(&tx);
                let failover = status == 408 || (500..600).contains(&status);
                if failover && self.try_next_destination(call_id, status) {
                    return;
                }
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
        let Some(call) = self.calls.get_mut(call_id).filter(|c| !c.is_ending()) else {
            return false;
        };
        // The trunk's own credentials, else routing.bridge_username.
        let trunk = call
            .outbound
            .as_ref()
            .and_then(|o| o.trunk.as_deref())
            .and_then(|name| self.config.trunks.iter().find(|t| t.name == name))
            .filter(|t| !t.username.is_empty());
        let (username, password) = match trunk {
            Some(t) => (&t.username, &t.password),
            None => (
                &self.config.routing.bridge_username,
                &self.config.routing.bridge_password,
            ),
        };
        if username.is_empty() {
            return false;
        }
        let creds = UserCredentials::new(username, password);
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
        self.resend_outbound_invite(call_id, tx, invite, dest);
        true
    }

    /// The callee wants a longer session interval (RFC 4028 §7.4): ask
    /// again with its Min-SE, once.
    fn retry_with_longer_session(
        &mut self,
        call_id: &str,
        tx: ClientTxId,
        too_small: &Response,
    ) -> bool {
        let Some(call) = self.calls.get_mut(call_id).filter(|c| !c.is_ending()) else {
            return false;
        };
        let span = call.span.clone();
        let Some(out) = call.outbound.as_mut() else {
            return false;
        };
        if !session_timer::retry_after_422(&mut out.invite, too_small) {
            return false;
        }
        span.in_scope(|| info!(min_se = ?too_small.headers.get("Min-SE"), "callee asks for a longer session interval"));
        let (invite, dest) = (out.invite.clone(), out.dest);
        self.resend_outbound_invite(call_id, tx, invite, dest);
        true
    }

    /// Sends the outbound INVITE again as a new transaction (after a
    /// challenge or a 422) in place of `old`.
    fn resend_outbound_invite(
        &mut self,
        call_id: &str,
        old: ClientTxId,
        invite: Request,
        dest: Peer,
    ) {
        let (new_tx, dest) = self.send_originated(invite, dest);
        if let Some(out) = self
            .calls
            .get_mut(call_id)
            .and_then(|c| c.outbound.as_mut())
        {
            out.dest = dest;
        }
        self.client_txs.remove(&old);
        self.client_txs
            .insert(new_tx, (call_id.to_owned(), ClientPurpose::OutboundInvite));
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
        let media = match ack_answer(&self.me, &mut self.endpoint, out, &response) {
            Answer::Retransmission => return,
            Answer::NoDialog => {
                warn!("2xx without the headers a dialog needs; releasing the call");
                drop(_entered);
                return self.fail_outbound(call_id, 502, "Bad Gateway");
            }
            Answer::Media(media) => media,
        };
        let bridged = match media {
            Some(n) => {
                if out.srtp.is_some() {
                    // Keys first, so the first packets from the new remote are judged with them.
                    out.leg
                        .set_srtp(n.srtp.as_ref().and_then(super::srtp::media_keys));
                }
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
        info!("bridged: answering the caller");
        drop(_entered);
        self.answer_caller(call_id);
    }

    /// BYE to a callee whose 2xx we just ACKed but no longer want.
    fn release_answered_outbound(&mut self, call_id: &str) {
        let release = self
            .calls
            .get_mut(call_id)
            .and_then(|c| c.outbound.as_mut())
            .and_then(|out| super::teardown::release_request(&self.me, out));
        if let Some(release) = release {
            self.send_release(call_id, release);
        }
    }

    /// The callee refused or never answered: tell the caller, end the call.
    pub(super) fn fail_outbound(&mut self, call_id: &str, status: u16, reason: &str) {
        self.fail_call(call_id, status, reason, EndReason::OutboundFailed);
    }

    pub(super) fn fail_call(&mut self, call_id: &str, status: u16, reason: &str, why: EndReason) {
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

/// Where the bridged-to party of a new call is, and where to go if it fails.
pub(super) struct Bridging {
    pub destination: Destination,
    pub fallbacks: Vec<Destination>,
}

/// What a party's 2xx to our INVITE turned out to be.
pub(super) enum Answer {
    /// Already answered: the ACK went again.
    Retransmission,
    /// No dialog can be built from it (no Contact or tag).
    NoDialog,
    /// ACKed; its SDP answer, if usable.
    Media(Option<NegotiatedAudio>),
}

/// ACKs a party's first 2xx (or re-ACKs a retransmission, RFC 3261
/// §13.2.2.4), builds its dialog, and reads its SDP answer.
pub(super) fn ack_answer(
    me: &super::identity::LocalIdentity,
    endpoint: &mut sip_stack::transaction::Endpoint,
    out: &mut Outbound,
    response: &Response,
) -> Answer {
    if let Some((ack, dest)) = &out.ack {
        endpoint.send_stateless(*dest, ack.clone());
        return Answer::Retransmission;
    }
    let sips = super::identity::is_sips(&out.invite.uri);
    let contact = me.contact(out.dest.transport, sips);
    let Some(mut dialog) = Dialog::new_uac(&out.invite, response, &contact) else {
        return Answer::NoDialog;
    };
    let dest = super::identity::dialog_target(&dialog.remote_target, out.dest);
    let sent_by = me.sent_by(dest.transport);
    let ack = dialog
        .new_request(Method::Ack, dest.transport, &sent_by)
        .to_bytes();
    endpoint.send_stateless(dest, ack.clone());
    out.ack = Some((ack, dest));
    // Our PRACKs in the early dialog used CSeq numbers after the INVITE's.
    if let Some(early) = out.early_dialog.take() {
        dialog.local_cseq = dialog.local_cseq.max(early.local_cseq);
    }
    out.dialog = Some(dialog);
    // The callee's keep-alive: it names the refresher in its 2xx (`uac`:
    // us); without Session-Expires there is none (RFC 4028 §7.2).
    out.keepalive.allows_update = super::call::allows_update(&response.headers);
    out.keepalive.timer = session_timer::from_response(response).map(|agreed| {
        session_timer::SessionTimer::new(
            std::time::Instant::now(),
            agreed.interval,
            agreed.refresher == session_timer::Refresher::Uac,
        )
    });
    let media = parse_sdp(&response.body)
        .and_then(|sdp| sdp::accept_answer_srtp(&sdp, &out.offer, out.srtp.as_ref()).ok());
    out.srtp_agreed = media.as_ref().is_some_and(|m| m.srtp.is_some());
    Answer::Media(media)
}

/// What [`Signalling::invite_party`] needs to call a party.
pub(super) struct PartyInvite<'a> {
    pub call_id: &'a str,
    /// The caller's INVITE: Max-Forwards and the From user come from it.
    pub caller_invite: &'a Request,
    /// The new leg goes on the caller leg's worker.
    pub caller_leg: &'a LegHandle,
    /// The caller's codec, payload types and ptime: bridges relay unchanged.
    pub offer: AudioOffer,
    /// SDES for this party (its trunk's `srtp`, or `sip.srtp`); offered
    /// only over TLS.
    pub srtp: crate::config::SrtpMode,
    pub codec: Codec,
    pub target: Peer,
    /// Request-URI and To.
    pub uri: String,
    pub purpose: ClientPurpose,
    /// Referred-By for a transfer (RFC 3892).
    pub referred_by: Option<String>,
    /// Replaces, for an attended transfer to a dialog the target holds.
    pub replaces: Option<sip_stack::replaces::Replaces>,
}

pub(super) fn parse_sdp(body: &[u8]) -> Option<SessionDescription> {
    SessionDescription::parse(std::str::from_utf8(body).ok()?).ok()
}

/// The Request-URI (and To) of the outbound INVITE: the caller's user at
/// the target, naming the transport for the hops after it.
pub(super) fn target_uri(user: &str, target: Peer, sips: bool) -> String {
    match target.transport {
        TransportKind::Tls if sips => format!("sips:{user}@{}", target.addr),
        TransportKind::Udp => format!("sip:{user}@{}", target.addr),
        kind => format!("sip:{user}@{};transport={kind}", target.addr),
    }
}

/// The user part of a SIP URI: `sip:alice@host` → `alice`.
pub(super) fn uri_user(uri: &str) -> Option<&str> {
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
