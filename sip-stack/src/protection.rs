//! Protection against hostile or runaway peers, sans-IO: a per-source INVITE
//! rate limit and a blocklist of scanner User-Agents.
//!
//! Carriers' edges see SIP scanners (`friendly-scanner`, `sipvicious`) and
//! misconfigured PBXs that loop INVITEs. Scanners are dropped without a
//! word (an answer confirms a SIP server is there); floods get `503` with
//! `Retry-After` from the caller of [`InviteRateLimiter::allow`], which is
//! how RFC 3261 §21.5.4 tells a well-behaved peer to back off.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Drops requests whose User-Agent contains a blocked word (ASCII case-insensitive).
#[derive(Clone, Debug, Default)]
pub struct UserAgentFilter {
    blocked: Vec<String>,
}

impl UserAgentFilter {
    pub fn new<S: AsRef<str>>(blocked: &[S]) -> Self {
        Self {
            blocked: blocked
                .iter()
                .map(|b| b.as_ref().trim().to_ascii_lowercase())
                .filter(|b| !b.is_empty())
                .collect(),
        }
    }

    /// The scanner signatures operators see most, for a default config.
    pub fn default_signatures() -> Vec<String> {
        [
            "friendly-scanner",
            "sipvicious",
            "sipcli",
            "sip-scan",
            "vaxsipuseragent",
            "pplsip",
            "sundayddr",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    pub fn is_blocked(&self, user_agent: Option<&str>) -> bool {
        let Some(ua) = user_agent else {
            return false;
        };
        let ua = ua.to_ascii_lowercase();
        self.blocked.iter().any(|b| ua.contains(b.as_str()))
    }
}

/// A token bucket per source IP: `rate` INVITEs a second, bursts of `burst`.
/// Memory is bounded: at most `max_sources` buckets; when full, buckets that
/// have refilled (idle sources) are dropped first, and if none has, the new
/// source is limited as if it had an empty bucket (fail closed under a
/// spoofed-source flood rather than grow without bound).
#[derive(Debug)]
pub struct InviteRateLimiter {
    rate: f64,
    burst: f64,
    max_sources: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl InviteRateLimiter {
    /// `rate` per second (0 disables the limit), `burst` at least 1.
    pub fn new(rate: f64, burst: u32, max_sources: usize) -> Self {
        Self {
            rate: rate.max(0.0),
            burst: f64::from(burst.max(1)),
            max_sources: max_sources.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Whether one more INVITE from `source` is allowed at `now`.
    pub fn allow(&mut self, now: Instant, source: IpAddr) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.max_sources {
            self.evict_idle(now);
            if self.buckets.len() >= self.max_sources {
                return false;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Seconds until `source` may send again, for `Retry-After` (at least 1).
    pub fn retry_after(&self) -> Duration {
        if self.rate == 0.0 {
            return Duration::from_secs(1);
        }
        Duration::from_secs_f64((1.0 / self.rate).ceil().max(1.0))
    }

    pub fn sources(&self) -> usize {
        self.buckets.len()
    }

    /// Forgets sources whose bucket would be full by now: they are idle.
    fn evict_idle(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn scanner_user_agents_are_blocked_case_insensitively() {
        let f = UserAgentFilter::new(&UserAgentFilter::default_signatures());
        assert!(f.is_blocked(Some("friendly-scanner")));
        assert!(f.is_blocked(Some("SIPVicious 0.3.4")));
        assert!(!f.is_blocked(Some("Linphone/5.1")));
        assert!(!f.is_blocked(None));
        assert!(!UserAgentFilter::new::<&str>(&[]).is_blocked(Some("friendly-scanner")));
    }

    #[test]
    fn burst_then_rate_with_driven_time() {
        let t0 = Instant::now();
        let mut l = InviteRateLimiter::new(10.0, 5, 100);
        let allowed = (0..20).filter(|_| l.allow(t0, ip(1))).count();
        assert_eq!(allowed, 5, "the burst");
        assert!(
            !l.allow(t0 + Duration::from_millis(50), ip(1)),
            "half a token"
        );
        assert!(
            l.allow(t0 + Duration::from_millis(100), ip(1)),
            "one token after 100 ms"
        );
        assert!(l.allow(t0, ip(2)), "other sources have their own bucket");
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| l.allow(later, ip(1))).count(), 5);
        assert_eq!(l.retry_after(), Duration::from_secs(1));
    }

    #[test]
    fn memory_is_bounded_and_idle_sources_make_room() {
        let t0 = Instant::now();
        let mut l = InviteRateLimiter::new(1.0, 2, 3);
        for i in 0..3 {
            assert!(l.allow(t0, ip(i)));
        }
        assert!(
            !l.allow(t0, ip(9)),
            "table full of busy sources: fail closed"
        );
        assert_eq!(l.sources(), 3);
        let later = t0 + Duration::from_secs(10);
        assert!(l.allow(later, ip(9)), "idle sources were evicted");
        assert!(l.sources() <= 3);
    }

    #[test]
    fn zero_rate_disables_the_limit() {
        let t0 = Instant::now();
        let mut l = InviteRateLimiter::new(0.0, 1, 1);
        assert!((0..1000).all(|i| l.allow(t0, ip((i % 250) as u8))));
    }
}
