//! A sans-IO jitter buffer: packets and the current time go in, one frame per
//! 20 ms tick comes out.
//!
//! It never reads a clock: every call takes `now`, so tests drive time by
//! hand and a minute of call runs in microseconds. All storage (slot metadata
//! and payload bytes) is allocated in [`JitterBuffer::new`]; `push` copies
//! into a slot and `pop` lends the slot back, so the packet path does not
//! allocate.
//!
//! Policy, in RFC 3550 terms:
//! - The delay adapts to the network (unless `adaptive` is off, then it is
//!   `target_delay_ms`): [`crate::jitter_delay`] turns packet arrivals into
//!   a target between `min_delay_ms` and `max_delay_ms`, and measures the
//!   delay actually held as "how long after the fastest recent arrival a
//!   frame is played".
//! - The target is applied without glitches where possible: a talkspurt
//!   (after an underrun, i.e. silence) starts playing once its first packet
//!   is `target` old by that measure. During continuous audio the buffer
//!   shrinks, once it holds two frames more than the target, by dropping
//!   one frame (at most one every [`DROP_EVERY`] frames, and only when it
//!   and the next are both here) and grows by
//!   playing one [`Playout::Insert`] (a concealed frame; silence when the
//!   next packet starts a talkspurt). The same mechanism absorbs a sender
//!   whose clock runs fast or slow: its drift shows up as the measured delay
//!   walking away from the target.
//! - One packet is one frame: each `pop` plays `next_seq` or reports it
//!   [`Playout::Lost`] when a later packet proves it is missing.
//! - When nothing at all is buffered the buffer has underrun: it reports
//!   [`Playout::Empty`] and re-buffers, rather than inventing loss.
//! - A sequence (or timestamp) jump larger than `max_jump` is believed only
//!   when the next packet follows it in sequence (the probation of RFC 3550
//!   appendix A.1); then the buffer restarts on the new numbering.
//! - Packets behind the playout point are late: dropped and counted.

use std::time::{Duration, Instant};

use crate::jitter_delay::{DelayConfig, DelayController};
use crate::rtp::RtpPacket;

/// Shrinking drops at most one frame per this many played frames.
pub const DROP_EVERY: u32 = 25;
/// Growing inserts at most one frame per this many played frames (never
/// two concealed frames in a row for the sake of delay).
pub const INSERT_EVERY: u32 = 3;

/// Configuration, fixed at construction (sizes the storage).
#[derive(Clone, Debug)]
pub struct JitterConfig {
    /// Whether the delay follows the measured jitter (and sender clock
    /// drift). Off, every talkspurt is played `target_delay_ms` after its
    /// first packet arrived.
    pub adaptive: bool,
    /// The delay to start with (adaptive), or the fixed delay.
    pub target_delay_ms: u32,
    /// Smallest adaptive target.
    pub min_delay_ms: u32,
    /// Largest adaptive target. Buffered audio beyond it plus 4 packets of
    /// headroom is dropped, oldest first, so latency cannot grow without
    /// bound (e.g. after a network stall delivers a burst). Without
    /// `adaptive` the cap is at least `target_delay_ms` + 4 packets.
    pub max_delay_ms: u32,
    /// Duration of one packet, i.e. of one popped frame.
    pub ptime_ms: u32,
    /// RTP clock rate, to judge timestamp jumps.
    pub clock_rate: u32,
    /// Largest payload accepted; bigger ones are counted and dropped.
    pub max_payload: usize,
    /// Sequence distance treated as a new stream rather than loss/lateness.
    pub max_jump: u16,
    /// Timestamp discontinuity (beyond what the sequence explains) treated
    /// as a new stream.
    pub max_timestamp_jump_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            adaptive: true,
            target_delay_ms: 40,
            min_delay_ms: 20,
            max_delay_ms: 200,
            ptime_ms: 20,
            clock_rate: 8_000,
            max_payload: 160,
            max_jump: 3_000, // MAX_DROPOUT in RFC 3550 A.1
            max_timestamp_jump_ms: 5_000,
        }
    }
}

