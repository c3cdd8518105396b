//! A conference across sample rates over loopback UDP: a PCMU (8 kHz), a
//! G.722 (16 kHz) and an Opus (48 kHz) far end, each saying its own tone in
//! its own codec. Each hears the other two and not itself (the mix runs at
//! 48 kHz, each member resampled once into it and its mix once back); when
//! the Opus member leaves, the mix falls back to 16 kHz and the other two
//! still hear each other; a muted member is heard by nobody, a listener
//! by nobody, a whisper only by its target.

mod common;
mod mixed_rate;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use media_core::rtp::{RtpPacket, RtpWriter};
use media_core::{Codec, LegHandle, LegSpec, MediaError, Prompt, Role};
use mixed_rate::FarCodec;

/// Tones under 4 kHz, so the 8 kHz member carries its own and hears all.
const FREQS: [f64; 3] = [450.0, 1_050.0, 1_650.0];
const PHASE: Duration = Duration::from_millis(1_200);
const SETTLE: Duration = Duration::from_millis(400);

struct Party {
    far: UdpSocket,
    leg: LegHandle,
    writer: RtpWriter,
    codec: FarCodec,
}

fn party(engine: &media_core::MediaEngine, codec: Codec, ssrc: u32) -> Party {
    let far = far_end();
    far.set_nonblocking(true).unwrap();
    let mut spec = LegSpec::new(format!("mixed-{}", codec.encoding_name()), codec);
    spec.remote = Some(far.local_addr().unwrap());
    spec.prompt = Prompt::Silence;
    let leg = engine.create_leg(spec).unwrap();
    let codec = FarCodec::new(codec);
    Party {
        far,
        leg,
        writer: codec.writer(ssrc),
        codec,
    }
}

/// One phase: every 20 ms each party in `talking` sends a frame of its
/// tone; what each receives after `SETTLE` is decoded at its own rate.
fn run_phase(parties: &mut [Party], talking: &[usize], frame: &mut usize) -> Vec<Vec<i16>> {
    let mut heard = vec![Vec::new(); parties.len()];
    let start = Instant::now();
    let (mut pkt, mut buf) = ([0u8; 1_500], [0u8; 1_500]);
    let frames = (SETTLE + PHASE).as_millis() as usize / 20;
    for k in 0..frames {
        for &i in talking {
            let p = &mut parties[i];
            let payload = p.codec.encode_tone(FREQS[i], *frame);
            let n = p.writer.write(&payload, &mut pkt).unwrap();
            p.far.send_to(&pkt[..n], p.leg.local_addr()).unwrap();
        }
        *frame += 1;
        let due = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        for (i, p) in parties.iter_mut().enumerate() {
            while let Ok((len, _)) = p.far.recv_from(&mut buf) {
                let Ok(rtp) = RtpPacket::parse(&buf[..len]) else {
                    continue;
                };
                let mut scratch = Vec::new();
                p.codec.decode(rtp.payload, &mut scratch);
                if start.elapsed() > SETTLE {
                    heard[i].extend_from_slice(&scratch);
                }
            }
        }
    }
    heard
}

/// Asserts which tones `x` (at `rate`) carries: present ones clearly,
/// absent ones at least 30 dB below the loudest.
fn assert_hears(x: &[i16], rate: u32, want: [bool; 3], what: &str) {
    assert!(
        x.len() > rate as usize / 2,
        "{what}: only {} samples",
        x.len()
    );
    let power: Vec<f64> = FREQS.iter().map(|&f| goertzel(x, rate as f64, f)).collect();
    let loudest = power.iter().cloned().fold(0.0, f64::max);
    for i in 0..3 {
        let name = ["PCMU", "G722", "Opus"][i];
        if want[i] {
            assert!(power[i] > 1e6, "{what}: {name} missing ({power:?})");
        } else {
            assert!(
                power[i] * 1_000.0 < loudest.max(1e6),
                "{what}: {name} heard ({power:?})"
            );
        }
    }
}

