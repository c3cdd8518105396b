//! Jitter buffer cases, with time driven by hand.

use super::*;

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn jb() -> JitterBuffer {
    JitterBuffer::new(JitterConfig::default())
}

/// The fixed-delay policy, for cases that pin an exact playout sequence
/// which an adapting delay would (rightly) change.
fn fixed() -> JitterBuffer {
    JitterBuffer::new(JitterConfig {
        adaptive: false,
        ..JitterConfig::default()
    })
}

/// What a pop returned, owned, so a test can list a whole run.
#[derive(Debug, PartialEq, Eq)]
enum P {
    F(u8),
    L,
    E,
    /// Inserted to grow the delay.
    I,
    /// Comfort noise at a level.
    N(u8),
}

fn pop(jb: &mut JitterBuffer, now: Instant) -> P {
    match jb.pop(now) {
        Playout::Frame(b) => P::F(b[0]),
        Playout::Lost => P::L,
        Playout::Empty => P::E,
        Playout::Insert => P::I,
        Playout::ComfortNoise(level) => P::N(level),
    }
}

/// Timestamps follow the sequence number (160 per packet), across the wrap.
fn push(jb: &mut JitterBuffer, now: Instant, seq: u16) -> PushOutcome {
    let ts = 1_000_000i64 + seq as i16 as i64 * 160;
    jb.push(now, seq, ts as u32, &[seq as u8; 160])
}

/// Sends `seqs[k]` at tick k and pops once per tick; returns all pops.
fn run(jb: &mut JitterBuffer, t0: Instant, seqs: &[Option<u16>], extra_ticks: usize) -> Vec<P> {
    let mut out = Vec::new();
    for k in 0..seqs.len() + extra_ticks {
        let now = ms(t0, 20 * k as u64);
        if let Some(Some(seq)) = seqs.get(k) {
            push(jb, now, *seq);
        }
        out.push(pop(jb, now));
    }
    out
}

#[test]
fn in_order_plays_after_target_delay() {
    let t0 = Instant::now();
    let mut b = jb();
    let seqs: Vec<_> = (100..105).map(Some).collect();
    let out = run(&mut b, t0, &seqs, 3);
    use P::*;
    assert_eq!(out, [E, E, F(100), F(101), F(102), F(103), F(104), E]);
    assert_eq!(b.stats().accepted, 5);
    assert_eq!(b.stats().lost, 0);
    assert_eq!(b.stats().underruns, 1);
    assert_eq!(b.playout_timestamp(), 1_000_000 + 105 * 160);
}

#[test]
fn reorder_within_delay_is_repaired() {
    let t0 = Instant::now();
    let mut b = jb();
    // 1 arrives before 0, and 3 before 2.
    let out = run(
        &mut b,
        t0,
        &[Some(1), Some(0), Some(3), Some(2), Some(4)],
        1,
    );
    use P::*;
    assert_eq!(out, [E, E, F(0), F(1), F(2), F(3)]);
    assert_eq!(b.stats().late, 0);
}

#[test]
fn duplicates_are_counted_and_dropped() {
    let t0 = Instant::now();
    let mut b = jb();
    assert_eq!(push(&mut b, t0, 7), PushOutcome::Accepted);
    assert_eq!(push(&mut b, t0, 8), PushOutcome::Accepted);
    assert_eq!(push(&mut b, t0, 8), PushOutcome::Duplicate);
    assert_eq!(b.buffered(), 2);
    assert_eq!(pop(&mut b, ms(t0, 40)), P::F(7));
    assert_eq!(pop(&mut b, ms(t0, 60)), P::F(8));
    assert_eq!(b.stats().duplicate, 1);
}

#[test]
fn loss_is_reported_once_later_packets_exist() {
    let t0 = Instant::now();
    let mut b = jb();
    let out = run(
        &mut b,
        t0,
        &[Some(0), Some(1), None, Some(3), Some(4), Some(5)],
        0,
    );
    use P::*;
    assert_eq!(out, [E, E, F(0), F(1), L, F(3)]);
    assert_eq!(b.stats().lost, 1);
    assert_eq!(b.playout_timestamp(), 1_000_000 + 3 * 160);
}

#[test]
fn sequence_wraps_at_65535() {
    let t0 = Instant::now();
    let mut b = jb();
    let seqs = [65_533u16, 65_534, 65_535, 0, 1, 2];
    let out = run(&mut b, t0, &seqs.map(Some), 2);
    use P::*;
    assert_eq!(out[2..], [F(253), F(254), F(255), F(0), F(1), F(2)]);
    assert_eq!(b.stats().late + b.stats().lost + b.stats().jumps, 0);
}

