//! Our client against our server, and every way a request should fail.

use std::time::{Duration, SystemTime};

use super::*;

pub(super) const URI: &str = "sip:queue@pbx.example.com";

pub(super) fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

pub(super) fn server() -> DigestServer {
    DigestServer::new(DigestServerConfig::new(
        "pbx.example.com",
        b"s3cret".to_vec(),
    ))
}

pub(super) fn agent() -> UserCredentials {
    UserCredentials::new("agent17", "hunter2")
}

pub(super) fn lookup(user: &str, realm: &str) -> Option<Secret> {
    (user == "agent17" && realm == "pbx.example.com").then(|| Secret::Password("hunter2".into()))
}

/// Challenge at `issued`, answer as `creds` for `method`/`uri`.
fn answer(
    server: &DigestServer,
    issued: SystemTime,
    method: &Method,
    uri: &str,
    creds: &UserCredentials,
) -> String {
    let challenges = server.challenge(issued, false);
    let refs: Vec<&str> = challenges.iter().map(String::as_str).collect();
    let c = choose_challenge(&refs).expect("a usable challenge");
    DigestClient::new()
        .respond(&c, method, uri, creds, b"")
        .unwrap()
}

fn unauthorized(v: Verdict) -> Unauthorized {
    match v {
        Verdict::Unauthorized(u) => u,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[test]
fn default_offers_sha256_then_md5_and_client_picks_sha256() {
    let s = server();
    let challenges = s.challenge(t0(), false);
    assert_eq!(challenges.len(), 2);
    assert!(
        challenges[0].contains("algorithm=SHA-256"),
        "{}",
        challenges[0]
    );
    assert!(challenges[1].contains("algorithm=MD5"));
    assert!(challenges
        .iter()
        .all(|c| c.contains("qop=\"auth\"") && !c.contains("stale")));
    // Whatever the order, the stronger wins.
    let reversed = [challenges[1].as_str(), challenges[0].as_str()];
    assert_eq!(
        choose_challenge(&reversed).unwrap().algorithm,
        Algorithm::Sha256
    );
    assert!(s.challenge(t0(), true)[0].ends_with("stale=true"));
}

#[test]
fn client_answers_server_challenge() {
    let mut s = server();
    let auth = answer(&s, t0(), &Method::Invite, URI, &agent());
    let v = s.verify(
        &Method::Invite,
        URI,
        &auth,
        lookup,
        t0() + Duration::from_secs(2),
    );
    assert_eq!(
        v,
        Verdict::Ok {
            username: "agent17".into()
        }
    );
}

#[test]
fn md5_only_server_and_precomputed_ha1() {
    let mut config = DigestServerConfig::new("pbx.example.com", b"k".to_vec());
    config.algorithms = vec![Algorithm::Md5Sess, Algorithm::Md5];
    let mut s = DigestServer::new(config);
    let stored = Secret::Ha1 {
        md5: Some(ha1(Algorithm::Md5, "agent17", "pbx.example.com", "hunter2").to_uppercase()),
        sha256: None,
    };
    let auth = answer(&s, t0(), &Method::Register, URI, &agent());
    assert!(auth.contains("algorithm=MD5-sess"));
    let v = s.verify(
        &Method::Register,
        URI,
        &auth,
        |_, _| Some(stored.clone()),
        t0(),
    );
    assert_eq!(
        v,
        Verdict::Ok {
            username: "agent17".into()
        }
    );
    // An HA1 for the other hash only is no secret for this one.
    let sha_only = Secret::Ha1 {
        md5: None,
        sha256: Some("00".repeat(32)),
    };
    let auth = answer(&s, t0(), &Method::Register, URI, &agent());
    let v = s.verify(
        &Method::Register,
        URI,
        &auth,
        |_, _| Some(sha_only.clone()),
        t0(),
    );
    assert_eq!(unauthorized(v), Unauthorized::UnknownUser);
}

#[test]
fn wrong_password_and_unknown_user() {
    let mut s = server();
    let auth = answer(
        &s,
        t0(),
        &Method::Invite,
        URI,
        &UserCredentials::new("agent17", "hunter3"),
    );
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, URI, &auth, lookup, t0())),
        Unauthorized::WrongResponse
    );
    let auth = answer(
        &s,
        t0(),
        &Method::Invite,
        URI,
        &UserCredentials::new("mallory", "hunter2"),
    );
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, URI, &auth, lookup, t0())),
        Unauthorized::UnknownUser
    );
}

#[test]
fn tampered_method_or_uri() {
    let mut s = server();
    let auth = answer(&s, t0(), &Method::Invite, URI, &agent());
    // Same credentials on a BYE: the response covers the method.
    assert_eq!(
        unauthorized(s.verify(&Method::Bye, URI, &auth, lookup, t0())),
        Unauthorized::WrongResponse
    );
    // Same credentials on another Request-URI: digest-uri no longer matches.
    let other = "sip:premium@pbx.example.com";
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, other, &auth, lookup, t0())),
        Unauthorized::UriMismatch
    );
    // Rewriting the digest-uri inside the header breaks the response.
    let forged = auth.replace(URI, other);
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, other, &forged, lookup, t0())),
        Unauthorized::WrongResponse
    );
    // The untouched original still works once.
    assert!(matches!(
        s.verify(&Method::Invite, URI, &auth, lookup, t0()),
        Verdict::Ok { .. }
    ));
}