/// What one tick gets from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// The payload of the next packet in sequence.
    Frame(&'a [u8]),
    /// The next packet is missing (later ones arrived): conceal.
    Lost,
    /// Nothing is missing, but the buffer grows its delay by one frame:
    /// conceal (repeat) without counting a loss, and without using the next
    /// packet's FEC (that packet is still to be played).
    Insert,
    /// Not started, re-buffering, or underrun: nothing to play.
    Empty,
    /// An RFC 3389 comfort noise packet at this level (−dBov): the sender
    /// is silent from here until its next packet. Its sequence number is
    /// played like audio (no loss), and the underrun that follows is
    /// silence, as after a talkspurt (see [`crate::comfort_noise`]).
    ComfortNoise(u8),
}

/// What happened to a pushed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Accepted,
    /// Accepted as the first packet of a new numbering after a jump or reset.
    Restarted,
    Duplicate,
    /// Behind the playout point: dropped.
    Late,
    /// Payload larger than `max_payload`: dropped.
    TooLarge,
    /// A jump not (yet) confirmed by a following packet: dropped.
    Jump,
}

/// Counters, kept by the buffer and read by the leg for its stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub accepted: u64,
    pub duplicate: u64,
    pub late: u64,
    /// Frames popped as [`Playout::Lost`] (or skipped over while missing).
    pub lost: u64,
    /// Frames that arrived but were discarded to cap the delay.
    pub dropped: u64,
    pub too_large: u64,
    /// Packets dropped while a jump was on probation.
    pub jumps: u64,
    /// Restarts: confirmed jumps, SSRC changes and explicit resets.
    pub resets: u64,
    pub underruns: u64,
    /// Frames that arrived but were skipped to shrink the delay towards
    /// the target (or to follow a sender whose clock runs fast).
    pub frames_dropped_for_delay: u64,
    /// Frames inserted ([`Playout::Insert`], or silence before a
    /// talkspurt) to grow the delay (or to follow a slow sender clock).
    pub frames_inserted_for_delay: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    filled: bool,
    seq: u16,
    timestamp: u32,
    len: u16,
    marker: bool,
    /// An RFC 3389 comfort noise packet, not audio.
    cn: bool,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Nothing buffered; waiting for a packet to start a talkspurt.
    Idle,
    /// Packets arriving; playout starts once `since + target_delay` passed.
    Buffering {
        since: Instant,
    },
    Playing,
}

/// See the module documentation.
#[derive(Debug)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    target_delay: Duration,
    max_frames: u16,
    timestamp_step: u32,
    max_ts_jump: u32,
    slots: Box<[Slot]>,
    data: Box<[u8]>,
    state: State,
    next_seq: u16,
    newest_seq: u16,
    buffered: usize,
    /// Last sequence number handed out by `pop` (played or lost).
    played: Option<u16>,
    /// Last accepted packet, the reference for timestamp-jump checks.
    reference: Option<(u16, u32)>,
    probation: Option<u16>,
    ssrc: Option<u32>,
    playout_ts: u32,
    stats: JitterStats,
    delay: DelayController,
    ptime_us: i64,
    /// Frames played since the last drop or insert (or talkspurt start).
    since_adjust: u32,
    /// Empty pops since the last frame played (to tell loss from silence
    /// when playout resumes after an underrun).
    empties: u32,
    /// The packet being stored is comfort noise.
    pushing_cn: bool,
}

/// A correction of the held delay, decided at a pop.
enum Adjust {
    Drop,
    Insert { silent: bool },
}

