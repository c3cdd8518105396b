//! Telephone-event payload, receiver and sender cases, with time driven by
//! hand.

use super::*;

const TS: u32 = 1_000_000;

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
    let mut out = [0u8; 4];
    let block = TelephoneEvent {
        event,
        end,
        volume: 10,
        duration,
    };
    assert_eq!(block.write(&mut out), 4);
    out
}

/// Feeds one single-block packet.
fn feed(
    rx: &mut DtmfReceiver,
    now: Instant,
    ts: u32,
    marker: bool,
    event: u8,
    end: bool,
    dur: u16,
) {
    rx.on_packet(now, ts, marker, &payload(event, end, dur));
}

fn drain(rx: &mut DtmfReceiver) -> Vec<DtmfEvent> {
    std::iter::from_fn(|| rx.poll_event()).collect()
}

/// (phase, digit, duration_ms, rtp_timestamp), for compact assertions.
fn summary(events: &[DtmfEvent]) -> Vec<(DtmfPhase, Option<char>, u32, u32)> {
    events
        .iter()
        .map(|e| (e.phase, e.digit, e.duration_ms, e.rtp_timestamp))
        .collect()
}

use DtmfPhase::{Begin, End};

/// A well-behaved sender's packets for one 100 ms digit at 50 ms updates:
/// (offset ms, marker, end, duration units).
fn press(rx: &mut DtmfReceiver, t0: Instant, at_ms: u64, ts: u32, event: u8) {
    let script = [
        (0, true, false, 400),
        (50, false, false, 800),
        (100, false, true, 800),
        (150, false, true, 800),
        (200, false, true, 800),
    ];
    for (dt, marker, end, dur) in script {
        feed(rx, ms(t0, at_ms + dt), ts, marker, event, end, dur);
    }
}

// ---------------------------------------------------------------- payload

#[test]
fn payload_round_trips_and_ignores_reserved_bit() {
    let block = TelephoneEvent {
        event: 11,
        end: true,
        volume: 63,
        duration: 0xABCD,
    };
    let mut out = [0xffu8; 6];
    assert_eq!(block.write(&mut out), 4);
    assert_eq!(out, [11, 0x80 | 63, 0xAB, 0xCD, 0xff, 0xff]);
    assert_eq!(TelephoneEvent::parse(&out[..4]), Ok(block));
    assert_eq!(block.digit(), Some('#'));

    // R bit set by a sloppy sender: ignored.
    let p = TelephoneEvent::parse(&[5, 0x40 | 7, 0, 160]).unwrap();
    assert_eq!(
        p,
        TelephoneEvent {
            event: 5,
            end: false,
            volume: 7,
            duration: 160
        }
    );
    // Volume is cut to 6 bits on write.
    let loud = TelephoneEvent { volume: 0xff, ..p };
    loud.write(&mut out);
    assert_eq!(out[1], 0x3f);
    // Too small a buffer: nothing written.
    assert_eq!(block.write(&mut [0u8; 3]), 0);
}

#[test]
fn payload_length_rules() {
    for len in 0..4 {
        assert_eq!(
            TelephoneEvent::parse(&[1u8; 4][..len]),
            Err(DtmfError::TooShort { len })
        );
    }
    assert_eq!(
        TelephoneEvent::parse(&[1u8; 5]),
        Err(DtmfError::PartialBlock { len: 5 })
    );
    assert_eq!(
        TelephoneEvent::parse(&[1u8; 7]),
        Err(DtmfError::PartialBlock { len: 7 })
    );
    // Several blocks (RFC 4733 §2.5.1.5): parse gives the first.
    let mut two = [0u8; 8];
    two[..4].copy_from_slice(&payload(1, true, 400));
    two[4..].copy_from_slice(&payload(2, false, 160));
    assert_eq!(TelephoneEvent::parse(&two).unwrap().event, 1);
    let all: Vec<_> = TelephoneEvent::blocks(&two).unwrap().collect();
    assert_eq!(all.len(), 2);
    assert_eq!((all[1].event, all[1].end, all[1].duration), (2, false, 160));
}

#[test]
fn digit_mapping_both_ways() {
    let keys = "0123456789*#ABCD";
    for (code, key) in keys.chars().enumerate() {
        assert_eq!(digit_for_event(code as u8), Some(key));
        assert_eq!(event_for_digit(key), Some(code as u8));
    }
    for (lower, code) in ['a', 'b', 'c', 'd'].into_iter().zip(12..) {
        assert_eq!(event_for_digit(lower), Some(code));
    }
    for code in 16..=255u8 {
        assert_eq!(digit_for_event(code), None);
    }
    for bad in ['E', 'e', ' ', 'x', '+', '٣'] {
        assert_eq!(event_for_digit(bad), None);
    }
}