#[test]
fn expired_nonce_is_stale_only_if_response_is_right() {
    let mut s = server();
    let auth = answer(&s, t0(), &Method::Invite, URI, &agent());
    let later = t0() + Duration::from_secs(301);
    assert_eq!(
        s.verify(&Method::Invite, URI, &auth, lookup, later),
        Verdict::Stale
    );
    let wrong = answer(
        &s,
        t0(),
        &Method::Invite,
        URI,
        &UserCredentials::new("agent17", "nope"),
    );
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, URI, &wrong, lookup, later)),
        Unauthorized::WrongResponse
    );
    // At exactly the lifetime it is still good.
    let auth = answer(&s, t0(), &Method::Invite, URI, &agent());
    let edge = t0() + Duration::from_secs(300);
    assert!(matches!(
        s.verify(&Method::Invite, URI, &auth, lookup, edge),
        Verdict::Ok { .. }
    ));
    // A nonce from far in the future (another node's clock gone wrong).
    let auth = answer(
        &s,
        t0() + Duration::from_secs(3600),
        &Method::Invite,
        URI,
        &agent(),
    );
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, URI, &auth, lookup, t0())),
        Unauthorized::BadNonce
    );
}

#[test]
fn replayed_nc_is_refused_and_higher_nc_accepted() {
    let mut s = server();
    let challenges = s.challenge(t0(), false);
    let c = Challenge::parse(&challenges[0]).unwrap();
    let mut client = DigestClient::new();
    let first = client
        .respond(&c, &Method::Invite, URI, &agent(), b"")
        .unwrap();
    assert!(matches!(
        s.verify(&Method::Invite, URI, &first, lookup, t0()),
        Verdict::Ok { .. }
    ));
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, URI, &first, lookup, t0())),
        Unauthorized::Replay
    );
    // The same client reusing the nonce counts up: nc=2 is fine.
    let second = client
        .respond(&c, &Method::Invite, URI, &agent(), b"")
        .unwrap();
    assert!(second.contains("nc=00000002"));
    assert!(matches!(
        s.verify(&Method::Invite, URI, &second, lookup, t0()),
        Verdict::Ok { .. }
    ));
}

#[test]
fn forged_nonce_is_refused() {
    let mut s = server();
    let auth = answer(&s, t0(), &Method::Invite, URI, &agent());
    let c = Credentials::parse(&auth).unwrap();
    // Move the timestamp forward, keep the MAC: the MAC no longer fits.
    let mut nonce = c.nonce.clone();
    nonce.replace_range(15..16, if &nonce[15..16] == "0" { "1" } else { "0" });
    for forged_nonce in [nonce, "0".repeat(64), "x".into(), String::new()] {
        let forged = auth.replace(&c.nonce, &forged_nonce);
        assert_eq!(
            unauthorized(s.verify(&Method::Invite, URI, &forged, lookup, t0())),
            Unauthorized::BadNonce
        );
    }
    // A nonce from a server with another secret.
    let other = DigestServer::new(DigestServerConfig::new(
        "pbx.example.com",
        b"other".to_vec(),
    ));
    let auth = answer(&other, t0(), &Method::Invite, URI, &agent());
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, URI, &auth, lookup, t0())),
        Unauthorized::BadNonce
    );
}

#[test]
fn wrong_realm_unoffered_algorithm_and_no_qop() {
    let mut s = server();
    let mut other_realm = DigestServerConfig::new("elsewhere", b"s3cret".to_vec());
    other_realm.algorithms = vec![Algorithm::Sha256Sess];
    let auth = answer(
        &DigestServer::new(other_realm),
        t0(),
        &Method::Invite,
        URI,
        &agent(),
    );
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, URI, &auth, lookup, t0())),
        Unauthorized::WrongRealm
    );
    // RFC 2069 credentials (no qop, so no nc): refused, replayable.
    let c = Challenge::parse(&s.challenge(t0(), false)[0]).unwrap();
    let legacy = Challenge { qop: vec![], ..c };
    let auth = DigestClient::new()
        .respond(&legacy, &Method::Invite, URI, &agent(), b"")
        .unwrap();
    assert_eq!(
        unauthorized(s.verify(&Method::Invite, URI, &auth, lookup, t0())),
        Unauthorized::NotOffered
    );
    let garbage = s.verify(
        &Method::Invite,
        URI,
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        lookup,
        t0(),
    );
    assert_eq!(
        unauthorized(garbage),
        Unauthorized::Malformed(AuthError::NotDigest)
    );
}

#[test]
fn replay_map_is_bounded_and_eviction_never_reopens_a_replay() {
    let mut config = DigestServerConfig::new("pbx.example.com", b"s3cret".to_vec());
    config.max_tracked_nonces = 4;
    let mut s = DigestServer::new(config);
    let old = answer(&s, t0(), &Method::Invite, URI, &agent());
    assert!(matches!(
        s.verify(&Method::Invite, URI, &old, lookup, t0()),
        Verdict::Ok { .. }
    ));
    for i in 1..=10 {
        let t = t0() + Duration::from_secs(i);
        let auth = answer(&s, t, &Method::Invite, URI, &agent());
        assert!(matches!(
            s.verify(&Method::Invite, URI, &auth, lookup, t),
            Verdict::Ok { .. }
        ));
        assert!(s.tracked_nonces() <= 4);
    }
    // `old` was evicted; replaying it must not succeed.
    assert_eq!(
        s.verify(
            &Method::Invite,
            URI,
            &old,
            lookup,
            t0() + Duration::from_secs(11)
        ),
        Verdict::Stale
    );
}