impl JitterBuffer {
    /// Allocates all storage: `slots × max_payload` bytes plus slot metadata,
    /// with enough slots (a power of two) to hold `max_delay_ms` of audio.
    pub fn new(mut cfg: JitterConfig) -> JitterBuffer {
        cfg.max_payload = cfg.max_payload.min(u16::MAX as usize);
        let ptime = cfg.ptime_ms.max(1);
        // The cap must leave the target plus some jitter headroom, or the
        // catch-up rule would fight the target delay.
        let max_delay = if cfg.adaptive {
            cfg.max_delay_ms
                .max(cfg.target_delay_ms)
                .saturating_add(4 * ptime)
        } else {
            cfg.max_delay_ms
                .max(cfg.target_delay_ms.saturating_add(4 * ptime))
        };
        let max_frames = (max_delay / ptime).clamp(1, 1024);
        let capacity = (max_frames as usize + 2).next_power_of_two();
        let timestamp_step = (cfg.clock_rate as u64 * ptime as u64 / 1000) as u32;
        let max_ts_jump = (cfg.clock_rate as u64 * cfg.max_timestamp_jump_ms as u64 / 1000)
            .min(i32::MAX as u64) as u32;
        let delay = DelayController::new(DelayConfig {
            min_ms: cfg.min_delay_ms.min(cfg.max_delay_ms),
            max_ms: cfg.max_delay_ms,
            initial_ms: cfg.target_delay_ms,
            ptime_ms: ptime,
            clock_rate: cfg.clock_rate,
        });
        JitterBuffer {
            target_delay: if cfg.adaptive {
                delay.target()
            } else {
                Duration::from_millis(cfg.target_delay_ms as u64)
            },
            max_frames: max_frames as u16,
            timestamp_step,
            max_ts_jump,
            slots: vec![Slot::default(); capacity].into_boxed_slice(),
            data: vec![0u8; capacity * cfg.max_payload].into_boxed_slice(),
            state: State::Idle,
            next_seq: 0,
            newest_seq: 0,
            buffered: 0,
            played: None,
            reference: None,
            probation: None,
            ssrc: None,
            playout_ts: 0,
            stats: JitterStats::default(),
            delay,
            ptime_us: i64::from(ptime) * 1_000,
            since_adjust: 0,
            empties: 0,
            pushing_cn: false,
            cfg,
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets currently held.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// RTP timestamp of the frame the last `pop` returned (extrapolated for
    /// lost and empty frames so media time keeps moving).
    pub fn playout_timestamp(&self) -> u32 {
        self.playout_ts
    }

    /// The payload the next [`JitterBuffer::pop`] would play, if that
    /// packet is already here. After a [`Playout::Lost`] it is the packet
    /// following the lost one: a codec with in-band FEC (Opus) rebuilds
    /// the lost frame from it. Does not change the buffer.
    pub fn peek_next(&self) -> Option<&[u8]> {
        let idx = self.index(self.next_seq);
        let slot = self.slots[idx];
        if !(slot.filled && slot.seq == self.next_seq) {
            return None;
        }
        let start = idx * self.cfg.max_payload;
        self.data.get(start..start + slot.len as usize)
    }

    /// Changes the fixed target delay; takes effect at the next talkspurt.
    /// Without effect when `adaptive` (the controller owns the target).
    pub fn set_target_delay(&mut self, delay: Duration) {
        self.target_delay = delay;
    }

    /// The delay the buffer currently aims for.
    pub fn target_delay(&self) -> Duration {
        self.target_delay
    }

    /// Forgets everything buffered and the stream's numbering (SSRC change,
    /// re-INVITE to a new source). Counters are kept.
    pub fn reset(&mut self) {
        self.clear_slots();
        self.state = State::Idle;
        self.played = None;
        self.reference = None;
        self.probation = None;
        self.ssrc = None;
        self.delay.restart();
        self.stats.resets += 1;
    }

    /// Pushes a parsed packet, resetting first if its SSRC differs from the
    /// stream's (a new source or a restarted sender).
    pub fn push_rtp(&mut self, now: Instant, packet: &RtpPacket<'_>) -> PushOutcome {
        if self.ssrc.is_some_and(|s| s != packet.ssrc) {
            self.reset();
        }
        self.ssrc = Some(packet.ssrc);
        let p = packet;
        self.push_marked(now, p.seq, p.timestamp, p.marker, p.payload)
    }

    /// Pushes an RFC 3389 comfort noise packet (its payload holds the
    /// level): it takes its place in the sequence like audio, and is
    /// played as [`Playout::ComfortNoise`]. Resets on a new SSRC like
    /// [`JitterBuffer::push_rtp`].
    pub fn push_comfort_noise(&mut self, now: Instant, packet: &RtpPacket<'_>) -> PushOutcome {
        if self.ssrc.is_some_and(|s| s != packet.ssrc) {
            self.reset();
        }
        self.ssrc = Some(packet.ssrc);
        self.pushing_cn = true;
        let p = packet;
        let outcome = self.push_marked(now, p.seq, p.timestamp, p.marker, p.payload);
        self.pushing_cn = false;
        outcome
    }

    /// Copies one packet's payload into its slot.
    pub fn push(&mut self, now: Instant, seq: u16, ts: u32, payload: &[u8]) -> PushOutcome {
        self.push_marked(now, seq, ts, false, payload)
    }

    /// [`JitterBuffer::push`] with the RTP marker bit (start of a talkspurt).
    pub fn push_marked(
        &mut self,
        now: Instant,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: &[u8],
    ) -> PushOutcome {
        if payload.len() > self.cfg.max_payload {
            self.stats.too_large += 1;
            return PushOutcome::TooLarge;
        }
        let mut outcome = PushOutcome::Accepted;
        if let Some(base) = self.reference_seq() {
            let d = seq.wrapping_sub(base) as i16 as i32;
            if d.unsigned_abs() > self.cfg.max_jump as u32 || self.is_timestamp_jump(seq, ts) {
                if self.probation != Some(seq.wrapping_sub(1)) {
                    self.probation = Some(seq);
                    self.stats.jumps += 1;
                    return PushOutcome::Jump;
                }
                let ssrc = self.ssrc;
                self.reset();
                self.ssrc = ssrc;
                outcome = PushOutcome::Restarted;
            } else if d < 0 && !self.reorder_before_start(seq) {
                // The clearest sign the delay is too small: tell the controller.
                self.delay.on_arrival(now, ts);
                self.stats.late += 1;
                return PushOutcome::Late;
            }
        }
        self.probation = None;
        match self.state {
            State::Idle => {
                self.state = State::Buffering { since: now };
                self.next_seq = seq;
                self.newest_seq = seq;
            }
            State::Buffering { .. } if seq.wrapping_sub(self.next_seq) as i16 as i32 <= 0 => {
                self.next_seq = seq;
            }
            _ => {}
        }
        let ahead = seq.wrapping_sub(self.next_seq) as usize;
        if ahead >= self.slots.len() {
            self.skip_head(ahead + 1 - self.slots.len());
        }
        let refused = self.store(seq, ts, marker, payload);
        if refused.is_none() {
            self.delay.on_arrival(now, ts);
        }
        refused.unwrap_or(outcome)
    }

    /// The frame for this tick. Call exactly once per `ptime`.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        if self.cfg.adaptive {
            self.delay.update(now);
            self.target_delay = self.delay.target();
        }
        match self.state {
            State::Idle => return self.empty(),
            State::Buffering { since } => {
                if !self.ready_to_start(now, since) {
                    return self.empty();
                }
                self.state = State::Playing;
                self.since_adjust = 0;
                self.count_loss_across_underrun();
            }
            State::Playing => {}
        }
        if self.buffered == 0 {
            self.stats.underruns += 1;
            self.state = State::Idle;
            return self.empty();
        }
        let span = self.newest_seq.wrapping_sub(self.next_seq) as usize + 1;
        if span > self.max_frames as usize {
            self.skip_head(span - self.max_frames as usize);
        }
        match self.adjustment(now) {
            Some(Adjust::Insert { silent }) => {
                self.since_adjust = 0;
                self.stats.frames_inserted_for_delay += 1;
                return if silent {
                    Playout::Empty
                } else {
                    Playout::Insert
                };
            }
            Some(Adjust::Drop) => {
                self.since_adjust = 0;
                let idx = self.index(self.next_seq);
                self.slots[idx].filled = false;
                self.buffered -= 1;
                self.next_seq = self.next_seq.wrapping_add(1);
                self.stats.frames_dropped_for_delay += 1;
            }
            None => {}
        }
        self.since_adjust = self.since_adjust.saturating_add(1);
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.played = Some(seq);
        let idx = self.index(seq);
        let slot = self.slots[idx];
        if slot.filled && slot.seq == seq {
            self.slots[idx].filled = false;
            self.buffered -= 1;
            self.playout_ts = slot.timestamp;
            let start = idx * self.cfg.max_payload;
            let payload = &self.data[start..start + slot.len as usize];
            if slot.cn {
                let level = crate::comfort_noise::parse_level(payload).unwrap_or(127);
                return Playout::ComfortNoise(level);
            }
            Playout::Frame(payload)
        } else {
            self.stats.lost += 1;
            self.playout_ts = self.playout_ts.wrapping_add(self.timestamp_step);
            Playout::Lost
        }
    }

