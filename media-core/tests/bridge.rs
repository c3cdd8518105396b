//! Two-party bridges over loopback UDP: two legs on one worker, two test
//! sockets playing the far ends. Every loop is bounded in count and time;
//! timings are printed, never asserted.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use media_core::codec::ulaw_decode;
use media_core::rtp::{RtpPacket, RtpWriter};
use media_core::{
    Codec, LegHandle, LegSpec, MediaEngine, MediaError, Prompt, TapDirection, TapFrame, TAP_RATE,
};

const TONE: Prompt = Prompt::Tone {
    freq_hz: 425.0,
    on_ms: 1_000,
    off_ms: 0,
    amplitude: 6_000,
};

fn spec(label: &str, remote: &UdpSocket, prompt: Prompt, with: Option<&LegHandle>) -> LegSpec {
    let mut spec = LegSpec::new(label, Codec::Pcmu);
    spec.remote = Some(remote.local_addr().unwrap());
    spec.telephone_event_pt = Some(101);
    spec.prompt = prompt;
    spec.colocate_with = with.cloned();
    spec
}

/// SSRC of the leg's own stream, from what it sends before any bridge.
fn own_ssrc(far: &UdpSocket) -> u32 {
    let got = collect_for(far, Duration::from_millis(100));
    assert!(!got.is_empty(), "leg sends its prompt");
    RtpPacket::parse(&got[0]).unwrap().ssrc
}

/// The k-th test packet: audio with the frame number in its payload, or
/// every 25th a telephone-event packet.
fn test_packet(audio: &mut RtpWriter, dtmf: &mut RtpWriter, k: usize, out: &mut [u8]) -> usize {
    if k % 25 == 24 {
        dtmf.write(&[5, 0x8a, 0, 160], out).unwrap()
    } else {
        let mut payload = [0u8; 160];
        for (i, b) in payload.iter_mut().enumerate() {
            *b = (k * 7 + i) as u8;
        }
        payload[..4].copy_from_slice(&(k as u32).to_be_bytes());
        audio.write(&payload, out).unwrap()
    }
}

/// Sends `count` packets from `from` to leg `to`, one at a time, and checks
/// that each arrives at `at`, byte for byte, from `via` (the peer leg's
/// socket). Returns the forwarding delays. Paced at 2 ms, ten times a
/// real call's rate but within the per-leg read budget, which would
/// otherwise hold the excess until the next tick.
fn relay_one_by_one(
    from: &UdpSocket,
    to: SocketAddr,
    at: &UdpSocket,
    via: SocketAddr,
    ssrc: u32,
    count: usize,
) -> Vec<Duration> {
    let mut audio = RtpWriter::with_initial(0, 160, ssrc, 65_500, u32::MAX - 1_000);
    let mut dtmf = RtpWriter::with_initial(101, 160, ssrc, 7, 0);
    let (mut pkt, mut buf) = ([0u8; 200], [0u8; 1500]);
    let mut delays = Vec::with_capacity(count);
    for k in 0..count {
        let n = test_packet(&mut audio, &mut dtmf, k, &mut pkt);
        let sent = Instant::now();
        from.send_to(&pkt[..n], to).unwrap();
        let (len, src) = at.recv_from(&mut buf).expect("relayed packet");
        delays.push(sent.elapsed());
        assert_eq!(src, via, "packet {k} comes from the peer leg");
        assert_eq!(&buf[..len], &pkt[..n], "packet {k} changed on the way");
        std::thread::sleep(Duration::from_millis(2));
    }
    delays
}

/// A burst sent back to back arrives complete and in order.
fn relay_burst(from: &UdpSocket, to: SocketAddr, at: &UdpSocket, ssrc: u32, count: usize) {
    let mut audio = RtpWriter::with_initial(0, 160, ssrc, 100, 0);
    let mut dtmf = RtpWriter::with_initial(101, 160, ssrc, 100, 0);
    let mut sent = Vec::new();
    let mut pkt = [0u8; 200];
    for k in 0..count {
        let n = test_packet(&mut audio, &mut dtmf, k, &mut pkt);
        from.send_to(&pkt[..n], to).unwrap();
        sent.push(pkt[..n].to_vec());
    }
    let mut buf = [0u8; 1500];
    for (k, want) in sent.iter().enumerate() {
        let (len, _) = at.recv_from(&mut buf).expect("burst packet");
        assert_eq!(&buf[..len], &want[..], "burst packet {k}");
    }
}

