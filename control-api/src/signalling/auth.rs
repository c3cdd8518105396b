//! Who may place calls: trusted networks (trunks) call freely, everyone else
//! proves a digest credential (RFC 3261 §22, RFC 8760 algorithms).

use crate::config::{SipConfig, SipUser};
use ipnet::IpNet;
use sip_stack::auth::{Algorithm, DigestServer, DigestServerConfig, Secret, Verdict};
use sip_stack::message::{Method, Request};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

/// What to do with an INVITE from a given source.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Trusted source, or valid credentials (the username).
    Admit(Option<String>),
    /// Answer 401 with these WWW-Authenticate values.
    Challenge(Vec<String>),
}

pub struct Gatekeeper {
    trusted: Vec<IpNet>,
    users: HashMap<String, SipUser>,
    digest: DigestServer,
}

impl Gatekeeper {
    /// Config is validated beforehand (`Config::validate`).
    /// `trunk_sources`: the trunks' `allowed_sources`, trusted as well.
    pub fn new<'a>(sip: &'a SipConfig, trunk_sources: impl Iterator<Item = &'a String>) -> Self {
        let secret = if sip.auth_secret.is_empty() {
            rand::random::<[u8; 32]>().to_vec()
        } else {
            sip.auth_secret.as_bytes().to_vec()
        };
        let mut digest = DigestServerConfig::new(sip.auth_realm.clone(), secret);
        digest.algorithms = sip
            .auth_algorithms
            .iter()
            .filter_map(|a| Algorithm::parse(a))
            .collect();
        Gatekeeper {
            trusted: sip
                .trusted_networks
                .iter()
                .chain(trunk_sources)
                .filter_map(|n| n.parse().ok())
                .collect(),
            users: sip
                .users
                .iter()
                .map(|u| (u.username.clone(), u.clone()))
                .collect(),
            digest: DigestServer::new(digest),
        }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// Decides on a new INVITE from `source`.
    pub fn admit(&mut self, req: &Request, source: IpAddr, now: SystemTime) -> Admission {
        if self.is_trusted(source) {
            return Admission::Admit(None);
        }
        let Some(credentials) = req.headers.get("Authorization") else {
            return Admission::Challenge(self.digest.challenge(now, false));
        };
        let users = &self.users;
        let realm = self.digest.config().realm.clone();
        let lookup =
            |user: &str, r: &str| (r == realm).then(|| users.get(user).map(secret)).flatten();
        match self
            .digest
            .verify(&Method::Invite, &req.uri, credentials, lookup, now)
        {
            Verdict::Ok { username } => Admission::Admit(Some(username)),
            Verdict::Stale => Admission::Challenge(self.digest.challenge(now, true)),
            Verdict::Unauthorized(why) => {
                metrics::counter!("switchboard_sip_auth_failures_total").increment(1);
                tracing::info!(%source, reason = ?why, "digest authentication failed");
                Admission::Challenge(self.digest.challenge(now, false))
            }
        }
    }
}

fn secret(user: &SipUser) -> Secret {
    if user.ha1_md5.is_empty() && user.ha1_sha256.is_empty() {
        Secret::Password(user.password.clone())
    } else {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Secret::Ha1 {
            md5: some(&user.ha1_md5),
            sha256: some(&user.ha1_sha256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_stack::auth::{authorize_request, UserCredentials};
    use sip_stack::message::{parse, Response, SipMessage};

    fn invite() -> Request {
        let raw = "INVITE sip:agent@192.0.2.1 SIP/2.0\r\n\
                   Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-1\r\n\
                   From: <sip:alice@198.51.100.7>;tag=a\r\nTo: <sip:agent@192.0.2.1>\r\n\
                   Call-ID: auth-test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        match parse(raw.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            _ => unreachable!(),
        }
    }

    fn config(algorithms: &[&str]) -> SipConfig {
        SipConfig {
            users: vec![SipUser {
                username: "alice".into(),
                password: "wonderland".into(),
                ..SipUser::default()
            }],
            auth_algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
            ..SipConfig::default()
        }
    }

    #[test]
    fn trusted_networks_skip_the_challenge() {
        let mut g = Gatekeeper::new(&config(&["SHA-256", "MD5"]), std::iter::empty());
        let now = SystemTime::now();
        assert_eq!(
            g.admit(&invite(), "127.0.0.1".parse().unwrap(), now),
            Admission::Admit(None)
        );
        let Admission::Challenge(values) = g.admit(&invite(), "198.51.100.7".parse().unwrap(), now)
        else {
            panic!("untrusted source must be challenged");
        };
        assert_eq!(values.len(), 2, "one challenge per algorithm");
        assert!(values[0].contains("SHA-256") && values[1].contains("MD5"));
    }

    #[test]
    fn a_caller_that_answers_the_challenge_is_admitted_and_a_wrong_password_is_not() {
        for (password, admitted) in [("wonderland", true), ("guess", false)] {
            let mut g = Gatekeeper::new(&config(&["SHA-256", "MD5"]), std::iter::empty());
            let now = SystemTime::now();
            let source = "198.51.100.7".parse().unwrap();
            let Admission::Challenge(values) = g.admit(&invite(), source, now) else {
                panic!()
            };
            let mut challenge = Response::for_request(&invite(), 401, "Unauthorized");
            for v in values {
                challenge.headers.push("WWW-Authenticate", v);
            }
            let mut retry = invite();
            authorize_request(
                &mut retry,
                &challenge,
                &UserCredentials::new("alice", password),
            )
            .unwrap();
            let verdict = g.admit(&retry, source, now);
            assert_eq!(
                verdict == Admission::Admit(Some("alice".into())),
                admitted,
                "{verdict:?}"
            );
        }
    }
}
