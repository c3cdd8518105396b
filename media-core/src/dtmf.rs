//! RFC 4733 telephone events (DTMF digits over RTP), sans-IO: the 4-byte
//! payload, a receiver that turns a leg's telephone-event packets into one
//! `Begin` and one `End` per key press, and a sender that produces the
//! packets for one digit.
//!
//! Nothing here reads a clock, touches a socket or allocates after
//! construction: [`DtmfReceiver`] is fed packets and `now` and asked for
//! events and its next timeout; [`DtmfSender`] is asked for one payload per
//! packet interval. RTP headers (sequence numbers, SSRC, payload type) are
//! the caller's; this module sees the RTP timestamp, the marker bit and the
//! payload.
//!
//! # The payload (RFC 4733 §2.3)
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     event     |E|R| volume    |          duration             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `event` is the code (0–9, 10 = `*`, 11 = `#`, 12–15 = A–D for DTMF;
//! 16 and up are other events, kept as raw codes), `E` marks the end of the
//! event (or of a segment, below), `R` is reserved (sent as zero, ignored on
//! receipt), `volume` is the tone's power in −dBm0 (6 bits), and `duration`
//! is how long the event has lasted so far, in RTP timestamp units,
//! counted from the packet's RTP timestamp, which is the event's start.
//!
//! A payload may carry several 4-byte event blocks (§2.5.1.5, events
//! shorter than a packet interval packed into one packet), so extra bytes
//! are legal when they are whole blocks; a payload whose length is not a
//! multiple of 4 is malformed. RFC 2198 redundancy is not handled here: it
//! arrives under its own (`red`) payload type and must be unwrapped before.
//!
//! # Receiving (RFC 4733 §2.5.2)
//!
//! An event is identified by its RTP timestamp: every packet of one event
//! carries the timestamp of its start and a growing duration, and the last
//! one, with the E bit, is sent three times. [`DtmfReceiver`] therefore:
//!
//! - emits [`DtmfPhase::Begin`] for the first packet of a new timestamp,
//!   with or without the marker bit (a lost first packet still starts the
//!   event; [`DtmfStats::missed_starts`] counts those);
//! - emits [`DtmfPhase::End`] exactly once: at the first E packet, or when a
//!   newer timestamp starts another event (the old one then ends with its
//!   last known duration), or when no packet of the event has come for
//!   [`DtmfConfig::end_timeout`] (all end packets lost; default 1 s, see
//!   there), or on [`DtmfReceiver::reset`]. Every `Begin` is followed by
//!   exactly one `End` (unless the event queue overflowed, which is counted);
//! - ignores retransmitted, duplicated and late packets of an event that has
//!   ended (same timestamp), packets older than the current or last ended
//!   event (serial-number comparison of timestamps, `i32` difference),
//!   packets with the current timestamp but another event code, and blocks
//!   of duration zero (reserved for state events, which DTMF is not;
//!   §2.3 says to ignore such reports). A reordered update with a smaller
//!   duration never shrinks the event.
//!
//! **Long events** (§2.5.1.3): the 16-bit duration covers 0xFFFF units
//! (8.19 s at 8 kHz). A longer event is sent as segments, each with a new
//! timestamp exactly 0xFFFF after the previous segment's. A packet with the
//! current event's code and a timestamp exactly 0xFFFF ahead continues the
//! event: it is reported as **one** event, one `Begin` (with the first
//! segment's timestamp) and one `End` whose duration is the whole event. An
//! E bit with the full 0xFFFF duration ends a segment, not necessarily the
//! event, so it does not emit `End` at once: the event ends when another
//! event starts or after `end_timeout` (a DTMF press of exactly 8.19 s is
//! reported up to `end_timeout` late). A gap longer than `end_timeout`
//! between segments ends the event; the next segment is then a new one.
//!
//! Timestamps are compared as serial numbers, and only for a while: the
//! memory of the last ended event fades after [`DtmfConfig::ended_memory`],
//! so a sender that restarts its timestamps without changing SSRC is
//! locked out for at most that long. A new SSRC resets the receiver when
//! packets come through [`DtmfReceiver::on_rtp`]; callers that feed
//! [`DtmfReceiver::on_packet`] themselves call [`DtmfReceiver::reset`].
//! Sequence numbers (loss, wrap) are the caller's business.
//!
//! # Sending (RFC 4733 §2.5.1)
//!
//! [`DtmfSender`] yields one payload per packet interval: the first packet
//! has the marker bit and a duration of one interval, each next one
//! reports one interval more, and the final one, with the E bit and the
//! full duration, is sent three times (§2.5.1.4). All packets of an event
//! share the caller's base timestamp. An event longer than 0xFFFF units is
//! cut into segments: each segment ends with its own three E packets at
//! duration 0xFFFF, and the next segment's packets carry
//! [`DtmfPacket::timestamp_offset`] = 0xFFFF × segment number (wrapping), to
//! be added to the base timestamp; the duration restarts from that point
//! and the tone goes on meanwhile. Only the event's very first packet has
//! the marker bit.
//!
//! ```
//! use std::time::Instant;
//! use media_core::dtmf::{event_for_digit, DtmfPhase, DtmfReceiver, DtmfSender};
//!
//! let t0 = Instant::now();
//! let five = event_for_digit('5').unwrap();
//! let mut tx = DtmfSender::new(five, 100, 10, 8_000, 20); // 100 ms, -10 dBm0
//! let mut rx = DtmfReceiver::new(8_000);
//! let mut buf = [0u8; 4];
//! while let Some(p) = tx.next_packet(&mut buf) {
//!     let ts = 48_000u32.wrapping_add(p.timestamp_offset);
//!     rx.on_packet(t0, ts, p.marker, &buf[..p.len]);
//! }
//! let begin = rx.poll_event().unwrap();
//! assert_eq!((begin.digit, begin.phase), (Some('5'), DtmfPhase::Begin));
//! let end = rx.poll_event().unwrap();
//! assert_eq!((end.phase, end.duration_ms, end.rtp_timestamp), (DtmfPhase::End, 100, 48_000));
//! assert!(rx.poll_event().is_none());
//! ```

use std::time::{Duration, Instant};

use crate::rtp::RtpPacket;

/// Bytes in one event block, the whole payload of an ordinary packet.
pub const PAYLOAD_LEN: usize = 4;

/// The largest duration a block can carry; longer events are segmented.
pub const MAX_SEGMENT_DURATION: u16 = 0xFFFF;

/// How many times the final packet of an event (or segment) is sent.
pub const END_PACKETS: u8 = 3;

/// Events the receiver holds until polled; beyond that new ones are
/// dropped and counted in [`DtmfStats::overflow`].
pub const EVENT_QUEUE_LEN: usize = 16;

/// Event blocks read from one packet (§2.5.1.5); further ones are ignored
/// and counted. Keeps one packet's events within the queue.
pub const MAX_BLOCKS_PER_PACKET: usize = 4;

/// Why a payload is not a telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// Less than one 4-byte event block.
    #[error("telephone-event payload too short: {len} bytes, need 4")]
    TooShort { len: usize },
    /// Extra bytes that do not make a whole event block.
    #[error("telephone-event payload of {len} bytes is not a whole number of 4-byte blocks")]
    PartialBlock { len: usize },
}