// --------------------------------------------------------------- receiver

#[test]
fn normal_digit_gives_one_begin_and_one_end() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    feed(&mut rx, t0, TS, true, 5, false, 400);
    assert_eq!(summary(&drain(&mut rx)), [(Begin, Some('5'), 50, TS)]);
    assert_eq!(rx.active_event(), Some(5));
    assert_eq!(rx.poll_timeout(), Some(ms(t0, 1_000)));
    feed(&mut rx, ms(t0, 50), TS, false, 5, false, 800);
    assert!(drain(&mut rx).is_empty());
    assert_eq!(rx.poll_timeout(), Some(ms(t0, 1_050)));
    for k in 0..3 {
        feed(&mut rx, ms(t0, 100 + 50 * k), TS, false, 5, true, 1_000);
    }
    assert_eq!(summary(&drain(&mut rx)), [(End, Some('5'), 125, TS)]);
    assert_eq!(rx.poll_timeout(), None);
    assert_eq!(rx.active_event(), None);
    rx.handle_timeout(ms(t0, 10_000));
    assert!(drain(&mut rx).is_empty());
    let s = rx.stats();
    assert_eq!(
        (s.packets, s.events, s.missed_starts, s.timeouts),
        (5, 1, 0, 0)
    );
    assert_eq!(s.ignored, 2); // the two end retransmissions
}

#[test]
fn lost_first_packet_still_starts_the_event() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    feed(&mut rx, ms(t0, 50), TS, false, 9, false, 800);
    feed(&mut rx, ms(t0, 100), TS, false, 9, true, 960);
    assert_eq!(
        summary(&drain(&mut rx)),
        [(Begin, Some('9'), 100, TS), (End, Some('9'), 120, TS)]
    );
    assert_eq!(rx.stats().missed_starts, 1);
}

#[test]
fn only_end_packets_arriving_give_begin_and_end() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    for k in 0..3 {
        feed(&mut rx, ms(t0, 50 * k), TS, false, 0, true, 640);
    }
    assert_eq!(
        summary(&drain(&mut rx)),
        [(Begin, Some('0'), 80, TS), (End, Some('0'), 80, TS)]
    );
}

#[test]
fn lost_end_packets_end_the_event_after_the_timeout() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    feed(&mut rx, t0, TS, true, 10, false, 400);
    feed(&mut rx, ms(t0, 50), TS, false, 10, false, 800);
    drain(&mut rx);
    let deadline = rx.poll_timeout().unwrap();
    assert_eq!(deadline, ms(t0, 1_050));
    rx.handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain(&mut rx).is_empty());
    rx.handle_timeout(deadline);
    assert_eq!(summary(&drain(&mut rx)), [(End, Some('*'), 100, TS)]);
    assert_eq!(rx.stats().timeouts, 1);
    assert_eq!(rx.poll_timeout(), None);
    // The end packets turn up after all: the event is over, ignored.
    feed(&mut rx, ms(t0, 1_100), TS, false, 10, true, 1_200);
    feed(&mut rx, ms(t0, 1_150), TS, false, 10, false, 960);
    assert!(drain(&mut rx).is_empty());
}

#[test]
fn timeout_is_applied_when_the_next_packet_comes_even_if_not_polled() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    feed(&mut rx, t0, TS, true, 1, false, 400);
    // No handle_timeout call; 2 s later a late update of the same event.
    feed(&mut rx, ms(t0, 2_000), TS, false, 1, false, 800);
    assert_eq!(
        summary(&drain(&mut rx)),
        [(Begin, Some('1'), 50, TS), (End, Some('1'), 50, TS)]
    );
}

#[test]
fn custom_timeout_is_honoured() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::with_config(DtmfConfig {
        end_timeout: Duration::from_millis(250),
        ..DtmfConfig::default()
    });
    feed(&mut rx, t0, TS, true, 1, false, 400);
    assert_eq!(rx.poll_timeout(), Some(ms(t0, 250)));
    // A timeout that cannot be represented is never reached, never panics.
    let mut forever = DtmfReceiver::with_config(DtmfConfig {
        end_timeout: Duration::MAX,
        ..DtmfConfig::default()
    });
    feed(&mut forever, t0, TS, true, 1, false, 400);
    assert_eq!(forever.poll_timeout(), None);
    forever.handle_timeout(ms(t0, 1_000_000));
    assert_eq!(forever.active_event(), Some(1));
}

