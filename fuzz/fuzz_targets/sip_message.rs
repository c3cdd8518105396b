//! Feeds arbitrary bytes to the SIP parser. Invariants: no panic; whatever
//! parses serializes to something that parses again with the same start
//! line, Call-ID and body; every error can be asked for its stateless reply.
//! The header readers of the dialog extensions (Session-Expires, Min-SE,
//! RSeq, RAck, Refer-To and its embedded Replaces, Require: RFC 4028,
//! 3262, 3515, 3891) and a registration's
//! reading of a REGISTER answer run on whatever parsed, and must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_stack::message::{parse, parse_with_limits, ParseLimits, SipMessage};
use sip_stack::reliable::{RAck, UacReliable, UasReliable};
use sip_stack::session_timer::{self, SessionTimerConfig};
use std::time::{Duration, Instant};

/// A registration fed any response to its REGISTER: the expiry readers
/// (Contact expires, Expires, Min-Expires) and the challenge path.
fn registration_answer(resp: &sip_stack::message::Response) {
    use sip_stack::auth::UserCredentials;
    use sip_stack::registration::{Registration, RegistrationConfig};
    let now = Instant::now();
    let config = RegistrationConfig {
        registrar: "sip:127.0.0.1:5060".into(),
        aor: "sip:engine@127.0.0.1".into(),
        contact: "sip:engine@127.0.0.1:5060".into(),
        expires: 600,
        credentials: Some(UserCredentials::new("engine", "secret")),
        min_backoff: Duration::from_secs(5),
        max_backoff: Duration::from_secs(600),
    };
    let mut reg = Registration::new(config, "127.0.0.1", now);
    if reg.poll(now, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKf").is_some() {
        let _ = reg.on_response(now, resp);
        let _ = reg.deadline();
    }
}

/// The dialog-extension readers on one message.
fn dialog_extensions(msg: &SipMessage) {
    match msg {
        SipMessage::Request(req) => {
            let _ = session_timer::negotiate(req, &SessionTimerConfig::default());
            if let Some(rack) = req.headers.get("RAck").and_then(RAck::parse) {
                let _ = rack.to_string();
            }
            let mut uas = UasReliable::new(1, Duration::from_millis(500));
            let _ = uas.on_prack(req);
            if let Some(refer_to) = req.headers.get("Refer-To") {
                let uri = sip_stack::message::name_addr_uri(refer_to).unwrap_or(refer_to);
                let _ = sip_stack::dialog::request_target(uri);
                if let Ok(target) = sip_stack::replaces::ReferTarget::parse(uri) {
                    let _ = sip_stack::dialog::request_target(&target.uri);
                    if let Some(replaces) = target.replaces {
                        // What we would put in the INVITE parses back the same.
                        let again = sip_stack::replaces::Replaces::parse(&replaces.to_string());
                        assert_eq!(again.as_ref(), Some(&replaces));
                    }
                }
            }
            if let Some(value) = req.headers.get("Replaces") {
                let _ = sip_stack::replaces::Replaces::parse(value);
            }
            let _ = sip_stack::message::unsupported_requirements(&req.headers, &["100rel", "timer"]);
        }
        SipMessage::Response(resp) => {
            let _ = session_timer::from_response(resp);
            registration_answer(resp);
            let _ = UacReliable::default().rack_for(resp);
            let mut resp = resp.clone();
            let mut uas = UasReliable::new(u32::MAX, Duration::from_millis(500));
            let _ = uas.send(Instant::now(), &mut resp);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(msg) => {
            let bytes = msg.to_bytes();
            // Serializing may lengthen the message (compact names expanded,
            // Content-Length added), so re-parse without the size limit.
            let roomy = ParseLimits {
                max_message_size: usize::MAX,
                ..ParseLimits::default()
            };
            let again = match parse_with_limits(&bytes, &roomy) {
                Ok(m) => m,
                Err(e) => panic!("re-parse failed: {e}\n{}", String::from_utf8_lossy(&bytes)),
            };
            match (&msg, &again) {
                (SipMessage::Request(a), SipMessage::Request(b)) => {
                    assert_eq!((&a.method, &a.uri, &a.body), (&b.method, &b.uri, &b.body));
                }
                (SipMessage::Response(a), SipMessage::Response(b)) => {
                    assert_eq!(
                        (a.status, &a.reason, &a.body),
                        (b.status, &b.reason, &b.body)
                    );
                }
                _ => panic!("request/response flipped on re-parse"),
            }
            assert_eq!(msg.headers().call_id(), again.headers().call_id());
            let _ = msg.headers().top_via();
            let _ = msg.headers().contact_uri();
            dialog_extensions(&msg);
        }
        Err(e) => {
            if let Some(reply) = e.reply_400() {
                let _ = reply.to_bytes();
            }
        }
    }
});
