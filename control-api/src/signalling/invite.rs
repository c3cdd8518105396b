//! Answering an INVITE: SDP offer/answer, a media leg, 100/180/200.

use super::call::{Call, NewCall};
use super::session::Side;
use super::Signalling;
use crate::proto::{call_event, CallAnswered, CallStarted, HoldChanged};
use asr_bridge::{AudioForkBackend, AudioForkConfig, StreamInfo};
use media_core::{Codec, LegSpec, OpusParams, Prompt, TapDirection, TapSink, TAP_RATE};
use sip_stack::dialog::Dialog;
use sip_stack::message::{generate_tag, Method, Request, Response};
use sip_stack::reliable::{lists_100rel, UasReliable};
use sip_stack::sdp::{self, AudioCodec, Direction, NegotiatedAudio, SessionDescription};
use sip_stack::session_timer::{self, Negotiation, SessionTimer};
use sip_stack::transaction::ServerTxId;
use sip_stack::transport::Peer;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tracing::{info, info_span, warn, Instrument};

/// Frames of backlog a tap may hold before the media side drops (1 s).
const TAP_QUEUE_FRAMES: usize = 50;

impl Signalling {
    pub(super) fn on_invite(&mut self, tx: ServerTxId, req: Request, source: Peer) {
        let call_id = req.call_id().unwrap_or_default().to_owned();
        let span = info_span!("call", call_id = %call_id);
        let _entered = span.enter();
        info!(%source, from = req.headers.get("From").unwrap_or(""), "INVITE received");

        if self.shutdown.is_some() {
            return self.reject(tx, &req, 503, "Service Unavailable - shutting down");
        }
        if self.calls.len() >= self.config.sip.max_calls {
            metrics::counter!("switchboard_calls_rejected_total", "reason" => "capacity")
                .increment(1);
            let mut resp = Response::for_request(&req, 503, "Service Unavailable");
            resp.headers.set("Retry-After", "5");
            self.respond(tx, resp);
            return;
        }
        if self.calls.contains_key(&call_id) {
            return self.reject(tx, &req, 482, "Loop Detected");
        }
        let offer = match parse_offer(&req) {
            Ok(offer) => offer,
            Err(reason) => {
                warn!(reason, "INVITE not acceptable");
                return self.reject(tx, &req, 488, "Not Acceptable Here");
            }
        };
        let session_agreed = match session_timer::negotiate(&req, &self.config.session_timers()) {
            Negotiation::TooSmall { min_se } => return self.reject_too_small(tx, &req, min_se),
            Negotiation::Off => None,
            Negotiation::On(agreed) => Some(agreed),
        };
        // RFC 3262: a caller that requires 100rel gets a reliable 180.
        let mut reliable = lists_100rel(&req.headers, "Require").then(|| {
            let t1 = Duration::from_millis(self.config.sip.timer_t1_ms);
            UasReliable::new(req.cseq().map_or(1, |(n, _)| n), t1)
        });
        // Where the call goes: [[routes]] by DID, then routing.bridge_to.
        let mut destinations = match self.route_for(&req) {
            Ok(destinations) => destinations.into_iter(),
            Err(()) => {
                metrics::counter!("switchboard_calls_rejected_total", "reason" => "no_trunk")
                    .increment(1);
                warn!("every trunk of the route is down: 503");
                let mut resp = Response::for_request(&req, 503, "Service Unavailable");
                resp.set_to_tag(&generate_tag());
                resp.headers.set("Retry-After", "30");
                return self.respond(tx, resp);
            }
        };
        let bridge_to = destinations.next();
        let codecs = self.codec_preference(source.addr.ip());
        let srtp_mode = self.srtp_mode_for_source(source.addr.ip());
        let srtp = match self.srtp_answer(srtp_mode, source.transport) {
            Ok(srtp) => srtp,
            Err(why) => {
                warn!(why, transport = %source.transport, "INVITE not acceptable");
                return self.reject(tx, &req, 488, "Not Acceptable Here");
            }
        };
        let rtp_ip = self.config.server.listen_ip;
        let session_id = super::sdp_session_id();
        // Negotiate first (the codec decides the leg), then answer with the leg's port.
        let negotiated =
            match sdp::answer_audio_srtp(&offer, &codecs, srtp.as_ref(), rtp_ip, 0, session_id) {
                Ok((_, negotiated)) => negotiated,
                Err(e) => {
                    warn!(error = %e, "no acceptable audio in the offer");
                    return self.reject(tx, &req, 488, "Not Acceptable Here");
                }
            };
        let Some(codec) = media_codec(negotiated.codec) else {
            return self.reject(tx, &req, 488, "Not Acceptable Here");
        };

        let caller_media = sdp::AudioOffer {
            codec: negotiated.codec,
            payload_type: negotiated.payload_type,
            telephone_event_pt: negotiated.telephone_event_pt,
            ptime_ms: negotiated.ptime_ms,
        };
        let mut spec = LegSpec::new(call_id.clone(), codec);
        spec.payload_type = negotiated.payload_type;
        spec.opus = opus_params(&negotiated);
        spec.ptime_ms = negotiated.ptime_ms;
        spec.remote = Some(negotiated.remote_rtp);
        spec.telephone_event_pt = negotiated.telephone_event_pt;
        // RFC 3389 where the caller offered it, when the engine terminates
        // the call: a bridged caller's packets are relayed as they are, and
        // the far side is not offered CN.
        let comfort_noise = negotiated.comfort_noise_pt.filter(|_| bridge_to.is_none());
        spec.comfort_noise_pt = comfort_noise;
        spec.srtp = negotiated.srtp.as_ref().and_then(super::srtp::media_keys);
        spec.dtmf = Some(self.dtmf_sink(&call_id, "caller"));
        // A bridged caller hears the other party, not our prompt.
        spec.prompt = if bridge_to.is_some() {
            Prompt::Silence
        } else {
            self.prompt()
        };
        spec.record_to = self.recording_path(&call_id);
        if let Some(sink) = self.start_audio_fork(&call_id, "caller", &span) {
            spec.taps.push((TapDirection::Inbound, sink));
        }
        if bridge_to.is_some() {
            if let Some(sink) = self.start_audio_fork(&call_id, "agent", &span) {
                spec.taps.push((TapDirection::Outbound, sink));
            }
        }
        let leg = match self.media.create_leg(spec) {
            Ok(leg) => leg,
            Err(e) => {
                warn!(error = %e, "no media leg for the call");
                return self.reject(tx, &req, 503, "Service Unavailable");
            }
        };
        // A caller may start on hold (sendonly or inactive offer).
        leg.set_sending(sends(negotiated.direction));
        let local_rtp = leg.local_addr();
        let answer = match sdp::answer_audio_srtp(
            &offer,
            &codecs,
            srtp.as_ref(),
            rtp_ip,
            local_rtp.port(),
            session_id,
        ) {
            Ok((mut answer, n)) => {
                if let Some(cn) = n.comfort_noise_pt.filter(|_| comfort_noise.is_none()) {
                    without_format(&mut answer, cn);
                }
                answer
            }
            Err(e) => {
                warn!(error = %e, "SDP answer failed");
                leg.stop();
                return self.reject(tx, &req, 500, "Server Internal Error");
            }
        };
        let local_tag = generate_tag();
        let contact = self
            .me
            .contact(source.transport, super::identity::is_sips(&req.uri));
        let Some(dialog) = Dialog::new_uas(&req, &local_tag, &contact) else {
            leg.stop();
            return self.reject(tx, &req, 400, "Bad Request");
        };
        let outbound = match bridge_to {
            Some(first) => {
                let party = super::outbound::Bridging {
                    destination: first,
                    fallbacks: destinations.collect(),
                };
                match self.start_outbound(&call_id, &req, &leg, caller_media, codec, party) {
                    Ok(out) => Some(out),
                    Err((status, reason)) => {
                        leg.stop();
                        return self.reject(tx, &req, status, reason);
                    }
                }
            }
            None => None,
        };

        // The transaction layer already sent 100 Trying on arrival.
        let mut ringing = Response::for_request(&req, 180, "Ringing");
        ringing.set_to_tag(&local_tag);
        ringing
            .headers
            .set("Contact", format!("<{}>", dialog.local_contact));
        if let Some(reliable) = reliable.as_mut() {
            reliable.send(Instant::now(), &mut ringing);
        }
        self.respond(tx, ringing);

        let from = req.headers.get("From").unwrap_or_default().to_owned();
        let to = req.headers.get("To").unwrap_or_default().to_owned();
        self.bus.publish(
            &call_id,
            call_event::Event::Started(CallStarted {
                from: from.clone(),
                to: to.clone(),
                remote_address: source.addr.to_string(),
                transport: source.transport.to_string(),
            }),
        );
        info!(srtp = negotiated.srtp.is_some(), proto = %negotiated.proto, "offer accepted");
        let answered_event = CallAnswered {
            codec: negotiated.codec_name().into(),
            local_rtp: local_rtp.to_string(),
            remote_rtp: negotiated.remote_rtp.to_string(),
            srtp: negotiated.srtp.is_some(),
            media_proto: negotiated.proto.clone(),
        };
        let bridged = outbound.is_some();
        drop(_entered);
        let new = NewCall {
            id: call_id.clone(),
            span,
            invite_tx: tx,
            invite: req,
            dialog,
            signalling_source: source,
            answer,
            answered_event,
            codec: negotiated.codec,
            caller_media,
            srtp: srtp.filter(|_| negotiated.srtp.is_some()),
            outbound,
            session_agreed,
            reliable,
            from,
            to,
            leg,
        };
        self.calls.insert(call_id.clone(), Call::ringing(new));
        metrics::gauge!("switchboard_active_calls").set(self.calls.len() as f64);
        if !bridged {
            self.answer_caller(&call_id);
        }
        self.schedule_call_timers(&call_id);
    }

