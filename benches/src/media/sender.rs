//! The RTP sender thread: a 20-slot timer wheel (one slot per millisecond
//! of the 20 ms packet period, so sends spread evenly), and one outgoing
//! batch per shared socket.
//!
//! Each millisecond the thread builds every packet due in that slot into
//! its socket's batch and sends each batch with one `sendmmsg`. A probe's
//! send time is stamped as its packet is built, so the latency a receiver
//! computes includes the wait for the rest of the batch and the syscall.

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::Receiver;
use media_core::RtpWriter;

use super::mmsg::{RawAddr, SendBatch};
use super::{tid, Clock, DirSend, Live, MediaSettings, SendSnapshot, Window, PERIOD_NS};
use crate::probe::{Dir, Probe, PAYLOAD_LEN};
use crate::stats::{new_histogram, record};

const SLOTS: u64 = 20;
/// A packet more than this far behind schedule is skipped, not sent: the
/// sender never bursts to catch up.
const SKIP_NS: u64 = 3 * PERIOD_NS;

pub(super) enum SendCmd {
    Start(Box<SendLeg>),
    Stop(usize),
    Snapshot(crossbeam_channel::Sender<SendSnapshot>),
    Shutdown,
}

/// One direction of one call, as the sender drives it.
pub(super) struct SendLeg {
    pub id: usize,
    /// Index of the shared socket it sends from.
    pub sock: usize,
    pub dest: RawAddr,
    pub call: u32,
    pub dir: Dir,
    pub seq: u32,
    pub rtp: RtpWriter,
    pub next_due: u64,
}

/// What to count once the kernel has taken (or refused) a queued packet.
#[derive(Clone, Copy)]
struct Pending {
    dir: Dir,
    /// Sent inside the measurement window.
    counted: bool,
}

/// One socket's batch and the bookkeeping of each packet in it.
#[derive(Default)]
struct Outbox {
    batch: SendBatch,
    pending: Vec<Pending>,
}

/// The sender's per-level accumulators.
struct Tally<'a> {
    live: &'a Live,
    dirs: [DirSend; 2],
}

impl Tally<'_> {
    /// Sends `out`'s batch on `sock` and counts each packet's outcome.
    fn flush(&mut self, out: &mut Outbox, sock: &UdpSocket) {
        if out.batch.is_empty() {
            return;
        }
        let pending = &out.pending;
        let (live, dirs) = (self.live, &mut self.dirs);
        out.batch.flush(sock, |i, ok| {
            let p = pending[i];
            if ok {
                live.sent.fetch_add(1, Ordering::Relaxed);
            }
            if p.counted {
                let d = &mut dirs[p.dir.index()];
                if ok {
                    d.sent += 1;
                } else {
                    d.send_errors += 1;
                }
            }
        });
        out.pending.clear();
    }
}

pub(super) fn sender_loop(
    clock: Clock,
    window: &Window,
    live: &Live,
    settings: MediaSettings,
    socks: &[UdpSocket],
    cmds: Receiver<SendCmd>,
) {
    live.sender_tid.store(tid(), Ordering::Relaxed);
    let mut slots: Vec<Vec<SendLeg>> = (0..SLOTS).map(|_| Vec::new()).collect();
    let mut outboxes: Vec<Outbox> = socks.iter().map(|_| Outbox::default()).collect();
    let mut tally = Tally {
        live,
        dirs: Default::default(),
    };
    let mut lateness = new_histogram();
    let mut payload = [0u8; PAYLOAD_LEN];
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
                        dirs: std::mem::take(&mut tally.dirs),
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
                    // A packet belongs to the window it is handled (sent or
                    // skipped) in, as the receiver judges by send time: so
                    // due = sent + skipped + errors holds at the edges too.
                    let send_ns = clock.now_ns();
                    let counted = send_ns >= win_start && send_ns < win_end;
                    if counted {
                        tally.dirs[leg.dir.index()].due += 1;
                    }
                    let late = send_ns.saturating_sub(due);
                    let seq = leg.seq;
                    leg.seq = leg.seq.wrapping_add(1);
                    if late > SKIP_NS {
                        leg.rtp.skip();
                        if counted {
                            tally.dirs[leg.dir.index()].skipped += 1;
                        }
                        continue;
                    }
                    let out = &mut outboxes[leg.sock];
                    if out.batch.is_full() {
                        tally.flush(out, &socks[leg.sock]);
                    }
                    Probe {
                        run: settings.run,
                        call: leg.call,
                        dir: leg.dir,
                        seq,
                        send_ns,
                    }
                    .encode(&mut payload);
                    let Ok(len) = leg.rtp.write(&payload, out.batch.next_buf()) else {
                        if counted {
                            tally.dirs[leg.dir.index()].send_errors += 1;
                        }
                        continue;
                    };
                    out.batch.commit(len, leg.dest);
                    out.pending.push(Pending {
                        dir: leg.dir,
                        counted,
                    });
                    if late > settings.max_late_ns {
                        live.late.fetch_add(1, Ordering::Relaxed);
                    }
                    if counted {
                        if late > settings.max_late_ns {
                            tally.dirs[leg.dir.index()].late += 1;
                        }
                        record(&mut lateness, late);
                    }
                }
            }
        }
        for (out, sock) in outboxes.iter_mut().zip(socks) {
            tally.flush(out, sock);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_counts_each_outcome() {
        let live = Live::default();
        let mut tally = Tally {
            live: &live,
            dirs: Default::default(),
        };
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = RawAddr::new(rx.local_addr().unwrap());
        let mut out = Outbox::default();
        for (dir, counted) in [(Dir::AToB, true), (Dir::BToA, true), (Dir::BToA, false)] {
            out.batch.next_buf()[0] = 0x80;
            out.batch.commit(1, dest);
            out.pending.push(Pending { dir, counted });
        }
        tally.flush(&mut out, &tx);
        assert_eq!(live.sent.load(Ordering::Relaxed), 3);
        assert_eq!(tally.dirs[0].sent, 1);
        assert_eq!(
            tally.dirs[1].sent, 1,
            "the uncounted one is not in the window"
        );
        assert!(out.pending.is_empty() && out.batch.is_empty());
    }
}
