//! CANCEL through the B2BUA with two real peers: a SIPp caller gives up
//! while the SIPp agent rings; the engine answers the caller 200 + 487 and
//! cancels its own INVITE to the agent, which answers 200 + 487 and gets
//! the engine's ACK. Both scenarios must complete.

use control_api::proto::call_event::Event;
use std::time::Duration;
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, free_udp_range, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_cancels_while_the_agent_rings() {
    let scratch = Scratch::new("cancel");
    let agent_port = free_udp_range(1);
    let agent = Sipp::serve("uas_ring_no_answer.xml", agent_port, &scratch.0);
    let engine = Engine::bridging_to(&scratch, agent_port);
    let (_grpc, mut events) = engine.subscribe().await;
    let caller = Sipp::call("uac_pcmu_cancel.xml", engine.sip, &scratch.0, 0);
    let events = events_until_ended(&mut events, Duration::from_secs(40)).await;
    tokio::task::spawn_blocking(move || {
        caller.assert_success(Duration::from_secs(30));
        agent.assert_success(Duration::from_secs(30));
    })
    .await
    .expect("sipp tasks");

    assert_eq!(event_kinds(&events), ["started", "ended"]);
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "cancelled");
    assert_eq!(ended.duration_ms, 0, "never answered");
}