#[test]
fn members_of_three_rates_hear_each_other_but_not_themselves() {
    let engine = engine(37_800, 2);
    let mut parties = vec![
        party(&engine, Codec::Pcmu, 0xa),
        party(&engine, Codec::G722, 0xb),
        party(&engine, Codec::Opus, 0xc),
    ];
    let rates: Vec<u32> = parties.iter().map(|p| p.codec.rate()).collect();
    // Created at 8 kHz: the members decide the rate.
    let conf = engine.create_conference("mixed", 8_000).unwrap();
    for p in &parties {
        engine
            .conference_join(&conf, &p.leg, Role::Participant)
            .unwrap();
    }
    let mut frame = 0;
    let all = [0, 1, 2];

    let heard = run_phase(&mut parties, &all, &mut frame);
    assert_hears(
        &heard[0],
        rates[0],
        [false, true, true],
        "PCMU at 48 kHz mix",
    );
    assert_hears(
        &heard[1],
        rates[1],
        [true, false, true],
        "G722 at 48 kHz mix",
    );
    assert_hears(
        &heard[2],
        rates[2],
        [true, true, false],
        "Opus at 48 kHz mix",
    );

    // Opus listens, G.722 is muted: the PCMU member hears nobody, the
    // listener hears PCMU only.
    engine
        .conference_join(&conf, &parties[2].leg, Role::Listen)
        .unwrap();
    parties[1].leg.set_muted(true);
    let heard = run_phase(&mut parties, &all, &mut frame);
    assert_hears(&heard[2], rates[2], [true, false, false], "Opus listening");
    assert!(
        goertzel(&heard[0], 8_000.0, FREQS[1]) < 1e4
            && goertzel(&heard[0], 8_000.0, FREQS[2]) < 1e4,
        "PCMU hears neither the muted G722 nor the listener"
    );
    parties[1].leg.set_muted(false);

    // The 48 kHz member coaches the 8 kHz one: only it hears the whisper.
    let to = parties[0].leg.id();
    engine
        .conference_join(&conf, &parties[2].leg, Role::Whisper { to })
        .unwrap();
    let heard = run_phase(&mut parties, &all, &mut frame);
    assert_hears(
        &heard[0],
        rates[0],
        [false, true, true],
        "PCMU coached by Opus",
    );
    assert_hears(
        &heard[1],
        rates[1],
        [true, false, false],
        "G722 while Opus whispers",
    );
    assert_hears(&heard[2], rates[2], [true, true, false], "Opus whispering");

    // The 48 kHz member leaves: the mix falls back to 16 kHz.
    engine.conference_leave(&parties[2].leg).unwrap();
    let heard = run_phase(&mut parties, &[0, 1], &mut frame);
    assert_hears(
        &heard[0],
        rates[0],
        [false, true, false],
        "PCMU at 16 kHz mix",
    );
    assert_hears(
        &heard[1],
        rates[1],
        [true, false, false],
        "G722 at 16 kHz mix",
    );

    engine.end_conference(&conf).unwrap();
    for p in &parties {
        let report = p.leg.stop().wait(Duration::from_secs(2)).expect("report");
        assert_eq!(report.stats.send_errors, 0);
    }
    engine.shutdown();
}

#[test]
fn only_mixable_rates_are_refused() {
    let engine = engine(38_200, 1);
    assert!(matches!(
        engine.create_conference("odd-rate", 11_025),
        Err(MediaError::Unsupported(_))
    ));
    let wide = engine.create_conference("wide", 16_000).unwrap();
    let far = far_end();
    let mut spec = LegSpec::new("narrow", Codec::Pcmu);
    spec.remote = Some(far.local_addr().unwrap());
    let leg = engine.create_leg(spec).unwrap();
    engine
        .conference_join(&wide, &leg, Role::Participant)
        .expect("an 8 kHz leg joins a 16 kHz room");
    leg.stop().wait(Duration::from_secs(2)).expect("report");
    let err = engine
        .conference_join(&wide, &leg, Role::Participant)
        .unwrap_err();
    assert!(matches!(err, MediaError::LegStopped(_)), "{err}");
    engine.shutdown();
}