    /// Whether a buffered talkspurt starts playing now: once its first
    /// packet is `target` old (adaptive: measured against the fastest
    /// recent arrival, so a late first packet does not add its lateness).
    fn ready_to_start(&self, now: Instant, since: Instant) -> bool {
        let waited = now.saturating_duration_since(since);
        if !self.cfg.adaptive {
            return waited >= self.target_delay;
        }
        let head = self.slots[self.index(self.next_seq)];
        let measured = (head.filled && head.seq == self.next_seq)
            .then(|| self.delay.delay_of(now, head.timestamp))
            .flatten();
        match measured {
            Some(d) => {
                d >= self.delay.target_us()
                    || waited >= Duration::from_millis(self.cfg.max_delay_ms as u64)
            }
            None => waited >= self.target_delay,
        }
    }

    /// Whether this pop should drop or insert a frame to bring the held
    /// delay back to the target (adaptive only, while playing).
    fn adjustment(&self, now: Instant) -> Option<Adjust> {
        if !self.cfg.adaptive {
            return None;
        }
        let here = |seq: u16| {
            let slot = self.slots[self.index(seq)];
            (slot.filled && slot.seq == seq).then_some(slot)
        };
        let head = here(self.next_seq);
        let ts = match head {
            Some(slot) => slot.timestamp,
            None => self.playout_ts.wrapping_add(self.timestamp_step),
        };
        let held = self.delay.delay_of(now, ts)?;
        let target = self.delay.target_us();
        let next_here = here(self.next_seq.wrapping_add(1)).is_some();
        // Two frames of slack before dropping: a frame too many costs 20 ms
        // of latency, a dropped one costs audio (and a recording's
        // alignment), so shrinking to the last frame waits for a talkspurt.
        if held >= target + 2 * self.ptime_us
            && self.since_adjust >= DROP_EVERY
            && head.is_some()
            && next_here
        {
            Some(Adjust::Drop)
        } else if held + self.ptime_us / 2 < target && self.since_adjust >= INSERT_EVERY {
            let silent = head.is_some_and(|h| h.marker);
            Some(Adjust::Insert { silent })
        } else {
            None
        }
    }