#[test]
fn duplicate_and_reordered_packets() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    // Updates out of order and duplicated; an end before the last update.
    let script: [(u64, bool, bool, u16); 8] = [
        (0, false, false, 800), // second update first
        (5, true, false, 400),  // the marker packet, late
        (10, true, false, 400), // and duplicated
        (60, false, false, 1_200),
        (65, false, false, 800), // stale update
        (110, false, true, 1_440),
        (120, false, false, 1_200), // an update arriving after the end
        (160, false, true, 1_440),
    ];
    for (at, marker, end, dur) in script {
        feed(&mut rx, ms(t0, at), TS, marker, 3, end, dur);
    }
    assert_eq!(
        summary(&drain(&mut rx)),
        [(Begin, Some('3'), 100, TS), (End, Some('3'), 180, TS)]
    );
    // A late update can never shrink the event.
    let mut rx = DtmfReceiver::new(8_000);
    feed(&mut rx, t0, TS, true, 3, false, 1_200);
    feed(&mut rx, ms(t0, 10), TS, false, 3, true, 400);
    assert_eq!(drain(&mut rx)[1].duration_ms, 150);
}

#[test]
fn other_code_on_the_current_timestamp_is_ignored() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    feed(&mut rx, t0, TS, true, 4, false, 400);
    feed(&mut rx, ms(t0, 50), TS, false, 7, false, 800);
    feed(&mut rx, ms(t0, 100), TS, false, 4, true, 800);
    assert_eq!(
        summary(&drain(&mut rx)),
        [(Begin, Some('4'), 50, TS), (End, Some('4'), 100, TS)]
    );
    assert_eq!(rx.stats().ignored, 1);
}

#[test]
fn zero_duration_reports_are_ignored() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    feed(&mut rx, t0, TS, true, 2, false, 0);
    assert!(drain(&mut rx).is_empty());
    assert_eq!(rx.active_event(), None);
    feed(&mut rx, ms(t0, 50), TS, false, 2, false, 400);
    feed(&mut rx, ms(t0, 100), TS, false, 2, true, 800);
    assert_eq!(
        summary(&drain(&mut rx)),
        [(Begin, Some('2'), 50, TS), (End, Some('2'), 100, TS)]
    );
}

#[test]
fn two_consecutive_digits() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    press(&mut rx, t0, 0, TS, 1);
    press(&mut rx, t0, 400, TS + 3_200, 2);
    assert_eq!(
        summary(&drain(&mut rx)),
        [
            (Begin, Some('1'), 50, TS),
            (End, Some('1'), 100, TS),
            (Begin, Some('2'), 50, TS + 3_200),
            (End, Some('2'), 100, TS + 3_200),
        ]
    );
}

#[test]
fn same_digit_twice_is_two_events() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    press(&mut rx, t0, 0, TS, 7);
    // A straggler of the first press between the two: ignored.
    feed(&mut rx, ms(t0, 300), TS, false, 7, true, 800);
    press(&mut rx, t0, 400, TS + 3_200, 7);
    let events = drain(&mut rx);
    assert_eq!(
        summary(&events),
        [
            (Begin, Some('7'), 50, TS),
            (End, Some('7'), 100, TS),
            (Begin, Some('7'), 50, TS + 3_200),
            (End, Some('7'), 100, TS + 3_200),
        ]
    );
    assert_eq!(rx.stats().events, 2);
}

#[test]
fn new_timestamp_ends_an_unfinished_event() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    // Digit 6: updates only, every end packet lost; then digit 6 again.
    feed(&mut rx, t0, TS, true, 6, false, 400);
    feed(&mut rx, ms(t0, 50), TS, false, 6, false, 800);
    feed(&mut rx, ms(t0, 300), TS + 2_400, true, 6, false, 400);
    assert_eq!(
        summary(&drain(&mut rx)),
        [
            (Begin, Some('6'), 50, TS),
            (End, Some('6'), 100, TS),
            (Begin, Some('6'), 50, TS + 2_400),
        ]
    );
    assert_eq!(rx.stats().timeouts, 0);
}

