//! The adaptive delay controller of the jitter buffer: packet arrivals in, a
//! target playout delay out. Sans-IO like the buffer: every call takes `now`.
//!
//! How it estimates jitter (the idea of WebRTC NetEQ's delay histogram, in
//! RFC 3550 §6.4.1 terms):
//! - Each packet's *transit* is its arrival time minus its RTP timestamp
//!   (both in µs). The constant part (clock offset, path delay) cancels out
//!   against the smallest transit of the last ~2 s, which leaves the
//!   packet's *relative delay*: how much later than the fastest recent
//!   packet it came. The minimum slides over short blocks, so a sender whose
//!   clock drifts is followed rather than mistaken for jitter that grows.
//! - The relative delays of the last [`WINDOW`] packets (~5 s) sit in a
//!   histogram of 5 ms buckets; its 95th percentile plus half a packet of
//!   margin is what the target wants.
//! - The target grows at once when a packet comes later than the target
//!   (it would have been played as lost), and shrinks slowly: only after
//!   [`HOLD`] without a packet near the target, then one packet time per
//!   [`DECAY_INTERVAL`]. Periodic spikes (a Wi-Fi scan every few seconds)
//!   therefore keep the target up instead of being lost each time.
//!
//! The buffer measures its own delay with [`DelayController::delay_of`]
//! (how long after the fastest-transit arrival a frame is played) and
//! corrects towards [`DelayController::target`]; see `jitter.rs`.
//!
//! All state is fixed-size arrays: nothing here allocates.

use std::time::{Duration, Instant};

/// Relative delays remembered for the quantile (~5 s of 20 ms packets).
pub const WINDOW: usize = 256;
const BUCKET_US: i64 = 5_000;
/// 128 buckets of 5 ms: delays beyond 635 ms land in the last one.
const BUCKETS: usize = 128;
/// Packets per block of the sliding minimum; the minimum spans the
/// current block plus [`MIN_BLOCKS`] full ones (~2–2.5 s at 20 ms).
const MIN_BLOCK: u16 = 25;
const MIN_BLOCKS: usize = 4;
/// Share of packets allowed above the quantile, in percent (95th percentile).
const LATE_PERCENT: usize = 5;
/// How long a raised target is held before it may shrink.
pub const HOLD: Duration = Duration::from_secs(5);
/// While shrinking, one packet time per this interval.
pub const DECAY_INTERVAL: Duration = Duration::from_secs(1);

/// Bounds and units of the controller.
#[derive(Clone, Copy, Debug)]
pub struct DelayConfig {
    pub min_ms: u32,
    pub max_ms: u32,
    /// Target before anything is known.
    pub initial_ms: u32,
    pub ptime_ms: u32,
    pub clock_rate: u32,
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct DelayController {
    min_us: i64,
    max_us: i64,
    ptime_us: i64,
    clock_rate: i64,
    epoch: Option<Instant>,
    /// Last RTP timestamp seen and its extension to 64 bits (no wrap).
    ts_ref: Option<(u32, i64)>,
    cur_min: i64,
    cur_n: u16,
    block_mins: [i64; MIN_BLOCKS],
    block_pos: usize,
    ring: [u8; WINDOW],
    ring_len: usize,
    ring_pos: usize,
    counts: [u16; BUCKETS],
    target_us: i64,
    /// What the quantile alone wants (as of the last `update`).
    floor_us: i64,
    raised_at: Option<Instant>,
    decayed_at: Option<Instant>,
}

impl DelayController {
    pub fn new(cfg: DelayConfig) -> DelayController {
        let ptime_us = i64::from(cfg.ptime_ms.max(1)) * 1_000;
        let min_us = i64::from(cfg.min_ms) * 1_000;
        let max_us = (i64::from(cfg.max_ms) * 1_000).max(min_us);
        DelayController {
            min_us,
            max_us,
            ptime_us,
            clock_rate: i64::from(cfg.clock_rate.max(1)),
            epoch: None,
            ts_ref: None,
            cur_min: i64::MAX,
            cur_n: 0,
            block_mins: [i64::MAX; MIN_BLOCKS],
            block_pos: 0,
            ring: [0; WINDOW],
            ring_len: 0,
            ring_pos: 0,
            counts: [0; BUCKETS],
            target_us: (i64::from(cfg.initial_ms) * 1_000).clamp(min_us, max_us),
            floor_us: min_us,
            raised_at: None,
            decayed_at: None,
        }
    }

    /// The delay the buffer should hold.
    pub fn target(&self) -> Duration {
        Duration::from_micros(self.target_us as u64)
    }

    pub(crate) fn target_us(&self) -> i64 {
        self.target_us
    }

    /// A new stream (SSRC change, confirmed jump): its timestamps have
    /// nothing to do with the old ones, so transit history is forgotten.
    /// The target is kept: the network did not change.
    pub fn restart(&mut self) {
        self.ts_ref = None;
        self.cur_min = i64::MAX;
        self.cur_n = 0;
        self.block_mins = [i64::MAX; MIN_BLOCKS];
        self.ring_len = 0;
        self.ring_pos = 0;
        self.counts = [0; BUCKETS];
    }

