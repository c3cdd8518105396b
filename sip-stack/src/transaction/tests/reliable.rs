//! The same machines over TCP/TLS (RFC 3261 table 4): no hop-by-hop
//! retransmissions, zero Timers D, I, J and K; the 2xx to an INVITE is
//! still retransmitted until the ACK (§13.3.1.4), and B, F, H, L still run.

use super::*;
use crate::transport::{ConnectionId, TransportKind};

fn tcp_peer() -> Peer {
    Peer::new(TransportKind::Tcp, PEER.parse().unwrap()).via_connection(Some(ConnectionId(7)))
}

fn tcp_request(method: &str, branch: &str, cseq: u32, extra: &str) -> Request {
    let mut req = request(method, branch, cseq, extra);
    req.headers
        .set("Via", format!("SIP/2.0/TCP 10.0.0.1:5060;branch={branch}"));
    req
}

#[test]
fn client_invite_is_not_retransmitted_and_timer_b_still_fires() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let id = ep.send_request(t0, tcp_request("INVITE", "z9hG4bKr1", 1, ""), tcp_peer());
    assert_eq!(transmits(&drain(&mut ep)).len(), 1);
    let log = run_timers(&mut ep, t0);
    assert!(transmit_times(&log).is_empty(), "no Timer A on TCP");
    assert_eq!(
        timeout_times(&log),
        vec![(
            32_000,
            TxEvent::Timeout {
                tx: TxId::Client(id)
            }
        )]
    );
    assert!(ep.is_empty());
}

#[test]
fn client_invite_error_is_acked_and_timer_d_is_zero() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let inv = tcp_request("INVITE", "z9hG4bKr2", 1, "");
    ep.send_request(t0, inv.clone(), tcp_peer());
    drain(&mut ep);
    let at = t0 + secs(0.3);
    ep.handle_message(at, respond_msg(&inv, 486), tcp_peer());
    let out = drain(&mut ep);
    let sent = transmits(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, tcp_peer(), "ACK on the INVITE's connection");
    assert!(sent[0].1.starts_with("ACK "));
    assert_eq!(ep.poll_timeout(), Some(at), "Timer D = 0");
    ep.handle_timeout(at);
    assert!(ep.is_empty());
}

#[test]
fn client_non_invite_timer_k_is_zero_and_timer_f_still_fires() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let bye = tcp_request("BYE", "z9hG4bKr3", 2, ";tag=totag");
    ep.send_request(t0, bye.clone(), tcp_peer());
    drain(&mut ep);
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(32.0)), "Timer F only");
    ep.handle_message(t0 + secs(0.1), respond_msg(&bye, 200), tcp_peer());
    assert_eq!(events(&drain(&mut ep)).len(), 1);
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(0.1)), "Timer K = 0");
    ep.handle_timeout(t0 + secs(0.1));
    assert!(ep.is_empty());

    let opt = ep.send_request(t0, tcp_request("OPTIONS", "z9hG4bKr4", 3, ""), tcp_peer());
    drain(&mut ep);
    let log = run_timers(&mut ep, t0);
    assert!(transmit_times(&log).is_empty(), "no Timer E on TCP");
    assert_eq!(
        timeout_times(&log),
        vec![(
            32_000,
            TxEvent::Timeout {
                tx: TxId::Client(opt)
            }
        )]
    );
}

fn start_tcp_invite(ep: &mut Endpoint, t0: Instant, branch: &str) -> (ServerTxId, Request) {
    let req = tcp_request("INVITE", branch, 1, "");
    ep.handle_message(t0, SipMessage::Request(req.clone()), tcp_peer());
    let out = drain(ep);
    assert_eq!(
        transmits(&out)[0].0,
        tcp_peer(),
        "100 Trying on the connection"
    );
    match events(&out).as_slice() {
        [TxEvent::NewRequest { tx, source, .. }] => {
            assert_eq!(*source, tcp_peer());
            (*tx, req)
        }
        other => panic!("expected NewRequest, got {other:?}"),
    }
}

