//! One leg's RTCP session, sans-IO: fed what the leg receives and sends and
//! the RTCP that arrives, asked when to report and for the report's bytes.

use std::time::{Duration, Instant, SystemTime};

use super::packet::{
    compound, duration_from_short, duration_to_short, validate_compound, write_bye,
    write_receiver_report, write_sdes_cname, write_sender_report, NtpTime, ReportBlock, RtcpError,
    RtcpPacket, SenderInfo,
};
use super::stats::SourceStats;
use crate::quality::{EModel, LegQuality};
use crate::rtp::RtpPacket;

/// RFC 3550 6.2's minimum report interval, the default here.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// How many of our SRs a report's LSR may refer to.
const SR_HISTORY: usize = 4;

/// A report block's RTT may come out slightly negative from rounding;
/// beyond this (in 1/65536 s, about 10 ms) the block is nonsense.
const RTT_SLACK: i32 = 655;

/// Fixed at the start of a session.
#[derive(Clone, Debug)]
pub struct RtcpConfig {
    /// Our own SSRC (the leg's RTP writer's): the sender of our RRs.
    pub ssrc: u32,
    /// Canonical name sent in every report's SDES (at most 255 bytes).
    pub cname: String,
    /// RTP clock rate, for jitter and SR timestamps.
    pub clock_rate: u32,
    /// Mean report interval; each actual one is drawn from 0.5–1.5 times
    /// it (RFC 3550 6.3.1), the first from half that.
    pub interval: Duration,
    /// Seed of the interval randomization (fixed in tests).
    pub seed: u64,
}

/// What the far end last reported about our stream.
#[derive(Clone, Copy, Debug)]
struct RemoteView {
    fraction_lost: u8,
    cumulative_lost: i32,
    jitter: u32,
}

/// The stream we send, as our SRs describe it.
#[derive(Clone, Copy, Debug)]
struct Sending {
    ssrc: u32,
    packets: u32,
    octets: u32,
    last_timestamp: u32,
    last_at: Instant,
}

/// RFC 3550 RTCP for one leg: receiver statistics about the far end's
/// stream, sender statistics about ours, report scheduling, RTT.
///
/// It never reads a clock: every input carries `now`, and NTP wallclock is
/// the `SystemTime` given at creation plus the `Instant`s since.
///
/// While a leg relays a bridged peer's packets, the stream on its hop has
/// the peer's far end's SSRC: [`RtcpSession::handle_rtp_sent`] follows that,
/// so the SR describes what this hop carries and the far end's reports
/// about it (and their LSR) are understood.
#[derive(Clone, Debug)]
pub struct RtcpSession {
    ssrc: u32,
    cname: Box<[u8]>,
    clock_rate: u32,
    interval: Duration,
    epoch: Instant,
    epoch_ntp: NtpTime,
    rng: u64,
    next_report: Instant,
    source: Option<SourceStats>,
    /// The far end said BYE for `source`: its figures stay for the call's
    /// quality, and whatever RTP comes next starts a new source.
    source_ended: bool,
    /// The far end's last SR: (its SSRC, middle 32 bits of its NTP time,
    /// when it arrived).
    remote_sr: Option<(u32, u32, Instant)>,
    sending: Option<Sending>,
    /// Middle 32 bits of our last SRs' NTP times, for checking an LSR.
    sent_srs: [u32; SR_HISTORY],
    sent_sr_next: usize,
    remote: Option<RemoteView>,
    rtt: Option<Duration>,
    reports_sent: u64,
    reports_received: u64,
    invalid: u64,
}

impl RtcpSession {
    pub fn new(config: RtcpConfig, now: Instant, wallclock: SystemTime) -> RtcpSession {
        let cname = config.cname.as_bytes();
        let cname = &cname[..cname.len().min(u8::MAX as usize)];
        let mut s = RtcpSession {
            ssrc: config.ssrc,
            cname: cname.into(),
            clock_rate: config.clock_rate.max(1),
            interval: config.interval,
            epoch: now,
            epoch_ntp: NtpTime::from_system_time(wallclock),
            rng: config.seed,
            next_report: now,
            source: None,
            source_ended: false,
            remote_sr: None,
            sending: None,
            sent_srs: [0; SR_HISTORY],
            sent_sr_next: 0,
            remote: None,
            rtt: None,
            reports_sent: 0,
            reports_received: 0,
            invalid: 0,
        };
        // RFC 3550 6.2: the first report after half the minimum interval.
        s.next_report = now + s.randomized(s.interval / 2);
        s
    }

