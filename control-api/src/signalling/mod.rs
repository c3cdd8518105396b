//! The signalling task: one tokio task owns the SIP transports (UDP, TCP,
//! TLS), the sans-IO transaction layer and the table of calls.
//!
//! Owning everything in one task keeps call state changes race-free without
//! locks: SIP messages, timer expiries, gRPC commands and media reports all
//! arrive as inputs to the same loop, in order. Media never passes through
//! here; legs live on the media workers and this task only holds handles.
//!
//! ```text
//!  UDP/TCP/TLS ─▶ parse ─▶ Endpoint (transactions) ─▶ TxEvent ─▶ calls
//!  gRPC ─▶ Command ─┘                                   │
//!  media (leg stopped) ─▶ Internal ─────────────────────┘─▶ EventBus
//! ```
//!
//! The modules follow a call's life: `identity` says where we are on each
//! transport (Via, Contact) and where in-dialog requests go, `auth` decides
//! who may call (trusted networks, digest), `invite` answers the caller (or rings it while
//! `outbound` calls the bridge target as a UAC), `reliable` handles PRACKs
//! both ways (RFC 3262), `session` runs each call's own timers (session
//! refresh and expiry on both dialogs, RFC 4028; 100rel retransmissions),
//! `transfer` hands the caller to a new party (REFER, the Transfer RPC)
//! and `attended` joins it to a consultation call's party (Replaces),
//! `call` is the state of one call, and `teardown` ends calls from either
//! side.

mod attended;
mod auth;
mod call;
mod conference;
mod dtmf;
mod identity;
mod invite;
mod outbound;
mod registrations;
mod reliable;
mod session;
mod srtp;
mod teardown;
mod transfer;
mod trunks;

