//! The RTP plane: a few UDP sockets shared by every leg ([`pool`]), one
//! sender thread that drives every leg from a timer wheel and sends in
//! batches ([`sender`]), and one receiver thread that drains the sockets in
//! batches and sorts packets into streams by their probe ([`receiver`]);
//! [`mmsg`] is the batched syscall layer.
//!
//! Signalling threads open legs (each gets a shared socket's port for its
//! SDP) through a [`MediaHandle`], start them sending once they know where
//! to, and close them. Both media threads keep per-level accumulators that
//! the controller takes (and resets) with a snapshot at the end of each
//! level's measurement window.

mod mmsg;
mod pool;
mod receiver;
mod sender;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Sender};
use hdrhistogram::Histogram;
use media_core::RtpWriter;

use crate::probe::Dir;
use crate::stats::{new_histogram, StreamStats};
use mmsg::RawAddr;
use pool::Pool;
use receiver::{RecvCmd, RecvLeg};
use sender::{SendCmd, SendLeg};

/// Packet period.
pub const PERIOD_NS: u64 = 20_000_000;

/// The run's monotonic clock: ns since the tool started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn instant(&self, ns: u64) -> Instant {
        self.start + Duration::from_nanos(ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// The measurement window, [start, end) in clock ns. Set ahead of time so
/// sender and receiver classify every packet the same way.
#[derive(Debug)]
pub struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Window {
    pub fn closed() -> Window {
        Window {
            start: AtomicU64::new(u64::MAX),
            end: AtomicU64::new(u64::MAX),
        }
    }

    pub fn set(&self, start: u64, end: u64) {
        self.end.store(end, Ordering::SeqCst);
        self.start.store(start, Ordering::SeqCst);
    }

    pub fn close(&self) {
        self.start.store(u64::MAX, Ordering::SeqCst);
    }

    fn bounds(&self) -> (u64, u64) {
        (
            self.start.load(Ordering::SeqCst),
            self.end.load(Ordering::SeqCst),
        )
    }
}

/// Counters the progress line reads.
#[derive(Debug, Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Sequence gaps opened minus gaps filled late: a running loss estimate.
    pub gaps: AtomicI64,
    /// p99 latency of the last second, ns.
    pub p99_ns: AtomicU64,
    pub late: AtomicU64,
    pub sender_tid: AtomicI32,
    pub receiver_tid: AtomicI32,
}

/// What the sender did in one direction during the window.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DirSend {
    /// Packets the schedule called for.
    pub due: u64,
    /// Packets that went out.
    pub sent: u64,
    /// Due but skipped: more than 60 ms behind schedule.
    pub skipped: u64,
    /// Sent, but later than the lateness limit after their due time.
    pub late: u64,
    /// `send_to` failed (buffer full, peer port closed).
    pub send_errors: u64,
}

pub struct SendSnapshot {
    pub dirs: [DirSend; 2],
    /// How late each send was behind its due time, ns.
    pub lateness: Histogram<u64>,
}

pub struct DirRecv {
    /// Unique probes received (duplicates excluded).
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Probes that arrived on a socket other than their stream's (the
    /// other side's, or another of their side's), or for a call and
    /// direction with no open stream.
    pub misrouted: u64,
    pub latency: Histogram<u64>,
    pub jitter_sum_ns: f64,
    pub jitter_max_ns: f64,
    pub streams: u64,
}

impl Default for DirRecv {
    fn default() -> Self {
        DirRecv {
            received: 0,
            duplicates: 0,
            reordered: 0,
            misrouted: 0,
            latency: new_histogram(),
            jitter_sum_ns: 0.0,
            jitter_max_ns: 0.0,
            streams: 0,
        }
    }
}

pub struct RecvSnapshot {
    pub dirs: [DirRecv; 2],
    /// Datagrams without an intact probe of this run (e.g. an engine's own
    /// prompt audio, or probes from an earlier run).
    pub foreign: u64,
}

/// One leg's RTP endpoint: a shared socket, advertised in the leg's SDP.
#[derive(Clone, Debug)]
pub struct Leg {
    pub id: usize,
    /// The port to put in the leg's SDP.
    pub port: u16,
    /// Index of the shared socket in the pool.
    sock: usize,
}

/// How signalling threads open, start and close legs.
#[derive(Clone)]
pub struct MediaHandle {
    send: Sender<SendCmd>,
    recv: Sender<RecvCmd>,
    /// Port of each shared socket, by index.
    ports: Arc<[u16]>,
    pool: Arc<Pool>,
    next_id: Arc<AtomicUsize>,
}

