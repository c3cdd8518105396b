//! A real SIP user agent with two-way audio: baresip dials the engine and
//! talks (aufile source: espeak-ng speech); the engine records it and plays
//! its prompt, which baresip's sndfile module dumps to a WAV we check. Once
//! in G.711 µ-law (8 kHz), once in wideband G.722 (16 kHz), once in Opus
//! (48 kHz; baresip's opus module). Each run pins baresip to one codec
//! module, so the engine's preference (Opus first) does not change what
//! the G.711 and G.722 runs test.

use control_api::proto::call_event::Event;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::baresip::{Baresip, BaresipCodec, G722, OPUS, PCMU};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::{event_kinds, events_until_ended, run_checked, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_with_two_way_audio() {
    call_with(PCMU).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_in_wideband_g722() {
    call_with(G722).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_in_opus() {
    call_with(OPUS).await;
}

async fn call_with(codec: BaresipCodec) {
    let scratch = Scratch::new(&format!("baresip-{}", codec.name));
    let speech = Speech::generate(
        &scratch,
        "Hello from baresip. This is a real user agent calling the engine.",
    );
    // The source and the reference at the codec's rate.
    let (source, reference) = if codec.rate == 8000 && codec.channels == 1 {
        (scratch.path("speech-ref.wav"), speech.reference)
    } else {
        let wav = scratch.path("speech-wide.wav");
        run_checked(
            Command::new("sox")
                .arg("-D")
                .arg(scratch.path("speech-22k.wav"))
                .args(["-r", &codec.rate.to_string(), "-c", "1", "-b", "16"])
                .arg(&wav),
        );
        let reference = audio::read_mono(&wav);
        // The same speech on both channels when baresip talks stereo.
        let wav = if codec.channels == 2 {
            let stereo = scratch.path("speech-stereo.wav");
            run_checked(
                Command::new("sox")
                    .arg("-D")
                    .arg(&wav)
                    .args(["-c", "2"])
                    .arg(&stereo),
            );
            stereo
        } else {
            wav
        };
        (wav, reference)
    };
    let engine = Engine::start(&scratch, &[]);
    let (_grpc, mut events) = engine.subscribe().await;
    // baresip hangs up when its source file ends; -t bounds the run.
    let dial = format!("sip:agent@{}", engine.sip);
    let baresip = Baresip::start(&scratch, "baresip", &source, codec, Some(dial), 12);
    let events = events_until_ended(&mut events, Duration::from_secs(40)).await;
    let dump_dir = baresip.dump_dir.clone();
    let out = tokio::task::spawn_blocking(move || baresip.finish(Duration::from_secs(20)))
        .await
        .expect("baresip task");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("Call established"), "{log}");
    assert_eq!(event_kinds(&events), ["started", "answered", "ended"]);
    let Some(Event::Answered(answered)) = &events[1].event else {
        unreachable!()
    };
    assert_eq!(answered.codec, codec.name);
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "remote_bye");

    // What baresip said reached the recording, sample for sample.
    let (left, _, rate) = audio::read_stereo(Path::new(&ended.recording_path));
    assert_eq!(rate, codec.rate);
    let (lag, corr) = audio::best_alignment(&left, &reference, codec.rate as usize);
    assert!(
        corr > 0.95,
        "baresip's speech correlates {corr:.3} in the recording"
    );
    let window = codec.rate as usize / 2;
    audio::assert_windows_aligned(&left, &reference, lag, window, 0.9);

    // What baresip heard: the engine's 440 Hz prompt.
    let dump = std::fs::read_dir(&dump_dir)
        .expect("dump dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip's decoded-audio dump");
    let heard = if codec.channels == 2 {
        audio::read_stereo(&dump).0
    } else {
        audio::read_mono(&dump)
    };
    let tone = audio::dominant_frequency(&heard, codec.rate);
    assert!(
        (tone - 440.0).abs() < 15.0,
        "baresip heard {tone:.1} Hz, not the 440 Hz prompt"
    );
}