    /// Our own SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// NTP wallclock at `now`.
    pub fn ntp(&self, now: Instant) -> NtpTime {
        self.epoch_ntp + now.saturating_duration_since(self.epoch)
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    /// The last RTT measured from a report block.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// A valid RTP packet of the far end's stream arrived at `now`.
    /// `timing`: whether its timestamp tracks its media time, so it may feed
    /// the jitter estimate (false for RFC 4733 events, whose timestamp
    /// stays at the event's start).
    pub fn handle_rtp_received(&mut self, now: Instant, packet: &RtpPacket<'_>, timing: bool) {
        let continuing = !std::mem::take(&mut self.source_ended);
        let source = match &mut self.source {
            Some(s) if s.ssrc == packet.ssrc && continuing => s,
            // A new SSRC is a new source (RFC 3550 8.2): start over.
            other => other.insert(SourceStats::new(packet.ssrc, packet.seq)),
        };
        if source.update_seq(packet.seq) && timing {
            let since = now.saturating_duration_since(self.epoch);
            let arrival = (since.as_nanos() * self.clock_rate as u128 / 1_000_000_000) as u32;
            source.update_jitter(arrival, packet.timestamp);
        }
    }

    /// We sent an RTP packet of stream `ssrc` (ours, or a relayed one) with
    /// `payload_len` payload octets.
    pub fn handle_rtp_sent(&mut self, now: Instant, ssrc: u32, timestamp: u32, payload_len: usize) {
        let sending = match &mut self.sending {
            Some(s) if s.ssrc == ssrc => s,
            // A different stream on this hop: its counts start over.
            other => other.insert(Sending {
                ssrc,
                packets: 0,
                octets: 0,
                last_timestamp: timestamp,
                last_at: now,
            }),
        };
        sending.packets = sending.packets.wrapping_add(1);
        sending.octets = sending.octets.wrapping_add(payload_len as u32);
        sending.last_timestamp = timestamp;
        sending.last_at = now;
    }

    /// A datagram arrived on the RTCP port (or was demultiplexed from the
    /// RTP port). Checked as a whole first (RFC 3550 A.2); an invalid one
    /// changes nothing but the error count.
    pub fn handle_rtcp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), RtcpError> {
        if let Err(e) = validate_compound(datagram) {
            self.invalid += 1;
            return Err(e);
        }
        self.reports_received += 1;
        for packet in compound(datagram).flatten() {
            match packet {
                RtcpPacket::SenderReport(sr) => {
                    self.remote_sr = Some((sr.ssrc, sr.info.ntp.middle32(), now));
                    for block in sr.report_blocks() {
                        self.on_report_block(now, &block);
                    }
                }
                RtcpPacket::ReceiverReport(rr) => {
                    for block in rr.report_blocks() {
                        self.on_report_block(now, &block);
                    }
                }
                RtcpPacket::Bye(bye) => {
                    if let Some(s) = &self.source {
                        if bye.sources().any(|b| b == s.ssrc) {
                            // Its numbering is over; a new stream starts
                            // fresh, but the figures of this one stay: a
                            // hangup's RTCP BYE must not erase the call's
                            // quality before it is reported.
                            self.source_ended = true;
                        }
                    }
                }
                RtcpPacket::SourceDescription(_) | RtcpPacket::Other { .. } => {}
            }
        }
        Ok(())
    }

    /// A report block: about our stream (our SSRC or the one we relay)?
    /// Then it is the far end's view of it, and perhaps an RTT.
    fn on_report_block(&mut self, now: Instant, block: &ReportBlock) {
        let ours = block.ssrc == self.ssrc || self.sending.is_some_and(|s| s.ssrc == block.ssrc);
        if !ours {
            return;
        }
        self.remote = Some(RemoteView {
            fraction_lost: block.fraction_lost,
            cumulative_lost: block.cumulative_lost,
            jitter: block.jitter,
        });
        // RFC 3550 6.4.1: RTT = A − LSR − DLSR, if LSR is one of our SRs.
        if block.lsr != 0 && self.sent_srs.contains(&block.lsr) {
            let a = self.ntp(now).middle32();
            let rtt = a.wrapping_sub(block.lsr).wrapping_sub(block.dlsr) as i32;
            if rtt >= -RTT_SLACK {
                self.rtt = Some(duration_from_short(rtt.max(0) as u32));
            }
        }
    }

