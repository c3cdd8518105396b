//! SIP over TCP and TLS with real peers: SIPp calls over TCP (speech
//! recorded sample for sample), the B2BUA bridges out over TCP to a SIPp
//! agent, a TLS client places a call with RTP both ways, CRLF keep-alives
//! get pongs, and a garbage stream is closed without hurting the next call.

use control_api::proto::call_event::Event;
use sip_stack::message::SipMessage;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::stream_ua::{connect_tls, write_test_certificate, StreamUa};
use switchboard_e2e::{event_kinds, events_until_ended, free_port, Scratch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TCP: &[&str] = &["-t", "t1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_over_tcp_is_answered_and_recorded() {
    let scratch = Scratch::new("tcp-inbound");
    let speech = Speech::generate(&scratch, "This call arrives over TCP. Please record it.");
    let engine = Engine::start(&scratch, &[]);
    let (_grpc, mut events) = engine.subscribe().await;
    let speech_ms = speech.reference.len() as u64 / 8;
    let sipp = Sipp::call_with(
        "uac_pcmu_speech.xml",
        engine.sip,
        &scratch.0,
        speech_ms + 1000,
        TCP,
    );
    let sipp_done =
        tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(60)));
    let events = events_until_ended(&mut events, Duration::from_secs(60)).await;
    sipp_done.await.expect("sipp task");

    assert_eq!(event_kinds(&events), ["started", "answered", "ended"]);
    let Some(Event::Started(started)) = &events[0].event else {
        unreachable!()
    };
    assert_eq!(started.transport, "tcp");
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "remote_bye");
    let rtp = ended.rtp.expect("rtp counters");
    assert!(rtp.packets_received + 1 >= speech.packets(), "{rtp:?}");
    let (left, _, rate) = audio::read_stereo(std::path::Path::new(&ended.recording_path));
    assert_eq!(rate, 8000);
    let (lag, corr) = audio::best_alignment(&left, &speech.reference, 8000);
    assert!(corr > 0.95, "caller channel correlates {corr:.3}");
    audio::assert_windows_aligned(&left, &speech.reference, lag, 4000, 0.9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b2bua_bridges_out_over_tcp() {
    let scratch = Scratch::new("tcp-bridge");
    let caller = Speech::generate(&scratch, "Hello, I am calling about my invoice.");
    let agent = Speech::generate_as(&scratch, "agent", "Of course, let me look that up.");
    let agent_port = free_port();
    let agent_sipp = Sipp::serve_with("uas_pcmu_speech.xml", agent_port, &scratch.0, TCP);
    let engine = Engine::start(
        &scratch,
        &[(
            "SWITCHBOARD_ROUTING__BRIDGE_TO",
            format!("sip:127.0.0.1:{agent_port};transport=tcp"),
        )],
    );
    let (_grpc, mut events) = engine.subscribe().await;
    let talk_ms = caller.reference.len().max(agent.reference.len()) as u64 / 8;
    // The caller comes in over UDP; the agent is reached over TCP.
    let caller_sipp = Sipp::call(
        "uac_pcmu_speech.xml",
        engine.sip,
        &scratch.0,
        talk_ms + 1500,
    );
    let events = events_until_ended(&mut events, Duration::from_secs(60)).await;
    tokio::task::spawn_blocking(move || {
        caller_sipp.assert_success(Duration::from_secs(30));
        agent_sipp.assert_success(Duration::from_secs(30));
    })
    .await
    .expect("sipp tasks");

    assert_eq!(event_kinds(&events), ["started", "answered", "ended"]);
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "remote_bye");
    let (left, right, _) = audio::read_stereo(std::path::Path::new(&ended.recording_path));
    let (_, corr) = audio::best_alignment(&left, &caller.reference, 16_000);
    assert!(corr > 0.95, "caller channel correlates {corr:.3}");
    let (lag, corr) = audio::best_alignment(&right, &agent.reference, 16_000);
    assert!(
        corr > 0.95,
        "agent channel (over TCP signalling) correlates {corr:.3}"
    );
    audio::assert_windows_aligned(&right, &agent.reference, lag, 4000, 0.9);
    // INVITE, ACK and BYE to the agent went over TCP, on the one
    // connection the engine opened for the INVITE.
    let lines = engine.log_lines();
    let target = format!("tcp:127.0.0.1:{agent_port}");
    let said = |needle: &str| {
        lines
            .iter()
            .any(|l| l.contains(needle) && l.contains(&target))
    };
    assert!(said("INVITE to the target"), "INVITE not over TCP");
    let opened = lines
        .iter()
        .filter(|l| l.contains("opening a SIP connection"))
        .count();
    assert_eq!(opened, 1, "the connection to the agent was not reused");
}