#[test]
fn older_timestamps_are_ignored() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    press(&mut rx, t0, 0, TS, 1);
    // Older than the ended event: late, ignored.
    feed(&mut rx, ms(t0, 300), TS - 4_000, true, 8, false, 400);
    assert_eq!(drain(&mut rx).len(), 2);
    // A new event starts; a packet of the old one is older than it.
    feed(&mut rx, ms(t0, 400), TS + 4_000, true, 2, false, 400);
    feed(&mut rx, ms(t0, 410), TS, false, 1, true, 800);
    feed(&mut rx, ms(t0, 420), TS + 100, false, 1, false, 800);
    assert_eq!(
        summary(&drain(&mut rx)),
        [(Begin, Some('2'), 50, TS + 4_000)]
    );
}

#[test]
fn ended_memory_fades_so_a_restarted_sender_is_heard() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    press(&mut rx, t0, 0, TS, 1);
    drain(&mut rx);
    // Same SSRC, timestamps restarted lower: ignored while remembered...
    feed(&mut rx, ms(t0, 1_000), 50, true, 2, false, 400);
    assert!(drain(&mut rx).is_empty());
    // ...heard once the memory (5 s after the end) has faded.
    feed(&mut rx, ms(t0, 5_200), 8_050, true, 2, false, 400);
    assert_eq!(summary(&drain(&mut rx)), [(Begin, Some('2'), 50, 8_050)]);
}

#[test]
fn timestamps_wrap() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    let first = u32::MAX - 100;
    press(&mut rx, t0, 0, first, 1);
    let second = first.wrapping_add(3_200);
    press(&mut rx, t0, 400, second, 2);
    // A straggler from before the wrap is still older.
    feed(&mut rx, ms(t0, 700), first, false, 1, true, 800);
    let events = drain(&mut rx);
    assert_eq!(events.len(), 4);
    assert_eq!(events[2].rtp_timestamp, second);
    assert!(second < 4_000);
}

#[test]
fn non_dtmf_events_keep_their_raw_code() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    press(&mut rx, t0, 0, TS, 16); // flash
    let events = drain(&mut rx);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.event == 16 && e.digit.is_none()));
}

#[test]
fn several_events_in_one_packet() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    // '1' lasted 400 units, then '2' started at TS + 400 and goes on.
    let mut packet = [0u8; 8];
    packet[..4].copy_from_slice(&payload(1, true, 400));
    packet[4..].copy_from_slice(&payload(2, false, 320));
    rx.on_packet(t0, TS, true, &packet);
    // The same packet again (duplicated by the network): nothing new.
    rx.on_packet(ms(t0, 1), TS, true, &packet);
    // '2' continues on its own timestamp, then ends.
    feed(&mut rx, ms(t0, 50), TS + 400, false, 2, true, 720);
    assert_eq!(
        summary(&drain(&mut rx)),
        [
            (Begin, Some('1'), 50, TS),
            (End, Some('1'), 50, TS),
            (Begin, Some('2'), 40, TS + 400),
            (End, Some('2'), 90, TS + 400),
        ]
    );
    assert_eq!(rx.stats().missed_starts, 0);
}

#[test]
fn blocks_beyond_the_limit_are_ignored_and_counted() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    let mut packet = [0u8; 4 * 10];
    for (i, chunk) in packet.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&payload(i as u8, true, 160));
    }
    rx.on_packet(t0, TS, true, &packet);
    let events = drain(&mut rx);
    assert_eq!(events.len(), 2 * MAX_BLOCKS_PER_PACKET);
    assert_eq!(rx.stats().ignored, (10 - MAX_BLOCKS_PER_PACKET) as u64);
}

#[test]
fn malformed_payloads_are_counted() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    rx.on_packet(t0, TS, true, &[]);
    rx.on_packet(t0, TS, true, &[5, 0, 1]);
    rx.on_packet(t0, TS, true, &[5, 0, 1, 0, 9]);
    assert!(drain(&mut rx).is_empty());
    assert_eq!(rx.stats().malformed, 3);
    assert_eq!(rx.stats().packets, 3);
}

#[test]
fn queue_overflow_is_counted_not_grown() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    // 10 presses, never polled: 20 events for a queue of 16.
    for k in 0..10u32 {
        press(&mut rx, t0, 300 * k as u64, TS + 4_000 * k, 1);
    }
    assert_eq!(drain(&mut rx).len(), EVENT_QUEUE_LEN);
    assert_eq!(rx.stats().overflow, 20 - EVENT_QUEUE_LEN as u64);
}

