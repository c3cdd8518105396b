use super::*;

fn send(ep: &mut Endpoint, t0: Instant, req: &Request) -> ClientTxId {
    let id = ep.send_request(t0, req.clone(), peer());
    let sent = transmits(&drain(ep));
    assert_eq!(
        sent,
        vec![(peer(), String::from_utf8(req.to_bytes()).unwrap())]
    );
    id
}

#[test]
fn non_invite_timer_e_doubles_to_t2_then_timer_f() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let id = send(&mut ep, t0, &request("OPTIONS", "z9hG4bKc1", 1, ""));
    let log = run_timers(&mut ep, t0);
    assert_eq!(
        transmit_times(&log),
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
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
fn final_response_stops_retransmission_then_timer_k() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let bye = request("BYE", "z9hG4bKc2", 2, ";tag=totag");
    let id = send(&mut ep, t0, &bye);
    ep.handle_timeout(t0 + secs(0.5));
    assert_eq!(transmits(&drain(&mut ep)).len(), 1);

    let ok = respond_msg(&bye, 200);
    ep.handle_message(t0 + secs(0.6), ok.clone(), peer());
    let out = drain(&mut ep);
    assert!(
        matches!(events(&out).as_slice(), [TxEvent::Response { tx, response }] if *tx == id && response.status == 200)
    );
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(5.6)), "Timer K = T4");
    ep.handle_message(t0 + secs(1.0), ok, peer());
    assert!(drain(&mut ep).is_empty(), "final retransmission absorbed");
    assert!(run_timers(&mut ep, t0).is_empty());
    assert!(ep.is_empty());
}

#[test]
fn provisional_moves_timer_e_to_t2() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let info = request("INFO", "z9hG4bKc3", 3, ";tag=totag");
    send(&mut ep, t0, &info);
    ep.handle_message(t0 + secs(0.2), respond_msg(&info, 100), peer());
    assert_eq!(events(&drain(&mut ep)).len(), 1);
    let log = run_timers(&mut ep, t0);
    assert_eq!(
        transmit_times(&log),
        [500, 4500, 8500, 12500, 16500, 20500, 24500, 28500]
    );
    assert!(matches!(
        timeout_times(&log).as_slice(),
        [(32_000, TxEvent::Timeout { .. })]
    ));
}

#[test]
fn invite_timer_a_doubles_uncapped_then_timer_b() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let id = send(&mut ep, t0, &invite("z9hG4bKc4"));
    let log = run_timers(&mut ep, t0);
    assert_eq!(transmit_times(&log), [500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(
        timeout_times(&log),
        vec![(
            32_000,
            TxEvent::Timeout {
                tx: TxId::Client(id)
            }
        )]
    );
}

#[test]
fn invite_error_final_is_acked_by_the_layer_then_timer_d() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let mut inv = invite("z9hG4bKc5");
    inv.headers.push("Route", "<sip:proxy.example;lr>");
    let id = send(&mut ep, t0, &inv);
    let busy = respond_msg(&inv, 486);
    ep.handle_message(t0 + secs(1.0), busy.clone(), peer());
    let out = drain(&mut ep);
    let sent = transmits(&out);
    assert_eq!(sent.len(), 1);
    let ack = &sent[0].1;
    assert!(ack.starts_with(
        "ACK sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKc5\r\n"
    ));
    assert!(ack.contains("To: <sip:bob@10.0.0.2>;tag=totag\r\n"));
    assert!(ack.contains("CSeq: 1 ACK\r\n"));
    assert!(ack.contains("Route: <sip:proxy.example;lr>\r\n"));
    assert!(matches!(events(&out).as_slice(), [TxEvent::Response { tx, .. }] if *tx == id));

    ep.handle_message(t0 + secs(2.0), busy, peer());
    let out = drain(&mut ep);
    assert_eq!(
        transmits(&out),
        sent,
        "ACK re-sent for the retransmitted 486"
    );
    assert!(events(&out).is_empty());
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(33.0)), "Timer D = 32 s");
    assert!(run_timers(&mut ep, t0).is_empty());
    assert!(ep.is_empty());
}

#[test]
fn invite_provisional_then_2xx_accepted_reports_retransmissions() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let inv = invite("z9hG4bKc6");
    send(&mut ep, t0, &inv);
    ep.handle_message(t0 + secs(0.1), respond_msg(&inv, 180), peer());
    assert_eq!(events(&drain(&mut ep)).len(), 1);
    ep.handle_timeout(t0 + secs(0.5));
    assert!(
        drain(&mut ep).is_empty(),
        "Timer A stops after a provisional"
    );

    ep.handle_message(t0 + secs(3.0), respond_msg(&inv, 200), peer());
    let out = drain(&mut ep);
    assert!(
        transmits(&out).is_empty(),
        "the TU ACKs a 2xx, not the layer"
    );
    assert_eq!(events(&out).len(), 1);
    ep.handle_message(t0 + secs(3.5), respond_msg(&inv, 200), peer());
    assert_eq!(
        events(&drain(&mut ep)).len(),
        1,
        "2xx retransmission reported for re-ACK"
    );
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(35.0)), "Timer M = 64*T1");
    assert!(run_timers(&mut ep, t0).is_empty());
    assert!(ep.is_empty());
}

#[test]
fn invite_stuck_in_proceeding_times_out_on_timer_c() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let inv = invite("z9hG4bKc7");
    let id = send(&mut ep, t0, &inv);
    ep.handle_message(t0 + secs(1.0), respond_msg(&inv, 183), peer());
    drain(&mut ep);
    let log = run_timers(&mut ep, t0);
    assert_eq!(
        timeout_times(&log),
        vec![(
            182_000,
            TxEvent::Timeout {
                tx: TxId::Client(id)
            }
        )]
    );
}

#[test]
fn cancel_and_invite_are_separate_client_transactions() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    let inv = invite("z9hG4bKc8");
    let inv_id = send(&mut ep, t0, &inv);
    let cancel = inv.cancel();
    let cancel_id = send(&mut ep, t0 + secs(0.1), &cancel);
    ep.handle_message(t0 + secs(0.2), respond_msg(&cancel, 200), peer());
    assert!(
        matches!(events(&drain(&mut ep)).as_slice(), [TxEvent::Response { tx, .. }] if *tx == cancel_id)
    );
    ep.handle_message(t0 + secs(0.3), respond_msg(&inv, 487), peer());
    assert!(
        matches!(events(&drain(&mut ep)).as_slice(), [TxEvent::Response { tx, .. }] if *tx == inv_id)
    );
}

#[test]
fn stray_responses_and_acks_are_quiet() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(TimerConfig::default());
    ep.handle_message(t0, respond_msg(&invite("z9hG4bKnobody"), 200), peer());
    assert!(drain(&mut ep).is_empty());
    let ack = request("ACK", "z9hG4bKa", 1, ";tag=x");
    ep.send_request(t0, ack.clone(), peer());
    assert_eq!(transmits(&drain(&mut ep)).len(), 1);
    assert!(ep.is_empty(), "ACK creates no transaction");
    assert_eq!(ep.poll_timeout(), None);
    let _ = Method::Ack;
}
