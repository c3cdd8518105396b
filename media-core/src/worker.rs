//! Media worker threads and the legs they own.
//!
//! A worker owns its legs for their whole life: it alone touches their
//! sockets, jitter buffers and codecs, so the media path needs no locks.
//!
//! A worker sleeps in a [`mio::Poll`] on all its legs' sockets (edge
//! triggered) plus a [`mio::Waker`] the control side rings after queueing a
//! command. It wakes for whichever comes first:
//!
//! - **a readable socket**: the leg is drained until `WouldBlock` (at most
//!   [`MAX_PACKETS_PER_TICK`] datagrams per leg per tick period). Each
//!   datagram is classified; valid audio goes to the jitter buffer (only if
//!   someone needs the decoded audio, for a bridged leg) and, if the leg is
//!   bridged, the packet leaves through the peer's socket right away, in
//!   the same wakeup;
//! - **a command** (new leg, new remote, bridge, unbridge, conference
//!   create/join/leave/end, move a leg to another worker, shutdown);
//! - **the tick deadline** (absolute, every 20 ms, so no drift): each leg
//!   plays one frame out of its jitter buffer, produces and sends one frame
//!   of prompt audio (unless bridged), and feeds taps and the recorder.
//!   Bridged pairs tick together so each side's recording and outbound taps
//!   get the other side's frame of the same tick. A conference ticks its
//!   members together: every inbound frame into the mixer, then each member
//!   sends its own minus-one mix.
//!
//! A leg moves between workers (to join a bridge or conference hosted
//! elsewhere) as a whole: detached here, queued there as a new leg, then
//! the command it moved for. Its handle keeps sending commands here until
//! the move is queued; this worker remembers recent moves and forwards
//! them, so nothing sent to a moving leg is lost or reordered.
//!
//! All per-tick and per-packet buffers are the worker's [`Scratch`],
//! allocated once, so neither a tick nor a packet allocates.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{
    Receiver, SendError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::codec::{Codec, CodecState};
use crate::comfort_noise::{write_level, CnDecision, CnSender, NoiseGenerator};
use crate::dtmf::{DtmfPhase, DtmfReceiver, DtmfSender, DtmfSink};
use crate::frame::{frame_duration, samples_per_frame, FRAME_MS, MAX_FRAME_SAMPLES};
use crate::jitter::{JitterBuffer, Playout};
use crate::leg::{LegReport, LegShared, LegStats};
use crate::mix_edge::{mix_rate, MixEdge};
use crate::mixer::{Mixer, Role};
use crate::player::PromptPlayer;
use crate::plc::Concealer;
use crate::quality::EModel;
use crate::recorder::{Finished, LegRecording, OnFinished};
use crate::relay::{PacketKind, PayloadTypes};
use crate::resample::Resampler;
use crate::rtcp::{is_rtcp, RtcpSession};
use crate::rtp::{RtpPacket, RtpWriter, RTP_HEADER_LEN};
use crate::srtp::{LegCrypto, SrtpError, SrtpKeys, SRTP_MAX_OVERHEAD};
use crate::tap::TapSet;
use crate::MediaError;

/// Datagrams read per leg per tick period; a flood beyond this waits in (or
/// is dropped by) the kernel until the next tick instead of starving the
/// worker's other legs.
pub(crate) const MAX_PACKETS_PER_TICK: usize = 32;

/// RTCP datagrams read per leg per tick period (reports come every few
/// seconds; more is a flood).
pub(crate) const MAX_RTCP_PER_TICK: usize = 8;

/// Largest datagram read; longer ones are truncated and fail to parse.
const RECV_BUF: usize = 1_500;

/// The receive buffer: a datagram plus room to re-protect it in place when
/// a bridge relays it to an SRTP leg (the tag is appended).
type RecvBuf = [u8; RECV_BUF + SRTP_MAX_OVERHEAD];

/// Room for a report we send: SR with one block, SDES with a CNAME of up
/// to 255 bytes, BYE.
const RTCP_BUF: usize = 512;

/// What a paused capture records and taps.
static SILENCE: [i16; MAX_FRAME_SAMPLES] = [0; MAX_FRAME_SAMPLES];

/// If a worker falls further behind than this many ticks it re-anchors its
/// schedule instead of bursting to catch up.
const MAX_CATCH_UP_TICKS: u32 = 5;

/// How long a shutting-down worker keeps retrying recorder close requests.
const SHUTDOWN_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Readiness events taken per poll; more stay queued for the next one.
const EVENTS_CAPACITY: usize = 256;

/// The waker's token; legs use `2 × slot` (RTP) and `2 × slot + 1` (RTCP).
const WAKER: Token = Token(usize::MAX);

fn rtp_token(slot: usize) -> Token {
    Token(slot * 2)
}

fn rtcp_token(slot: usize) -> Token {
    Token(slot * 2 + 1)
}

pub(crate) enum Command {
    Add(Box<Leg>),
    SetRemote {
        id: u64,
        remote: SocketAddr,
    },
    /// New SRTP keys, or plain RTP from now on (`None`).
    SetSrtp {
        id: u64,
        keys: Option<Box<SrtpKeys>>,
    },
    Bridge {
        a: u64,
        b: u64,
        /// For legs of different codecs: the resamplers into `a`'s rate
        /// (from `b`'s) and into `b`'s (from `a`'s), made by the engine so
        /// the worker allocates nothing. `None`: a relaying bridge.
        transcode: Option<Box<(Resampler, Resampler)>>,
    },
    Unbridge {
        id: u64,
    },
    /// Queues key presses (RFC 4733 event codes) to send.
    SendDtmf {
        id: u64,
        events: Vec<u8>,
        duration_ms: u32,
    },
    /// Hands the leg to another worker (out of any bridge or conference),
    /// followed there by `then`, in order.
    MoveTo {
        id: u64,
        to: WorkerLink,
        then: Vec<Command>,
    },
    ConferenceCreate {
        id: u64,
        label: String,
        /// The lowest rate it mixes at (it mixes at its highest member's).
        floor_rate: u32,
    },
    /// Joins the leg (out of any bridge or other conference), or changes
    /// its role if it is already in.
    ConferenceJoin {
        conference: u64,
        leg: u64,
        role: Role,
        /// The leg's rate conversion, made by the engine so the worker
        /// allocates no resampler (unused on a role change).
        edge: Box<MixEdge>,
    },
    ConferenceLeave {
        leg: u64,
    },
    /// Every member goes back to its prompt; the conference is gone.
    ConferenceEnd {
        id: u64,
    },
    Shutdown,
}

impl Command {
    /// The leg a command is about, for forwarding it after a move.
    fn leg_id(&self) -> Option<u64> {
        match self {
            Command::SetRemote { id, .. }
            | Command::SetSrtp { id, .. }
            | Command::Unbridge { id }
            | Command::SendDtmf { id, .. }
            | Command::MoveTo { id, .. }
            | Command::Bridge { b: id, .. }
            | Command::ConferenceJoin { leg: id, .. }
            | Command::ConferenceLeave { leg: id } => Some(*id),
            _ => None,
        }
    }
}

/// Key presses a leg holds queued to send; more are dropped.
const MAX_QUEUED_DTMF: usize = 64;

/// Ticks of audio between two key presses sent (RFC 4733 leaves it to the
/// sender; 60 ms is a comfortable inter-digit pause).
const DTMF_GAP_TICKS: u8 = 3;

/// Level of the key presses we send, −dBm0 (a typical phone's).
const DTMF_VOLUME: u8 = 10;

/// Key presses waiting, and the one being sent with its start timestamp.
pub(crate) struct DtmfOut {
    queue: std::collections::VecDeque<(u8, u32)>,
    current: Option<(DtmfSender, u32)>,
    gap_ticks: u8,
}

impl Default for DtmfOut {
    /// The queue's room is reserved up front: presses relayed from a
    /// transcoding peer are queued on the tick path, which must not allocate.
    fn default() -> Self {
        DtmfOut {
            queue: std::collections::VecDeque::with_capacity(MAX_QUEUED_DTMF),
            current: None,
            gap_ticks: 0,
        }
    }
}

/// A leg's comfort noise (RFC 3389): the noise played for the far end's
/// silences, and the policy that turns our silences into CN updates.
pub(crate) struct ComfortNoise {
    pt: u8,
    noise: NoiseGenerator,
    /// The far end's last CN packet started a silence not yet ended by audio.
    active: bool,
    tx: CnSender,
}

impl ComfortNoise {
    pub(crate) fn new(pt: u8) -> ComfortNoise {
        ComfortNoise {
            pt,
            noise: NoiseGenerator::default(),
            active: false,
            tx: CnSender::default(),
        }
    }
}

/// How many recently moved legs a worker remembers, to forward commands
/// that were queued to it before the leg's handle learnt the new worker.
const MOVED_MEMORY: usize = 64;

