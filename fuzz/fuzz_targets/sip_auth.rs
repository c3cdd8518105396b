//! Feeds arbitrary bytes to the digest auth parsers, verifier and client.
//! Invariants: no panic; a parsed challenge or credentials value formats to
//! something that parses back to the same thing; the verifier never says Ok
//! to input it did not issue a nonce for; the client answers any challenge
//! `choose_challenge` picks without panicking.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use sip_stack::auth::{
    choose_challenge, AuthLimits, Challenge, Credentials, DigestClient, DigestServer,
    DigestServerConfig, Secret, UserCredentials, Verdict,
};
use sip_stack::message::Method;

fuzz_target!(|data: &[u8]| {
    let limits = AuthLimits::default();
    // Formatting may lengthen a value (escapes), so re-parse without the size limit.
    let roomy = AuthLimits {
        max_len: usize::MAX,
        ..AuthLimits::default()
    };
    if let Ok(c) = Challenge::parse_bytes(data, &limits) {
        let again = Challenge::parse_bytes(c.to_string().as_bytes(), &roomy)
            .unwrap_or_else(|e| panic!("challenge re-parse failed: {e}: {c}"));
        // Unknown qop options are not written back out.
        assert_eq!(Challenge { unknown_qop: c.unknown_qop, ..again }, c);
    }
    if let Ok(c) = Credentials::parse_bytes(data, &limits) {
        let again = Credentials::parse_bytes(c.to_string().as_bytes(), &roomy)
            .unwrap_or_else(|e| panic!("credentials re-parse failed: {e}: {c}"));
        assert_eq!(again, c);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let mut server = DigestServer::new(DigestServerConfig::new("r", b"fuzz".to_vec()));
    let lookup = |_: &str, _: &str| Some(Secret::Password("pw".into()));
    let verdict = server.verify(&Method::Invite, "sip:a@b", text, lookup, now);
    assert!(!matches!(verdict, Verdict::Ok { .. } | Verdict::Stale), "{verdict:?}");

    let values: Vec<&str> = text.lines().collect();
    if let Some(c) = choose_challenge(&values) {
        let creds = UserCredentials::new("u", "pw");
        let answer = DigestClient::new()
            .respond(&c, &Method::Invite, "sip:a@b", &creds, data)
            .expect("a chosen challenge is answerable");
        Credentials::parse_bytes(answer.as_bytes(), &roomy).expect("our answer parses");
    }
});
