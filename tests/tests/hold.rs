//! Hold and resume by re-INVITE with a real SIPp caller (RFC 3264 §8.4):
//! a=sendonly is answered recvonly and the engine stops sending; a=sendrecv
//! brings the audio back. The scenario checks the answers' directions; the
//! test checks what the engine sent, from its own RTP counters.

use control_api::proto::call_event::Event;
use control_api::proto::ListCallsRequest;
use std::time::Duration;
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, wait_event, Scratch};

type Client = control_api::proto::call_control_client::CallControlClient<tonic::transport::Channel>;

async fn packets_sent(grpc: &mut Client) -> u64 {
    let calls = grpc
        .list_calls(ListCallsRequest {})
        .await
        .expect("list calls")
        .into_inner()
        .calls;
    calls
        .first()
        .and_then(|c| c.rtp)
        .map(|r| r.packets_sent)
        .expect("the call and its counters")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_stops_what_the_engine_sends_and_resume_brings_it_back() {
    let scratch = Scratch::new("hold");
    let engine = Engine::start(&scratch, &[]);
    let (mut grpc, mut events) = engine.subscribe().await;
    let sipp = Sipp::call("uac_pcmu_hold.xml", engine.sip, &scratch.0, 0);

    let held = wait_event(
        &mut events,
        Duration::from_secs(30),
        |e| matches!(&e.event, Some(Event::Hold(h)) if h.on_hold),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = packets_sent(&mut grpc).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let b = packets_sent(&mut grpc).await;
    assert_eq!(a, b, "nothing is sent while the caller holds the call");

    let resumed = wait_event(
        &mut events,
        Duration::from_secs(30),
        |e| matches!(&e.event, Some(Event::Hold(h)) if !h.on_hold),
    )
    .await;
    assert_eq!(resumed.call_id, held.call_id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = packets_sent(&mut grpc).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let d = packets_sent(&mut grpc).await;
    assert!(d >= c + 20, "audio flows again after resume ({c} -> {d})");

    let rest = events_until_ended(&mut events, Duration::from_secs(30)).await;
    assert_eq!(event_kinds(&rest), ["ended"]);
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(30)))
        .await
        .expect("sipp task");
    let Some(Event::Hold(h)) = &held.event else {
        unreachable!()
    };
    assert_eq!(h.party, "caller");
}
