//! Per-stream receive accounting (loss, duplicates, reordering, RFC 3550
//! jitter) and latency histograms.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Sequence numbers remembered behind the highest one seen, for telling a
/// late packet from a duplicate.
pub const WINDOW: u32 = 1024;

/// What one arriving packet was, relative to what its stream had seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The newest sequence so far; `gap` sequences were skipped over (not
    /// yet seen: lost, or late).
    New { gap: u32 },
    /// Older than the newest, first time seen: reordered (fills a gap).
    Reordered,
    /// Seen before.
    Duplicate,
    /// Older than the window: counted as reordered, duplicates undetectable.
    TooOld,
}

/// One RTP stream as its receiver sees it, keyed on the probe's sequence
/// numbers (an engine may rewrite RTP sequence numbers; it cannot rewrite
/// the probe).
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    highest: Option<u32>,
    seen: [u64; (WINDOW / 64) as usize],
    last_transit: Option<i64>,
    /// RFC 3550 §6.4.1 interarrival jitter, in ns.
    pub jitter_ns: f64,
}

impl StreamStats {
    fn bit(seq: u32) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Accounts one packet: sequence, send time and arrival time (ns on the
    /// same clock).
    pub fn on_packet(&mut self, seq: u32, send_ns: u64, recv_ns: u64) -> Arrival {
        let arrival = match self.highest {
            None => {
                self.highest = Some(seq);
                let (w, b) = Self::bit(seq);
                self.seen[w] |= b;
                Arrival::New { gap: 0 }
            }
            Some(h) if seq > h => {
                let gap = seq - h - 1;
                if seq - h >= WINDOW {
                    self.seen = Default::default();
                } else {
                    for s in h + 1..seq {
                        let (w, b) = Self::bit(s);
                        self.seen[w] &= !b;
                    }
                }
                let (w, b) = Self::bit(seq);
                self.seen[w] |= b;
                self.highest = Some(seq);
                Arrival::New { gap }
            }
            Some(h) if h - seq < WINDOW => {
                let (w, b) = Self::bit(seq);
                if self.seen[w] & b != 0 {
                    return Arrival::Duplicate;
                }
                self.seen[w] |= b;
                Arrival::Reordered
            }
            Some(_) => Arrival::TooOld,
        };
        // RFC 3550 A.8, against the probe's send time instead of the RTP
        // timestamp: the tool's own send jitter is not charged to the engine.
        let transit = recv_ns as i64 - send_ns as i64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs() as f64;
            self.jitter_ns += (d - self.jitter_ns) / 16.0;
        }
        self.last_transit = Some(transit);
        arrival
    }
}

/// Highest latency a histogram holds: 60 s, in ns.
const MAX_NS: u64 = 60_000_000_000;

/// A latency histogram in ns, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("static histogram bounds are valid")
}

/// Records one value in ns, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record(ns.clamp(1, MAX_NS));
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min_ms: ms(h.min()),
            mean_ms: h.mean() / 1e6,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_stream() {
        let mut s = StreamStats::default();
        for seq in 0..100u32 {
            let t = u64::from(seq) * 20_000_000;
            assert_eq!(s.on_packet(seq, t, t + 100_000), Arrival::New { gap: 0 });
        }
        assert_eq!(s.jitter_ns, 0.0);
    }

    #[test]
    fn loss_reorder_duplicate() {
        let mut s = StreamStats::default();
        let p = |s: &mut StreamStats, seq: u32| s.on_packet(seq, 0, 0);
        assert_eq!(p(&mut s, 10), Arrival::New { gap: 0 });
        assert_eq!(p(&mut s, 13), Arrival::New { gap: 2 });
        assert_eq!(p(&mut s, 12), Arrival::Reordered);
        assert_eq!(p(&mut s, 12), Arrival::Duplicate);
        assert_eq!(p(&mut s, 13), Arrival::Duplicate);
        assert_eq!(p(&mut s, 10), Arrival::Duplicate);
        assert_eq!(p(&mut s, 11), Arrival::Reordered);
        // A jump past the window forgets everything behind it.
        assert_eq!(p(&mut s, 13 + WINDOW), Arrival::New { gap: WINDOW - 1 });
        assert_eq!(p(&mut s, 14), Arrival::Reordered);
        assert_eq!(p(&mut s, 13), Arrival::TooOld);
        // Ring bits reused by newer sequences are cleared as the stream
        // advances: 14's bit now stands for 14 + WINDOW, not yet seen.
        assert_eq!(p(&mut s, 15 + WINDOW), Arrival::New { gap: 1 });
        assert_eq!(p(&mut s, 14 + WINDOW), Arrival::Reordered);
        assert_eq!(p(&mut s, 14 + WINDOW), Arrival::Duplicate);
        assert_eq!(p(&mut s, 14), Arrival::TooOld);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        // Transit alternates 1 ms / 3 ms: |D| = 2 ms every packet after the
        // first, so J converges to 2 ms: J_n = 2 ms * (1 - (15/16)^n).
        let mut s = StreamStats::default();
        let mut expected = 0.0f64;
        for seq in 0..200u32 {
            let send = u64::from(seq) * 20_000_000;
            let transit = if seq % 2 == 0 { 1_000_000 } else { 3_000_000 };
            s.on_packet(seq, send, send + transit);
            if seq > 0 {
                expected += (2_000_000.0 - expected) / 16.0;
            }
            assert!((s.jitter_ns - expected).abs() < 1e-6);
        }
        assert!((s.jitter_ns - 2_000_000.0).abs() < 100.0);
    }

    #[test]
    fn histogram_percentiles() {
        let mut h = new_histogram();
        for i in 1..=1000u64 {
            record(&mut h, i * 1_000); // 1 µs .. 1 ms
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.002;
        assert!(close(s.p50_ms, 0.500), "{}", s.p50_ms);
        assert!(close(s.p90_ms, 0.900), "{}", s.p90_ms);
        assert!(close(s.p99_ms, 0.990), "{}", s.p99_ms);
        assert!(close(s.p999_ms, 0.999), "{}", s.p999_ms);
        assert!(close(s.max_ms, 1.0), "{}", s.max_ms);
        assert!(close(s.min_ms, 0.001), "{}", s.min_ms);
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 1002);
        assert_eq!(
            LatencySummary::of(&new_histogram()),
            LatencySummary::default()
        );
    }
}
