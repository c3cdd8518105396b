//! Call setup under load with SIPp's built-in uac: hundreds of calls at
//! tens of calls per second, every one answered and released, none failed.
//! (The sustained-rate figure in the README comes from scripts/sipp-load.sh.)

use std::process::Command;
use switchboard_e2e::engine::Engine;
use switchboard_e2e::{free_udp_range, Scratch};

#[test]
fn three_hundred_calls_at_fifty_per_second_all_succeed() {
    let scratch = Scratch::new("sippload");
    // Up to 100 calls at once: give them a port range of their own, above
    // the kernel's ephemeral ports and the other tests' ranges.
    let engine = Engine::start(
        &scratch,
        &[
            ("SWITCHBOARD_SERVER__LOG", "warn".into()),
            // One SIPp source stands in for a trunk: no per-source INVITE limit.
            ("SWITCHBOARD_SIP__INVITE_RATE_PER_SOURCE", "0".into()),
            ("SWITCHBOARD_MEDIA__RTP_PORT_MIN", "61000".into()),
            ("SWITCHBOARD_MEDIA__RTP_PORT_MAX", "61998".into()),
        ],
    );
    let stats = scratch.path("stat.csv");
    let port = free_udp_range(1).to_string();
    let media_port = free_udp_range(8).to_string();
    let out = Command::new("sipp")
        .arg(engine.sip.to_string())
        .args([
            "-sn",
            "uac",
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-p",
            &port,
            "-mp",
            &media_port,
        ])
        .args(["-r", "50", "-m", "300", "-l", "100", "-d", "1000"])
        .args([
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
            "-trace_stat",
            "-stf",
        ])
        .arg(&stats)
        .current_dir(&scratch.0)
        .output()
        .expect("run sipp");
    let text = std::fs::read_to_string(&stats).expect("sipp statistics");
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(';').collect()).collect();
    let field = |name: &str| -> u64 {
        let i = rows[0].iter().position(|h| *h == name).expect("column");
        rows.last()
            .and_then(|r| r.get(i))
            .and_then(|v| v.parse().ok())
            .expect("value")
    };
    assert!(
        out.status.success(),
        "sipp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(field("SuccessfulCall(C)"), 300);
    assert_eq!(field("FailedCall(C)"), 0);
    // The last calls' recordings are finalized just after their BYE.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while engine.metric("switchboard_active_calls") != Some(0.0) {
        assert!(std::time::Instant::now() < deadline, "calls left behind");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
