//! End-to-end over loopback UDP: a real engine, a real leg, a test socket
//! playing the far end. Every loop is bounded in count and time.

mod common;

use common::{assert_tone, loud_region, tone};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use media_core::codec::{ulaw_decode, ulaw_encode};
use media_core::rtp::{RtpPacket, RtpWriter};
use media_core::{Codec, LegSpec, Prompt, TapDirection, TapFrame, TapSink, TAP_RATE};

/// The kind of sink the ASR bridge would write: a bounded channel.
struct ChannelSink(Sender<TapFrame>);

impl TapSink for ChannelSink {
    fn try_push(&mut self, frame: TapFrame) -> Result<(), TapFrame> {
        self.0.try_send(frame).map_err(|e| e.into_inner())
    }
}

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mc-e2e-{}-{name}", std::process::id()))
}

fn drain_leg_packets(sock: &UdpSocket, into: &mut Vec<Vec<u8>>) {
    let mut buf = [0u8; 1500];
    for _ in 0..100 {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => into.push(buf[..n].to_vec()),
            Err(_) => break,
        }
    }
}

#[test]
fn leg_sends_prompt_records_and_taps_what_it_receives() {
    let engine = common::engine(31_000, 1);
    let far = UdpSocket::bind("127.0.0.1:0").unwrap();
    far.set_nonblocking(true).unwrap();
    let (tap_tx, tap_rx): (Sender<TapFrame>, Receiver<TapFrame>) = crossbeam_channel::bounded(500);
    let dir = temp_dir("main");
    let path = dir.join("nested").join("call.wav");
    let mut spec = LegSpec::new("call-e2e-1", Codec::Pcmu);
    spec.remote = Some(far.local_addr().unwrap());
    spec.prompt = Prompt::Tone {
        freq_hz: 1_000.0,
        on_ms: 1_000,
        off_ms: 0,
        amplitude: 8_000,
    };
    spec.record_to = Some(path.clone());
    spec.taps = vec![(TapDirection::Inbound, Box::new(ChannelSink(tap_tx)))];
    let leg = engine.create_leg(spec).unwrap();
    assert_eq!(engine.active_legs(), 1);
    let leg_addr: SocketAddr = leg.local_addr();
    assert_eq!(leg_addr.port() % 2, 0);

    // Far end: 1 s of 440 Hz PCMU at 20 ms pacing, reading what the leg sends.
    let mut writer = RtpWriter::with_initial(0, 160, 0x1234_5678, 60_000, 1_000);
    let mut received = Vec::new();
    let t0 = Instant::now();
    let mut pkt = [0u8; 200];
    for k in 0..50usize {
        let pcm = tone(440.0, 8_000.0, k * 160, 160, 10_000.0);
        let payload: Vec<u8> = pcm.iter().map(|&s| ulaw_encode(s)).collect();
        let n = writer.write(&payload, &mut pkt).unwrap();
        far.send_to(&pkt[..n], leg_addr).unwrap();
        drain_leg_packets(&far, &mut received);
        let next = t0 + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        drain_leg_packets(&far, &mut received);
        std::thread::sleep(Duration::from_millis(10));
    }

    // What the leg sent: valid PCMU, one SSRC, consecutive seq, marker first.
    assert!(received.len() >= 40, "got {} packets", received.len());
    let parsed: Vec<RtpPacket> = received
        .iter()
        .map(|p| RtpPacket::parse(p).unwrap())
        .collect();
    assert!(parsed[0].marker);
    let mut sent_pcm = Vec::new();
    for w in parsed.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].timestamp, w[0].timestamp.wrapping_add(160));
        assert_eq!(w[1].ssrc, w[0].ssrc);
    }
    for p in &parsed {
        assert_eq!(p.payload_type, 0);
        assert_eq!(p.payload.len(), 160);
        sent_pcm.extend(p.payload.iter().map(|&b| ulaw_decode(b)));
    }
    assert_tone(&sent_pcm, 8_000.0, 1_000.0, 440.0, "RTP from leg");

    let stats = leg.stats();
    assert_eq!(stats.packets_received, 50);
    assert_eq!(stats.packets_invalid, 0);

    let report = leg.stop().wait(Duration::from_secs(5)).expect("report");
    assert_eq!(report.recording.as_deref(), Some(path.as_path()));
    assert_eq!(report.stats.packets_received, 50);
    assert_eq!(report.stats.bytes_received, 50 * 172);
    assert!(report.stats.packets_sent >= received.len() as u64);
    assert_eq!(report.stats.packets_lost, 0);
    assert!(report.recorded_frames >= 50, "{}", report.recorded_frames);
    assert!(report.duration >= Duration::from_millis(900));
    // A second stop resolves at once with the same report.
    let again = leg
        .stop()
        .wait(Duration::from_millis(1))
        .expect("same report");
    assert_eq!(again.recorded_frames, report.recorded_frames);

    // The recording: left = what we sent the leg, right = its prompt.
    let mut wav = hound::WavReader::open(&path).unwrap();
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8_000, 16)
    );
    let samples: Vec<i16> = wav.samples::<i16>().map(|s| s.unwrap()).collect();
    assert_eq!(samples.len() as u64, report.recorded_frames * 160 * 2);
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert_tone(loud_region(&left, 160), 8_000.0, 440.0, 1_000.0, "WAV left");
    assert_tone(
        loud_region(&right, 160),
        8_000.0,
        1_000.0,
        440.0,
        "WAV right",
    );

    // Inbound tap: seq 0..n without gaps, 16 kHz 440 Hz.
    let frames: Vec<TapFrame> = tap_rx.try_iter().collect();
    assert!(frames.len() >= 50, "{} tap frames", frames.len());
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.seq, i as u64);
    }
    let tapped: Vec<i16> = frames.iter().flat_map(|f| f.samples).collect();
    assert_tone(
        loud_region(&tapped, 640),
        TAP_RATE as f64,
        440.0,
        1_000.0,
        "tap",
    );

    let deadline = Instant::now() + Duration::from_secs(2);
    while engine.active_legs() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(engine.active_legs(), 0);
    engine.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn latches_to_source_and_classifies_packets() {
    let engine = common::engine(31_400, 1);
    let far = UdpSocket::bind("127.0.0.1:0").unwrap();
    far.set_nonblocking(true).unwrap();
    let mut spec = LegSpec::new("call-e2e-2", Codec::Pcma);
    spec.telephone_event_pt = Some(101);
    let leg = engine.create_leg(spec).unwrap();
    let to = leg.local_addr();

    // No remote yet: the leg must not send anything.
    std::thread::sleep(Duration::from_millis(100));
    let mut got = Vec::new();
    drain_leg_packets(&far, &mut got);
    assert!(got.is_empty());
    assert_eq!(leg.stats().packets_sent, 0);

    far.send_to(b"\x00garbage", to).unwrap(); // not RTP
    let mut pkt = [0u8; 200];
    let mut w = RtpWriter::with_initial(8, 160, 7, 1, 0);
    let n = w.write(&[0xd5; 160], &mut pkt).unwrap();
    far.send_to(&pkt[..n], to).unwrap(); // audio: latches
    let mut dtmf = RtpWriter::with_initial(101, 160, 7, 1, 0);
    let n = dtmf.write(&[1, 0x0a, 0, 160], &mut pkt).unwrap();
    far.send_to(&pkt[..n], to).unwrap();
    let mut other = RtpWriter::with_initial(0, 160, 7, 1, 0);
    let n = other.write(&[0xff; 160], &mut pkt).unwrap();
    far.send_to(&pkt[..n], to).unwrap(); // wrong PT
                                         // A different source after latching is ignored.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let n = w.write(&[0xd5; 160], &mut pkt).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    stranger.send_to(&pkt[..n], to).unwrap();

    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        drain_leg_packets(&far, &mut got);
        let s = leg.stats();
        if (s.packets_received == 5 && got.len() >= 3) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = leg.stats();
    assert_eq!(s.packets_received, 5);
    assert_eq!(s.dtmf_packets, 1);
    assert_eq!(s.packets_invalid, 3, "{s:?}");
    assert!(got.len() >= 3, "leg answers the latched source");
    let p = RtpPacket::parse(&got[0]).unwrap();
    assert_eq!(p.payload_type, 8);
    assert!(p.marker);

    // set_remote moves the stream.
    let moved = UdpSocket::bind("127.0.0.1:0").unwrap();
    moved.set_nonblocking(true).unwrap();
    leg.set_remote(moved.local_addr().unwrap());
    let mut at_new = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while at_new.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        drain_leg_packets(&moved, &mut at_new);
    }
    assert!(!at_new.is_empty());
    engine.shutdown();
    // Shutdown stopped the leg and reported it.
    let report = leg
        .stop()
        .wait(Duration::from_secs(1))
        .expect("report after shutdown");
    assert!(report.recording.is_none());
    assert_eq!(report.stats.dtmf_packets, 1);
}

#[test]
fn shutdown_finalizes_recordings_of_running_legs() {
    let engine = common::engine(31_800, 1);
    let dir = temp_dir("shutdown");
    let path = dir.join("running.wav");
    let mut spec = LegSpec::new("call-e2e-3", Codec::Pcmu);
    spec.record_to = Some(path.clone());
    let leg = engine.create_leg(spec).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    engine.shutdown();
    let report = leg.stop().wait(Duration::from_secs(1)).expect("report");
    assert_eq!(report.recording.as_deref(), Some(path.as_path()));
    let wav = hound::WavReader::open(&path).unwrap();
    assert_eq!(wav.duration() as u64, report.recorded_frames * 160);
    assert!(report.recorded_frames >= 5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_specs_are_rejected() {
    let engine = common::engine(32_200, 1);
    let mut spec = LegSpec::new("bad", Codec::Pcmu);
    spec.ptime_ms = 30;
    assert!(engine.create_leg(spec).is_err());
    let mut spec = LegSpec::new("bad", Codec::Pcmu);
    spec.prompt = Prompt::Wav {
        path: "/nonexistent/prompt.wav".into(),
        looped: false,
    };
    assert!(engine.create_leg(spec).is_err());
    assert_eq!(engine.active_legs(), 0);
}
