//! An Opus leg over loopback UDP: a test socket plays the far end, sending
//! Opus RTP (48 kHz clock, dynamic payload type) with one packet lost, and
//! decoding what the leg sends. Every loop is bounded in count and time.

mod common;

use common::{assert_tone, collect_for, loud_region, tone};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use media_core::opus::{OpusDecoder, OpusEncoder, OPUS_RATE};
use media_core::rtp::{RtpPacket, RtpWriter};
use media_core::{Codec, LegSpec, OpusParams, Prompt, TapDirection, TapFrame, TAP_RATE};

const FRAME: usize = 960;
const PT: u8 = 96;
/// The far end's packet that never arrives: the leg rebuilds it from the
/// FEC in the next one.
const DROPPED: usize = 25;

#[test]
fn opus_leg_decodes_records_taps_and_sends_opus() {
    let engine = common::engine(31_800, 1);
    let far = UdpSocket::bind("127.0.0.1:0").unwrap();
    far.set_nonblocking(true).unwrap();
    let (tap_tx, tap_rx) = crossbeam_channel::bounded::<TapFrame>(500);
    let dir = std::env::temp_dir().join(format!("mc-opus-{}", std::process::id()));
    let path = dir.join("opus-call.wav");
    let mut spec = LegSpec::new("call-opus-1", Codec::Opus);
    assert_eq!(spec.payload_type, 111, "our default dynamic payload type");
    spec.payload_type = PT;
    spec.opus = OpusParams::for_peer(Some(24_000), false);
    spec.remote = Some(far.local_addr().unwrap());
    spec.prompt = Prompt::Tone {
        freq_hz: 1_000.0,
        on_ms: 1_000,
        off_ms: 0,
        amplitude: 8_000,
    };
    spec.record_to = Some(path.clone());
    spec.taps = vec![(TapDirection::Inbound, Box::new(tap_tx))];
    let leg = engine.create_leg(spec).unwrap();
    let to = leg.local_addr();

    // Far end: 1 s of 440 Hz as Opus at 20 ms pacing.
    let mut enc = OpusEncoder::new(OpusParams::default()).unwrap();
    let mut writer = RtpWriter::with_initial(PT, FRAME as u32, 0xabcd, 100, 5_000);
    let (mut payload, mut pkt) = ([0u8; 1_275], [0u8; 1_500]);
    let mut received = Vec::new();
    let t0 = Instant::now();
    for k in 0..50usize {
        let pcm = tone(440.0, OPUS_RATE as f64, k * FRAME, FRAME, 10_000.0);
        let len = enc.encode(&pcm, &mut payload);
        assert!(len > 0);
        let n = writer.write(&payload[..len], &mut pkt).unwrap();
        if k != DROPPED {
            far.send_to(&pkt[..n], to).unwrap();
        }
        received.extend(collect_for(&far, Duration::ZERO));
        let next = t0 + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    received.extend(collect_for(&far, Duration::from_millis(200)));

    // What the leg sent: Opus at our payload type on a 48 kHz clock,
    // decodable to its 1 kHz prompt.
    assert!(received.len() >= 40, "got {} packets", received.len());
    let mut dec = OpusDecoder::new().unwrap();
    let mut heard = Vec::new();
    let mut last: Option<RtpPacket> = None;
    for p in &received {
        let p = RtpPacket::parse(p).unwrap();
        assert_eq!(p.payload_type, PT);
        assert!(
            p.payload.len() > 2 && p.payload.len() < 200,
            "{}",
            p.payload.len()
        );
        if let Some(prev) = &last {
            assert_eq!(p.seq, prev.seq.wrapping_add(1));
            assert_eq!(p.timestamp, prev.timestamp.wrapping_add(FRAME as u32));
        }
        let mut out = [0i16; FRAME];
        assert_eq!(dec.decode(p.payload, &mut out), FRAME);
        heard.extend_from_slice(&out);
        last = Some(p);
    }
    assert_tone(
        &heard[FRAME * 5..],
        OPUS_RATE as f64,
        1_000.0,
        440.0,
        "Opus from the leg",
    );

    let report = leg.stop().wait(Duration::from_secs(5)).expect("report");
    assert_eq!(report.stats.packets_received, 49);
    assert_eq!(report.stats.packets_invalid, 0);
    assert_eq!(report.stats.packets_lost, 1, "the dropped packet");

    // The recording runs at 48 kHz; its left channel is the far end's tone,
    // with no hole where the packet was lost (FEC filled it).
    let mut wav = hound::WavReader::open(&path).unwrap();
    let s = wav.spec();
    assert_eq!((s.channels, s.sample_rate), (2, OPUS_RATE));
    let samples: Vec<i16> = wav.samples::<i16>().map(|s| s.unwrap()).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let loud = loud_region(&left, FRAME);
    assert_tone(loud, OPUS_RATE as f64, 440.0, 1_000.0, "recording left");
    assert!(
        loud.len() >= 45 * FRAME,
        "one loud stretch: {} samples",
        loud.len()
    );
    let quietest = loud
        .chunks(FRAME)
        .map(|f| f.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / f.len() as f64)
        .fold(f64::MAX, f64::min);
    assert!(
        quietest > 1e6,
        "a frame of the tone went quiet: power {quietest}"
    );

    // The inbound tap: 16 kHz, the same tone.
    let frames: Vec<TapFrame> = tap_rx.try_iter().collect();
    assert!(frames.len() >= 50, "{} tap frames", frames.len());
    let tapped: Vec<i16> = frames.iter().flat_map(|f| f.samples).collect();
    assert_tone(
        loud_region(&tapped, 640),
        TAP_RATE as f64,
        440.0,
        1_000.0,
        "tap",
    );

    engine.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// An Opus leg bridged to a PCMU leg: no packet is relayed across (the
/// codecs differ); each side hears the other's tone in its own codec.
#[test]
fn opus_leg_bridged_to_pcmu_leg_transcodes_both_ways() {
    use media_core::codec::{ulaw_decode, ulaw_encode};

    let engine = common::engine(32_200, 2);
    let (far_o, far_u) = (common::far_end(), common::far_end());
    for f in [&far_o, &far_u] {
        f.set_nonblocking(true).unwrap();
    }
    let mut o = LegSpec::new("x-opus", Codec::Opus);
    o.remote = Some(far_o.local_addr().unwrap());
    o.telephone_event_pt = Some(101);
    let o = engine.create_leg(o).unwrap();
    let mut u = LegSpec::new("x-pcmu", Codec::Pcmu);
    u.remote = Some(far_u.local_addr().unwrap());
    u.telephone_event_pt = Some(101);
    let u = engine.create_leg(u).unwrap(); // another worker: it moves
    engine.bridge(&o, &u).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    collect_for(&far_o, Duration::ZERO);
    collect_for(&far_u, Duration::ZERO);

    // 1 s both ways: 440 Hz as Opus into one, 1 kHz as PCMU into the other.
    let mut enc = OpusEncoder::new(OpusParams::default()).unwrap();
    let mut wo = RtpWriter::with_initial(111, FRAME as u32, 1, 1, 0);
    let mut wu = RtpWriter::with_initial(0, 160, 2, 1, 0);
    let (mut payload, mut pkt) = ([0u8; 1_275], [0u8; 1_500]);
    let (mut at_o, mut at_u) = (Vec::new(), Vec::new());
    let t0 = Instant::now();
    for k in 0..50usize {
        let len = enc.encode(
            &tone(440.0, 48_000.0, k * FRAME, FRAME, 10_000.0),
            &mut payload,
        );
        let n = wo.write(&payload[..len], &mut pkt).unwrap();
        far_o.send_to(&pkt[..n], o.local_addr()).unwrap();
        let ulaw: Vec<u8> = tone(1_000.0, 8_000.0, k * 160, 160, 10_000.0)
            .iter()
            .map(|&s| ulaw_encode(s))
            .collect();
        let n = wu.write(&ulaw, &mut pkt).unwrap();
        far_u.send_to(&pkt[..n], u.local_addr()).unwrap();
        at_o.extend(collect_for(&far_o, Duration::ZERO));
        at_u.extend(collect_for(&far_u, Duration::ZERO));
        let next = t0 + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    at_o.extend(collect_for(&far_o, Duration::from_millis(200)));
    at_u.extend(collect_for(&far_u, Duration::from_millis(200)));

    // The PCMU side hears the Opus side's 440 Hz, as PCMU.
    let mut heard_u = Vec::new();
    for p in &at_u {
        let p = RtpPacket::parse(p).unwrap();
        assert_eq!((p.payload_type, p.payload.len()), (0, 160));
        heard_u.extend(p.payload.iter().map(|&b| ulaw_decode(b)));
    }
    assert_tone(
        loud_region(&heard_u, 320),
        8_000.0,
        440.0,
        1_000.0,
        "PCMU side",
    );
    // The Opus side hears the PCMU side's 1 kHz, as Opus.
    let mut dec = OpusDecoder::new().unwrap();
    let mut heard_o = Vec::new();
    for p in &at_o {
        let p = RtpPacket::parse(p).unwrap();
        assert_eq!(p.payload_type, 111);
        let mut out = [0i16; FRAME];
        dec.decode(p.payload, &mut out);
        heard_o.extend_from_slice(&out);
    }
    assert_tone(
        loud_region(&heard_o, 2 * FRAME),
        48_000.0,
        1_000.0,
        440.0,
        "Opus side",
    );

    let (so, su) = (o.stats(), u.stats());
    assert_eq!((so.packets_forwarded, su.packets_forwarded), (0, 0));
    assert!(
        so.packets_sent >= 45 && su.packets_sent >= 45,
        "{so:?} {su:?}"
    );
    engine.shutdown();
}