#[test]
fn late_packets_are_dropped_with_a_counter() {
    let t0 = Instant::now();
    // Fixed delay: adaptive, the late packet would raise the target and
    // the buffer would insert a frame before 3 (see jitter_trace_tests).
    let mut b = fixed();
    let out = run(&mut b, t0, &[Some(0), None, Some(2), Some(3)], 0);
    assert_eq!(out[2..], [P::F(0), P::L]);
    // 1 turns up after it was declared lost.
    assert_eq!(push(&mut b, ms(t0, 80), 1), PushOutcome::Late);
    assert_eq!(pop(&mut b, ms(t0, 80)), P::F(2));
    assert_eq!(b.stats().late, 1);
    // Also late after an underrun: the buffer remembers what it played.
    assert_eq!(pop(&mut b, ms(t0, 100)), P::F(3));
    assert_eq!(pop(&mut b, ms(t0, 120)), P::E);
    assert_eq!(push(&mut b, ms(t0, 130), 3), PushOutcome::Late);
    assert_eq!(b.stats().late, 2);
}

#[test]
fn underrun_rebuffers_on_the_next_talkspurt() {
    let t0 = Instant::now();
    let mut b = jb();
    let mut seqs: Vec<Option<u16>> = vec![Some(0), Some(1)];
    seqs.extend([None; 5]);
    seqs.extend([Some(50), Some(51), Some(52)]);
    let out = run(&mut b, t0, &seqs, 2);
    use P::*;
    // Silence suppression: seq continues far ahead after the gap; the
    // buffer re-buffers for the target delay instead of reporting loss.
    assert_eq!(out[2..5], [F(0), F(1), E]);
    assert_eq!(out[7..], [E, E, F(50), F(51), F(52)]);
    assert_eq!(b.stats().lost, 0);
}

#[test]
fn sequence_jump_needs_confirmation() {
    let t0 = Instant::now();
    let mut b = jb();
    for s in 0..3 {
        push(&mut b, t0, s);
    }
    assert_eq!(push(&mut b, t0, 30_000), PushOutcome::Jump);
    assert_eq!(push(&mut b, t0, 3), PushOutcome::Accepted);
    assert_eq!(push(&mut b, t0, 30_001), PushOutcome::Jump);
    assert_eq!(push(&mut b, t0, 30_002), PushOutcome::Restarted);
    assert_eq!(b.buffered(), 1);
    assert_eq!(pop(&mut b, ms(t0, 20)), P::E);
    assert_eq!(pop(&mut b, ms(t0, 40)), P::F(30_002u16 as u8));
    assert_eq!(b.stats().jumps, 2);
    assert_eq!(b.stats().resets, 1);
}

#[test]
fn timestamp_jump_restarts() {
    let t0 = Instant::now();
    let mut b = jb();
    b.push(t0, 10, 1_600, &[10]);
    let far = 1_600 + 8_000 * 600; // ten minutes ahead with seq contiguous
    assert_eq!(b.push(t0, 11, far, &[11]), PushOutcome::Jump);
    assert_eq!(b.push(t0, 12, far + 160, &[12]), PushOutcome::Restarted);
    assert_eq!(pop(&mut b, ms(t0, 40)), P::F(12));
}

#[test]
fn ssrc_change_resets() {
    let t0 = Instant::now();
    let mut b = jb();
    let pkt = |ssrc, seq: u16, payload: &'static [u8]| RtpPacket {
        seq,
        timestamp: seq as u32 * 160,
        ssrc,
        payload_type: 0,
        marker: false,
        payload,
    };
    b.push_rtp(t0, &pkt(1, 100, &[1]));
    b.push_rtp(t0, &pkt(1, 101, &[2]));
    b.push_rtp(ms(t0, 10), &pkt(2, 5, &[9]));
    assert_eq!(b.buffered(), 1);
    assert_eq!(b.stats().resets, 1);
    assert_eq!(pop(&mut b, ms(t0, 40)), P::E);
    assert_eq!(pop(&mut b, ms(t0, 60)), P::F(9));
}

#[test]
fn burst_after_stall_is_capped_to_max_delay() {
    let t0 = Instant::now();
    let mut b = jb();
    for s in 0..40 {
        push(&mut b, t0, s);
    }
    // Only the newest max_delay plus 4 packets of headroom (14 frames) is
    // ever played.
    assert!(b.buffered() <= 16);
    let mut played = Vec::new();
    for k in 2..18 {
        played.push(pop(&mut b, ms(t0, 20 * k)));
    }
    assert_eq!(played[0], P::F(26));
    assert_eq!(played[13], P::F(39));
    assert_eq!(played[14], P::E);
    assert!(b.stats().dropped >= 24);
    // The fixed policy caps at max_delay itself (10 frames).
    let mut b = fixed();
    for s in 0..40 {
        push(&mut b, t0, s);
    }
    assert_eq!(pop(&mut b, ms(t0, 40)), P::F(30));
}

