//! The RTP plane: one sender thread driving every leg from a 20-slot timer
//! wheel (one slot per millisecond of the 20 ms packet period), one
//! receiver thread reading every leg's socket through epoll (mio).
//!
//! Signalling threads open legs (a socket each, on loopback) through a
//! [`MediaHandle`], start them sending once they know where to, and close
//! them. Both media threads keep per-level accumulators that the controller
//! takes (and resets) with a snapshot at the end of each level's
//! measurement window.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use hdrhistogram::Histogram;
use media_core::rtp::RtpPacket;
use media_core::RtpWriter;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::probe::{Dir, Probe, PAYLOAD_LEN};
use crate::stats::{new_histogram, record, Arrival, StreamStats};

/// Packet period.
pub const PERIOD_NS: u64 = 20_000_000;
const SLOTS: u64 = 20;
/// A packet more than this far behind schedule is skipped, not sent: the
/// sender never bursts to catch up.
const SKIP_NS: u64 = 3 * PERIOD_NS;

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
    /// Probes that arrived on another call's or direction's socket.
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

enum SendCmd {
    Start(Box<SendLeg>),
    Stop(usize),
    Snapshot(Sender<SendSnapshot>),
    Shutdown,
}

enum RecvCmd {
    Add(usize, Box<RecvLeg>),
    Remove(usize),
    Snapshot(Sender<RecvSnapshot>),
    Shutdown,
}

struct SendLeg {
    id: usize,
    sock: Arc<UdpSocket>,
    dest: SocketAddr,
    call: u32,
    dir: Dir,
    seq: u32,
    rtp: RtpWriter,
    next_due: u64,
}

struct RecvLeg {
    sock: Arc<UdpSocket>,
    call: u32,
    dir: Dir,
    stats: StreamStats,
}

/// One leg's RTP socket.
#[derive(Clone, Debug)]
pub struct Leg {
    pub id: usize,
    pub port: u16,
    sock: Arc<UdpSocket>,
}

/// How signalling threads open, start and close legs.
#[derive(Clone)]
pub struct MediaHandle {
    send: Sender<SendCmd>,
    recv: Sender<RecvCmd>,
    registry: Arc<Registry>,
    next_id: Arc<AtomicUsize>,
    local_ip: IpAddr,
}

impl MediaHandle {
    /// Binds a socket and starts receiving on it: `call`'s packets in `rx`.
    pub fn open_leg(&self, call: u32, rx: Dir) -> io::Result<Leg> {
        let sock = UdpSocket::bind(SocketAddr::new(self.local_ip, 0))?;
        sock.set_nonblocking(true)?;
        let port = sock.local_addr()?.port();
        let sock = Arc::new(sock);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let leg = RecvLeg {
            sock: sock.clone(),
            call,
            dir: rx,
            stats: StreamStats::default(),
        };
        // The receiver learns the socket before epoll can report it.
        self.recv
            .send(RecvCmd::Add(id, Box::new(leg)))
            .map_err(|_| io::Error::other("receiver thread gone"))?;
        let fd = sock.as_raw_fd();
        self.registry
            .register(&mut SourceFd(&fd), Token(id), Interest::READABLE)?;
        Ok(Leg { id, port, sock })
    }

    /// Starts sending `call`'s `tx` direction from `leg` to `dest`.
    pub fn start_sending(&self, leg: &Leg, dest: SocketAddr, call: u32, tx: Dir) {
        let send = SendLeg {
            id: leg.id,
            sock: leg.sock.clone(),
            dest,
            call,
            dir: tx,
            seq: 0,
            rtp: RtpWriter::new(0, 160),
            next_due: 0,
        };
        let _ = self.send.send(SendCmd::Start(Box::new(send)));
    }