#[test]
fn ssrc_change_resets_and_ends_the_current_event() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    let pkt = |ssrc, ts, marker, p: &[u8; 4]| {
        let mut out = [0u8; 16];
        let h = crate::rtp::RtpHeader {
            payload_type: 101,
            marker,
            seq: 1,
            timestamp: ts,
            ssrc,
        };
        let n = h.write(p, &mut out).unwrap();
        (out, n)
    };
    let (a, n) = pkt(1, TS, true, &payload(1, false, 400));
    rx.on_rtp(t0, &RtpPacket::parse(&a[..n]).unwrap());
    // New source, with a timestamp that looks older: still heard.
    let (b, n) = pkt(2, 10, true, &payload(2, true, 800));
    rx.on_rtp(ms(t0, 40), &RtpPacket::parse(&b[..n]).unwrap());
    assert_eq!(
        summary(&drain(&mut rx)),
        [
            (Begin, Some('1'), 50, TS),
            (End, Some('1'), 50, TS),
            (Begin, Some('2'), 100, 10),
            (End, Some('2'), 100, 10),
        ]
    );
}

#[test]
fn other_clock_rates() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(48_000);
    feed(&mut rx, t0, TS, true, 12, false, 960);
    feed(&mut rx, ms(t0, 20), TS, false, 12, true, 4_800);
    assert_eq!(
        summary(&drain(&mut rx)),
        [(Begin, Some('A'), 20, TS), (End, Some('A'), 100, TS)]
    );
    // A zero clock rate is taken as 1 Hz rather than dividing by zero.
    let mut rx = DtmfReceiver::new(0);
    feed(&mut rx, t0, TS, true, 1, true, 3);
    assert_eq!(drain(&mut rx)[1].duration_ms, 3_000);
}

/// Updates every 50 ms, 400 units each, from `TS` (marker on the first)
/// up to `upto` units; returns the time of the last one in ms.
fn ramp(rx: &mut DtmfReceiver, t0: Instant, event: u8, upto: u16) -> u64 {
    let mut k = 1u64;
    loop {
        let dur = (400 * k).min(u64::from(upto)) as u16;
        feed(rx, ms(t0, 50 * (k - 1)), TS, k == 1, event, false, dur);
        if dur == upto {
            return 50 * (k - 1);
        }
        k += 1;
    }
}

// ------------------------------------------------------------ long events

#[test]
fn long_event_segments_are_one_event() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    let max = MAX_SEGMENT_DURATION;
    let seg2 = TS.wrapping_add(u32::from(max));
    assert_eq!(ramp(&mut rx, t0, 0, 64_000), 7_950);
    // Segment 1 ends at the full duration: not the end of the event.
    for k in 0..3 {
        feed(&mut rx, ms(t0, 8_200 + 50 * k), TS, false, 0, true, max);
    }
    assert_eq!(rx.active_event(), Some(0));
    feed(&mut rx, ms(t0, 8_350), seg2, false, 0, false, 1_600);
    for k in 0..3 {
        feed(&mut rx, ms(t0, 8_400 + 50 * k), seg2, false, 0, true, 2_000);
    }
    assert_eq!(
        summary(&drain(&mut rx)),
        [
            (Begin, Some('0'), 50, TS),
            (End, Some('0'), (u32::from(max) + 2_000) / 8, TS),
        ]
    );
    assert_eq!(rx.stats().events, 1);
}

#[test]
fn long_event_with_lost_segment_end_is_one_event() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    let seg2 = TS.wrapping_add(u32::from(MAX_SEGMENT_DURATION));
    ramp(&mut rx, t0, 11, 64_000);
    // All of segment 1's end packets lost.
    feed(&mut rx, ms(t0, 8_350), seg2, false, 11, false, 1_600);
    feed(&mut rx, ms(t0, 8_400), seg2, false, 11, true, 2_000);
    let events = drain(&mut rx);
    assert_eq!(
        summary(&events),
        [
            (Begin, Some('#'), 50, TS),
            (End, Some('#'), (0xFFFF + 2_000) / 8, TS),
        ]
    );
}

#[test]
fn full_segment_without_continuation_ends_at_the_timeout() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    ramp(&mut rx, t0, 3, 64_000);
    feed(
        &mut rx,
        ms(t0, 8_200),
        TS,
        false,
        3,
        true,
        MAX_SEGMENT_DURATION,
    );
    assert_eq!(drain(&mut rx).len(), 1);
    rx.handle_timeout(ms(t0, 9_200));
    assert_eq!(summary(&drain(&mut rx)), [(End, Some('3'), 0xFFFF / 8, TS)]);
    assert_eq!(rx.stats().timeouts, 0, "it had an end packet");
    // Or earlier, when the next event starts.
    let mut rx = DtmfReceiver::new(8_000);
    feed(&mut rx, t0, TS, true, 3, true, MAX_SEGMENT_DURATION);
    feed(
        &mut rx,
        ms(t0, 300),
        TS.wrapping_add(70_000),
        true,
        4,
        false,
        400,
    );
    assert_eq!(
        summary(&drain(&mut rx)),
        [
            (Begin, Some('3'), 0xFFFF / 8, TS),
            (End, Some('3'), 0xFFFF / 8, TS),
            (Begin, Some('4'), 50, TS.wrapping_add(70_000)),
        ]
    );
}

