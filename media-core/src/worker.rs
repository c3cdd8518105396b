//! Media worker threads and the legs they own.
//!
//! A worker owns its legs for their whole life: it alone touches their
//! sockets, jitter buffers and codecs, so the media path needs no locks.
//! Every 20 ms (absolute deadlines, so no drift) it applies queued commands,
//! then ticks each leg: drain the socket, play one frame out of the jitter
//! buffer, produce and send one frame of prompt audio, feed taps and the
//! recorder. All per-tick buffers are the worker's [`Scratch`], allocated
//! once, so a tick allocates nothing.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::codec::Codec;
use crate::frame::{frame_duration, MAX_FRAME_SAMPLES};
use crate::jitter::{JitterBuffer, Playout};
use crate::leg::{LegReport, LegShared, LegStats};
use crate::player::PromptPlayer;
use crate::plc::Concealer;
use crate::recorder::{Finished, LegRecording, OnFinished};
use crate::rtp::{RtpPacket, RtpWriter, RTP_HEADER_LEN};
use crate::tap::TapSet;

/// Datagrams read per leg per tick; a flood beyond this waits in (or is
/// dropped by) the kernel instead of starving the worker's other legs.
pub(crate) const MAX_PACKETS_PER_TICK: usize = 32;

/// Largest datagram read; longer ones are truncated and fail to parse.
const RECV_BUF: usize = 1_500;

/// If a worker falls further behind than this many ticks it re-anchors its
/// schedule instead of bursting to catch up.
const MAX_CATCH_UP_TICKS: u32 = 5;

/// How long a shutting-down worker keeps retrying recorder close requests.
const SHUTDOWN_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) enum Command {
    Add(Box<Leg>),
    SetRemote { id: u64, remote: SocketAddr },
    Shutdown,
}

/// A worker's reusable per-tick buffers.
struct Scratch {
    recv: [u8; RECV_BUF],
    inbound: [i16; MAX_FRAME_SAMPLES],
    outbound: [i16; MAX_FRAME_SAMPLES],
    payload: [u8; MAX_FRAME_SAMPLES],
    packet: [u8; RTP_HEADER_LEN + MAX_FRAME_SAMPLES],
}

/// One leg as the worker sees it. Built on the control thread by the
/// engine, then moved to its worker.
pub(crate) struct Leg {
    pub(crate) shared: Arc<LegShared>,
    pub(crate) span: tracing::Span,
    pub(crate) socket: UdpSocket,
    pub(crate) codec: Codec,
    pub(crate) payload_type: u8,
    pub(crate) telephone_event_pt: Option<u8>,
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
}

impl Leg {
    fn tick(&mut self, now: Instant, s: &mut Scratch) {
        self.receive(now, s);
        let n = self.frame_samples;

        let inbound = &mut s.inbound[..n];
        match self.jitter.pop(now) {
            Playout::Frame(payload) => {
                let k = self.codec.decode(payload, inbound);
                inbound[k..].fill(0);
                self.plc.good(inbound);
            }
            Playout::Lost => self.plc.conceal(inbound),
            Playout::Empty => self.plc.silence(inbound),
        }
        if let Some(taps) = &mut self.inbound_taps {
            self.stats.tap_frames_dropped += taps.feed(inbound, self.jitter.playout_timestamp());
        }

        let outbound = &mut s.outbound[..n];
        self.player.next_frame(outbound);
        let out_ts = self.writer.next_header().timestamp;
        self.send(outbound, &mut s.payload, &mut s.packet);
        if let Some(taps) = &mut self.outbound_taps {
            self.stats.tap_frames_dropped += taps.feed(outbound, out_ts);
        }
        if let Some(rec) = &mut self.recording {
            if !rec.write_frame(&s.inbound[..n], outbound) {
                self.stats.record_frames_dropped += 1;
            }
        }
        self.publish_stats();
    }

