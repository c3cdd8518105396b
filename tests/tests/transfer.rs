//! Blind transfer through the B2BUA with real SIPp peers (RFC 3515): an
//! agent REFERs its caller to a second agent; the engine answers 202,
//! NOTIFYs the progress, calls the second agent, bridges the caller to it
//! and releases the first agent. The same machinery serves the `Transfer`
//! RPC for a call the engine answered itself. The caller's recording must
//! hold the second agent's speech on its right channel.

use control_api::proto::call_event::Event;
use control_api::proto::{CallEvent, TransferRequest};
use std::path::Path;
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, free_udp_range, wait_event, Scratch};

fn transferred(events: &[CallEvent]) -> control_api::proto::Transferred {
    events
        .iter()
        .find_map(|e| match &e.event {
            Some(Event::Transferred(t)) => Some(t.clone()),
            _ => None,
        })
        .expect("a transferred event")
}

fn ended(events: &[CallEvent]) -> control_api::proto::CallEnded {
    match events.last().and_then(|e| e.event.clone()) {
        Some(Event::Ended(ended)) => ended,
        other => panic!("the last event is not `ended`: {other:?}"),
    }
}

/// The second agent's speech is on the right channel, whole and in order.
fn assert_agent_heard(recording: &str, agent: &Speech) {
    let (_left, right, rate) = audio::read_stereo(Path::new(recording));
    assert_eq!(rate, 8000);
    let (lag, corr) = audio::locate(&right, &agent.reference);
    assert!(
        corr > 0.9,
        "the right channel correlates {corr:.3} with the second agent's speech"
    );
    audio::assert_windows_aligned(&right, &agent.reference, lag, 4000, 0.9);
}

async fn finish_all(peers: Vec<Sipp>) {
    tokio::task::spawn_blocking(move || {
        for peer in peers {
            peer.assert_success(Duration::from_secs(60));
        }
    })
    .await
    .expect("sipp tasks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refers_the_caller_to_another_agent() {
    let scratch = Scratch::new("refer");
    let _caller_speech = Speech::generate(&scratch, "Hello, I need to change my address please.");
    let agent = Speech::generate_as(
        &scratch,
        "agent",
        "Thanks for holding, this is the address team speaking.",
    );
    let (agent1_port, agent2_port) = (free_udp_range(1), free_udp_range(1));
    let agent2 = Sipp::serve("uas_pcmu_speech.xml", agent2_port, &scratch.0);
    let agent1 = Sipp::serve_with(
        "uas_refer.xml",
        agent1_port,
        &scratch.0,
        &["-key", "target_port", &agent2_port.to_string()],
    );
    let engine = Engine::bridging_to(&scratch, agent1_port);
    let (_grpc, mut events) = engine.subscribe().await;
    // Talk long enough for the REFER (after 1 s) and all of agent 2's speech.
    let talk_ms = 1_000 + 1_500 + agent.reference.len() as u64 / 8 + 1_500;
    let caller = Sipp::call("uac_pcmu_speech.xml", engine.sip, &scratch.0, talk_ms);

    let seen = events_until_ended(&mut events, Duration::from_secs(60)).await;
    finish_all(vec![caller, agent1, agent2]).await;
    assert_eq!(
        event_kinds(&seen),
        ["started", "answered", "transferred", "ended"]
    );
    let t = transferred(&seen);
    assert_eq!(t.status, 200);
    assert_eq!(t.by, "callee");
    assert_eq!(t.target, format!("sip:agent2@127.0.0.1:{agent2_port}"));
    let ended = ended(&seen);
    assert_eq!(ended.reason, "remote_bye");
    assert_agent_heard(&ended.recording_path, &agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transfer_rpc_hands_an_answered_call_to_an_agent() {
    let scratch = Scratch::new("transfer-rpc");
    let _caller_speech = Speech::generate(&scratch, "I would like to speak to a person.");
    let agent = Speech::generate_as(&scratch, "agent", "Hello, you are through to an agent now.");
    let agent_port = free_udp_range(1);
    let agent_sipp = Sipp::serve("uas_pcmu_speech.xml", agent_port, &scratch.0);
    let engine = Engine::start(&scratch, &[]);
    let (mut grpc, mut events) = engine.subscribe().await;
    let talk_ms = 1_500 + agent.reference.len() as u64 / 8 + 1_500;
    let caller = Sipp::call("uac_pcmu_speech.xml", engine.sip, &scratch.0, talk_ms);

    let answered = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e.event, Some(Event::Answered(_)))
    })
    .await;
    let refused = grpc
        .transfer(TransferRequest {
            call_id: answered.call_id.clone(),
            target: "sip:agent@pbx.example.com".into(),
        })
        .await
        .expect_err("a host name is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let missing = grpc
        .transfer(TransferRequest {
            call_id: "no-such-call".into(),
            target: format!("sip:agent@127.0.0.1:{agent_port}"),
        })
        .await
        .expect_err("an unknown call is refused");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let target = format!("sip:agent@127.0.0.1:{agent_port}");
    grpc.transfer(TransferRequest {
        call_id: answered.call_id.clone(),
        target: target.clone(),
    })
    .await
    .expect("transfer");

    let seen = events_until_ended(&mut events, Duration::from_secs(60)).await;
    finish_all(vec![caller, agent_sipp]).await;
    assert_eq!(event_kinds(&seen), ["transferred", "ended"]);
    let t = transferred(&seen);
    assert_eq!(
        (t.status, t.by.as_str(), t.target.as_str()),
        (200, "control", target.as_str())
    );
    let ended = ended(&seen);
    assert_eq!(ended.reason, "remote_bye");
    assert_agent_heard(&ended.recording_path, &agent);
}
