//! Media hot-path costs per 20 ms frame: what one leg spends per tick.
//! At 50 ticks per second, ns/iter × 50 × legs is a core's budget share.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use media_core::codec::Codec;
use media_core::frame::samples_per_frame;
use media_core::g722::{G722Decoder, G722Encoder};
use media_core::jitter::{JitterBuffer, JitterConfig, Playout};
use media_core::mix_edge::MixEdge;
use media_core::mixer::{Mixer, Role};
use media_core::opus::{OpusDecoder, OpusEncoder, MAX_OPUS_PACKET};
use media_core::relay::{PacketKind, PayloadTypes};
use media_core::resample::Resampler;
use media_core::rtp::RtpWriter;
use media_core::srtp::{MasterKey, SrtpContext, SrtpProfile};
use media_core::OpusParams;

fn frame_tone() -> Vec<i16> {
    (0..160)
        .map(|i| (8_000.0 * (std::f32::consts::TAU * 440.0 * i as f32 / 8_000.0).sin()) as i16)
        .collect()
}

fn ulaw(c: &mut Criterion) {
    let pcm = frame_tone();
    let mut enc = [0u8; 160];
    let mut dec = [0i16; 160];
    c.bench_function("ulaw_encode_frame", |b| {
        b.iter(|| Codec::Pcmu.encode(black_box(&pcm), &mut enc))
    });
    Codec::Pcmu.encode(&pcm, &mut enc);
    c.bench_function("ulaw_decode_frame", |b| {
        b.iter(|| Codec::Pcmu.decode(black_box(&enc), &mut dec))
    });
}

/// One 20 ms G.722 frame: 320 samples at 16 kHz, 160 bytes. The codec
/// keeps state across frames, as on a leg, so this is the steady state.
fn g722(c: &mut Criterion) {
    let pcm: Vec<i16> = (0..320)
        .map(|i| (8_000.0 * (std::f32::consts::TAU * 440.0 * i as f32 / 16_000.0).sin()) as i16)
        .collect();
    let mut enc = G722Encoder::new();
    let mut payload = [0u8; 160];
    let mut dec = G722Decoder::new();
    let mut out = [0i16; 320];
    c.bench_function("g722_encode_frame", |b| {
        b.iter(|| enc.encode(black_box(&pcm), &mut payload))
    });
    c.bench_function("g722_decode_frame", |b| {
        b.iter(|| dec.decode(black_box(&payload), &mut out))
    });
}

/// One 20 ms Opus frame: 960 samples at 48 kHz, mono, our leg settings
/// (VoIP, 32 kbit/s, in-band FEC). Speech-like input (harmonics of 150 Hz)
/// so the encoder works in the SILK/hybrid modes it uses for voice. Also
/// the receive side's worst case: a lost frame rebuilt from the next
/// packet's FEC.
fn opus(c: &mut Criterion) {
    let frames: Vec<Vec<i16>> = (0..50)
        .map(|k| {
            (0..960)
                .map(|i| {
                    let t = (k * 960 + i) as f32 / 48_000.0;
                    let s: f32 = (1..=8)
                        .map(|h| (std::f32::consts::TAU * 150.0 * h as f32 * t).sin() / h as f32)
                        .sum();
                    (s * 4_000.0) as i16
                })
                .collect()
        })
        .collect();
    let mut enc = OpusEncoder::new(OpusParams::default()).expect("encoder");
    let mut payload = [0u8; MAX_OPUS_PACKET];
    let mut k = 0;
    c.bench_function("opus_encode_frame", |b| {
        b.iter(|| {
            k = (k + 1) % frames.len();
            enc.encode(black_box(&frames[k]), &mut payload)
        })
    });
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let n = enc.encode(f, &mut payload);
            payload[..n].to_vec()
        })
        .collect();
    let mut dec = OpusDecoder::new().expect("decoder");
    let mut out = [0i16; 960];
    c.bench_function("opus_decode_frame", |b| {
        b.iter(|| {
            k = (k + 1) % packets.len();
            dec.decode(black_box(&packets[k]), &mut out)
        })
    });
    c.bench_function("opus_fec_recover_frame", |b| {
        b.iter(|| {
            k = (k + 1) % packets.len();
            dec.conceal_loss(Some(black_box(&packets[k])), &mut out)
        })
    });
}