    /// Sends the caller its 200 OK with our SDP answer (and session timer),
    /// unless our reliable 18x still waits for its PRACK: then the PRACK
    /// sends it (RFC 3262 §3 lets a UAS wait, and callers expect it).
    pub(super) fn answer_caller(&mut self, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id).filter(|c| c.is_ringing()) else {
            return;
        };
        if call.reliable.as_ref().is_some_and(UasReliable::is_pending) {
            call.answer_waits_for_prack = true;
            return;
        }
        call.answer_waits_for_prack = false;
        let mut ok = Response::for_request(&call.invite, 200, "OK");
        ok.set_to_tag(&call.dialog.local_tag);
        let mut ok = ok_with_sdp(ok, &call.answer, &call.dialog.local_contact);
        if let Some(agreed) = call.session_agreed {
            agreed.add_to_response(&mut ok);
            call.keepalive.timer = Some(SessionTimer::new(
                Instant::now(),
                agreed.interval,
                agreed.we_refresh(),
            ));
        }
        call.mark_answered();
        let event = call.answered_event.clone();
        let tx = call.invite_tx;
        call.span.in_scope(|| {
            info!(codec = %event.codec, local_rtp = %event.local_rtp, remote_rtp = %event.remote_rtp,
                  session_expires = call.keepalive.timer.map(|s| s.interval_secs()), "call answered")
        });
        self.respond(tx, ok);
        self.bus
            .publish(call_id, call_event::Event::Answered(event));
        metrics::counter!("switchboard_calls_answered_total").increment(1);
        self.schedule_call_timers(call_id);
    }

    /// 422 with our Min-SE (RFC 4028 §9): the caller may retry with more.
    fn reject_too_small(&mut self, tx: ServerTxId, req: &Request, min_se: u32) {
        let mut resp = Response::for_request(req, 422, "Session Interval Too Small");
        resp.set_to_tag(&generate_tag());
        resp.headers.set("Min-SE", min_se.to_string());
        self.respond(tx, resp);
    }

    /// A re-INVITE or UPDATE in an existing dialog, from the caller or the
    /// bridged-to party. With an SDP offer: same codec and port (the leg
    /// and any bridge stay as they are), follow a moved remote address,
    /// hold or resume, answer 200 with our SDP. Without one it is a session
    /// refresh (RFC 4028) or a target refresh. From the caller it also
    /// restarts the session timer, and a re-INVITE that crosses our own
    /// refresh re-INVITE is glare (491, RFC 3261 §14.2).
    pub(super) fn on_reinvite(&mut self, tx: ServerTxId, req: Request) {
        let call_id = req.call_id().unwrap_or_default();
        let caller = self.calls.get(call_id).filter(|c| c.dialog.matches(&req));
        let callee = self
            .outbound_ids
            .get(call_id)
            .and_then(|owner| self.calls.get(owner))
            .and_then(|c| c.outbound.as_ref())
            .filter(|o| o.dialog.as_ref().is_some_and(|d| d.matches(&req)));
        let found = match (caller, callee) {
            (Some(c), _) => Some((
                c.id.clone(),
                "caller",
                c.span.clone(),
                c.leg().clone(),
                c.codec,
                c.dialog.local_contact.clone(),
                Some(c.answer.clone()),
                c.srtp,
            )),
            (None, Some(o)) => self.outbound_ids.get(call_id).map(|owner| {
                (
                    owner.clone(),
                    "callee",
                    tracing::Span::current(),
                    o.leg.clone(),
                    o.offer.codec,
                    o.dialog
                        .as_ref()
                        .map(|d| d.local_contact.clone())
                        .unwrap_or_default(),
                    None,
                    o.srtp
                        .as_ref()
                        .filter(|_| o.srtp_agreed)
                        .map(super::srtp::answer_for_offered),
                )
            }),
            (None, None) => None,
        };
        let Some((owner, party, span, leg, codec, contact, our_sdp, srtp)) = found else {
            return self.reject(tx, &req, 481, "Call/Transaction Does Not Exist");
        };
        let is_invite = req.method == Method::Invite;
        let side = match party {
            "caller" => Side::Caller,
            _ => Side::Callee,
        };
        let glare = self
            .calls
            .get(&owner)
            .and_then(|c| match side {
                Side::Caller => Some(&c.keepalive),
                Side::Callee => c.outbound.as_ref().map(|o| &o.keepalive),
            })
            .is_some_and(|k| is_invite && k.in_flight == Some(Method::Invite));
        if glare {
            return self.reject(tx, &req, 491, "Request Pending");
        }
        let session = match session_timer::negotiate(&req, &self.config.session_timers()) {
            Negotiation::TooSmall { min_se } => return self.reject_too_small(tx, &req, min_se),
            Negotiation::Off => None,
            Negotiation::On(agreed) => Some(agreed),
        };
        let rtp_ip = self.config.server.listen_ip;
        let port = leg.local_addr().port();
        let answer = if req.body.is_empty() {
            None
        } else {
            let answered = parse_offer(&req).ok().and_then(|offer| {
                let id = super::sdp_session_id();
                sdp::answer_audio_srtp(&offer, &[codec], srtp.as_ref(), rtp_ip, port, id).ok()
            });
            match answered {
                Some(answered) => Some(answered),
                None => return self.reject(tx, &req, 488, "Not Acceptable Here"),
            }
        };
        let mut ok = Response::for_request(&req, 200, "OK");
        match &answer {
            Some((answer, negotiated)) => {
                span.in_scope(|| info!(method = %req.method, remote_rtp = %negotiated.remote_rtp, srtp = negotiated.srtp.is_some(), "offer in dialog accepted"));
                if srtp.is_some() {
                    // Keys first: the packets after the new remote use them.
                    leg.set_srtp(negotiated.srtp.as_ref().and_then(super::srtp::media_keys));
                }
                leg.set_remote(negotiated.remote_rtp);
                let sending = sends(negotiated.direction);
                if leg.sending() != sending {
                    leg.set_sending(sending);
                    span.in_scope(|| info!(on_hold = !sending, party, "hold changed"));
                    let event = HoldChanged {
                        on_hold: !sending,
                        party: party.into(),
                    };
                    self.bus.publish(&owner, call_event::Event::Hold(event));
                }
                ok = ok_with_sdp(ok, answer, &contact);
            }
            // A re-INVITE without an offer gets ours (RFC 3261 §14.2).
            None if is_invite => match &our_sdp {
                Some(sdp) => ok = ok_with_sdp(ok, sdp, &contact),
                None => return self.reject(tx, &req, 488, "Not Acceptable Here"),
            },
            None => {
                ok.headers.set("Contact", format!("<{contact}>"));
                ok.headers.set("Allow", super::ALLOW);
                ok.headers.set("Supported", super::SUPPORTED);
            }
        }
        if let Some(agreed) = session {
            agreed.add_to_response(&mut ok);
        }
        let keepalive = self.calls.get_mut(&owner).and_then(|c| match side {
            Side::Caller => Some(&mut c.keepalive),
            Side::Callee => c.outbound.as_mut().map(|o| &mut o.keepalive),
        });
        if let Some(keepalive) = keepalive {
            keepalive.timer =
                session.map(|a| SessionTimer::new(Instant::now(), a.interval, a.we_refresh()));
            if !req.body.is_empty() || session.is_some() {
                span.in_scope(|| info!(method = %req.method, party, session_expires = session.map(|a| a.interval), "session refreshed"));
            }
        }
        self.schedule_call_timers(&owner);
        self.respond(tx, ok);
    }

    pub(super) fn reject(&mut self, tx: ServerTxId, req: &Request, status: u16, reason: &str) {
        let mut resp = Response::for_request(req, status, reason);
        resp.set_to_tag(&generate_tag());
        self.respond(tx, resp);
    }

    /// Our codec order for a caller: its trunk's `codecs` when the source
    /// is one of a trunk's `allowed_sources` and the trunk sets them, else
    /// `sip.codecs`.
    fn codec_preference(&self, source: std::net::IpAddr) -> Vec<AudioCodec> {
        let trunk_codecs = self
            .config
            .trunks
            .iter()
            .filter(|t| !t.codecs.is_empty())
            .find(|t| {
                t.allowed_sources
                    .iter()
                    .filter_map(|n| n.parse::<ipnet::IpNet>().ok())
                    .any(|net| net.contains(&source))
            })
            .map(|t| &t.codecs);
        parse_codecs(trunk_codecs.unwrap_or(&self.config.sip.codecs))
    }

    fn prompt(&self) -> Prompt {
        let media = &self.config.media;
        if media.prompt_wav.is_empty() {
            Prompt::Tone {
                freq_hz: media.prompt_tone_hz,
                on_ms: 1000,
                off_ms: 1000,
                amplitude: 8000,
            }
        } else {
            Prompt::Wav {
                path: PathBuf::from(&media.prompt_wav),
                looped: true,
            }
        }
    }

    fn recording_path(&self, call_id: &str) -> Option<PathBuf> {
        let dir = self.recordings_dir.as_ref()?;
        Some(dir.join(recording_file_name(call_id)))
    }

    /// Starts streaming the caller's audio to the configured audio fork, if any.
    fn start_audio_fork(
        &self,
        call_id: &str,
        channel: &str,
        span: &tracing::Span,
    ) -> Option<Box<dyn TapSink>> {
        let url = &self.config.asr.fork_url;
        if url.is_empty() {
            return None;
        }
        let (sink, frames) = asr_bridge::tap_channel(TAP_QUEUE_FRAMES);
        let info = StreamInfo {
            call_id: call_id.to_owned(),
            channel: channel.into(),
            sample_rate: TAP_RATE,
            encoding: "linear16",
        };
        let mut backend = AudioForkBackend::new(AudioForkConfig::new(url.clone()));
        tokio::spawn(
            async move {
                match asr_bridge::run_stream(frames, &mut backend, &info).await {
                    Ok(s) => info!(
                        frames = s.frames_sent,
                        dropped = s.frames_dropped,
                        "audio fork finished"
                    ),
                    Err(e) => {
                        metrics::counter!("switchboard_asr_stream_failures_total").increment(1);
                        warn!(error = %e, "audio fork failed")
                    }
                }
            }
            .instrument(span.clone()),
        );
        Some(Box::new(sink))
    }
}

