//! An SRTP leg over loopback: what it sends authenticates with its key;
//! what it receives must authenticate with the far end's, and a forged or
//! plain packet neither plays nor moves the leg's remote address.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use media_core::codec::ulaw_decode;
use media_core::rtp::{RtpPacket, RtpWriter};
use media_core::srtp::SrtpContext;
use media_core::{Codec, LegSpec, MasterKey, Prompt, SrtpKeys, SrtpProfile};

#[test]
fn srtp_leg_authenticates_before_latching_and_sends_srtp() {
    let engine = engine(38_400, 1);
    let far = far_end();
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker.set_nonblocking(true).unwrap();
    let p = SrtpProfile::AesCm128HmacSha1_32;
    let (ours, theirs) = (
        MasterKey::new(p, [1; 16], [2; 14]),
        MasterKey::new(p, [3; 16], [4; 14]),
    );
    let mut spec = LegSpec::new("srtp-loop", Codec::Pcmu);
    spec.remote = Some(far.local_addr().unwrap());
    spec.prompt = Prompt::Tone {
        freq_hz: 1_000.0,
        on_ms: 1_000,
        off_ms: 0,
        amplitude: 8_000,
    };
    spec.srtp = Some(SrtpKeys {
        local: ours.clone(),
        remote: Some(theirs.clone()),
    });
    let leg = engine.create_leg(spec).unwrap();
    let to = leg.local_addr();

    // Plain RTP and SRTP under the wrong key, from another address.
    let mut w = RtpWriter::with_initial(0, 160, 0xbad, 1, 0);
    let mut forger = SrtpContext::new(&MasterKey::new(p, [9; 16], [9; 14]));
    let mut pkt = [0u8; 256];
    for k in 0..10 {
        let n = w.write(&pcmu_tone_frame(440.0, k), &mut pkt).unwrap();
        if k % 2 == 0 {
            attacker.send_to(&pkt[..n], to).unwrap();
        } else {
            let n = forger.protect_rtp(&mut pkt, n).unwrap();
            attacker.send_to(&pkt[..n], to).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let s = leg.stats();
    assert_eq!(s.srtp_auth_failures, 10, "{s:?}");
    assert!(
        collect_for(&attacker, Duration::from_millis(60)).is_empty(),
        "the leg latched to an unauthenticated source"
    );

    // The real far end, with its key: accepted, and a replay is refused.
    let mut tx = SrtpContext::new(&theirs);
    let mut w = RtpWriter::with_initial(0, 160, 0xfa, 100, 0);
    let mut last = Vec::new();
    for k in 0..25 {
        let n = w.write(&pcmu_tone_frame(440.0, k), &mut pkt).unwrap();
        let n = tx.protect_rtp(&mut pkt, n).unwrap();
        far.send_to(&pkt[..n], to).unwrap();
        last = pkt[..n].to_vec();
        std::thread::sleep(Duration::from_millis(20));
    }
    far.send_to(&last, to).unwrap();
    let sent = collect_for(&far, Duration::from_millis(200));
    let s = leg.stats();
    assert_eq!(s.srtp_replayed, 1, "{s:?}");
    assert_eq!(s.srtp_auth_failures, 10, "{s:?}");
    assert!(s.packets_received >= 36, "{s:?}");

    // What the leg sends is SRTP under our key, carrying the 1 kHz prompt.
    let mut rx = SrtpContext::new(&ours);
    let mut pcm = Vec::new();
    for mut p in sent.into_iter().filter(|p| p[1] & 0x7f == 0) {
        let n = rx.unprotect_rtp(&mut p).expect("leg's SRTP authenticates");
        let rtp = RtpPacket::parse(&p[..n]).unwrap();
        pcm.extend(rtp.payload.iter().map(|&b| ulaw_decode(b)));
    }
    assert!(pcm.len() >= 160 * 5, "{} samples", pcm.len());
    assert_tone(&pcm, 8_000.0, 1_000.0, 440.0, "leg's SRTP prompt");
    leg.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();
}
