//! SIP signalling costs per call setup: parsing the INVITE, writing the
//! 200 OK, answering the SDP offer. A contact-center node sees a few
//! hundred call attempts per second at peak, so µs here are headroom, not
//! a bottleneck; the benches guard against accidental quadratic parsing.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion};
use sip_stack::message::{parse, Response, SipMessage};
use sip_stack::sdp::{answer_audio, AudioCodec, SessionDescription};

const SDP_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 10.0.0.1\r\n\
s=-\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 96 9 0 8 101\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn invite() -> Vec<u8> {
    let head = format!(
        "INVITE sip:+15551230000@10.0.0.2:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy1;rport\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKcarrier1\r\n\
         Record-Route: <sip:10.0.0.9;lr>\r\n\
         Max-Forwards: 69\r\n\
         From: \"Caller\" <sip:+15559870000@10.0.0.1>;tag=8d7f6e\r\n\
         To: <sip:+15551230000@10.0.0.2>\r\n\
         Call-ID: 3f2a9c81e7b04d5a@10.0.0.1\r\n\
         CSeq: 101 INVITE\r\n\
         Contact: <sip:+15559870000@10.0.0.1:5060>\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n\
         Supported: timer, 100rel\r\n\
         User-Agent: carrier-sbc/1.0\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n",
        SDP_OFFER.len()
    );
    [head.as_bytes(), SDP_OFFER.as_bytes()].concat()
}

fn sip(c: &mut Criterion) {
    let bytes = invite();
    c.bench_function("parse INVITE with SDP", |b| {
        b.iter(|| parse(black_box(&bytes)).is_ok())
    });

    let Ok(SipMessage::Request(req)) = parse(&bytes) else {
        panic!("bench INVITE must parse");
    };
    c.bench_function("build and serialize 200 OK", |b| {
        b.iter(|| {
            let mut ok = Response::for_request(black_box(&req), 200, "OK");
            ok.set_to_tag("a1b2c3d4");
            ok.headers
                .push("Contact", "<sip:switchboard@10.0.0.2:5060>");
            ok.to_bytes()
        })
    });

    let codecs = [
        AudioCodec::Opus,
        AudioCodec::G722,
        AudioCodec::Pcmu,
        AudioCodec::Pcma,
    ];
    let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    c.bench_function("parse and answer SDP offer", |b| {
        b.iter(|| {
            let offer = SessionDescription::parse(black_box(SDP_OFFER)).ok()?;
            let (answer, _) = answer_audio(&offer, &codecs, local, 20_000, 42).ok()?;
            Some(answer.to_string())
        })
    });
}

criterion_group!(benches, sip);
criterion_main!(benches);
