//! The engine ends calls itself: on a gRPC Hangup, and on SIGTERM (BYE to
//! every caller, recordings finalized, clean exit).

use control_api::proto::call_event::Event;
use control_api::proto::{HangupRequest, ListCallsRequest};
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{events_until_ended, wait_event, Scratch};

const TEXT: &str = "Please stay on the line.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_hangup_sends_bye_and_reports_the_call() {
    let scratch = Scratch::new("hangup");
    let _speech = Speech::generate(&scratch, TEXT);
    let engine = Engine::start(&scratch, &[]);
    let (mut grpc, mut events) = engine.subscribe().await;

    let sipp = Sipp::call("uac_pcmu_await_bye.xml", engine.sip, &scratch.0, 0);
    let answered = wait_event(&mut events, Duration::from_secs(30), |e| {
        matches!(e.event, Some(Event::Answered(_)))
    })
    .await;
    let call_id = answered.call_id.clone();

    let calls = grpc
        .list_calls(ListCallsRequest {})
        .await
        .expect("list")
        .into_inner()
        .calls;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call_id, call_id);
    assert_eq!(calls[0].state, "answered");

    // Let some audio flow both ways, then hang up from the control plane.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    grpc.hangup(HangupRequest {
        call_id: call_id.clone(),
    })
    .await
    .expect("hangup");
    let rest = events_until_ended(&mut events, Duration::from_secs(20)).await;
    let Some(Event::Ended(ended)) = &rest.last().and_then(|e| e.event.clone()) else {
        unreachable!()
    };
    assert_eq!(
        rest.last().map(|e| e.call_id.as_str()),
        Some(call_id.as_str())
    );
    assert_eq!(ended.reason, "local_hangup");
    let rtp = ended.rtp.expect("counters");
    assert!(rtp.packets_received > 0 && rtp.packets_sent > 0, "{rtp:?}");

    // SIPp's scenario only succeeds if it received our BYE and answered it.
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(20)))
        .await
        .expect("sipp task");

    // The call is gone, and hanging it up again is a clear NotFound.
    let calls = grpc
        .list_calls(ListCallsRequest {})
        .await
        .expect("list")
        .into_inner()
        .calls;
    assert!(calls.is_empty(), "{calls:?}");
    let err = grpc
        .hangup(HangupRequest { call_id })
        .await
        .expect_err("second hangup");
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_calls_with_bye_and_finalizes_recordings() {
    let scratch = Scratch::new("sigterm");
    let _speech = Speech::generate(&scratch, TEXT);
    let mut engine = Engine::start(&scratch, &[]);
    let (_grpc, mut events) = engine.subscribe().await;

    let sipp = Sipp::call("uac_pcmu_await_bye.xml", engine.sip, &scratch.0, 0);
    wait_event(&mut events, Duration::from_secs(30), |e| {
        matches!(e.event, Some(Event::Answered(_)))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let status = tokio::task::block_in_place(|| engine.terminate(Duration::from_secs(20)));
    assert!(status.success(), "engine exited with {status:?}");
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(20)))
        .await
        .expect("sipp task");

    // The ended event went out before exit, naming a finished recording.
    let rest = events_until_ended(&mut events, Duration::from_secs(5)).await;
    let Some(Event::Ended(ended)) = rest.last().and_then(|e| e.event.clone()) else {
        unreachable!()
    };
    assert_eq!(ended.reason, "shutdown");
    let (left, right, rate) = audio::read_stereo(std::path::Path::new(&ended.recording_path));
    assert_eq!(rate, 8000);
    assert!(left.len() >= 8000, "recording holds {} samples", left.len());
    assert!(
        left.iter().any(|&s| s.unsigned_abs() > 1000),
        "caller audio recorded"
    );
    assert!(
        right.iter().any(|&s| s.unsigned_abs() > 1000),
        "prompt recorded"
    );
}

/// The 200 OK is retransmitted on RFC 3261 timers until an ACK; a caller that
/// never ACKs is hung up at 64·T1 (T1 shortened to 50 ms to keep the test short).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_200_is_retransmitted_then_the_call_is_ended() {
    let scratch = Scratch::new("noack");
    let engine = Engine::start(&scratch, &[("SWITCHBOARD_SIP__TIMER_T1_MS", "50".into())]);
    let (_grpc, mut events) = engine.subscribe().await;

    let messages = scratch.path("sipp-messages.log");
    let messages_arg = messages.to_string_lossy().into_owned();
    let sipp = Sipp::call_with(
        "uac_pcmu_no_ack.xml",
        engine.sip,
        &scratch.0,
        0,
        &["-trace_msg", "-message_file", &messages_arg],
    );
    let all = events_until_ended(&mut events, Duration::from_secs(30)).await;
    let Some(Event::Ended(ended)) = all.last().and_then(|e| e.event.clone()) else {
        unreachable!()
    };
    assert_eq!(ended.reason, "ack_timeout");
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(20)))
        .await
        .expect("sipp task");

    // What SIPp saw: the same 200 OK several times (T1, 2·T1, 4·T1 … apart).
    let log = std::fs::read_to_string(&messages).expect("SIPp message log");
    let received_200s = log
        .split("-----------------------------------------------")
        .filter(|m| {
            m.contains("message received") && m.contains("SIP/2.0 200 OK") && m.contains("INVITE")
        })
        .count();
    assert!(
        received_200s >= 4,
        "SIPp received the 200 OK only {received_200s} times:\n{log}"
    );
}
