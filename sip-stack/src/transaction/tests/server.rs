use super::*;

const TIMER_G_TIMES: [u128; 10] = [
    500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
];

/// Feeds an INVITE and returns its transaction id after checking the
/// automatic 100 Trying and the NewRequest event.
fn start_invite(ep: &mut Endpoint, t0: Instant, branch: &str) -> (ServerTxId, Request) {
    let req = invite(branch);
    ep.handle_message(t0, SipMessage::Request(req.clone()), peer());
    let out = drain(ep);
    let sent = transmits(&out);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.starts_with("SIP/2.0 100 Trying\r\n"));
    assert_eq!(sent[0].0, peer());
    match events(&out).as_slice() {
        [TxEvent::NewRequest {
            tx,
            request,
            source,
        }] => {
            assert_eq!(request, &req);
            assert_eq!(*source, peer());
            (*tx, req)
        }
        other => panic!("expected NewRequest, got {other:?}"),
    }
}

fn ack_2xx(branch: &str) -> SipMessage {
    SipMessage::Request(request("ACK", branch, 1, ";tag=totag"))
}

#[test]
fn invite_2xx_retransmitted_on_timer_g_schedule_until_timer_l() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let (tx, req) = start_invite(&mut ep, t0, "z9hG4bKinv1");
    ep.respond(t0, tx, response_to(&req, 200, "OK")).unwrap();
    let sent = transmits(&drain(&mut ep));
    assert!(sent[0].1.starts_with("SIP/2.0 200 OK\r\n"));
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(0.5)));

    let log = run_timers(&mut ep, t0);
    assert_eq!(transmit_times(&log), TIMER_G_TIMES);
    assert_eq!(
        timeout_times(&log),
        vec![(
            32_000,
            TxEvent::Timeout {
                tx: TxId::Server(tx)
            }
        )]
    );
    assert!(ep.is_empty());
    assert_eq!(ep.poll_timeout(), None);
}

#[test]
fn ack_stops_2xx_retransmission() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let (tx, req) = start_invite(&mut ep, t0, "z9hG4bKinv2");
    ep.respond(t0, tx, response_to(&req, 200, "OK")).unwrap();
    drain(&mut ep);
    ep.handle_timeout(t0 + secs(0.5));
    assert_eq!(transmits(&drain(&mut ep)).len(), 1);

    // The 2xx ACK has its own branch: matched by Call-ID, CSeq, From tag.
    ep.handle_message(t0 + secs(0.7), ack_2xx("z9hG4bKack"), peer());
    let out = drain(&mut ep);
    assert!(matches!(events(&out).as_slice(), [TxEvent::Ack { source, .. }] if *source == peer()));
    ep.handle_message(t0 + secs(0.8), ack_2xx("z9hG4bKack"), peer());
    assert!(drain(&mut ep).is_empty(), "a duplicate ACK is absorbed");

    // An INVITE retransmission still gets the 2xx; nothing else happens
    // until Timer L quietly removes the transaction.
    ep.handle_message(t0 + secs(1.0), SipMessage::Request(req), peer());
    assert!(transmits(&drain(&mut ep))[0]
        .1
        .starts_with("SIP/2.0 200 OK"));
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(32.0)));
    assert!(run_timers(&mut ep, t0).is_empty());
    assert!(ep.is_empty());
}

#[test]
fn invite_retransmission_while_proceeding_resends_last_provisional() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let (tx, req) = start_invite(&mut ep, t0, "z9hG4bKinv3");
    ep.handle_message(t0 + secs(0.1), SipMessage::Request(req.clone()), peer());
    assert!(transmits(&drain(&mut ep))[0]
        .1
        .starts_with("SIP/2.0 100 Trying"));

    ep.respond(t0 + secs(0.2), tx, response_to(&req, 180, "Ringing"))
        .unwrap();
    let ringing = transmits(&drain(&mut ep));
    ep.handle_message(t0 + secs(0.6), SipMessage::Request(req.clone()), peer());
    let out = drain(&mut ep);
    assert_eq!(transmits(&out), ringing);
    assert!(events(&out).is_empty(), "retransmissions never surface");
    assert_eq!(ep.poll_timeout(), None, "Proceeding has no timer");
    assert_eq!(
        ep.respond(t0, ServerTxId(999), response_to(&req, 200, "OK")),
        Err(TxError::UnknownTransaction(ServerTxId(999)))
    );
    assert_eq!(
        ep.respond(t0, tx, response_to(&req, 99, "?")),
        Err(TxError::InvalidStatus(99))
    );
}

