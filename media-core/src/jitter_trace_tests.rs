//! The adaptive jitter buffer against recorded-like network traces: seeded,
//! deterministic generators of arrival times, played through the buffer one
//! pop per 20 ms of driven time. Assertions are on counts and delays.

use super::*;
use crate::rtp::RtpPacket;

const TICK_US: i64 = 20_000;
/// One-way network delay every packet has before jitter.
const BASE_US: i64 = 30_000;
const PAYLOAD: [u8; 160] = [0x55; 160];

/// splitmix64: small, seeded, good enough for traces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One packet on the wire: when it arrives (µs after the call started).
#[derive(Clone, Copy, Debug)]
struct Pkt {
    at_us: i64,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

/// A sender of `n` packets, one per 20 ms of its own clock, which runs
/// `drift_ppm` fast (positive) or slow; each packet gets `BASE_US` plus
/// what `extra` says (`None`: lost on the way).
fn trace(n: usize, drift_ppm: i64, mut extra: impl FnMut(usize, i64) -> Option<i64>) -> Vec<Pkt> {
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let send_us = k as i64 * TICK_US * 1_000_000 / (1_000_000 + drift_ppm);
        if let Some(extra_us) = extra(k, send_us) {
            out.push(Pkt {
                at_us: send_us + BASE_US + extra_us,
                seq: (k as u16).wrapping_add(1_000),
                ts: (k as u32).wrapping_mul(160).wrapping_add(77_777),
                ssrc: 0x1234,
            });
        }
    }
    out
}

/// Low jitter: uniform 0–5 ms.
fn low(rng: &mut Rng) -> i64 {
    rng.below(5_000) as i64
}

/// What one run through the buffer produced, per tick and in total.
#[derive(Default)]
struct Run {
    frames: u64,
    lost: u64,
    /// Empty pops after playout first started and before the trace ended
    /// (underruns, rebuffering).
    gaps: u64,
    inserts: u64,
    /// Target delay (ms) after each tick.
    target_ms: Vec<u32>,
    /// Packets buffered after each tick.
    buffered: Vec<usize>,
    /// Tick indices of lost frames and gaps.
    missed_at: Vec<usize>,
    stats: JitterStats,
}

impl Run {
    fn missed_between(&self, from_s: usize, to_s: usize) -> usize {
        let (a, b) = (from_s * 50, to_s * 50);
        self.missed_at.iter().filter(|&&t| t >= a && t < b).count()
    }

    fn min_target(&self, from_s: usize, to_s: usize) -> u32 {
        let end = (to_s * 50).min(self.target_ms.len());
        *self.target_ms[from_s * 50..end].iter().min().unwrap()
    }

    fn max_buffered(&self, from_s: usize) -> usize {
        *self.buffered[from_s * 50..].iter().max().unwrap()
    }
}

/// Plays `pkts` (in any order: sorted by arrival here) for `ticks` pops.
fn play(mut pkts: Vec<Pkt>, ticks: usize) -> Run {
    pkts.sort_by_key(|p| p.at_us);
    let t0 = Instant::now();
    let at = |us: i64| t0 + Duration::from_micros(us as u64);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut run = Run::default();
    let mut next = 0;
    for tick in 0..ticks {
        let now_us = tick as i64 * TICK_US;
        while let Some(p) = pkts.get(next).filter(|p| p.at_us <= now_us) {
            let packet = RtpPacket {
                seq: p.seq,
                timestamp: p.ts,
                ssrc: p.ssrc,
                payload_type: 0,
                marker: false,
                payload: &PAYLOAD,
            };
            jb.push_rtp(at(p.at_us), &packet);
            next += 1;
        }
        match jb.pop(at(now_us)) {
            Playout::Frame(_) => run.frames += 1,
            Playout::Lost => {
                run.lost += 1;
                run.missed_at.push(tick);
            }
            Playout::Insert => run.inserts += 1,
            Playout::Empty if run.frames > 0 && next < pkts.len() => {
                run.gaps += 1;
                run.missed_at.push(tick);
            }
            Playout::Empty | Playout::ComfortNoise(_) => {}
        }
        run.target_ms.push(jb.target_delay().as_millis() as u32);
        run.buffered.push(jb.buffered());
    }
    run.stats = jb.stats();
    run
}

