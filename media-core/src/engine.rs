//! The media engine: starts the workers and the recorder thread, builds legs
//! on the caller's thread, and hands each to the least loaded worker.
//!
//! Everything slow or fallible about a leg (binding its port, loading its
//! prompt file, creating its recording, building resamplers) happens here in
//! `create_leg`, on the control side, so a worker only ever receives a leg
//! that is ready to tick.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::TrySendError;

use crate::codec::CodecState;
use crate::dtmf::DtmfReceiver;
use crate::frame::{samples_per_frame, FRAME_MS};
use crate::jitter::{JitterBuffer, JitterConfig};
use crate::leg::{AtomicStats, LegHandle, LegShared, LegSpec, LegStats};
use crate::mix_edge::{MixEdge, MIX_RATES};
use crate::mixer::Role;
use crate::player::PromptPlayer;
use crate::plc::Concealer;
use crate::quality::{AtomicQuality, EModel};
use crate::recorder::{Recorder, FLUSH_INTERVAL};
use crate::resample::Resampler;
use crate::rtcp::{RtcpConfig, RtcpSession};
use crate::rtp::{random_u64, RtpWriter};
use crate::tap::{TapDirection, TapSet, TapSink};
use crate::worker::ComfortNoise;
use crate::worker::{
    spawn_worker, Command, EngineCounters, Leg, WorkerHandle, WorkerLink, MAX_PACKETS_PER_TICK,
    MAX_RTCP_PER_TICK,
};
use crate::MediaError;

/// Commands queued per worker (leg additions, remote changes, bridges).
const WORKER_QUEUE: usize = 1_024;
/// Recorder messages queued engine-wide: about 4 s of audio for 50 legs at
/// 8 kHz, 5.3 MB of preallocated slots.
const RECORDER_QUEUE: usize = 4_096;

/// Shortest accepted mean RTCP interval.
pub const MIN_RTCP_INTERVAL: Duration = Duration::from_millis(100);

/// Largest accepted jitter target: beyond a second a call is unusable.
pub const MAX_JITTER_DELAY_MS: u32 = 1_000;

/// Engine configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Address RTP sockets bind to.
    pub rtp_ip: IpAddr,
    /// RTP port range (even ports used; port + 1, which may be one past
    /// the range, is bound for RTCP).
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Jitter buffer delay to start a call with (adaptive), or the fixed
    /// delay (`jitter_adaptive` off).
    pub jitter_delay_ms: u32,
    /// Whether the jitter buffer adapts its delay to the measured jitter
    /// and the sender's clock drift (see [`crate::jitter`]).
    pub jitter_adaptive: bool,
    /// Bounds of the adaptive delay.
    pub jitter_min_delay_ms: u32,
    pub jitter_max_delay_ms: u32,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            workers: 0,
            rtp_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rtp_port_min: 20_000,
            rtp_port_max: 30_000,
            jitter_delay_ms: 40,
            jitter_adaptive: true,
            jitter_min_delay_ms: 20,
            jitter_max_delay_ms: 200,
        }
    }
}

/// The running media plane of one process. `Send + Sync`: share it in an
/// `Arc`. Dropping it shuts it down like [`MediaEngine::shutdown`].
pub struct MediaEngine {
    config: MediaConfig,
    workers: Vec<WorkerHandle>,
    recorder: Option<Recorder>,
    counters: Arc<EngineCounters>,
    next_port: AtomicU32,
    next_leg_id: AtomicU64,
    /// Every worker's link, shared with each leg handle (which reads the
    /// index of its current worker from the leg).
    links: Arc<[WorkerLink]>,
    next_conference_id: AtomicU64,
}

/// The control plane's reference to a conference hosted by one media
/// worker. Legs that join it move to that worker.
#[derive(Clone, Debug)]
pub struct ConferenceHandle {
    id: u64,
    label: String,
    worker: usize,
    sample_rate: u32,
}

