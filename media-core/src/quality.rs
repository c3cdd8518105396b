//! Per-leg call quality: the numbers RTCP gives us ([`LegQuality`]) and a
//! listening-quality estimate from them, the E-model of ITU-T G.107 in the
//! simplified form VoIP monitors commonly use (RFC 3611's R-factor and MOS
//! fields are computed the same way).
//!
//! R = 93.2 − Id − Ie,eff, where
//! - Id, the delay impairment, for a one-way mouth-to-ear delay `d` in ms:
//!   0.024·d + 0.11·(d − 177.3) when d > 177.3;
//! - Ie,eff, the equipment impairment under random packet loss `Ppl` (%):
//!   Ie + (95 − Ie)·Ppl / (Ppl + Bpl), with the codec's Ie and loss
//!   robustness Bpl (G.113 appendix I: G.711 has Ie = 0, Bpl = 4.3 without
//!   and 25.1 with packet loss concealment);
//!
//! and MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R), 1 below R = 0 and
//! 4.5 above R = 100. The default R of 93.2 gives a MOS of about 4.41,
//! the best narrowband telephony can score.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::codec::Codec;

/// A codec's E-model parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EModel {
    /// Equipment impairment without loss.
    pub ie: f64,
    /// Packet-loss robustness factor.
    pub bpl: f64,
}

impl EModel {
    /// G.711 without packet loss concealment.
    pub const G711: EModel = EModel { ie: 0.0, bpl: 4.3 };
    /// G.711 with packet loss concealment (what our legs do).
    pub const G711_PLC: EModel = EModel { ie: 0.0, bpl: 25.1 };

    /// The parameters for a leg's codec, as our receive path plays it
    /// (with concealment).
    pub fn for_codec(codec: Codec) -> EModel {
        match codec {
            Codec::Pcmu | Codec::Pcma => EModel::G711_PLC,
            // Scored on the narrowband scale: G.722 carries narrowband
            // speech at least as well as G.711 with concealment, and the
            // wideband E-model (G.107.1) is another scale altogether.
            Codec::G722 => EModel::G711_PLC,
            // Same scale; Opus' in-band FEC and concealment do better
            // under loss than this credits.
            Codec::Opus => EModel::G711_PLC,
        }
    }

    /// The R factor for a one-way delay and a packet loss in percent.
    pub fn r_factor(&self, one_way_delay: Duration, loss_percent: f64) -> f64 {
        let d = one_way_delay.as_secs_f64() * 1_000.0;
        let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
        let ppl = if loss_percent.is_finite() {
            loss_percent.clamp(0.0, 100.0)
        } else {
            0.0
        };
        let ie_eff = self.ie + (95.0 - self.ie) * ppl / (ppl + self.bpl);
        93.2 - id - ie_eff
    }

    /// The MOS estimate for a one-way delay and a packet loss in percent.
    pub fn mos(&self, one_way_delay: Duration, loss_percent: f64) -> f64 {
        mos_from_r(self.r_factor(one_way_delay, loss_percent))
    }
}

/// G.107's mapping from R to a mean opinion score (1 to 4.5).
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)).clamp(1.0, 4.5)
    }
}