#[test]
fn invite_error_response_timer_g_then_timer_h() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let (tx, req) = start_invite(&mut ep, t0, "z9hG4bKinv4");
    ep.respond(t0, tx, response_to(&req, 486, "Busy Here"))
        .unwrap();
    drain(&mut ep);
    assert_eq!(
        ep.respond(t0, tx, response_to(&req, 500, "X")),
        Err(TxError::FinalAlreadySent(tx))
    );
    let log = run_timers(&mut ep, t0);
    assert_eq!(transmit_times(&log), TIMER_G_TIMES);
    assert_eq!(
        timeout_times(&log),
        vec![(
            32_000,
            TxEvent::Timeout {
                tx: TxId::Server(tx)
            }
        )]
    );
    assert!(ep.is_empty());
}

#[test]
fn ack_of_error_response_confirms_then_timer_i() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let (tx, req) = start_invite(&mut ep, t0, "z9hG4bKinv5");
    ep.respond(t0, tx, response_to(&req, 603, "Decline"))
        .unwrap();
    drain(&mut ep);
    ep.handle_timeout(t0 + secs(0.5));
    assert_eq!(transmits(&drain(&mut ep)).len(), 1);

    // Non-2xx ACK: same branch as the INVITE, absorbed by the transaction.
    let ack = SipMessage::Request(request("ACK", "z9hG4bKinv5", 1, ";tag=totag"));
    ep.handle_message(t0 + secs(1.0), ack.clone(), peer());
    assert!(drain(&mut ep).is_empty());
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(6.0)), "Timer I = T4");
    ep.handle_message(t0 + secs(2.0), ack, peer());
    assert!(drain(&mut ep).is_empty());
    assert!(run_timers(&mut ep, t0).is_empty());
    assert!(ep.is_empty());
}

#[test]
fn non_invite_server_absorbs_then_timer_j() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let opt = request("OPTIONS", "z9hG4bKopt", 5, "");
    ep.handle_message(t0, SipMessage::Request(opt.clone()), peer());
    let out = drain(&mut ep);
    assert!(
        transmits(&out).is_empty(),
        "no automatic 100 for non-INVITE"
    );
    let [TxEvent::NewRequest { tx, .. }] = events(&out)[..] else {
        panic!("expected NewRequest");
    };
    ep.handle_message(t0 + secs(0.5), SipMessage::Request(opt.clone()), peer());
    assert!(
        drain(&mut ep).is_empty(),
        "Trying: retransmission absorbed silently"
    );

    ep.respond(t0 + secs(1.0), tx, response_to(&opt, 200, "OK"))
        .unwrap();
    let ok = transmits(&drain(&mut ep));
    ep.handle_message(t0 + secs(2.0), SipMessage::Request(opt), peer());
    assert_eq!(transmits(&drain(&mut ep)), ok);
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(33.0)), "Timer J = 64*T1");
    assert!(run_timers(&mut ep, t0).is_empty());
    assert!(ep.is_empty());
}

