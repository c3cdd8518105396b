//! Key presses across a transcoding bridge over loopback: a PCMU far end
//! presses 5 (RFC 4733 at 8000, payload type 101); its Opus peer's far end
//! receives it regenerated as its own telephone-events (payload type 110,
//! 48 kHz durations, marker first, end three times), and a PCMU peer
//! without telephone-event counts the press as dropped.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use media_core::dtmf::{event_for_digit, DtmfSender, TelephoneEvent};
use media_core::rtp::{RtpHeader, RtpPacket};
use media_core::{Codec, LegHandle, LegSpec, MediaEngine, Prompt};

/// Presses `digit` for 100 ms from `far` into `leg` (event packets only,
/// as SIPp and most phones send them), then waits `after`, returning every
/// packet `peer_far` received meanwhile.
fn press(far: &UdpSocket, leg: &LegHandle, peer_far: &UdpSocket, after: Duration) -> Vec<Vec<u8>> {
    let (mut pkt, mut payload, mut buf) = ([0u8; 64], [0u8; 4], [0u8; 1_500]);
    let mut sender = DtmfSender::new(event_for_digit('5').unwrap(), 100, 10, 8_000, 20);
    let mut got = Vec::new();
    let mut seq = 100u16;
    let start = Instant::now();
    let mut k = 0;
    while let Some(p) = sender.next_packet(&mut payload) {
        let header = RtpHeader {
            payload_type: 101,
            marker: p.marker,
            seq,
            timestamp: 16_000u32.wrapping_add(p.timestamp_offset),
            ssrc: 0x5151,
        };
        seq = seq.wrapping_add(1);
        let n = header.write(&payload[..p.len], &mut pkt).unwrap();
        far.send_to(&pkt[..n], leg.local_addr()).unwrap();
        k += 1;
        let due = start + Duration::from_millis(20 * k);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if let Ok((n, _)) = peer_far.recv_from(&mut buf) {
            got.push(buf[..n].to_vec());
        }
    }
    got
}

fn leg(
    engine: &MediaEngine,
    far: &UdpSocket,
    codec: Codec,
    te: Option<u8>,
    with: Option<&LegHandle>,
) -> LegHandle {
    let mut spec = LegSpec::new(format!("relay-{}", codec.encoding_name()), codec);
    spec.remote = Some(far.local_addr().unwrap());
    spec.prompt = Prompt::Silence;
    spec.telephone_event_pt = te;
    spec.colocate_with = with.cloned();
    engine.create_leg(spec).unwrap()
}

#[test]
fn a_press_is_regenerated_at_the_other_sides_type_and_clock() {
    let engine = engine(38_600, 1);
    let (fu, fo) = (far_end(), far_end());
    fo.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let u = leg(&engine, &fu, Codec::Pcmu, Some(101), None);
    let o = leg(&engine, &fo, Codec::Opus, Some(110), Some(&u));
    engine.bridge(&u, &o).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let got = press(&fu, &u, &fo, Duration::from_millis(600));
    let events: Vec<(bool, TelephoneEvent)> = got
        .iter()
        .filter_map(|d| RtpPacket::parse(d).ok())
        .filter(|p| p.payload_type == 110)
        .map(|p| (p.marker, TelephoneEvent::parse(p.payload).unwrap()))
        .collect();
    assert!(events.len() >= 4, "{events:?}");
    assert!(events[0].0, "marker on the first packet");
    assert!(events.iter().all(|(_, e)| e.event == 5));
    let ends: Vec<u16> = events
        .iter()
        .filter(|(_, e)| e.end)
        .map(|(_, e)| e.duration)
        .collect();
    assert_eq!(ends, [4_800; 3], "100 ms at 48 kHz, end sent three times");
    let s = o.stats();
    assert_eq!(
        (s.dtmf_events_relayed, s.dtmf_relay_dropped),
        (1, 0),
        "{s:?}"
    );
    assert_eq!(u.stats().packets_forwarded, 0, "nothing was relayed as is");
    u.stop();
    o.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();
}

#[test]
fn a_peer_without_telephone_event_counts_the_press_dropped() {
    let engine = engine(38_800, 1);
    let (fu, fa) = (far_end(), far_end());
    fa.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let u = leg(&engine, &fu, Codec::Pcmu, Some(101), None);
    let a = leg(&engine, &fa, Codec::Pcma, None, Some(&u));
    engine.bridge(&u, &a).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let got = press(&fu, &u, &fa, Duration::from_millis(400));
    assert!(got
        .iter()
        .filter_map(|d| RtpPacket::parse(d).ok())
        .all(|p| p.payload_type == 8));
    let s = a.stats();
    assert_eq!(
        (s.dtmf_events_relayed, s.dtmf_relay_dropped),
        (0, 1),
        "{s:?}"
    );
    u.stop();
    a.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();
}
