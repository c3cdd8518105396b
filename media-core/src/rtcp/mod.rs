//! RTCP (RFC 3550 section 6): packets, receiver and sender statistics, and
//! the per-leg session that schedules reports and measures round trips.
//!
//! - [`packet`]: zero-copy parsing of compound packets (SR, RR, SDES, BYE;
//!   anything else length-checked and passed over) and builders into caller
//!   buffers.
//! - [`RtcpSession`]: sans-IO. Fed the RTP the leg receives
//!   ([`RtcpSession::handle_rtp_received`]) and sends
//!   ([`RtcpSession::handle_rtp_sent`]) and the RTCP that arrives
//!   ([`RtcpSession::handle_rtcp`]); asked when the next report is due
//!   ([`RtcpSession::poll_timeout`]) and for its bytes
//!   ([`RtcpSession::poll_transmit`]); summarized as a
//!   [`LegQuality`](crate::LegQuality) with an E-model MOS estimate
//!   ([`crate::quality`]).
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use media_core::rtcp::{RtcpConfig, RtcpSession, DEFAULT_INTERVAL};
//! use media_core::rtp::RtpPacket;
//! use media_core::quality::EModel;
//!
//! let t0 = Instant::now();
//! let config = RtcpConfig {
//!     ssrc: 0x1234, cname: "leg-1".into(), clock_rate: 8_000,
//!     interval: DEFAULT_INTERVAL, seed: 7,
//! };
//! let mut rtcp = RtcpSession::new(config, t0, SystemTime::now());
//! for k in 0..100u16 {
//!     let now = t0 + Duration::from_millis(20 * k as u64);
//!     if k % 10 == 3 { continue } // lost on the way
//!     let p = RtpPacket { seq: k, timestamp: 160 * k as u32, ssrc: 9, payload_type: 0, marker: false, payload: &[] };
//!     rtcp.handle_rtp_received(now, &p, true);
//! }
//! let mut out = [0u8; 512];
//! let at = rtcp.poll_timeout(); // 1.25–3.75 s after the start
//! let len = rtcp.poll_transmit(at, &mut out).expect("a receiver report and SDES");
//! let q = rtcp.quality(Duration::from_millis(40), EModel::G711_PLC);
//! assert_eq!((q.packets_expected, q.cumulative_lost, q.reports_sent), (100, 10, 1));
//! assert!(q.mos.unwrap() < 4.0);
//! # assert!(len > 8);
//! ```
//!
//! Scheduling follows RFC 3550 6.2–6.3 for a two-party session: the
//! bandwidth share never matters at one audio stream each way, so the
//! interval is the minimum (5 s by default), randomized to 0.5–1.5 times
//! it, the first report after half of that. Timer reconsideration is not
//! done (there is one sender per side).
//!
//! The statistics are appendix A's: A.1 sequence validation (a jump beyond
//! 3000 is believed only when the next packet follows it; no probation for
//! a new source, since the leg admits only its negotiated payload types
//! from its latched source), A.3 expected / lost / fraction lost per
//! interval, A.8 interarrival jitter in timestamp units.

pub mod packet;
mod session;
mod stats;

pub use packet::{
    compound, is_rtcp, validate_compound, Bye, NtpTime, ReceiverReport, ReportBlock, RtcpError,
    RtcpPacket, Sdes, SdesChunk, SdesItem, SenderInfo, SenderReport,
};
pub use session::{RtcpConfig, RtcpSession, DEFAULT_INTERVAL};

#[cfg(test)]
#[path = "packet_tests.rs"]
mod packet_tests;

#[cfg(test)]
#[path = "session_tests.rs"]
mod session_tests;