/// The control side's way to one worker: its bounded command queue, and the
/// waker that interrupts the worker's poll once a command is queued.
#[derive(Clone)]
pub(crate) struct WorkerLink {
    pub(crate) index: usize,
    commands: Sender<Command>,
    waker: Arc<Waker>,
    /// Legs the worker owns (for least-loaded placement).
    pub(crate) load: Arc<AtomicUsize>,
}

impl WorkerLink {
    /// Queues without waiting; wakes the worker on success.
    pub(crate) fn try_send(&self, cmd: Command) -> Result<(), TrySendError<Command>> {
        self.commands.try_send(cmd)?;
        self.wake();
        Ok(())
    }

    /// Waits up to `timeout` for queue space; wakes the worker on success.
    pub(crate) fn send_timeout(
        &self,
        cmd: Command,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<Command>> {
        self.commands.send_timeout(cmd, timeout)?;
        self.wake();
        Ok(())
    }

    /// Waits for queue space as long as the worker lives (shutdown only).
    fn send(&self, cmd: Command) -> Result<(), SendError<Command>> {
        self.commands.send(cmd)?;
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            // The command still runs, at the worker's next tick at the latest.
            tracing::warn!(worker = self.index, error = %e, "could not wake media worker");
        }
    }
}

/// A worker's reusable buffers.
struct Scratch {
    recv: RecvBuf,
    inbound: [i16; MAX_FRAME_SAMPLES],
    outbound: [i16; MAX_FRAME_SAMPLES],
    payload: [u8; MAX_FRAME_SAMPLES],
    /// An outgoing packet, with room for the SRTP tag.
    packet: [u8; RTP_HEADER_LEN + MAX_FRAME_SAMPLES + SRTP_MAX_OVERHEAD],
    /// An outgoing report, with room for the SRTCP index and tag.
    rtcp: [u8; RTCP_BUF + SRTP_MAX_OVERHEAD],
    /// What each side of a transcoding bridge hears: the other side's
    /// inbound audio at its own rate.
    heard_a: [i16; MAX_FRAME_SAMPLES],
    heard_b: [i16; MAX_FRAME_SAMPLES],
}

/// One leg as the worker sees it. Built on the control thread by the
/// engine, then moved to its worker.
pub(crate) struct Leg {
    pub(crate) shared: Arc<LegShared>,
    pub(crate) span: tracing::Span,
    pub(crate) socket: UdpSocket,
    pub(crate) codec: Codec,
    /// The codec's encoder and decoder state.
    pub(crate) coder: CodecState,
    pub(crate) payload_type: u8,
    pub(crate) telephone_event_pt: Option<u8>,
    /// RFC 3389, when negotiated: its payload type and both directions' state.
    pub(crate) comfort_noise: Option<ComfortNoise>,
    pub(crate) frame_samples: usize,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) latched: bool,
    pub(crate) jitter: JitterBuffer,
    pub(crate) writer: RtpWriter,
    pub(crate) player: PromptPlayer,
    pub(crate) plc: Concealer,
    pub(crate) inbound_taps: Option<TapSet>,
    pub(crate) outbound_taps: Option<TapSet>,
    pub(crate) recording: Option<LegRecording>,
    pub(crate) stats: LegStats,
    pub(crate) started: Instant,
    /// Dropped when the report is published, which wakes every receipt.
    pub(crate) done: Option<Sender<()>>,
    /// Registered with the worker's poll; if not, read at every tick.
    pub(crate) registered: bool,
    /// Datagrams still allowed until the next tick.
    pub(crate) rx_budget: usize,
    /// The budget ran out with datagrams possibly left in the socket: read
    /// again at the next tick (an edge-triggered poll will not say so).
    pub(crate) rx_pending: bool,
    /// Slot of the leg this one is bridged to (links are always mutual).
    pub(crate) peer: Option<usize>,
    /// In a transcoding bridge (the peer speaks another codec): the
    /// resampler from the peer's rate to ours. Then nothing is relayed;
    /// each side decodes, and sends the other's audio in its own codec.
    pub(crate) transcode: Option<Resampler>,
    /// Index of the worker's conference this leg is a member of (then it is
    /// in no bridge, and the conference ticks it).
    pub(crate) conference: Option<usize>,
    /// Whether inbound audio goes through the jitter buffer and codec.
    /// Always for an unbridged leg; for a bridged one only if a recording or
    /// tap on either side needs this leg's decoded audio.
    pub(crate) decode: bool,
    /// RTCP statistics and reports; fed on the packet path, asked at ticks.
    pub(crate) rtcp: RtcpSession,
    /// RTP port + 1.
    pub(crate) rtcp_socket: UdpSocket,
    /// Reports go out of the RTP socket to the RTP remote.
    pub(crate) rtcp_mux: bool,
    /// Latched source of the far end's RTCP (symmetric RTCP).
    pub(crate) rtcp_remote: Option<SocketAddr>,
    pub(crate) rtcp_registered: bool,
    pub(crate) rtcp_budget: usize,
    pub(crate) rtcp_pending: bool,
    /// Key press detection (with a telephone-event payload type) and where
    /// presses go (if anywhere; a transcoding peer also gets them).
    pub(crate) dtmf: Option<(DtmfReceiver, Option<Box<dyn DtmfSink>>)>,
    /// Key presses to send, and the one being sent.
    pub(crate) dtmf_out: DtmfOut,
    /// After a press ends, its tail is still in the jitter buffer: the
    /// audio stays held back from a transcoding peer until then.
    pub(crate) dtmf_hold_until: Option<Instant>,
    pub(crate) emodel: EModel,
    /// SRTP contexts (boxed: a few KB of key schedules the plain legs
    /// need not carry).
    pub(crate) srtp: Option<Box<LegCrypto>>,
}

impl Leg {
    /// Whether this leg's own recording or inbound taps need its decoded
    /// inbound audio.
    fn needs_own_audio(&self) -> bool {
        self.recording.is_some() || self.inbound_taps.is_some()
    }

    /// Whether this leg's recording or outbound taps need the decoded audio
    /// of whatever it sends (its peer's inbound, when bridged).
    fn needs_sent_audio(&self) -> bool {
        self.recording.is_some() || self.outbound_taps.is_some()
    }

    /// Tick start: refills the read budgets and reads what an edge-triggered
    /// poll will not report again (a leg throttled last period, or one that
    /// could not be registered).
    fn start_tick(&mut self, now: Instant, buf: &mut RecvBuf, peer: Option<&mut Leg>, force: bool) {
        self.rx_budget = MAX_PACKETS_PER_TICK;
        self.rtcp_budget = MAX_RTCP_PER_TICK;
        if self.rx_pending || !self.registered || force {
            self.rx_pending = false;
            self.drain(now, buf, peer);
        }
        if self.rtcp_pending || !self.rtcp_registered || force {
            self.rtcp_pending = false;
            self.drain_rtcp(now, buf);
        }
    }

    /// An unbridged tick.
    fn tick(&mut self, now: Instant, s: &mut Scratch, force_read: bool) {
        self.start_tick(now, &mut s.recv, None, force_read);
        let n = self.frame_samples;

        let inbound = &mut s.inbound[..n];
        self.play_inbound(now, inbound);
        let outbound = &mut s.outbound[..n];
        self.player.next_frame(outbound);
        let in_ts = self.jitter.playout_timestamp();
        let out_ts = self.writer.next_header().timestamp;
        self.send(now, outbound, &mut s.payload, &mut s.packet);
        self.capture(&s.inbound[..n], in_ts, &s.outbound[..n], out_ts);
        self.dtmf_tick(now, None);
        self.rtcp_tick(now, &mut s.rtcp);
        self.publish_stats();
    }

    /// Feeds taps and the recording one tick: `inbound` is what our far end
    /// said, `heard` what it heard. Silence while capture is paused.
    fn capture(&mut self, inbound: &[i16], in_ts: u32, heard: &[i16], heard_ts: u32) {
        let (inbound, heard) = if self.shared.capture_paused.load(Relaxed) {
            let silence = &SILENCE[..inbound.len().min(SILENCE.len())];
            (silence, silence)
        } else {
            (inbound, heard)
        };
        if let Some(taps) = &mut self.inbound_taps {
            self.stats.tap_frames_dropped += taps.feed(inbound, in_ts);
        }
        if let Some(taps) = &mut self.outbound_taps {
            self.stats.tap_frames_dropped += taps.feed(heard, heard_ts);
        }
        if let Some(rec) = &mut self.recording {
            if !rec.write_frame(inbound, heard) {
                self.stats.record_frames_dropped += 1;
            }
        }
    }

