//! A conference across sample rates must not allocate per tick either: a
//! PCMU, a G.722 and an Opus member mixed at 48 kHz (each resampled into
//! the mix and its minus-one mix back, at its edge), decoding and encoding
//! three codecs, and the mix rate falling to 16 kHz when the Opus member
//! leaves in the middle of the counted window.
//!
//! Counts allocations of every thread but the test's own; its own binary,
//! with a single test, so nothing else runs alongside.

mod common;
mod counting;
mod mixed_rate;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use media_core::rtp::RtpWriter;
use media_core::{Codec, LegHandle, LegSpec, Prompt, Role, TapDirection, TapFrame};
use mixed_rate::FarCodec;

/// `frames` real-time rounds: each far end sends a pre-encoded tone frame
/// and drains what it got.
fn rounds(
    fars: &[UdpSocket],
    legs: &[LegHandle],
    writers: &mut [RtpWriter],
    payloads: &[Vec<Vec<u8>>],
    start: usize,
    frames: usize,
) {
    let (mut pkt, mut buf) = ([0u8; 1_500], [0u8; 1_500]);
    let t0 = Instant::now();
    for k in start..start + frames {
        for (i, far) in fars.iter().enumerate() {
            let p = &payloads[i][k % payloads[i].len()];
            let n = writers[i].write(p, &mut pkt).unwrap();
            far.send_to(&pkt[..n], legs[i].local_addr()).unwrap();
            while far.recv_from(&mut buf).is_ok() {}
        }
        let due = t0 + Duration::from_millis(20 * (k - start + 1) as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}

#[test]
fn mixed_rate_conference_ticks_do_not_allocate() {
    counting::exclude_this_thread();
    let engine = engine(38_400, 1);
    let codecs = [Codec::Pcmu, Codec::G722, Codec::Opus];
    let fars: Vec<UdpSocket> = codecs.iter().map(|_| far_end()).collect();
    for f in &fars {
        f.set_nonblocking(true).unwrap();
    }
    let (tap_tx, tap_rx) = crossbeam_channel::bounded::<TapFrame>(2_000);
    let mut tap = Some(tap_tx);
    let legs: Vec<LegHandle> = fars
        .iter()
        .zip(codecs)
        .map(|(far, codec)| {
            let mut spec = LegSpec::new(format!("alloc-mixed-{}", codec.encoding_name()), codec);
            spec.remote = Some(far.local_addr().unwrap());
            spec.prompt = Prompt::Silence;
            if codec == Codec::Pcmu {
                spec.taps
                    .push((TapDirection::Outbound, Box::new(tap.take().unwrap())));
            }
            engine.create_leg(spec).unwrap()
        })
        .collect();
    let mut far_codecs: Vec<FarCodec> = codecs.iter().map(|&c| FarCodec::new(c)).collect();
    let payloads: Vec<Vec<Vec<u8>>> = far_codecs
        .iter_mut()
        .zip([450.0, 1_050.0, 1_650.0])
        .map(|(c, hz)| (0..50).map(|k| c.encode_tone(hz, k)).collect())
        .collect();
    let mut writers: Vec<RtpWriter> = far_codecs
        .iter()
        .enumerate()
        .map(|(i, c)| c.writer(0xd0 + i as u32))
        .collect();
    let room = engine.create_conference("alloc-mixed", 8_000).unwrap();
    for leg in &legs {
        engine
            .conference_join(&room, leg, Role::Participant)
            .unwrap();
    }
    legs[1].set_muted(true);

    rounds(&fars, &legs, &mut writers, &payloads, 0, 50); // warm-up
    let before = counting::allocations();
    rounds(&fars, &legs, &mut writers, &payloads, 50, 50);
    engine.conference_leave(&legs[2]).unwrap(); // 48 -> 16 kHz mix
    rounds(&fars, &legs, &mut writers, &payloads, 100, 50);
    std::thread::sleep(Duration::from_millis(100));
    let allocs = counting::allocations() - before;
    let stats: Vec<_> = legs.iter().map(|l| l.stats()).collect();
    let tapped = tap_rx.len();

    for leg in &legs {
        leg.stop().wait(Duration::from_secs(2)).expect("report");
    }
    engine.end_conference(&room).unwrap();
    engine.shutdown();
    assert_eq!(allocs, 0, "mixed-rate conference ticks allocated");
    for s in &stats {
        assert!(s.packets_sent >= 100, "{s:?}");
    }
    assert!(tapped >= 100, "the member's mix reached its tap ({tapped})");
}
