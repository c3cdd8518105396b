//! The RTP receiver thread: every millisecond it drains every shared socket
//! with `recvmmsg` and hands each probe to its stream, found by the call
//! number and direction the probe carries.
//!
//! Why a tick and not epoll: with epoll, each datagram queued while the
//! receiver sleeps wakes it, and on loopback that wake-up (a cross-CPU
//! interrupt) is paid by the *sending* thread, per packet, inside its send
//! syscall; at a few hundred calls that was the tool's largest cost. On a
//! tick nobody waits on the sockets, so queueing a datagram wakes no one.
//! The arrival time is the kernel's receive timestamp (`SO_TIMESTAMPNS`,
//! taken when the datagram was queued on the socket), so reading it up to
//! a tick later does not change the latency measured.
//!
//! A probe counts for its stream only if it arrived on that stream's
//! socket. One that reached another socket (the other side's, or another
//! call's when a side has several), or that names no open stream, is
//! *misrouted*: not received, so lost in the accounting.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::mmsg::{realtime_ns, RecvBatch, BATCH};
use super::{tid, Clock, DirRecv, Live, MediaSettings, RecvSnapshot, Window};
use crate::probe::{Dir, Probe};
use crate::stats::{new_histogram, record, Arrival, StreamStats};
use crossbeam_channel::Receiver;
use hdrhistogram::Histogram;
use media_core::rtp::RtpPacket;

pub(super) enum RecvCmd {
    Add(usize, Box<RecvLeg>),
    Remove(usize),
    Snapshot(crossbeam_channel::Sender<RecvSnapshot>),
    Shutdown,
}

/// One direction of one call, as the receiver sees it.
pub(super) struct RecvLeg {
    /// Index of the shared socket its probes must arrive on.
    pub sock: usize,
    pub call: u32,
    pub dir: Dir,
    pub stats: StreamStats,
}

/// The receiver's state between wake-ups.
struct Demux<'a> {
    clock: Clock,
    window: &'a Window,
    live: &'a Live,
    run: u16,
    /// Open streams by (call, direction received), with the leg id that
    /// opened each (a later leg of the same call and direction replaces
    /// it, and a stale `Remove` must not drop the newer one).
    streams: HashMap<(u32, Dir), (usize, RecvLeg)>,
    /// Leg id → its stream's key, so a close finds it without a scan.
    keys: HashMap<usize, (u32, Dir)>,
    dirs: [DirRecv; 2],
    foreign: u64,
    /// Latencies of the current second, for the progress line.
    second: Histogram<u64>,
    second_start: u64,
}

/// What applying the pending commands asked for.
enum Flow {
    Go,
    Stop,
}

