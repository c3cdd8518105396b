//! Digest authentication with real peers: a caller from outside the trusted
//! networks must answer a challenge (SIPp with -au/-ap), and the engine
//! answers the challenge of an agent platform it bridges to (a SIPp UAS
//! that checks the credentials with verifyauth).
//!
//! SIPp 3.6 (Debian 12) computes MD5 digests only, so these tests offer
//! MD5; SHA-256 is covered by the unit tests of `sip_stack::auth` and the
//! engine's gatekeeper.

use control_api::proto::call_event::Event;
use std::net::UdpSocket;
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, free_udp_range, Scratch};

/// A config file: nobody trusted, one user, MD5 challenges.
fn untrusted_config(scratch: &Scratch) -> String {
    let path = scratch.path("auth.toml");
    std::fs::write(
        &path,
        "[sip]\ntrusted_networks = []\nauth_algorithms = [\"MD5\"]\nauth_realm = \"switchboard\"\n\
         users = [{ username = \"alice\", password = \"wonderland\" }]\n",
    )
    .expect("write config");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_caller_is_challenged_and_admitted_with_credentials() {
    let scratch = Scratch::new("auth-in");
    let speech = Speech::generate(&scratch, "This call is authenticated.");
    let engine = Engine::start(
        &scratch,
        &[("SWITCHBOARD_CONFIG", untrusted_config(&scratch))],
    );

    // Without credentials: 401 with a digest challenge, and no call.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let port = socket.local_addr().expect("addr").port();
    let invite = format!(
        "INVITE sip:agent@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-noauth;rport\r\n\
         From: <sip:mallory@127.0.0.1>;tag=m\r\nTo: <sip:agent@127.0.0.1>\r\nCall-ID: noauth@test\r\n\
         CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(invite.as_bytes(), engine.sip).expect("send");
    let mut buf = [0u8; 4096];
    let challenge = loop {
        let (n, _) = socket.recv_from(&mut buf).expect("a final response");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("SIP/2.0 100 ") {
            break text;
        }
    };
    assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
    assert!(
        challenge.contains("WWW-Authenticate: Digest realm=\"switchboard\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("algorithm=MD5") && challenge.contains("qop=\"auth\""),
        "{challenge}"
    );

    // With credentials: SIPp answers the challenge and the call goes through.
    let (_grpc, mut events) = engine.subscribe().await;
    let speech_ms = speech.reference.len() as u64 / 8;
    let sipp = Sipp::call_with(
        "uac_auth_pcmu.xml",
        engine.sip,
        &scratch.0,
        speech_ms + 500,
        &["-au", "alice", "-ap", "wonderland"],
    );
    let events = events_until_ended(&mut events, Duration::from_secs(60)).await;
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(30)))
        .await
        .expect("sipp task");
    assert_eq!(event_kinds(&events), ["started", "answered", "ended"]);
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    let (left, _, _) = audio::read_stereo(std::path::Path::new(&ended.recording_path));
    let (_, corr) = audio::best_alignment(&left, &speech.reference, 8000);
    assert!(
        corr > 0.95,
        "authenticated caller's audio correlates {corr:.3}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_answers_the_bridge_targets_challenge() {
    let scratch = Scratch::new("auth-out");
    let caller = Speech::generate(&scratch, "Please connect me to an agent.");
    let _agent = Speech::generate_as(&scratch, "agent", "Agent speaking.");
    let agent_port = free_udp_range(1);
    let agent_sipp = Sipp::serve("uas_auth_challenge.xml", agent_port, &scratch.0);
    let engine = Engine::start(
        &scratch,
        &[
            (
                "SWITCHBOARD_ROUTING__BRIDGE_TO",
                format!("127.0.0.1:{agent_port}"),
            ),
            ("SWITCHBOARD_ROUTING__BRIDGE_USERNAME", "engine".into()),
            ("SWITCHBOARD_ROUTING__BRIDGE_PASSWORD", "s3cret".into()),
        ],
    );
    let (_grpc, mut events) = engine.subscribe().await;
    let talk_ms = caller.reference.len() as u64 / 8;
    let caller_sipp = Sipp::call(
        "uac_pcmu_speech.xml",
        engine.sip,
        &scratch.0,
        talk_ms + 1500,
    );
    let events = events_until_ended(&mut events, Duration::from_secs(60)).await;
    tokio::task::spawn_blocking(move || {
        caller_sipp.assert_success(Duration::from_secs(30));
        // The agent scenario fails unless verifyauth accepted our credentials.
        agent_sipp.assert_success(Duration::from_secs(30));
    })
    .await
    .expect("sipp tasks");
    assert_eq!(event_kinds(&events), ["started", "answered", "ended"]);
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "remote_bye");
}
