//! One call as the signalling task sees it: its dialog, its media leg, its
//! lifecycle, and the events it owes the event bus.

use crate::events::EventBus;
use crate::proto::{
    call_event, CallAnswered, CallEnded, CallInfo, CallQuality, QualityReport, RtpCounters,
};
use media_core::{LegHandle, LegQuality, LegReport, LegStats, StopReceipt};
use sip_stack::dialog::Dialog;
use sip_stack::message::{Method, Request};
use sip_stack::reliable::{UacReliable, UasReliable};
use sip_stack::sdp::{AudioCodec, AudioOffer, SessionDescription, SrtpAnswer, SrtpOffer};
use sip_stack::session_timer::{Agreed, SessionTimer};

/// A dialog's session-timer state (RFC 4028), on either side of a call.
#[derive(Default)]
pub struct KeepAlive {
    pub timer: Option<SessionTimer>,
    /// The peer takes UPDATE: our refreshes use it, not re-INVITE.
    pub allows_update: bool,
    /// Our refresh in flight, if any (a re-INVITE from the peer meanwhile
    /// is glare: 491).
    pub in_flight: Option<Method>,
    /// The ACK for the 2xx to our refresh re-INVITE, resent if the 2xx is.
    pub ack: Option<(Vec<u8>, Peer)>,
}

/// Whether a message's Allow lists UPDATE.
pub fn allows_update(headers: &sip_stack::message::Headers) -> bool {
    headers
        .get_all("Allow")
        .flat_map(sip_stack::message::split_comma)
        .any(|m| m.trim().eq_ignore_ascii_case("UPDATE"))
}
use sip_stack::transaction::ServerTxId;
use sip_stack::transport::Peer;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tracing::{info, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    RemoteBye,
    CalleeBye,
    LocalHangup,
    Shutdown,
    AckTimeout,
    Cancelled,
    /// The bridged-to party refused or never answered.
    OutboundFailed,
    /// Media could not be set up for the bridge.
    MediaFailed,
    /// The session timer ran out without a refresh, or a refresh was
    /// refused with 481/408 (RFC 4028 §10, RFC 5057).
    SessionExpired,
    /// Our reliable provisional was never PRACKed (RFC 3262 §3).
    PrackTimeout,
    /// The transferor hung up and the transfer target never answered.
    TransferFailed,
    /// An attended transfer took this call's bridged-to party over into
    /// another call; the caller (the transferor) was released.
    Transferred,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::RemoteBye => "remote_bye",
            EndReason::CalleeBye => "callee_bye",
            EndReason::OutboundFailed => "outbound_failed",
            EndReason::MediaFailed => "media_failed",
            EndReason::LocalHangup => "local_hangup",
            EndReason::Shutdown => "shutdown",
            EndReason::AckTimeout => "ack_timeout",
            EndReason::Cancelled => "cancelled",
            EndReason::SessionExpired => "session_expired",
            EndReason::PrackTimeout => "prack_timeout",
            EndReason::TransferFailed => "transfer_failed",
            EndReason::Transferred => "transferred",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the bridged-to party; the caller got 180.
    Ringing,
    /// 200 OK sent, waiting for the ACK.
    Answered,
    /// ACK received: the dialog is confirmed.
    Confirmed,
    /// Media is stopping; the call leaves the table when its recording is final.
    Ending(EndReason),
}

/// A call: the caller's side (the engine is its UAS) and, when routing
/// bridges it, the outbound side (the engine is its UAC).
pub struct Call {
    pub id: String,
    /// Every log line about this call is emitted inside this span (`call_id`).
    pub span: Span,
    pub invite_tx: ServerTxId,
    /// The caller's INVITE, kept to answer it late (bridged calls).
    pub invite: Request,
    pub dialog: Dialog,
    /// Where the caller's INVITE came from (transport, address, connection).
    pub signalling_source: Peer,
    /// Our SDP answer to the caller's offer.
    pub answer: SessionDescription,
    /// Published when the caller gets its 200 OK.
    pub answered_event: CallAnswered,
    /// The caller's codec; bridges are transparent, so it is the callee's too.
    pub codec: AudioCodec,
    /// The caller's codec, payload types and ptime: what any party we call
    /// for this call is offered (bridges relay packets unchanged).
    pub caller_media: AudioOffer,
    /// SDES agreed with the caller: our policy and key, to answer its
    /// re-offers with the same key (`None`: plain RTP).
    pub srtp: Option<SrtpAnswer>,
    pub outbound: Option<Outbound>,
    /// The caller's dialog keep-alive (RFC 4028), once answered.
    pub keepalive: KeepAlive,
    /// What the 200 to the caller's INVITE says about session timers.
    pub session_agreed: Option<Agreed>,
    /// A blind transfer under way (REFER or the Transfer RPC).
    pub transfer: Option<super::transfer::Transfer>,
    /// Our reliable provisionals to the caller (it required 100rel).
    pub reliable: Option<UasReliable>,
    /// The 200 is ready but waits for the PRACK of our reliable 18x.
    pub answer_waits_for_prack: bool,
    from: String,
    to: String,
    leg: LegHandle,
    state: State,
    started_at: SystemTime,
    answered_at: Option<Instant>,
    /// RTP counters already added to the global metrics.
    reported: LegStats,
}

