//! RFC 4733 telephone events against hostile input.
//!
//! The first 4 bytes configure a sender (event code, duration in ms, packet
//! interval and clock rate); its packets, fed to a receiver, must come back
//! as exactly one Begin and one End of the full duration. The rest is read
//! as a capture of telephone-event packets: records of
//! `[advance_ms: u8][flags: u8][len: u8][len bytes of payload]`, where
//! flags bit 7 is the marker and bits 0-6 move the RTP timestamp (0: same
//! event; 1-60: forward by that many 20 ms steps; 61-120: backward; 121:
//! the next long-event segment, +0xFFFF; above: far away). Nothing may
//! panic, every Begin must be followed by exactly one End of the same
//! event, and the receiver must hold no event once its timeout has passed.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media_core::dtmf::{
    digit_for_event, DtmfEvent, DtmfPhase, DtmfReceiver, DtmfSender, TelephoneEvent,
    MAX_SEGMENT_DURATION,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = TelephoneEvent::parse(data) {
        let mut out = [0u8; 4];
        assert_eq!(block.write(&mut out), 4);
        assert_eq!(TelephoneEvent::parse(&out), Ok(block));
    }
    let (head, mut rest) = data.split_at(data.len().min(4));
    if let [event, hi, lo, timing] = *head {
        round_trip(event, u16::from_be_bytes([hi, lo]), timing);
    }

    let t0 = Instant::now();
    let mut now = t0;
    let mut rx = DtmfReceiver::new(8_000);
    let mut ts = 0x1234_5678u32;
    let mut open = None;
    while let [advance, flags, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (payload, tail) = tail.split_at(n);
        rest = tail;
        now += Duration::from_millis(u64::from(*advance));
        let step = u32::from(flags & 0x7f);
        ts = match step {
            0 => ts,
            1..=60 => ts.wrapping_add(step * 160),
            61..=120 => ts.wrapping_sub((step - 60) * 160),
            121 => ts.wrapping_add(u32::from(MAX_SEGMENT_DURATION)),
            _ => ts.wrapping_add(0x8000_0000 + step),
        };
        rx.on_packet(now, ts, flags & 0x80 != 0, payload);
        check(&mut rx, &mut open);
        assert_eq!(rx.poll_timeout().is_some(), open.is_some());
    }
    rx.handle_timeout(now + Duration::from_secs(3_600));
    check(&mut rx, &mut open);
    assert!(open.is_none());
    assert_eq!(rx.poll_timeout(), None);
    assert_eq!(rx.stats().overflow, 0);
});

/// One event through sender and receiver: one Begin, one End, the full
/// duration, whatever the length (segments included).
fn round_trip(event: u8, duration_ms: u16, timing: u8) {
    let ptime = 10 * (1 + u32::from(timing % 6));
    let rate = [8_000, 16_000, 48_000][usize::from(timing >> 4) % 3];
    let mut tx = DtmfSender::new(event, u32::from(duration_ms), 10, rate, ptime);
    let units = tx.duration_units();
    let mut rx = DtmfReceiver::new(rate);
    let t0 = Instant::now();
    let mut now = t0;
    let base = u32::from_be_bytes([event, timing, 0xff, 0x00]);
    let mut buf = [0u8; 4];
    let mut packets = 0u64;
    while let Some(p) = tx.next_packet(&mut buf) {
        assert!(p.len == 4 && (p.marker == (packets == 0)));
        rx.on_packet(now, base.wrapping_add(p.timestamp_offset), p.marker, &buf);
        now += Duration::from_millis(u64::from(ptime));
        packets += 1;
    }
    assert!(tx.is_done());
    rx.handle_timeout(now + Duration::from_secs(10));
    let begin = rx.poll_event().expect("begin");
    let end = rx.poll_event().expect("end");
    assert!(rx.poll_event().is_none());
    assert_eq!((begin.phase, end.phase), (DtmfPhase::Begin, DtmfPhase::End));
    assert_eq!((begin.event, end.event), (event, event));
    assert_eq!((begin.rtp_timestamp, end.rtp_timestamp), (base, base));
    assert_eq!(u64::from(end.duration_ms), units * 1_000 / u64::from(rate));
    assert_eq!(rx.stats().missed_starts, 0);
    assert_eq!(rx.stats().timeouts, 0);
}

/// Drains the receiver, checking that Begin and End alternate per event.
fn check(rx: &mut DtmfReceiver, open: &mut Option<DtmfEvent>) {
    while let Some(e) = rx.poll_event() {
        assert_eq!(e.digit, digit_for_event(e.event));
        match (e.phase, open.take()) {
            (DtmfPhase::Begin, None) => *open = Some(e),
            (DtmfPhase::End, Some(b)) => {
                assert_eq!((b.event, b.rtp_timestamp), (e.event, e.rtp_timestamp));
                assert!(e.duration_ms >= b.duration_ms);
            }
            (phase, before) => panic!("{phase:?} after {before:?}"),
        }
    }
}
