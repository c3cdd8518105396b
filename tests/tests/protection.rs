//! Protection at the edge: scanners are dropped unanswered, and a source
//! that floods INVITEs gets 503 with Retry-After beyond its rate.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::Scratch;

fn invite(n: u32, port: u16, user_agent: &str) -> Vec<u8> {
    format!(
        "INVITE sip:agent@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-flood-{n};rport\r\n\
         From: <sip:flood@127.0.0.1>;tag=f{n}\r\n\
         To: <sip:agent@127.0.0.1>\r\n\
         Call-ID: flood-{n}@test\r\n\
         CSeq: 1 INVITE\r\n\
         Max-Forwards: 70\r\n\
         User-Agent: {user_agent}\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Final responses per Call-ID, read until `want` arrived or `limit` passed.
fn final_responses(socket: &UdpSocket, want: usize, limit: Duration) -> HashMap<String, String> {
    let mut finals = HashMap::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while finals.len() < want && start.elapsed() < limit {
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let call_id = text
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: ").map(str::to_owned))
            .unwrap_or_default();
        if status >= 200 {
            finals.entry(call_id).or_insert(text);
        }
    }
    finals
}

#[test]
fn scanners_are_dropped_and_invite_floods_get_503() {
    let scratch = Scratch::new("protection");
    let engine = Engine::start(
        &scratch,
        &[
            ("SWITCHBOARD_SIP__INVITE_RATE_PER_SOURCE", "1".into()),
            ("SWITCHBOARD_SIP__INVITE_BURST_PER_SOURCE", "3".into()),
        ],
    );
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let port = socket.local_addr().expect("addr").port();

    // A scanner hears nothing at all.
    socket
        .send_to(&invite(0, port, "friendly-scanner"), engine.sip)
        .expect("send");
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(800) {
        assert!(
            socket.recv_from(&mut buf).is_err(),
            "a scanner got an answer"
        );
    }

    // Six INVITEs at once from one source: the burst of three is served
    // (488: no SDP offer), the rest are told to come back later.
    for n in 1..=6 {
        socket
            .send_to(&invite(n, port, "carrier-sbc/1.0"), engine.sip)
            .expect("send");
    }
    let finals = final_responses(&socket, 6, Duration::from_secs(10));
    let count = |code: &str| {
        finals
            .values()
            .filter(|r| r.starts_with(&format!("SIP/2.0 {code} ")))
            .count()
    };
    assert_eq!(count("488"), 3, "{finals:#?}");
    assert_eq!(count("503"), 3, "{finals:#?}");
    assert!(finals
        .values()
        .filter(|r| r.contains(" 503 "))
        .all(|r| r.contains("Retry-After: ")));
    let scanned = engine
        .http_get("/metrics")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains("blocked_user_agent") && !l.ends_with(" 0"));
    assert!(scanned, "the dropped scanner request is counted");
}
