//! The public face of a media leg: what the control plane asks for
//! ([`LegSpec`]), what it keeps ([`LegHandle`]) and what it gets back
//! ([`LegStats`], [`LegReport`]).
//!
//! The leg itself lives on a media worker (see `worker`); the handle shares
//! only atomics with it (stats, the stop flag) and a command queue for the
//! rare changes (new remote address, bridges), so reading stats never takes
//! a lock and never disturbs the media path.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::codec::Codec;
use crate::dtmf::{event_for_digit, DtmfSink};
use crate::opus::OpusParams;
use crate::player::Prompt;
use crate::quality::{AtomicQuality, LegQuality};
use crate::srtp::SrtpKeys;
use crate::tap::{TapDirection, TapSink};
use crate::worker::{Command, WorkerLink};
use crate::MediaError;

/// Everything needed to create a leg; usually filled from SDP.
///
/// RTCP: the leg always binds RTP port + 1 for RTCP and also accepts RTCP
/// multiplexed on its RTP port (RFC 5761). It reports to the remote's
/// RTCP address: the source of the first valid RTCP packet (symmetric
/// RTCP), else `remote` with port + 1, or `remote` itself with
/// [`LegSpec::rtcp_mux`].
pub struct LegSpec {
    /// The call id, carried as `call_id` on every log line about the leg.
    pub label: String,
    pub codec: Codec,
    pub payload_type: u8,
    /// Opus encoder settings (bit rate, FEC, DTX), from the peer's fmtp;
    /// ignored by the other codecs.
    pub opus: OpusParams,
    /// Packetization time; only 20 ms (one frame per packet) is supported.
    pub ptime_ms: u32,
    /// Where to send, from SDP. Symmetric RTP: the leg latches to the source
    /// of the first valid inbound packet (logged when it differs).
    pub remote: Option<SocketAddr>,
    /// RFC 4733 events: never played as audio; relayed across bridges,
    /// and detected (key presses) when `dtmf` is set.
    pub telephone_event_pt: Option<u8>,
    /// RFC 3389 comfort noise (CN), when negotiated: received CN packets
    /// play noise at their level (not loss), and our silences are sent
    /// as CN updates (see [`crate::comfort_noise`]).
    pub comfort_noise_pt: Option<u8>,
    /// Gets every key press the far end sends as telephone-events, once,
    /// at its end (with its duration). Needs `telephone_event_pt`.
    pub dtmf: Option<Box<dyn DtmfSink>>,
    pub prompt: Prompt,
    /// Stereo WAV (left = inbound, right = outbound); parent dir created.
    /// While bridged, right is what the far end hears: the peer's inbound
    /// audio.
    pub record_to: Option<PathBuf>,
    /// Subscribers; each gets 16 kHz frames of its direction. On a bridged
    /// leg, outbound taps carry what the leg's far end hears: the peer's
    /// inbound audio.
    pub taps: Vec<(TapDirection, Box<dyn TapSink>)>,
    /// Place this leg on the same worker as that one (required for bridging:
    /// a bridge lives on one worker, no cross-thread packet path).
    pub colocate_with: Option<LegHandle>,
    /// RTCP multiplexed with RTP (`a=rtcp-mux` agreed): reports are sent
    /// from the RTP socket to the RTP remote. Off by default.
    pub rtcp_mux: bool,
    /// Mean RTCP report interval (each one randomized to 0.5–1.5 times
    /// it; RFC 3550's 5 s minimum by default). At least 100 ms.
    pub rtcp_interval: Duration,
    /// SRTP (RFC 3711) for RTP and RTCP, muxed or not: what we send is
    /// protected with `local`, what we receive must authenticate with
    /// `remote` or is dropped (counted, never latched). `None`: plain RTP.
    /// Keys can change later with [`LegHandle::set_srtp`].
    pub srtp: Option<SrtpKeys>,
}

impl LegSpec {
    /// A leg of `codec` at its static payload type and 20 ms, playing
    /// silence, with no remote, recording or taps yet.
    pub fn new(label: impl Into<String>, codec: Codec) -> LegSpec {
        LegSpec {
            label: label.into(),
            codec,
            payload_type: codec.payload_type_default(),
            opus: OpusParams::default(),
            ptime_ms: crate::frame::FRAME_MS,
            remote: None,
            telephone_event_pt: None,
            comfort_noise_pt: None,
            dtmf: None,
            prompt: Prompt::Silence,
            record_to: None,
            taps: Vec::new(),
            colocate_with: None,
            rtcp_mux: false,
            rtcp_interval: crate::rtcp::DEFAULT_INTERVAL,
            srtp: None,
        }
    }
}

