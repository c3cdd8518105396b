//! Per-SSRC receive state: the rollover counter estimate (RFC 3711
//! §3.3.1) and the replay window (§3.3.2), checked before and updated only
//! after a packet authenticates.

/// Packets remembered behind the highest index (RFC 3711 asks for ≥ 64).
pub(super) const WINDOW: u64 = 128;

/// A sliding window over 48-bit (SRTP) or 31-bit (SRTCP) indices.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ReplayWindow {
    /// Highest index accepted; meaningful once `started`.
    highest: u64,
    /// Bit k set: index `highest - k` was accepted.
    seen: u128,
    started: bool,
}

impl ReplayWindow {
    /// Whether `index` may be new: ahead of the window, or inside it and
    /// not yet seen.
    pub(super) fn check(&self, index: u64) -> bool {
        if !self.started || index > self.highest {
            return true;
        }
        let behind = self.highest - index;
        behind < WINDOW && self.seen & (1u128 << behind) == 0
    }

    /// Records an authenticated `index` (which passed [`Self::check`]).
    pub(super) fn accept(&mut self, index: u64) {
        if !self.started {
            (self.started, self.highest, self.seen) = (true, index, 1);
        } else if index > self.highest {
            let ahead = index - self.highest;
            self.seen = if ahead >= WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.highest = index;
        } else {
            self.seen |= 1u128 << (self.highest - index);
        }
    }
}

/// What a receiver (or a sender of relayed packets) knows of one SRTP
/// stream: its rollover counter and highest sequence number (s_l).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RocState {
    pub(super) roc: u32,
    /// s_l: the highest sequence number seen with `roc`.
    pub(super) s_l: u16,
    pub(super) started: bool,
}

impl RocState {
    /// The packet index of `seq` by the estimate of §3.3.1 (Appendix A):
    /// the ROC value v that puts `seq` closest to s_l.
    pub(super) fn estimate(&self, seq: u16) -> u64 {
        if !self.started {
            return u64::from(seq);
        }
        let (roc, s_l, seq32) = (self.roc, u32::from(self.s_l), u32::from(seq));
        let v = if s_l < 32_768 {
            if seq32 > s_l + 32_768 {
                // A late packet of the previous ROC (there is none before 0).
                roc.checked_sub(1).unwrap_or(roc)
            } else {
                roc
            }
        } else if seq32 + 32_768 < s_l {
            roc.wrapping_add(1)
        } else {
            roc
        };
        (u64::from(v) << 16) | u64::from(seq)
    }

    /// Moves ROC and s_l forward for an authenticated packet of `index`
    /// (a late packet of the previous ROC changes nothing).
    pub(super) fn update(&mut self, index: u64) {
        let (v, seq) = ((index >> 16) as u32, index as u16);
        if !self.started {
            (self.started, self.roc, self.s_l) = (true, v, seq);
        } else if v == self.roc.wrapping_add(1) || (v == self.roc && seq > self.s_l) {
            (self.roc, self.s_l) = (v, seq);
        }
    }
}
