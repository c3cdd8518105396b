//! A transcoding bridge (Opus on one side, PCMU on the other) must not
//! allocate per packet or tick either: both jitter buffers, Opus decode
//! with FEC recovery of lost packets, the resamplers at the edges, both
//! encoders, a tap. The engine's worker does the work; the test thread
//! (which encodes the far ends' packets) is not counted. Its own binary,
//! with a single test, so nothing else runs alongside.

mod common;
mod counting;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use media_core::opus::OpusEncoder;
use media_core::rtp::RtpWriter;
use media_core::{Codec, LegHandle, LegSpec, OpusParams, Prompt, TapDirection};

const FRAME: usize = 960;

/// `rounds` real-time rounds of one packet into each leg (every 10th Opus
/// packet lost), draining what the legs send.
fn talk(
    (fo, o): (&UdpSocket, &LegHandle),
    (fu, u): (&UdpSocket, &LegHandle),
    opus: &[Vec<u8>],
    (wo, wu): (&mut RtpWriter, &mut RtpWriter),
    start: usize,
    rounds: usize,
) {
    let (mut pkt, mut buf) = ([0u8; 1_500], [0u8; 1_500]);
    let t0 = Instant::now();
    for k in start..start + rounds {
        let n = wo.write(&opus[k % opus.len()], &mut pkt).unwrap();
        if k % 10 != 5 {
            fo.send_to(&pkt[..n], o.local_addr()).unwrap();
        }
        let n = wu.write(&pcmu_tone_frame(700.0, k), &mut pkt).unwrap();
        fu.send_to(&pkt[..n], u.local_addr()).unwrap();
        for f in [fo, fu] {
            while f.recv_from(&mut buf).is_ok() {}
        }
        let next = t0 + Duration::from_millis(20 * (k - start + 1) as u64);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[test]
fn transcoding_bridge_does_not_allocate() {
    counting::exclude_this_thread();
    let engine = engine(35_400, 1);
    let (fo, fu) = (far_end(), far_end());
    for f in [&fo, &fu] {
        f.set_nonblocking(true).unwrap();
    }
    let (tap, tapped) = crossbeam_channel::bounded(1_000);
    let mut so = LegSpec::new("alloc-opus", Codec::Opus);
    so.remote = Some(fo.local_addr().unwrap());
    so.prompt = Prompt::Silence;
    so.taps.push((TapDirection::Inbound, Box::new(tap)));
    let o = engine.create_leg(so).unwrap();
    let mut su = LegSpec::new("alloc-pcmu", Codec::Pcmu);
    su.remote = Some(fu.local_addr().unwrap());
    su.prompt = Prompt::Silence;
    su.colocate_with = Some(o.clone());
    let u = engine.create_leg(su).unwrap();
    engine.bridge(&o, &u).unwrap();

    let mut enc = OpusEncoder::new(OpusParams::default()).unwrap();
    let opus: Vec<Vec<u8>> = (0..50)
        .map(|k| {
            let mut out = [0u8; 1_275];
            let n = enc.encode(&tone(440.0, 48_000.0, k * FRAME, FRAME, 8_000.0), &mut out);
            out[..n].to_vec()
        })
        .collect();
    let mut wo = RtpWriter::with_initial(111, FRAME as u32, 0xa, 1, 0);
    let mut wu = RtpWriter::with_initial(0, 160, 0xb, 1, 0);
    talk((&fo, &o), (&fu, &u), &opus, (&mut wo, &mut wu), 0, 25); // warm-up
    let before = counting::allocations();
    talk((&fo, &o), (&fu, &u), &opus, (&mut wo, &mut wu), 25, 100);
    let allocs = counting::allocations() - before;
    let (so, su) = (o.stats(), u.stats());
    o.stop();
    u.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();

    assert_eq!(allocs, 0, "transcoding bridge allocated");
    assert!(so.packets_lost >= 8, "FEC path ran: {so:?}");
    assert!(
        so.packets_sent >= 100 && su.packets_sent >= 100,
        "{so:?} {su:?}"
    );
    assert_eq!(so.packets_forwarded + su.packets_forwarded, 0);
    assert!(tapped.len() >= 100, "{} tap frames", tapped.len());
}