    /// Records a packet's arrival; returns its relative delay.
    pub fn on_arrival(&mut self, now: Instant, ts: u32) -> Duration {
        let epoch = *self.epoch.get_or_insert(now);
        // The initial target is held like a raised one.
        self.raised_at.get_or_insert(now);
        let ext = self.extend(ts);
        self.ts_ref = Some((ts, ext));
        let transit = micros_since(epoch, now) - self.ts_micros(ext);
        self.cur_min = self.cur_min.min(transit);
        self.cur_n += 1;
        if self.cur_n >= MIN_BLOCK {
            self.block_mins[self.block_pos] = self.cur_min;
            self.block_pos = (self.block_pos + 1) % MIN_BLOCKS;
            self.cur_min = i64::MAX;
            self.cur_n = 0;
        }
        let rel = (transit - self.min_transit().unwrap_or(transit)).max(0);
        self.record(rel);
        let wanted = (rel + self.ptime_us / 2).clamp(self.min_us, self.max_us);
        if wanted > self.target_us {
            // It came after the target: it would have been lost. Grow now.
            self.target_us = wanted;
            self.raised_at = Some(now);
        } else if wanted > self.floor_us && wanted + self.ptime_us >= self.target_us {
            // In the tail, near the target: the target is still needed.
            self.raised_at = Some(now);
        }
        Duration::from_micros(rel as u64)
    }

    /// Once per tick: follows the quantile up at once, down slowly.
    pub fn update(&mut self, now: Instant) {
        let Some(q) = self.quantile_us() else {
            return;
        };
        let wanted = (q + self.ptime_us / 2).clamp(self.min_us, self.max_us);
        self.floor_us = wanted;
        if wanted > self.target_us {
            self.target_us = wanted;
            self.raised_at = Some(now);
            return;
        }
        let since = |t: Option<Instant>, d: Duration| {
            t.is_none_or(|t| now.saturating_duration_since(t) >= d)
        };
        if wanted < self.target_us
            && since(self.raised_at, HOLD)
            && since(self.decayed_at, DECAY_INTERVAL)
        {
            self.target_us = (self.target_us - self.ptime_us).max(wanted);
            self.decayed_at = Some(now);
        }
    }

    /// How long after the fastest recent arrival a frame with timestamp
    /// `ts` is played if it is played at `now`: the buffer's actual delay.
    /// `None` before any packet of the current stream.
    pub fn delay_of(&self, now: Instant, ts: u32) -> Option<i64> {
        let epoch = self.epoch?;
        let min = self.min_transit()?;
        self.ts_ref?;
        Some(micros_since(epoch, now) - self.ts_micros(self.extend(ts)) - min)
    }

    fn extend(&self, ts: u32) -> i64 {
        match self.ts_ref {
            Some((raw, ext)) => ext + i64::from(ts.wrapping_sub(raw) as i32),
            None => i64::from(ts),
        }
    }

    fn ts_micros(&self, ext: i64) -> i64 {
        (ext * 1_000_000).div_euclid(self.clock_rate)
    }

    fn min_transit(&self) -> Option<i64> {
        let m = self.block_mins.iter().fold(self.cur_min, |a, &b| a.min(b));
        (m != i64::MAX).then_some(m)
    }

    fn record(&mut self, rel_us: i64) {
        let bucket = (rel_us / BUCKET_US).min(BUCKETS as i64 - 1) as u8;
        if self.ring_len == WINDOW {
            let old = self.ring[self.ring_pos];
            self.counts[old as usize] -= 1;
        } else {
            self.ring_len += 1;
        }
        self.ring[self.ring_pos] = bucket;
        self.ring_pos = (self.ring_pos + 1) % WINDOW;
        self.counts[bucket as usize] += 1;
    }

    /// Upper edge of the bucket holding the 95th percentile.
    fn quantile_us(&self) -> Option<i64> {
        if self.ring_len == 0 {
            return None;
        }
        let allowed = self.ring_len * LATE_PERCENT / 100;
        let mut above = 0usize;
        for b in (0..BUCKETS).rev() {
            above += self.counts[b] as usize;
            if above > allowed {
                return Some((b as i64 + 1) * BUCKET_US);
            }
        }
        Some(BUCKET_US)
    }
}

fn micros_since(epoch: Instant, now: Instant) -> i64 {
    now.saturating_duration_since(epoch).as_micros() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl() -> DelayController {
        DelayController::new(DelayConfig {
            min_ms: 20,
            max_ms: 200,
            initial_ms: 40,
            ptime_ms: 20,
            clock_rate: 8_000,
        })
    }

    #[test]
    fn relative_delay_is_against_the_fastest_recent_packet() {
        let t0 = Instant::now();
        let mut c = ctl();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(c.on_arrival(at(0), 0), Duration::ZERO);
        assert_eq!(c.on_arrival(at(50), 160), Duration::from_millis(30));
        assert_eq!(c.on_arrival(at(40), 320), Duration::ZERO);
        // Played 60 ms after the fastest arrival's schedule.
        assert_eq!(c.delay_of(at(100), 320), Some(60_000));
    }

    #[test]
    fn late_packet_grows_at_once_and_decays_after_hold() {
        let t0 = Instant::now();
        let mut c = ctl();
        let mut ts = 0u32;
        let mut last = t0;
        for k in 0..700u64 {
            let extra = if k == 100 { 120 } else { 0 };
            last = t0 + Duration::from_millis(20 * k + extra);
            c.on_arrival(last, ts);
            c.update(last);
            ts = ts.wrapping_add(160);
            if k == 100 {
                assert_eq!(c.target(), Duration::from_millis(130));
            }
            if k == 100 + 200 {
                assert_eq!(c.target(), Duration::from_millis(130), "held");
            }
        }
        // 12 s after the spike: decayed to the floor.
        assert_eq!(c.target(), Duration::from_millis(20));
        assert!(last > t0);
    }

    #[test]
    fn timestamps_wrap() {
        let t0 = Instant::now();
        let mut c = ctl();
        c.on_arrival(t0, u32::MAX - 159);
        let rel = c.on_arrival(t0 + Duration::from_millis(20), 0);
        assert_eq!(rel, Duration::ZERO);
    }
}