fn jitter(c: &mut Criterion) {
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let payload = [0xffu8; 160];
    let t0 = Instant::now();
    // Prime past the target delay so each iteration is a steady-state
    // push of the next packet plus one pop.
    let mut seq: u16 = 0;
    let mut ts: u32 = 0;
    let mut now = t0;
    for _ in 0..3 {
        jb.push(now, seq, ts, &payload);
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(160);
    }
    now += Duration::from_millis(40);
    c.bench_function("jitter_push_pop", |b| {
        b.iter(|| {
            jb.push(now, seq, ts, black_box(&payload));
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            now += Duration::from_millis(20);
            matches!(black_box(jb.pop(now)), Playout::Frame(_))
        })
    });
    // The same with the fixed-delay policy: what the adaptive controller costs.
    let mut fixed = JitterBuffer::new(JitterConfig {
        adaptive: false,
        ..JitterConfig::default()
    });
    let mut now = t0;
    for _ in 0..3 {
        fixed.push(now, seq, ts, &payload);
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(160);
    }
    now += Duration::from_millis(40);
    c.bench_function("jitter_push_pop_fixed", |b| {
        b.iter(|| {
            fixed.push(now, seq, ts, black_box(&payload));
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            now += Duration::from_millis(20);
            matches!(black_box(fixed.pop(now)), Playout::Frame(_))
        })
    });
    // Adaptive under 0-60 ms of jitter and a sender clock 1 % fast: the
    // histogram, the sliding minimum and the drop/insert decisions all work.
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut k: u64 = 0;
    c.bench_function("jitter_push_pop_jittered", |b| {
        b.iter(|| {
            let jitter_us = (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) % 60_000;
            let sent = Duration::from_micros(k * 19_800 + jitter_us);
            jb.push(t0 + sent, seq, ts, black_box(&payload));
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            k += 1;
            let tick = t0 + Duration::from_millis(20 * k + 60);
            !matches!(black_box(jb.pop(tick)), Playout::Empty)
        })
    });
}

fn resample(c: &mut Criterion) {
    let pcm = frame_tone();
    let mut out = [0i16; 320];
    let mut r = Resampler::new(8_000, 16_000).expect("8k->16k resampler");
    c.bench_function("resample_8k_16k_frame", |b| {
        b.iter(|| r.process(black_box(&pcm), &mut out).expect("frame"))
    });
}

/// A bridge's per-packet decision: parse and classify what leg A received,
/// then fit it for leg B (here with a payload type rewrite, the costlier
/// case). The syscalls around it are not included.
fn relay(c: &mut Criterion) {
    let a = PayloadTypes {
        audio: 0,
        telephone_event: Some(101),
        comfort_noise: None,
    };
    let b = PayloadTypes {
        audio: 0,
        telephone_event: Some(96),
        comfort_noise: None,
    };
    let mut packet = [0u8; 172];
    let n = RtpWriter::with_initial(101, 160, 7, 1, 0)
        .write(&[0x55; 160], &mut packet)
        .expect("packet");
    c.bench_function("relay_classify_retarget_packet", |bench| {
        bench.iter(|| {
            // Restore A's number so every iteration rewrites.
            packet[1] = 101;
            let kind = match a.classify(black_box(&packet[..n])) {
                Some((_, kind)) => kind,
                None => PacketKind::Audio,
            };
            b.retarget(black_box(&mut packet[..n]), kind)
        })
    });
}

