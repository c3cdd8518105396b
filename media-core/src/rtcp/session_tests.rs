//! The session driven by hand: RFC 3550 A.3/A.8 statistics from made-up
//! sequences, RTT from LSR/DLSR, report scheduling.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::packet::*;
use super::session::*;
use crate::quality::EModel;
use crate::rtp::RtpPacket;

const OURS: u32 = 0x0a0a_0a0a;
const THEIRS: u32 = 0x0b0b_0b0b;
const MS: Duration = Duration::from_millis(1);

fn session(seed: u64) -> (RtcpSession, Instant) {
    let t0 = Instant::now();
    let cfg = RtcpConfig {
        ssrc: OURS,
        cname: "test-leg".into(),
        clock_rate: 8_000,
        interval: DEFAULT_INTERVAL,
        seed,
    };
    let wallclock = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    (RtcpSession::new(cfg, t0, wallclock), t0)
}

fn rtp(seq: u16, timestamp: u32) -> RtpPacket<'static> {
    RtpPacket {
        seq,
        timestamp,
        ssrc: THEIRS,
        payload_type: 0,
        marker: false,
        payload: &[],
    }
}

/// Receives `seqs` in order, each at its nominal 20 ms slot.
fn receive(s: &mut RtcpSession, t0: Instant, seqs: impl IntoIterator<Item = u16>) {
    for seq in seqs {
        let k = seq as u64;
        s.handle_rtp_received(t0 + 20 * MS * k as u32, &rtp(seq, 160 * k as u32), true);
    }
}

/// Makes the due report; returns its first packet's report block.
fn report(s: &mut RtcpSession) -> (Vec<u8>, Option<ReportBlock>) {
    let mut out = [0u8; 512];
    let at = s.poll_timeout();
    let n = s.poll_transmit(at, &mut out).expect("report due");
    let bytes = out[..n].to_vec();
    validate_compound(&bytes).unwrap();
    let block = match compound(&bytes).next().unwrap().unwrap() {
        RtcpPacket::SenderReport(sr) => sr.report_blocks().next(),
        RtcpPacket::ReceiverReport(rr) => rr.report_blocks().next(),
        other => panic!("report starts with {other:?}"),
    };
    (bytes, block)
}

fn quality(s: &RtcpSession) -> crate::LegQuality {
    s.quality(40 * MS, EModel::G711_PLC)
}

#[test]
fn loss_and_fraction_lost_per_interval() {
    let (mut s, t0) = session(1);
    // 0..100 with 5 missing.
    let missing = [10u16, 11, 50, 70, 99 - 1];
    receive(&mut s, t0, (0..100).filter(|k| !missing.contains(k)));
    let q = quality(&s);
    assert_eq!((q.packets_expected, q.cumulative_lost), (100, 5));
    let (_, b) = report(&mut s);
    let b = b.expect("a block about their stream");
    assert_eq!((b.ssrc, b.cumulative_lost, b.highest_seq), (THEIRS, 5, 99));
    assert_eq!(b.fraction_lost, (5 * 256 / 100) as u8);
    assert!((quality(&s).fraction_lost - 12.0 / 256.0).abs() < 1e-9);
    // Next interval: 100..200, none lost.
    receive(&mut s, t0, 100..200);
    let (_, b) = report(&mut s);
    let b = b.unwrap();
    assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 5));
    // An interval of nothing received: fraction 0, not a division by zero.
    let (_, b) = report(&mut s);
    assert_eq!(b.unwrap().fraction_lost, 0);
}

#[test]
fn reordering_and_duplicates() {
    let (mut s, t0) = session(1);
    receive(&mut s, t0, [0, 1, 3, 2, 4, 5]);
    assert_eq!(quality(&s).cumulative_lost, 0);
    assert_eq!(quality(&s).packets_expected, 6);
    // A duplicate makes the RFC's count go negative.
    receive(&mut s, t0, [5]);
    assert_eq!(quality(&s).cumulative_lost, -1);
    let (_, b) = report(&mut s);
    assert_eq!(b.unwrap().cumulative_lost, -1);
    assert_eq!(b.unwrap().fraction_lost, 0);
}