    /// One frame of inbound audio out of the jitter buffer (or concealed:
    /// by the codec if it can, Opus from the next packet's FEC when that
    /// one is here; else by the generic concealer).
    fn play_inbound(&mut self, now: Instant, out: &mut [i16]) {
        let cn = &mut self.comfort_noise;
        let k = match self.jitter.pop(now) {
            // RFC 3389: noise at the signalled level from here until audio
            // comes back, and nothing for the concealer (it is not loss).
            Playout::ComfortNoise(level) => {
                if let Some(cn) = cn {
                    cn.noise.set_level(level);
                    cn.active = true;
                    cn.noise.fill(out);
                } else {
                    out.fill(0);
                }
                return;
            }
            Playout::Empty if cn.as_ref().is_some_and(|c| c.active) => {
                if let Some(cn) = cn {
                    cn.noise.fill(out);
                }
                return;
            }
            Playout::Frame(payload) => {
                if let Some(cn) = cn {
                    cn.active = false;
                }
                let k = self.coder.decode(payload, out);
                if !self.coder.conceals() {
                    fill_from(out, k);
                    self.plc.good(out);
                }
                k
            }
            Playout::Lost if self.coder.conceals() => {
                let next = self.jitter.peek_next();
                self.coder.conceal_loss(next, out)
            }
            Playout::Insert if self.coder.conceals() => self.coder.conceal_loss(None, out),
            Playout::Empty if self.coder.conceals() => self.coder.fill_gap(out),
            Playout::Lost | Playout::Insert => return self.plc.conceal(out),
            Playout::Empty => return self.plc.silence(out),
        };
        fill_from(out, k);
    }

    /// The rest of a bridged tick, once both sides' inbound frames are
    /// decoded: `inbound` is what our far end said, `heard` what it hears
    /// (the peer's inbound). No prompt is sent; our own stream's media time
    /// runs on so it resumes seamlessly after the bridge.
    fn bridged_tick(
        &mut self,
        now: Instant,
        (inbound, in_ts): (&[i16], u32),
        (heard, heard_ts): (&[i16], u32),
        rtcp_buf: &mut [u8],
    ) {
        self.writer.skip();
        self.capture(inbound, in_ts, heard, heard_ts);
        self.dtmf_tick(now, None);
        self.rtcp_tick(now, rtcp_buf);
        self.publish_stats();
    }

    /// Ends key presses whose end packets never came, and delivers ended
    /// presses to the sink (one per press; begins are not reported) and,
    /// in a transcoding bridge, to the peer (`relay_to`) to send on.
    fn dtmf_tick(&mut self, now: Instant, mut relay_to: Option<&mut Leg>) {
        let Some((rx, sink)) = &mut self.dtmf else {
            return;
        };
        let span = &self.span;
        if rx.poll_timeout().is_some_and(|t| t <= now) {
            rx.handle_timeout(now);
        }
        while let Some(event) = rx.poll_event() {
            if event.phase != DtmfPhase::End {
                continue;
            }
            tracing::info!(parent: span, digit = ?event.digit, code = event.event, duration_ms = event.duration_ms, "DTMF received");
            // The press's last audio plays out of the jitter buffer up to
            // its delay plus a tick's phase later.
            self.dtmf_hold_until = Some(now + self.jitter.target_delay() + 2 * frame_duration());
            if let Some(peer) = relay_to.as_deref_mut() {
                peer.relay_dtmf(event.event, event.duration_ms);
            }
            let Some(sink) = sink else {
                continue;
            };
            if sink.deliver(event) {
                self.stats.dtmf_events += 1;
            } else {
                self.stats.dtmf_events_dropped += 1;
            }
        }
    }

    /// Whether the far end is pressing a key (its telephone-event is under
    /// way, or just ended and its audio is still being played out of the
    /// jitter buffer): its audio is then not passed on to a transcoding
    /// peer, which gets the press as an event instead.
    fn pressing(&self, now: Instant) -> bool {
        let active = self
            .dtmf
            .as_ref()
            .is_some_and(|(rx, _)| rx.active_event().is_some());
        active || self.dtmf_hold_until.is_some_and(|t| now < t)
    }

    /// A key press the transcoding peer received, regenerated here as RFC
    /// 4733 events at our own telephone-event payload type and clock (see
    /// [`crate::dtmf_relay`]). Without a telephone-event type, or with the
    /// queue full, it is dropped and counted. Allocation-free (the queue's
    /// room is reserved).
    fn relay_dtmf(&mut self, event: u8, duration_ms: u32) {
        let room = self.dtmf_out.queue.len() < MAX_QUEUED_DTMF;
        if self.telephone_event_pt.is_none() || !room {
            self.stats.dtmf_relay_dropped += 1;
            tracing::debug!(parent: &self.span, code = event, "relayed key press dropped: no telephone-event negotiated, or queue full");
            return;
        }
        let duration_ms = duration_ms.clamp(
            crate::dtmf_relay::MIN_RELAY_MS,
            crate::dtmf_relay::MAX_RELAY_MS,
        );
        self.dtmf_out.queue.push_back((event, duration_ms));
        self.stats.dtmf_events_relayed += 1;
    }

    /// Sends the RTCP report if one is due and there is somewhere to send
    /// it (otherwise it stays due).
    fn rtcp_tick(&mut self, now: Instant, buf: &mut [u8]) {
        if now < self.rtcp.poll_timeout() {
            return;
        }
        let Some(dest) = self.rtcp_destination() else {
            return;
        };
        let room = buf.len().saturating_sub(SRTP_MAX_OVERHEAD);
        let Some(len) = self.rtcp.poll_transmit(now, &mut buf[..room]) else {
            return;
        };
        if self.send_rtcp(buf, len, dest).is_err() {
            self.stats.send_errors += 1;
        }
    }

    /// Sends the report in `buf[..len]` (SRTCP-protected in place on an
    /// SRTP leg) from the RTP socket when muxed, else the RTCP socket.
    fn send_rtcp(&mut self, buf: &mut [u8], len: usize, dest: SocketAddr) -> Result<(), ()> {
        let len = match &mut self.srtp {
            Some(srtp) => srtp.protect_rtcp(buf, len).map_err(|_| ())?,
            None => len,
        };
        let socket = if self.rtcp_mux {
            &self.socket
        } else {
            &self.rtcp_socket
        };
        socket
            .send_to(buf.get(..len).unwrap_or_default(), dest)
            .map(drop)
            .map_err(drop)
    }

    /// Protects (on an SRTP leg) and sends the RTP packet in `buf[..len]`
    /// to `remote`, counting it; false if it did not go out.
    fn send_rtp(&mut self, buf: &mut [u8], len: usize, remote: SocketAddr) -> bool {
        let len = match &mut self.srtp {
            Some(srtp) => match srtp.protect_rtp(buf, len) {
                Ok(n) => n,
                Err(_) => {
                    self.stats.send_errors += 1;
                    return false;
                }
            },
            None => len,
        };
        match self
            .socket
            .send_to(buf.get(..len).unwrap_or_default(), remote)
        {
            Ok(_) => {
                self.stats.packets_sent += 1;
                self.stats.bytes_sent += len as u64;
                true
            }
            Err(_) => {
                self.stats.send_errors += 1;
                false
            }
        }
    }

    /// Counts a packet SRTP refused (by why); the first one of a leg is
    /// logged (a wrong key shows at once, a flood only once).
    fn count_srtp_error(&mut self, e: SrtpError, len: usize) {
        if self.stats.srtp_auth_failures + self.stats.srtp_replayed == 0 {
            tracing::info!(parent: &self.span, error = %e, len, "first packet refused by SRTP");
        }
        match e {
            SrtpError::AuthFailed => self.stats.srtp_auth_failures += 1,
            SrtpError::Replayed => self.stats.srtp_replayed += 1,
            _ => self.stats.packets_invalid += 1,
        }
    }

    /// New keys, or none (see [`crate::LegHandle::set_srtp`]).
    fn set_srtp(&mut self, keys: Option<SrtpKeys>) {
        tracing::info!(parent: &self.span, srtp = keys.is_some(), remote_key = keys.as_ref().is_some_and(|k| k.remote.is_some()), "SRTP keys set");
        match (keys, self.srtp.as_mut()) {
            (Some(keys), Some(srtp)) => srtp.rekey(keys),
            (Some(keys), None) => self.srtp = Some(Box::new(LegCrypto::new(keys))),
            (None, _) => self.srtp = None,
        }
    }

    /// Where reports go: the RTP remote when muxed; else the latched RTCP
    /// source, or the RTP remote's port + 1.
    fn rtcp_destination(&self) -> Option<SocketAddr> {
        if self.rtcp_mux {
            return self.remote;
        }
        self.rtcp_remote.or_else(|| {
            let r = self.remote?;
            Some(SocketAddr::new(r.ip(), r.port().checked_add(1)?))
        })
    }

