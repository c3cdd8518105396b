//! Key presses across a transcoding bridge, on the wire: a SIPp caller in
//! PCMU presses 1, 5 and # as RFC 4733 telephone-events (SIPp's own
//! captures); the engine routes the call to a trunk that takes only G.722
//! (a real baresip), so the bridge transcodes and cannot relay the event
//! packets. Each press must reach baresip regenerated as the G.722 leg's
//! own telephone-events: baresip logs each event it receives (`received
//! event: '5' (end=1)`), once per press.

use control_api::proto::call_event::Event;
use std::process::Command;
use std::time::Duration;
use switchboard_e2e::baresip::{self, Baresip};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{events_until_ended, run_checked, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4733_presses_reach_a_g722_callee_regenerated() {
    let scratch = Scratch::new("dtmf-transcoded");
    let silence = scratch.path("silence-16k.wav");
    run_checked(
        Command::new("sox")
            .args(["-D", "-n", "-r", "16000", "-c", "1", "-b", "16"])
            .arg(&silence)
            .args(["trim", "0", "30"]),
    );
    let agent = Baresip::start(&scratch, "agent", &silence, baresip::G722, None, 40);
    let config = scratch.path("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[[trunks]]\nname = \"g722-agent\"\naddress = \"{}\"\noptions_interval_secs = 0\n\
             codecs = [\"G722\"]\n\n[[routes]]\ndid = \"*\"\ntrunks = [\"g722-agent\"]\n",
            agent.addr()
        ),
    )
    .expect("write config");
    let engine = Engine::start(
        &scratch,
        &[("SWITCHBOARD_CONFIG", config.to_string_lossy().into_owned())],
    );
    let (_grpc, mut events) = engine.subscribe().await;
    let sipp = Sipp::call("uac_dtmf.xml", engine.sip, &scratch.0, 0);
    let events = events_until_ended(&mut events, Duration::from_secs(40)).await;
    let out = tokio::task::spawn_blocking(move || agent.finish(Duration::from_secs(3)))
        .await
        .expect("baresip task");
    let log = String::from_utf8_lossy(&out.stdout);
    println!("{log}\n{}", String::from_utf8_lossy(&out.stderr));
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(30)))
        .await
        .expect("sipp task");

    // The caller's presses were detected on its PCMU leg...
    let pressed: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.event {
            Some(Event::Dtmf(d)) if d.method == "rfc4733" => Some(d.digit.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(pressed, ["1", "5", "#"]);
    let answered = events.iter().find_map(|e| match &e.event {
        Some(Event::Answered(a)) => Some(a.codec.clone()),
        _ => None,
    });
    assert_eq!(
        answered.as_deref(),
        Some("PCMU"),
        "the caller stays in PCMU"
    );
    assert!(log.contains("Call established"), "{log}");
    assert!(
        log.to_ascii_lowercase().contains("g722"),
        "baresip talks G.722: {log}"
    );
    // ...and reached baresip as telephone-events of its G.722 leg, once each.
    let received: Vec<char> = log
        .lines()
        // baresip logs each RFC 4733 event it receives, begin and end.
        .filter(|l| l.contains("received event:") && l.contains("end=1"))
        .filter_map(|l| l.split('\'').nth(1).and_then(|d| d.chars().next()))
        .collect();
    assert_eq!(received, ['1', '5', '#'], "{log}");
}