impl ConferenceHandle {
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The lowest rate it mixes at (it was created at); it mixes at its
    /// highest member's rate when that is higher.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("config", &self.config)
            .field("workers", &self.workers.len())
            .field("active_legs", &self.active_legs())
            .finish()
    }
}

impl MediaEngine {
    /// Spawns the worker threads (`media-0`, `media-1`, …) and the recorder
    /// writer thread (`media-recorder`).
    pub fn start(config: MediaConfig) -> Result<MediaEngine, MediaError> {
        for (key, ms) in [
            ("jitter_delay_ms", config.jitter_delay_ms),
            ("jitter_max_delay_ms", config.jitter_max_delay_ms),
        ] {
            if ms > MAX_JITTER_DELAY_MS {
                return Err(MediaError::InvalidConfig(format!(
                    "{key} {ms} above {MAX_JITTER_DELAY_MS}"
                )));
            }
        }
        if config.jitter_min_delay_ms > config.jitter_max_delay_ms {
            return Err(MediaError::InvalidConfig(format!(
                "jitter_min_delay_ms {} above jitter_max_delay_ms {}",
                config.jitter_min_delay_ms, config.jitter_max_delay_ms
            )));
        }
        if even_ports(&config).is_none() {
            return Err(MediaError::InvalidConfig(format!(
                "RTP port range {}-{} has no even port",
                config.rtp_port_min, config.rtp_port_max
            )));
        }
        let workers = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let counters = Arc::new(EngineCounters::default());
        let mut engine = MediaEngine {
            config,
            workers: Vec::with_capacity(workers),
            recorder: Some(Recorder::start(RECORDER_QUEUE, FLUSH_INTERVAL)?),
            counters,
            next_port: AtomicU32::new(0),
            next_leg_id: AtomicU64::new(1),
            links: Arc::new([]),
            next_conference_id: AtomicU64::new(1),
        };
        for index in 0..workers {
            let worker = spawn_worker(index, WORKER_QUEUE, Arc::clone(&engine.counters))?;
            engine.workers.push(worker);
        }
        engine.links = engine.workers.iter().map(|w| w.link.clone()).collect();
        tracing::info!(workers, ip = %engine.config.rtp_ip, "media engine started");
        Ok(engine)
    }

