//! Key presses across a transcoding bridge (RFC 4733 §2.3 and §2.5).
//!
//! A relaying bridge forwards telephone-event packets as they are (only the
//! payload type number is rewritten, see [`crate::relay`]). A transcoding
//! bridge cannot: the two legs speak different codecs, usually at
//! different RTP clocks (8000 for PCMU, PCMA and G.722; 48000 for Opus),
//! with different payload type numbers and their own SSRC, sequence and
//! timestamps, since each leg sends its own stream. So a press is
//! **regenerated**:
//!
//! 1. The receiving leg's [`crate::dtmf::DtmfReceiver`] turns the packets
//!    into one press (event code and duration), as it does for the event
//!    stream.
//! 2. When the press ends, it is queued on the other leg, which sends it
//!    with its own [`crate::dtmf::DtmfSender`]: its own telephone-event
//!    payload type, durations in its own clock, marker on the first
//!    packet, the end packet three times (§2.5.1.4), in place of audio,
//!    with media time running on.
//! 3. While the key is down on the receiving side, and until the press's
//!    last audio has played out of the jitter buffer (its delay plus two
//!    ticks after the end), its audio is not passed on (silence instead),
//!    so a sender that also plays the tone in band does not make the far
//!    end hear the digit twice.
//!
//! Regenerating at the end costs latency (the press's duration, typically
//! 100–300 ms) but needs no guess of the duration and sends exactly one
//! well-formed event per press, whatever the loss on the way in. The
//! duration is kept within [`MIN_RELAY_MS`]–[`MAX_RELAY_MS`] so a press
//! cut short by loss is still long enough to be detected, and a stuck key
//! does not hold the far side's stream for long.
//!
//! A leg that did not negotiate telephone-event drops the relayed press
//! and counts it (`LegStats::dtmf_relay_dropped`); generating the tones in
//! band for it is not done (yet). Both legs still report their own presses
//! to their sinks.

/// Shortest press sent on (RFC 4733 receivers and most IVRs want 40 ms).
pub const MIN_RELAY_MS: u32 = 60;

/// Longest press sent on.
pub const MAX_RELAY_MS: u32 = 2_000;