#[test]
fn sequence_wrap_extends_the_highest_number() {
    let (mut s, t0) = session(1);
    let seqs = (65_530u16..=65_535).chain(0..=10).filter(|&k| k != 2);
    for (i, seq) in seqs.enumerate() {
        s.handle_rtp_received(t0 + 20 * MS * i as u32, &rtp(seq, 160 * i as u32), true);
    }
    let (_, b) = report(&mut s);
    let b = b.unwrap();
    assert_eq!(b.highest_seq, 0x0001_000a);
    assert_eq!(b.cumulative_lost, 1);
    assert_eq!(quality(&s).packets_expected, 17);
}

#[test]
fn large_jump_is_believed_when_the_next_packet_follows() {
    let (mut s, t0) = session(1);
    receive(&mut s, t0, 0..10);
    // One stray far jump: not counted, stats unchanged.
    s.handle_rtp_received(t0, &rtp(40_000, 0), true);
    assert_eq!(quality(&s).packets_expected, 10);
    receive(&mut s, t0, [10]);
    assert_eq!(quality(&s).cumulative_lost, 0);
    // A jump followed by its successor: the stream restarted there.
    s.handle_rtp_received(t0, &rtp(50_000, 0), true);
    s.handle_rtp_received(t0, &rtp(50_001, 160), true);
    let q = quality(&s);
    assert_eq!((q.packets_expected, q.cumulative_lost), (1, 0));
    s.handle_rtp_received(t0, &rtp(50_003, 480), true);
    assert_eq!(quality(&s).cumulative_lost, 1);
}

#[test]
fn new_ssrc_starts_over() {
    let (mut s, t0) = session(1);
    receive(&mut s, t0, [0, 5]);
    assert_eq!(quality(&s).cumulative_lost, 4);
    let mut p = rtp(1_000, 0);
    p.ssrc = 0x0c0c_0c0c;
    s.handle_rtp_received(t0, &p, true);
    let q = quality(&s);
    assert_eq!((q.packets_expected, q.cumulative_lost), (1, 0));
}

#[test]
fn jitter_from_known_arrival_offsets() {
    let (mut s, t0) = session(1);
    // Perfectly paced: no jitter at all.
    receive(&mut s, t0, 0..50);
    assert_eq!(quality(&s).jitter_ms, 0.0);

    // Every other packet 10 ms late: |D| = 80 timestamp units each time.
    let (mut s, t0) = session(1);
    let at = |k: u32| t0 + 20 * MS * k + if k % 2 == 1 { 10 * MS } else { Duration::ZERO };
    s.handle_rtp_received(at(0), &rtp(0, 0), true);
    s.handle_rtp_received(at(1), &rtp(1, 160), true);
    // J = 0 + (80 - 0) / 16 = 5 units after the first difference.
    let (_, b) = report(&mut s);
    assert_eq!(b.unwrap().jitter, 5);
    for k in 2..400u32 {
        s.handle_rtp_received(at(k), &rtp(k as u16, 160 * k), true);
    }
    // J converges to |D| = 80 units = 10 ms at 8 kHz.
    let j = quality(&s).jitter_ms;
    assert!((9.7..=10.0).contains(&j), "jitter {j} ms");
    // Events (timing = false) do not disturb it.
    for k in 400..420u32 {
        s.handle_rtp_received(at(k) + 300 * MS, &rtp(k as u16, 0), false);
    }
    assert_eq!(quality(&s).jitter_ms, j);
}