    /// Builds a leg (binds its RTP port, loads its prompt, opens its
    /// recording) and hands it to the least loaded worker, or to the worker
    /// of [`LegSpec::colocate_with`]. Returns at once; the leg starts sending
    /// at the worker's next tick.
    pub fn create_leg(&self, spec: LegSpec) -> Result<LegHandle, MediaError> {
        let recorder = self.recorder.as_ref().ok_or(MediaError::ShutDown)?;
        validate(&spec)?;
        let target = spec
            .colocate_with
            .as_ref()
            .map(|h| self.own(h).map(|_| h.link().index))
            .transpose()?;
        let rate = spec.codec.sample_rate();
        let frame_samples = samples_per_frame(rate);
        let player = PromptPlayer::new(&spec.prompt, rate)?;
        let coder = CodecState::new(spec.codec, spec.opus)?;
        let (mut inbound, mut outbound) = (Vec::new(), Vec::new());
        for (direction, sink) in spec.taps {
            match direction {
                TapDirection::Inbound => inbound.push(sink),
                TapDirection::Outbound => outbound.push(sink),
            }
        }
        let taps = |sinks: Vec<Box<dyn TapSink>>| -> Result<Option<TapSet>, MediaError> {
            if sinks.is_empty() {
                Ok(None)
            } else {
                TapSet::new(rate, sinks).map(Some)
            }
        };
        let (inbound_taps, outbound_taps) = (taps(inbound)?, taps(outbound)?);
        let (socket, rtcp_socket) = self.bind_rtp()?;
        let addr_of = |s: &UdpSocket| {
            s.local_addr().map_err(|source| MediaError::Socket {
                ip: self.config.rtp_ip,
                port: 0,
                source,
            })
        };
        let (local_addr, rtcp_addr) = (addr_of(&socket)?, addr_of(&rtcp_socket)?);
        let id = self.next_leg_id.fetch_add(1, Relaxed);
        let span = tracing::info_span!("leg", call_id = %spec.label, local = %local_addr);
        let recording = spec
            .record_to
            .as_deref()
            .map(|path| recorder.open(id, path, rate))
            .transpose()?;
        let jitter = JitterBuffer::new(JitterConfig {
            adaptive: self.config.jitter_adaptive,
            target_delay_ms: self.config.jitter_delay_ms,
            min_delay_ms: self.config.jitter_min_delay_ms,
            max_delay_ms: self.config.jitter_max_delay_ms,
            ptime_ms: FRAME_MS,
            clock_rate: spec.codec.clock_rate(),
            max_payload: spec.codec.encoded_len(frame_samples),
            ..JitterConfig::default()
        });
        let shared = Arc::new(LegShared {
            id,
            label: spec.label,
            local_addr,
            codec: spec.codec,
            ptime_ms: spec.ptime_ms,
            telephone_event_pt: spec.telephone_event_pt,
            stats: AtomicStats::default(),
            quality: AtomicQuality::new(),
            rtcp_addr,
            stop: Default::default(),
            capture_paused: Default::default(),
            muted: Default::default(),
            send_paused: Default::default(),
            worker: Default::default(),
            report: Default::default(),
        });
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let writer = RtpWriter::new(spec.payload_type, spec.codec.timestamp_step(FRAME_MS));
        let started = Instant::now();
        let rtcp = RtcpSession::new(
            RtcpConfig {
                ssrc: writer.ssrc(),
                // RFC 7022: a random, per-session CNAME.
                cname: format!("sb-{:016x}", random_u64()),
                clock_rate: spec.codec.clock_rate(),
                interval: spec.rtcp_interval,
                seed: random_u64(),
            },
            started,
            SystemTime::now(),
        );
        let leg = Leg {
            shared: Arc::clone(&shared),
            span,
            socket: mio::net::UdpSocket::from_std(socket),
            codec: spec.codec,
            coder,
            payload_type: spec.payload_type,
            telephone_event_pt: spec.telephone_event_pt,
            comfort_noise: spec.comfort_noise_pt.map(ComfortNoise::new),
            frame_samples,
            remote: spec.remote,
            latched: false,
            jitter,
            writer,
            player,
            plc: Concealer::new(frame_samples),
            inbound_taps,
            outbound_taps,
            recording,
            stats: LegStats::default(),
            started,
            done: Some(done_tx),
            registered: false,
            rx_budget: MAX_PACKETS_PER_TICK,
            rx_pending: false,
            peer: None,
            transcode: None,
            conference: None,
            decode: true,
            rtcp,
            rtcp_socket: mio::net::UdpSocket::from_std(rtcp_socket),
            rtcp_mux: spec.rtcp_mux,
            rtcp_remote: None,
            rtcp_registered: false,
            rtcp_budget: MAX_RTCP_PER_TICK,
            rtcp_pending: false,
            dtmf_out: Default::default(),
            dtmf_hold_until: None,
            // Detected whenever negotiated: a transcoding peer relays presses
            // even when nobody subscribed to them here.
            dtmf: spec
                .telephone_event_pt
                .map(|_| (DtmfReceiver::new(spec.codec.clock_rate()), spec.dtmf)),
            emodel: EModel::for_codec(spec.codec),
            srtp: spec
                .srtp
                .map(|keys| Box::new(crate::srtp::LegCrypto::new(keys))),
        };
        self.dispatch(leg, target)?;
        self.counters.active_legs.fetch_add(1, Relaxed);
        Ok(LegHandle {
            shared,
            links: Arc::clone(&self.links),
            done: done_rx,
        })
    }

