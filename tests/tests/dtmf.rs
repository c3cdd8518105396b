//! Key presses from a real SIPp caller: RFC 4733 telephone-events (SIPp's
//! own captures of 1, 5 and #, played as RTP, end packets three times) and
//! a SIP INFO `application/dtmf-relay` 9. Each reaches the event stream once,
//! in order. SendDtmf queues key presses the other way.

use control_api::proto::call_event::Event;
use control_api::proto::SendDtmfRequest;
use std::time::Duration;
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, wait_event, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_presses_by_rtp_and_by_info_reach_the_event_stream() {
    let scratch = Scratch::new("dtmf");
    let engine = Engine::start(&scratch, &[]);
    let (mut grpc, mut events) = engine.subscribe().await;
    let sipp = Sipp::call("uac_dtmf.xml", engine.sip, &scratch.0, 0);
    let answered = wait_event(&mut events, Duration::from_secs(30), |e| {
        matches!(e.event, Some(Event::Answered(_)))
    })
    .await;
    // The other way: the engine presses keys towards the caller (the RTP
    // itself is checked in media-core's dtmf_loopback test; SIPp ignores it).
    let send = |digits: &str, call_id: &str| SendDtmfRequest {
        call_id: call_id.into(),
        digits: digits.into(),
        duration_ms: 0,
    };
    grpc.send_dtmf(send("12#", &answered.call_id))
        .await
        .expect("send DTMF");
    let code = grpc
        .send_dtmf(send("12x", &answered.call_id))
        .await
        .expect_err("not a key")
        .code();
    assert_eq!(code, tonic::Code::InvalidArgument);
    let code = grpc
        .send_dtmf(send("1", "no-such-call"))
        .await
        .expect_err("no call")
        .code();
    assert_eq!(code, tonic::Code::NotFound);
    let events = events_until_ended(&mut events, Duration::from_secs(40)).await;
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(30)))
        .await
        .expect("sipp task");

    assert_eq!(
        event_kinds(&events),
        ["dtmf", "dtmf", "dtmf", "dtmf", "ended"]
    );
    let presses: Vec<(String, String, String, u32)> = events
        .iter()
        .filter_map(|e| match &e.event {
            Some(Event::Dtmf(d)) => Some((
                d.digit.clone(),
                d.method.clone(),
                d.party.clone(),
                d.duration_ms,
            )),
            _ => None,
        })
        .collect();
    let digits: Vec<(&str, &str, &str)> = presses
        .iter()
        .map(|(d, m, p, _)| (d.as_str(), m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        digits,
        [
            ("1", "rfc4733", "caller"),
            ("5", "rfc4733", "caller"),
            ("#", "rfc4733", "caller"),
            ("9", "sip_info", "caller"),
        ]
    );
    // The captures hold 280 ms presses (duration 0x08c0 = 2240 units at 8 kHz).
    for (digit, _, _, ms) in &presses[..3] {
        assert_eq!(*ms, 280, "duration of {digit}");
    }
    assert_eq!(presses[3].3, 160);
}