    /// Stops sending and receiving; the socket closes once both threads
    /// drop it.
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
        let poll = Poll::new()?;
        let registry = Arc::new(poll.registry().try_clone()?);
        let (send_tx, send_rx) = unbounded();
        let (recv_tx, recv_rx) = unbounded();
        let sender = {
            let (window, live) = (window.clone(), live.clone());
            std::thread::Builder::new()
                .name("bench-rtp-tx".into())
                .spawn(move || sender_loop(clock, &window, &live, settings, send_rx))?
        };
        let receiver = std::thread::Builder::new()
            .name("bench-rtp-rx".into())
            .spawn(move || receiver_loop(clock, &window, &live, settings, poll, recv_rx))?;
        Ok(Media {
            handle: MediaHandle {
                send: send_tx,
                recv: recv_tx,
                registry,
                next_id: Arc::new(AtomicUsize::new(0)),
                local_ip: settings.local_ip,
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

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

fn sender_loop(
    clock: Clock,
    window: &Window,
    live: &Live,
    settings: MediaSettings,
    cmds: Receiver<SendCmd>,
) {
    live.sender_tid.store(tid(), Ordering::Relaxed);
    let mut slots: Vec<Vec<SendLeg>> = (0..SLOTS).map(|_| Vec::new()).collect();
    let mut dirs: [DirSend; 2] = Default::default();
    let mut lateness = new_histogram();
    let mut payload = [0u8; PAYLOAD_LEN];
    let mut packet = [0u8; 12 + PAYLOAD_LEN];
    let mut last_ms = clock.now_ns() / 1_000_000;
    loop {
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                SendCmd::Start(mut leg) => {
                    // Due on the next millisecond; that fixes the leg's slot.
                    let due_ms = clock.now_ns() / 1_000_000 + 1;
                    leg.next_due = due_ms * 1_000_000;
                    slots[(due_ms % SLOTS) as usize].push(*leg);
                }
                SendCmd::Stop(id) => {
                    for slot in &mut slots {
                        slot.retain(|l| l.id != id);
                    }
                }
                SendCmd::Snapshot(reply) => {
                    let snap = SendSnapshot {
                        dirs: std::mem::take(&mut dirs),
                        lateness: std::mem::replace(&mut lateness, new_histogram()),
                    };
                    let _ = reply.send(snap);
                }
                SendCmd::Shutdown => return,
            }
        }
        let now = clock.now_ns();
        let now_ms = now / 1_000_000;
        let (win_start, win_end) = window.bounds();
        // Every slot whose millisecond has come, at most one lap.
        let first = if now_ms - last_ms > SLOTS {
            now_ms - SLOTS + 1
        } else {
            last_ms + 1
        };
        for ms in first..=now_ms {
            for leg in &mut slots[(ms % SLOTS) as usize] {
                // Bounded: a leg is at most a lap and a few periods behind.
                for _ in 0..8 {
                    if leg.next_due > now {
                        break;
                    }
                    let due = leg.next_due;
                    leg.next_due += PERIOD_NS;
                    let in_win = due >= win_start && due < win_end;
                    let d = &mut dirs[leg.dir.index()];
                    if in_win {
                        d.due += 1;
                    }
                    let send_ns = clock.now_ns();
                    let late = send_ns.saturating_sub(due);
                    let seq = leg.seq;
                    leg.seq = leg.seq.wrapping_add(1);
                    if late > SKIP_NS {
                        leg.rtp.skip();
                        if in_win {
                            d.skipped += 1;
                        }
                        continue;
                    }
                    Probe {
                        run: settings.run,
                        call: leg.call,
                        dir: leg.dir,
                        seq,
                        send_ns,
                    }
                    .encode(&mut payload);
                    let Ok(len) = leg.rtp.write(&payload, &mut packet) else {
                        continue;
                    };
                    let ok = leg.sock.send_to(&packet[..len], leg.dest).is_ok();
                    let counted = send_ns >= win_start && send_ns < win_end;
                    if ok {
                        live.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    if late > settings.max_late_ns {
                        live.late.fetch_add(1, Ordering::Relaxed);
                    }
                    if counted {
                        if ok {
                            d.sent += 1;
                        } else {
                            d.send_errors += 1;
                        }
                        if late > settings.max_late_ns {
                            d.late += 1;
                        }
                        record(&mut lateness, late);
                    }
                }
            }
        }
        last_ms = now_ms;
        // Sleep to the next millisecond boundary.
        let next = (now_ms + 1) * 1_000_000;
        let now = clock.now_ns();
        if next > now {
            std::thread::sleep(Duration::from_nanos(next - now));
        }
    }
}

fn receiver_loop(
    clock: Clock,
    window: &Window,
    live: &Live,
    settings: MediaSettings,
    mut poll: Poll,
    cmds: Receiver<RecvCmd>,
) {
    live.receiver_tid.store(tid(), Ordering::Relaxed);
    let mut legs: std::collections::HashMap<usize, RecvLeg> = Default::default();
    let mut dirs: [DirRecv; 2] = Default::default();
    let mut foreign = 0u64;
    let mut second = new_histogram();
    let mut second_start = clock.now_ns();
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 2048];
    loop {
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                RecvCmd::Add(id, leg) => {
                    legs.insert(id, *leg);
                }
                RecvCmd::Remove(id) => {
                    if let Some(leg) = legs.remove(&id) {
                        let fd = leg.sock.as_raw_fd();
                        let _ = poll.registry().deregister(&mut SourceFd(&fd));
                    }
                }
                RecvCmd::Snapshot(reply) => {
                    let mut snap = RecvSnapshot {
                        dirs: std::mem::take(&mut dirs),
                        foreign: std::mem::take(&mut foreign),
                    };
                    for leg in legs.values() {
                        let d = &mut snap.dirs[leg.dir.index()];
                        d.jitter_sum_ns += leg.stats.jitter_ns;
                        d.jitter_max_ns = d.jitter_max_ns.max(leg.stats.jitter_ns);
                        d.streams += 1;
                    }
                    let _ = reply.send(snap);
                }
                RecvCmd::Shutdown => return,
            }
        }
        if poll
            .poll(&mut events, Some(Duration::from_millis(5)))
            .is_err()
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (win_start, win_end) = window.bounds();
        for event in events.iter() {
            let Some(leg) = legs.get_mut(&event.token().0) else {
                continue;
            };
            // Edge-triggered: drain until the socket would block (bounded:
            // a socket buffer holds far fewer packets).
            for _ in 0..10_000 {
                let Ok((len, _from)) = leg.sock.recv_from(&mut buf) else {
                    break;
                };
                let now = clock.now_ns();
                let probe = RtpPacket::parse(&buf[..len])
                    .ok()
                    .and_then(|p| Probe::decode(p.payload))
                    .filter(|p| p.run == settings.run);
                let Some(probe) = probe else {
                    foreign += 1;
                    continue;
                };
                let in_win = probe.send_ns >= win_start && probe.send_ns < win_end;
                let d = &mut dirs[probe.dir.index()];
                if probe.call != leg.call || probe.dir != leg.dir {
                    if in_win {
                        d.misrouted += 1;
                    }
                    continue;
                }
                let latency = now.saturating_sub(probe.send_ns);
                let arrival = leg.stats.on_packet(probe.seq, probe.send_ns, now);
                match arrival {
                    Arrival::Duplicate => {
                        if in_win {
                            d.duplicates += 1;
                        }
                        continue;
                    }
                    Arrival::New { gap } => {
                        live.gaps.fetch_add(i64::from(gap), Ordering::Relaxed);
                    }
                    Arrival::Reordered => {
                        live.gaps.fetch_sub(1, Ordering::Relaxed);
                        if in_win {
                            d.reordered += 1;
                        }
                    }
                    Arrival::TooOld => {
                        if in_win {
                            d.reordered += 1;
                        }
                    }
                }
                live.received.fetch_add(1, Ordering::Relaxed);
                record(&mut second, latency);
                if in_win {
                    d.received += 1;
                    record(&mut d.latency, latency);
                }
            }
        }
        let now = clock.now_ns();
        if now - second_start >= 1_000_000_000 {
            live.p99_ns
                .store(second.value_at_quantile(0.99), Ordering::Relaxed);
            second.reset();
            second_start = now;
        }
    }
}