/// One leg's call quality, from its RTCP session. "Ours" is what we
/// measure about the stream we receive; "remote" is what the far end
/// reported about the stream we send (from its receiver reports).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegQuality {
    /// RTP packets expected from the far end (RFC 3550 A.3): highest
    /// extended sequence number − first + 1.
    pub packets_expected: u64,
    /// Expected − received; negative if duplicates outnumber losses.
    pub cumulative_lost: i64,
    /// Lost fraction in the last report interval, 0–1.
    pub fraction_lost: f64,
    /// Interarrival jitter of the far end's stream (RFC 3550 A.8), in ms.
    pub jitter_ms: f64,
    /// Round-trip time from the far end's last report about our stream
    /// (RFC 3550 6.4.1); `None` until it answered one of our SRs.
    pub rtt_ms: Option<f64>,
    /// The far end's lost fraction of our stream (0–1), from its last report.
    pub remote_fraction_lost: Option<f64>,
    /// The far end's jitter of our stream, in ms.
    pub remote_jitter_ms: Option<f64>,
    /// The far end's cumulative loss of our stream.
    pub remote_cumulative_lost: Option<i64>,
    /// The E-model estimate of how the far end's audio sounds here: the
    /// call's loss so far (cumulative lost ÷ expected), a one-way delay of
    /// RTT/2 (0 while unknown) plus the jitter buffer's delay. `None`
    /// until a packet was received.
    pub mos: Option<f64>,
    /// Compound RTCP packets (SR or RR, with SDES) sent.
    pub reports_sent: u64,
    /// Valid compound RTCP packets received.
    pub reports_received: u64,
    /// RTCP datagrams refused: malformed (on either port), or on the RTCP
    /// port from a foreign source once its source was latched. (RTCP-like
    /// datagrams refused on the RTP port also count as invalid RTP.)
    pub rtcp_invalid: u64,
}

/// Encodes an optional float in 64 bits; NaN stands for `None`.
fn opt_bits(v: Option<f64>) -> u64 {
    v.filter(|v| !v.is_nan()).unwrap_or(f64::NAN).to_bits()
}

fn bits_opt(bits: u64) -> Option<f64> {
    Some(f64::from_bits(bits)).filter(|v| !v.is_nan())
}

/// [`LegQuality`] as relaxed atomics (floats as their bits), published by
/// the worker once per tick.
#[derive(Debug, Default)]
pub(crate) struct AtomicQuality {
    packets_expected: AtomicU64,
    cumulative_lost: AtomicU64,
    fraction_lost: AtomicU64,
    jitter_ms: AtomicU64,
    rtt_ms: AtomicU64,
    remote_fraction_lost: AtomicU64,
    remote_jitter_ms: AtomicU64,
    remote_cumulative_lost: AtomicU64,
    mos: AtomicU64,
    reports_sent: AtomicU64,
    reports_received: AtomicU64,
    rtcp_invalid: AtomicU64,
}

impl AtomicQuality {
    /// Nothing known yet: every optional field `None`.
    pub(crate) fn new() -> AtomicQuality {
        let q = AtomicQuality::default();
        q.publish(&LegQuality::default());
        q
    }