    fn receive(&mut self, now: Instant, s: &mut Scratch) {
        for _ in 0..MAX_PACKETS_PER_TICK {
            match self.socket.recv_from(&mut s.recv) {
                Ok((len, src)) => {
                    let datagram = s.recv.get(..len).unwrap_or(&[]);
                    self.on_datagram(now, datagram, src);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // ICMP errors surface here on some platforms; nothing to read.
                Err(_) => break,
            }
        }
    }

    fn on_datagram(&mut self, now: Instant, datagram: &[u8], src: SocketAddr) {
        self.stats.packets_received += 1;
        self.stats.bytes_received += datagram.len() as u64;
        let Ok(packet) = RtpPacket::parse(datagram) else {
            self.stats.packets_invalid += 1;
            return;
        };
        let is_dtmf = self.telephone_event_pt == Some(packet.payload_type);
        if !is_dtmf && packet.payload_type != self.payload_type {
            self.stats.packets_invalid += 1;
            return;
        }
        if self.latched && self.remote != Some(src) {
            self.stats.packets_invalid += 1;
            return;
        }
        if !self.latched {
            self.latch(src);
        }
        if is_dtmf {
            self.stats.dtmf_packets += 1;
            return;
        }
        // The jitter buffer counts what it refuses; publish_stats copies it.
        self.jitter.push_rtp(now, &packet);
    }

    /// Symmetric RTP: answer wherever the far end actually sends from.
    fn latch(&mut self, src: SocketAddr) {
        if self.remote != Some(src) {
            tracing::info!(parent: &self.span, sdp_remote = ?self.remote, %src, "latching RTP to packet source");
        }
        self.remote = Some(src);
        self.latched = true;
    }

    fn send(&mut self, pcm: &[i16], payload_buf: &mut [u8], packet_buf: &mut [u8]) {
        let Some(remote) = self.remote else {
            // Nobody to send to: media time runs on, the sequence does not.
            self.writer.skip();
            return;
        };
        let len = self.codec.encode(pcm, payload_buf);
        let payload = payload_buf.get(..len).unwrap_or(&[]);
        match self.writer.write(payload, packet_buf) {
            Ok(plen) => match self
                .socket
                .send_to(packet_buf.get(..plen).unwrap_or(&[]), remote)
            {
                Ok(_) => {
                    self.stats.packets_sent += 1;
                    self.stats.bytes_sent += plen as u64;
                }
                Err(_) => self.stats.send_errors += 1,
            },
            Err(_) => self.stats.send_errors += 1,
        }
    }

    fn publish_stats(&mut self) {
        let j = self.jitter.stats();
        self.stats.packets_lost = j.lost;
        self.stats.packets_late = j.late;
        self.stats.packets_duplicate = j.duplicate;
        self.stats.packets_discarded = j.too_large + j.jumps + j.dropped;
        self.shared.stats.publish(&self.stats);
    }

    /// Publishes the final report (after the recorder finalized the file, if
    /// recording); returns the close request if the recorder queue is full.
    fn finish(mut self, now: Instant) -> Option<(LegRecording, OnFinished)> {
        self.publish_stats();
        let report = LegReport {
            stats: self.stats.clone(),
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

/// What the engine keeps per worker.
pub(crate) struct WorkerHandle {
    pub(crate) commands: Sender<Command>,
    pub(crate) load: Arc<AtomicUsize>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

/// Engine-wide counters the workers update.
#[derive(Debug, Default)]
pub(crate) struct EngineCounters {
    pub(crate) active_legs: AtomicUsize,
    pub(crate) overruns: AtomicU64,
}

pub(crate) fn run_worker(
    index: usize,
    commands: Receiver<Command>,
    load: Arc<AtomicUsize>,
    counters: Arc<EngineCounters>,
) {
    let mut legs: Vec<Leg> = Vec::new();
    let mut closing: Vec<(LegRecording, OnFinished)> = Vec::new();
    let mut scratch = Box::new(Scratch {
        recv: [0; RECV_BUF],
        inbound: [0; MAX_FRAME_SAMPLES],
        outbound: [0; MAX_FRAME_SAMPLES],
        payload: [0; MAX_FRAME_SAMPLES],
        packet: [0; RTP_HEADER_LEN + MAX_FRAME_SAMPLES],
    });
    let tick = frame_duration();
    let mut deadline = Instant::now();
    tracing::debug!(worker = index, "media worker started");
    'ticks: loop {
        loop {
            match commands.try_recv() {
                Ok(Command::Add(leg)) => {
                    tracing::debug!(parent: &leg.span, worker = index, local = %leg.shared.local_addr, "leg started");
                    legs.push(*leg);
                }
                Ok(Command::SetRemote { id, remote }) => {
                    if let Some(leg) = legs.iter_mut().find(|l| l.shared.id == id) {
                        tracing::info!(parent: &leg.span, %remote, "remote set");
                        leg.remote = Some(remote);
                        leg.latched = false;
                    }
                }
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => break 'ticks,
                Err(TryRecvError::Empty) => break,
            }
        }
        let now = Instant::now();
        let mut i = 0;
        while i < legs.len() {
            let leg = &mut legs[i];
            let ticked = std::panic::catch_unwind(AssertUnwindSafe(|| leg.tick(now, &mut scratch)));
            if ticked.is_err() {
                tracing::error!(parent: &leg.span, "leg panicked in its tick; stopping it");
            }
            if ticked.is_err() || leg.shared.stop.load(Relaxed) {
                let leg = legs.swap_remove(i);
                closing.extend(leg.finish(now));
                load.fetch_sub(1, Relaxed);
                counters.active_legs.fetch_sub(1, Relaxed);
            } else {
                i += 1;
            }
        }
        retry_closes(&mut closing);

        deadline += tick;
        let now = Instant::now();
        if let Some(wait) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        {
            std::thread::sleep(wait);
        } else {
            counters.overruns.fetch_add(1, Relaxed);
            if now.duration_since(deadline) > tick * MAX_CATCH_UP_TICKS {
                deadline = now;
            }
        }
    }
    // Shutdown: stop every leg and make sure each recording gets finalized.
    let now = Instant::now();
    for leg in legs.drain(..) {
        closing.extend(leg.finish(now));
        load.fetch_sub(1, Relaxed);
        counters.active_legs.fetch_sub(1, Relaxed);
    }
    let give_up = Instant::now() + SHUTDOWN_CLOSE_TIMEOUT;
    while !closing.is_empty() && Instant::now() < give_up {
        retry_closes(&mut closing);
        std::thread::sleep(Duration::from_millis(5));
    }
    tracing::debug!(worker = index, "media worker stopped");
}

fn retry_closes(closing: &mut Vec<(LegRecording, OnFinished)>) {
    for (rec, cb) in std::mem::take(closing) {
        if let Err(back) = rec.close(cb) {
            closing.push(back);
        }
    }
}