    /// Reads the RTCP socket until `WouldBlock` or its budget is spent.
    fn drain_rtcp(&mut self, now: Instant, buf: &mut RecvBuf) {
        while self.rtcp_budget > 0 {
            match self.rtcp_socket.recv_from(&mut buf[..RECV_BUF]) {
                Ok((len, src)) => {
                    self.rtcp_budget -= 1;
                    self.on_rtcp(now, buf.get_mut(..len).unwrap_or_default(), src);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => self.rtcp_budget -= 1,
            }
        }
        self.rtcp_pending = true;
    }

    /// A datagram on the RTCP port: terminated here (a bridge never relays
    /// RTCP). The first valid one's source becomes the RTCP remote.
    fn on_rtcp(&mut self, now: Instant, datagram: &mut [u8], src: SocketAddr) {
        if self.rtcp_remote.is_some_and(|r| r != src) {
            self.rtcp.count_invalid();
            return;
        }
        let Some(datagram) = self.unprotect_rtcp(datagram) else {
            return;
        };
        if self.rtcp.handle_rtcp(now, datagram).is_ok() && self.rtcp_remote.is_none() {
            tracing::debug!(parent: &self.span, %src, "latching RTCP to packet source");
            self.rtcp_remote = Some(src);
        }
    }

    /// RTCP on the RTP port (RFC 5761), from the RTP remote (or anyone
    /// before latching): handled and consumed, never relayed. False if it
    /// is not valid RTCP from there: then it is judged as RTP.
    ///
    /// On an SRTP leg a muxed packet that fails SRTCP is counted and
    /// consumed (judged as SRTP it would only fail again).
    fn on_muxed_rtcp(&mut self, now: Instant, datagram: &mut [u8], src: SocketAddr) -> bool {
        if self.latched && self.remote != Some(src) {
            return false;
        }
        if self.srtp.is_none() {
            return self.rtcp.handle_rtcp(now, datagram).is_ok();
        }
        if let Some(plain) = self.unprotect_rtcp(datagram) {
            let _ = self.rtcp.handle_rtcp(now, plain);
        }
        true
    }

    /// The RTCP in `datagram`, SRTCP-unprotected in place on an SRTP leg;
    /// `None` (counted) if it does not authenticate.
    fn unprotect_rtcp<'a>(&mut self, datagram: &'a mut [u8]) -> Option<&'a mut [u8]> {
        let Some(srtp) = &mut self.srtp else {
            return Some(datagram);
        };
        match srtp.unprotect_rtcp(datagram) {
            Ok(len) => datagram.get_mut(..len),
            Err(e) => {
                self.count_srtp_error(e, datagram.len());
                None
            }
        }
    }

    /// Reads until `WouldBlock` or the budget is spent, relaying valid
    /// packets out of `peer` when bridged.
    fn drain(&mut self, now: Instant, buf: &mut RecvBuf, mut peer: Option<&mut Leg>) {
        while self.rx_budget > 0 {
            match self.socket.recv_from(&mut buf[..RECV_BUF]) {
                Ok((len, src)) => {
                    self.rx_budget -= 1;
                    self.on_datagram(now, buf, len, src, peer.as_deref_mut());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // EINTR, or an ICMP error some platforms report here: try
                // again, within the budget.
                Err(_) => self.rx_budget -= 1,
            }
        }
        self.rx_pending = true;
    }

    /// One datagram on the RTP port, in `buf[..len]`. On an SRTP leg it
    /// is authenticated and decrypted in place first: a packet that fails
    /// is counted and dropped before it can latch the remote address.
    fn on_datagram(
        &mut self,
        now: Instant,
        buf: &mut RecvBuf,
        len: usize,
        src: SocketAddr,
        peer: Option<&mut Leg>,
    ) {
        let datagram = buf.get_mut(..len).unwrap_or_default();
        if is_rtcp(datagram) && self.on_muxed_rtcp(now, datagram, src) {
            return;
        }
        self.stats.packets_received += 1;
        self.stats.bytes_received += len as u64;
        if self.latched && self.remote != Some(src) {
            self.stats.packets_invalid += 1;
            return;
        }
        let len = match &mut self.srtp {
            None => len,
            Some(srtp) => match srtp.unprotect_rtp(datagram) {
                Ok(plain) => plain,
                Err(e) => return self.count_srtp_error(e, len),
            },
        };
        let datagram = buf.get(..len).unwrap_or_default();
        let Some((packet, kind)) = self.payload_types().classify(datagram) else {
            self.stats.packets_invalid += 1;
            return;
        };
        if !self.latched {
            self.latch(src);
        }
        if kind == PacketKind::TelephoneEvent {
            self.stats.dtmf_packets += 1;
            if let Some((rx, _)) = &mut self.dtmf {
                rx.on_rtp(now, &packet);
            }
        }
        self.rtcp
            .handle_rtp_received(now, &packet, kind != PacketKind::TelephoneEvent);
        let sent = (packet.ssrc, packet.timestamp, packet.payload.len());
        // Relay first: the jitter buffer can wait a few hundred ns, the
        // far end should not. A muted party is heard by no one. A peer
        // that encrypts does so in place, so the jitter buffer goes first.
        let relaying = self.transcode.is_none() && !self.shared.muted.load(Relaxed);
        let peer = peer.filter(|_| relaying);
        let encrypts = peer.as_ref().is_some_and(|p| p.srtp.is_some());
        if encrypts {
            self.buffer_audio(now, buf.get(..len).unwrap_or_default(), kind);
        }
        if let Some(peer) = peer {
            if peer.relay(now, buf, len, kind, sent) {
                self.stats.packets_forwarded += 1;
            }
        }
        if !encrypts {
            self.buffer_audio(now, buf.get(..len).unwrap_or_default(), kind);
        }
    }

    /// Audio (or comfort noise) into the jitter buffer, when someone needs
    /// it decoded.
    fn buffer_audio(&mut self, now: Instant, datagram: &[u8], kind: PacketKind) {
        if kind == PacketKind::ComfortNoise {
            self.stats.cn_packets += 1;
        }
        let playable = matches!(kind, PacketKind::Audio | PacketKind::ComfortNoise);
        if playable && self.decode {
            if let Ok(packet) = RtpPacket::parse(datagram) {
                // The jitter buffer counts what it refuses; publish_stats copies it.
                if kind == PacketKind::Audio {
                    self.jitter.push_rtp(now, &packet);
                } else {
                    self.jitter.push_comfort_noise(now, &packet);
                }
            }
        }
    }

    fn payload_types(&self) -> PayloadTypes {
        PayloadTypes {
            audio: self.payload_type,
            telephone_event: self.telephone_event_pt,
            comfort_noise: self.comfort_noise.as_ref().map(|c| c.pt),
        }
    }

    /// Sends a packet the peer received out of this leg's socket to this
    /// leg's far end, as it is but for the payload type number (see
    /// [`PayloadTypes::retarget`]). Returns whether the packet was sent.
    /// `sent` (SSRC, timestamp, payload length) goes to this leg's RTCP
    /// sender statistics: on this hop, the relayed stream is what we send.
    fn relay(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        len: usize,
        kind: PacketKind,
        (ssrc, timestamp, payload_len): (u32, u32, usize),
    ) -> bool {
        if self.shared.stop.load(Relaxed) || self.shared.send_paused.load(Relaxed) {
            return false;
        }
        let Some(remote) = self.remote else {
            return false;
        };
        if !self
            .payload_types()
            .retarget(buf.get_mut(..len).unwrap_or_default(), kind)
        {
            return false;
        }
        let sent = self.send_rtp(buf, len, remote);
        if sent {
            self.rtcp.handle_rtp_sent(now, ssrc, timestamp, payload_len);
        }
        sent
    }

    /// Symmetric RTP: answer wherever the far end actually sends from.
    fn latch(&mut self, src: SocketAddr) {
        if self.remote != Some(src) {
            tracing::info!(parent: &self.span, sdp_remote = ?self.remote, %src, "latching RTP to packet source");
        }
        self.remote = Some(src);
        self.latched = true;
    }

    /// The bridge is gone (unbridged, or the peer stopped): back to the
    /// prompt, with the jitter buffer fresh if it sat idle.
    fn leave_bridge(&mut self) {
        self.peer = None;
        self.transcode = None;
        if !self.decode {
            self.jitter.reset();
            self.decode = true;
        }
        self.writer.start_talkspurt();
    }

    /// Queues key presses to send in place of audio (bridged legs relay
    /// their peer's stream instead and drop them).
    fn queue_dtmf(&mut self, events: &[u8], duration_ms: u32) {
        let relaying = self.peer.is_some() && self.transcode.is_none();
        if self.telephone_event_pt.is_none() || relaying {
            tracing::warn!(parent: &self.span, "DTMF not sent: no telephone-event type, or bridged");
            return;
        }
        let room = MAX_QUEUED_DTMF.saturating_sub(self.dtmf_out.queue.len());
        self.dtmf_out
            .queue
            .extend(events.iter().take(room).map(|&e| (e, duration_ms)));
    }

    /// If a key press is being sent (or starts now), sends its packet for
    /// this tick and returns true: the tick's audio is not sent.
    fn send_dtmf(&mut self, payload_buf: &mut [u8], packet_buf: &mut [u8]) -> bool {
        let (Some(pt), Some(remote)) = (self.telephone_event_pt, self.remote) else {
            return false;
        };
        let out = &mut self.dtmf_out;
        if out.current.is_none() {
            if out.gap_ticks > 0 {
                out.gap_ticks -= 1;
                return false;
            }
            let Some((event, duration_ms)) = out.queue.pop_front() else {
                return false;
            };
            let clock = self.codec.clock_rate();
            let sender = DtmfSender::new(event, duration_ms, DTMF_VOLUME, clock, FRAME_MS);
            out.current = Some((sender, self.writer.next_header().timestamp));
        }
        let Some((sender, start)) = &mut out.current else {
            return false;
        };
        let Some(p) = sender.next_packet(payload_buf) else {
            // Over: a pause between presses, then audio as a new talkspurt.
            out.current = None;
            out.gap_ticks = DTMF_GAP_TICKS;
            self.writer.start_talkspurt();
            return false;
        };
        let ts = start.wrapping_add(p.timestamp_offset);
        let payload = payload_buf.get(..p.len).unwrap_or_default();
        match self
            .writer
            .write_other(pt, p.marker, ts, payload, packet_buf)
        {
            Ok(len) => {
                self.send_rtp(packet_buf, len, remote);
            }
            Err(_) => self.stats.send_errors += 1,
        }
        // Media time runs on under the event (RFC 4733 §2.5.1.2).
        self.writer.skip();
        true
    }

    fn send(&mut self, now: Instant, pcm: &[i16], payload_buf: &mut [u8], packet_buf: &mut [u8]) {
        let Some(remote) = self.remote else {
            // Nobody to send to: media time runs on, the sequence does not.
            self.writer.skip();
            return;
        };
        if self.shared.send_paused.load(Relaxed) {
            // On hold: nothing goes out; the stream resumes as a talkspurt.
            self.writer.skip();
            self.writer.start_talkspurt();
            return;
        }
        if self.send_dtmf(payload_buf, packet_buf) {
            return;
        }
        if self.send_comfort_noise(now, pcm, packet_buf) {
            return;
        }
        let len = self.coder.encode(pcm, payload_buf);
        if len == 0 {
            // Nothing to send (Opus DTX): media time runs on, and the next
            // packet starts a talkspurt.
            self.writer.skip();
            self.writer.start_talkspurt();
            return;
        }
        let payload = payload_buf.get(..len).unwrap_or(&[]);
        let header = self.writer.next_header();
        match self.writer.write(payload, packet_buf) {
            Ok(plen) => {
                if self.send_rtp(packet_buf, plen, remote) {
                    self.rtcp
                        .handle_rtp_sent(now, header.ssrc, header.timestamp, len);
                }
            }
            Err(_) => self.stats.send_errors += 1,
        }
    }

    /// With CN negotiated, asks the policy about this frame: true if it is
    /// not sent as audio (a CN update went instead, or nothing: media time
    /// runs on); audio after a CN period starts a talkspurt (marker bit).
    fn send_comfort_noise(&mut self, now: Instant, pcm: &[i16], packet_buf: &mut [u8]) -> bool {
        let (Some(cn), Some(remote)) = (self.comfort_noise.as_mut(), self.remote) else {
            return false;
        };
        let level = match cn.tx.on_frame(pcm) {
            CnDecision::Audio { resume } => {
                if resume {
                    self.writer.start_talkspurt();
                }
                return false;
            }
            CnDecision::Skip => {
                self.writer.skip();
                return true;
            }
            CnDecision::Update { level } => level,
        };
        let mut payload = [0u8; 1];
        let n = write_level(level, &mut payload);
        let header = self.writer.next_header();
        let written =
            self.writer
                .write_other(cn.pt, false, header.timestamp, &payload[..n], packet_buf);
        match written.map(|len| {
            (
                len,
                self.socket
                    .send_to(packet_buf.get(..len).unwrap_or_default(), remote),
            )
        }) {
            Ok((len, Ok(_))) => {
                self.stats.packets_sent += 1;
                self.stats.cn_packets_sent += 1;
                self.stats.bytes_sent += len as u64;
                self.rtcp
                    .handle_rtp_sent(now, header.ssrc, header.timestamp, n);
            }
            _ => self.stats.send_errors += 1,
        }
        self.writer.skip();
        true
    }

    fn publish_stats(&mut self) {
        let j = self.jitter.stats();
        self.stats.packets_lost = j.lost;
        self.stats.packets_late = j.late;
        self.stats.packets_duplicate = j.duplicate;
        self.stats.packets_discarded = j.too_large + j.jumps + j.dropped;
        self.stats.frames_dropped_for_delay = j.frames_dropped_for_delay;
        self.stats.frames_inserted_for_delay = j.frames_inserted_for_delay;
        let delay = self.jitter.target_delay();
        self.stats.jitter_delay_ms = delay.as_millis() as u64;
        self.shared.stats.publish(&self.stats);
        // The buffer's delay is part of the MOS estimate's one-way delay.
        let quality = self.rtcp.quality(delay, self.emodel);
        self.shared.quality.publish(&quality);
    }

    /// Hangup: a last report and a BYE for the stream we send.
    fn send_bye(&mut self, now: Instant) {
        let Some(dest) = self.rtcp_destination() else {
            return;
        };
        let mut buf = [0u8; RTCP_BUF + SRTP_MAX_OVERHEAD];
        let Some(len) = self.rtcp.write_bye(now, &mut buf[..RTCP_BUF]) else {
            return;
        };
        let _ = self.send_rtcp(&mut buf, len, dest);
    }

    /// Publishes the final report (after the recorder finalized the file, if
    /// recording); returns the close request if the recorder queue is full.
    fn finish(mut self, now: Instant) -> Option<(LegRecording, OnFinished)> {
        self.send_bye(now);
        self.publish_stats();
        let report = LegReport {
            stats: self.stats.clone(),
            quality: self.shared.quality.snapshot(),
            recording: None,
            recorded_frames: 0,
            duration: now.saturating_duration_since(self.started),
        };
        tracing::info!(parent: &self.span, stats = ?report.stats, "leg stopped");
        let shared = Arc::clone(&self.shared);
        let done = self.done.take();
        let Some(rec) = self.recording.take() else {
            let _ = shared.report.set(report);
            drop(done);
            return None;
        };
        let path = rec.path().to_owned();
        let frame = self.frame_samples.max(1) as u64;
        let span = self.span.clone();
        let on_finished: OnFinished = Box::new(move |f: Finished| {
            let mut report = report;
            report.recorded_frames = f.samples / frame;
            if let Some(e) = f.error {
                tracing::warn!(parent: &span, path = %path.display(), error = %e, "recording failed");
            } else {
                report.recording = Some(path);
            }
            let _ = shared.report.set(report);
            drop(done);
        });
        rec.close(on_finished).err()
    }
}