use crate::config::Config;
use crate::events::EventBus;
use crate::proto::{call_event, CallInfo, RecordingPaused, RecordingResumed};
use call::{Call, EndReason};
pub use conference::JoinRequest;
use identity::LocalIdentity;
use media_core::{LegReport, MediaEngine};
use sip_stack::message::{Method, Request, Response, SipMessage};
use sip_stack::protection::{InviteRateLimiter, UserAgentFilter};
use sip_stack::transaction::{ClientTxId, Endpoint, Output, ServerTxId, TimerConfig, TxEvent};
use sip_stack::transport::tls::{self, TlsIdentity};
use sip_stack::transport::{
    Peer, Received, SendError, SipTransports, StreamConfig, TransportConfig, TransportKind,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
pub use transfer::TransferTo;

/// The methods we take, in Allow of our answers and requests.
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY";

/// The extensions we support (RFC 3262 reliable provisionals, RFC 4028
/// session timers), in Supported.
const SUPPORTED: &str = "100rel, timer";
/// The same option tags, for checking a request's Require (420 otherwise).
const SUPPORTED_TAGS: [&str; 2] = ["100rel", "timer"];

/// Seconds between QualityReport events for each answered call.
const QUALITY_REPORT_SECS: u64 = 5;

/// Sources whose INVITE rate is tracked at once (bounds the limiter's memory).
const MAX_RATE_LIMITED_SOURCES: usize = 100_000;

/// What the rest of the engine (gRPC, shutdown) asks of the signalling task.
pub enum Command {
    Hangup {
        call_id: String,
        reply: oneshot::Sender<Result<(), CallNotFound>>,
    },
    ListCalls {
        reply: oneshot::Sender<Vec<CallInfo>>,
    },
    /// Pause (true) or resume capture: recording and taps get silence.
    SetCapturePaused {
        call_id: String,
        paused: bool,
        reply: oneshot::Sender<Result<(), CallNotFound>>,
    },
    JoinConference {
        request: JoinRequest,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    LeaveConference {
        call_id: String,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    SetMute {
        call_id: String,
        muted: bool,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    SendDtmf {
        call_id: String,
        digits: String,
        duration_ms: u32,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    Transfer {
        call_id: String,
        to: TransferTo,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    /// End every call with BYE, finish their recordings, then stop.
    Shutdown { reply: oneshot::Sender<()> },
}

/// Why a call-control command was refused; maps onto gRPC status codes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unavailable(String),
}

/// A command named a call the engine does not hold (or is already ending).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallNotFound {
    #[error("no call with id {0}")]
    NotFound(String),
}

/// What one of our client transactions is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientPurpose {
    OutboundInvite,
    Bye,
    Cancel,
    /// An OPTIONS ping to the trunk at this index.
    TrunkPing(usize),
    /// Our session refresh (UPDATE or re-INVITE) to the caller or callee.
    SessionRefresh(session::Side),
    /// Our PRACK for the callee's reliable provisional.
    Prack,
    /// Our INVITE to a transfer target.
    TransferInvite,
    /// Our NOTIFY of a transfer's progress to the party that sent REFER.
    Notify,
    /// A REGISTER to the trunk registration at this index.
    Register(usize),
}

/// Reports from helper tasks back into the loop.
enum Internal {
    LegStopped {
        call_id: String,
        report: Option<Box<LegReport>>,
    },
    /// A key press a media leg detected (RFC 4733).
    Dtmf {
        call_id: String,
        party: &'static str,
        event: media_core::dtmf::DtmfEvent,
    },
}

/// Hands a leg's key presses to the signalling task, tagged with the call
/// and the party. Never blocks the media worker (unbounded queue; presses
/// are a few a second at most).
struct DtmfForward {
    call_id: String,
    party: &'static str,
    internal: mpsc::UnboundedSender<Internal>,
}

impl media_core::dtmf::DtmfSink for DtmfForward {
    fn deliver(&mut self, event: media_core::dtmf::DtmfEvent) -> bool {
        let msg = Internal::Dtmf {
            call_id: self.call_id.clone(),
            party: self.party,
            event,
        };
        self.internal.send(msg).is_ok()
    }
}

#[derive(Clone)]
pub struct SignallingHandle {
    commands: mpsc::Sender<Command>,
}

impl SignallingHandle {
    pub async fn hangup(&self, call_id: &str) -> Result<(), CallNotFound> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Hangup {
            call_id: call_id.to_owned(),
            reply,
        };
        if self.commands.send(cmd).await.is_err() {
            return Err(CallNotFound::NotFound(call_id.to_owned()));
        }
        rx.await
            .unwrap_or_else(|_| Err(CallNotFound::NotFound(call_id.to_owned())))
    }

    pub async fn set_capture_paused(
        &self,
        call_id: &str,
        paused: bool,
    ) -> Result<(), CallNotFound> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::SetCapturePaused {
            call_id: call_id.to_owned(),
            paused,
            reply,
        };
        if self.commands.send(cmd).await.is_err() {
            return Err(CallNotFound::NotFound(call_id.to_owned()));
        }
        rx.await
            .unwrap_or_else(|_| Err(CallNotFound::NotFound(call_id.to_owned())))
    }

    pub async fn join_conference(&self, request: JoinRequest) -> Result<(), ControlError> {
        self.ask(|reply| Command::JoinConference { request, reply })
            .await
    }

    pub async fn leave_conference(&self, call_id: &str) -> Result<(), ControlError> {
        let call_id = call_id.to_owned();
        self.ask(|reply| Command::LeaveConference { call_id, reply })
            .await
    }

    pub async fn set_muted(&self, call_id: &str, muted: bool) -> Result<(), ControlError> {
        let call_id = call_id.to_owned();
        self.ask(|reply| Command::SetMute {
            call_id,
            muted,
            reply,
        })
        .await
    }

    pub async fn send_dtmf(
        &self,
        call_id: &str,
        digits: String,
        duration_ms: u32,
    ) -> Result<(), ControlError> {
        let call_id = call_id.to_owned();
        self.ask(|reply| Command::SendDtmf {
            call_id,
            digits,
            duration_ms,
            reply,
        })
        .await
    }

    pub async fn transfer(&self, call_id: &str, to: TransferTo) -> Result<(), ControlError> {
        let call_id = call_id.to_owned();
        self.ask(|reply| Command::Transfer { call_id, to, reply })
            .await
    }

    /// Sends a command and waits for its answer; a stopped task is
    /// `Unavailable`.
    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), ControlError>>) -> Command,
    ) -> Result<(), ControlError> {
        let (reply, rx) = oneshot::channel();
        let gone = || ControlError::Unavailable("the engine is shutting down".into());
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| gone())?;
        rx.await.unwrap_or_else(|_| Err(gone()))
    }

    pub async fn list_calls(&self) -> Vec<CallInfo> {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::ListCalls { reply })
            .await
            .is_err()
        {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

pub struct Signalling {
    config: Arc<Config>,
    transports: SipTransports,
    endpoint: Endpoint,
    media: Arc<MediaEngine>,
    bus: EventBus,
    recordings_dir: Option<PathBuf>,
    me: LocalIdentity,
    calls: HashMap<String, Call>,
    /// Our own requests in flight: the call that sent each, and why.
    client_txs: HashMap<ClientTxId, (String, ClientPurpose)>,
    /// Call-IDs of outbound (bridged-to) dialogs → the call they belong to.
    outbound_ids: HashMap<String, String>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    shutdown: Option<(oneshot::Sender<()>, Instant)>,
    scanners: UserAgentFilter,
    invite_limiter: InviteRateLimiter,
    /// Seconds since start, for periodic work.
    ticks: u64,
    gatekeeper: auth::Gatekeeper,
    conferences: conference::Conferences,
    trunks: trunks::TrunkMonitor,
    router: crate::routing::Router,
    registrations: Vec<registrations::TrunkRegistration>,
    /// When calls' own timers (session refresh/expiry, 100rel
    /// retransmissions) are due. Entries are hints: a popped one is
    /// checked against the call, so stale entries cost one lookup.
    call_timers: BinaryHeap<Reverse<(Instant, String)>>,
}

impl Signalling {
    /// Binds the SIP listeners and returns the task's future and its handle.
    pub async fn bind(
        config: Arc<Config>,
        media: Arc<MediaEngine>,
        bus: EventBus,
        recordings_dir: Option<PathBuf>,
    ) -> std::io::Result<(Self, SignallingHandle, mpsc::Receiver<Command>)> {
        let transports = SipTransports::bind(transport_config(&config)?).await?;
        let me = LocalIdentity::new(&config.sip.advertised_address, &transports);
        let registrations =
            registrations::TrunkRegistration::from_config(&config.trunks, &me, Instant::now());
        let mut endpoint = Endpoint::new(TimerConfig {
            t1: Duration::from_millis(config.sip.timer_t1_ms),
            ..TimerConfig::default()
        });
        endpoint.set_max_transactions(config.sip.max_transactions);
        let (commands, command_rx) = mpsc::channel(256);
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        for kind in [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls] {
            if let Some(addr) = transports.local_addr(kind) {
                info!(sip = %addr, transport = %kind, "SIP listening");
            }
        }
        let this = Self {
            config: config.clone(),
            transports,
            endpoint,
            media,
            bus,
            recordings_dir,
            me,
            calls: HashMap::new(),
            client_txs: HashMap::new(),
            outbound_ids: HashMap::new(),
            internal_tx,
            internal_rx,
            shutdown: None,
            scanners: UserAgentFilter::new(&config.sip.blocked_user_agents),
            invite_limiter: InviteRateLimiter::new(
                config.sip.invite_rate_per_source,
                config.sip.invite_burst_per_source,
                MAX_RATE_LIMITED_SOURCES,
            ),
            ticks: 0,
            gatekeeper: auth::Gatekeeper::new(
                &config.sip,
                config.trunks.iter().flat_map(|t| &t.allowed_sources),
            ),
            trunks: trunks::TrunkMonitor::new(&config.trunks),
            router: crate::routing::Router::new(&config),
            registrations,
            conferences: Default::default(),
            call_timers: BinaryHeap::new(),
        };
        Ok((this, SignallingHandle { commands }, command_rx))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.transports
            .local_addr(TransportKind::Udp)
            .unwrap_or_else(|| self.config.sip_addr())
    }

    /// Runs until a `Shutdown` command has ended every call (or its grace ran out).
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut metrics_tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            self.drain_outputs().await;
            if self.shutdown_complete() {
                return;
            }
            let call_timer = self.call_timers.peek().map(|Reverse((at, _))| *at);
            let registration = self.registration_deadline();
            let wake = [self.endpoint.poll_timeout(), call_timer, registration]
                .into_iter()
                .flatten()
                .min()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                received = self.transports.recv() => match received {
                    Ok(Received::Message { source, data }) => self.on_message(&data, source),
                    Ok(Received::ConnectFailed { dest }) => self.endpoint.handle_transport_error(dest),
                    Err(e) => warn!(error = %e, "SIP socket receive failed"),
                },
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    self.endpoint.handle_timeout(now);
                    self.fire_call_timers(now);
                    self.poll_registrations(now);
                }
                Some(cmd) = commands.recv() => self.on_command(cmd),
                Some(internal) = self.internal_rx.recv() => self.on_internal(internal),
                _ = metrics_tick.tick() => self.sample_metrics(),
            }
        }
    }

    fn shutdown_complete(&mut self) -> bool {
        let Some((_, deadline)) = &self.shutdown else {
            return false;
        };
        // Trunk pings and registrations do not hold shutdown up.
        let idle = self.calls.is_empty()
            && self.client_txs.values().all(|(_, why)| {
                matches!(
                    why,
                    ClientPurpose::TrunkPing(_) | ClientPurpose::Register(_)
                )
            });
        if !idle && Instant::now() < *deadline {
            return false;
        }
        if !idle {
            warn!(
                calls = self.calls.len(),
                "shutdown grace ran out with calls still ending"
            );
        }
        if let Some((reply, _)) = self.shutdown.take() {
            let _ = reply.send(());
        }
        true
    }

    async fn drain_outputs(&mut self) {
        while let Some(output) = self.endpoint.poll_output() {
            match output {
                Output::Transmit { dest, data } => {
                    if let Err(e) = self.transports.send(&dest, data).await {
                        warn!(%dest, error = %e, "SIP send failed");
                        // No connection could carry it: fail what waits on it now.
                        if !matches!(e, SendError::Io(_) | SendError::Backlog(_)) {
                            self.endpoint.handle_transport_error(dest);
                        }
                    }
                }
                Output::Event(event) => self.on_tx_event(event),
            }
        }
    }

    fn on_message(&mut self, data: &[u8], source: Peer) {
        if data.len() > self.config.sip.max_message_bytes {
            metrics::counter!("switchboard_sip_messages_dropped_total", "reason" => "too_large")
                .increment(1);
            debug!(%source, len = data.len(), "dropped oversized SIP message");
            return;
        }
        if data.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return; // keep-alive
        }
        metrics::counter!("switchboard_sip_messages_received_total").increment(1);
        match sip_stack::message::parse(data) {
            Ok(SipMessage::Request(req))
                if self.scanners.is_blocked(req.headers.get("User-Agent")) =>
            {
                metrics::counter!("switchboard_sip_messages_dropped_total", "reason" => "blocked_user_agent")
                    .increment(1);
                debug!(%source, "dropped request from a blocked User-Agent");
            }
            Ok(msg) => self.endpoint.handle_message(Instant::now(), msg, source),
            Err(e) => {
                metrics::counter!("switchboard_sip_parse_errors_total").increment(1);
                match e.reply_400() {
                    Some(reply) => {
                        info!(%source, error = %e, "malformed SIP request answered with 400");
                        self.endpoint.send_stateless(source, reply.to_bytes());
                    }
                    None => debug!(%source, error = %e, "dropped unparseable SIP message"),
                }
            }
        }
    }

    fn on_tx_event(&mut self, event: TxEvent) {
        match event {
            TxEvent::NewRequest {
                tx,
                request,
                source,
            } => self.on_request(tx, request, source),
            TxEvent::Ack { request, .. } => {
                if let Some(call) = request.call_id().and_then(|id| self.calls.get_mut(id)) {
                    call.on_ack();
                }
            }
            TxEvent::Response { tx, response } => self.on_response(tx, response),
            TxEvent::Timeout { tx } => self.on_timeout(tx),
            TxEvent::Cancelled { invite_tx } => self.on_cancelled(invite_tx),
        }
    }

    fn on_request(&mut self, tx: sip_stack::transaction::ServerTxId, req: Request, source: Peer) {
        let unsupported =
            sip_stack::message::unsupported_requirements(&req.headers, &SUPPORTED_TAGS);
        if !unsupported.is_empty() {
            // RFC 3261 §8.2.2.3, e.g. an INVITE requiring `replaces`: an
            // engine that ignored it would start a call nobody asked for.
            let mut resp = Response::for_request(&req, 420, "Bad Extension");
            resp.headers.set("Unsupported", unsupported.join(", "));
            return self.respond(tx, resp);
        }
        let in_dialog = req.to_tag().is_some();
        match (&req.method, in_dialog) {
            (Method::Invite, false) => self.on_new_invite(tx, req, source),
            (Method::Invite | Method::Update, true) => self.on_reinvite(tx, req),
            (Method::Prack, true) => self.on_prack(tx, req),
            (Method::Refer, true) => self.on_refer(tx, req),
            (Method::Bye, _) => self.on_bye(tx, req),
            (Method::Options, _) => {
                let mut ok = Response::for_request(&req, 200, "OK");
                self.add_capabilities(&mut ok);
                self.respond(tx, ok);
            }
            (Method::Info, true) => self.on_info(tx, req),
            _ => {
                let mut resp = Response::for_request(&req, 405, "Method Not Allowed");
                self.add_capabilities(&mut resp);
                self.respond(tx, resp);
            }
        }
    }

    /// A dialog-creating INVITE: rate limit, then trust or a digest challenge.
    fn on_new_invite(&mut self, tx: ServerTxId, req: Request, source: Peer) {
        if !self.invite_limiter.allow(Instant::now(), source.addr.ip()) {
            metrics::counter!("switchboard_calls_rejected_total", "reason" => "rate_limited")
                .increment(1);
            warn!(%source, "INVITE rate limit reached: 503");
            let mut resp = Response::for_request(&req, 503, "Service Unavailable");
            let retry = self.invite_limiter.retry_after().as_secs().to_string();
            resp.headers.set("Retry-After", retry);
            return self.respond(tx, resp);
        }
        match self
            .gatekeeper
            .admit(&req, source.addr.ip(), SystemTime::now())
        {
            auth::Admission::Admit(user) => {
                if let Some(user) = user {
                    debug!(%source, user, "caller authenticated");
                }
                self.on_invite(tx, req, source);
            }
            auth::Admission::Challenge(values) => {
                let mut resp = Response::for_request(&req, 401, "Unauthorized");
                resp.set_to_tag(&sip_stack::message::generate_tag());
                for value in values {
                    resp.headers.push("WWW-Authenticate", value);
                }
                self.respond(tx, resp);
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Hangup { call_id, reply } => {
                let result = if self.calls.get(&call_id).is_some_and(|c| !c.is_ending()) {
                    self.hangup(&call_id, EndReason::LocalHangup);
                    Ok(())
                } else {
                    Err(CallNotFound::NotFound(call_id))
                };
                let _ = reply.send(result);
            }
            Command::SetCapturePaused {
                call_id,
                paused,
                reply,
            } => {
                let result = match self.calls.get(&call_id).filter(|c| !c.is_ending()) {
                    Some(call) => {
                        call.set_capture_paused(paused);
                        let event = if paused {
                            call_event::Event::RecordingPaused(RecordingPaused {})
                        } else {
                            call_event::Event::RecordingResumed(RecordingResumed {})
                        };
                        self.bus.publish(&call_id, event);
                        Ok(())
                    }
                    None => Err(CallNotFound::NotFound(call_id)),
                };
                let _ = reply.send(result);
            }
            Command::JoinConference { request, reply } => {
                let _ = reply.send(self.join_conference(request));
            }
            Command::LeaveConference { call_id, reply } => {
                let _ = reply.send(self.leave_conference(&call_id));
            }
            Command::SetMute {
                call_id,
                muted,
                reply,
            } => {
                let _ = reply.send(self.set_muted(&call_id, muted));
            }
            Command::SendDtmf {
                call_id,
                digits,
                duration_ms,
                reply,
            } => {
                let _ = reply.send(self.send_dtmf(&call_id, &digits, duration_ms));
            }
            Command::Transfer { call_id, to, reply } => {
                let _ = reply.send(self.transfer_by_control(&call_id, to));
            }
            Command::ListCalls { reply } => {
                let _ = reply.send(self.calls.values().map(Call::info).collect());
            }
            Command::Shutdown { reply } => {
                let grace = Duration::from_secs(self.config.server.shutdown_grace_secs);
                info!(calls = self.calls.len(), "shutting down: ending every call");
                self.shutdown = Some((reply, Instant::now() + grace));
                let ids: Vec<String> = self.calls.keys().cloned().collect();
                for id in ids {
                    self.hangup(&id, EndReason::Shutdown);
                }
                self.unregister_all();
            }
        }
    }

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::Dtmf {
                call_id,
                party,
                event,
            } => {
                if let Some(digit) = event.digit {
                    self.publish_dtmf(&call_id, digit, event.duration_ms, "rfc4733", party);
                }
            }
            Internal::LegStopped { call_id, report } => {
                // The media leg left its conference when it stopped.
                self.forget_member(&call_id, false);
                if let Some(call) = self.calls.remove(&call_id) {
                    if let Some(out) = &call.outbound {
                        self.outbound_ids.remove(&out.call_id);
                    }
                    // Our outbound INVITE transaction may linger (RFC 6026);
                    // BYEs stay tracked so shutdown waits for their answers.
                    self.client_txs.retain(|_, (id, why)| {
                        id != &call_id
                            || !matches!(
                                why,
                                ClientPurpose::OutboundInvite
                                    | ClientPurpose::TransferInvite
                                    | ClientPurpose::SessionRefresh(_)
                                    | ClientPurpose::Prack
                            )
                    });
                    call.finish(report.map(|r| *r), &self.bus);
                    metrics::gauge!("switchboard_active_calls").set(self.calls.len() as f64);
                }
            }
        }
    }

    fn respond(&mut self, tx: sip_stack::transaction::ServerTxId, response: Response) {
        if let Err(e) = self.endpoint.respond(Instant::now(), tx, response) {
            warn!(error = %e, "could not send SIP response");
        }
    }

    fn add_capabilities(&self, resp: &mut Response) {
        resp.headers.set("Allow", ALLOW);
        resp.headers.set("Supported", SUPPORTED);
        resp.headers.set("Accept", "application/sdp");
    }

    /// Once a second: global RTP counters; every few seconds, quality events.
    fn sample_metrics(&mut self) {
        if self.shutdown.is_none() {
            self.ping_trunks(Instant::now());
        }
        self.update_registration_gauges(Instant::now());
        self.ticks = self.ticks.wrapping_add(1);
        let report_quality = self.ticks.is_multiple_of(QUALITY_REPORT_SECS);
        for call in self.calls.values_mut() {
            call.sample_metrics();
            if let Some(q) = report_quality.then(|| call.quality_report()).flatten() {
                self.bus.publish(&call.id, call_event::Event::Quality(q));
            }
        }
        metrics::gauge!("switchboard_active_calls").set(self.calls.len() as f64);
        metrics::gauge!("switchboard_sip_transactions").set(self.endpoint.len() as f64);
    }

    /// Sends a request the engine originates, moving it from UDP to TCP
    /// when it is too large for UDP (RFC 3261 §18.1.1). Returns the
    /// transaction and where it actually went.
    fn send_originated(&mut self, mut request: Request, dest: Peer) -> (ClientTxId, Peer) {
        let dest = sip_stack::transport::size::promote_large_request(
            &mut request,
            dest,
            self.me.tcp_port(),
        );
        (
            self.endpoint.send_request(Instant::now(), request, dest),
            dest,
        )
    }
}

