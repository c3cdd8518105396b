//! Kamailio as a dispatcher in front of two engines (the usual way to run
//! several media nodes behind one SIP address): Kamailio probes both with
//! OPTIONS, sends new calls to them in turn, and Record-Routes, so each
//! SIPp caller's ACK and BYE reach its engine through Kamailio. Each engine
//! must take exactly one call, with the caller's audio in its recording.

use control_api::proto::call_event::Event;
use control_api::proto::CallEvent;
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::kamailio::Kamailio;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, free_udp_range, Scratch};

fn ended(events: &[CallEvent]) -> control_api::proto::CallEnded {
    match events.last().and_then(|e| e.event.clone()) {
        Some(Event::Ended(ended)) => ended,
        other => panic!("the last event is not `ended`: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_dispatches_calls_round_robin_to_two_engines() {
    let scratch = Scratch::new("kamailio");
    let speech = Speech::generate(&scratch, "Good morning, I am calling about my delivery.");
    let engines = [Engine::start(&scratch, &[]), Engine::start(&scratch, &[])];
    let kamailio = Kamailio::dispatcher(
        &scratch,
        free_udp_range(1),
        &[engines[0].sip, engines[1].sip],
    );
    let mut streams = Vec::new();
    for engine in &engines {
        streams.push(engine.subscribe().await.1);
    }

    let talk_ms = speech.reference.len() as u64 / 8 + 500;
    for _ in 0..2 {
        let caller = Sipp::call(
            "uac_pcmu_speech_routed.xml",
            kamailio.addr,
            &scratch.0,
            talk_ms,
        );
        tokio::task::spawn_blocking(move || caller.assert_success(Duration::from_secs(60)))
            .await
            .expect("caller");
    }

    for (i, events) in streams.iter_mut().enumerate() {
        let seen = events_until_ended(events, Duration::from_secs(30)).await;
        assert_eq!(
            event_kinds(&seen),
            ["started", "answered", "ended"],
            "engine {i}"
        );
        let ended = ended(&seen);
        assert_eq!(
            ended.reason, "remote_bye",
            "engine {i}: the BYE came through Kamailio"
        );
        let (left, _right, _) = audio::read_stereo(std::path::Path::new(&ended.recording_path));
        let (lag, corr) = audio::best_alignment(&left, &speech.reference, 16_000);
        assert!(corr > 0.95, "engine {i}: caller audio correlates {corr:.3}");
        audio::assert_windows_aligned(&left, &speech.reference, lag, 4000, 0.9);
    }
    let log = kamailio.log_lines().join("\n");
    assert_eq!(log.matches("dispatching INVITE").count(), 2, "{log}");
    assert!(log.contains("in-dialog BYE routed"), "{log}");
}