/// Completes a 200 OK to an INVITE with our Contact (the dialog's local
/// URI, for its transport) and SDP answer.
pub(super) fn ok_with_sdp(
    mut ok: Response,
    answer: &SessionDescription,
    contact: &str,
) -> Response {
    ok.headers.set("Contact", format!("<{contact}>"));
    ok.headers.set("Allow", super::ALLOW);
    ok.headers.set("Supported", super::SUPPORTED);
    ok.headers.set("Content-Type", "application/sdp");
    ok.body = answer.to_string().into_bytes().into();
    ok
}

fn parse_offer(req: &Request) -> Result<SessionDescription, &'static str> {
    let is_sdp = req
        .content_type()
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/sdp"));
    if !is_sdp || req.body.is_empty() {
        return Err("INVITE without an SDP offer");
    }
    let text = std::str::from_utf8(&req.body).map_err(|_| "SDP is not UTF-8")?;
    SessionDescription::parse(text).map_err(|_| "SDP offer does not parse")
}

/// Whether our answered direction lets us send (RFC 3264 §6.1: an offer of
/// sendonly or inactive, i.e. hold, is answered recvonly or inactive).
fn sends(direction: Direction) -> bool {
    matches!(direction, Direction::SendRecv | Direction::SendOnly)
}

/// Takes payload type `pt` (and its rtpmap) out of an answer's audio
/// stream: a format we answered but cannot use on this call.
fn without_format(answer: &mut sdp::SessionDescription, pt: u8) {
    let pt = pt.to_string();
    for m in &mut answer.media {
        m.formats.retain(|f| *f != pt);
        m.attributes.retain(|a| {
            let per_format =
                a.name.eq_ignore_ascii_case("rtpmap") || a.name.eq_ignore_ascii_case("fmtp");
            let first = a.value.as_deref().and_then(|v| v.split_whitespace().next());
            !(per_format && first == Some(pt.as_str()))
        });
    }
}

