//! RTCP end to end over loopback UDP: a real engine, real legs, test
//! sockets playing the far ends' RTP and RTCP ports. Every loop is bounded
//! in count and time; timings are sanity-checked, never measured.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use media_core::rtcp::packet::{duration_to_short, write_receiver_report};
use media_core::rtcp::{compound, is_rtcp, validate_compound, ReportBlock, RtcpPacket};
use media_core::rtp::RtpWriter;
use media_core::{Codec, LegHandle, LegQuality, LegSpec, Prompt};

/// A far end: an RTP socket and an RTCP socket on the port above it.
fn far_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..200 {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if let Some(Ok(rtcp)) = port
            .checked_add(1)
            .map(|p| UdpSocket::bind(("127.0.0.1", p)))
        {
            rtp.set_nonblocking(true).unwrap();
            rtcp.set_nonblocking(true).unwrap();
            return (rtp, rtcp);
        }
    }
    panic!("no two adjacent free ports");
}

/// What a far end saw of its leg's RTCP.
#[derive(Default)]
struct Seen {
    /// (SR sender SSRC, its NTP middle 32 bits, when it arrived).
    last_sr: Option<(u32, u32, Instant)>,
    compounds: usize,
    cname: Option<Vec<u8>>,
    /// RTCP found on the RTP socket (only expected with rtcp-mux).
    on_rtp_port: usize,
    rtp_packets: usize,
}

/// Reads whatever is waiting on `sock`; RTCP is checked and noted.
fn read_rtcp(sock: &UdpSocket, seen: &mut Seen, rtp_port: bool) {
    let mut buf = [0u8; 1500];
    for _ in 0..200 {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            return;
        };
        let datagram = &buf[..n];
        if rtp_port && !is_rtcp(datagram) {
            seen.rtp_packets += 1;
            continue;
        }
        seen.on_rtp_port += usize::from(rtp_port);
        validate_compound(datagram).expect("the leg's RTCP is a valid compound packet");
        seen.compounds += 1;
        let packets: Vec<_> = compound(datagram).map(Result::unwrap).collect();
        let report_ssrc = match packets[0] {
            RtcpPacket::SenderReport(sr) => {
                seen.last_sr = Some((sr.ssrc, sr.info.ntp.middle32(), Instant::now()));
                sr.ssrc
            }
            RtcpPacket::ReceiverReport(rr) => rr.ssrc,
            other => panic!("compound starts with {other:?}"),
        };
        let Some(RtcpPacket::SourceDescription(sdes)) = packets.get(1) else {
            panic!("report without SDES: {packets:?}");
        };
        let chunk = sdes.chunks().next().expect("an SDES chunk");
        assert_eq!(chunk.ssrc, report_ssrc, "SDES about the reporting source");
        seen.cname = Some(chunk.cname().expect("a CNAME").to_vec());
    }
}

/// A receiver report from the far end about `ssrc`, answering its last SR.
fn answer(seen: &Seen, from_ssrc: u32) -> Option<Vec<u8>> {
    let (ssrc, lsr, at) = seen.last_sr?;
    let block = ReportBlock {
        ssrc,
        lsr,
        dlsr: duration_to_short(at.elapsed()),
        jitter: 8,
        ..ReportBlock::default()
    };
    let mut out = [0u8; 64];
    let n = write_receiver_report(from_ssrc, &[block], &mut out).unwrap();
    Some(out[..n].to_vec())
}

fn leg(engine: &media_core::MediaEngine, label: &str, remote: SocketAddr) -> LegHandle {
    let mut spec = LegSpec::new(label, Codec::Pcmu);
    spec.remote = Some(remote);
    spec.prompt = Prompt::Silence;
    engine.create_leg(spec).unwrap()
}