/// The listeners and TLS settings from the config. TLS without a
/// configured certificate gets a self-signed one, which `Config::validate`
/// allows on loopback only.
fn transport_config(config: &Config) -> std::io::Result<TransportConfig> {
    let sip = &config.sip;
    let tls_err = |e: tls::TlsError| std::io::Error::other(format!("SIP over TLS: {e}"));
    let tls = match config.sip_tls_addr() {
        Some(addr) => {
            let identity = if sip.tls_cert.is_empty() {
                let names = vec![config.server.listen_ip.to_string(), "localhost".to_owned()];
                warn!(
                    "no sip.tls_cert configured: using a self-signed certificate (loopback only)"
                );
                TlsIdentity::self_signed(&names)
            } else {
                TlsIdentity::from_pem_files(sip.tls_cert.as_ref(), sip.tls_key.as_ref())
            }
            .map_err(tls_err)?;
            Some((addr, identity.server_config().map_err(tls_err)?))
        }
        None => None,
    };
    let ca = (!sip.tls_ca.is_empty()).then(|| std::path::Path::new(&sip.tls_ca));
    Ok(TransportConfig {
        udp: config.sip_addr(),
        tcp: Some(config.sip_tcp_addr()),
        tls,
        tls_client: Some(tls::client_config(ca).map_err(tls_err)?),
        stream: StreamConfig {
            max_message: sip.max_message_bytes,
            idle_timeout: Duration::from_secs(sip.tcp_idle_secs),
            max_connections: sip.max_connections,
            ..StreamConfig::default()
        },
    })
}

/// An SDP o= session id (RFC 4566 §5.2 suggests an NTP-style timestamp).
fn sdp_session_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