    /// Connects two legs on the same worker: from now on every valid RTP
    /// packet (the leg's payload type or its telephone-event PT) received on
    /// `a` is sent at once — in the same wakeup, not at the next tick — out
    /// of `b`'s socket to `b`'s remote (latched or SDP), and vice versa.
    ///
    /// Packets are relayed unchanged (same SSRC, sequence, timestamp,
    /// marker, payload), so DTMF events and anything carried in payloads
    /// survive. The one exception: if the two sides negotiated different
    /// payload type numbers for the codec or for telephone-event, the number
    /// is rewritten to the receiving side's; telephone events are not relayed
    /// to a side that did not negotiate them (they stay counted in
    /// `dtmf_packets`). While bridged a leg does not send its prompt (its own
    /// stream's media time runs on; it resumes with the marker bit set).
    ///
    /// Recording and taps keep their meaning: a bridged leg's recording has
    /// its inbound audio left and what its far end hears — the peer's
    /// inbound audio — right; outbound taps carry the peer's inbound audio.
    /// Only legs whose decoded audio someone needs (a recording or tap on
    /// either side) go through jitter buffer and codec; otherwise packets are
    /// only relayed (and the jitter statistics `packets_lost`, `packets_late`,
    /// … stand still).
    ///
    /// A leg is in at most one bridge: bridging it again first unbridges it
    /// from its old peer, which goes back to its prompt. Stopping either leg
    /// unbridges the other.
    ///
    /// Legs of **different codecs** (an Opus caller and a PCMU trunk) are
    /// bridged by transcoding instead: nothing is relayed; each tick both
    /// sides decode their inbound frame (jitter buffer, concealment), it is
    /// resampled to the other side's rate (once, at the edge) and sent
    /// there in that side's codec on its own stream, like a prompt.
    /// Telephone-events cannot be relayed as packets then; each press one
    /// side receives is regenerated on the other as RFC 4733 events at
    /// that side's payload type and clock ([`crate::dtmf_relay`]), and its
    /// audio is not passed on while the key is down. Both sides still
    /// report their presses, and [`LegHandle::send_dtmf`] works on both. A
    /// muted party is heard as silence.
    ///
    /// A bridge lives on one worker: if the legs are on different workers,
    /// `b` moves to `a`'s first (create the second with
    /// [`LegSpec::colocate_with`] = the first to spare that).
    ///
    /// Errors: [`MediaError::Unsupported`] if the legs use different
    /// ptimes, are the same leg, or
    /// belong to another engine; [`MediaError::LegStopped`]
    /// if either was stopped; [`MediaError::Overloaded`] if the worker's
    /// queue is full. Returns once the command is queued (never blocks).
    pub fn bridge(&self, a: &LegHandle, b: &LegHandle) -> Result<(), MediaError> {
        self.own(a)?;
        self.own(b)?;
        let (sa, sb) = (&a.shared, &b.shared);
        if Arc::ptr_eq(sa, sb) {
            return Err(MediaError::Unsupported(format!(
                "bridging leg {} to itself",
                sa.label
            )));
        }
        if sa.ptime_ms != sb.ptime_ms {
            return Err(MediaError::Unsupported(format!(
                "bridging {} ({} ms) to {} ({} ms): different ptimes",
                sa.label, sa.ptime_ms, sb.label, sb.ptime_ms
            )));
        }
        // Different codecs: decode, resample, encode, both ways. The
        // resamplers are made here so the worker allocates nothing.
        let transcode = if sa.codec == sb.codec {
            None
        } else {
            let (ra, rb) = (sa.codec.sample_rate(), sb.codec.sample_rate());
            Some(Box::new((Resampler::new(rb, ra)?, Resampler::new(ra, rb)?)))
        };
        for s in [sa, sb] {
            if s.stop.load(Relaxed) {
                return Err(MediaError::LegStopped(s.label.clone()));
            }
        }
        let bridge = Command::Bridge {
            a: sa.id,
            b: sb.id,
            transcode,
        };
        self.bring(b, a.link(), bridge)
    }