/// An INVITE over a stream with an SDP offer for `rtp`.
fn invite(engine_tls: SocketAddr, local: SocketAddr, rtp: SocketAddr, branch: &str) -> String {
    format!(
        "INVITE sip:agent@{engine_tls};transport=tls SIP/2.0\n\
         Via: SIP/2.0/TLS {local};branch={branch};rport\n\
         Max-Forwards: 70\n\
         From: <sip:tester@{local}>;tag=tls-1\n\
         To: <sip:agent@{engine_tls}>\n\
         Call-ID: tls-call-1@{local}\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:tester@{local};transport=tls>\n\
         Content-Type: application/sdp\n\n\
         v=0\n\
         o=tester 1 1 IN IP4 127.0.0.1\n\
         s=-\n\
         c=IN IP4 127.0.0.1\n\
         t=0 0\n\
         m=audio {port} RTP/AVP 0\n\
         a=rtpmap:0 PCMU/8000\n\
         a=ptime:20\n",
        port = rtp.port()
    )
}

/// The RTP port of an SDP body's audio line.
fn sdp_audio_port(body: &[u8]) -> u16 {
    String::from_utf8_lossy(body)
        .lines()
        .find_map(|l| l.strip_prefix("m=audio ")?.split(' ').next()?.parse().ok())
        .expect("m=audio line")
}

/// 20 ms PCMU packets of a 1 kHz-ish square wave.
fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend((0..160).map(|i| if (i / 4) % 2 == 0 { 0x20 } else { 0xa0 }));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_call_with_rtp_both_ways() {
    let scratch = Scratch::new("tls-call");
    let (cert, key, cert_pem) = write_test_certificate(&scratch.0);
    let engine = Engine::start(
        &scratch,
        &[
            ("SWITCHBOARD_SIP__TLS_CERT", cert),
            ("SWITCHBOARD_SIP__TLS_KEY", key),
        ],
    );
    let (_grpc, mut events) = engine.subscribe().await;
    let tls = connect_tls(engine.sip_tls, &cert_pem).await;
    let local = tls.get_ref().0.local_addr().expect("local addr");
    let mut ua = StreamUa::new(tls);
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("rtp socket");
    rtp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");

    // A keep-alive ping over TLS first: the pong is a lone CRLF, which the
    // framer skips, so it is checked on the raw stream below (TCP) instead.
    let offer = invite(
        engine.sip_tls,
        local,
        rtp.local_addr().expect("addr"),
        "z9hG4bKtls1",
    );
    ua.send(&offer).await;
    let ok = ua.expect_response(200).await;
    let via = ok.top_via().expect("Via");
    assert_eq!(via.transport, "TLS");
    let contact = ok.headers.get("Contact").expect("Contact");
    assert!(contact.contains(";transport=tls"), "{contact}");
    let to = ok.headers.get("To").expect("To").to_owned();
    let engine_rtp = SocketAddr::from(([127, 0, 0, 1], sdp_audio_port(&ok.body)));
    ua.send(&format!(
        "ACK sip:switchboard@{tls} SIP/2.0\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bKtls1ack;rport\n\
         Max-Forwards: 70\n\
         From: <sip:tester@{local}>;tag=tls-1\n\
         To: {to}\n\
         Call-ID: tls-call-1@{local}\n\
         CSeq: 1 ACK\n\n",
        tls = engine.sip_tls
    ))
    .await;

    // 2 s of RTP each way.
    let mut heard = 0;
    let mut buf = [0u8; 2048];
    for seq in 0..100u16 {
        rtp.send_to(&rtp_packet(seq), engine_rtp).expect("send rtp");
        std::thread::sleep(Duration::from_millis(20));
        rtp.set_nonblocking(true).expect("nonblocking");
        while rtp.recv_from(&mut buf).is_ok() {
            heard += 1;
        }
        rtp.set_nonblocking(false).expect("blocking");
    }
    assert!(
        heard >= 50,
        "heard only {heard} RTP packets from the engine"
    );

    ua.send(&format!(
        "BYE sip:switchboard@{tls} SIP/2.0\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bKtls1bye;rport\n\
         Max-Forwards: 70\n\
         From: <sip:tester@{local}>;tag=tls-1\n\
         To: {to}\n\
         Call-ID: tls-call-1@{local}\n\
         CSeq: 2 BYE\n\n",
        tls = engine.sip_tls
    ))
    .await;
    ua.expect_response(200).await;

    let events = events_until_ended(&mut events, Duration::from_secs(20)).await;
    assert_eq!(event_kinds(&events), ["started", "answered", "ended"]);
    let Some(Event::Started(started)) = &events[0].event else {
        unreachable!()
    };
    assert_eq!(started.transport, "tls");
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "remote_bye");
    let rtp = ended.rtp.expect("counters");
    assert!(rtp.packets_received >= 95, "{rtp:?}");
}

