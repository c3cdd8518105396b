//! Transfers through the B2BUA with real SIPp peers.
//!
//! Blind (RFC 3515): an agent REFERs its caller to a second agent; the
//! engine answers 202, NOTIFYs the progress, calls the second agent,
//! bridges the caller to it and releases the first agent. The same
//! machinery serves the `Transfer` RPC for a call the engine answered
//! itself.
//!
//! Attended (RFC 3891): the agent first calls a colleague through the
//! engine (the consultation call), then REFERs its caller with Replaces
//! naming that dialog (or an orchestrator asks the same by RPC); the
//! engine joins the caller to the colleague and releases the agent from
//! both calls. A Replaces naming a dialog the engine does not hold is
//! passed to the target in the INVITE.
//!
//! In every case the caller's recording must hold the new party's speech
//! on its right channel.

use control_api::proto::call_event::Event;
use control_api::proto::{CallEvent, TransferRequest};
use std::collections::HashMap;
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

/// Caller → agent 1, which REFERs it to agent 2 (`target_scenario`) with
/// `refer_headers` after the Refer-To URI. Returns the caller's events
/// once every peer has finished; agent 2's speech must be on the right
/// channel of the caller's recording.
async fn refer_to_second_agent(
    name: &str,
    target_scenario: &str,
    refer_headers: &str,
) -> Vec<CallEvent> {
    let scratch = Scratch::new(name);
    let _caller_speech = Speech::generate(&scratch, "Hello, I need to change my address please.");
    let agent = Speech::generate_as(
        &scratch,
        "agent",
        "Thanks for holding, this is the address team speaking.",
    );
    let (agent1_port, agent2_port) = (free_udp_range(1), free_udp_range(1));
    let agent2 = Sipp::serve(target_scenario, agent2_port, &scratch.0);
    let agent1 = Sipp::serve_with(
        "uas_refer.xml",
        agent1_port,
        &scratch.0,
        &[
            "-key",
            "target_port",
            &agent2_port.to_string(),
            "-key",
            "refer_user",
            "agent2",
            "-key",
            "refer_headers",
            refer_headers,
        ],
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
    assert_eq!((t.status, t.by.as_str()), (200, "callee"));
    // The target URI, without any embedded headers.
    assert_eq!(t.target, format!("sip:agent2@127.0.0.1:{agent2_port}"));
    let ended = ended(&seen);
    assert_eq!(ended.reason, "remote_bye");
    assert_agent_heard(&ended.recording_path, &agent);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refers_the_caller_to_another_agent() {
    let seen = refer_to_second_agent("refer", "uas_pcmu_speech.xml", "").await;
    assert_eq!(transferred(&seen).consultation_call_id, "");
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
            ..Default::default()
        })
        .await
        .expect_err("a host name is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let missing = grpc
        .transfer(TransferRequest {
            call_id: "no-such-call".into(),
            target: format!("sip:agent@127.0.0.1:{agent_port}"),
            ..Default::default()
        })
        .await
        .expect_err("an unknown call is refused");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let target = format!("sip:agent@127.0.0.1:{agent_port}");
    grpc.transfer(TransferRequest {
        call_id: answered.call_id.clone(),
        target: target.clone(),
        ..Default::default()
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

/// The tags of a SIPp UAC's dialog, from its `-trace_msg` file: its own
/// From tag (in what it sent) and the engine's To tag (in the 200 it got).
/// SIPp may log the 200 a moment after the engine reports the answer, so
/// the file is read again until both are there (at most 10 s).
fn dialog_tags(trace: &Path) -> (String, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(trace).unwrap_or_default();
        match tags_in_trace(&text) {
            (Some(from), Some(to)) => return (from, to),
            found if std::time::Instant::now() > deadline => {
                panic!("no dialog tags in the SIPp trace ({found:?}):\n{text}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The From tag of the first message sent and the To tag of the first 200
/// received, as far as the trace has them.
fn tags_in_trace(text: &str) -> (Option<String>, Option<String>) {
    let tag_in = |line: &str| {
        line.split(";tag=").nth(1).map(|t| {
            t.split([';', '>', ' '])
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
    };
    let mut from_tag = None;
    let mut to_tag = None;
    for message in text.split("-----------------------------------------------") {
        let sent = message.contains("message sent");
        for line in message.lines() {
            let lower = line.to_ascii_lowercase();
            if sent && lower.starts_with("from:") {
                from_tag = from_tag.or_else(|| tag_in(line));
            }
            if !sent && message.contains("SIP/2.0 200") && lower.starts_with("to:") {
                to_tag = to_tag.or_else(|| tag_in(line));
            }
        }
    }
    (from_tag, to_tag)
}

/// `call-id;to-tag=..;from-tag=..` escaped for a URI header (RFC 3261 §19.1.1).
fn escaped_replaces(call_id: &str, to_tag: &str, from_tag: &str) -> String {
    format!("{call_id};to-tag={to_tag};from-tag={from_tag}")
        .replace('%', "%25")
        .replace('@', "%40")
        .replace(';', "%3B")
        .replace('=', "%3D")
}

/// Events grouped by call, read until `call_id` ends (bounded in time).
async fn events_by_call_until(
    events: &mut tonic::Streaming<CallEvent>,
    call_id: &str,
    limit: Duration,
) -> HashMap<String, Vec<CallEvent>> {
    let mut by_call: HashMap<String, Vec<CallEvent>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, events.message())
            .await
            .unwrap_or_else(|_| panic!("call {call_id} did not end within {limit:?}: {by_call:?}"))
            .expect("event stream error")
            .expect("event stream ended");
        let done = next.call_id == call_id && matches!(next.event, Some(Event::Ended(_)));
        by_call.entry(next.call_id.clone()).or_default().push(next);
        if done {
            return by_call;
        }
    }
}

/// How the agent hands its caller over to the colleague it consulted.
#[derive(Clone, Copy, PartialEq)]
enum Handover {
    /// Its REFER with Replaces naming the consultation dialog.
    Refer,
    /// The Transfer RPC with the consultation call's id.
    Rpc,
}

/// Caller → agent (DID 100); agent → colleague (DID 200, the consultation,
/// placed first); then the handover. The caller ends up talking to the
/// colleague, whose words (delayed past the handover) must be on the right
/// channel of the caller's recording; the agent gets BYE on both calls.
async fn attended_transfer(handover: Handover) {
    let scratch = Scratch::new(match handover {
        Handover::Refer => "attended-refer",
        Handover::Rpc => "attended-rpc",
    });
    let _speech = Speech::generate(&scratch, "Hello, I have a question about my invoice.");
    let colleague = Speech::generate_as(
        &scratch,
        "agent",
        "Hi, this is billing, I can help with that.",
    );
    // The colleague answers the consultation first and the handover takes
    // a second or two more: its words start 5 s in, after the join.
    colleague.delay(5_000);
    let (agent_port, colleague_port) = (free_udp_range(1), free_udp_range(1));
    let config = scratch.path("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[[trunks]]\nname = \"agent\"\naddress = \"127.0.0.1:{agent_port}\"\noptions_interval_secs = 0\n\
             [[trunks]]\nname = \"billing\"\naddress = \"127.0.0.1:{colleague_port}\"\noptions_interval_secs = 0\n\
             [[routes]]\ndid = \"100\"\ntrunks = [\"agent\"]\n\
             [[routes]]\ndid = \"200\"\ntrunks = [\"billing\"]\n"
        ),
    )
    .expect("write config");
    let colleague_sipp = Sipp::serve("uas_pcmu_speech.xml", colleague_port, &scratch.0);
    let engine = Engine::start(
        &scratch,
        &[("SWITCHBOARD_CONFIG", config.to_string_lossy().into_owned())],
    );
    let (mut grpc, mut events) = engine.subscribe().await;

    // The consultation: the agent calls its colleague through the engine.
    let trace = scratch.path("consultation-messages.log");
    let trace_arg = trace.to_string_lossy().into_owned();
    let consultation = Sipp::call_with(
        "uac_pcmu_await_bye.xml",
        engine.sip,
        &scratch.0,
        0,
        &["-s", "200", "-trace_msg", "-message_file", &trace_arg],
    );
    let consultation_id = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e.event, Some(Event::Answered(_)))
    })
    .await
    .call_id;
    let (agent_tag, engine_tag) = dialog_tags(&trace);

    // The agent's own call, from a caller, which it will hand over.
    let agent_sipp = match handover {
        Handover::Refer => {
            let replaces = escaped_replaces(&consultation_id, &engine_tag, &agent_tag);
            Sipp::serve_with(
                "uas_refer.xml",
                agent_port,
                &scratch.0,
                &[
                    "-key",
                    "target_port",
                    &engine.sip.port().to_string(),
                    "-key",
                    "refer_user",
                    "200",
                    "-key",
                    "refer_headers",
                    &format!("?Replaces={replaces}"),
                ],
            )
        }
        Handover::Rpc => Sipp::serve("uas_pcmu_speech.xml", agent_port, &scratch.0),
    };
    let talk_ms = 5_000 + colleague.reference.len() as u64 / 8 + 2_500;
    let caller = Sipp::call_with(
        "uac_pcmu_speech.xml",
        engine.sip,
        &scratch.0,
        talk_ms,
        &["-s", "100"],
    );
    let call_id = wait_event(&mut events, Duration::from_secs(20), |e| {
        matches!(e.event, Some(Event::Answered(_)))
    })
    .await
    .call_id;
    if handover == Handover::Rpc {
        let both = grpc
            .transfer(TransferRequest {
                call_id: call_id.clone(),
                target: "sip:agent@127.0.0.1:5060".into(),
                consultation_call_id: consultation_id.clone(),
            })
            .await
            .expect_err("a target and a consultation call are refused");
        assert_eq!(both.code(), tonic::Code::InvalidArgument);
        let itself = grpc
            .transfer(TransferRequest {
                call_id: call_id.clone(),
                consultation_call_id: call_id.clone(),
                ..Default::default()
            })
            .await
            .expect_err("a call is not its own consultation");
        assert_eq!(itself.code(), tonic::Code::InvalidArgument);
        grpc.transfer(TransferRequest {
            call_id: call_id.clone(),
            consultation_call_id: consultation_id.clone(),
            ..Default::default()
        })
        .await
        .expect("attended transfer");
    }

    let by_call = events_by_call_until(&mut events, &call_id, Duration::from_secs(60)).await;
    finish_all(vec![caller, agent_sipp, consultation, colleague_sipp]).await;
    let consult_events = &by_call[&consultation_id];
    assert_eq!(event_kinds(consult_events).last(), Some(&"ended"));
    assert_eq!(ended(consult_events).reason, "transferred");
    let call_events = &by_call[&call_id];
    assert_eq!(
        event_kinds(call_events),
        ["transferred", "ended"],
        "events of the caller's call after its answer"
    );
    let t = transferred(call_events);
    assert_eq!(t.status, 200);
    assert_eq!(
        t.by,
        match handover {
            Handover::Refer => "callee",
            Handover::Rpc => "control",
        }
    );
    assert_eq!(t.consultation_call_id, consultation_id);
    assert_eq!(t.target, format!("sip:200@127.0.0.1:{colleague_port}"));
    let ended = ended(call_events);
    assert_eq!(ended.reason, "remote_bye");
    assert_agent_heard(&ended.recording_path, &colleague);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refers_its_caller_to_the_colleague_it_consulted() {
    attended_transfer(Handover::Refer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transfer_rpc_joins_a_caller_to_a_consultation_call() {
    attended_transfer(Handover::Rpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_for_a_dialog_elsewhere_goes_to_the_target_in_the_invite() {
    // uas_replaced.xml checks the INVITE's Replaces and Require.
    let replaces = escaped_replaces("foreign-dialog@elsewhere", "t1", "f1");
    let refer_headers = format!("?Replaces={replaces}");
    let seen = refer_to_second_agent("refer-replaces", "uas_replaced.xml", &refer_headers).await;
    assert_eq!(transferred(&seen).consultation_call_id, "");
}