    /// Queues `then` on `to`, after moving `leg` there if it lives elsewhere.
    fn bring(&self, leg: &LegHandle, to: &WorkerLink, then: Command) -> Result<(), MediaError> {
        if leg.link().index == to.index {
            return queue(to, then);
        }
        let cmd = Command::MoveTo {
            id: leg.shared.id,
            to: to.clone(),
            then: vec![then],
        };
        queue(leg.link(), cmd)
    }

    /// Starts a conference on the least loaded worker, mixing at
    /// `sample_rate` or at its highest member's rate if that is higher
    /// (8, 16 or 48 kHz; see [`crate::mix_edge`]): pass 8000 to let the
    /// members decide. It lives until [`MediaEngine::end_conference`] (or
    /// shutdown), empty or not.
    pub fn create_conference(
        &self,
        label: impl Into<String>,
        sample_rate: u32,
    ) -> Result<ConferenceHandle, MediaError> {
        let label = label.into();
        if !MIX_RATES.contains(&sample_rate) {
            return Err(MediaError::Unsupported(format!(
                "conference {label} at {sample_rate} Hz"
            )));
        }
        let worker = (0..self.workers.len())
            .min_by_key(|&i| self.workers[i].load.load(Relaxed))
            .ok_or(MediaError::ShutDown)?;
        let id = self.next_conference_id.fetch_add(1, Relaxed);
        let cmd = Command::ConferenceCreate {
            id,
            label: label.clone(),
            floor_rate: sample_rate,
        };
        queue(&self.workers[worker].link, cmd)?;
        Ok(ConferenceHandle {
            id,
            label,
            worker,
            sample_rate,
        })
    }

    /// Puts `leg` in the conference with `role` (see [`crate::mixer`] for
    /// who hears whom), or changes its role if it is already a member. The
    /// leg leaves any bridge (its peer goes back to its prompt) or other
    /// conference, and moves to the conference's worker if it lives
    /// elsewhere. While a member, the leg sends its minus-one mix instead of
    /// its prompt; its recording's right channel and outbound taps carry
    /// that mix, at the leg's own rate. Legs of any rate mix together: the
    /// conference mixes at the highest rate present, and each member is
    /// resampled into the mix and back once, at its edge (the resamplers
    /// are made here, so the worker allocates nothing).
    ///
    /// Errors: [`MediaError::Unsupported`] if the leg decodes at a rate
    /// the mixer does not take (only 8, 16 and 48 kHz exist);
    /// [`MediaError::LegStopped`]; [`MediaError::Overloaded`].
    pub fn conference_join(
        &self,
        conference: &ConferenceHandle,
        leg: &LegHandle,
        role: Role,
    ) -> Result<(), MediaError> {
        self.own(leg)?;
        if leg.shared.stop.load(Relaxed) {
            return Err(MediaError::LegStopped(leg.shared.label.clone()));
        }
        let edge = Box::new(MixEdge::new(leg.shared.codec.sample_rate())?);
        let to = self
            .workers
            .get(conference.worker)
            .map(|w| &w.link)
            .ok_or(MediaError::ShutDown)?;
        let join = Command::ConferenceJoin {
            conference: conference.id,
            leg: leg.shared.id,
            role,
            edge,
        };
        self.bring(leg, to, join)
    }

    /// Takes `leg` out of its conference, back to its prompt. Idempotent.
    pub fn conference_leave(&self, leg: &LegHandle) -> Result<(), MediaError> {
        self.own(leg)?;
        if leg.shared.stop.load(Relaxed) {
            return Ok(());
        }
        queue(leg.link(), Command::ConferenceLeave { leg: leg.shared.id })
    }

    /// Ends a conference: its members go back to their prompts.
    pub fn end_conference(&self, conference: &ConferenceHandle) -> Result<(), MediaError> {
        let link = self
            .workers
            .get(conference.worker)
            .map(|w| &w.link)
            .ok_or(MediaError::ShutDown)?;
        queue(link, Command::ConferenceEnd { id: conference.id })
    }

