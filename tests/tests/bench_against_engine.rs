//! switchboard-bench against the real engine: its UAC calls the engine, the
//! engine bridges every call back to the tool's UAS, and probes flow both
//! ways through the engine's media bridge. Checks the accounting, not timings.

use std::net::SocketAddr;
use switchboard_bench::{run, BenchConfig, Mode};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::{free_udp_range, Scratch};

#[test]
fn bench_run_through_the_engine_adds_up() {
    let scratch = Scratch::new("bench");
    let uas_port = free_udp_range(1);
    let engine = Engine::start(
        &scratch,
        &[
            (
                "SWITCHBOARD_ROUTING__BRIDGE_TO",
                format!("127.0.0.1:{uas_port}"),
            ),
            ("SWITCHBOARD_RECORDING__ENABLED", "false".into()),
        ],
    );
    let calls = 5;
    let report = run(BenchConfig {
        mode: Mode::Switchboard,
        target: engine.sip,
        uas_listen: SocketAddr::from(([127, 0, 0, 1], uas_port)),
        levels: vec![calls],
        cps: 20.0,
        hold_secs: 2.0,
        give_up_secs: 6.0,
        engine_pid: Some(engine.pid()),
        ..BenchConfig::default()
    })
    .expect("bench run");

    let level = &report.modes[0].levels[0];
    let c = &level.setup.counts;
    let n = u64::from(calls);
    assert_eq!(
        (c.started, c.a_up, c.b_up),
        (n, n, n),
        "{c:?} {:?}",
        level.setup.problems
    );
    assert_eq!(
        (c.failed, c.dropped, c.teardown_failed),
        (0, 0, 0),
        "{:?}",
        level.setup.problems
    );
    assert_eq!(
        (c.a_down, c.b_down),
        (n, n),
        "both legs of every call torn down: {c:?}"
    );
    for d in [&level.a_to_b, &level.b_to_a] {
        assert!(d.sent > 0, "{d:?}");
        assert_eq!(d.sent, d.received + d.lost, "sent = received + lost: {d:?}");
        assert_eq!(d.misrouted, 0, "a probe reached the wrong call: {d:?}");
        assert!(d.received > 0, "the engine bridged no audio: {d:?}");
    }
    assert!(
        level.engine.is_some(),
        "the engine's CPU and RSS were sampled"
    );
    assert_eq!(engine.metric("switchboard_active_calls"), Some(0.0));
}