#[test]
fn oversize_payload_is_rejected() {
    let mut b = jb();
    assert_eq!(
        b.push(Instant::now(), 1, 0, &[0; 161]),
        PushOutcome::TooLarge
    );
    assert_eq!(b.stats().too_large, 1);
    assert_eq!(b.buffered(), 0);
}

#[test]
fn far_ahead_packet_within_jump_slides_the_window() {
    let t0 = Instant::now();
    let mut b = jb();
    push(&mut b, t0, 0);
    push(&mut b, t0, 1);
    assert_eq!(pop(&mut b, ms(t0, 40)), P::F(0));
    // 100 frames ahead: loss of 2 s, not a new stream.
    assert_eq!(push(&mut b, ms(t0, 50), 101), PushOutcome::Accepted);
    // The gap is concealed for at most the cap (max_delay plus 4 packets,
    // 14 frames), then 101 plays.
    let pops: Vec<P> = (0..15).map(|k| pop(&mut b, ms(t0, 60 + 20 * k))).collect();
    let at = pops
        .iter()
        .position(|p| *p == P::F(101))
        .expect("101 played");
    assert!(at <= 14);
    assert!(pops[..at].iter().all(|p| *p == P::L));
    assert_eq!(b.stats().lost + b.stats().dropped, 100);
}

#[test]
fn peek_next_shows_the_packet_after_a_loss() {
    let t0 = Instant::now();
    let mut b = jb();
    assert_eq!(b.peek_next(), None, "nothing yet");
    // 11 is lost; 12 and 13 are here.
    for seq in [10, 12, 13] {
        push(&mut b, t0, seq);
    }
    assert_eq!(b.peek_next().map(|p| p[0]), Some(10));
    let now = ms(t0, 40);
    assert_eq!(pop(&mut b, now), P::F(10));
    assert_eq!(b.peek_next(), None, "11 is missing");
    assert_eq!(pop(&mut b, now), P::L);
    // What FEC decodes the lost frame from; peeking takes nothing.
    assert_eq!(b.peek_next().map(|p| (p[0], p.len())), Some((12, 160)));
    assert_eq!(b.peek_next().map(|p| p[0]), Some(12));
    assert_eq!(b.buffered(), 2);
    assert_eq!(pop(&mut b, now), P::F(12));
    assert_eq!(pop(&mut b, now), P::F(13));
    assert_eq!(b.peek_next(), None);
    assert_eq!(pop(&mut b, now), P::E);
    assert_eq!(b.stats().lost, 1);
}

/// RFC 3389: audio, a CN packet (its own sequence number), a second of
/// silence with one CN update, then audio again: the CN packets play as
/// comfort noise, the silences are underruns, and nothing counts as lost.
#[test]
fn comfort_noise_takes_its_sequence_number_and_is_not_loss() {
    let mut jb = fixed();
    let t0 = Instant::now();
    let cn = |jb: &mut JitterBuffer, now: Instant, seq: u16, level: u8| {
        let ts = 1_000_000u32 + seq as u32 * 160;
        let header = crate::rtp::RtpHeader {
            payload_type: 13,
            marker: false,
            seq,
            timestamp: ts,
            ssrc: 7,
        };
        let mut buf = [0u8; 32];
        let n = header.write(&[level], &mut buf).unwrap();
        jb.push_comfort_noise(now, &RtpPacket::parse(&buf[..n]).unwrap())
    };
    let mut pops = Vec::new();
    for k in 0..80u16 {
        let now = ms(t0, 20 * k as u64);
        match k {
            0..=4 => {
                push(&mut jb, now, k + 1);
            }
            5 => assert_eq!(cn(&mut jb, now, 6, 55), PushOutcome::Accepted),
            30 => assert_eq!(cn(&mut jb, now, 7, 60), PushOutcome::Accepted),
            60..=64 => {
                push(&mut jb, now, k - 52);
            }
            _ => {}
        }
        pops.push(pop(&mut jb, now));
    }
    assert!(
        pops.contains(&P::N(55)) && pops.contains(&P::N(60)),
        "{pops:?}"
    );
    let frames: Vec<u8> = pops
        .iter()
        .filter_map(|p| match p {
            P::F(b) => Some(*b),
            _ => None,
        })
        .collect();
    assert_eq!(frames, [1, 2, 3, 4, 5, 8, 9, 10, 11, 12]);
    assert!(!pops.contains(&P::L));
    assert_eq!(jb.stats().lost, 0, "{:?}", jb.stats());
}