/// Silence after the first `k` samples (a short or failed decode).
fn fill_from(out: &mut [i16], k: usize) {
    if let Some(rest) = out.get_mut(k..) {
        rest.fill(0);
    }
}

/// A bridged pair's tick: both inbound frames first (each only if someone
/// needs it), then each side gets its own frame and the other's.
fn tick_pair(a: &mut Leg, b: &mut Leg, now: Instant, s: &mut Scratch, force_read: bool) {
    a.start_tick(now, &mut s.recv, Some(&mut *b), force_read);
    b.start_tick(now, &mut s.recv, Some(&mut *a), force_read);
    if a.transcode.is_some() && b.transcode.is_some() {
        return tick_transcoding(a, b, now, s);
    }
    let n = a.frame_samples.min(b.frame_samples);
    let (a_in, b_in) = (&mut s.inbound[..n], &mut s.outbound[..n]);
    for (leg, frame) in [(&mut *a, &mut *a_in), (&mut *b, &mut *b_in)] {
        if leg.decode {
            leg.play_inbound(now, frame);
        } else {
            frame.fill(0);
        }
    }
    let (a_ts, b_ts) = (a.jitter.playout_timestamp(), b.jitter.playout_timestamp());
    a.bridged_tick(now, (a_in, a_ts), (b_in, b_ts), &mut s.rtcp);
    b.bridged_tick(now, (b_in, b_ts), (a_in, a_ts), &mut s.rtcp);
}

/// A transcoding bridge's tick: each side's inbound frame, decoded at its
/// rate, is resampled to the other's and sent there in the other's codec,
/// as an unbridged leg sends its prompt (a muted side sends silence).
fn tick_transcoding(a: &mut Leg, b: &mut Leg, now: Instant, s: &mut Scratch) {
    let (na, nb) = (a.frame_samples, b.frame_samples);
    a.play_inbound(now, &mut s.inbound[..na]);
    b.play_inbound(now, &mut s.outbound[..nb]);
    let (a_said, b_said) = (&s.inbound[..na], &s.outbound[..nb]);
    // Presses that ended go to the other side first (sent from this tick
    // on), and start the hold-back of their audio's tail: a side pressing
    // a key is not heard as audio, the press goes over as a
    // telephone-event.
    a.dtmf_tick(now, Some(&mut *b));
    b.dtmf_tick(now, Some(&mut *a));
    let b_silent = b.shared.muted.load(Relaxed) || b.pressing(now);
    let a_silent = a.shared.muted.load(Relaxed) || a.pressing(now);
    hear(a, b_said, b_silent, &mut s.heard_a[..na]);
    hear(b, a_said, a_silent, &mut s.heard_b[..nb]);
    for (leg, said, heard) in [
        (&mut *a, a_said, &s.heard_a[..na]),
        (&mut *b, b_said, &s.heard_b[..nb]),
    ] {
        let in_ts = leg.jitter.playout_timestamp();
        let out_ts = leg.writer.next_header().timestamp;
        leg.send(now, heard, &mut s.payload, &mut s.packet);
        leg.capture(said, in_ts, heard, out_ts);
    }
    for leg in [a, b] {
        leg.rtcp_tick(now, &mut s.rtcp);
        leg.publish_stats();
    }
}