#[test]
fn steady_low_jitter_keeps_the_target_at_the_minimum() {
    let mut rng = Rng(1);
    let run = play(trace(3_000, 0, |_, _| Some(low(&mut rng))), 3_010);
    assert_eq!(run.target_ms.last(), Some(&20));
    assert!(run.target_ms.iter().all(|&t| t <= 40));
    assert_eq!(run.lost + run.gaps, 0, "{:?}", run.stats);
    // 40 ms held against a 20 ms target is one frame of slack: not worth
    // dropping audio for (a talkspurt start would take it back).
    assert_eq!(run.stats.frames_dropped_for_delay, 0);
    assert_eq!(run.stats.frames_inserted_for_delay, 0);
    assert_eq!(run.frames, 3_000);
}

#[test]
fn jitter_burst_raises_the_target_fast_and_lowers_it_slowly() {
    let mut rng = Rng(2);
    // 10 s calm, 10 s of 0–120 ms jitter (reordering included), 40 s calm.
    let burst = 10_000_000..20_000_000;
    let pkts = trace(3_000, 0, |_, send| {
        Some(if burst.contains(&send) {
            rng.below(120_000) as i64
        } else {
            low(&mut rng)
        })
    });
    let run = play(pkts, 3_010);
    assert!(run.min_target(5, 10) <= 20);
    // Up within the first second of the burst, and no further loss after.
    assert!(
        run.min_target(11, 20) >= 100,
        "{:?}",
        &run.target_ms[500..600]
    );
    assert!(
        run.missed_between(10, 11) <= 10,
        "{}",
        run.missed_between(10, 11)
    );
    assert!(
        run.missed_between(11, 21) <= 5,
        "{}",
        run.missed_between(11, 21)
    );
    // Held a while after the burst, then down one packet time at a time.
    assert!(run.min_target(20, 24) >= 100);
    assert!(run.target_ms.windows(2).all(|w| w[1] + 20 >= w[0]));
    assert_eq!(run.min_target(40, 60), 20);
    assert!(run.missed_between(21, 60) == 0);
    let adjust = run.stats.frames_dropped_for_delay + run.stats.frames_inserted_for_delay;
    assert!(adjust <= 20, "{:?}", run.stats);
}

#[test]
fn periodic_spikes_keep_the_target_up() {
    // A Wi-Fi scan every 2 s: 100 ms of nothing, then all at once.
    let pkts = trace(3_000, 0, |_, send| {
        let phase = (send - 1_000_000).rem_euclid(2_000_000);
        Some(if send >= 1_000_000 && phase < 100_000 {
            100_000 - phase
        } else {
            0
        })
    });
    let run = play(pkts, 3_010);
    assert!(run.missed_between(0, 2) <= 5);
    assert!(run.min_target(3, 60) >= 100, "{:?}", run.target_ms);
    assert_eq!(run.missed_between(4, 60), 0);
    assert!(run.stats.frames_dropped_for_delay <= 2, "{:?}", run.stats);
}

#[test]
fn random_loss_is_loss_not_delay() {
    let mut rng = Rng(5);
    let pkts = trace(3_000, 0, |k, _| {
        // The first packets arrive, so the stream has a start.
        (!(5..2_995).contains(&k) || !rng.chance(5)).then(|| low(&mut rng))
    });
    let missing = 3_000 - pkts.len() as u64;
    assert!((100..200).contains(&missing));
    let run = play(pkts, 3_010);
    assert_eq!(run.stats.lost, missing, "{:?}", run.stats);
    let drops = run.stats.frames_dropped_for_delay;
    assert_eq!(run.frames + missing + drops, 3_000);
    assert_eq!(run.target_ms.last(), Some(&20));
    assert!(run.target_ms.iter().all(|&t| t <= 40));
    let adjust = run.stats.frames_dropped_for_delay + run.stats.frames_inserted_for_delay;
    assert!(adjust <= 2, "{:?}", run.stats);
}

#[test]
fn reordering_is_absorbed() {
    let mut rng = Rng(6);
    // 5 % of packets overtaken by the next one or two (25–45 ms extra).
    let pkts = trace(3_000, 0, |_, _| {
        Some(if rng.chance(5) {
            25_000 + rng.below(20_000) as i64
        } else {
            low(&mut rng)
        })
    });
    let run = play(pkts, 3_010);
    assert!(run.missed_between(0, 60) <= 3, "{:?}", run.stats);
    assert!(run.missed_between(5, 60) == 0);
    assert!(run.stats.late <= 3);
    assert!(run.frames >= 2_997);
    assert!(run.min_target(5, 60) >= 50, "holds room for the reordered");
}

