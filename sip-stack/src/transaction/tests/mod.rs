//! Driven-time tests: `now` is advanced by hand, so every RFC 3261 timer is
//! checked to the millisecond in microseconds of wall time.

mod client;
mod reliable;
mod server;

use std::time::{Duration, Instant};

use super::*;
use crate::message::{parse, Method, Request, Response, SipMessage};

const PEER: &str = "10.0.0.1:5060";

fn peer() -> Peer {
    Peer::udp(PEER.parse().unwrap())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn request(method: &str, branch: &str, cseq: u32, extra: &str) -> Request {
    let text = format!(
        "{method} sip:bob@10.0.0.2 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@10.0.0.1>;tag=ftag\r\n\
         To: <sip:bob@10.0.0.2>{extra}\r\n\
         Call-ID: call-1@10.0.0.1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@10.0.0.1:5060>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match parse(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("test request did not parse: {other:?}"),
    }
}

fn invite(branch: &str) -> Request {
    request("INVITE", branch, 1, "")
}

/// Everything the endpoint wants to do right now.
fn drain(ep: &mut Endpoint) -> Vec<Output> {
    std::iter::from_fn(|| ep.poll_output()).collect()
}

fn transmits(out: &[Output]) -> Vec<(Peer, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Transmit { dest, data } => {
                Some((*dest, String::from_utf8_lossy(data).into_owned()))
            }
            Output::Event(_) => None,
        })
        .collect()
}

fn events(out: &[Output]) -> Vec<TxEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            Output::Transmit { .. } => None,
        })
        .collect()
}

/// Runs every timer to the end; returns (offset from `t0`, outputs) for
/// each wake-up that produced output.
fn run_timers(ep: &mut Endpoint, t0: Instant) -> Vec<(Duration, Vec<Output>)> {
    let mut log = Vec::new();
    let mut guard = 0;
    while let Some(at) = ep.poll_timeout() {
        guard += 1;
        assert!(guard < 1000, "timers never settle");
        ep.handle_timeout(at);
        let out = drain(ep);
        if !out.is_empty() {
            log.push((at - t0, out));
        }
    }
    log
}

/// The offsets (in ms) at which something was transmitted.
fn transmit_times(log: &[(Duration, Vec<Output>)]) -> Vec<u128> {
    log.iter()
        .filter(|(_, out)| !transmits(out).is_empty())
        .map(|(t, _)| t.as_millis())
        .collect()
}

fn timeout_times(log: &[(Duration, Vec<Output>)]) -> Vec<(u128, TxEvent)> {
    log.iter()
        .flat_map(|(t, out)| events(out).into_iter().map(move |e| (t.as_millis(), e)))
        .collect()
}

fn response_to(req: &Request, status: u16, reason: &str) -> Response {
    let mut r = Response::for_request(req, status, reason);
    if status > 100 {
        r.set_to_tag("totag");
    }
    r
}

fn respond_msg(req: &Request, status: u16) -> SipMessage {
    SipMessage::Response(response_to(req, status, "X"))
}

#[test]
fn response_routing_follows_via() {
    let via = |s: &str| crate::message::Via::parse(s).unwrap();
    let src = Peer::udp("198.51.100.7:40000".parse().unwrap());
    let udp = |s: &str| Peer::udp(s.parse().unwrap());
    assert_eq!(
        response_destination(&via("SIP/2.0/UDP 10.0.0.1:5070;rport"), src),
        src
    );
    assert_eq!(
        response_destination(&via("SIP/2.0/UDP 10.0.0.1:5070"), src),
        udp("10.0.0.1:5070")
    );
    assert_eq!(
        response_destination(&via("SIP/2.0/UDP 10.0.0.1"), src),
        udp("10.0.0.1:5060")
    );
    assert_eq!(
        response_destination(&via("SIP/2.0/UDP pbx.example.com:5070"), src),
        src
    );
}

#[test]
fn retransmit_schedule_doubles_to_cap() {
    let t0 = Instant::now();
    let mut r = Retransmit::start(t0, secs(0.5), Some(secs(4.0)));
    let mut fired = Vec::new();
    for ms in (0..=20_000).step_by(100) {
        if r.fire(t0 + Duration::from_millis(ms)) {
            fired.push(ms);
        }
    }
    assert_eq!(fired, vec![500, 1500, 3500, 7500, 11500, 15500, 19500]);
}