/// Polls `leg.quality()` until `done` holds (at most `limit`).
fn wait_quality(
    leg: &LegHandle,
    limit: Duration,
    done: impl Fn(&LegQuality) -> bool,
) -> LegQuality {
    let until = Instant::now() + limit;
    loop {
        let q = leg.quality();
        if done(&q) || Instant::now() > until {
            return q;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn legs_report_loss_jitter_rtt_and_mos() {
    let engine = engine(37_000, 1);
    let (clean_rtp, clean_rtcp) = far_pair();
    let (lossy_rtp, lossy_rtcp) = far_pair();
    let clean = leg(&engine, "rtcp-clean", clean_rtp.local_addr().unwrap());
    let lossy = leg(&engine, "rtcp-lossy", lossy_rtp.local_addr().unwrap());
    assert_eq!(clean.rtcp_addr().port(), clean.local_addr().port() + 1);

    let mut writers = [
        RtpWriter::with_initial(0, 160, 0xc1ea, 100, 0),
        RtpWriter::with_initial(0, 160, 0x1055, 65_500, 0), // wraps meanwhile
    ];
    let mut seen = [Seen::default(), Seen::default()];
    let mut answered = [false, false];
    let frame = pcmu_tone_frame(700.0, 0);
    let (mut pkt, mut skipped) = ([0u8; 200], 0i64);
    let start = Instant::now();
    // 6 s of 20 ms packets; the lossy far end skips 2% (1 in 50).
    for k in 0..300u32 {
        let socks = [
            (&clean_rtp, &clean_rtcp, &clean),
            (&lossy_rtp, &lossy_rtcp, &lossy),
        ];
        for (i, (rtp, rtcp, leg)) in socks.into_iter().enumerate() {
            let n = writers[i].write(&frame, &mut pkt).unwrap();
            if i == 1 && k % 50 == 17 {
                skipped += 1;
            } else {
                rtp.send_to(&pkt[..n], leg.local_addr()).unwrap();
            }
            read_rtcp(rtp, &mut seen[i], true);
            read_rtcp(rtcp, &mut seen[i], false);
            if !answered[i] {
                if let Some(rr) = answer(&seen[i], writers[i].ssrc()) {
                    rtcp.send_to(&rr, leg.rtcp_addr()).unwrap();
                    answered[i] = true;
                }
            }
        }
        let due = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    assert_eq!(skipped, 6);

    for (i, s) in seen.iter().enumerate() {
        assert!(s.compounds >= 1, "far end {i} got no RTCP in 6 s");
        assert_eq!(s.on_rtp_port, 0, "RTCP on the RTP port without rtcp-mux");
        assert!(s.last_sr.is_some(), "a sending leg reports with an SR");
        assert!(s.cname.as_ref().is_some_and(|c| !c.is_empty()));
        assert!(s.rtp_packets > 100, "the leg's own RTP keeps flowing");
        assert!(answered[i]);
    }
    assert_ne!(seen[0].cname, seen[1].cname, "CNAMEs are per leg");

    // The worker publishes figures as packets arrive; wait for the last
    // packet to be counted, not just for the losses to show.
    let settled =
        |q: &LegQuality| q.rtt_ms.is_some() && q.reports_received >= 1 && q.packets_expected == 300;
    let lossy_q = wait_quality(&lossy, Duration::from_secs(2), |q| {
        settled(q) && q.cumulative_lost == 6
    });
    let clean_q = wait_quality(&clean, Duration::from_secs(2), settled);
    println!("clean: {clean_q:?}\nlossy: {lossy_q:?}");
    for q in [&clean_q, &lossy_q] {
        let rtt = q.rtt_ms.expect("an RTT from the far end's RR");
        assert!((0.0..1_000.0).contains(&rtt), "loopback RTT {rtt} ms");
        assert_eq!(q.packets_expected, 300);
        assert!(q.reports_sent >= 1 && q.reports_received >= 1);
        assert_eq!(q.remote_jitter_ms, Some(1.0), "8 units at 8 kHz");
        assert!(q.jitter_ms < 100.0, "jitter {}", q.jitter_ms);
    }
    assert_eq!(clean_q.cumulative_lost, 0);
    assert_eq!(lossy_q.cumulative_lost, skipped);
    let (clean_mos, lossy_mos) = (clean_q.mos.expect("mos"), lossy_q.mos.expect("mos"));
    assert!(clean_mos > 4.3, "clean MOS {clean_mos}");
    assert!(
        lossy_mos < clean_mos - 0.1,
        "lossy {lossy_mos} vs clean {clean_mos}"
    );

    // The final report carries the quality; hanging up sends a BYE.
    let report = lossy.stop().wait(Duration::from_secs(2)).expect("report");
    assert_eq!(report.quality.cumulative_lost, 6);
    let until = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 1500];
    let mut bye = false;
    while !bye && Instant::now() < until {
        if let Ok((n, _)) = lossy_rtcp.recv_from(&mut buf) {
            bye = compound(&buf[..n]).any(|p| matches!(p, Ok(RtcpPacket::Bye(_))));
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(bye, "BYE on hangup");
    clean.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();
}

#[test]
fn muxed_and_bridged_rtcp_is_terminated_per_leg() {
    let engine = engine(37_400, 1);
    let (fa_rtp, fa_rtcp) = far_pair();
    let (fb_rtp, fb_rtcp) = far_pair();
    let mut sa = LegSpec::new("rtcp-mux-a", Codec::Pcmu);
    sa.remote = Some(fa_rtp.local_addr().unwrap());
    sa.rtcp_mux = true;
    sa.rtcp_interval = Duration::from_millis(200);
    let a = engine.create_leg(sa).unwrap();
    let mut sb = LegSpec::new("rtcp-b", Codec::Pcmu);
    sb.remote = Some(fb_rtp.local_addr().unwrap());
    sb.rtcp_interval = Duration::from_millis(200);
    sb.colocate_with = Some(a.clone());
    let b = engine.create_leg(sb).unwrap();
    engine.bridge(&a, &b).unwrap();

    let mut w = RtpWriter::with_initial(0, 160, 0xfa, 1, 0);
    let (mut pkt, mut rr) = ([0u8; 200], [0u8; 64]);
    let rr_len = write_receiver_report(0xfa, &[], &mut rr).unwrap();
    let (mut seen_a, mut seen_b) = (Seen::default(), Seen::default());
    let mut b_rtcp_ssrcs = Vec::new();
    let start = Instant::now();
    for k in 0..60u32 {
        let n = w
            .write(&pcmu_tone_frame(500.0, k as usize), &mut pkt)
            .unwrap();
        fa_rtp.send_to(&pkt[..n], a.local_addr()).unwrap();
        if k.is_multiple_of(5) {
            // RTCP both ways into leg A: muxed and on its RTCP port.
            fa_rtp.send_to(&rr[..rr_len], a.local_addr()).unwrap();
            fa_rtcp.send_to(&rr[..rr_len], a.rtcp_addr()).unwrap();
        }
        read_rtcp(&fa_rtp, &mut seen_a, true);
        read_rtcp(&fa_rtcp, &mut seen_a, false);
        read_rtcp(&fb_rtp, &mut seen_b, true);
        let before = seen_b.compounds;
        read_rtcp(&fb_rtcp, &mut seen_b, false);
        if seen_b.compounds > before {
            b_rtcp_ssrcs.extend(seen_b.last_sr.map(|s| s.0));
        }
        let due = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    std::thread::sleep(Duration::from_millis(60));
    read_rtcp(&fb_rtp, &mut seen_b, true);

    // A's far end: A's reports come muxed on the RTP port, none on +1.
    assert!(
        seen_a.on_rtp_port >= 2,
        "muxed reports from A: {}",
        seen_a.on_rtp_port
    );
    assert_eq!(seen_a.compounds, seen_a.on_rtp_port);
    // B's far end: the relayed RTP, never A's far end's RTCP; B's own
    // reports on its RTCP port, as an SR of the relayed stream.
    assert_eq!(seen_b.on_rtp_port, 0, "RTCP was relayed as RTP");
    assert!(seen_b.rtp_packets >= 50, "relayed {}", seen_b.rtp_packets);
    assert!(seen_b.compounds >= 2);
    assert!(!b_rtcp_ssrcs.is_empty() && b_rtcp_ssrcs.iter().all(|&s| s == 0xfa));

    let qa = wait_quality(&a, Duration::from_secs(1), |q| q.reports_received >= 20);
    assert_eq!(qa.reports_received, 24, "12 muxed + 12 on the RTCP port");
    assert_eq!(qa.packets_expected, 60);
    assert_eq!(
        a.stats().packets_invalid,
        0,
        "muxed RTCP is not invalid RTP"
    );
    assert_eq!(
        a.stats().packets_received,
        60,
        "muxed RTCP is not counted as RTP"
    );
    a.stop();
    b.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();
}