#[test]
fn cancel_answers_200_and_tells_the_tu() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let (tx, req) = start_invite(&mut ep, t0, "z9hG4bKinv6");
    ep.respond(t0, tx, response_to(&req, 180, "Ringing"))
        .unwrap();
    drain(&mut ep);

    let cancel = req.cancel();
    ep.handle_message(t0 + secs(1.0), SipMessage::Request(cancel.clone()), peer());
    let out = drain(&mut ep);
    let sent = transmits(&out);
    assert!(sent[0].1.starts_with("SIP/2.0 200 OK\r\n"));
    assert!(sent[0].1.contains("CSeq: 1 CANCEL\r\n"));
    assert!(
        sent[0].1.contains(";tag=totag\r\n"),
        "same To tag as the INVITE's responses"
    );
    assert_eq!(events(&out), vec![TxEvent::Cancelled { invite_tx: tx }]);

    // A retransmitted CANCEL gets the same 200 and no new event.
    ep.handle_message(t0 + secs(1.5), SipMessage::Request(cancel), peer());
    let out = drain(&mut ep);
    assert_eq!(transmits(&out), sent);
    assert!(events(&out).is_empty());

    ep.respond(
        t0 + secs(2.0),
        tx,
        response_to(&req, 487, "Request Terminated"),
    )
    .unwrap();
    assert!(transmits(&drain(&mut ep))[0].1.starts_with("SIP/2.0 487"));
}

#[test]
fn cancel_without_invite_gets_481() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let cancel = request("CANCEL", "z9hG4bKnone", 1, "");
    ep.handle_message(t0, SipMessage::Request(cancel), peer());
    let out = drain(&mut ep);
    assert!(transmits(&out)[0].1.starts_with("SIP/2.0 481 "));
    assert!(events(&out).is_empty());
}

#[test]
fn unmatched_ack_goes_to_the_tu() {
    let mut ep = Endpoint::new(TimerConfig::default());
    ep.handle_message(Instant::now(), ack_2xx("z9hG4bKlone"), peer());
    assert!(matches!(
        events(&drain(&mut ep)).as_slice(),
        [TxEvent::Ack { .. }]
    ));
}

#[test]
fn transaction_limit_answers_503_statelessly() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    ep.set_max_transactions(1);
    start_invite(&mut ep, t0, "z9hG4bKfirst");
    ep.handle_message(t0, SipMessage::Request(invite("z9hG4bKsecond")), peer());
    let out = drain(&mut ep);
    assert!(events(&out).is_empty());
    let sent = transmits(&out);
    assert!(sent[0].1.starts_with("SIP/2.0 503 Service Unavailable\r\n"));
    assert!(sent[0].1.contains("Retry-After: 5\r\n"));
    assert_eq!(ep.len(), 1);
}

#[test]
fn rport_sends_responses_to_the_source() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let mut req = request("OPTIONS", "z9hG4bKnat", 1, "");
    req.headers.set(
        "Via",
        "SIP/2.0/UDP 192.168.1.5:5060;branch=z9hG4bKnat;rport",
    );
    let nat = Peer::udp("203.0.113.9:31000".parse().unwrap());
    ep.handle_message(t0, SipMessage::Request(req.clone()), nat);
    let [TxEvent::NewRequest { tx, .. }] = events(&drain(&mut ep))[..] else {
        panic!("expected NewRequest");
    };
    ep.respond(t0, tx, response_to(&req, 200, "OK")).unwrap();
    assert_eq!(transmits(&drain(&mut ep))[0].0, nat);
}

#[test]
fn legacy_rfc2543_branches_still_match() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let mut req = request("OPTIONS", "x", 1, "");
    req.headers.set("Via", "SIP/2.0/UDP 10.0.0.1:5060");
    ep.handle_message(t0, SipMessage::Request(req.clone()), peer());
    assert_eq!(events(&drain(&mut ep)).len(), 1);
    ep.handle_message(t0, SipMessage::Request(req), peer());
    assert!(
        drain(&mut ep).is_empty(),
        "retransmission recognised without a branch"
    );
}

#[test]
fn request_method_is_part_of_the_key() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    start_invite(&mut ep, t0, "z9hG4bKsame");
    let bye = request("BYE", "z9hG4bKsame", 2, ";tag=totag");
    ep.handle_message(t0, SipMessage::Request(bye), peer());
    assert!(matches!(
        events(&drain(&mut ep)).as_slice(),
        [TxEvent::NewRequest { request, .. }] if request.method == Method::Bye
    ));
}