/// One event block of an RFC 4733 payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–15 are DTMF (see [`digit_for_event`]), others raw.
    pub event: u8,
    /// The E bit: this is the end of the event (or of a segment).
    pub end: bool,
    /// Power level in −dBm0, 0–63 (6 bits; larger is quieter).
    pub volume: u8,
    /// Time since the event (segment) started, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a payload. The payload must be one
    /// or more whole blocks (RFC 4733 §2.3, §2.5.1.5); the R bit is ignored.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        Self::blocks(payload)?
            .next()
            .ok_or(DtmfError::TooShort { len: payload.len() })
    }

    /// Every event block of a payload, in order.
    pub fn blocks(
        payload: &[u8],
    ) -> Result<impl ExactSizeIterator<Item = TelephoneEvent> + '_, DtmfError> {
        let len = payload.len();
        if len < PAYLOAD_LEN {
            return Err(DtmfError::TooShort { len });
        }
        if !len.is_multiple_of(PAYLOAD_LEN) {
            return Err(DtmfError::PartialBlock { len });
        }
        Ok(payload.chunks_exact(PAYLOAD_LEN).map(|b| TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        }))
    }

    /// Writes the 4-byte block (R = 0, volume cut to 6 bits) and returns
    /// [`PAYLOAD_LEN`], or writes nothing and returns 0 if `out` is shorter.
    pub fn write(&self, out: &mut [u8]) -> usize {
        let Some(dst) = out.get_mut(..PAYLOAD_LEN) else {
            return 0;
        };
        dst[0] = self.event;
        dst[1] = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        dst[2..4].copy_from_slice(&self.duration.to_be_bytes());
        PAYLOAD_LEN
    }

    /// The DTMF key of this event, if it is one.
    pub fn digit(&self) -> Option<char> {
        digit_for_event(self.event)
    }
}

