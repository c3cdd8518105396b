//! A bridged call between two real peers: SIPp calls the engine, the engine
//! (routing.bridge_to) calls a second SIPp acting as the agent, and bridges
//! the two. Each side streams its own espeak-ng speech; the recording must
//! hold the caller on the left and the agent on the right, sample for sample.

use control_api::proto::call_event::Event;
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, free_udp_range, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_and_agent_are_bridged_and_recorded_in_stereo() {
    let scratch = Scratch::new("bridge");
    let caller = Speech::generate(
        &scratch,
        "Hello, I would like to check the status of my order.",
    );
    let agent = Speech::generate_as(&scratch, "agent", "Sure, I can help you with that today.");
    let agent_port = free_udp_range(1);
    let agent_sipp = Sipp::serve("uas_pcmu_speech.xml", agent_port, &scratch.0);
    let engine = Engine::bridging_to(&scratch, agent_port);
    let (_grpc, mut events) = engine.subscribe().await;

    let talk_ms = caller.reference.len().max(agent.reference.len()) as u64 / 8;
    let caller_sipp = Sipp::call(
        "uac_pcmu_speech.xml",
        engine.sip,
        &scratch.0,
        talk_ms + 1500,
    );
    let events = events_until_ended(&mut events, Duration::from_secs(60)).await;
    tokio::task::spawn_blocking(move || {
        caller_sipp.assert_success(Duration::from_secs(30));
        agent_sipp.assert_success(Duration::from_secs(30));
    })
    .await
    .expect("sipp tasks");

    let kinds = event_kinds(&events);
    assert_eq!(kinds, ["started", "answered", "ended"], "{events:?}");
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "remote_bye");
    let rtp = ended.rtp.expect("counters");
    assert!(rtp.packets_received + 1 >= caller.packets(), "{rtp:?}");
    assert!(
        rtp.packets_sent + 1 >= agent.packets(),
        "agent audio reached the caller: {rtp:?}"
    );

    let (left, right, rate) = audio::read_stereo(std::path::Path::new(&ended.recording_path));
    assert_eq!(rate, 8000);
    let (lag, corr) = audio::best_alignment(&left, &caller.reference, 16_000);
    assert!(
        corr > 0.95,
        "caller channel correlates {corr:.3} with the caller's speech"
    );
    audio::assert_windows_aligned(&left, &caller.reference, lag, 4000, 0.9);
    let (lag, corr) = audio::best_alignment(&right, &agent.reference, 16_000);
    assert!(
        corr > 0.95,
        "agent channel correlates {corr:.3} with the agent's speech"
    );
    audio::assert_windows_aligned(&right, &agent.reference, lag, 4000, 0.9);
}