    /// If a report is due, writes it (SR if we sent in the last two
    /// intervals, else RR; then SDES with our CNAME) into `out`, schedules
    /// the next one and returns the length. `None` if nothing is due (or
    /// `out` is too small: then the report is skipped).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        if now < self.next_report {
            return None;
        }
        self.next_report = now + self.randomized(self.interval);
        let len = self.write_report(now, out).ok()?;
        self.reports_sent += 1;
        Some(len)
    }

    /// A final report followed by a BYE for the stream we send (on hangup).
    pub fn write_bye(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        let len = self.write_report(now, out).ok()?;
        let ssrc = self.report_ssrc(now);
        let bye = write_bye(&[ssrc], None, out.get_mut(len..)?).ok()?;
        self.reports_sent += 1;
        Some(len + bye)
    }

    /// The SSRC our reports are sent as: the stream this hop carries while
    /// we send, else our own.
    fn report_ssrc(&self, now: Instant) -> u32 {
        self.active_sending(now).map_or(self.ssrc, |s| s.ssrc)
    }

    fn active_sending(&self, now: Instant) -> Option<Sending> {
        self.sending
            .filter(|s| now.saturating_duration_since(s.last_at) < 2 * self.interval)
    }

    fn write_report(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, RtcpError> {
        let block = self.source.as_mut().map(|s| {
            let mut b = s.report();
            if let Some((ssrc, lsr, at)) = self.remote_sr {
                if ssrc == b.ssrc {
                    b.lsr = lsr;
                    b.dlsr = duration_to_short(now.saturating_duration_since(at));
                }
            }
            b
        });
        let blocks = block.as_slice();
        let ntp = self.ntp(now);
        let (ssrc, len) = match self.active_sending(now) {
            Some(s) => {
                let elapsed = now.saturating_duration_since(s.last_at);
                let ticks = elapsed.as_nanos() * self.clock_rate as u128 / 1_000_000_000;
                let info = SenderInfo {
                    ntp,
                    rtp_timestamp: s.last_timestamp.wrapping_add(ticks as u32),
                    packet_count: s.packets,
                    octet_count: s.octets,
                };
                let len = write_sender_report(s.ssrc, &info, blocks, out)?;
                self.sent_srs[self.sent_sr_next] = ntp.middle32();
                self.sent_sr_next = (self.sent_sr_next + 1) % SR_HISTORY;
                (s.ssrc, len)
            }
            None => (self.ssrc, write_receiver_report(self.ssrc, blocks, out)?),
        };
        let rest = out.get_mut(len..).unwrap_or_default();
        Ok(len + write_sdes_cname(ssrc, &self.cname, rest)?)
    }

    /// `base` scaled by a factor uniform in [0.5, 1.5) (RFC 3550 6.3.1).
    fn randomized(&mut self, base: Duration) -> Duration {
        // splitmix64: small, fast, and plenty for spreading report times.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(0.5 + unit)
    }

    /// The quality snapshot; `playout_delay` is the jitter buffer's delay,
    /// part of the one-way delay the MOS estimate assumes.
    pub fn quality(&self, playout_delay: Duration, model: EModel) -> LegQuality {
        let ms_per_tick = 1_000.0 / self.clock_rate as f64;
        let mut q = LegQuality {
            rtt_ms: self.rtt.map(|d| d.as_secs_f64() * 1_000.0),
            reports_sent: self.reports_sent,
            reports_received: self.reports_received,
            rtcp_invalid: self.invalid,
            ..LegQuality::default()
        };
        if let Some(r) = self.remote {
            q.remote_fraction_lost = Some(r.fraction_lost as f64 / 256.0);
            q.remote_jitter_ms = Some(r.jitter as f64 * ms_per_tick);
            q.remote_cumulative_lost = Some(r.cumulative_lost as i64);
        }
        if let Some(s) = self.source.as_ref().filter(|s| s.received() > 0) {
            q.packets_expected = s.expected();
            q.cumulative_lost = s.cumulative_lost();
            q.fraction_lost = s.fraction_lost as f64 / 256.0;
            q.jitter_ms = s.jitter() as f64 * ms_per_tick;
            let loss = 100.0 * q.cumulative_lost.max(0) as f64 / q.packets_expected.max(1) as f64;
            let delay = self.rtt.unwrap_or_default() / 2 + playout_delay;
            q.mos = Some(model.mos(delay, loss));
        }
        q
    }

    /// Counts an RTCP datagram refused before it reached
    /// [`RtcpSession::handle_rtcp`] (e.g. from a foreign source).
    pub fn count_invalid(&mut self) {
        self.invalid += 1;
    }
}