/// The key of a DTMF event code (RFC 4733 §3.2): 0–9 → `'0'`–`'9'`,
/// 10 → `'*'`, 11 → `'#'`, 12–15 → `'A'`–`'D'`; `None` for 16 and up.
pub fn digit_for_event(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The event code of a DTMF key (`'a'`–`'d'` accepted too).
pub fn event_for_digit(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// Receiver configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtmfConfig {
    /// Clock rate of the telephone-event payload type (its `a=rtpmap`
    /// rate: 8000 normally, 48000 next to Opus). Durations are in its units.
    pub clock_rate: u32,
    /// An event with no packet for this long is ended with its last known
    /// duration. Senders update every 50 ms (RFC 4733 §2.5.1.2) and send the
    /// end three times, so a healthy event never waits this long; 1 s (20
    /// update intervals) rides out loss bursts and senders that update
    /// slowly without splitting one press into two, at the price of a late
    /// `End` when all three end packets are lost.
    pub end_timeout: Duration,
    /// How long an ended event's timestamp is remembered, so that its
    /// retransmitted, duplicated and late packets (and anything older) are
    /// ignored. Real duplicates arrive within a few hundred milliseconds.
    pub ended_memory: Duration,
}

impl Default for DtmfConfig {
    fn default() -> Self {
        DtmfConfig {
            clock_rate: 8_000,
            end_timeout: Duration::from_secs(1),
            ended_memory: Duration::from_secs(5),
        }
    }
}

/// Where a leg delivers the key presses it detects (RFC 4733 events, at
/// their end). Must not block: false when the subscriber cannot take it
/// (the leg counts a drop).
pub trait DtmfSink: Send + 'static {
    fn deliver(&mut self, event: DtmfEvent) -> bool;
}

/// The common sink: a bounded crossbeam channel.
impl DtmfSink for crossbeam_channel::Sender<DtmfEvent> {
    fn deliver(&mut self, event: DtmfEvent) -> bool {
        self.try_send(event).is_ok()
    }
}

/// Whether a [`DtmfEvent`] starts or ends a key press.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfPhase {
    Begin,
    End,
}

/// What the receiver reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfEvent {
    /// The raw event code.
    pub event: u8,
    /// The DTMF key, for codes 0–15.
    pub digit: Option<char>,
    pub phase: DtmfPhase,
    /// At `End`: the event's whole duration (all segments), from the
    /// duration fields and the clock rate. At `Begin`: the duration known
    /// so far (one packet interval normally, more if early packets were lost).
    pub duration_ms: u32,
    /// The event's start: the RTP timestamp of its (first) segment.
    pub rtp_timestamp: u32,
}

/// Receiver counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DtmfStats {
    /// Payloads handed to the receiver.
    pub packets: u64,
    /// Payloads that were not whole event blocks.
    pub malformed: u64,
    /// Blocks that changed nothing: the second and third end packets and
    /// other duplicates, late packets, older timestamps, another event code
    /// on the current timestamp, zero durations, blocks beyond
    /// [`MAX_BLOCKS_PER_PACKET`].
    pub ignored: u64,
    /// Events begun (`Begin` emitted).
    pub events: u64,
    /// Events begun by a packet without the marker bit: the first packet
    /// was lost (or the sender does not set it).
    pub missed_starts: u64,
    /// Events ended by [`DtmfConfig::end_timeout`] without an end packet.
    pub timeouts: u64,
    /// Events dropped because the queue was full.
    pub overflow: u64,
}