    pub(crate) fn publish(&self, q: &LegQuality) {
        self.packets_expected.store(q.packets_expected, Relaxed);
        self.cumulative_lost
            .store(q.cumulative_lost as u64, Relaxed);
        self.fraction_lost.store(q.fraction_lost.to_bits(), Relaxed);
        self.jitter_ms.store(q.jitter_ms.to_bits(), Relaxed);
        self.rtt_ms.store(opt_bits(q.rtt_ms), Relaxed);
        let remote = &self.remote_fraction_lost;
        remote.store(opt_bits(q.remote_fraction_lost), Relaxed);
        let remote = &self.remote_jitter_ms;
        remote.store(opt_bits(q.remote_jitter_ms), Relaxed);
        // i64::MIN stands for None: a 24-bit field never gets there.
        let lost = q.remote_cumulative_lost.unwrap_or(i64::MIN);
        self.remote_cumulative_lost.store(lost as u64, Relaxed);
        self.mos.store(opt_bits(q.mos), Relaxed);
        self.reports_sent.store(q.reports_sent, Relaxed);
        self.reports_received.store(q.reports_received, Relaxed);
        self.rtcp_invalid.store(q.rtcp_invalid, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LegQuality {
        let remote_lost = self.remote_cumulative_lost.load(Relaxed) as i64;
        LegQuality {
            packets_expected: self.packets_expected.load(Relaxed),
            cumulative_lost: self.cumulative_lost.load(Relaxed) as i64,
            fraction_lost: f64::from_bits(self.fraction_lost.load(Relaxed)),
            jitter_ms: f64::from_bits(self.jitter_ms.load(Relaxed)),
            rtt_ms: bits_opt(self.rtt_ms.load(Relaxed)),
            remote_fraction_lost: bits_opt(self.remote_fraction_lost.load(Relaxed)),
            remote_jitter_ms: bits_opt(self.remote_jitter_ms.load(Relaxed)),
            remote_cumulative_lost: Some(remote_lost).filter(|&l| l != i64::MIN),
            mos: bits_opt(self.mos.load(Relaxed)),
            reports_sent: self.reports_sent.load(Relaxed),
            reports_received: self.reports_received.load(Relaxed),
            rtcp_invalid: self.rtcp_invalid.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW_DELAY: Duration = Duration::from_millis(40);

    #[test]
    fn mos_at_known_points() {
        assert!(
            (mos_from_r(93.2) - 4.41).abs() < 0.01,
            "{}",
            mos_from_r(93.2)
        );
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
        // R = 50 is "nearly all users dissatisfied": MOS about 2.6.
        assert!(
            (mos_from_r(50.0) - 2.58).abs() < 0.02,
            "{}",
            mos_from_r(50.0)
        );
        let mut last = 1.0;
        for r in 0..=100 {
            let m = mos_from_r(r as f64);
            assert!(m >= last - 1e-9, "MOS not monotonic at R={r}");
            last = m;
        }
    }

    #[test]
    fn g711_without_loss_scores_high_and_loss_hurts() {
        for model in [EModel::G711, EModel::G711_PLC] {
            let r0 = model.r_factor(Duration::ZERO, 0.0);
            assert!((r0 - 93.2).abs() < 1e-9);
            assert!(model.mos(LOW_DELAY, 0.0) > 4.3, "{model:?}");
        }
        let plc5 = EModel::G711_PLC.mos(LOW_DELAY, 5.0);
        let bare5 = EModel::G711.mos(LOW_DELAY, 5.0);
        let clean = EModel::G711_PLC.mos(LOW_DELAY, 0.0);
        assert!(clean - plc5 > 0.3, "5% loss with PLC: {plc5}");
        assert!(bare5 < plc5, "concealment helps: {bare5} vs {plc5}");
        assert!(bare5 < 3.0, "5% loss without PLC: {bare5}");
        // Delay beyond 177.3 ms costs more per ms.
        let r150 = EModel::G711.r_factor(Duration::from_millis(150), 0.0);
        let r300 = EModel::G711.r_factor(Duration::from_millis(300), 0.0);
        assert!((r150 - (93.2 - 3.6)).abs() < 1e-9);
        assert!((r300 - (93.2 - 7.2 - 0.11 * 122.7)).abs() < 1e-9);
        // Nonsense loss figures are clamped, not propagated.
        assert!(EModel::G711.mos(LOW_DELAY, f64::NAN) > 4.3);
        let r = EModel::G711.r_factor(Duration::ZERO, 500.0);
        assert!((r - (93.2 - 95.0 * 100.0 / 104.3)).abs() < 1e-9, "{r}");
    }

    #[test]
    fn atomic_round_trip_keeps_nones() {
        let q = AtomicQuality::new();
        assert_eq!(q.snapshot(), LegQuality::default());
        let full = LegQuality {
            packets_expected: 300,
            cumulative_lost: -2,
            fraction_lost: 0.25,
            jitter_ms: 1.5,
            rtt_ms: Some(12.0),
            remote_fraction_lost: Some(0.0),
            remote_jitter_ms: Some(0.125),
            remote_cumulative_lost: Some(-1),
            mos: Some(4.2),
            reports_sent: 3,
            reports_received: 2,
            rtcp_invalid: 1,
        };
        q.publish(&full);
        assert_eq!(q.snapshot(), full);
    }
}