fn report_delays(what: &str, mut d: Vec<Duration>) {
    let (p50, p99, max) = percentiles_us(&mut d);
    println!(
        "forwarding delay {what} (send to receive, loopback, debug build): \
         p50 {p50:.1} us, p99 {p99:.1} us, max {max:.1} us over {} packets",
        d.len()
    );
}

/// Lets a just-queued bridge take effect and drops the prompt packets sent
/// before it did.
fn settle(fa: &UdpSocket, fb: &UdpSocket) {
    std::thread::sleep(Duration::from_millis(30));
    collect_for(fa, Duration::from_millis(30));
    collect_for(fb, Duration::from_millis(30));
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(3);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bridge_relays_packets_unchanged_both_ways() {
    let engine = engine(33_000, 1);
    let (fa, fb) = (far_end(), far_end());
    let a = engine
        .create_leg(spec("bridge-a", &fa, TONE, None))
        .unwrap();
    let b = engine
        .create_leg(spec("bridge-b", &fb, TONE, Some(&a)))
        .unwrap();
    let (a_ssrc, b_ssrc) = (own_ssrc(&fa), own_ssrc(&fb));

    engine.bridge(&a, &b).unwrap();
    engine.bridge(&a, &b).unwrap(); // again: no change
    settle(&fa, &fb);

    let ab = relay_one_by_one(&fa, a.local_addr(), &fb, b.local_addr(), 0xa1a1_0001, 200);
    let ba = relay_one_by_one(&fb, b.local_addr(), &fa, a.local_addr(), 0xb2b2_0002, 200);
    relay_burst(&fa, a.local_addr(), &fb, 0xa1a1_0003, 20);
    relay_burst(&fb, b.local_addr(), &fa, 0xb2b2_0004, 20);
    report_delays("A->B", ab);
    report_delays("B->A", ba);

    // Nothing else reaches the far ends while bridged: no prompt, and
    // neither garbage nor a wrong payload type is relayed.
    fa.send_to(b"\x00junk", a.local_addr()).unwrap();
    let mut pkt = [0u8; 200];
    let n = RtpWriter::with_initial(8, 160, 1, 1, 0)
        .write(&[0xd5; 160], &mut pkt)
        .unwrap();
    fa.send_to(&pkt[..n], a.local_addr()).unwrap();
    assert!(collect_for(&fb, Duration::from_millis(100)).is_empty());
    assert!(collect_for(&fa, Duration::from_millis(10)).is_empty());

    wait_for("stats", || a.stats().packets_invalid == 2);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.packets_received, 222, "{sa:?}");
    assert_eq!(sa.packets_forwarded, 220, "{sa:?}");
    assert_eq!(sb.packets_forwarded, 220, "{sb:?}");
    assert_eq!(sa.dtmf_packets, 8, "{sa:?}");
    assert!(sb.packets_sent >= 220, "{sb:?}");
    assert_eq!((sa.send_errors, sb.send_errors), (0, 0));

    // Unbridged: each far end hears its own leg's prompt again, on the
    // leg's own SSRC, starting a talkspurt.
    engine.unbridge(&a).unwrap();
    engine.unbridge(&a).unwrap(); // idempotent
    engine.unbridge(&b).unwrap();
    for (far, ssrc) in [(&fb, b_ssrc), (&fa, a_ssrc)] {
        let got = collect_for(far, Duration::from_millis(200));
        assert!(got.len() >= 5, "prompt resumes: {} packets", got.len());
        let first = RtpPacket::parse(&got[0]).unwrap();
        assert!(first.marker);
        for p in &got {
            let p = RtpPacket::parse(p).unwrap();
            assert_eq!((p.ssrc, p.payload_type), (ssrc, 0));
        }
    }
    a.stop();
    b.stop().wait(Duration::from_secs(2)).expect("report");
    engine.shutdown();
}

