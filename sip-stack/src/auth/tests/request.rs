//! The transaction user's helpers: retrying a request after a 401/407.

use super::round_trip::{agent, lookup, server, t0, URI};
use super::*;
use crate::message::{Request, Response};

fn invite() -> Request {
    let mut r = Request::new(Method::Invite, URI);
    r.headers
        .push("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKold;rport");
    r.headers
        .push("From", "<sip:agent17@pbx.example.com>;tag=a");
    r.headers.push("To", "<sip:queue@pbx.example.com>");
    r.headers.push("Call-ID", "c1@10.0.0.1");
    r.headers.push("CSeq", "1 INVITE");
    r
}

#[test]
fn authorize_request_for_401_and_407() {
    let mut s = server();
    for (status, challenge, credentials) in [
        (401, "WWW-Authenticate", "Authorization"),
        (407, "Proxy-Authenticate", "Proxy-Authorization"),
    ] {
        let mut req = invite();
        let mut resp = Response::for_request(&req, status, "Unauthorized");
        for c in s.challenge(t0(), false) {
            resp.headers.push(challenge, c);
        }
        authorize_request(&mut req, &resp, &agent()).unwrap();
        assert_eq!(req.cseq(), Some((2, Method::Invite)));
        let branch = req.top_via().unwrap().branch.unwrap();
        assert!(branch.starts_with("z9hG4bK") && branch != "z9hG4bKold");
        assert_eq!(req.headers.get_all(credentials).count(), 1);
        let value = req.headers.get(credentials).unwrap();
        assert!(value.contains("algorithm=SHA-256"));
        assert!(matches!(
            s.verify(&req.method, &req.uri, value, lookup, t0()),
            Verdict::Ok { .. }
        ));
        // A second challenge (stale) replaces the credentials for that realm.
        let mut again = Response::for_request(&req, status, "Unauthorized");
        again
            .headers
            .push(challenge, s.challenge(t0(), true).remove(1));
        authorize_request(&mut req, &again, &agent()).unwrap();
        assert_eq!(req.headers.get_all(credentials).count(), 1);
        assert!(req
            .headers
            .get(credentials)
            .unwrap()
            .contains("algorithm=MD5"));
        assert_eq!(req.cseq(), Some((3, Method::Invite)));
    }
    let ok = Response::for_request(&invite(), 200, "OK");
    assert_eq!(
        authorize_request(&mut invite(), &ok, &agent()),
        Err(AuthError::NotAChallenge(200))
    );
    let mut bare = Response::for_request(&invite(), 401, "Unauthorized");
    bare.headers.push("WWW-Authenticate", "Basic realm=\"x\"");
    assert_eq!(
        authorize_request(&mut invite(), &bare, &agent()),
        Err(AuthError::NoUsableChallenge)
    );
}

#[test]
fn new_branch_keeps_other_vias() {
    let mut r = invite();
    r.headers.push("Via", "SIP/2.0/TCP proxy;branch=z9hG4bKp");
    assert!(with_new_branch(&mut r));
    let vias: Vec<&str> = r.headers.vias().collect();
    assert_eq!(vias.len(), 2);
    assert!(
        vias[0].starts_with("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK")
            && vias[0].ends_with(";rport")
    );
    assert_eq!(vias[1], "SIP/2.0/TCP proxy;branch=z9hG4bKp");
    assert!(!with_new_branch(&mut Request::new(Method::Invite, URI)));
}
