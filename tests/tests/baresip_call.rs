//! A real SIP user agent with two-way audio: baresip dials the engine and
//! talks (aufile source: espeak-ng speech); the engine records it and plays
//! its prompt, which baresip's sndfile module dumps to a WAV we check.

use control_api::proto::call_event::Event;
use std::process::Command;
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::{event_kinds, events_until_ended, free_udp_range, Scratch};

fn baresip_config(scratch: &Scratch, sip_port: u16) -> std::path::PathBuf {
    let dir = scratch.path("baresip");
    let dump = scratch.path("baresip-dump");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::create_dir_all(&dump).expect("dump dir");
    let source = scratch.path("speech-ref.wav");
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nsip_transports udp\n\
         net_interface 127.0.0.1\ndns_server 127.0.0.1:53\n\
         audio_source aufile,{source}\naudio_player aufile,{heard}\naudio_alert aufile,/dev/null\n\
         audio_srate 8000\naudio_channels 1\nanswermode auto\nsnd_path {dump}\n\
         module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule sndfile.so\n\
         module_app account.so\nmodule_app menu.so\n",
        source = source.display(),
        heard = scratch.path("heard.wav").display(),
        dump = dump.display(),
    );
    std::fs::write(dir.join("config"), config).expect("config");
    std::fs::write(
        dir.join("accounts"),
        "<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMU\n",
    )
    .expect("accounts");
    std::fs::write(dir.join("contacts"), "").expect("contacts");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_with_two_way_audio() {
    let scratch = Scratch::new("baresip");
    let speech = Speech::generate(
        &scratch,
        "Hello from baresip. This is a real user agent calling the engine.",
    );
    let engine = Engine::start(&scratch, &[]);
    let (_grpc, mut events) = engine.subscribe().await;
    let config = baresip_config(&scratch, free_udp_range(1));
    let target = format!("/dial sip:agent@{}", engine.sip);

    // baresip hangs up when its source file ends; -t bounds the run.
    let run = tokio::task::spawn_blocking(move || {
        Command::new("baresip")
            .arg("-f")
            .arg(&config)
            .args(["-e", &target, "-t", "12"])
            .output()
            .expect("run baresip (Debian package baresip)")
    });
    let events = events_until_ended(&mut events, Duration::from_secs(40)).await;
    let out = run.await.expect("baresip task");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("Call established"), "{log}");
    assert_eq!(event_kinds(&events), ["started", "answered", "ended"]);
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "remote_bye");

    // What baresip said reached the recording, sample for sample.
    let (left, _, _) = audio::read_stereo(std::path::Path::new(&ended.recording_path));
    let (lag, corr) = audio::best_alignment(&left, &speech.reference, 8000);
    assert!(
        corr > 0.95,
        "baresip's speech correlates {corr:.3} in the recording"
    );
    audio::assert_windows_aligned(&left, &speech.reference, lag, 4000, 0.9);

    // What baresip heard: the engine's 440 Hz prompt.
    let dump = std::fs::read_dir(scratch.path("baresip-dump"))
        .expect("dump dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip's decoded-audio dump");
    let heard = audio::read_mono(&dump);
    let tone = audio::dominant_frequency(&heard, 8000);
    assert!(
        (tone - 440.0).abs() < 15.0,
        "baresip heard {tone:.1} Hz, not the 440 Hz prompt"
    );
}