/// The bridged-to side of a call.
pub struct Outbound {
    pub call_id: String,
    pub invite: Request,
    /// Where the INVITE went (over TCP if it was too large for UDP).
    pub dest: Peer,
    pub offer: AudioOffer,
    /// The SDES line we offered, if any.
    pub srtp: Option<SrtpOffer>,
    /// The answer took it: the leg speaks SRTP.
    pub srtp_agreed: bool,
    pub leg: LegHandle,
    /// Set by the first 2xx; in-dialog requests to the callee use it.
    pub dialog: Option<Dialog>,
    /// The ACK sent for the 2xx, resent if the 2xx is retransmitted.
    pub ack: Option<(Vec<u8>, Peer)>,
    /// Digest challenges answered so far (bounded: a wrong password must
    /// not loop forever).
    pub auth_attempts: u8,
    /// Which of the callee's reliable provisionals we PRACKed.
    pub reliable: UacReliable,
    /// The early dialog a reliable 18x created; its PRACKs used its CSeqs.
    pub early_dialog: Option<Dialog>,
    /// The callee's dialog keep-alive (RFC 4028), once answered with
    /// Session-Expires.
    pub keepalive: KeepAlive,
    /// The `[[trunks]]` entry called, if the destination is one.
    pub trunk: Option<String>,
    /// The route's other destinations, tried in order if this one fails.
    pub fallbacks: Vec<crate::routing::Destination>,
}

pub struct NewCall {
    pub id: String,
    pub span: Span,
    pub invite_tx: ServerTxId,
    pub invite: Request,
    pub dialog: Dialog,
    /// Where the caller's INVITE came from (transport, address, connection).
    pub signalling_source: Peer,
    pub answer: SessionDescription,
    pub answered_event: CallAnswered,
    pub codec: AudioCodec,
    pub caller_media: AudioOffer,
    pub srtp: Option<SrtpAnswer>,
    pub outbound: Option<Outbound>,
    pub session_agreed: Option<Agreed>,
    pub reliable: Option<UasReliable>,
    pub from: String,
    pub to: String,
    pub leg: LegHandle,
}

impl Call {
    /// A new call: the caller got 180 (or 183), not yet 200.
    pub fn ringing(new: NewCall) -> Call {
        let keepalive = KeepAlive {
            allows_update: allows_update(&new.invite.headers),
            ..KeepAlive::default()
        };
        Call {
            id: new.id,
            span: new.span,
            invite_tx: new.invite_tx,
            invite: new.invite,
            dialog: new.dialog,
            signalling_source: new.signalling_source,
            answer: new.answer,
            answered_event: new.answered_event,
            codec: new.codec,
            caller_media: new.caller_media,
            srtp: new.srtp,
            outbound: new.outbound,
            keepalive,
            session_agreed: new.session_agreed,
            reliable: new.reliable,
            answer_waits_for_prack: false,
            transfer: None,
            from: new.from,
            to: new.to,
            leg: new.leg,
            state: State::Ringing,
            started_at: SystemTime::now(),
            answered_at: None,
            reported: LegStats::default(),
        }
    }

    pub fn leg(&self) -> &LegHandle {
        &self.leg
    }

    pub fn is_ending(&self) -> bool {
        matches!(self.state, State::Ending(_))
    }

    pub fn is_ringing(&self) -> bool {
        self.state == State::Ringing
    }

    pub fn mark_answered(&mut self) {
        if self.state == State::Ringing {
            self.state = State::Answered;
            self.answered_at = Some(Instant::now());
        }
    }

    /// Recording and taps get silence while paused (both legs of a bridge).
    pub fn set_capture_paused(&self, paused: bool) {
        self.span
            .in_scope(|| info!(paused, "capture paused/resumed"));
        self.leg.set_capture_paused(paused);
        if let Some(out) = &self.outbound {
            out.leg.set_capture_paused(paused);
        }
    }

    pub fn on_ack(&mut self) {
        if self.state == State::Answered {
            self.state = State::Confirmed;
            self.span
                .in_scope(|| info!("ACK received: dialog confirmed"));
        }
    }

    /// Marks the call as ending and asks the media workers to stop its legs
    /// (the caller's receipt first). `None` when it was already ending.
    pub fn begin_ending(&mut self, reason: EndReason) -> Option<Vec<StopReceipt>> {
        if self.is_ending() {
            return None;
        }
        self.state = State::Ending(reason);
        self.span
            .in_scope(|| info!(reason = reason.as_str(), "call ending"));
        let mut receipts = vec![self.leg.stop()];
        receipts.extend(self.outbound.as_ref().map(|o| o.leg.stop()));
        receipts.extend(self.transfer.as_ref().map(|t| t.target.leg.stop()));
        Some(receipts)
    }