impl fmt::Debug for LegSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegSpec")
            .field("label", &self.label)
            .field("codec", &self.codec)
            .field("payload_type", &self.payload_type)
            .field("opus", &self.opus)
            .field("ptime_ms", &self.ptime_ms)
            .field("remote", &self.remote)
            .field("telephone_event_pt", &self.telephone_event_pt)
            .field("comfort_noise_pt", &self.comfort_noise_pt)
            .field("dtmf", &self.dtmf.is_some())
            .field("prompt", &self.prompt)
            .field("record_to", &self.record_to)
            .field("taps", &self.taps.iter().map(|t| t.0).collect::<Vec<_>>())
            .field("colocate_with", &self.colocate_with)
            .field("rtcp_mux", &self.rtcp_mux)
            .field("rtcp_interval", &self.rtcp_interval)
            .field("srtp", &self.srtp.as_ref().map(|k| k.local.profile))
            .finish()
    }
}

/// Counters of one leg. `packets_received`/`bytes_received` count every
/// datagram on the RTP port but valid multiplexed RTCP; the ones that were
/// not usable audio are also in `packets_invalid` (or `dtmf_packets`,
/// `packets_duplicate`, `packets_discarded`). RTCP is counted in
/// [`LegQuality`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Frames the jitter buffer had to conceal.
    pub packets_lost: u64,
    /// Packets that arrived after their playout time.
    pub packets_late: u64,
    /// Not RTP, wrong payload type, from a foreign source after latching,
    /// or (on an SRTP leg) too short for SRTP or before the far end's key.
    pub packets_invalid: u64,
    pub dtmf_packets: u64,
    /// RFC 3389 comfort noise packets received (not audio, not loss).
    pub cn_packets: u64,
    /// Comfort noise packets sent in place of silent audio.
    pub cn_packets_sent: u64,
    /// Key presses detected (RFC 4733) and delivered to the DTMF sink.
    pub dtmf_events: u64,
    /// Key presses the DTMF sink could not take.
    pub dtmf_events_dropped: u64,
    /// Key presses a transcoding peer received and this leg sent on as
    /// RFC 4733 events.
    pub dtmf_events_relayed: u64,
    /// Key presses a transcoding peer received that this leg could not
    /// send on: no telephone-event negotiated here (or its queue was full).
    pub dtmf_relay_dropped: u64,
    pub tap_frames_dropped: u64,
    pub record_frames_dropped: u64,
    // Additions beyond the agreed API:
    pub packets_duplicate: u64,
    /// Dropped by the jitter buffer: oversize, unconfirmed jumps, or to cap
    /// the delay after a burst.
    pub packets_discarded: u64,
    pub send_errors: u64,
    /// Valid packets received on this leg and relayed out of its bridged
    /// peer (they are also in the peer's `packets_sent`).
    pub packets_forwarded: u64,
    /// Frames the adaptive jitter buffer skipped to shrink its delay (or to
    /// follow a far end whose clock runs fast).
    pub frames_dropped_for_delay: u64,
    /// Frames it concealed to grow its delay (or for a slow far-end clock).
    pub frames_inserted_for_delay: u64,
    /// The jitter buffer's current target delay (a gauge, not a counter).
    pub jitter_delay_ms: u64,
    /// SRTP or SRTCP packets whose authentication tag did not verify
    /// (forged, corrupted, wrong key, or plain RTP on an SRTP leg); dropped.
    pub srtp_auth_failures: u64,
    /// SRTP or SRTCP packets dropped as replays (or older than the window).
    pub srtp_replayed: u64,
}

/// The final account of a stopped leg.
#[derive(Clone, Debug)]
pub struct LegReport {
    pub stats: LegStats,
    /// The finalized recording, if one was requested and written.
    pub recording: Option<PathBuf>,
    /// 20 ms frames in the recording (gaps from dropped frames included).
    pub recorded_frames: u64,
    pub duration: Duration,
    /// Call quality at the end (RTCP statistics, MOS estimate).
    pub quality: LegQuality,
}

macro_rules! atomic_stats {
    ($($field:ident),* $(,)?) => {
        /// [`LegStats`] as relaxed atomics, published by the worker once per tick.
        #[derive(Debug, Default)]
        pub(crate) struct AtomicStats { $($field: AtomicU64,)* }
        impl AtomicStats {
            pub(crate) fn publish(&self, s: &LegStats) { $(self.$field.store(s.$field, Relaxed);)* }
            pub(crate) fn snapshot(&self) -> LegStats {
                LegStats { $($field: self.$field.load(Relaxed),)* }
            }
        }
    };
}