#[test]
fn bridged_recording_has_each_side_on_its_channel() {
    let engine = engine(33_400, 1);
    let (fa, fb) = (far_end(), far_end());
    let dir = std::env::temp_dir().join(format!("mc-bridge-{}", std::process::id()));
    let path = dir.join("call.wav");
    let (tap_tx, tap_rx) = crossbeam_channel::bounded::<TapFrame>(500);
    let mut sa = spec("rec-a", &fa, Prompt::Silence, None);
    sa.record_to = Some(path.clone());
    sa.taps.push((TapDirection::Outbound, Box::new(tap_tx)));
    let a = engine.create_leg(sa).unwrap();
    let b = engine
        .create_leg(spec("rec-b", &fb, Prompt::Silence, Some(&a)))
        .unwrap();
    engine.bridge(&a, &b).unwrap();
    settle(&fa, &fb);

    // One second of 440 Hz from far end A and 1 kHz from far end B.
    let mut wa = RtpWriter::with_initial(0, 160, 0xaaaa, 1, 0);
    let mut wb = RtpWriter::with_initial(0, 160, 0xbbbb, 1, 0);
    let mut pkt = [0u8; 200];
    let t0 = Instant::now();
    for k in 0..50usize {
        let n = wa.write(&pcmu_tone_frame(440.0, k), &mut pkt).unwrap();
        fa.send_to(&pkt[..n], a.local_addr()).unwrap();
        let n = wb.write(&pcmu_tone_frame(1_000.0, k), &mut pkt).unwrap();
        fb.send_to(&pkt[..n], b.local_addr()).unwrap();
        let next = t0 + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    std::thread::sleep(Duration::from_millis(100));

    // Each far end heard the other, relayed packet for packet.
    for (far, freq, other) in [(&fb, 440.0, 1_000.0), (&fa, 1_000.0, 440.0)] {
        let got = collect_for(far, Duration::from_millis(50));
        assert_eq!(got.len(), 50, "{freq} Hz relayed");
        let pcm: Vec<i16> = got
            .iter()
            .flat_map(|p| RtpPacket::parse(p).unwrap().payload.to_vec())
            .map(ulaw_decode)
            .collect();
        assert_tone(&pcm, 8_000.0, freq, other, "relayed audio");
    }

    b.stop().wait(Duration::from_secs(2)).expect("report b");
    let report = a.stop().wait(Duration::from_secs(5)).expect("report a");
    assert_eq!(report.recording.as_deref(), Some(path.as_path()));
    assert_eq!(report.stats.packets_forwarded, 50);
    assert_eq!(report.stats.record_frames_dropped, 0);

    let mut wav = hound::WavReader::open(&path).unwrap();
    assert_eq!(wav.spec().channels, 2);
    let samples: Vec<i16> = wav.samples::<i16>().map(|s| s.unwrap()).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert_tone(loud_region(&left, 160), 8_000.0, 440.0, 1_000.0, "left");
    assert_tone(loud_region(&right, 160), 8_000.0, 1_000.0, 440.0, "right");

    // A's outbound tap carries what A's far end heard: B's audio.
    let tapped: Vec<i16> = tap_rx.try_iter().flat_map(|f| f.samples).collect();
    assert_tone(
        loud_region(&tapped, 640),
        TAP_RATE as f64,
        1_000.0,
        440.0,
        "outbound tap",
    );
    engine.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bridge_refuses_what_it_cannot_do() {
    let engine = engine(33_800, 2);
    let far = far_end();
    let a = engine.create_leg(spec("x-a", &far, TONE, None)).unwrap();

    // (Legs of different codecs are bridged by transcoding: see
    // opus_loopback.rs.)
    assert!(matches!(
        engine.bridge(&a, &a),
        Err(MediaError::Unsupported(_))
    ));

    // A leg of another engine can neither be bridged nor colocated with.
    let other = common::engine(34_000, 1);
    let foreign = other.create_leg(spec("x-f", &far, TONE, None)).unwrap();
    assert!(matches!(
        engine.bridge(&a, &foreign),
        Err(MediaError::Unsupported(_))
    ));
    assert!(matches!(
        engine.create_leg(spec("x-g", &far, TONE, Some(&foreign))),
        Err(MediaError::Unsupported(_))
    ));

    let ok = engine
        .create_leg(spec("x-d", &far, TONE, Some(&a)))
        .unwrap();
    engine.bridge(&a, &ok).unwrap();
    ok.stop().wait(Duration::from_secs(2)).expect("report");
    assert!(matches!(
        engine.bridge(&a, &ok),
        Err(MediaError::LegStopped(_))
    ));
    assert_eq!(engine.active_legs(), 1);
    other.shutdown();
    engine.shutdown();
}

#[test]
fn stopping_one_bridged_leg_gives_the_other_its_prompt_back() {
    let engine = engine(34_200, 1);
    let (fa, fb) = (far_end(), far_end());
    let a = engine.create_leg(spec("stop-a", &fa, TONE, None)).unwrap();
    let b = engine
        .create_leg(spec("stop-b", &fb, TONE, Some(&a)))
        .unwrap();
    let b_ssrc = own_ssrc(&fb);
    engine.bridge(&a, &b).unwrap();
    settle(&fa, &fb);
    relay_one_by_one(&fa, a.local_addr(), &fb, b.local_addr(), 0xa1, 10);
    relay_one_by_one(&fb, b.local_addr(), &fa, a.local_addr(), 0xb2, 10);

    let report = a.stop().wait(Duration::from_secs(2)).expect("report a");
    assert_eq!(report.stats.packets_forwarded, 10);
    collect_for(&fa, Duration::from_millis(20));

    // B is on its own again: its prompt, on its SSRC.
    let got = collect_for(&fb, Duration::from_millis(200));
    assert!(got.len() >= 5, "{} packets", got.len());
    assert!(got
        .iter()
        .all(|p| RtpPacket::parse(p).unwrap().ssrc == b_ssrc));

    // What far end B sends now is received (and played), relayed nowhere.
    let before = b.stats();
    let mut w = RtpWriter::with_initial(0, 160, 0xb2, 500, 0);
    let mut pkt = [0u8; 200];
    for k in 0..10 {
        let n = w.write(&pcmu_tone_frame(1_000.0, k), &mut pkt).unwrap();
        fb.send_to(&pkt[..n], b.local_addr()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_for("b counts", || {
        b.stats().packets_received == before.packets_received + 10
    });
    assert!(collect_for(&fa, Duration::from_millis(50)).is_empty());
    let after = b.stats();
    assert_eq!(after.packets_forwarded, before.packets_forwarded);
    assert_eq!(after.send_errors, 0);
    wait_for("b keeps sending", || {
        b.stats().packets_sent > after.packets_sent + 3
    });

    engine.unbridge(&a).unwrap(); // stopped: nothing to do
    engine.unbridge(&b).unwrap();
    b.stop().wait(Duration::from_secs(2)).expect("report b");
    assert_eq!(engine.active_legs(), 0);
    engine.shutdown();
}

/// Engines must not keep bridges of legs nobody stops from shutting down.
#[test]
fn shutdown_with_a_live_bridge() {
    let engine: MediaEngine = engine(34_600, 1);
    let (fa, fb) = (far_end(), far_end());
    let a = engine.create_leg(spec("sd-a", &fa, TONE, None)).unwrap();
    let b = engine
        .create_leg(spec("sd-b", &fb, TONE, Some(&a)))
        .unwrap();
    engine.bridge(&a, &b).unwrap();
    settle(&fa, &fb);
    relay_one_by_one(&fa, a.local_addr(), &fb, b.local_addr(), 1, 5);
    engine.shutdown();
    let ra = a.stop().wait(Duration::from_secs(1)).expect("report a");
    let rb = b.stop().wait(Duration::from_secs(1)).expect("report b");
    assert_eq!(
        (ra.stats.packets_forwarded, rb.stats.packets_forwarded),
        (5, 0)
    );
}

/// Legs on different workers: the bridge moves one to the other's worker
/// (commands for it follow it there), and packets flow as on one worker.
/// A muted side's packets are not relayed.
#[test]
fn bridge_moves_a_leg_across_workers_and_mute_holds_its_packets() {
    let engine = engine(34_400, 2);
    let (fa, fb) = (far_end(), far_end());
    let a = engine.create_leg(spec("move-a", &fa, TONE, None)).unwrap();
    // Least loaded worker: the other one.
    let b = engine.create_leg(spec("move-b", &fb, TONE, None)).unwrap();
    own_ssrc(&fa);
    own_ssrc(&fb);
    engine.bridge(&a, &b).unwrap();
    // Queued at once, while b may still be on its way: must follow it.
    b.set_remote(fb.local_addr().unwrap());
    settle(&fa, &fb);
    std::thread::sleep(Duration::from_millis(50));
    collect_for(&fa, Duration::from_millis(30));
    let ab = relay_one_by_one(&fa, a.local_addr(), &fb, b.local_addr(), 0xa1a1_0011, 50);
    let ba = relay_one_by_one(&fb, b.local_addr(), &fa, a.local_addr(), 0xb2b2_0012, 50);
    assert_eq!((ab.len(), ba.len()), (50, 50));

    a.set_muted(true);
    assert!(a.muted());
    let mut pkt = [0u8; 200];
    let mut w = RtpWriter::with_initial(0, 160, 0xa1a1_0013, 1, 0);
    for _ in 0..5 {
        let n = w.write(&[0x55; 160], &mut pkt).unwrap();
        fa.send_to(&pkt[..n], a.local_addr()).unwrap();
    }
    assert!(
        collect_for(&fb, Duration::from_millis(100)).is_empty(),
        "a muted party's packets reach no one"
    );
    a.set_muted(false);
    relay_one_by_one(&fa, a.local_addr(), &fb, b.local_addr(), 0xa1a1_0013, 5);

    for leg in [&a, &b] {
        leg.stop().wait(Duration::from_secs(2)).expect("report");
    }
    assert_eq!(engine.active_legs(), 0);
    engine.shutdown();
}
