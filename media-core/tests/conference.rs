//! Conferences over loopback UDP: three far ends, each saying its own tone,
//! and what each one hears while the roles change. Legs start on different
//! workers, so joining moves them to the conference's. Every loop is
//! bounded in count and time.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use media_core::codec::ulaw_decode;
use media_core::rtp::{RtpPacket, RtpWriter};
use media_core::{Codec, LegHandle, LegSpec, Prompt, Role};

/// The tone each far end says: A, B, C.
const FREQS: [f64; 3] = [450.0, 1_050.0, 1_650.0];

/// Audio of each phase that is judged, after a settling time.
const PHASE: Duration = Duration::from_millis(1_200);
const SETTLE: Duration = Duration::from_millis(300);

struct Party {
    far: UdpSocket,
    leg: LegHandle,
    writer: RtpWriter,
}

fn party(engine: &media_core::MediaEngine, label: &str, ssrc: u32) -> Party {
    let far = far_end();
    far.set_nonblocking(true).unwrap();
    let mut spec = LegSpec::new(label, Codec::Pcmu);
    spec.remote = Some(far.local_addr().unwrap());
    spec.prompt = Prompt::Silence;
    let leg = engine.create_leg(spec).unwrap();
    Party {
        far,
        leg,
        writer: RtpWriter::with_initial(0, 160, ssrc, 1_000, 0),
    }
}

/// Runs one phase: every 20 ms each party sends a frame of its tone; what
/// each receives after `SETTLE` is decoded and returned.
fn run_phase(parties: &mut [Party], frame: &mut usize) -> Vec<Vec<i16>> {
    let mut heard = vec![Vec::new(); parties.len()];
    let start = Instant::now();
    let (mut pkt, mut buf) = ([0u8; 200], [0u8; 1500]);
    let frames = (SETTLE + PHASE).as_millis() as usize / 20;
    for k in 0..frames {
        for (i, p) in parties.iter_mut().enumerate() {
            let n = p
                .writer
                .write(&pcmu_tone_frame(FREQS[i], *frame), &mut pkt)
                .unwrap();
            p.far.send_to(&pkt[..n], p.leg.local_addr()).unwrap();
        }
        *frame += 1;
        let due = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        for (i, p) in parties.iter().enumerate() {
            while let Ok((len, _)) = p.far.recv_from(&mut buf) {
                let Ok(rtp) = RtpPacket::parse(&buf[..len]) else {
                    continue;
                };
                if start.elapsed() > SETTLE {
                    heard[i].extend(rtp.payload.iter().map(|&b| ulaw_decode(b)));
                }
            }
        }
    }
    heard
}

/// Asserts which of the three tones `x` carries: `want[i]` says whether
/// tone `i` must be there (clearly) or absent (at least 30 dB below).
fn assert_hears(x: &[i16], want: [bool; 3], what: &str) {
    assert!(x.len() > 4_000, "{what}: only {} samples", x.len());
    let power: Vec<f64> = FREQS.iter().map(|&f| goertzel(x, 8_000.0, f)).collect();
    let loudest = power.iter().cloned().fold(0.0, f64::max);
    for i in 0..3 {
        let name = ["A", "B", "C"][i];
        if want[i] {
            // A tone of amplitude 10 000 has power ~ (10 000/2)^2 * n / n.
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
fn minus_one_whisper_mute_and_leave() {
    let engine = engine(35_400, 2);
    let mut parties = vec![
        party(&engine, "conf-a", 0xa),
        party(&engine, "conf-b", 0xb),
        party(&engine, "conf-c", 0xc),
    ];
    let conf = engine.create_conference("conf-1", 8_000).unwrap();
    for p in &parties {
        engine
            .conference_join(&conf, &p.leg, Role::Participant)
            .unwrap();
    }
    let mut frame = 0;

    let heard = run_phase(&mut parties, &mut frame);
    assert_hears(&heard[0], [false, true, true], "A among participants");
    assert_hears(&heard[1], [true, false, true], "B among participants");
    assert_hears(&heard[2], [true, true, false], "C among participants");

    // C coaches A: only A hears C; C still hears both.
    let a_id = parties[0].leg.id();
    engine
        .conference_join(&conf, &parties[2].leg, Role::Whisper { to: a_id })
        .unwrap();
    let heard = run_phase(&mut parties, &mut frame);
    assert_hears(&heard[0], [false, true, true], "A coached by C");
    assert_hears(&heard[1], [true, false, false], "B while C whispers");
    assert_hears(&heard[2], [true, true, false], "C whispering");

    // C barges in, B is muted.
    engine
        .conference_join(&conf, &parties[2].leg, Role::Barge)
        .unwrap();
    parties[1].leg.set_muted(true);
    let heard = run_phase(&mut parties, &mut frame);
    assert_hears(&heard[0], [false, false, true], "A with B muted");
    assert_hears(&heard[1], [true, false, true], "B muted still hears");
    assert_hears(&heard[2], [true, false, false], "C with B muted");

    // A leaves: back to its (silent) prompt; B and C go on without A.
    parties[1].leg.set_muted(false);
    engine.conference_leave(&parties[0].leg).unwrap();
    let heard = run_phase(&mut parties, &mut frame);
    assert_hears(&heard[0], [false, false, false], "A after leaving");
    assert_hears(&heard[1], [false, false, true], "B without A");
    assert_hears(&heard[2], [false, true, false], "C without A");

    // The end: everyone back to the prompt.
    engine.end_conference(&conf).unwrap();
    let heard = run_phase(&mut parties, &mut frame);
    for (i, h) in heard.iter().enumerate() {
        assert_hears(
            h,
            [false, false, false],
            &format!("party {i} after the end"),
        );
    }

    for p in &parties {
        let report = p.leg.stop().wait(Duration::from_secs(2)).expect("report");
        assert_eq!(report.stats.send_errors, 0);
        assert!(report.stats.packets_received >= 200, "{:?}", report.stats);
    }
    assert_eq!(engine.active_legs(), 0);
    engine.shutdown();
}

// Refusals and mixing across rates: conference_mixed_rate.rs.
