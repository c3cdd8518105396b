//! An SRTP leg bridged to a plain one must not allocate either: SRTP
//! unprotected on arrival, relayed in the clear to the plain side; the
//! plain side's packets protected in place on the way to the SRTP side;
//! SRTCP muxed in, SRTCP reports out. The engine's worker does the work;
//! the test thread (excluded) plays both far ends.

mod common;
mod counting;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use media_core::rtcp::packet::write_receiver_report;
use media_core::rtp::RtpWriter;
use media_core::srtp::SrtpContext;
use media_core::{Codec, LegSpec, MasterKey, Prompt, SrtpKeys, SrtpProfile};

fn keys() -> (MasterKey, MasterKey) {
    let p = SrtpProfile::AesCm128HmacSha1_80;
    (
        MasterKey::new(p, [0x11; 16], [0x22; 14]),
        MasterKey::new(p, [0x33; 16], [0x44; 14]),
    )
}

/// `rounds` packets each way: far end A speaks SRTP, far end B plain RTP.
fn exchange(
    fa: &UdpSocket,
    fb: &UdpSocket,
    (a, b): (std::net::SocketAddr, std::net::SocketAddr),
    (fa_tx, fa_rx): (&mut SrtpContext, &mut SrtpContext),
    (wa, wb): (&mut RtpWriter, &mut RtpWriter),
    rounds: usize,
) {
    let (mut pkt, mut buf) = ([0u8; 256], [0u8; 1500]);
    for k in 0..rounds {
        let frame = pcmu_tone_frame(700.0, k);
        // A's far end -> A (SRTP) -> B's far end (plain).
        let n = wa.write(&frame, &mut pkt).unwrap();
        let plain = pkt[..n].to_vec();
        let n = fa_tx.protect_rtp(&mut pkt, n).unwrap();
        fa.send_to(&pkt[..n], a).unwrap();
        let (len, _) = fb.recv_from(&mut buf).expect("relayed to the plain side");
        assert_eq!(&buf[..len], &plain[..]);
        // B's far end -> B (plain) -> A's far end (SRTP).
        let n = wb.write(&frame, &mut pkt).unwrap();
        let plain = pkt[..n].to_vec();
        fb.send_to(&pkt[..n], b).unwrap();
        loop {
            let (len, _) = fa.recv_from(&mut buf).expect("relayed to the SRTP side");
            if buf[1] >= 200 && buf[1] <= 204 {
                // An SRTCP report from A, muxed: must authenticate.
                fa_rx.unprotect_rtcp(&mut buf[..len]).expect("SRTCP from A");
                continue;
            }
            let m = fa_rx.unprotect_rtp(&mut buf[..len]).expect("SRTP from A");
            assert_eq!(&buf[..m], &plain[..]);
            break;
        }
        if k.is_multiple_of(10) {
            let mut rr = [0u8; 64];
            let n = write_receiver_report(0xa, &[], &mut rr).unwrap();
            let n = fa_tx.protect_rtcp(&mut rr, n).unwrap();
            fa.send_to(&rr[..n], a).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn srtp_bridge_does_not_allocate() {
    counting::exclude_this_thread();
    let engine = engine(38_000, 1);
    let (fa, fb) = (far_end(), far_end());
    let (a_key, fa_key) = keys();
    let mut sa = LegSpec::new("alloc-srtp-a", Codec::Pcmu);
    sa.remote = Some(fa.local_addr().unwrap());
    sa.prompt = Prompt::Silence;
    sa.rtcp_mux = true;
    sa.rtcp_interval = Duration::from_millis(100);
    sa.srtp = Some(SrtpKeys {
        local: a_key.clone(),
        remote: Some(fa_key.clone()),
    });
    let a = engine.create_leg(sa).unwrap();
    let mut sb = LegSpec::new("alloc-srtp-b", Codec::Pcmu);
    sb.remote = Some(fb.local_addr().unwrap());
    sb.prompt = Prompt::Silence;
    sb.colocate_with = Some(a.clone());
    let b = engine.create_leg(sb).unwrap();
    engine.bridge(&a, &b).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    collect_for(&fa, Duration::from_millis(30));
    collect_for(&fb, Duration::from_millis(30));

    let (mut fa_tx, mut fa_rx) = (SrtpContext::new(&fa_key), SrtpContext::new(&a_key));
    let mut wa = RtpWriter::with_initial(0, 160, 0xa, 65_500, 0);
    let mut wb = RtpWriter::with_initial(0, 160, 0xb, 1, 0);
    let addrs = (a.local_addr(), b.local_addr());
    exchange(
        &fa,
        &fb,
        addrs,
        (&mut fa_tx, &mut fa_rx),
        (&mut wa, &mut wb),
        50,
    );
    std::thread::sleep(Duration::from_millis(60));
    let before = counting::allocations();
    // 300 rounds: A's far end wraps its sequence (ROC 0 -> 1) on the way.
    exchange(
        &fa,
        &fb,
        addrs,
        (&mut fa_tx, &mut fa_rx),
        (&mut wa, &mut wb),
        300,
    );
    let allocs = counting::allocations() - before;
    let stats = a.stats();
    let quality = a.quality();
    a.stop();
    b.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();
    assert_eq!(allocs, 0, "SRTP bridge allocated");
    assert_eq!((stats.srtp_auth_failures, stats.srtp_replayed), (0, 0));
    assert!(stats.packets_forwarded >= 300, "{stats:?}");
    assert!(
        quality.reports_received >= 30,
        "SRTCP reached A: {quality:?}"
    );
}