atomic_stats!(
    packets_received,
    packets_sent,
    bytes_received,
    bytes_sent,
    packets_lost,
    packets_late,
    frames_dropped_for_delay,
    frames_inserted_for_delay,
    jitter_delay_ms,
    packets_invalid,
    dtmf_packets,
    cn_packets,
    cn_packets_sent,
    dtmf_events,
    dtmf_events_dropped,
    dtmf_events_relayed,
    dtmf_relay_dropped,
    tap_frames_dropped,
    record_frames_dropped,
    packets_duplicate,
    packets_discarded,
    send_errors,
    packets_forwarded,
    srtp_auth_failures,
    srtp_replayed,
);

/// State shared between a leg's handles and its worker.
#[derive(Debug)]
pub(crate) struct LegShared {
    pub(crate) id: u64,
    pub(crate) label: String,
    pub(crate) local_addr: SocketAddr,
    pub(crate) codec: Codec,
    pub(crate) ptime_ms: u32,
    pub(crate) telephone_event_pt: Option<u8>,
    pub(crate) stats: AtomicStats,
    pub(crate) quality: AtomicQuality,
    /// The RTCP socket's address (RTP port + 1).
    pub(crate) rtcp_addr: SocketAddr,
    pub(crate) stop: AtomicBool,
    /// Recording and taps get silence instead of audio (card capture).
    pub(crate) capture_paused: AtomicBool,
    /// What the party says reaches no one (bridge or conference).
    pub(crate) muted: AtomicBool,
    /// Nothing is sent to the far end (it put the call on hold).
    pub(crate) send_paused: AtomicBool,
    /// Index of the worker that owns the leg now (legs move to join a
    /// bridge or conference hosted elsewhere).
    pub(crate) worker: AtomicUsize,
    /// Set once, when the leg is gone and its recording finalized.
    pub(crate) report: OnceLock<LegReport>,
}

/// The control plane's reference to a leg. Cheap to clone; `Send + Sync`.
///
/// Dropping handles does not stop the leg: call [`LegHandle::stop`].
#[derive(Clone)]
pub struct LegHandle {
    pub(crate) shared: Arc<LegShared>,
    /// Every worker of the engine; `shared.worker` says which owns the leg.
    pub(crate) links: Arc<[WorkerLink]>,
    /// Disconnects when the report is set (its sender is dropped then).
    pub(crate) done: Receiver<()>,
}

impl fmt::Debug for LegHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegHandle")
            .field("label", &self.shared.label)
            .field("local_addr", &self.shared.local_addr)
            .finish()
    }
}

impl LegHandle {
    /// The RTP address to put in our SDP.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The RTCP address (RTP port + 1), for `a=rtcp` if wanted; with
    /// rtcp-mux the RTP address serves both.
    pub fn rtcp_addr(&self) -> SocketAddr {
        self.shared.rtcp_addr
    }

    /// The label (call id) the leg was created with.
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// The codec the leg was created with.
    pub fn codec(&self) -> Codec {
        self.shared.codec
    }

    /// The leg's engine-wide id (what [`crate::Role::Whisper`] names).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The worker that owns the leg now. A command queued to it while the
    /// leg moves on is forwarded by that worker.
    pub(crate) fn link(&self) -> &WorkerLink {
        let i = self.shared.worker.load(Relaxed);
        // Indices come from the engine's own list; 0 only guards a bug.
        self.links.get(i).unwrap_or(&self.links[0])
    }