#[test]
fn rtt_from_lsr_and_dlsr() {
    let (mut s, t0) = session(3);
    s.handle_rtp_sent(t0, OURS, 1_000, 160);
    receive(&mut s, t0, 0..3);
    let sent_at = s.poll_timeout();
    let (bytes, _) = report(&mut s);
    let Some(Ok(RtcpPacket::SenderReport(sr))) = compound(&bytes).next() else {
        panic!("a sender sends an SR");
    };
    assert_eq!(sr.ssrc, OURS);
    assert_eq!(sr.info.packet_count, 1);
    assert_eq!(sr.info.octet_count, 160);
    // The SR's RTP timestamp is the last one sent, extrapolated to now.
    let elapsed = sent_at - t0;
    let ticks = (elapsed.as_secs_f64() * 8_000.0) as u32;
    assert!(sr.info.rtp_timestamp.wrapping_sub(1_000).abs_diff(ticks) <= 1);

    // The far end held it 250 ms; the network took 2 × 30 ms.
    let answer = |lsr: u32, ssrc: u32| {
        let block = ReportBlock {
            ssrc,
            fraction_lost: 26,
            cumulative_lost: 3,
            jitter: 40,
            lsr,
            dlsr: duration_to_short(250 * MS),
            ..ReportBlock::default()
        };
        let mut out = [0u8; 64];
        let n = write_receiver_report(THEIRS, &[block], &mut out).unwrap();
        out[..n].to_vec()
    };
    let arrive = sent_at + 310 * MS;
    // Unknown LSR (not one of our SRs): the remote view is taken, no RTT.
    s.handle_rtcp(arrive, &answer(0x1234_5678, OURS)).unwrap();
    assert_eq!(s.rtt(), None);
    let q = quality(&s);
    assert_eq!(q.remote_fraction_lost, Some(26.0 / 256.0));
    assert_eq!(q.remote_jitter_ms, Some(5.0));
    assert_eq!(q.remote_cumulative_lost, Some(3));
    assert_eq!(q.rtt_ms, None);
    // About someone else's stream: ignored entirely.
    s.handle_rtcp(arrive, &answer(sr.info.ntp.middle32(), 0x0d0d_0d0d))
        .unwrap();
    assert_eq!(s.rtt(), None);
    s.handle_rtcp(arrive, &answer(sr.info.ntp.middle32(), OURS))
        .unwrap();
    let rtt = s.rtt().expect("rtt");
    assert!(rtt.abs_diff(60 * MS) < MS, "{rtt:?}");
    let q = quality(&s);
    assert!((q.rtt_ms.unwrap() - 60.0).abs() < 1.0);
    assert_eq!(q.reports_received, 3);
    // A DLSR larger than the round trip allows is nonsense: RTT kept.
    let mut bad = answer(sr.info.ntp.middle32(), OURS);
    bad[28..32].copy_from_slice(&duration_to_short(Duration::from_secs(9)).to_be_bytes());
    s.handle_rtcp(arrive, &bad).unwrap();
    assert_eq!(s.rtt(), Some(rtt));
}

#[test]
fn relayed_stream_is_reported_under_its_ssrc() {
    let relayed = 0x0e0e_0e0e;
    let (mut s, t0) = session(3);
    s.handle_rtp_sent(t0, relayed, 5, 160);
    s.handle_rtp_sent(t0 + 20 * MS, relayed, 165, 160);
    let (bytes, _) = report(&mut s);
    let packets: Vec<_> = compound(&bytes).map(Result::unwrap).collect();
    let RtcpPacket::SenderReport(sr) = packets[0] else {
        panic!()
    };
    assert_eq!((sr.ssrc, sr.info.packet_count), (relayed, 2));
    let RtcpPacket::SourceDescription(sdes) = packets[1] else {
        panic!()
    };
    let chunk = sdes.chunks().next().unwrap();
    assert_eq!(
        (chunk.ssrc, chunk.cname()),
        (relayed, Some(&b"test-leg"[..]))
    );
    // The far end's report about that stream yields an RTT.
    let block = ReportBlock {
        ssrc: relayed,
        lsr: sr.info.ntp.middle32(),
        ..ReportBlock::default()
    };
    let mut out = [0u8; 64];
    let n = write_receiver_report(THEIRS, &[block], &mut out).unwrap();
    s.handle_rtcp(s.poll_timeout() - DEFAULT_INTERVAL / 4, &out[..n])
        .unwrap();
    assert!(s.rtt().is_some());
}

#[test]
fn receiver_report_while_silent_and_lsr_of_their_sr() {
    let (mut s, t0) = session(5);
    receive(&mut s, t0, 0..10);
    // Their SR arrives; our next report points back at it.
    let their_info = SenderInfo {
        ntp: NtpTime(0x0000_1234_5678_0000),
        ..SenderInfo::default()
    };
    let mut out = [0u8; 64];
    let n = write_sender_report(THEIRS, &their_info, &[], &mut out).unwrap();
    let got_sr = s.poll_timeout() - 1_500 * MS;
    s.handle_rtcp(got_sr, &out[..n]).unwrap();
    let (bytes, b) = report(&mut s);
    assert!(matches!(
        compound(&bytes).next(),
        Some(Ok(RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: OURS,
            ..
        })))
    ));
    let b = b.unwrap();
    assert_eq!(b.lsr, 0x1234_5678);
    assert_eq!(b.dlsr, 0x0001_8000);

    // Having sent long ago (more than two intervals) makes us a receiver again.
    s.handle_rtp_sent(t0, OURS, 0, 160);
    let at = s.poll_timeout() + 2 * DEFAULT_INTERVAL;
    let mut buf = [0u8; 512];
    let n = s.poll_transmit(at, &mut buf).unwrap();
    assert!(matches!(
        RtcpPacket::parse(&buf[..n]),
        Ok((RtcpPacket::ReceiverReport(_), _))
    ));
}