#[test]
fn segment_offset_of_another_event_is_a_new_event() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8_000);
    let seg2 = TS.wrapping_add(u32::from(MAX_SEGMENT_DURATION));
    feed(&mut rx, t0, TS, true, 3, false, 64_000);
    feed(&mut rx, ms(t0, 100), seg2, false, 4, false, 400);
    let events = drain(&mut rx);
    assert_eq!(events.len(), 3);
    assert_eq!((events[2].phase, events[2].event), (Begin, 4));
}

// ----------------------------------------------------------------- sender

/// Every packet of a sender: (marker, end, offset, duration).
fn sent(mut tx: DtmfSender) -> Vec<(bool, bool, u32, u16)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4];
    while let Some(p) = tx.next_packet(&mut buf) {
        assert_eq!(p.len, 4);
        let block = TelephoneEvent::parse(&buf).unwrap();
        assert_eq!(block.end, p.end);
        out.push((p.marker, p.end, p.timestamp_offset, block.duration));
        assert!(out.len() < 100_000, "sender never finishes");
    }
    assert!(tx.is_done());
    assert!(tx.next_packet(&mut buf).is_none());
    out
}

#[test]
fn sender_packets_for_one_digit() {
    let tx = DtmfSender::new(5, 100, 10, 8_000, 20);
    assert_eq!(tx.duration_units(), 800);
    assert_eq!(
        sent(tx),
        [
            (true, false, 0, 160),
            (false, false, 0, 320),
            (false, false, 0, 480),
            (false, false, 0, 640),
            (false, true, 0, 800),
            (false, true, 0, 800),
            (false, true, 0, 800),
        ]
    );
    // Volume and event code on the wire.
    let mut tx = DtmfSender::new(11, 40, 200, 8_000, 50);
    let mut buf = [0u8; 4];
    tx.next_packet(&mut buf).unwrap();
    assert_eq!(
        TelephoneEvent::parse(&buf).unwrap(),
        TelephoneEvent {
            event: 11,
            end: true,
            volume: 63,
            duration: 320
        }
    );
}

#[test]
fn sender_edge_durations() {
    // Shorter than one packet: the first packet is already the end.
    assert_eq!(
        sent(DtmfSender::new(1, 10, 0, 8_000, 20)),
        [
            (true, true, 0, 80),
            (false, true, 0, 80),
            (false, true, 0, 80)
        ]
    );
    // Zero is raised to one unit (zero durations mean "state").
    assert_eq!(
        sent(DtmfSender::new(1, 0, 0, 8_000, 20))[0],
        (true, true, 0, 1)
    );
    // Not a multiple of the packet interval.
    let p = sent(DtmfSender::new(1, 90, 0, 8_000, 20));
    assert_eq!(p.len(), 5 + 2);
    assert_eq!(p[3], (false, false, 0, 640));
    assert_eq!(p[4], (false, true, 0, 720));
}

#[test]
fn sender_does_not_advance_without_room() {
    let mut tx = DtmfSender::new(1, 100, 0, 8_000, 20);
    assert_eq!(tx.next_packet(&mut [0u8; 3]), None);
    assert!(!tx.is_done());
    let mut buf = [0u8; 4];
    assert!(tx.next_packet(&mut buf).unwrap().marker);
}

#[test]
fn sender_segments_long_events() {
    // 20 s at 8 kHz = 160 000 units: segments of 65535, 65535, 28930.
    let packets = sent(DtmfSender::new(4, 20_000, 0, 8_000, 20));
    let max = u32::from(MAX_SEGMENT_DURATION);
    let offsets: Vec<u32> = packets.iter().map(|p| p.2).collect();
    assert!(offsets.iter().all(|o| [0, max, 2 * max].contains(o)));
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(packets.iter().filter(|p| p.0).count(), 1);
    assert!(packets[0].0);
    for seg in 0..3 {
        let ends: Vec<_> = packets.iter().filter(|p| p.2 == seg * max && p.1).collect();
        assert_eq!(ends.len(), 3, "segment {seg}");
        let want: u32 = if seg < 2 { max } else { 160_000 - 2 * max };
        assert!(ends.iter().all(|p| u32::from(p.3) == want));
    }
    // Segment 1's end went out at packet 410 (65 600 units elapsed) and
    // twice more while the tone went on: segment 2's first packet, the
    // 413th, reports the time since the 65535 boundary.
    let first_of_2 = packets.iter().position(|p| p.2 == max).unwrap();
    assert_eq!(first_of_2, 412);
    assert_eq!(u32::from(packets[first_of_2].3), 413 * 160 - max);
}

