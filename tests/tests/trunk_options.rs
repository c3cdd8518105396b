//! Trunk health by OPTIONS: the engine pings a configured trunk (a SIPp UAS
//! answering OPTIONS) every second; the trunk is up while it answers, down
//! after two pings in a row go unanswered once SIPp is gone, and up again
//! when a SIP stack answers there again. Read from the engine's metrics.

use std::time::Duration;
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{free_udp_range, Scratch};

const METRIC: &str = "switchboard_trunk_up{trunk=\"carrier-a\"}";

#[test]
fn a_trunk_goes_down_when_it_stops_answering_options_and_comes_back() {
    let scratch = Scratch::new("trunk-options");
    let port = free_udp_range(1);
    let config = scratch.path("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[[trunks]]\nname = \"carrier-a\"\naddress = \"127.0.0.1:{port}\"\n\
             options_interval_secs = 1\nallowed_sources = [\"192.0.2.0/24\"]\n"
        ),
    )
    .expect("write config");
    let trunk = Sipp::serve_with("uas_options.xml", port, &scratch.0, &["-m", "3"]);
    let engine = Engine::start(
        &scratch,
        &[
            ("SWITCHBOARD_CONFIG", config.to_string_lossy().into_owned()),
            // Timer F = 64 × T1 = 3.2 s: an unanswered ping fails fast.
            ("SWITCHBOARD_SIP__TIMER_T1_MS", "50".into()),
        ],
    );

    engine.wait_metric(METRIC, 1.0, Duration::from_secs(10));
    trunk.assert_success(Duration::from_secs(20)); // answered its 3 pings
    engine.wait_metric(METRIC, 0.0, Duration::from_secs(20));

    let again = Sipp::serve_with("uas_options.xml", port, &scratch.0, &["-m", "1"]);
    engine.wait_metric(METRIC, 1.0, Duration::from_secs(10));
    again.assert_success(Duration::from_secs(20));
}