/// The event currently under way.
#[derive(Clone, Copy, Debug)]
struct Active {
    event: u8,
    /// Timestamp of the first segment: the event's start.
    start_ts: u32,
    /// Timestamp of the current segment.
    segment_ts: u32,
    /// Units covered by the segments before the current one.
    base: u64,
    /// Largest duration seen in the current segment.
    duration: u16,
    /// The current segment ended at the full 0xFFFF: it may go on in a
    /// next segment.
    segment_ended: bool,
    last_packet: Instant,
}

/// The last event that ended, for recognizing its stragglers.
#[derive(Clone, Copy, Debug)]
struct Ended {
    segment_ts: u32,
    at: Instant,
}

/// A fixed ring of events waiting to be polled.
#[derive(Clone, Debug)]
struct EventQueue {
    buf: [DtmfEvent; EVENT_QUEUE_LEN],
    head: usize,
    len: usize,
}

impl EventQueue {
    const EMPTY: DtmfEvent = DtmfEvent {
        event: 0,
        digit: None,
        phase: DtmfPhase::Begin,
        duration_ms: 0,
        rtp_timestamp: 0,
    };

    fn new() -> EventQueue {
        EventQueue {
            buf: [Self::EMPTY; EVENT_QUEUE_LEN],
            head: 0,
            len: 0,
        }
    }

    fn push(&mut self, event: DtmfEvent) -> bool {
        if self.len == EVENT_QUEUE_LEN {
            return false;
        }
        self.buf[(self.head + self.len) % EVENT_QUEUE_LEN] = event;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<DtmfEvent> {
        if self.len == 0 {
            return None;
        }
        let event = self.buf[self.head];
        self.head = (self.head + 1) % EVENT_QUEUE_LEN;
        self.len -= 1;
        Some(event)
    }
}

/// Turns a stream of telephone-event packets into key presses. See the
/// module documentation for the rules.
#[derive(Clone, Debug)]
pub struct DtmfReceiver {
    cfg: DtmfConfig,
    active: Option<Active>,
    ended: Option<Ended>,
    ssrc: Option<u32>,
    queue: EventQueue,
    stats: DtmfStats,
}

impl DtmfReceiver {
    /// A receiver with the default timeouts for a payload type at
    /// `clock_rate` (normally 8000).
    pub fn new(clock_rate: u32) -> DtmfReceiver {
        DtmfReceiver::with_config(DtmfConfig {
            clock_rate,
            ..DtmfConfig::default()
        })
    }

    pub fn with_config(mut cfg: DtmfConfig) -> DtmfReceiver {
        cfg.clock_rate = cfg.clock_rate.max(1);
        DtmfReceiver {
            cfg,
            active: None,
            ended: None,
            ssrc: None,
            queue: EventQueue::new(),
            stats: DtmfStats::default(),
        }
    }

    pub fn stats(&self) -> DtmfStats {
        self.stats
    }

    /// The code of the event under way (begun, not yet ended), if any.
    pub fn active_event(&self) -> Option<u8> {
        self.active.map(|a| a.event)
    }

    /// Feeds a parsed RTP packet of the telephone-event payload type,
    /// resetting first if its SSRC differs from the previous packet's.
    pub fn on_rtp(&mut self, now: Instant, packet: &RtpPacket<'_>) {
        if self.ssrc.is_some_and(|s| s != packet.ssrc) {
            self.reset();
        }
        self.ssrc = Some(packet.ssrc);
        self.on_packet(now, packet.timestamp, packet.marker, packet.payload);
    }

