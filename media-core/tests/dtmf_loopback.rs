//! Key presses over loopback: a far end sends RFC 4733 telephone-events
//! (made by the crate's own sender, end packets three times, and one press
//! whose end packets are all lost); the leg reports each press once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use media_core::dtmf::{event_for_digit, DtmfEvent, DtmfSender};
use media_core::rtp::RtpHeader;
use media_core::{Codec, LegSpec};

#[test]
fn a_leg_reports_each_key_press_once() {
    let engine = engine(36_200, 1);
    let far = far_end();
    let (tx, rx) = crossbeam_channel::bounded::<DtmfEvent>(16);
    let mut spec = LegSpec::new("dtmf", Codec::Pcmu);
    spec.remote = Some(far.local_addr().unwrap());
    spec.telephone_event_pt = Some(101);
    spec.dtmf = Some(Box::new(tx));
    let leg = engine.create_leg(spec).unwrap();

    let mut seq = 500u16;
    let mut pkt = [0u8; 64];
    let mut payload = [0u8; 4];
    let mut ts = 8_000u32;
    for (digit, lose_ends) in [('1', false), ('#', false), ('7', true)] {
        let event = event_for_digit(digit).unwrap();
        let mut sender = DtmfSender::new(event, 100, 10, 8_000, 20);
        while let Some(p) = sender.next_packet(&mut payload) {
            if p.end && lose_ends {
                continue;
            }
            let header = RtpHeader {
                payload_type: 101,
                marker: p.marker,
                seq,
                timestamp: ts.wrapping_add(p.timestamp_offset),
                ssrc: 0xd7f,
            };
            seq = seq.wrapping_add(1);
            let n = header.write(&payload[..p.len], &mut pkt).unwrap();
            far.send_to(&pkt[..n], leg.local_addr()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        ts = ts.wrapping_add(1_600);
    }

    let until = Instant::now() + Duration::from_secs(3);
    let mut got = Vec::new();
    while got.len() < 3 && Instant::now() < until {
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(100)) {
            got.push(e);
        }
    }
    let digits: Vec<Option<char>> = got.iter().map(|e| e.digit).collect();
    assert_eq!(digits, [Some('1'), Some('#'), Some('7')], "{got:?}");
    assert!(got[..2].iter().all(|e| e.duration_ms == 100), "{got:?}");
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "one event per press"
    );
    let report = leg.stop().wait(Duration::from_secs(2)).expect("report");
    assert_eq!(report.stats.dtmf_events, 3);
    assert_eq!(report.stats.dtmf_events_dropped, 0);
    engine.shutdown();
}

/// The leg sends key presses in place of its prompt: the far end's own
/// RFC 4733 receiver gets each key once, with its duration, and the audio
/// around them keeps its stream (same SSRC, sequence without gaps).
#[test]
fn a_leg_sends_key_presses_as_telephone_events() {
    use media_core::dtmf::DtmfReceiver;
    use media_core::rtp::RtpPacket;

    let engine = engine(36_400, 1);
    let far = far_end();
    let mut spec = LegSpec::new("dtmf-out", Codec::Pcmu);
    spec.remote = Some(far.local_addr().unwrap());
    spec.telephone_event_pt = Some(101);
    let leg = engine.create_leg(spec).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    leg.send_dtmf("4#", 120).unwrap();
    assert!(leg.send_dtmf("x", 120).is_err());
    assert!(leg.send_dtmf("1", 10).is_err());

    let mut rx = DtmfReceiver::new(8_000);
    let (mut presses, mut seqs, mut ssrcs) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = [0u8; 1500];
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && presses.len() < 2 {
        let Ok((n, _)) = far.recv_from(&mut buf) else {
            continue;
        };
        let packet = RtpPacket::parse(&buf[..n]).unwrap();
        seqs.push(packet.seq);
        ssrcs.push(packet.ssrc);
        if packet.payload_type == 101 {
            rx.on_rtp(Instant::now(), &packet);
        } else {
            assert_eq!(packet.payload_type, 0);
        }
        while let Some(e) = rx.poll_event() {
            if e.phase == media_core::dtmf::DtmfPhase::End {
                presses.push((e.digit, e.duration_ms));
            }
        }
    }
    assert_eq!(presses, [(Some('4'), 120), (Some('#'), 120)]);
    assert!(ssrcs.windows(2).all(|w| w[0] == w[1]), "one stream");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "no sequence gaps: {seqs:?}"
    );
    leg.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();

    let engine = common::engine(36_600, 1);
    let plain = engine
        .create_leg(LegSpec::new("no-te", Codec::Pcmu))
        .unwrap();
    assert!(
        plain.send_dtmf("1", 100).is_err(),
        "no telephone-event type"
    );
    engine.shutdown();
}