impl Demux<'_> {
    fn apply(&mut self, cmds: &Receiver<RecvCmd>) -> Flow {
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                RecvCmd::Add(id, leg) => {
                    let key = (leg.call, leg.dir);
                    self.keys.insert(id, key);
                    if let Some((old, _)) = self.streams.insert(key, (id, *leg)) {
                        self.keys.remove(&old);
                    }
                }
                RecvCmd::Remove(id) => {
                    if let Some(key) = self.keys.remove(&id) {
                        self.streams.remove(&key);
                    }
                }
                RecvCmd::Snapshot(reply) => {
                    let mut snap = RecvSnapshot {
                        dirs: std::mem::take(&mut self.dirs),
                        foreign: std::mem::take(&mut self.foreign),
                    };
                    for (_, leg) in self.streams.values() {
                        let d = &mut snap.dirs[leg.dir.index()];
                        d.jitter_sum_ns += leg.stats.jitter_ns;
                        d.jitter_max_ns = d.jitter_max_ns.max(leg.stats.jitter_ns);
                        d.streams += 1;
                    }
                    let _ = reply.send(snap);
                }
                RecvCmd::Shutdown => return Flow::Stop,
            }
        }
        Flow::Go
    }

    /// Classifies one datagram that arrived on socket `sock` at `now`
    /// (clock ns).
    /// `cmds` is consulted when the probe names no open stream: the
    /// signalling thread announces a leg before its SDP goes out, but the
    /// announcement may still be queued when the first packet is read.
    fn on_datagram(
        &mut self,
        data: &[u8],
        sock: usize,
        now: u64,
        cmds: &Receiver<RecvCmd>,
    ) -> Flow {
        let probe = RtpPacket::parse(data)
            .ok()
            .and_then(|p| Probe::decode(p.payload))
            .filter(|p| p.run == self.run);
        let Some(probe) = probe else {
            self.foreign += 1;
            return Flow::Go;
        };
        let key = (probe.call, probe.dir);
        if !self.streams.contains_key(&key) {
            if let Flow::Stop = self.apply(cmds) {
                return Flow::Stop;
            }
        }
        let (win_start, win_end) = self.window.bounds();
        let in_win = probe.send_ns >= win_start && probe.send_ns < win_end;
        let d = &mut self.dirs[probe.dir.index()];
        let Some((_, leg)) = self.streams.get_mut(&key).filter(|(_, l)| l.sock == sock) else {
            if in_win {
                d.misrouted += 1;
            }
            return Flow::Go;
        };
        let latency = now.saturating_sub(probe.send_ns);
        match leg.stats.on_packet(probe.seq, probe.send_ns, now) {
            Arrival::Duplicate => {
                if in_win {
                    d.duplicates += 1;
                }
                return Flow::Go;
            }
            Arrival::New { gap } => {
                self.live.gaps.fetch_add(i64::from(gap), Ordering::Relaxed);
            }
            Arrival::Reordered => {
                self.live.gaps.fetch_sub(1, Ordering::Relaxed);
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
        self.live.received.fetch_add(1, Ordering::Relaxed);
        record(&mut self.second, latency);
        if in_win {
            d.received += 1;
            record(&mut d.latency, latency);
        }
        Flow::Go
    }

    fn tick_second(&mut self) {
        let now = self.clock.now_ns();
        if now - self.second_start >= 1_000_000_000 {
            self.live
                .p99_ns
                .store(self.second.value_at_quantile(0.99), Ordering::Relaxed);
            self.second.reset();
            self.second_start = now;
        }
    }
}

/// How often the sockets are drained.
const TICK_NS: u64 = 1_000_000;

pub(super) fn receiver_loop(
    clock: Clock,
    window: &Window,
    live: &Live,
    settings: MediaSettings,
    socks: &[UdpSocket],
    cmds: Receiver<RecvCmd>,
) {
    live.receiver_tid.store(tid(), Ordering::Relaxed);
    let mut rx = Demux {
        clock,
        window,
        live,
        run: settings.run,
        streams: HashMap::new(),
        keys: HashMap::new(),
        dirs: Default::default(),
        foreign: 0,
        second: new_histogram(),
        second_start: clock.now_ns(),
    };
    let mut batch = RecvBatch::default();
    loop {
        if let Flow::Stop = rx.apply(&cmds) {
            return;
        }
        for (i, sock) in socks.iter().enumerate() {
            // Until a short batch says the socket is empty (bounded: a
            // socket buffer holds far fewer packets).
            for _ in 0..4096 {
                let Ok(got) = batch.recv(sock) else {
                    break;
                };
                // Each datagram arrived `real - stamp` ago.
                let (now, real) = (clock.now_ns(), realtime_ns());
                for k in 0..got {
                    let age = batch.stamp(k).map_or(0, |t| real.saturating_sub(t));
                    let arrived = now.saturating_sub(age);
                    if let Flow::Stop = rx.on_datagram(batch.get(k), i, arrived, &cmds) {
                        return;
                    }
                }
                if got < BATCH {
                    break;
                }
            }
        }
        rx.tick_second();
        let now = clock.now_ns();
        // Half a tick after the sender's: its burst is queued by then.
        let next = (now / TICK_NS + 1) * TICK_NS + TICK_NS / 2;
        std::thread::sleep(Duration::from_nanos(next - now));
    }
}