#[test]
fn duplicates_are_played_once() {
    let mut rng = Rng(7);
    let mut pkts = trace(3_000, 0, |_, _| Some(low(&mut rng)));
    let originals = pkts.clone();
    for p in &originals {
        if !rng.chance(10) {
            continue;
        }
        let mut copy = *p;
        copy.at_us += rng.below(10_000) as i64;
        pkts.push(copy);
    }
    let dups = (pkts.len() - originals.len()) as u64;
    let run = play(pkts, 3_010);
    assert_eq!(run.frames + run.stats.frames_dropped_for_delay, 3_000);
    assert_eq!(run.stats.duplicate + run.stats.late, dups);
    assert!(run.stats.late <= dups / 10, "{:?}", run.stats);
    assert_eq!(run.lost + run.gaps, 0);
    assert!(run.target_ms.iter().all(|&t| t <= 40));
}

#[test]
fn ssrc_change_restarts_cleanly() {
    let mut rng = Rng(8);
    let mut pkts = trace(3_000, 0, |_, _| Some(low(&mut rng)));
    // At 30 s the far end switches source: new SSRC, numbering and clock.
    for p in &mut pkts[1_500..] {
        p.ssrc = 0xbeef;
        p.seq = p.seq.wrapping_add(31_000);
        p.ts = p.ts.wrapping_add(0x8000_0000);
    }
    let run = play(pkts, 3_010);
    let s = run.stats;
    assert_eq!((s.resets, s.lost, s.late, s.jumps), (1, 0, 0, 0), "{s:?}");
    // The old source's buffered tail (at most the delay) is discarded; the
    // new one starts after one target delay.
    assert!(run.frames >= 2_996, "{}", run.frames);
    assert!(run.gaps <= 2, "{}", run.gaps);
    assert!(run.target_ms.iter().all(|&t| t <= 40));
}

/// Ten minutes of a sender clock off by `ppm`.
fn drift(ppm: i64) -> Run {
    let mut rng = Rng(9);
    let n = 30_000;
    let run = play(trace(n, ppm, |_, _| Some(low(&mut rng))), n + 10);
    let max = run.max_buffered(10);
    let at = run.buffered.iter().rposition(|&b| b == max);
    assert!(max <= 4, "{max} at {at:?}: {:?}", run.stats);
    assert!(run.missed_between(10, 600) <= 3, "{:?}", run.stats);
    assert!(run.target_ms.iter().all(|&t| t <= 60));
    run
}

#[test]
fn fast_sender_clock_is_followed_by_dropping() {
    // +1 %: 300 frames too many in ten minutes.
    let s = drift(10_000).stats;
    assert!((280..=320).contains(&s.frames_dropped_for_delay), "{s:?}");
    assert_eq!(s.frames_inserted_for_delay, 0, "{s:?}");
}

#[test]
fn slow_sender_clock_is_followed_by_inserting() {
    // −1 %: 300 frames too few in ten minutes.
    let s = drift(-10_000).stats;
    assert!((280..=320).contains(&s.frames_inserted_for_delay), "{s:?}");
    assert!(s.frames_dropped_for_delay <= 2, "{s:?}");
}

#[test]
fn half_percent_drift_either_way_stays_bounded() {
    for ppm in [5_000, -5_000] {
        let s = drift(ppm).stats;
        let adjust = s.frames_dropped_for_delay + s.frames_inserted_for_delay;
        assert!((130..=170).contains(&adjust), "{ppm}: {s:?}");
    }
}

#[test]
fn late_packet_makes_room_by_inserting() {
    let t0 = Instant::now();
    let at = |ms| t0 + Duration::from_millis(ms);
    let mut b = JitterBuffer::new(JitterConfig::default());
    let mut out = Vec::new();
    for k in 0..30u64 {
        // Packet 10 arrives 70 ms late (needs 80–85 ms); the rest on time.
        if k != 10 {
            b.push(at(20 * k), k as u16, k as u32 * 160, &[k as u8]);
        }
        if k == 13 {
            assert_eq!(b.push(at(20 * k + 10), 10, 1_600, &[10]), PushOutcome::Late);
        }
        out.push(match b.pop(at(20 * k)) {
            Playout::Insert => 'I',
            Playout::Lost => 'L',
            Playout::Frame(_) => 'F',
            Playout::Empty => 'E',
            Playout::ComfortNoise(_) => 'N',
        });
    }
    // One outlier among 14 arrivals is the 95th percentile (bucket edge).
    assert_eq!(b.target_delay(), Duration::from_millis(85));
    let s = b.stats();
    assert_eq!((s.lost, s.late), (1, 1));
    // Grows by one frame per INSERT_EVERY played, up to the new target.
    assert_eq!(
        s.frames_inserted_for_delay,
        2,
        "{}",
        String::from_iter(&out)
    );
}
