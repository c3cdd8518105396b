//! RFC 3389 comfort noise with a small raw-UDP SIP peer (SIPp streams one
//! payload type only): it offers PCMU with CN (static PT 13) and gets CN in
//! the answer; it sends a second of a loud tone, a CN packet, a
//! second of silence with one CN update, then audio again with the marker
//! bit. The engine counts the CN packets and no loss. The engine's own
//! prompt (a tone, 1 s on and 1 s off) comes back with CN packets in its
//! silences, each silence ending with a marker-bit packet.

use control_api::proto::call_event::Event;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::{events_until_ended, Scratch};

/// Reads SIP messages until one starts with `first_line` (bounded).
fn await_message(sip: &UdpSocket, first_line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok((n, _)) = sip.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(first_line) {
                return text;
            }
        }
    }
    panic!("no {first_line:?} within 10 s");
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

fn request(
    method: &str,
    engine: SocketAddr,
    sip: &UdpSocket,
    to: &str,
    cseq: u32,
    body: &str,
) -> String {
    let me = sip.local_addr().unwrap();
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:cn@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-cn-{cseq}-{method}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:peer@{me}>;tag=cnpeer\r\nTo: {to}\r\nCall-ID: cn-test-{port}@127.0.0.1\r\n\
         CSeq: {cseq} {method}\r\nContact: <sip:peer@{me}>\r\n{content_type}Content-Length: {len}\r\n\r\n{body}",
        port = me.port(),
        len = body.len(),
    )
}

/// One RTP packet of ours.
fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x00c0_ffeeu32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A loud 500 Hz square wave in µ-law (0x30 / 0xb0: about ±4000).
fn ulaw_tone(_k: usize) -> Vec<u8> {
    (0..160)
        .map(|i| if (i / 8) % 2 == 0 { 0x30 } else { 0xb0 })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_offering_cn_gets_it_and_its_cn_is_not_loss() {
    let scratch = Scratch::new("comfort-noise");
    let engine = Engine::start(&scratch, &[]);
    let (_grpc, mut events) = engine.subscribe().await;
    let target = engine.sip;
    let peer = tokio::task::spawn_blocking(move || {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let media = UdpSocket::bind("127.0.0.1:0").unwrap();
        media
            .set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 13\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\n",
            media.local_addr().unwrap().port()
        );
        let to = format!("<sip:cn@{target}>");
        sip.send_to(
            request("INVITE", target, &sip, &to, 1, &sdp).as_bytes(),
            target,
        )
        .unwrap();
        let ok = await_message(&sip, "SIP/2.0 200");
        let to = header(&ok, "To").to_string();
        sip.send_to(request("ACK", target, &sip, &to, 1, "").as_bytes(), target)
            .unwrap();
        let body = ok.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        let port: u16 = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next())
            .and_then(|p| p.parse().ok())
            .expect("m=audio port");
        let rtp_to = SocketAddr::from(([127, 0, 0, 1], port));

        // 1 s of audio, CN, 1 s of silence (one update at 400 ms), audio.
        let mut received = Vec::new();
        let (mut seq, mut ts) = (1000u16, 80_000u32);
        let start = Instant::now();
        let mut buf = [0u8; 1500];
        for k in 0..200usize {
            let packet = match k {
                0..=49 | 100..=149 => Some(rtp(0, k == 0 || k == 100, seq, ts, &ulaw_tone(k))),
                50 => Some(rtp(13, false, seq, ts, &[45])),
                70 => Some(rtp(13, false, seq, ts, &[47])),
                _ => None,
            };
            if let Some(p) = packet {
                media.send_to(&p, rtp_to).unwrap();
                seq = seq.wrapping_add(1);
            }
            ts = ts.wrapping_add(160);
            let due = start + Duration::from_millis(20 * (k as u64 + 1));
            while Instant::now() < due {
                if let Ok((n, _)) = media.recv_from(&mut buf) {
                    received.push(buf[..n].to_vec());
                }
            }
        }
        sip.send_to(request("BYE", target, &sip, &to, 2, "").as_bytes(), target)
            .unwrap();
        await_message(&sip, "SIP/2.0 200");
        (body, received)
    });
    let events = events_until_ended(&mut events, Duration::from_secs(40)).await;
    let (answer, received) = peer.await.expect("peer");

    assert!(
        answer.contains("a=rtpmap:13 CN/8000"),
        "CN in the answer: {answer}"
    );
    let m = answer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(m.ends_with(" 0 13"), "{m}");
    let Some(Event::Ended(ended)) = &events.last().unwrap().event else {
        unreachable!()
    };
    let rtp = ended.rtp.expect("counters");
    println!("{rtp:?}");
    assert_eq!(rtp.comfort_noise_received, 2, "{rtp:?}");
    assert_eq!(rtp.packets_lost, 0, "CN is not loss: {rtp:?}");
    assert_eq!(rtp.packets_invalid, 0, "{rtp:?}");

    // The engine's prompt silences came as CN, and audio resumed with a marker.
    let kinds: Vec<(u8, bool)> = received
        .iter()
        .map(|p| (p[1] & 0x7f, p[1] & 0x80 != 0))
        .collect();
    let cn = kinds.iter().filter(|(pt, _)| *pt == 13).count();
    println!("received {} packets, {cn} CN", kinds.len());
    assert!(cn >= 2, "CN from the engine: {kinds:?}");
    assert_eq!(rtp.comfort_noise_sent as usize, cn, "{rtp:?}");
    let resumed = kinds
        .windows(2)
        .filter(|w| w[0].0 == 13 && w[1].0 == 0)
        .count();
    let marked = kinds
        .windows(2)
        .filter(|w| w[0].0 == 13 && w[1] == (0, true))
        .count();
    assert!(
        resumed >= 1 && marked == resumed,
        "audio after CN has the marker: {kinds:?}"
    );
    let levels: Vec<u8> = received
        .iter()
        .filter(|p| p[1] & 0x7f == 13)
        .map(|p| p[12])
        .collect();
    assert!(
        levels.iter().all(|&l| l == 127),
        "digital silence is -127 dBov: {levels:?}"
    );
}
