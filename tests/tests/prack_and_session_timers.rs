//! Dialog upkeep with real SIPp peers: session timers (RFC 4028) in both
//! roles on both dialogs of a call (the caller's, where the engine is the
//! UAS, and the callee's, where it is the UAC) and reliable provisionals
//! (RFC 3262). The scenarios check every
//! header the engine must send (Min-SE in the 422, Session-Expires and
//! Require: timer in 2xx, RSeq and Require: 100rel on the 180, the order of
//! the PRACK's 200 and the INVITE's 200); the tests check how each call
//! ended from the engine's own events.

use control_api::proto::call_event::Event;
use control_api::proto::CallEvent;
use std::time::Duration;
use switchboard_e2e::audio::Speech;
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, free_udp_range, Scratch};

/// A 4 s Min-SE keeps the scenarios short (RFC 4028's floor is 90 s).
fn engine(scratch: &Scratch) -> Engine {
    Engine::start(
        scratch,
        &[("SWITCHBOARD_SIP__SESSION_MIN_SE_SECS", "4".into())],
    )
}

fn ended_reason(events: &[CallEvent]) -> String {
    match events.last().and_then(|e| e.event.as_ref()) {
        Some(Event::Ended(ended)) => ended.reason.clone(),
        other => panic!("the last event is not `ended`: {other:?}"),
    }
}

async fn finish(sipp: Sipp) {
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(60)))
        .await
        .expect("sipp task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_refreshing_is_hung_up_when_the_session_expires() {
    let scratch = Scratch::new("session-timer-expiry");
    let engine = engine(&scratch);
    let (_grpc, mut events) = engine.subscribe().await;
    let sipp = Sipp::call("uac_session_timer.xml", engine.sip, &scratch.0, 0);

    let seen = events_until_ended(&mut events, Duration::from_secs(40)).await;
    finish(sipp).await;
    // The 422 creates no call; the retry does.
    assert_eq!(event_kinds(&seen), ["started", "answered", "ended"]);
    assert_eq!(ended_reason(&seen), "session_expired");
    let log = engine.log_lines().join("\n");
    assert_eq!(log.matches("session refreshed").count(), 2, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_refreshes_by_update_and_falls_back_to_reinvite() {
    let scratch = Scratch::new("session-timer-refresher");
    let engine = engine(&scratch);
    let (_grpc, mut events) = engine.subscribe().await;
    let sipp = Sipp::call(
        "uac_session_timer_uas_refresh.xml",
        engine.sip,
        &scratch.0,
        0,
    );

    let seen = events_until_ended(&mut events, Duration::from_secs(40)).await;
    finish(sipp).await;
    assert_eq!(event_kinds(&seen), ["started", "answered", "ended"]);
    assert_eq!(ended_reason(&seen), "remote_bye");
    let log = engine.log_lines().join("\n");
    assert_eq!(
        log.matches("session refresh answered").count(),
        2,
        "one UPDATE and one re-INVITE answered 2xx: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_requiring_100rel_gets_a_reliable_180_and_its_prack_answered() {
    let scratch = Scratch::new("prack");
    let engine = engine(&scratch);
    let (_grpc, mut events) = engine.subscribe().await;
    let sipp = Sipp::call("uac_prack.xml", engine.sip, &scratch.0, 500);

    let seen = events_until_ended(&mut events, Duration::from_secs(30)).await;
    finish(sipp).await;
    assert_eq!(event_kinds(&seen), ["started", "answered", "ended"]);
    assert_eq!(ended_reason(&seen), "remote_bye");
}

/// Both sides of the B2BUA use 100rel: the caller requires it of the
/// engine, the agent requires it of the engine's outbound INVITE. The
/// engine PRACKs the agent's 180, and the caller's 200 follows the caller's
/// PRACK and the agent's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_provisionals_on_both_sides_of_a_bridge() {
    let scratch = Scratch::new("prack-bridge");
    let agent_port = switchboard_e2e::free_udp_range(1);
    let agent = Sipp::serve("uas_prack.xml", agent_port, &scratch.0);
    let engine = Engine::bridging_to(&scratch, agent_port);
    let (_grpc, mut events) = engine.subscribe().await;
    let caller = Sipp::call("uac_prack.xml", engine.sip, &scratch.0, 500);

    let seen = events_until_ended(&mut events, Duration::from_secs(30)).await;
    finish(caller).await;
    finish(agent).await;
    assert_eq!(event_kinds(&seen), ["started", "answered", "ended"]);
    assert_eq!(ended_reason(&seen), "remote_bye");
}

/// An engine bridging to the SIPp callee on `callee_port` that asks the
/// callee for `expires` s sessions (Min-SE 2 s).
fn bridging_with_timers(scratch: &Scratch, callee_port: u16, expires: u32) -> Engine {
    Engine::start(
        scratch,
        &[
            (
                "SWITCHBOARD_ROUTING__BRIDGE_TO",
                format!("127.0.0.1:{callee_port}"),
            ),
            ("SWITCHBOARD_SIP__SESSION_MIN_SE_SECS", "2".into()),
            ("SWITCHBOARD_SIP__SESSION_EXPIRES_SECS", expires.to_string()),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_refreshes_a_callee_that_makes_it_the_refresher() {
    let scratch = Scratch::new("session-timer-callee-refreshed");
    Speech::generate(&scratch, "Checking the line stays up.");
    let callee_port = free_udp_range(1);
    // uas_session_timer.xml checks the INVITE asks for timers, answers
    // 422 (Min-SE 4), and checks the retry and the UPDATE refreshes.
    let callee = Sipp::serve("uas_session_timer.xml", callee_port, &scratch.0);
    let engine = bridging_with_timers(&scratch, callee_port, 2);
    let (_grpc, mut events) = engine.subscribe().await;
    // Long enough for two refreshes (at 2 s and 4 s); the second ends the timer.
    let caller = Sipp::call("uac_pcmu_speech.xml", engine.sip, &scratch.0, 5_000);

    let seen = events_until_ended(&mut events, Duration::from_secs(40)).await;
    finish(callee).await;
    finish(caller).await;
    assert_eq!(event_kinds(&seen), ["started", "answered", "ended"]);
    assert_eq!(ended_reason(&seen), "remote_bye");
    let log = engine.log_lines().join("\n");
    assert!(
        log.contains("callee asks for a longer session interval"),
        "{log}"
    );
    assert_eq!(log.matches("session refresh answered").count(), 2, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_stops_refreshing_ends_the_call() {
    let scratch = Scratch::new("session-timer-callee-expiry");
    let callee_port = free_udp_range(1);
    let callee = Sipp::serve("uas_session_timer_refresher.xml", callee_port, &scratch.0);
    let engine = bridging_with_timers(&scratch, callee_port, 4);
    let (_grpc, mut events) = engine.subscribe().await;
    Speech::generate(&scratch, "Is anyone there?");
    // The caller waits for the engine's BYE.
    let caller = Sipp::call("uac_pcmu_await_bye.xml", engine.sip, &scratch.0, 0);

    let seen = events_until_ended(&mut events, Duration::from_secs(40)).await;
    finish(callee).await;
    finish(caller).await;
    assert_eq!(event_kinds(&seen), ["started", "answered", "ended"]);
    assert_eq!(ended_reason(&seen), "session_expired");
    let log = engine.log_lines().join("\n");
    assert!(log.contains("session refreshed"), "{log}");
}
