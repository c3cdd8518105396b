//! Inbound routing by dialled number with real SIPp peers: `[[routes]]`
//! send DID 100 to the "sales" trunk, numbers starting with 2 to the "dead"
//! trunk (nothing listens there) and then the "support" trunk, and "ivr" to
//! the engine itself. Each call must land where its route says; the call to
//! the dead trunk must fail over to support when its INVITE times out.

use control_api::proto::call_event::Event;
use std::time::Duration;
use switchboard_e2e::audio::Speech;
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, free_udp_range, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_follow_their_did_routes_and_fail_over_past_a_dead_trunk() {
    let scratch = Scratch::new("routing");
    Speech::generate(&scratch, "Hello, I am calling about my bill.");
    Speech::generate_as(&scratch, "agent", "Hello, how can I help?");
    let (sales, support, dead) = (free_udp_range(1), free_udp_range(1), free_udp_range(1));
    let config = scratch.path("switchboard.toml");
    let trunk = |name: &str, port: u16| {
        format!("[[trunks]]\nname = \"{name}\"\naddress = \"127.0.0.1:{port}\"\noptions_interval_secs = 0\n")
    };
    std::fs::write(
        &config,
        [
            trunk("sales", sales),
            trunk("dead", dead),
            trunk("support", support),
            "[[routes]]\ndid = \"100\"\ntrunks = [\"sales\"]\n".into(),
            "[[routes]]\ndid = \"2*\"\ntrunks = [\"dead\", \"support\"]\n".into(),
            "[[routes]]\ndid = \"ivr\"\ntrunks = []\n".into(),
        ]
        .concat(),
    )
    .expect("write config");
    let sales_sipp = Sipp::serve("uas_pcmu_speech.xml", sales, &scratch.0);
    let support_sipp = Sipp::serve("uas_pcmu_speech.xml", support, &scratch.0);
    let engine = Engine::start(
        &scratch,
        &[
            ("SWITCHBOARD_CONFIG", config.to_string_lossy().into_owned()),
            // Timer B = 64 × T1 = 3.2 s: the dead trunk fails fast.
            ("SWITCHBOARD_SIP__TIMER_T1_MS", "50".into()),
        ],
    );
    let (_grpc, mut events) = engine.subscribe().await;

    for did in ["100", "2001", "ivr"] {
        let caller = Sipp::call_with(
            "uac_pcmu_speech.xml",
            engine.sip,
            &scratch.0,
            500,
            &["-s", did],
        );
        let seen = events_until_ended(&mut events, Duration::from_secs(40)).await;
        tokio::task::spawn_blocking(move || caller.assert_success(Duration::from_secs(30)))
            .await
            .expect("caller");
        assert_eq!(
            event_kinds(&seen),
            ["started", "answered", "ended"],
            "DID {did}"
        );
        let Some(Event::Ended(ended)) = &seen.last().and_then(|e| e.event.clone()) else {
            unreachable!()
        };
        assert_eq!(ended.reason, "remote_bye", "DID {did}");
    }
    // Each agent took exactly its one call (SIPp -m 1 would fail otherwise).
    tokio::task::spawn_blocking(move || {
        sales_sipp.assert_success(Duration::from_secs(30));
        support_sipp.assert_success(Duration::from_secs(30));
    })
    .await
    .expect("agents");
    let log = engine.log_lines().join("\n");
    assert_eq!(
        log.matches("failing over to the next destination").count(),
        1,
        "only the call to 2001 fails over"
    );
    assert!(log.contains("trunk=\"support\""), "{log}");
}
