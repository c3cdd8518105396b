//! Receiver statistics about one remote source, as RFC 3550 appendix A
//! computes them: sequence tracking (A.1), loss counts (A.3) and
//! interarrival jitter (A.8).

use super::packet::ReportBlock;

/// A.1: a jump of up to this many packets ahead is loss, not a restart.
const MAX_DROPOUT: u16 = 3_000;
/// A.1: a packet up to this many behind is late or duplicate, not a restart.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u64 = 1 << 16;

/// What we know about the stream we receive from one SSRC.
#[derive(Clone, Debug)]
pub(crate) struct SourceStats {
    pub(crate) ssrc: u32,
    max_seq: u16,
    /// Wraps of the sequence number, times 2^16.
    cycles: u64,
    base_seq: u64,
    /// A sequence number that, if it comes next, confirms a large jump as
    /// a restart of the stream (`None`: no jump pending).
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Relative transit time of the previous packet (timestamp units).
    transit: Option<u32>,
    /// Jitter times 16, as A.8 keeps it for integer precision.
    jitter_q4: u64,
    /// The lost fraction computed for the last report (1/256).
    pub(crate) fraction_lost: u8,
}

impl SourceStats {
    /// A source first heard with `seq`.
    pub(crate) fn new(ssrc: u32, seq: u16) -> SourceStats {
        let mut s = SourceStats {
            ssrc,
            max_seq: seq,
            cycles: 0,
            base_seq: 0,
            bad_seq: None,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            fraction_lost: 0,
        };
        s.init_seq(seq);
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = seq as u64;
        self.max_seq = seq;
        self.cycles = 0;
        self.bad_seq = None;
        self.received = 0;
        self.expected_prior = 0;
        self.received_prior = 0;
        self.transit = None;
    }

    /// A.1 `update_seq`: counts the packet unless it is a jump on
    /// probation. Returns whether it counted.
    pub(crate) fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD; // wrapped
            }
            self.max_seq = seq;
        } else if udelta as u64 <= SEQ_MOD - MAX_MISORDER as u64 {
            // A very large jump: believe it only if the next packet follows.
            if self.bad_seq == Some(seq) {
                self.init_seq(seq);
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
                return false;
            }
        }
        // Otherwise a duplicate or reordered packet: counted, max unchanged.
        self.received += 1;
        true
    }

    /// A.8: `arrival` and `timestamp` in the same units (the RTP clock).
    pub(crate) fn update_jitter(&mut self, arrival: u32, timestamp: u32) {
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.transit {
            let d = transit.wrapping_sub(prev) as i32;
            let d = d.unsigned_abs() as u64;
            // J += (|D| - J) / 16, on J scaled by 16.
            self.jitter_q4 = (self.jitter_q4 + d).saturating_sub((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    pub(crate) fn extended_max(&self) -> u64 {
        self.cycles + self.max_seq as u64
    }

    pub(crate) fn expected(&self) -> u64 {
        (self.extended_max() + 1).saturating_sub(self.base_seq)
    }

    /// Expected minus received: negative with duplicates.
    pub(crate) fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Interarrival jitter in timestamp units.
    pub(crate) fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4).min(u32::MAX as u64) as u32
    }

    /// A.3: the report block for this source, closing the interval since
    /// the previous one (so call it once per report sent). `lsr`/`dlsr`
    /// are filled by the caller.
    pub(crate) fn report(&mut self) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        self.fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval as u64 * 256) / expected_interval).min(255) as u8
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost: self.fraction_lost,
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: self.extended_max() as u32,
            jitter: self.jitter(),
            lsr: 0,
            dlsr: 0,
        }
    }
}