impl MediaHandle {
    /// Assigns the leg a shared socket and starts receiving `call`'s
    /// packets in `rx` on it. Fails only if the receiver thread is gone.
    pub fn open_leg(&self, call: u32, rx: Dir) -> io::Result<Leg> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // By call number, not leg id: ids alternate between the sides in
        // rtpengine mode, which would leave half of each side's sockets idle.
        let sock = self.pool.pick(rx, call as usize);
        let leg = RecvLeg {
            sock,
            call,
            dir: rx,
            stats: StreamStats::default(),
        };
        // Queued before the SDP naming the port goes out, so the receiver
        // knows the stream by the time its first packet can arrive.
        self.recv
            .send(RecvCmd::Add(id, Box::new(leg)))
            .map_err(|_| io::Error::other("receiver thread gone"))?;
        Ok(Leg {
            id,
            port: self.ports[sock],
            sock,
        })
    }

    /// Starts sending `call`'s `tx` direction from `leg`'s socket to `dest`.
    pub fn start_sending(&self, leg: &Leg, dest: SocketAddr, call: u32, tx: Dir) {
        let send = SendLeg {
            id: leg.id,
            sock: leg.sock,
            dest: RawAddr::new(dest),
            call,
            dir: tx,
            seq: 0,
            rtp: RtpWriter::new(0, 160),
            next_due: 0,
        };
        let _ = self.send.send(SendCmd::Start(Box::new(send)));
    }

    /// Stops sending and receiving for the leg; the shared socket stays.
    pub fn close_leg(&self, leg: &Leg) {
        let _ = self.send.send(SendCmd::Stop(leg.id));
        let _ = self.recv.send(RecvCmd::Remove(leg.id));
    }
}

/// Settings of the media threads.
#[derive(Clone, Copy, Debug)]
pub struct MediaSettings {
    pub run: u16,
    pub local_ip: IpAddr,
    /// A send later than this behind schedule counts against the tool.
    pub max_late_ns: u64,
    /// Shared RTP sockets per side (calling legs, called legs).
    pub rtp_sockets: usize,
}

/// The running media threads.
pub struct Media {
    handle: MediaHandle,
    run: u16,
    sender: Option<JoinHandle<()>>,
    receiver: Option<JoinHandle<()>>,
}

impl Media {
    pub fn start(
        clock: Clock,
        window: Arc<Window>,
        live: Arc<Live>,
        settings: MediaSettings,
    ) -> io::Result<Media> {
        let pool = Arc::new(Pool::bind(settings.local_ip, settings.rtp_sockets)?);
        let ports = (0..pool.sockets().len())
            .map(|i| pool.port(i))
            .collect::<io::Result<Arc<[u16]>>>()?;
        let (send_tx, send_rx) = unbounded();
        let (recv_tx, recv_rx) = unbounded();
        let sender = {
            let (window, live, pool) = (window.clone(), live.clone(), pool.clone());
            std::thread::Builder::new()
                .name("bench-rtp-tx".into())
                .spawn(move || {
                    sender::sender_loop(clock, &window, &live, settings, pool.sockets(), send_rx)
                })?
        };
        let receiver = {
            let pool = pool.clone();
            std::thread::Builder::new()
                .name("bench-rtp-rx".into())
                .spawn(move || {
                    receiver::receiver_loop(
                        clock,
                        &window,
                        &live,
                        settings,
                        pool.sockets(),
                        recv_rx,
                    )
                })?
        };
        Ok(Media {
            handle: MediaHandle {
                send: send_tx,
                recv: recv_tx,
                ports,
                pool,
                next_id: Arc::new(AtomicUsize::new(0)),
            },
            run: settings.run,
            sender: Some(sender),
            receiver: Some(receiver),
        })
    }

    pub fn handle(&self) -> MediaHandle {
        self.handle.clone()
    }

    /// The run id the probes carry.
    pub fn run(&self) -> u16 {
        self.run
    }

    /// Takes and resets both threads' accumulators.
    pub fn snapshot(&self) -> Option<(SendSnapshot, RecvSnapshot)> {
        let (stx, srx) = bounded(1);
        let (rtx, rrx) = bounded(1);
        self.handle.send.send(SendCmd::Snapshot(stx)).ok()?;
        self.handle.recv.send(RecvCmd::Snapshot(rtx)).ok()?;
        let wait = Duration::from_secs(5);
        Some((srx.recv_timeout(wait).ok()?, rrx.recv_timeout(wait).ok()?))
    }

    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.handle.send.send(SendCmd::Shutdown);
        let _ = self.handle.recv.send(RecvCmd::Shutdown);
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
        if let Some(t) = self.receiver.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Media {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}