#[test]
fn round_trip_every_digit() {
    let t0 = Instant::now();
    for key in "0123456789*#ABCD".chars() {
        let event = event_for_digit(key).unwrap();
        let mut tx = DtmfSender::new(event, 160, 10, 8_000, 20);
        let mut rx = DtmfReceiver::new(8_000);
        let base = 0xFFFF_FF00u32; // wraps during nothing, but near the edge
        let mut buf = [0u8; 4];
        let mut now = t0;
        while let Some(p) = tx.next_packet(&mut buf) {
            rx.on_packet(
                now,
                base.wrapping_add(p.timestamp_offset),
                p.marker,
                &buf[..p.len],
            );
            now += Duration::from_millis(20);
        }
        assert_eq!(
            summary(&drain(&mut rx)),
            [(Begin, Some(key), 20, base), (End, Some(key), 160, base)],
            "digit {key}"
        );
        assert_eq!(rx.stats().missed_starts, 0);
    }
}

#[test]
fn round_trip_long_event_across_the_timestamp_wrap() {
    let t0 = Instant::now();
    for (duration_ms, rate, ptime) in [(20_000, 8_000, 20), (9_000, 8_000, 50), (3_000, 48_000, 20)]
    {
        let mut tx = DtmfSender::new(9, duration_ms, 10, rate, ptime);
        let mut rx = DtmfReceiver::new(rate);
        let base = u32::MAX - 70_000; // the second segment wraps
        let mut buf = [0u8; 4];
        let mut now = t0;
        while let Some(p) = tx.next_packet(&mut buf) {
            rx.on_packet(
                now,
                base.wrapping_add(p.timestamp_offset),
                p.marker,
                &buf[..p.len],
            );
            now += Duration::from_millis(ptime as u64);
        }
        // A last long wait: nothing more.
        rx.handle_timeout(now + Duration::from_secs(10));
        let events = drain(&mut rx);
        assert_eq!(
            summary(&events),
            [
                (Begin, Some('9'), ptime, base),
                (End, Some('9'), duration_ms, base)
            ],
            "{duration_ms} ms at {rate} Hz"
        );
        assert_eq!(rx.stats().timeouts, 0);
    }
}

#[test]
fn round_trip_with_every_end_lost_but_one() {
    let t0 = Instant::now();
    let mut tx = DtmfSender::new(2, 200, 10, 8_000, 20);
    let mut rx = DtmfReceiver::new(8_000);
    let mut buf = [0u8; 4];
    let mut k = 0;
    while let Some(p) = tx.next_packet(&mut buf) {
        k += 1;
        // Drop the first packet and the first two end packets.
        if k == 1 || (p.end && k < 12) {
            continue;
        }
        rx.on_packet(ms(t0, 20 * k), TS, p.marker, &buf[..p.len]);
    }
    assert_eq!(
        summary(&drain(&mut rx)),
        [(Begin, Some('2'), 40, TS), (End, Some('2'), 200, TS)]
    );
}

// ---------------------------------------------------------------- garbage

/// xorshift64*, for reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Checks the receiver's promises on whatever it produced: every Begin is
/// followed by exactly one End of the same event, digits match codes.
fn check_pairs(events: &[DtmfEvent], open: &mut Option<DtmfEvent>) {
    for e in events {
        assert_eq!(e.digit, digit_for_event(e.event));
        match (e.phase, open.take()) {
            (Begin, None) => *open = Some(*e),
            (End, Some(b)) => {
                assert_eq!((b.event, b.rtp_timestamp), (e.event, e.rtp_timestamp));
                assert!(e.duration_ms >= b.duration_ms);
            }
            (phase, prev) => panic!("{phase:?} after {prev:?}"),
        }
    }
}