/// What `leg` hears of its transcoding peer: the peer's frame at the leg's
/// rate, or silence if the peer is muted (or the resampler refuses).
fn hear(leg: &mut Leg, peer_said: &[i16], peer_muted: bool, out: &mut [i16]) {
    let converted = match &mut leg.transcode {
        Some(r) if !peer_muted => r.process(peer_said, out).is_ok(),
        _ => false,
    };
    if !converted {
        out.fill(0);
    }
}

/// A conference's tick: every member's inbound frame, decoded at its own
/// rate, into the mixer at the mix rate (resampled once, at its edge); one
/// mix; then each member's minus-one mix back to its rate (once), sent,
/// recorded and tapped.
fn tick_conference(
    conf: &mut Conference,
    slots: &mut [Option<Leg>],
    now: Instant,
    s: &mut Scratch,
    force_read: bool,
) {
    let rate = conf.rate;
    for (k, (&slot, edge)) in conf.slots.iter().zip(conf.edges.iter_mut()).enumerate() {
        let Some(Some(leg)) = slots.get_mut(slot) else {
            conf.mixer.input_mut(k).fill(0);
            continue;
        };
        leg.start_tick(now, &mut s.recv, None, force_read);
        conf.mixer.set_muted(k, leg.shared.muted.load(Relaxed));
        leg.play_inbound(now, edge.said_mut());
        edge.into_mix(rate, conf.mixer.input_mut(k));
    }
    conf.mixer.mix();
    for (k, (&slot, edge)) in conf.slots.iter().zip(conf.edges.iter_mut()).enumerate() {
        let Some(Some(leg)) = slots.get_mut(slot) else {
            continue;
        };
        edge.from_mix(rate, conf.mixer.output(k));
        let (said, heard) = edge.frames();
        let in_ts = leg.jitter.playout_timestamp();
        let out_ts = leg.writer.next_header().timestamp;
        leg.send(now, heard, &mut s.payload, &mut s.packet);
        leg.capture(said, in_ts, heard, out_ts);
        leg.dtmf_tick(now, None);
        leg.rtcp_tick(now, &mut s.rtcp);
        leg.publish_stats();
    }
}

/// Both legs of slots `i` and `j`, if both exist.
fn pair_mut(slots: &mut [Option<Leg>], i: usize, j: usize) -> Option<(&mut Leg, &mut Leg)> {
    let (x, y) = if i < j {
        let (lo, hi) = slots.split_at_mut(j);
        (lo.get_mut(i)?, hi.first_mut()?)
    } else if j < i {
        let (lo, hi) = slots.split_at_mut(i);
        (hi.first_mut()?, lo.get_mut(j)?)
    } else {
        return None;
    };
    Some((x.as_mut()?, y.as_mut()?))
}

/// What the engine keeps per worker.
pub(crate) struct WorkerHandle {
    pub(crate) link: WorkerLink,
    pub(crate) load: Arc<AtomicUsize>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerHandle {
    /// Asks the worker to stop all its legs and exit (waits for queue space).
    pub(crate) fn shutdown(&self) {
        let _ = self.link.send(Command::Shutdown);
    }
}

/// Engine-wide counters the workers update.
#[derive(Debug, Default)]
pub(crate) struct EngineCounters {
    pub(crate) active_legs: AtomicUsize,
    pub(crate) overruns: AtomicU64,
}

/// Starts worker `index` (`media-<index>`) with a bounded queue of
/// `queue` commands.
pub(crate) fn spawn_worker(
    index: usize,
    queue: usize,
    counters: Arc<EngineCounters>,
) -> Result<WorkerHandle, MediaError> {
    let poll = Poll::new().map_err(MediaError::Poll)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(MediaError::Poll)?);
    let (tx, rx) = crossbeam_channel::bounded(queue);
    let load = Arc::new(AtomicUsize::new(0));
    let name = format!("media-{index}");
    let worker = Worker {
        index,
        poll,
        slots: Vec::new(),
        free: Vec::new(),
        closing: Vec::new(),
        scratch: Box::new(Scratch {
            recv: [0; RECV_BUF + SRTP_MAX_OVERHEAD],
            inbound: [0; MAX_FRAME_SAMPLES],
            outbound: [0; MAX_FRAME_SAMPLES],
            payload: [0; MAX_FRAME_SAMPLES],
            packet: [0; RTP_HEADER_LEN + MAX_FRAME_SAMPLES + SRTP_MAX_OVERHEAD],
            rtcp: [0; RTCP_BUF + SRTP_MAX_OVERHEAD],
            heard_a: [0; MAX_FRAME_SAMPLES],
            heard_b: [0; MAX_FRAME_SAMPLES],
        }),
        load: Arc::clone(&load),
        counters,
        poll_failed: false,
        conferences: Vec::new(),
        moved: std::collections::VecDeque::with_capacity(MOVED_MEMORY),
        moving: Vec::new(),
    };
    let thread = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || worker.run(rx))
        .map_err(|source| MediaError::Thread { name, source })?;
    Ok(WorkerHandle {
        link: WorkerLink {
            index,
            commands: tx,
            waker,
            load: Arc::clone(&load),
        },
        load,
        thread: Some(thread),
    })
}

struct Worker {
    index: usize,
    poll: Poll,
    /// Legs by slot; a slot index is the leg's poll token.
    slots: Vec<Option<Leg>>,
    /// Empty slots, reused first (capacity kept at `slots.len()`, so freeing
    /// never allocates).
    free: Vec<usize>,
    closing: Vec<(LegRecording, OnFinished)>,
    scratch: Box<Scratch>,
    load: Arc<AtomicUsize>,
    counters: Arc<EngineCounters>,
    /// The poll failed: read every leg at every tick instead.
    poll_failed: bool,
    /// Conferences hosted here, by index (a member leg's `conference`).
    conferences: Vec<Option<Conference>>,
    /// Legs recently moved away, and where to (newest last).
    moved: std::collections::VecDeque<(u64, WorkerLink)>,
    /// Legs on their way to a worker whose queue was full: retried each tick.
    moving: Vec<PendingMove>,
}

/// A conference hosted by a worker: its mixer, and the slot of each member
/// (member `k` of the mixer is the leg in `slots[k]`, converted to and
/// from the mix rate by `edges[k]`).
struct Conference {
    id: u64,
    label: String,
    mixer: Mixer,
    slots: Vec<usize>,
    edges: Vec<MixEdge>,
    /// The rate it was created at: it never mixes below it.
    floor_rate: u32,
    /// The rate it mixes at now: its highest member's (or the floor).
    rate: u32,
}

impl Conference {
    /// Mixes at the highest rate present: called after every join and
    /// leave, so the rate rises when a wideband member joins and falls
    /// back when the last one leaves (nobody pays for 48 kHz that nobody
    /// speaks). Allocation-free.
    fn follow_rate(&mut self) {
        let rate = mix_rate(self.floor_rate, self.edges.iter().map(|e| e.rate()));
        if rate == self.rate {
            return;
        }
        tracing::info!(conference = %self.label, from = self.rate, to = rate, "mix rate changed");
        self.rate = rate;
        self.mixer.set_frame_samples(samples_per_frame(rate));
        for e in &mut self.edges {
            e.reset();
        }
    }
}

/// A leg handed to another worker, and the commands that follow it there.
struct PendingMove {
    leg: Box<Leg>,
    to: WorkerLink,
    then: Vec<Command>,
}