#[test]
fn report_interval_is_randomized_within_bounds_and_seedable() {
    let schedule = |seed: u64| {
        let (mut s, t0) = session(seed);
        let mut times = vec![s.poll_timeout() - t0];
        let mut buf = [0u8; 512];
        for _ in 0..20 {
            let at = s.poll_timeout();
            assert_eq!(s.poll_transmit(at - MS, &mut buf), None, "not due yet");
            s.poll_transmit(at, &mut buf).expect("due");
            times.push(s.poll_timeout() - t0);
        }
        times
    };
    for seed in 0..50 {
        let t = schedule(seed);
        let first = t[0].as_secs_f64();
        assert!((1.25..3.75).contains(&first), "first at {first}");
        for w in t.windows(2) {
            let gap = (w[1] - w[0]).as_secs_f64();
            assert!((2.5..7.5).contains(&gap), "gap {gap}");
        }
    }
    assert_eq!(schedule(42), schedule(42));
    assert_ne!(schedule(42), schedule(43));
    // Spread: over many draws both halves of the range occur.
    let gaps: Vec<f64> = schedule(9)
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    assert!(gaps.iter().any(|&g| g < 5.0) && gaps.iter().any(|&g| g > 5.0));
}

#[test]
fn invalid_rtcp_is_counted_and_changes_nothing() {
    let (mut s, _) = session(1);
    for junk in [
        &b""[..],
        b"\x80",
        b"\x80\xca\x00\x01\x00\x00\x00\x01",
        b"\x81\xc9\x00\x01abcd",
    ] {
        assert!(s.handle_rtcp(Instant::now(), junk).is_err());
    }
    let q = quality(&s);
    assert_eq!((q.rtcp_invalid, q.reports_received), (4, 0));
    assert_eq!(q.mos, None);
    assert_eq!(q.remote_fraction_lost, None);
}

#[test]
fn bye_from_their_source_keeps_its_figures_and_ends_its_numbering() {
    let (mut s, t0) = session(1);
    receive(&mut s, t0, [0, 3]);
    let mut out = [0u8; 64];
    let mut n = write_receiver_report(THEIRS, &[], &mut out).unwrap();
    n += write_bye(&[THEIRS], None, &mut out[n..]).unwrap();
    s.handle_rtcp(t0, &out[..n]).unwrap();
    // A hangup's BYE must not erase the call's quality before it is reported.
    let q = quality(&s);
    assert_eq!(q.packets_expected, 4);
    assert!(q.mos.is_some());
    // RTP after the BYE is a new stream: its numbering starts over.
    receive(&mut s, t0, [500, 501]);
    assert_eq!(quality(&s).packets_expected, 2);
}

#[test]
fn mos_drops_with_loss() {
    let (mut clean, t0) = session(1);
    receive(&mut clean, t0, 0..500);
    let (mut lossy, _) = session(1);
    receive(&mut lossy, t0, (0..500).filter(|k| k % 20 != 7)); // 5%
    let (c, l) = (quality(&clean).mos.unwrap(), quality(&lossy).mos.unwrap());
    assert!(c > 4.3, "clean {c}");
    assert!(c - l > 0.3, "clean {c} lossy {l}");
    let _ = SystemTime::now();
}

#[test]
fn bye_packet_after_a_final_report() {
    let (mut s, t0) = session(1);
    s.handle_rtp_sent(t0, OURS, 0, 160);
    let mut out = [0u8; 512];
    let n = s.write_bye(t0 + 100 * MS, &mut out).unwrap();
    validate_compound(&out[..n]).unwrap();
    let last = compound(&out[..n]).last().unwrap().unwrap();
    let RtcpPacket::Bye(bye) = last else {
        panic!("ends with BYE");
    };
    assert_eq!(bye.sources().collect::<Vec<_>>(), [OURS]);
    assert!(s.write_bye(t0, &mut out[..20]).is_none());
}
