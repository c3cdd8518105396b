//! Answering an INVITE: SDP offer/answer, a media leg, 100/180/200.

use super::call::{Call, NewCall};
use super::Signalling;
use crate::proto::{call_event, CallAnswered, CallStarted, HoldChanged};
use asr_bridge::{AudioForkBackend, AudioForkConfig, StreamInfo};
use media_core::{Codec, LegSpec, OpusParams, Prompt, TapDirection, TapSink, TAP_RATE};
use sip_stack::dialog::Dialog;
use sip_stack::message::{generate_tag, Request, Response};
use sip_stack::sdp::{self, AudioCodec, Direction, NegotiatedAudio, SessionDescription};
use sip_stack::transaction::ServerTxId;
use sip_stack::transport::Peer;
use std::path::PathBuf;
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
        let codecs = self.codec_preference();
        let rtp_ip = self.config.server.listen_ip;
        let session_id = super::sdp_session_id();
        // Negotiate first (the codec decides the leg), then answer with the leg's port.
        let negotiated = match sdp::answer_audio(&offer, &codecs, rtp_ip, 0, session_id) {
            Ok((_, negotiated)) => negotiated,
            Err(e) => {
                warn!(error = %e, "no acceptable audio in the offer");
                return self.reject(tx, &req, 488, "Not Acceptable Here");
            }
        };
        let Some(codec) = media_codec(negotiated.codec) else {
            return self.reject(tx, &req, 488, "Not Acceptable Here");
        };

        let bridge_to = self.config.routing.bridge_target();
        let mut spec = LegSpec::new(call_id.clone(), codec);
        spec.payload_type = negotiated.payload_type;
        spec.opus = opus_params(&negotiated);
        spec.ptime_ms = negotiated.ptime_ms;
        spec.remote = Some(negotiated.remote_rtp);
        spec.telephone_event_pt = negotiated.telephone_event_pt;
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
        let answer = match sdp::answer_audio(&offer, &codecs, rtp_ip, local_rtp.port(), session_id)
        {
            Ok((answer, _)) => answer,
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
            Some(target) => {
                match self.start_outbound(&call_id, &req, &leg, &negotiated, codec, target) {
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
        let answered_event = CallAnswered {
            codec: negotiated.codec_name().into(),
            local_rtp: local_rtp.to_string(),
            remote_rtp: negotiated.remote_rtp.to_string(),
        };
        let bridged = outbound.is_some();
        if !bridged {
            let mut ok = Response::for_request(&req, 200, "OK");
            ok.set_to_tag(&local_tag);
            let ok = ok_with_sdp(ok, &answer, &dialog.local_contact);
            self.respond(tx, ok);
            self.bus.publish(
                &call_id,
                call_event::Event::Answered(answered_event.clone()),
            );
            info!(codec = negotiated.codec_name(), %local_rtp, remote_rtp = %negotiated.remote_rtp, "call answered");
            metrics::counter!("switchboard_calls_answered_total").increment(1);
        }
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
            outbound,
            from,
            to,
            leg,
        };
        let call = if bridged {
            Call::ringing(new)
        } else {
            Call::answered(new)
        };
        self.calls.insert(call_id, call);
        metrics::gauge!("switchboard_active_calls").set(self.calls.len() as f64);
    }

    /// A re-INVITE in an existing dialog, from the caller or the bridged-to
    /// party: same codec and port (the leg and any bridge stay as they are),
    /// follow a moved remote address, answer 200 with our SDP.
    pub(super) fn on_reinvite(&mut self, tx: ServerTxId, req: Request) {
        let call_id = req.call_id().unwrap_or_default();
        let caller = self.calls.get(call_id).filter(|c| c.dialog.matches(&req));
        let callee = self
            .outbound_ids
            .get(call_id)
            .and_then(|owner| self.calls.get(owner))
            .and_then(|c| c.outbound.as_ref())
            .filter(|o| o.dialog.as_ref().is_some_and(|d| d.matches(&req)));
        let owner = match (caller, callee) {
            (Some(_), _) => Some((call_id.to_owned(), "caller")),
            (None, Some(_)) => self
                .outbound_ids
                .get(call_id)
                .map(|o| (o.clone(), "callee")),
            (None, None) => None,
        };
        let found = match (caller, callee) {
            (Some(c), _) => Some((
                c.span.clone(),
                c.leg().clone(),
                c.codec,
                c.dialog.local_contact.clone(),
            )),
            (None, Some(o)) => Some((
                tracing::Span::current(),
                o.leg.clone(),
                o.offer.codec,
                o.dialog
                    .as_ref()
                    .map(|d| d.local_contact.clone())
                    .unwrap_or_default(),
            )),
            (None, None) => None,
        };
        let (Some((span, leg, codec, contact)), Some((owner, party))) = (found, owner) else {
            return self.reject(tx, &req, 481, "Call/Transaction Does Not Exist");
        };
        let rtp_ip = self.config.server.listen_ip;
        let port = leg.local_addr().port();
        let answer = parse_offer(&req).ok().and_then(|offer| {
            sdp::answer_audio(&offer, &[codec], rtp_ip, port, super::sdp_session_id()).ok()
        });
        let Some((answer, negotiated)) = answer else {
            return self.reject(tx, &req, 488, "Not Acceptable Here");
        };
        span.in_scope(|| info!(remote_rtp = %negotiated.remote_rtp, "re-INVITE accepted"));
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
        let ok = ok_with_sdp(Response::for_request(&req, 200, "OK"), &answer, &contact);
        self.respond(tx, ok);
    }

    fn reject(&mut self, tx: ServerTxId, req: &Request, status: u16, reason: &str) {
        let mut resp = Response::for_request(req, status, reason);
        resp.set_to_tag(&generate_tag());
        self.respond(tx, resp);
    }

    fn codec_preference(&self) -> Vec<AudioCodec> {
        self.config
            .sip
            .codecs
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
    ok.headers
        .set("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
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

fn media_codec(codec: AudioCodec) -> Option<Codec> {
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