impl Worker {
    fn run(mut self, commands: Receiver<Command>) {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        let tick = frame_duration();
        let mut deadline = Instant::now();
        tracing::debug!(worker = self.index, "media worker started");
        while self.apply_commands(&commands) {
            let now = Instant::now();
            if now >= deadline {
                self.tick_all(now);
                retry_closes(&mut self.closing);
                deadline += tick;
                let now = Instant::now();
                if now >= deadline {
                    self.counters.overruns.fetch_add(1, Relaxed);
                    if now.duration_since(deadline) > tick * MAX_CATCH_UP_TICKS {
                        deadline = now;
                    }
                }
            }
            // Zero when late: still look at the sockets between catch-up ticks.
            let timeout = deadline.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    if !self.poll_failed {
                        tracing::error!(worker = self.index, error = %e, "poll failed; reading sockets at each tick from now on");
                    }
                    self.poll_failed = true;
                    std::thread::sleep(timeout);
                }
                continue;
            }
            let now = Instant::now();
            for event in events.iter() {
                // The waker only interrupts the poll; commands are taken at
                // the top of the loop.
                if event.token() != WAKER {
                    let token = event.token().0;
                    self.on_readable(token / 2, token % 2 == 1, now);
                }
            }
        }
        self.stop_all();
        tracing::debug!(worker = self.index, "media worker stopped");
    }

    /// Applies queued commands without waiting; false on shutdown.
    fn apply_commands(&mut self, commands: &Receiver<Command>) -> bool {
        loop {
            let cmd = match commands.try_recv() {
                Ok(cmd) => cmd,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            if !self.apply(cmd) {
                return false;
            }
        }
    }

    /// Applies one command; false on shutdown. A command about a leg that
    /// moved away is forwarded to its new worker.
    fn apply(&mut self, cmd: Command) -> bool {
        if let Some(id) = cmd.leg_id() {
            if self.find(id).is_none() {
                self.forward(id, cmd);
                return true;
            }
        }
        match cmd {
            Command::Add(leg) => self.add(*leg),
            Command::SetRemote { id, remote } => {
                if let Some(leg) = self.find(id).and_then(|i| self.slots[i].as_mut()) {
                    tracing::info!(parent: &leg.span, %remote, "remote set");
                    leg.remote = Some(remote);
                    leg.latched = false;
                    leg.rtcp_remote = None;
                }
            }
            Command::SetSrtp { id, keys } => {
                if let Some(leg) = self.find(id).and_then(|i| self.slots[i].as_mut()) {
                    leg.set_srtp(keys.map(|k| *k));
                }
            }
            Command::Bridge { a, b, transcode } => self.bridge(a, b, transcode),
            Command::Unbridge { id } => {
                if let Some(i) = self.find(id) {
                    self.unbridge(i);
                }
            }
            Command::MoveTo { id, to, then } => self.move_to(id, to, then),
            Command::SendDtmf {
                id,
                events,
                duration_ms,
            } => {
                if let Some(leg) = self.find(id).and_then(|i| self.slots[i].as_mut()) {
                    leg.queue_dtmf(&events, duration_ms);
                }
            }
            Command::ConferenceCreate {
                id,
                label,
                floor_rate,
            } => self.create_conference(id, label, floor_rate),
            Command::ConferenceJoin {
                conference,
                leg,
                role,
                edge,
            } => self.join_conference(conference, leg, role, *edge),
            Command::ConferenceLeave { leg } => {
                if let Some(i) = self.find(leg) {
                    self.leave_conference(i);
                }
            }
            Command::ConferenceEnd { id } => self.end_conference(id),
            Command::Shutdown => return false,
        }
        true
    }

    /// Sends a command about a leg that is not here to the worker it moved
    /// to, if it moved recently; otherwise the leg is gone and so is the
    /// command's point.
    fn forward(&mut self, id: u64, cmd: Command) {
        let Some((_, to)) = self.moved.iter().rev().find(|(m, _)| *m == id) else {
            tracing::debug!(
                worker = self.index,
                leg = id,
                "command for a leg that is gone; ignored"
            );
            return;
        };
        if to.try_send(cmd).is_err() {
            tracing::warn!(
                worker = self.index,
                leg = id,
                to = to.index,
                "could not forward a command to the leg's new worker"
            );
        }
    }

    fn add(&mut self, mut leg: Leg) {
        let slot = self.free.pop().unwrap_or(self.slots.len());
        if slot == self.slots.len() {
            self.slots.push(None);
            self.free.reserve(self.slots.len());
        }
        let registry = self.poll.registry();
        match registry.register(&mut leg.socket, rtp_token(slot), Interest::READABLE) {
            Ok(()) => leg.registered = true,
            Err(e) => {
                tracing::warn!(parent: &leg.span, error = %e, "cannot poll the RTP socket; reading it at each tick");
                leg.registered = false;
            }
        }
        match registry.register(&mut leg.rtcp_socket, rtcp_token(slot), Interest::READABLE) {
            Ok(()) => leg.rtcp_registered = true,
            Err(e) => {
                tracing::warn!(parent: &leg.span, error = %e, "cannot poll the RTCP socket; reading it at each tick");
                leg.rtcp_registered = false;
            }
        }
        tracing::debug!(parent: &leg.span, worker = self.index, local = %leg.shared.local_addr, "leg started");
        self.slots[slot] = Some(leg);
    }

    /// Slot of the leg with this id (commands are rare: a scan is fine).
    fn find(&self, id: u64) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|l| l.shared.id == id))
    }

    fn bridge(&mut self, a: u64, b: u64, transcode: Option<Box<(Resampler, Resampler)>>) {
        let (Some(i), Some(j)) = (self.find(a), self.find(b)) else {
            tracing::debug!(
                worker = self.index,
                a,
                b,
                "bridge of a leg that is gone; ignored"
            );
            return;
        };
        if i == j || self.slots[i].as_ref().and_then(|l| l.peer) == Some(j) {
            return;
        }
        // A leg is in at most one bridge or conference: earlier partners go
        // back to their prompt.
        self.unbridge(i);
        self.unbridge(j);
        self.leave_conference(i);
        self.leave_conference(j);
        let Some((x, y)) = pair_mut(&mut self.slots, i, j) else {
            return;
        };
        if transcode.is_none() && (x.codec != y.codec || x.frame_samples != y.frame_samples) {
            // The engine sends resamplers for these; never trust it blindly.
            tracing::warn!(parent: &x.span, "relaying bridge of different codecs refused");
            return;
        }
        x.peer = Some(j);
        y.peer = Some(i);
        if let Some(pair) = transcode {
            let (into_x, into_y) = *pair;
            (x.transcode, y.transcode) = (Some(into_x), Some(into_y));
            (x.decode, y.decode) = (true, true);
            tracing::info!(parent: &x.span, peer = %y.shared.label, peer_local = %y.shared.local_addr, codec = x.codec.encoding_name(), peer_codec = y.codec.encoding_name(), "bridged, transcoding");
            return;
        }
        let x_decode = x.needs_own_audio() || y.needs_sent_audio();
        let y_decode = y.needs_own_audio() || x.needs_sent_audio();
        x.decode = x_decode;
        y.decode = y_decode;
        tracing::info!(parent: &x.span, peer = %y.shared.label, peer_local = %y.shared.local_addr, decode = x_decode, peer_decode = y_decode, "bridged");
    }

    /// Cuts slot `i`'s bridge, if any: both legs go back to their prompts.
    fn unbridge(&mut self, i: usize) {
        let Some(j) = self
            .slots
            .get(i)
            .and_then(|s| s.as_ref())
            .and_then(|l| l.peer)
        else {
            return;
        };
        if let Some(Some(x)) = self.slots.get_mut(i) {
            x.leave_bridge();
            tracing::info!(parent: &x.span, "unbridged");
        }
        if let Some(Some(y)) = self.slots.get_mut(j) {
            y.leave_bridge();
            tracing::info!(parent: &y.span, "unbridged");
        }
    }

    /// The leg's peer slot, if that slot really holds a leg (links are kept
    /// mutual; this only makes sure a broken link cannot starve a leg).
    fn live_peer(&self, leg: &Leg) -> Option<usize> {
        leg.peer
            .filter(|&j| matches!(self.slots.get(j), Some(Some(_))))
    }

    /// A leg's socket became readable: drain it (relaying RTP through its
    /// peer; RTCP stays with the leg).
    fn on_readable(&mut self, i: usize, rtcp: bool, now: Instant) {
        let peer = match self.slots.get(i) {
            Some(Some(leg)) => self.live_peer(leg),
            _ => return, // a leg removed since the event was queued
        };
        let buf = &mut self.scratch.recv;
        let drained = std::panic::catch_unwind(AssertUnwindSafe(|| match peer {
            _ if rtcp => {
                if let Some(Some(leg)) = self.slots.get_mut(i) {
                    leg.drain_rtcp(now, buf);
                }
            }
            None => {
                if let Some(Some(leg)) = self.slots.get_mut(i) {
                    leg.drain(now, buf, None);
                }
            }
            Some(j) => {
                if let Some((leg, peer)) = pair_mut(&mut self.slots, i, j) {
                    leg.drain(now, buf, Some(peer));
                }
            }
        }));
        if drained.is_err() {
            self.fail(i, "leg panicked reading its socket; stopping it");
        }
    }

    fn tick_all(&mut self, now: Instant) {
        let force_read = self.poll_failed;
        for i in 0..self.slots.len() {
            let peer = match self.slots.get(i) {
                Some(Some(leg)) if leg.conference.is_none() => self.live_peer(leg),
                _ => continue, // empty, or ticked with its conference
            };
            let s = &mut *self.scratch;
            let slots = &mut self.slots;
            let ticked = std::panic::catch_unwind(AssertUnwindSafe(|| match peer {
                None => {
                    if let Some(Some(leg)) = slots.get_mut(i) {
                        leg.tick(now, s, force_read);
                    }
                }
                Some(j) if j > i => {
                    if let Some((a, b)) = pair_mut(slots, i, j) {
                        tick_pair(a, b, now, s, force_read);
                    }
                }
                Some(_) => {} // ticked with its peer
            }));
            if ticked.is_err() {
                self.fail(i, "leg panicked in its tick; stopping it");
                if let Some(j) = peer {
                    self.fail(j, "bridged leg panicked in its tick; stopping it");
                }
            }
        }
        for c in 0..self.conferences.len() {
            let Some(Some(conf)) = self.conferences.get_mut(c) else {
                continue;
            };
            let s = &mut *self.scratch;
            let slots = &mut self.slots;
            let ticked = std::panic::catch_unwind(AssertUnwindSafe(|| {
                tick_conference(conf, slots, now, s, force_read);
            }));
            if ticked.is_err() {
                let members = conf.slots.clone();
                for i in members {
                    self.fail(i, "conference panicked in its tick; stopping its members");
                }
            }
        }
        if !self.moving.is_empty() {
            self.send_moves(now);
        }
        for i in 0..self.slots.len() {
            if self.slots[i]
                .as_ref()
                .is_some_and(|l| l.shared.stop.load(Relaxed))
            {
                self.remove(i, now);
            }
        }
    }

    /// Marks a leg stopped after a panic; it is removed after the tick.
    fn fail(&self, i: usize, why: &str) {
        if let Some(Some(leg)) = self.slots.get(i) {
            tracing::error!(parent: &leg.span, "{why}");
            leg.shared.stop.store(true, Relaxed);
        }
    }

    /// Takes a stopped leg out: its peer (if any) goes back to its prompt and
    /// no longer relays into this leg's socket, which closes here.
    fn remove(&mut self, i: usize, now: Instant) {
        let Some(leg) = self.detach(i) else {
            return;
        };
        // Not active any more before its report can resolve.
        self.counters.active_legs.fetch_sub(1, Relaxed);
        self.closing.extend(leg.finish(now));
    }

    /// Takes a leg out of its slot, bridge or conference and the poll, and
    /// out of this worker's load; its sockets stay open.
    fn detach(&mut self, i: usize) -> Option<Leg> {
        self.unbridge(i);
        self.leave_conference(i);
        let mut leg = self.slots.get_mut(i).and_then(Option::take)?;
        if leg.registered {
            let _ = self.poll.registry().deregister(&mut leg.socket);
        }
        if leg.rtcp_registered {
            let _ = self.poll.registry().deregister(&mut leg.rtcp_socket);
        }
        (leg.registered, leg.rtcp_registered) = (false, false);
        self.free.push(i);
        self.load.fetch_sub(1, Relaxed);
        Some(leg)
    }

    /// Hands a leg to another worker, which then applies `then`. Commands
    /// for the leg that still reach this worker are forwarded there.
    fn move_to(&mut self, id: u64, to: WorkerLink, then: Vec<Command>) {
        let Some(i) = self.find(id) else {
            return;
        };
        if to.index == self.index {
            // Already here (the handle was stale): just apply what follows.
            for cmd in then {
                self.apply(cmd);
            }
            return;
        }
        let Some(leg) = self.detach(i) else {
            return;
        };
        tracing::debug!(parent: &leg.span, from = self.index, to = to.index, "leg moves to another media worker");
        to.load.fetch_add(1, Relaxed);
        if self.moved.len() == MOVED_MEMORY {
            self.moved.pop_front();
        }
        self.moved.push_back((id, to.clone()));
        self.moving.push(PendingMove {
            leg: Box::new(leg),
            to,
            then,
        });
        self.send_moves(Instant::now());
    }

    /// Sends legs on their way (and the commands that follow each); keeps
    /// those whose worker's queue is full for the next tick. A leg whose
    /// worker is gone (shutdown) is stopped here.
    fn send_moves(&mut self, now: Instant) {
        for mut m in std::mem::take(&mut self.moving) {
            let shared = Arc::clone(&m.leg.shared);
            match m.to.try_send(Command::Add(m.leg)) {
                Ok(()) => {
                    // Only now: until the leg is queued there, its handle's
                    // commands must come here to be forwarded after it.
                    shared.worker.store(m.to.index, Relaxed);
                    for cmd in m.then {
                        if m.to.send_timeout(cmd, Duration::from_millis(5)).is_err() {
                            tracing::warn!(
                                worker = self.index,
                                to = m.to.index,
                                "a command following a moved leg was lost"
                            );
                        }
                    }
                }
                Err(TrySendError::Full(Command::Add(leg))) => {
                    m.leg = leg;
                    self.moving.push(m);
                }
                Err(TrySendError::Disconnected(Command::Add(leg))) => {
                    m.to.load.fetch_sub(1, Relaxed);
                    self.counters.active_legs.fetch_sub(1, Relaxed);
                    self.closing.extend(leg.finish(now));
                }
                Err(_) => {}
            }
        }
    }

    fn create_conference(&mut self, id: u64, label: String, floor_rate: u32) {
        let conference = Conference {
            id,
            label,
            mixer: Mixer::new(samples_per_frame(floor_rate)),
            slots: Vec::new(),
            edges: Vec::new(),
            floor_rate,
            rate: floor_rate,
        };
        tracing::info!(worker = self.index, conference = %conference.label, "conference created");
        match self.conferences.iter().position(Option::is_none) {
            Some(k) => self.conferences[k] = Some(conference),
            None => self.conferences.push(Some(conference)),
        }
    }

    fn conference_index(&self, id: u64) -> Option<usize> {
        self.conferences
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.id == id))
    }

    fn join_conference(&mut self, conference: u64, leg_id: u64, role: Role, edge: MixEdge) {
        let (Some(c), Some(i)) = (self.conference_index(conference), self.find(leg_id)) else {
            tracing::debug!(
                worker = self.index,
                conference,
                leg = leg_id,
                "join of a conference or leg that is gone; ignored"
            );
            return;
        };
        let already = self.slots[i].as_ref().and_then(|l| l.conference);
        if already != Some(c) {
            self.unbridge(i);
            self.leave_conference(i);
        }
        let (Some(Some(leg)), Some(Some(conf))) =
            (self.slots.get_mut(i), self.conferences.get_mut(c))
        else {
            return;
        };
        if samples_per_frame(edge.rate()) != leg.frame_samples {
            // The engine builds the edge from the leg; never trust it blindly.
            tracing::warn!(parent: &leg.span, conference = %conf.label, "conference join with an edge of another rate refused");
            return;
        }
        let k = conf.mixer.join(leg_id, role);
        if k == conf.slots.len() {
            conf.slots.push(i);
            conf.edges.push(edge);
        }
        leg.conference = Some(c);
        leg.decode = true;
        conf.follow_rate();
        tracing::info!(parent: &leg.span, conference = %conf.label, ?role, members = conf.slots.len(), mix_rate = conf.rate, "in conference");
    }

    /// Takes slot `i` out of its conference, if any: back to its prompt.
    fn leave_conference(&mut self, i: usize) {
        let Some(Some(leg)) = self.slots.get_mut(i) else {
            return;
        };
        let Some(c) = leg.conference.take() else {
            return;
        };
        leg.writer.start_talkspurt();
        let id = leg.shared.id;
        if let Some(Some(conf)) = self.conferences.get_mut(c) {
            if let Some(k) = conf.mixer.position(id) {
                conf.mixer.leave(id);
                conf.slots.remove(k);
                conf.edges.remove(k);
            }
            conf.follow_rate();
            tracing::info!(parent: &leg.span, conference = %conf.label, members = conf.slots.len(), mix_rate = conf.rate, "left conference");
        }
    }

    fn end_conference(&mut self, id: u64) {
        let Some(c) = self.conference_index(id) else {
            return;
        };
        let members = self.conferences[c]
            .as_ref()
            .map(|conf| conf.slots.clone())
            .unwrap_or_default();
        for i in members {
            self.leave_conference(i);
        }
        if let Some(conf) = self.conferences[c].take() {
            tracing::info!(worker = self.index, conference = %conf.label, "conference ended");
        }
    }

    /// Shutdown: stop every leg and make sure each recording gets finalized.
    fn stop_all(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            self.remove(i, now);
        }
        for m in std::mem::take(&mut self.moving) {
            m.to.load.fetch_sub(1, Relaxed);
            self.counters.active_legs.fetch_sub(1, Relaxed);
            self.closing.extend(m.leg.finish(now));
        }
        let give_up = Instant::now() + SHUTDOWN_CLOSE_TIMEOUT;
        while !self.closing.is_empty() && Instant::now() < give_up {
            retry_closes(&mut self.closing);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn retry_closes(closing: &mut Vec<(LegRecording, OnFinished)>) {
    for (rec, cb) in std::mem::take(closing) {
        if let Err(back) = rec.close(cb) {
            closing.push(back);
        }
    }
}