/// Codec names from the config (`sip.codecs`, a trunk's `codecs`), in
/// order; unknown names are skipped (the config check refuses them).
pub(super) fn parse_codecs(names: &[String]) -> Vec<AudioCodec> {
    names
        .iter()
        .filter_map(|name| match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(AudioCodec::Pcmu),
            "PCMA" => Some(AudioCodec::Pcma),
            "G722" => Some(AudioCodec::G722),
            "OPUS" => Some(AudioCodec::Opus),
            _ => None,
        })
        .collect()
}

pub(super) fn media_codec(codec: AudioCodec) -> Option<Codec> {
    match codec {
        AudioCodec::Pcmu => Some(Codec::Pcmu),
        AudioCodec::Pcma => Some(Codec::Pcma),
        AudioCodec::G722 => Some(Codec::G722),
        AudioCodec::Opus => Some(Codec::Opus),
    }
}

/// The Opus encoder settings the peer asked for in its fmtp.
pub(super) fn opus_params(negotiated: &NegotiatedAudio) -> OpusParams {
    negotiated
        .opus
        .map(|f| OpusParams::for_peer(f.max_average_bitrate, f.use_dtx))
        .unwrap_or_default()
}

trait CodecName {
    fn codec_name(&self) -> &'static str;
}

impl CodecName for NegotiatedAudio {
    fn codec_name(&self) -> &'static str {
        match self.codec {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::G722 => "G722",
            AudioCodec::Opus => "opus",
        }
    }
}

/// A file name from a hostile Call-ID: only safe characters, bounded length,
/// and a time suffix so a reused Call-ID never overwrites a recording.
fn recording_file_name(call_id: &str) -> String {
    let safe: String = call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    format!("{}-{stamp}.wav", safe.trim_start_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::recording_file_name;

    #[test]
    fn recording_names_are_safe_from_hostile_call_ids() {
        let name = recording_file_name("../../etc/passwd\0@host");
        assert!(!name.contains('/') && !name.contains('\0'));
        assert!(!name.starts_with('.'));
        assert!(name.ends_with(".wav"));
        assert!(recording_file_name(&"x".repeat(1000)).len() < 100);
    }
}