/// One conference tick's mix (all inputs in, every minus-one output out)
/// at 8 kHz, with a whisperer among larger rooms. Per-member work is
/// linear: the sum is taken once and each output subtracts its own input.
fn mixer(c: &mut Criterion) {
    let tone = frame_tone();
    let mut group = c.benchmark_group("mixer_mix_frame");
    for members in [2usize, 10, 50] {
        let mut m = Mixer::new(160);
        for id in 0..members as u64 {
            let role = if id == 2 {
                Role::Whisper { to: 0 }
            } else {
                Role::Participant
            };
            let k = m.join(id, role);
            m.input_mut(k).copy_from_slice(&tone);
        }
        group.bench_function(format!("{members}_members"), |b| {
            b.iter(|| {
                m.mix();
                black_box(m.output(members - 1)[0])
            })
        });
    }
    group.finish();
}

/// One tick of a conference across rates, as the worker runs it minus the
/// codecs and sockets: every member's frame resampled into the 48 kHz mix
/// at its edge, the mix, every minus-one mix resampled back to the
/// member's rate. `rates` lists each member's rate; the all-8 kHz room is
/// the baseline (its edges are copies).
fn mixer_mixed_rate(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer_mixed_rate_tick");
    let rooms: [(&str, Vec<u32>); 3] = [
        ("3_members_8_16_48k", vec![8_000, 16_000, 48_000]),
        (
            "10_members_6x8k_3x16k_1x48k",
            [[8_000; 6].as_slice(), &[16_000; 3], &[48_000]].concat(),
        ),
        ("10_members_all_8k", vec![8_000; 10]),
    ];
    for (name, rates) in rooms {
        let mix_rate = *rates.iter().max().unwrap();
        let mut m = Mixer::new(samples_per_frame(mix_rate));
        let mut edges: Vec<MixEdge> = rates.iter().map(|&r| MixEdge::new(r).unwrap()).collect();
        for (id, e) in edges.iter_mut().enumerate() {
            m.join(id as u64, Role::Participant);
            let n = e.said_mut().len();
            for (i, x) in e.said_mut().iter_mut().enumerate() {
                let t = i as f32 / n as f32;
                *x = (8_000.0 * (std::f32::consts::TAU * 8.8 * t).sin()) as i16;
            }
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                for (k, e) in edges.iter_mut().enumerate() {
                    e.into_mix(mix_rate, m.input_mut(k));
                }
                m.mix();
                for (k, e) in edges.iter_mut().enumerate() {
                    e.from_mix(mix_rate, m.output(k));
                }
                black_box(edges[0].frames().1[0])
            })
        });
    }
    group.finish();
}

/// SRTP (AES-CM-128 + HMAC-SHA1-80) on a 20 ms PCMU packet (172 bytes):
/// protecting what a leg sends, and a sender/receiver round trip (the
/// receive side's unprotect is the difference). Each packet gets the next
/// sequence number, as on the wire, so the receiver's replay window and
/// ROC estimate do their real work.
fn srtp(c: &mut Criterion) {
    let key = MasterKey::new(SrtpProfile::AesCm128HmacSha1_80, [0x2b; 16], [0xf0; 14]);
    let mut writer = RtpWriter::with_initial(0, 160, 0x1234_5678, 0, 0);
    let payload = [0x55u8; 160];
    let mut buf = [0u8; 200];
    let mut tx = SrtpContext::new(&key);
    c.bench_function("srtp_protect_pcmu_packet", |b| {
        b.iter(|| {
            let n = writer.write(&payload, &mut buf).unwrap();
            tx.protect_rtp(black_box(&mut buf), n).unwrap()
        })
    });
    let (mut tx, mut rx) = (SrtpContext::new(&key), SrtpContext::new(&key));
    c.bench_function("srtp_protect_unprotect_pcmu_packet", |b| {
        b.iter(|| {
            let n = writer.write(&payload, &mut buf).unwrap();
            let n = tx.protect_rtp(&mut buf, n).unwrap();
            rx.unprotect_rtp(black_box(&mut buf[..n])).unwrap()
        })
    });
    c.bench_function("rtp_write_pcmu_packet", |b| {
        b.iter(|| writer.write(black_box(&payload), &mut buf).unwrap())
    });
}

criterion_group!(
    media,
    ulaw,
    g722,
    opus,
    jitter,
    resample,
    relay,
    mixer,
    mixer_mixed_rate,
    srtp
);
criterion_main!(media);
