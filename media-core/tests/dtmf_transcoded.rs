//! Key presses across a transcoding bridge over loopback: a PCMU far end
//! presses 5 (RFC 4733 at 8000, payload type 101); its Opus peer's far end
//! receives it regenerated as its own telephone-events (payload type 110,
//! 48 kHz durations, marker first, end three times), and a PCMU peer
//! without telephone-event counts the press as dropped.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use media_core::codec::alaw_decode;
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

/// A phone that plays the key's tone in band as well as sending the
/// event: while the key is down (and its tail plays out of the jitter
/// buffer) the transcoding peer hears silence, not the tone.
#[test]
fn the_in_band_tone_of_a_press_is_held_back() {
    let engine = engine(39_000, 1);
    let (fu, fa) = (far_end(), far_end());
    fa.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    let u = leg(&engine, &fu, Codec::Pcmu, Some(101), None);
    let a = leg(&engine, &fa, Codec::Pcma, Some(101), Some(&u));
    engine.bridge(&u, &a).unwrap();
    let mut audio = media_core::rtp::RtpWriter::with_initial(0, 160, 0xa0d1, 1, 0);
    let (mut pkt, mut payload, mut buf) = ([0u8; 200], [0u8; 4], [0u8; 1_500]);
    let mut sender = DtmfSender::new(event_for_digit('7').unwrap(), 200, 10, 8_000, 20);
    let mut heard = Vec::new();
    let start = Instant::now();
    for k in 0..60usize {
        let pressing = (15..25).contains(&k);
        let frame = if pressing {
            pcmu_tone_frame(1_000.0, k)
        } else {
            vec![0xff; 160] // µ-law silence
        };
        let n = audio.write(&frame, &mut pkt).unwrap();
        fu.send_to(&pkt[..n], u.local_addr()).unwrap();
        if k >= 15 {
            if let Some(p) = sender.next_packet(&mut payload) {
                let header = RtpHeader {
                    payload_type: 101,
                    marker: p.marker,
                    seq: 5_000 + k as u16,
                    timestamp: 40_000,
                    ssrc: 0xe7e7,
                };
                let n = header.write(&payload[..p.len], &mut pkt).unwrap();
                fu.send_to(&pkt[..n], u.local_addr()).unwrap();
            }
        }
        let due = start + Duration::from_millis(20 * (k as u64 + 1));
        while Instant::now() < due {
            if let Ok((n, _)) = fa.recv_from(&mut buf) {
                let Ok(rtp) = RtpPacket::parse(&buf[..n]) else {
                    continue;
                };
                if rtp.payload_type == 8 {
                    heard.extend(rtp.payload.iter().map(|&b| alaw_decode(b)));
                }
            }
        }
    }
    let loudest = heard.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    let loud: Vec<usize> = heard
        .chunks(160)
        .enumerate()
        .filter(|(_, f)| f.iter().any(|s| s.unsigned_abs() > 500))
        .map(|(i, _)| i)
        .collect();
    eprintln!("loud frames {loud:?} of {}", heard.len() / 160);
    let s = a.stats();
    u.stop();
    a.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();
    assert!(heard.len() >= 160 * 40, "{} samples", heard.len());
    assert!(
        loudest < 500,
        "the key's tone leaked in band (peak {loudest})"
    );
    assert_eq!(
        s.dtmf_events_relayed, 1,
        "and the press went as an event: {s:?}"
    );
}