    /// Undoes [`MediaEngine::bridge`]: both legs go back to playing their
    /// prompts. Idempotent: a leg that is not bridged, or stopped, is left
    /// as it is. Returns once the command is queued (never blocks).
    pub fn unbridge(&self, a: &LegHandle) -> Result<(), MediaError> {
        self.own(a)?;
        if a.shared.stop.load(Relaxed) {
            return Ok(());
        }
        queue(a.link(), Command::Unbridge { id: a.shared.id })
    }

    /// Checks that `leg` was created by this engine.
    fn own(&self, leg: &LegHandle) -> Result<(), MediaError> {
        match Arc::ptr_eq(&self.links, &leg.links) {
            true => Ok(()),
            false => Err(MediaError::Unsupported(format!(
                "leg {} belongs to another media engine",
                leg.shared.label
            ))),
        }
    }

    /// Legs created and not yet stopped.
    pub fn active_legs(&self) -> usize {
        self.counters.active_legs.load(Relaxed)
    }

    /// Ticks on which a worker started late (it was still busy with the
    /// previous one): the first sign that a node carries too many legs.
    pub fn worker_overruns(&self) -> u64 {
        self.counters.overruns.load(Relaxed)
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Stops workers after stopping (and finalizing) all legs; joins threads.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        for w in &self.workers {
            w.shutdown();
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        self.workers.clear();
        // Workers are gone, so are their recorder senders: the writer
        // finalizes what is left and exits.
        if let Some(r) = self.recorder.take() {
            r.shutdown();
            tracing::info!("media engine stopped");
        }
    }

    /// Offers the leg to workers, least loaded first (or only to `target`),
    /// without blocking.
    fn dispatch(&self, leg: Leg, target: Option<usize>) -> Result<(), MediaError> {
        let order: Vec<usize> = match target {
            Some(i) => vec![i],
            None => {
                let mut all: Vec<usize> = (0..self.workers.len()).collect();
                all.sort_by_key(|&i| self.workers[i].load.load(Relaxed));
                all
            }
        };
        let mut cmd = Command::Add(Box::new(leg));
        for i in order {
            let Some(w) = self.workers.get(i) else {
                continue;
            };
            w.load.fetch_add(1, Relaxed);
            leg_worker(&cmd, i);
            match w.link.try_send(cmd) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) | Err(TrySendError::Disconnected(back)) => {
                    w.load.fetch_sub(1, Relaxed);
                    cmd = back;
                }
            }
        }
        if let Command::Add(leg) = cmd {
            abandon(*leg);
        }
        Err(MediaError::Overloaded)
    }

    /// Binds the next free even port of the range and the odd one above it
    /// (RTP, RTCP), round robin from where the last search ended so a
    /// just-freed port is not reused at once. An even port whose odd
    /// neighbour is taken is passed over.
    fn bind_rtp(&self) -> Result<(UdpSocket, UdpSocket), MediaError> {
        let ip = self.config.rtp_ip;
        let (first, count) = even_ports(&self.config).ok_or(MediaError::NoFreePort {
            ip,
            min: self.config.rtp_port_min,
            max: self.config.rtp_port_max,
        })?;
        for _ in 0..count {
            let offset = self.next_port.fetch_add(1, Relaxed) % count;
            let port = (first as u32 + 2 * offset) as u16;
            match UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(socket) => {
                    let Some(rtcp) = port
                        .checked_add(1)
                        .and_then(|p| UdpSocket::bind(SocketAddr::new(ip, p)).ok())
                    else {
                        continue;
                    };
                    for (s, port) in [(&socket, port), (&rtcp, port + 1)] {
                        s.set_nonblocking(true)
                            .map_err(|source| MediaError::Socket { ip, port, source })?;
                    }
                    return Ok((socket, rtcp));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(source) => return Err(MediaError::Socket { ip, port, source }),
            }
        }
        Err(MediaError::NoFreePort {
            ip,
            min: self.config.rtp_port_min,
            max: self.config.rtp_port_max,
        })
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Records in an `Add` command's leg which worker it is offered to.
fn leg_worker(cmd: &Command, index: usize) {
    if let Command::Add(leg) = cmd {
        leg.shared.worker.store(index, Relaxed);
    }
}

/// Queues a command without blocking.
fn queue(link: &WorkerLink, cmd: Command) -> Result<(), MediaError> {
    link.try_send(cmd).map_err(|e| match e {
        TrySendError::Full(_) => MediaError::Overloaded,
        TrySendError::Disconnected(_) => MediaError::ShutDown,
    })
}

/// First even port and number of even ports in the configured range.
fn even_ports(c: &MediaConfig) -> Option<(u16, u32)> {
    let first = c.rtp_port_min.checked_add(c.rtp_port_min % 2)?;
    if first > c.rtp_port_max {
        return None;
    }
    Some((first, (c.rtp_port_max - first) as u32 / 2 + 1))
}

fn validate(spec: &LegSpec) -> Result<(), MediaError> {
    if spec.ptime_ms != FRAME_MS {
        return Err(MediaError::Unsupported(format!(
            "ptime {} ms (only {FRAME_MS} ms)",
            spec.ptime_ms
        )));
    }
    if spec.payload_type > 127 || spec.telephone_event_pt.is_some_and(|pt| pt > 127) {
        return Err(MediaError::Unsupported(format!(
            "payload type {} / telephone-event {:?} beyond 7 bits",
            spec.payload_type, spec.telephone_event_pt
        )));
    }
    if spec.rtcp_interval < MIN_RTCP_INTERVAL {
        return Err(MediaError::Unsupported(format!(
            "RTCP interval {:?} below {MIN_RTCP_INTERVAL:?}",
            spec.rtcp_interval
        )));
    }
    let cn = spec.comfort_noise_pt;
    if cn.is_some_and(|pt| {
        pt > 127 || pt == spec.payload_type || Some(pt) == spec.telephone_event_pt
    }) {
        return Err(MediaError::Unsupported(format!(
            "comfort noise payload type {cn:?}: beyond 7 bits or taken"
        )));
    }
    if spec.telephone_event_pt == Some(spec.payload_type) {
        return Err(MediaError::Unsupported(format!(
            "telephone-event and audio share payload type {}",
            spec.payload_type
        )));
    }
    Ok(())
}

/// A leg no worker would take: close its recording so the file is
/// finalized rather than left open until shutdown.
fn abandon(mut leg: Leg) {
    if let Some(rec) = leg.recording.take() {
        let _ = rec.close(Box::new(|_| {}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_engine_are_send_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MediaEngine>();
        send_sync::<LegHandle>();
        send_sync::<crate::StopReceipt>();
    }

    #[test]
    fn port_range_and_config_validation() {
        let c = |min, max| MediaConfig {
            rtp_port_min: min,
            rtp_port_max: max,
            ..MediaConfig::default()
        };
        assert_eq!(even_ports(&c(20_000, 30_000)), Some((20_000, 5_001)));
        assert_eq!(even_ports(&c(20_001, 20_003)), Some((20_002, 1)));
        assert_eq!(even_ports(&c(20_001, 20_001)), None);
        assert_eq!(even_ports(&c(65_535, 65_535)), None);
        assert!(MediaEngine::start(c(30_000, 20_000)).is_err());
        let bad = MediaConfig {
            jitter_delay_ms: 5_000,
            ..MediaConfig::default()
        };
        assert!(MediaEngine::start(bad).is_err());
        let inverted = MediaConfig {
            jitter_min_delay_ms: 300,
            jitter_max_delay_ms: 100,
            ..MediaConfig::default()
        };
        assert!(MediaEngine::start(inverted).is_err());
    }
}