    /// Playout resumes after an underrun: if the sequence skipped no more
    /// packets than the time that passed explains, they were lost, not
    /// silence (a gap in silence suppression advances the timestamp, not
    /// the sequence number).
    fn count_loss_across_underrun(&mut self) {
        if let Some(p) = self.played {
            let gap = self.next_seq.wrapping_sub(p).wrapping_sub(1) as i16;
            if gap > 0 && gap as u32 <= self.empties + 1 {
                self.stats.lost += gap as u64;
            }
        }
        self.empties = 0;
    }

    fn empty(&mut self) -> Playout<'static> {
        self.empties = self.empties.saturating_add(1);
        if self.played.is_some() {
            self.playout_ts = self.playout_ts.wrapping_add(self.timestamp_step);
        }
        Playout::Empty
    }

    /// The sequence number a new packet is measured against: the next to play
    /// while a talkspurt is buffered, else the one after the last played.
    fn reference_seq(&self) -> Option<u16> {
        match self.state {
            State::Idle => self.played.map(|p| p.wrapping_add(1)),
            _ => Some(self.next_seq),
        }
    }

    /// Before playout starts a packet may arrive ahead of an earlier one; it
    /// becomes the new head if it still fits and was not already played.
    fn reorder_before_start(&self, seq: u16) -> bool {
        let buffering = matches!(self.state, State::Buffering { .. });
        let fits = (self.newest_seq.wrapping_sub(seq) as usize) < self.slots.len();
        let after_played = self.played.is_none_or(|p| seq.wrapping_sub(p) as i16 > 0);
        buffering && fits && after_played
    }

    fn is_timestamp_jump(&self, seq: u16, ts: u32) -> bool {
        if matches!(self.state, State::Idle) {
            // After an underrun a timestamp gap is normal (silence suppression).
            return false;
        }
        let Some((ref_seq, ref_ts)) = self.reference else {
            return false;
        };
        let frames = seq.wrapping_sub(ref_seq) as i16 as i32;
        let expected = ref_ts.wrapping_add((frames as u32).wrapping_mul(self.timestamp_step));
        (ts.wrapping_sub(expected) as i32).unsigned_abs() > self.max_ts_jump
    }

    fn store(&mut self, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Option<PushOutcome> {
        let idx = self.index(seq);
        let slot = &mut self.slots[idx];
        if slot.filled && slot.seq == seq {
            self.stats.duplicate += 1;
            return Some(PushOutcome::Duplicate);
        }
        if !slot.filled {
            self.buffered += 1;
        }
        *slot = Slot {
            filled: true,
            seq,
            timestamp: ts,
            len: payload.len() as u16,
            marker,
            cn: self.pushing_cn,
        };
        let start = idx * self.cfg.max_payload;
        self.data[start..start + payload.len()].copy_from_slice(payload);
        if seq.wrapping_sub(self.newest_seq) as i16 > 0 || self.buffered == 1 {
            self.newest_seq = seq;
        }
        self.reference = Some((seq, ts));
        self.stats.accepted += 1;
        None
    }

    /// Drops `n` frames from the head (to make room or to cap the delay).
    fn skip_head(&mut self, n: usize) {
        let playing = matches!(self.state, State::Playing);
        for _ in 0..n.min(self.slots.len()) {
            let idx = self.index(self.next_seq);
            let slot = &mut self.slots[idx];
            if slot.filled && slot.seq == self.next_seq {
                slot.filled = false;
                self.buffered -= 1;
                self.stats.dropped += 1;
            } else if playing {
                self.stats.lost += 1;
            }
            self.next_seq = self.next_seq.wrapping_add(1);
        }
        // Beyond the window nothing is stored: jump straight there.
        if n > self.slots.len() {
            let rest = n - self.slots.len();
            self.next_seq = self.next_seq.wrapping_add(rest as u16);
            if playing {
                self.stats.lost += rest as u64;
            }
        }
        if playing {
            self.played = Some(self.next_seq.wrapping_sub(1));
        }
    }

    fn clear_slots(&mut self) {
        for s in self.slots.iter_mut() {
            s.filled = false;
        }
        self.buffered = 0;
    }

    fn index(&self, seq: u16) -> usize {
        seq as usize & (self.slots.len() - 1)
    }
}

#[cfg(test)]
#[path = "jitter_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "jitter_trace_tests.rs"]
mod trace_tests;