    /// Feeds one telephone-event packet: its RTP timestamp, marker bit and
    /// payload. Malformed payloads are counted and ignored. Handles any
    /// timeout due by `now` first, so results do not depend on how often
    /// [`DtmfReceiver::handle_timeout`] is called.
    pub fn on_packet(&mut self, now: Instant, rtp_timestamp: u32, marker: bool, payload: &[u8]) {
        self.stats.packets += 1;
        self.handle_timeout(now);
        let blocks = match TelephoneEvent::blocks(payload) {
            Ok(blocks) => blocks,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let count = blocks.len();
        if count > MAX_BLOCKS_PER_PACKET {
            self.stats.ignored += (count - MAX_BLOCKS_PER_PACKET) as u64;
        }
        // Packed events follow each other: each starts where the one
        // before it ended (§2.5.1.5). The marker belongs to the first.
        let mut ts = rtp_timestamp;
        for (i, block) in blocks.take(MAX_BLOCKS_PER_PACKET).enumerate() {
            self.on_block(now, ts, marker || i > 0, block);
            ts = ts.wrapping_add(u32::from(block.duration));
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.queue.pop()
    }

    /// When [`DtmfReceiver::handle_timeout`] should next be called: the
    /// current event's end timeout; `None` with no event under way.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.and_then(|a| self.deadline(&a))
    }

    /// Ends the current event if no packet of it came for `end_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(active) = self.active else {
            return;
        };
        if self.deadline(&active).is_some_and(|d| d <= now) {
            if !active.segment_ended {
                self.stats.timeouts += 1;
            }
            self.finish(now);
        }
    }

    /// Forgets the stream (new SSRC, re-INVITE to a new source): an event
    /// under way ends now with its last known duration, and any timestamp
    /// may start the next one. Counters are kept.
    pub fn reset(&mut self) {
        if let Some(active) = self.active {
            self.finish(active.last_packet);
        }
        self.ended = None;
        self.ssrc = None;
    }

    fn deadline(&self, active: &Active) -> Option<Instant> {
        active.last_packet.checked_add(self.cfg.end_timeout)
    }

    fn on_block(&mut self, now: Instant, ts: u32, marker: bool, block: TelephoneEvent) {
        if block.duration == 0 {
            // Reserved for state events (§2.3); no DTMF event is one.
            self.stats.ignored += 1;
            return;
        }
        if let Some(active) = self.active.as_mut() {
            let ahead = ts.wrapping_sub(active.segment_ts) as i32;
            if ahead < 0 || (ahead == 0 && block.event != active.event) {
                self.stats.ignored += 1;
                return;
            }
            if ahead == 0 {
                if block.duration <= active.duration && (!block.end || active.segment_ended) {
                    self.stats.ignored += 1;
                }
                active.duration = active.duration.max(block.duration);
                active.last_packet = now;
                if block.end {
                    self.end_segment(now);
                }
                return;
            }
            if block.event == active.event && ahead as u32 == u32::from(MAX_SEGMENT_DURATION) {
                // The next segment of a long event (§2.5.1.3).
                active.base += u64::from(MAX_SEGMENT_DURATION);
                active.segment_ts = ts;
                active.duration = block.duration;
                active.segment_ended = false;
                active.last_packet = now;
                if block.end {
                    self.end_segment(now);
                }
                return;
            }
            // A newer event: the current one has ended, its end packets lost.
            self.finish(now);
        } else if let Some(ended) = self.ended {
            let fresh = now.saturating_duration_since(ended.at) < self.cfg.ended_memory;
            if fresh && ts.wrapping_sub(ended.segment_ts) as i32 <= 0 {
                self.stats.ignored += 1;
                return;
            }
        }
        self.begin(now, ts, marker, block);
    }

    fn begin(&mut self, now: Instant, ts: u32, marker: bool, block: TelephoneEvent) {
        self.stats.events += 1;
        if !marker {
            self.stats.missed_starts += 1;
        }
        let active = Active {
            event: block.event,
            start_ts: ts,
            segment_ts: ts,
            base: 0,
            duration: block.duration,
            segment_ended: false,
            last_packet: now,
        };
        self.active = Some(active);
        self.emit(&active, DtmfPhase::Begin);
        if block.end {
            self.end_segment(now);
        }
    }

    /// An E bit on the current segment: the end of the event, unless the
    /// segment is full and the event may continue in the next one.
    fn end_segment(&mut self, now: Instant) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        if active.duration == MAX_SEGMENT_DURATION {
            active.segment_ended = true;
        } else {
            self.finish(now);
        }
    }

    fn finish(&mut self, now: Instant) {
        let Some(active) = self.active.take() else {
            return;
        };
        self.emit(&active, DtmfPhase::End);
        self.ended = Some(Ended {
            segment_ts: active.segment_ts,
            at: now,
        });
    }

    fn emit(&mut self, active: &Active, phase: DtmfPhase) {
        let units = active.base + u64::from(active.duration);
        let ms = units * 1_000 / u64::from(self.cfg.clock_rate);
        let event = DtmfEvent {
            event: active.event,
            digit: digit_for_event(active.event),
            phase,
            duration_ms: u32::try_from(ms).unwrap_or(u32::MAX),
            rtp_timestamp: active.start_ts,
        };
        if !self.queue.push(event) {
            self.stats.overflow += 1;
        }
    }
}

