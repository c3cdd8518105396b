//! RTCP parser and session against hostile input.
//!
//! The input is parsed as a compound packet: every packet, report block,
//! SDES chunk and item and BYE source is walked, and SRs and RRs are
//! rebuilt and parsed again to the same values. Then it is handed to an
//! RTCP session (as a peer's report would be), which must neither panic
//! nor produce a report that does not parse.
#![no_main]

use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use media_core::quality::EModel;
use media_core::rtcp::packet::{write_receiver_report, write_sender_report, MAX_COUNT};
use media_core::rtcp::{
    compound, validate_compound, ReportBlock, RtcpConfig, RtcpPacket, RtcpSession,
};
use media_core::rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    let valid = validate_compound(data).is_ok();
    let mut total = 0usize;
    for packet in compound(data) {
        let Ok(packet) = packet else {
            assert!(!valid);
            break;
        };
        total += 1;
        match packet {
            RtcpPacket::SenderReport(sr) => {
                let blocks = collect(sr.report_blocks());
                let mut out = [0u8; 1024];
                let n = write_sender_report(sr.ssrc, &sr.info, blocks.as_slice(), &mut out)
                    .expect("rebuild SR");
                let Ok((RtcpPacket::SenderReport(again), len)) = RtcpPacket::parse(&out[..n])
                else {
                    panic!("rebuilt SR does not parse");
                };
                assert_eq!(len, n);
                assert_eq!((again.ssrc, again.info), (sr.ssrc, sr.info));
                assert!(again.report_blocks().eq(sr.report_blocks()));
            }
            RtcpPacket::ReceiverReport(rr) => {
                let blocks = collect(rr.report_blocks());
                let mut out = [0u8; 1024];
                let n = write_receiver_report(rr.ssrc, blocks.as_slice(), &mut out)
                    .expect("rebuild RR");
                let Ok((RtcpPacket::ReceiverReport(again), _)) = RtcpPacket::parse(&out[..n])
                else {
                    panic!("rebuilt RR does not parse");
                };
                assert!(again.report_blocks().eq(rr.report_blocks()));
            }
            RtcpPacket::SourceDescription(sdes) => {
                for chunk in sdes.chunks() {
                    for item in chunk.items() {
                        assert!(item.value.len() <= 255);
                    }
                    let _ = chunk.cname();
                }
            }
            RtcpPacket::Bye(bye) => {
                assert!(bye.sources().count() <= MAX_COUNT);
                assert!(bye.reason.map_or(0, <[u8]>::len) <= 255);
            }
            RtcpPacket::Other { body, .. } => assert!(body.len() < data.len()),
        }
    }
    assert!(total * 4 <= data.len());

    let t0 = Instant::now();
    let mut session = RtcpSession::new(
        RtcpConfig {
            ssrc: 1,
            cname: "fuzz".into(),
            clock_rate: 8_000,
            interval: Duration::from_secs(5),
            seed: 1,
        },
        t0,
        SystemTime::UNIX_EPOCH,
    );
    for k in 0..3u16 {
        let p = RtpPacket {
            seq: k,
            timestamp: 160 * k as u32,
            ssrc: 2,
            payload_type: 0,
            marker: false,
            payload: &[],
        };
        session.handle_rtp_received(t0 + Duration::from_millis(20 * k as u64), &p, true);
        session.handle_rtp_sent(t0, 1, 0, 160);
    }
    assert_eq!(session.handle_rtcp(t0 + Duration::from_secs(1), data).is_ok(), valid);
    let mut out = [0u8; 512];
    let n = session
        .poll_transmit(session.poll_timeout(), &mut out)
        .expect("report");
    validate_compound(&out[..n]).expect("our report is valid");
    let q = session.quality(Duration::from_millis(40), EModel::G711_PLC);
    assert!(q.mos.is_some_and(|m| (1.0..=4.5).contains(&m)));
    assert!(q.rtt_ms.is_none_or(|r| r >= 0.0));
});

/// The blocks of a report, in a fixed array (at most 31: the RC field).
fn collect(blocks: impl Iterator<Item = ReportBlock>) -> Blocks {
    let mut out = Blocks([ReportBlock::default(); MAX_COUNT], 0);
    for b in blocks {
        assert!(out.1 < MAX_COUNT);
        out.0[out.1] = b;
        out.1 += 1;
    }
    out
}

struct Blocks([ReportBlock; MAX_COUNT], usize);

impl Blocks {
    fn as_slice(&self) -> &[ReportBlock] {
        &self.0[..self.1]
    }
}