#[test]
fn garbage_never_panics_and_keeps_pairs() {
    let t0 = Instant::now();
    for seed in 1..=200u64 {
        let mut noise = Noise(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut rx = DtmfReceiver::new(if seed % 3 == 0 { 48_000 } else { 8_000 });
        let mut now = t0;
        let mut ts = noise.next() as u32;
        let mut open = None;
        let mut buf = [0u8; 24];
        for _ in 0..400 {
            let r = noise.next();
            now += Duration::from_millis(r % 300);
            // Mostly nearby timestamps (same event, small steps, segment
            // steps), sometimes anything.
            ts = match (r >> 8) % 8 {
                0..=3 => ts,
                4 => ts.wrapping_add((r >> 16) as u32 % 2_000),
                5 => ts.wrapping_sub((r >> 16) as u32 % 2_000),
                6 => ts.wrapping_add(u32::from(MAX_SEGMENT_DURATION)),
                _ => (r >> 16) as u32,
            };
            let len = (noise.next() % 25) as usize;
            for b in buf.iter_mut() {
                *b = noise.next() as u8;
            }
            if (r >> 40).is_multiple_of(2) {
                buf[0] %= 18; // often a DTMF code
            }
            rx.on_packet(now, ts, r & (1 << 50) != 0, &buf[..len]);
            if r.is_multiple_of(7) {
                rx.handle_timeout(now);
            }
            if r.is_multiple_of(11) {
                rx.reset();
            }
            check_pairs(&drain(&mut rx), &mut open);
            assert_eq!(open.is_some(), rx.active_event().is_some());
            assert_eq!(rx.poll_timeout().is_some(), rx.active_event().is_some());
        }
        rx.handle_timeout(now + Duration::from_secs(60));
        check_pairs(&drain(&mut rx), &mut open);
        assert!(open.is_none());
        let s = rx.stats();
        assert_eq!(s.overflow, 0);
        assert!(s.events >= s.missed_starts && s.events >= s.timeouts);
    }
}

#[test]
fn garbage_payloads_parse_or_fail_cleanly() {
    let mut noise = Noise(7);
    let mut buf = [0u8; 64];
    for _ in 0..10_000 {
        let len = (noise.next() % 65) as usize;
        for b in buf.iter_mut() {
            *b = noise.next() as u8;
        }
        let data = &buf[..len];
        match TelephoneEvent::parse(data) {
            Ok(e) => {
                assert!(len >= 4 && len.is_multiple_of(4));
                assert!(e.volume < 64);
                let mut out = [0u8; 4];
                e.write(&mut out);
                // Equal except for the reserved bit.
                assert_eq!(out[0], data[0]);
                assert_eq!(out[1], data[1] & !0x40);
                assert_eq!(&out[2..], &data[2..4]);
                assert_eq!(TelephoneEvent::blocks(data).unwrap().len(), len / 4);
            }
            Err(DtmfError::TooShort { len: l }) => assert!(l < 4 && l == len),
            Err(DtmfError::PartialBlock { len: l }) => assert!(l % 4 != 0 && l == len),
        }
    }
}

#[test]
fn round_trip_around_segment_boundaries() {
    // Durations whose length in units lands just below, on and just above
    // multiples of 0xFFFF (a last segment of a unit or two included), at
    // every packet interval the fuzz target uses.
    let t0 = Instant::now();
    let cases = (8_185..8_200)
        .chain(16_378..16_390)
        .map(|ms| (ms, 8_000))
        .chain((1_362..1_370).map(|ms| (ms, 48_000)))
        .chain((4_092..4_100).map(|ms| (ms, 16_000)));
    for (duration_ms, rate) in cases {
        for ptime in [10, 20, 30, 40, 50, 60] {
            let mut tx = DtmfSender::new(1, duration_ms, 10, rate, ptime);
            let units = tx.duration_units();
            let mut rx = DtmfReceiver::new(rate);
            let mut buf = [0u8; 4];
            let mut now = t0;
            while let Some(p) = tx.next_packet(&mut buf) {
                rx.on_packet(now, TS.wrapping_add(p.timestamp_offset), p.marker, &buf);
                now += Duration::from_millis(u64::from(ptime));
            }
            rx.handle_timeout(now + Duration::from_secs(10));
            let events = drain(&mut rx);
            let what = format!("{duration_ms} ms at {rate} Hz, ptime {ptime}");
            assert_eq!(events.len(), 2, "{what}");
            assert_eq!((events[0].phase, events[1].phase), (Begin, End), "{what}");
            assert_eq!(
                u64::from(events[1].duration_ms),
                units * 1_000 / u64::from(rate),
                "{what}"
            );
            assert_eq!(rx.stats().timeouts, 0, "{what}");
        }
    }
}