/// One packet from [`DtmfSender::next_packet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfPacket {
    /// Set the RTP marker bit: the first packet of the event.
    pub marker: bool,
    /// The E bit is set: one of the final packets of the event or of a
    /// segment.
    pub end: bool,
    /// Add to the event's base RTP timestamp. 0 for every packet of an
    /// event up to 0xFFFF units long; for longer events, 0xFFFF × the
    /// segment number (wrapping, like RTP timestamps).
    pub timestamp_offset: u32,
    /// Payload bytes written ([`PAYLOAD_LEN`]).
    pub len: usize,
}

/// The packets of one event (a key press), one per packet interval.
#[derive(Clone, Debug)]
pub struct DtmfSender {
    event: u8,
    volume: u8,
    /// Timestamp units per packet interval.
    step: u64,
    /// The event's whole duration, in timestamp units.
    total: u64,
    /// Time since the event's start at the last packet.
    elapsed: u64,
    /// Start of the current segment, in units from the event's start.
    segment_start: u64,
    /// Final packets of the current segment sent so far.
    finals_sent: u8,
    started: bool,
    done: bool,
}

impl DtmfSender {
    /// The packets for `event` (see [`event_for_digit`]) lasting
    /// `duration_ms` (at least one timestamp unit), at `volume` −dBm0 (cut
    /// to 0–63), for a payload type of `clock_rate` sent every `ptime_ms`.
    pub fn new(event: u8, duration_ms: u32, volume: u8, clock_rate: u32, ptime_ms: u32) -> Self {
        let rate = u64::from(clock_rate.max(1));
        DtmfSender {
            event,
            volume: volume.min(63),
            step: (rate * u64::from(ptime_ms) / 1_000).max(1),
            total: (rate * u64::from(duration_ms) / 1_000).max(1),
            elapsed: 0,
            segment_start: 0,
            finals_sent: 0,
            started: false,
            done: false,
        }
    }

    /// The event's duration in timestamp units: how far the stream's
    /// timestamps have moved once it is over.
    pub fn duration_units(&self) -> u64 {
        self.total
    }

    /// True once every packet, the last end retransmission included, was
    /// produced.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Writes the next packet's payload into `out` and describes it; call
    /// once per packet interval. `None` when the event is over, or if `out`
    /// is shorter than [`PAYLOAD_LEN`] (then nothing advances).
    pub fn next_packet(&mut self, out: &mut [u8]) -> Option<DtmfPacket> {
        if self.done || out.len() < PAYLOAD_LEN {
            return None;
        }
        let segment_end = (self.segment_start + u64::from(MAX_SEGMENT_DURATION)).min(self.total);
        // The tone goes on while end packets are repeated; a next segment
        // picks up at the real elapsed time.
        self.elapsed += self.step;
        let (duration, end) = if self.finals_sent > 0 || self.elapsed >= segment_end {
            self.finals_sent += 1;
            (segment_end - self.segment_start, true)
        } else {
            (self.elapsed - self.segment_start, false)
        };
        let block = TelephoneEvent {
            event: self.event,
            end,
            volume: self.volume,
            // Both branches are at most 0xFFFF by construction.
            duration: u16::try_from(duration).unwrap_or(MAX_SEGMENT_DURATION),
        };
        let len = block.write(out);
        // Timestamps wrap modulo 2^32; the truncation is that wrap.
        let timestamp_offset = self.segment_start as u32;
        let marker = !self.started;
        self.started = true;
        if self.finals_sent == END_PACKETS {
            self.finals_sent = 0;
            if segment_end == self.total {
                self.done = true;
            } else {
                self.segment_start = segment_end;
            }
        }
        Some(DtmfPacket {
            marker,
            end,
            timestamp_offset,
            len,
        })
    }
}

#[cfg(test)]
#[path = "dtmf_tests.rs"]
mod tests;