    /// Mutes (true) or unmutes the party: what it says stops reaching the
    /// other side of its bridge (packets are not relayed) or the other
    /// members of its conference; its own recording and inbound taps still
    /// get it (what was said is what was said). It still hears everything.
    /// Lock-free; takes effect at the next packet or tick.
    pub fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Relaxed);
    }

    pub fn muted(&self) -> bool {
        self.shared.muted.load(Relaxed)
    }

    /// Stops (false) or resumes sending anything to the far end: its own
    /// audio, relayed packets, key presses. For hold (the far end's SDP says
    /// sendonly or inactive, RFC 3264 §5.1): media time runs on and the
    /// first packet after resuming starts a talkspurt. Receiving, recording
    /// and RTCP go on. Lock-free; takes effect at the next packet or tick.
    pub fn set_sending(&self, sending: bool) {
        self.shared.send_paused.store(!sending, Relaxed);
    }

    pub fn sending(&self) -> bool {
        !self.shared.send_paused.load(Relaxed)
    }

    /// Sends key presses to the far end as RFC 4733 telephone-events, in
    /// place of the leg's audio while each lasts (`duration_ms` each, 60 ms
    /// apart; end packets sent three times), after any still queued.
    /// `digits`: `0-9*#A-D`, at most 64 queued. For a leg that sends its
    /// own stream (prompt, conference, transcoding bridge); a leg in a
    /// relaying bridge relays its peer's packets and drops them (logged).
    ///
    /// Errors: [`MediaError::Unsupported`] without a negotiated
    /// telephone-event type, for an unknown key, or a duration outside
    /// 40–5000 ms; [`MediaError::Overloaded`] if the worker's queue is full.
    pub fn send_dtmf(&self, digits: &str, duration_ms: u32) -> Result<(), MediaError> {
        if self.shared.telephone_event_pt.is_none() {
            return Err(MediaError::Unsupported(format!(
                "leg {} has no telephone-event payload type",
                self.shared.label
            )));
        }
        if !(40..=5_000).contains(&duration_ms) || digits.is_empty() || digits.len() > 64 {
            return Err(MediaError::Unsupported(format!(
                "DTMF of {} keys for {duration_ms} ms (1-64 keys, 40-5000 ms)",
                digits.len()
            )));
        }
        let events = digits
            .chars()
            .map(|c| {
                event_for_digit(c)
                    .ok_or_else(|| MediaError::Unsupported(format!("{c:?} is not a DTMF key")))
            })
            .collect::<Result<Vec<u8>, MediaError>>()?;
        let cmd = Command::SendDtmf {
            id: self.shared.id,
            events,
            duration_ms,
        };
        self.link()
            .try_send(cmd)
            .map_err(|_| MediaError::Overloaded)
    }

    /// Replaces the leg's SRTP keys (an outbound leg learns the far end's
    /// key from the answer; a re-INVITE may re-key), or turns SRTP off
    /// with `None` (an optional offer answered without crypto). A context
    /// whose key is unchanged keeps its state. Waits at most 100 ms for
    /// queue space, like [`LegHandle::set_remote`]; queue it before
    /// `set_remote` so the first packets after the answer are judged with
    /// the new keys.
    pub fn set_srtp(&self, keys: Option<SrtpKeys>) {
        let cmd = Command::SetSrtp {
            id: self.shared.id,
            keys: keys.map(Box::new),
        };
        if self
            .link()
            .send_timeout(cmd, Duration::from_millis(100))
            .is_err()
        {
            tracing::warn!(call_id = %self.shared.label, "media worker did not take set_srtp");
        }
    }

    /// A snapshot of the counters, at most one tick old.
    pub fn stats(&self) -> LegStats {
        self.shared.stats.snapshot()
    }

    /// Call quality from RTCP: loss, jitter and RTT both ways, the MOS
    /// estimate. A lock-free snapshot, at most one tick old.
    pub fn quality(&self) -> LegQuality {
        self.shared.quality.snapshot()
    }

    /// Sends to `remote` from now on (e.g. after a re-INVITE) and
    /// re-arms latching (RTP and RTCP): the source of the next valid packet
    /// becomes the remote, as for a new leg. Waits at most 100 ms for queue
    /// space; a worker that busy has bigger problems, which are logged.
    pub fn set_remote(&self, remote: SocketAddr) {
        let cmd = Command::SetRemote {
            id: self.shared.id,
            remote,
        };
        if self
            .link()
            .send_timeout(cmd, Duration::from_millis(100))
            .is_err()
        {
            tracing::warn!(call_id = %self.shared.label, %remote, "media worker did not take set_remote");
        }
    }

    /// Pauses or resumes capture: while paused, the recording and every tap
    /// get silence in place of both parties' audio, so the file keeps one
    /// timeline (no split) and nothing said in the pause (a card number)
    /// reaches storage or a transcript. The call itself goes on unaffected.
    /// Takes effect at the next tick; lock-free.
    pub fn set_capture_paused(&self, paused: bool) {
        self.shared.capture_paused.store(paused, Relaxed);
    }

    pub fn capture_paused(&self) -> bool {
        self.shared.capture_paused.load(Relaxed)
    }

    /// Asks the worker to stop the leg at its next tick. Every receipt, from
    /// the first call or a later one, resolves to the same report once the
    /// recording (if any) is finalized. A bridged leg stops relaying into
    /// its socket at once; its peer goes back to its prompt at that tick.
    pub fn stop(&self) -> StopReceipt {
        self.shared.stop.store(true, Relaxed);
        StopReceipt {
            shared: Arc::clone(&self.shared),
            done: self.done.clone(),
        }
    }
}

/// Resolves when a stopped leg is fully gone.
#[derive(Debug)]
pub struct StopReceipt {
    shared: Arc<LegShared>,
    done: Receiver<()>,
}

impl StopReceipt {
    /// Blocks up to `timeout` for the final report; `None` on timeout (or if
    /// the engine went away without reporting). Call it from a blocking
    /// context (`tokio::task::spawn_blocking`).
    pub fn wait(self, timeout: Duration) -> Option<LegReport> {
        match self.done.recv_timeout(timeout) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => self.shared.report.get().cloned(),
            Err(RecvTimeoutError::Timeout) => None,
        }
    }

    /// The report if the leg is already gone, without waiting.
    pub fn try_report(&self) -> Option<LegReport> {
        self.shared.report.get().cloned()
    }
}