async fn read_some(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(limit, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => None,
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        Err(_) => panic!("no answer and no close within {limit:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_get_pongs_and_garbage_streams_are_closed() {
    let scratch = Scratch::new("tcp-hostile");
    let _speech = Speech::generate(&scratch, "Still working over TCP.");
    let engine = Engine::start(&scratch, &[]);
    let limit = Duration::from_secs(5);

    // RFC 5626 §4.4.1: CRLF CRLF ping → CRLF pong, as often as asked.
    let mut tcp = TcpStream::connect(engine.sip).await.expect("connect");
    for _ in 0..3 {
        tcp.write_all(b"\r\n\r\n").await.expect("ping");
        assert_eq!(
            read_some(&mut tcp, limit).await.as_deref(),
            Some(&b"\r\n"[..])
        );
    }
    // The same connection then carries SIP: an OPTIONS gets its 200.
    let mut ua = StreamUa::new(tcp);
    let local = "127.0.0.1:5999";
    ua.send(&format!(
        "OPTIONS sip:{sip} SIP/2.0\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bKka1\n\
         From: <sip:probe@{local}>;tag=ka\n\
         To: <sip:{sip}>\n\
         Call-ID: keepalive-1\n\
         CSeq: 1 OPTIONS\n\n",
        sip = engine.sip
    ))
    .await;
    ua.expect_response(200).await;

    // A request without Content-Length on a stream: 400, then closed.
    let mut ua = StreamUa::new(TcpStream::connect(engine.sip).await.expect("connect"));
    let mut raw = ua.into_inner();
    raw.write_all(
        b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKnocl\r\n\
          From: <sip:p@127.0.0.1>;tag=n\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: no-cl\r\n\
          CSeq: 1 OPTIONS\r\n\r\n",
    )
    .await
    .expect("send");
    ua = StreamUa::new(raw);
    match ua.recv(limit).await {
        Some(SipMessage::Response(r)) => assert_eq!(r.status, 400, "{r:?}"),
        other => panic!("expected 400, got {other:?}"),
    }
    assert!(ua.recv(limit).await.is_none(), "closed after the 400");

    // Binary garbage, and a header section that never ends: closed.
    let mut tcp = TcpStream::connect(engine.sip).await.expect("connect");
    let noise: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    tcp.write_all(&noise).await.expect("send");
    tcp.write_all(b"\r\n\r\n").await.expect("send");
    assert_eq!(read_some(&mut tcp, limit).await, None, "garbage must close");
    let mut tcp = TcpStream::connect(engine.sip).await.expect("connect");
    let _ = tcp.write_all(&vec![b'A'; 70_000]).await;
    assert_eq!(
        read_some(&mut tcp, limit).await,
        None,
        "oversize must close"
    );

    // The engine shrugs it off: a good TCP call still works.
    let done = tokio::task::spawn_blocking({
        let (sip, dir) = (engine.sip, scratch.0.clone());
        move || {
            Sipp::call_with("uac_pcmu_speech.xml", sip, &dir, 1500, TCP)
                .assert_success(Duration::from_secs(60))
        }
    });
    done.await.expect("sipp task");
    assert!(engine
        .http_get("/healthz")
        .is_some_and(|b| b.contains("ok")));
}
