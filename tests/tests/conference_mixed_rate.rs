//! A conference across sample rates with real peers: a SIPp caller in PCMU
//! (8 kHz), a baresip caller in G.722 (16 kHz) and one in Opus (48 kHz),
//! all in one room over gRPC. Each says one espeak-ng sentence at its own
//! moment of the call (the sentences do not overlap). The engine's
//! recording of each call holds, on the right, what that party heard: it
//! must contain the other two sentences (found by correlation against the
//! source) and not the party's own.

use control_api::proto::call_event::Event;
use control_api::proto::{CallEvent, ConferenceRole, HangupRequest, JoinConferenceRequest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use switchboard_e2e::audio;
use switchboard_e2e::baresip::{self, Baresip};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{run_checked, wait_event, Scratch};

const TEXTS: [&str; 3] = [
    "My parcel never arrived, the order number is four two seven.",
    "Let me check the warehouse system for you right away.",
    "Supervisor here, offer the customer free express shipping.",
];
/// When each party speaks, in seconds from the start of its own call.
const LEADS: [f64; 3] = [6.0, 12.0, 18.0];
/// How long the room runs once every call is answered.
const TALK: Duration = Duration::from_secs(23);

/// espeak-ng's 22.05 kHz speech of `text`, and the same at 8 kHz (the
/// reference every recording is compared with, once brought to 8 kHz).
fn speech(scratch: &Scratch, name: &str, text: &str) -> (PathBuf, Vec<i16>) {
    let wav = scratch.path(&format!("{name}-22k.wav"));
    run_checked(
        Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&wav)
            .arg(text),
    );
    let reference = scratch.path(&format!("{name}-8k.wav"));
    run_checked(
        Command::new("sox")
            .arg("-D")
            .arg(&wav)
            .args(["-r", "8000", "-c", "1", "-b", "16"])
            .arg(&reference),
    );
    (wav, audio::read_mono(&reference))
}

/// The right channel (what the party heard) of a recording, at 8 kHz.
fn heard_at_8k(scratch: &Scratch, recording: &Path, name: &str) -> Vec<i16> {
    let out = scratch.path(&format!("{name}-heard-8k.wav"));
    run_checked(
        Command::new("sox")
            .arg("-D")
            .arg(recording)
            .args(["-r", "8000", "-b", "16"])
            .arg(&out)
            .args(["remix", "2"]),
    );
    audio::read_mono(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcmu_g722_and_opus_callers_hear_each_other_in_one_room() {
    let scratch = Scratch::new("conference-mixed-rate");
    let engine = Engine::start(&scratch, &[]);
    let (mut grpc, mut events) = engine.subscribe().await;
    let names = ["pcmu", "g722", "opus"];
    let mut references = Vec::new();
    let mut wavs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (wav, reference) = speech(&scratch, name, TEXTS[i]);
        wavs.push(wav);
        references.push(reference);
    }

    // SIPp streams speech.ulaw in a loop: silence, the sentence, silence
    // past the end of the test.
    let sipp_dir = Scratch::new("conference-mixed-rate-sipp");
    run_checked(
        Command::new("sox")
            .arg("-D")
            .arg(&wavs[0])
            .args(["-r", "8000", "-c", "1", "-e", "mu-law", "-t", "raw"])
            .arg(sipp_dir.path("speech.ulaw"))
            .args(["pad", &LEADS[0].to_string(), "40"]),
    );
    let sipp = Sipp::call("uac_pcmu_await_bye.xml", engine.sip, &sipp_dir.0, 0);
    let mut answered = Vec::new();
    let first = wait_event(&mut events, Duration::from_secs(30), |e| {
        matches!(e.event, Some(Event::Answered(_)))
    })
    .await;
    answered.push(first);

    let mut phones = Vec::new();
    for (i, codec) in [(1, baresip::G722), (2, baresip::OPUS)] {
        let source = scratch.path(&format!("{}-source.wav", names[i]));
        baresip::padded_source(
            &wavs[i],
            &source,
            codec.rate,
            codec.channels,
            LEADS[i],
            40.0,
        );
        let uri = format!("sip:{}@{}", names[i], engine.sip);
        phones.push(Baresip::start(
            &scratch,
            names[i],
            &source,
            codec,
            Some(uri),
            60,
        ));
        let a = wait_event(&mut events, Duration::from_secs(30), |e| {
            matches!(e.event, Some(Event::Answered(_)))
        })
        .await;
        let Some(Event::Answered(info)) = &a.event else {
            unreachable!()
        };
        assert_eq!(info.codec, codec.name, "baresip speaks its pinned codec");
        answered.push(a);
    }
    let ids: Vec<String> = answered.iter().map(|e| e.call_id.clone()).collect();
    for id in &ids {
        grpc.join_conference(JoinConferenceRequest {
            call_id: id.clone(),
            conference_id: "mixed-room".into(),
            role: ConferenceRole::Participant as i32,
            whisper_to: String::new(),
        })
        .await
        .expect("joins across rates");
    }
    let joined = Instant::now();
    tokio::time::sleep(TALK.saturating_sub(joined.elapsed())).await;
    for id in &ids {
        grpc.hangup(HangupRequest {
            call_id: id.clone(),
        })
        .await
        .expect("hangup");
    }
    let mut recordings: HashMap<String, String> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while recordings.len() < 3 {
        assert!(Instant::now() < deadline, "calls did not end");
        let e: CallEvent = wait_event(&mut events, Duration::from_secs(30), |e| {
            matches!(e.event, Some(Event::Ended(_)))
        })
        .await;
        if let Some(Event::Ended(ended)) = e.event {
            recordings.insert(e.call_id, ended.recording_path);
        }
    }
    for phone in phones {
        let out = tokio::task::spawn_blocking(move || phone.finish(Duration::from_secs(5)))
            .await
            .expect("baresip task");
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(log.contains("Call established"), "{log}");
    }
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(30)))
        .await
        .expect("sipp task");

    let rates = [8_000, 16_000, 48_000];
    for (i, id) in ids.iter().enumerate() {
        let path = Path::new(&recordings[id]);
        let (_, _, rate) = audio::read_stereo(path);
        assert_eq!(rate, rates[i], "{} records at its own rate", names[i]);
        let heard = heard_at_8k(&scratch, path, names[i]);
        for (j, reference) in references.iter().enumerate() {
            let (_, corr) = audio::locate(&heard, reference);
            println!("{} hears {}: correlation {corr:.3}", names[i], names[j]);
            if i == j {
                assert!(corr < 0.3, "{} hears itself ({corr:.3})", names[i]);
            } else {
                assert!(
                    corr > 0.8,
                    "{} does not hear {} ({corr:.3})",
                    names[i],
                    names[j]
                );
            }
        }
    }
}
