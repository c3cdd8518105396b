//! The bridged media path must not allocate either: packets relayed in the
//! wakeup they arrive in, and pairs ticking together with decoding, taps
//! and the frame exchange between the two legs; RTCP received (on the
//! RTCP port and muxed on the RTP port) and sent (reports every ~100 ms).
//!
//! The work happens on the engine's worker thread, so this counts
//! allocations of every thread except the test's own (which builds packets
//! and checks them). Its own binary, with a single test, so no other test
//! runs alongside; the engine's other threads (the recorder writer, idle
//! here since nothing records) must stay quiet too.

mod common;
mod counting;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use media_core::rtcp::packet::write_receiver_report;
use media_core::rtp::RtpWriter;
use media_core::{Codec, LegHandle, LegSpec, MediaEngine, Prompt, TapDirection, TapFrame};

/// Relays `rounds` packets each way between the two far ends, 1 ms apart,
/// so the worker also runs many ticks meanwhile.
/// Every tenth round, `fa_rtcp` (far end A's RTCP socket) sends A an RR
/// on its RTCP port and `fa` one muxed on its RTP port.
fn exchange(
    (fa, fa_rtcp): (&UdpSocket, &UdpSocket),
    a: &LegHandle,
    fb: &UdpSocket,
    b: &LegHandle,
    rounds: usize,
) {
    let a_rtcp = a.rtcp_addr();
    let (a, b) = (a.local_addr(), b.local_addr());
    let mut wa = RtpWriter::with_initial(0, 160, 0xa, 1, 0);
    let mut wb = RtpWriter::with_initial(0, 160, 0xb, 1, 0);
    let (mut pkt, mut buf) = ([0u8; 200], [0u8; 1500]);
    for k in 0..rounds {
        for (w, from, to, at) in [(&mut wa, fa, a, fb), (&mut wb, fb, b, fa)] {
            let frame = pcmu_tone_frame(700.0, k);
            let n = w.write(&frame, &mut pkt).unwrap();
            from.send_to(&pkt[..n], to).unwrap();
            let (len, _) = at.recv_from(&mut buf).expect("relayed");
            assert_eq!(&buf[..len], &pkt[..n]);
        }
        if k.is_multiple_of(10) {
            // RTCP into leg A, on its RTCP port and muxed: terminated there.
            fa_rtcp.send_to(&rtcp_rr(), a_rtcp).unwrap();
            fa.send_to(&rtcp_rr(), a).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// An empty receiver report, as a far end sends it.
fn rtcp_rr() -> [u8; 8] {
    let mut out = [0u8; 8];
    write_receiver_report(0xa, &[], &mut out).unwrap();
    out
}

fn pair(
    engine: &MediaEngine,
    fa: &UdpSocket,
    fb: &UdpSocket,
    taps: Option<[crossbeam_channel::Sender<TapFrame>; 2]>,
) -> (LegHandle, LegHandle) {
    let mut sa = LegSpec::new("alloc-a", Codec::Pcmu);
    sa.remote = Some(fa.local_addr().unwrap());
    sa.prompt = Prompt::Silence;
    // Reports every 50-150 ms, so the measured rounds send several.
    sa.rtcp_interval = Duration::from_millis(100);
    if let Some([inbound, outbound]) = taps {
        sa.taps.push((TapDirection::Inbound, Box::new(inbound)));
        sa.taps.push((TapDirection::Outbound, Box::new(outbound)));
    }
    let a = engine.create_leg(sa).unwrap();
    let mut sb = LegSpec::new("alloc-b", Codec::Pcmu);
    sb.remote = Some(fb.local_addr().unwrap());
    sb.prompt = Prompt::Silence;
    sb.rtcp_interval = Duration::from_millis(100);
    sb.colocate_with = Some(a.clone());
    let b = engine.create_leg(sb).unwrap();
    engine.bridge(&a, &b).unwrap();
    // Drop the (silent) prompt packets sent before the bridge took effect.
    std::thread::sleep(Duration::from_millis(30));
    collect_for(fa, Duration::from_millis(30));
    collect_for(fb, Duration::from_millis(30));
    (a, b)
}

#[test]
fn bridged_forwarding_and_ticks_do_not_allocate() {
    counting::exclude_this_thread();
    let engine = engine(35_000, 1);
    let (fa, fb) = (far_end(), far_end());
    // Where A's reports go once it latched to this socket's RR: never read.
    let fa_rtcp = far_end();

    // Pure relay: nothing needs decoded audio.
    let (a, b) = pair(&engine, &fa, &fb, None);
    exchange((&fa, &fa_rtcp), &a, &fb, &b, 50); // warm-up
    std::thread::sleep(Duration::from_millis(60));
    let before = counting::allocations();
    exchange((&fa, &fa_rtcp), &a, &fb, &b, 300);
    let relay_allocs = counting::allocations() - before;
    let (qa, qb) = (a.quality(), b.quality());
    assert!(qa.reports_received >= 50, "RTCP reached leg A: {qa:?}");
    assert!(
        qa.reports_sent >= 2 && qb.reports_sent >= 2,
        "{qa:?} {qb:?}"
    );
    a.stop();
    b.stop().wait(Duration::from_secs(2)).expect("report");

    // Both sides decoded: A's inbound and outbound taps need both legs'
    // audio every tick (jitter buffer, codec, resampler, frame exchange).
    let (tin, rin) = crossbeam_channel::bounded(2_000);
    let (tout, rout) = crossbeam_channel::bounded(2_000);
    let (a, b) = pair(&engine, &fa, &fb, Some([tin, tout]));
    exchange((&fa, &fa_rtcp), &a, &fb, &b, 50);
    std::thread::sleep(Duration::from_millis(100));
    let before = counting::allocations();
    exchange((&fa, &fa_rtcp), &a, &fb, &b, 300);
    let decoded_allocs = counting::allocations() - before;
    let (tapped_in, tapped_out) = (rin.len(), rout.len());
    a.stop();
    b.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();

    assert_eq!(relay_allocs, 0, "pure relay allocated");
    assert_eq!(decoded_allocs, 0, "decoded bridge allocated");
    assert!(
        tapped_in >= 10 && tapped_out >= 10,
        "{tapped_in} {tapped_out}"
    );
}