#[test]
fn server_2xx_is_still_retransmitted_until_the_ack() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let (tx, req) = start_tcp_invite(&mut ep, t0, "z9hG4bKr5");
    ep.respond(t0, tx, response_to(&req, 200, "OK")).unwrap();
    assert_eq!(transmits(&drain(&mut ep))[0].0, tcp_peer());
    ep.handle_timeout(t0 + secs(0.5));
    assert_eq!(transmits(&drain(&mut ep)).len(), 1, "RFC 3261 §13.3.1.4");
    ep.handle_timeout(t0 + secs(1.5));
    assert_eq!(transmits(&drain(&mut ep)).len(), 1);
    let ack = SipMessage::Request(tcp_request("ACK", "z9hG4bKr5ack", 1, ";tag=totag"));
    ep.handle_message(t0 + secs(2.0), ack, tcp_peer());
    assert!(matches!(
        events(&drain(&mut ep)).as_slice(),
        [TxEvent::Ack { .. }]
    ));
    let log = run_timers(&mut ep, t0);
    assert!(transmit_times(&log).is_empty(), "ACKed: no more 2xx");
    assert!(timeout_times(&log).is_empty());
    assert!(ep.is_empty(), "Timer L ended it");
}

#[test]
fn server_invite_error_has_no_timer_g_and_zero_timer_i() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let (tx, req) = start_tcp_invite(&mut ep, t0, "z9hG4bKr6");
    ep.respond(t0, tx, response_to(&req, 486, "Busy Here"))
        .unwrap();
    drain(&mut ep);
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(32.0)), "Timer H only");
    let ack = SipMessage::Request(tcp_request("ACK", "z9hG4bKr6", 1, ";tag=totag"));
    ep.handle_message(t0 + secs(1.0), ack, tcp_peer());
    assert!(drain(&mut ep).is_empty(), "ACK for a non-2xx is absorbed");
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(1.0)), "Timer I = 0");
    ep.handle_timeout(t0 + secs(1.0));
    assert!(ep.is_empty());

    // Without the ACK, Timer H still gives up after 64·T1, silently resent never.
    let (tx, req) = start_tcp_invite(&mut ep, t0, "z9hG4bKr7");
    ep.respond(t0, tx, response_to(&req, 486, "Busy Here"))
        .unwrap();
    drain(&mut ep);
    let log = run_timers(&mut ep, t0);
    assert!(transmit_times(&log).is_empty(), "no Timer G on TCP");
    assert_eq!(
        timeout_times(&log),
        vec![(
            32_000,
            TxEvent::Timeout {
                tx: TxId::Server(tx)
            }
        )]
    );
}

#[test]
fn server_non_invite_timer_j_is_zero() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let opt = tcp_request("OPTIONS", "z9hG4bKr8", 1, "");
    ep.handle_message(t0, SipMessage::Request(opt.clone()), tcp_peer());
    let [TxEvent::NewRequest { tx, .. }] = events(&drain(&mut ep))[..] else {
        panic!("expected NewRequest");
    };
    ep.respond(t0, tx, response_to(&opt, 200, "OK")).unwrap();
    assert_eq!(transmits(&drain(&mut ep))[0].0, tcp_peer());
    assert_eq!(ep.poll_timeout(), Some(t0), "Timer J = 0");
    ep.handle_timeout(t0);
    assert!(ep.is_empty());
}

#[test]
fn stream_responses_use_the_connection_then_the_sent_by_port() {
    let via = |s: &str| crate::message::Via::parse(s).unwrap();
    let src = Peer::new(TransportKind::Tls, "198.51.100.7:40000".parse().unwrap())
        .via_connection(Some(ConnectionId(3)));
    let dest = response_destination(&via("SIP/2.0/TLS 10.0.0.1:5071;rport"), src);
    assert_eq!(dest.connection, Some(ConnectionId(3)));
    assert_eq!(dest.transport, TransportKind::Tls);
    assert_eq!(
        dest.addr,
        "198.51.100.7:5071".parse().unwrap(),
        "source IP, sent-by port"
    );
    let dest = response_destination(&via("SIP/2.0/TLS pbx.example.com"), src);
    assert_eq!(
        dest.addr,
        "198.51.100.7:5061".parse().unwrap(),
        "TLS default port"
    );
}

#[test]
fn a_failed_connection_ends_its_waiting_transactions_at_once() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let inv = ep.send_request(t0, tcp_request("INVITE", "z9hG4bKr9", 1, ""), tcp_peer());
    let other = Peer::new(TransportKind::Tcp, "10.0.0.9:5060".parse().unwrap());
    ep.send_request(t0, tcp_request("OPTIONS", "z9hG4bKr10", 2, ""), other);
    drain(&mut ep);
    ep.handle_transport_error(Peer::new(TransportKind::Tcp, PEER.parse().unwrap()));
    assert_eq!(
        events(&drain(&mut ep)),
        vec![TxEvent::Timeout {
            tx: TxId::Client(inv)
        }]
    );
    assert_eq!(ep.len(), 1, "the transaction to another peer lives on");
}
