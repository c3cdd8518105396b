//! Outbound registration with a real SIPp registrar: the engine registers
//! to a trunk marked `register = true`, answers the digest challenge, and
//! refreshes the 2 s binding before it runs out (two rounds). When the
//! registrar goes away, the binding lapses and the gauge says so.

use std::time::Duration;
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{free_udp_range, Scratch};

const METRIC: &str = "switchboard_trunk_registered{trunk=\"carrier-a\"}";

#[test]
fn the_engine_registers_refreshes_and_notices_a_lapse() {
    let scratch = Scratch::new("register");
    let port = free_udp_range(1);
    let config = scratch.path("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[[trunks]]\nname = \"carrier-a\"\naddress = \"127.0.0.1:{port}\"\n\
             options_interval_secs = 0\nregister = true\nregister_expires_secs = 2\n\
             username = \"engine\"\npassword = \"s3cret\"\n"
        ),
    )
    .expect("write config");
    let registrar = Sipp::serve("uas_register.xml", port, &scratch.0);
    let engine = Engine::start(
        &scratch,
        &[
            ("SWITCHBOARD_CONFIG", config.to_string_lossy().into_owned()),
            ("SWITCHBOARD_SIP__TIMER_T1_MS", "50".into()),
        ],
    );

    engine.wait_metric(METRIC, 1.0, Duration::from_secs(10));
    // Both rounds (challenge, credentials, 200) done: the refresh happened.
    registrar.assert_success(Duration::from_secs(20));
    // Nobody answers the next refresh: the binding lapses.
    engine.wait_metric(METRIC, 0.0, Duration::from_secs(20));
    let log = engine.log_lines().join("\n");
    assert_eq!(log.matches("registered with the trunk").count(), 2, "{log}");
    assert!(log.contains("registration lapsed"), "{log}");
}