    pub fn info(&self) -> CallInfo {
        let state = match self.state {
            State::Ringing => "ringing",
            State::Answered | State::Confirmed => "answered",
            State::Ending(_) => "ending",
        };
        CallInfo {
            call_id: self.id.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            state: state.into(),
            started_at_ms: unix_ms(self.started_at),
            rtp: Some(counters(&self.leg.stats())),
        }
    }

    /// Both legs' quality now, for the periodic event (answered calls only).
    pub fn quality_report(&self) -> Option<QualityReport> {
        if self.answered_at.is_none() || self.is_ending() {
            return None;
        }
        Some(QualityReport {
            caller: Some(quality(&self.leg.quality())),
            callee: self.outbound.as_ref().map(|o| quality(&o.leg.quality())),
        })
    }

    /// Adds what the leg did since the last sample to the global RTP counters.
    pub fn sample_metrics(&mut self) {
        let now = self.leg.stats();
        add_rtp_metrics(&self.reported, &now);
        self.reported = now;
    }

    /// Publishes `CallEnded` with the final counters and the recording path.
    pub fn finish(mut self, report: Option<LegReport>, bus: &EventBus) {
        let reason = match self.state {
            State::Ending(r) => r,
            _ => EndReason::LocalHangup,
        };
        let stats = report
            .as_ref()
            .map(|r| r.stats.clone())
            .unwrap_or_else(|| self.leg.stats());
        add_rtp_metrics(&self.reported, &stats);
        self.reported = stats.clone();
        let final_quality = report
            .as_ref()
            .map(|r| r.quality.clone())
            .unwrap_or_else(|| self.leg.quality());
        let recording_path = report
            .as_ref()
            .and_then(|r| r.recording.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let duration_ms = self
            .answered_at
            .map(|t| t.elapsed().as_millis() as u64)
            .unwrap_or_default();
        self.span.in_scope(|| {
            info!(
                reason = reason.as_str(),
                recording = %recording_path,
                packets_received = stats.packets_received,
                packets_sent = stats.packets_sent,
                packets_lost = stats.packets_lost,
                duration_ms,
                "call ended"
            )
        });
        metrics::counter!("switchboard_calls_ended_total", "reason" => reason.as_str())
            .increment(1);
        bus.publish(
            &self.id,
            call_event::Event::Ended(CallEnded {
                reason: reason.as_str().into(),
                recording_path,
                rtp: Some(counters(&stats)),
                duration_ms,
                quality: Some(quality(&final_quality)),
            }),
        );
    }
}

pub fn counters(s: &LegStats) -> RtpCounters {
    RtpCounters {
        packets_received: s.packets_received,
        packets_sent: s.packets_sent,
        bytes_received: s.bytes_received,
        bytes_sent: s.bytes_sent,
        packets_lost: s.packets_lost,
        packets_late: s.packets_late,
        packets_invalid: s.packets_invalid,
        frames_dropped_for_delay: s.frames_dropped_for_delay,
        frames_inserted_for_delay: s.frames_inserted_for_delay,
        jitter_buffer_ms: s.jitter_delay_ms,
        comfort_noise_received: s.cn_packets,
        comfort_noise_sent: s.cn_packets_sent,
        srtp_auth_failures: s.srtp_auth_failures,
        srtp_replayed: s.srtp_replayed,
    }
}

pub fn quality(q: &LegQuality) -> CallQuality {
    CallQuality {
        mos: q.mos.unwrap_or_default(),
        jitter_ms: q.jitter_ms,
        fraction_lost: q.fraction_lost,
        cumulative_lost: q.cumulative_lost,
        packets_expected: q.packets_expected,
        rtt_ms: q.rtt_ms.unwrap_or_default(),
        remote_fraction_lost: q.remote_fraction_lost.unwrap_or_default(),
        remote_jitter_ms: q.remote_jitter_ms.unwrap_or_default(),
    }
}

fn add_rtp_metrics(before: &LegStats, now: &LegStats) {
    let delta = |a: u64, b: u64| b.saturating_sub(a);
    metrics::counter!("switchboard_rtp_packets_received_total")
        .increment(delta(before.packets_received, now.packets_received));
    metrics::counter!("switchboard_rtp_packets_sent_total")
        .increment(delta(before.packets_sent, now.packets_sent));
    metrics::counter!("switchboard_rtp_bytes_received_total")
        .increment(delta(before.bytes_received, now.bytes_received));
    metrics::counter!("switchboard_rtp_bytes_sent_total")
        .increment(delta(before.bytes_sent, now.bytes_sent));
    metrics::counter!("switchboard_rtp_packets_lost_total")
        .increment(delta(before.packets_lost, now.packets_lost));
    metrics::counter!("switchboard_srtp_auth_failures_total")
        .increment(delta(before.srtp_auth_failures, now.srtp_auth_failures));
    metrics::counter!("switchboard_srtp_replayed_total")
        .increment(delta(before.srtp_replayed, now.srtp_replayed));
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
