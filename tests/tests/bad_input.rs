//! Hostile SIP: malformed requests get a 400 when they can be answered and
//! are dropped when they cannot; the engine never falls over and the next
//! good call still works.

use std::net::UdpSocket;
use std::time::Duration;
use switchboard_e2e::audio::Speech;
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{tests_dir, Scratch};

/// Messages that must be answered with a 400 (files under tests/sip/answerable).
fn answerable() -> Vec<(String, Vec<u8>)> {
    read_dir("answerable")
}

/// Messages that cannot be answered and must be dropped silently.
fn unanswerable() -> Vec<(String, Vec<u8>)> {
    let mut v = read_dir("unanswerable");
    v.push((
        "binary-noise".into(),
        (0..=255u8).cycle().take(700).collect(),
    ));
    v.push(("empty-lines".into(), b"\r\n\r\n\r\n".to_vec()));
    v
}

/// Test messages are stored with LF line endings; SIP wants CRLF.
fn read_dir(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = tests_dir().join("sip").join(kind);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read message");
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                text.replace("\r\n", "\n")
                    .replace('\n', "\r\n")
                    .into_bytes(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no messages in {}", dir.display());
    out
}

fn exchange(socket: &UdpSocket, engine: &Engine, msg: &[u8]) -> Option<String> {
    socket.send_to(msg, engine.sip).expect("send");
    let mut buf = [0u8; 4096];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

#[test]
fn malformed_sip_gets_400_or_is_dropped_and_a_good_call_still_works() {
    let scratch = Scratch::new("badinput");
    let _speech = Speech::generate(&scratch, "Still working.");
    let engine = Engine::start(&scratch, &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout");

    for (name, msg) in answerable() {
        let reply = exchange(&socket, &engine, &msg).unwrap_or_else(|| panic!("{name}: no reply"));
        assert!(reply.starts_with("SIP/2.0 400 "), "{name}: got {reply}");
        let call_id = String::from_utf8_lossy(&msg)
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: ").map(str::to_owned));
        if let Some(id) = call_id {
            assert!(
                reply.contains(id.trim()),
                "{name}: 400 lacks the Call-ID: {reply}"
            );
        }
    }
    for (name, msg) in unanswerable() {
        assert_eq!(
            exchange(&socket, &engine, &msg),
            None,
            "{name} must be dropped"
        );
    }
    let oversized = vec![b'A'; 70_000];
    let _ = socket.send_to(&oversized[..65_000], engine.sip);

    // Still alive and still taking calls.
    assert!(engine
        .http_get("/healthz")
        .is_some_and(|b| b.contains("ok")));
    Sipp::call("uac_pcmu_speech.xml", engine.sip, &scratch.0, 1500)
        .assert_success(Duration::from_secs(60));
    let errors = engine
        .metric("switchboard_sip_parse_errors_total")
        .unwrap_or(0.0);
    assert!(
        errors >= (answerable().len() + unanswerable().len() - 1) as f64,
        "{errors} parse errors counted"
    );
}

/// RFC 3261 §8.2.2.3: a request requiring an extension the engine lacks
/// (here Replaces, RFC 3891) gets 420 naming it, not a new call.
#[test]
fn an_invite_requiring_an_unknown_extension_gets_420() {
    let scratch = Scratch::new("require");
    let engine = Engine::start(&scratch, &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(2000)))
        .expect("timeout");
    let me = socket.local_addr().expect("local addr");
    let invite = format!(
        "INVITE sip:100@{engine} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-require-1\r\n\
         From: <sip:pickup@{me}>;tag=p1\r\n\
         To: <sip:100@{engine}>\r\n\
         Call-ID: require-replaces@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:pickup@{me}>\r\n\
         Max-Forwards: 70\r\n\
         Replaces: some-call@elsewhere;to-tag=1;from-tag=2\r\n\
         Require: replaces\r\n\
         Content-Length: 0\r\n\r\n",
        engine = engine.sip,
    );
    socket.send_to(invite.as_bytes(), engine.sip).expect("send");
    let mut buf = [0u8; 4096];
    let mut finals = Vec::new();
    for _ in 0..5 {
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            break;
        };
        let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !reply.starts_with("SIP/2.0 1") {
            finals.push(reply);
            break;
        }
    }
    let reply = finals.pop().expect("a final response");
    assert!(reply.starts_with("SIP/2.0 420 "), "got {reply}");
    assert!(
        reply
            .lines()
            .any(|l| l.eq_ignore_ascii_case("Unsupported: replaces")),
        "420 must name the extension: {reply}"
    );
    assert_eq!(engine.metric("switchboard_active_calls"), Some(0.0));
}
