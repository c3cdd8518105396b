//! Outbound registration (RFC 3261 §10): keeps the engine registered with
//! an upstream trunk (a carrier or a PBX that delivers calls only to
//! registered contacts).
//!
//! Sans-IO: [`Registration::poll`] hands out the REGISTER to send when one
//! is due, [`Registration::on_response`] and [`Registration::on_timeout`]
//! take the outcome, and [`Registration::deadline`] says when to call
//! `poll` next. It refreshes before the granted expiry runs out, answers
//! digest challenges, honours 423 Interval Too Brief, and backs off
//! exponentially (with jitter) while the registrar fails.

use crate::auth::{DigestClient, UserCredentials};
use crate::message::{generate_call_id, generate_tag, Method, Request, Response};
use std::time::{Duration, Instant};

/// What to register, where, and how.
#[derive(Clone, Debug)]
pub struct RegistrationConfig {
    /// Request-URI: the registrar (`sip:192.0.2.1:5060`).
    pub registrar: String,
    /// The address of record, From and To (`sip:engine@192.0.2.1`).
    pub aor: String,
    /// Our Contact URI (`sip:engine@198.51.100.7:5060`).
    pub contact: String,
    /// Expiry asked for, seconds.
    pub expires: u32,
    pub credentials: Option<UserCredentials>,
    /// First back-off after a failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

/// Where a registration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not (yet, or no longer) registered; a REGISTER is due or in flight.
    Unregistered,
    /// The registrar accepted us until this time.
    Registered { until: Instant },
}

/// One registration binding, kept alive.
pub struct Registration {
    config: RegistrationConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: RegistrationState,
    /// When the next REGISTER is due (None: one is in flight).
    next_send: Option<Instant>,
    /// The REGISTER in flight, for answering a challenge to it.
    in_flight: Option<Request>,
    /// Challenges answered for the request in flight (a wrong password
    /// must not loop).
    auth_attempts: u8,
    failures: u32,
    digest: DigestClient,
}

/// What a response did to the registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationEvent {
    /// Registered (or refreshed) for this many seconds.
    Registered { expires: u32 },
    /// Send this REGISTER now (with credentials, or a longer expiry).
    Retry(Request),
    /// Failed with this status (0: no answer); retried after `after`.
    Failed { status: u16, after: Duration },
}

impl Registration {
    /// Starts unregistered with a REGISTER due at `now`.
    pub fn new(config: RegistrationConfig, local_host: &str, now: Instant) -> Registration {
        Registration {
            config,
            call_id: generate_call_id(local_host),
            from_tag: generate_tag(),
            cseq: 0,
            state: RegistrationState::Unregistered,
            next_send: Some(now),
            in_flight: None,
            auth_attempts: 0,
            failures: 0,
            digest: DigestClient::new(),
        }
    }

    pub fn state(&self) -> RegistrationState {
        self.state
    }

    pub fn is_registered(&self, now: Instant) -> bool {
        matches!(self.state, RegistrationState::Registered { until } if now < until)
    }

    /// When [`Self::poll`] has something to send (None while in flight).
    pub fn deadline(&self) -> Option<Instant> {
        self.next_send
    }

    /// The REGISTER to send now, if one is due. `via` is our Via value for
    /// the transport it goes over (the caller's: it knows its sockets).
    pub fn poll(&mut self, now: Instant, via: &str) -> Option<Request> {
        if self.next_send.is_none_or(|at| now < at) {
            return None;
        }
        if let RegistrationState::Registered { until } = self.state {
            if now >= until {
                self.state = RegistrationState::Unregistered;
            }
        }
        self.next_send = None;
        self.auth_attempts = 0;
        self.cseq += 1;
        let c = &self.config;
        let mut req = Request::new(Method::Register, c.registrar.clone());
        let h = &mut req.headers;
        h.push("Via", via);
        h.push("Max-Forwards", "70");
        h.push("From", format!("<{}>;tag={}", c.aor, self.from_tag));
        h.push("To", format!("<{}>", c.aor));
        h.push("Call-ID", self.call_id.clone());
        h.push("CSeq", format!("{} REGISTER", self.cseq));
        h.push("Contact", format!("<{}>", c.contact));
        h.push("Expires", c.expires.to_string());
        self.in_flight = Some(req.clone());
        Some(req)
    }

    /// A REGISTER with Expires: 0 that removes our binding (shutdown), if
    /// we are registered; the registration then stays idle.
    pub fn unregister(&mut self, now: Instant, via: &str) -> Option<Request> {
        if !self.is_registered(now) {
            return None;
        }
        self.config.expires = 0;
        self.next_send = Some(now);
        let request = self.poll(now, via);
        self.state = RegistrationState::Unregistered;
        self.next_send = None;
        self.in_flight = None;
        request
    }

    /// A final response to our REGISTER.
    pub fn on_response(&mut self, now: Instant, resp: &Response) -> Option<RegistrationEvent> {
        if resp.status < 200 {
            return None;
        }
        let request = self.in_flight.take()?;
        match resp.status {
            200..=299 => {
                let expires = granted_expiry(resp, &self.config.contact)
                    .unwrap_or(self.config.expires)
                    .max(1);
                self.failures = 0;
                self.state = RegistrationState::Registered {
                    until: now + Duration::from_secs(u64::from(expires)),
                };
                self.next_send = Some(now + refresh_after(expires));
                Some(RegistrationEvent::Registered { expires })
            }
            401 | 407 => self.answer_challenge(now, request, resp),
            423 => {
                // Interval Too Brief: ask for at least Min-Expires.
                let min: Option<u32> = resp
                    .headers
                    .get("Min-Expires")
                    .and_then(|v| v.trim().parse().ok());
                match min.filter(|&m| m > self.config.expires && m <= 86_400) {
                    Some(min) => {
                        self.config.expires = min;
                        self.next_send = Some(now);
                        None
                    }
                    None => Some(self.fail(now, 423)),
                }
            }
            status => Some(self.fail(now, status)),
        }
    }

    /// No answer at all (Timer F) or the transport failed.
    pub fn on_timeout(&mut self, now: Instant) -> RegistrationEvent {
        self.in_flight = None;
        self.fail(now, 0)
    }

    fn answer_challenge(
        &mut self,
        now: Instant,
        mut request: Request,
        resp: &Response,
    ) -> Option<RegistrationEvent> {
        let Some(creds) = self
            .config
            .credentials
            .clone()
            .filter(|_| self.auth_attempts < 2)
        else {
            return Some(self.fail(now, resp.status));
        };
        if self
            .digest
            .authorize_request(&mut request, resp, &creds)
            .is_err()
        {
            return Some(self.fail(now, resp.status));
        }
        self.auth_attempts += 1;
        self.cseq = request.cseq().map_or(self.cseq + 1, |(n, _)| n);
        self.in_flight = Some(request.clone());
        Some(RegistrationEvent::Retry(request))
    }

    fn fail(&mut self, now: Instant, status: u16) -> RegistrationEvent {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(16);
        let base = self
            .config
            .min_backoff
            .saturating_mul(1 << doublings)
            .min(self.config.max_backoff);
        // ±20 % so a fleet of engines does not retry in lockstep.
        let after = base.mul_f64(0.8 + 0.4 * rand::random::<f64>());
        if let RegistrationState::Registered { until } = self.state {
            if now >= until {
                self.state = RegistrationState::Unregistered;
            }
        }
        self.next_send = Some(now + after);
        RegistrationEvent::Failed { status, after }
    }
}

/// RFC 3261 §10.2.4: the expiry granted to our Contact (its `expires`
/// parameter), else the Expires header.
fn granted_expiry(resp: &Response, our_contact: &str) -> Option<u32> {
    let ours = resp
        .headers
        .get_all("Contact")
        .flat_map(crate::message::split_comma)
        .find(|c| {
            crate::message::name_addr_uri(c)
                .is_some_and(|uri| uri.eq_ignore_ascii_case(our_contact))
        })
        .and_then(|c| crate::message::name_addr_param(c, "expires"))
        .and_then(|v| v.trim().parse().ok());
    ours.or_else(|| {
        resp.headers
            .get("Expires")
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Refresh well before expiry: halfway through short grants (two minutes
/// or less), else 10 % (at most five minutes) before the end.
fn refresh_after(expires: u32) -> Duration {
    let expires = Duration::from_secs(u64::from(expires));
    if expires <= Duration::from_secs(120) {
        return expires / 2;
    }
    expires - (expires / 10).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse, SipMessage};

    fn config(credentials: bool) -> RegistrationConfig {
        RegistrationConfig {
            registrar: "sip:192.0.2.1:5060".into(),
            aor: "sip:engine@192.0.2.1".into(),
            contact: "sip:engine@198.51.100.7:5060".into(),
            expires: 600,
            credentials: credentials.then(|| UserCredentials::new("engine", "s3cret")),
            min_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(1800),
        }
    }

    fn answer(req: &Request, status: u16, extra: &str) -> Response {
        let via = req.headers.get("Via").unwrap();
        let text = format!(
            "SIP/2.0 {status} X\r\nVia: {via}\r\nFrom: {}\r\nTo: {};tag=r1\r\nCall-ID: {}\r\n\
             CSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
            req.headers.get("From").unwrap(),
            req.headers.get("To").unwrap(),
            req.call_id().unwrap(),
            req.headers.get("CSeq").unwrap(),
        );
        match parse(text.as_bytes()).unwrap() {
            SipMessage::Response(r) => r,
            SipMessage::Request(_) => unreachable!(),
        }
    }

    const VIA: &str = "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKreg;rport";

    #[test]
    fn registers_through_a_challenge_and_refreshes_before_expiry() {
        let t0 = Instant::now();
        let mut reg = Registration::new(config(true), "198.51.100.7", t0);
        let first = reg.poll(t0, VIA).expect("due at once");
        assert_eq!(first.method, Method::Register);
        assert_eq!(first.headers.get("Expires"), Some("600"));
        assert_eq!(first.cseq().unwrap().0, 1);
        assert_eq!(reg.poll(t0, VIA), None, "one in flight at a time");

        let challenge = answer(
            &first,
            401,
            "WWW-Authenticate: Digest realm=\"trunk\", nonce=\"abc\", qop=\"auth\", algorithm=MD5\r\n",
        );
        let Some(RegistrationEvent::Retry(second)) = reg.on_response(t0, &challenge) else {
            panic!("a challenge is answered")
        };
        assert!(second
            .headers
            .get("Authorization")
            .unwrap()
            .contains("username=\"engine\""));
        assert_eq!(second.cseq().unwrap().0, 2);
        assert_eq!(second.call_id(), first.call_id());

        let ok = answer(
            &second,
            200,
            "Contact: <sip:engine@198.51.100.7:5060>;expires=120, <sip:other@x>;expires=9\r\n",
        );
        assert_eq!(
            reg.on_response(t0, &ok),
            Some(RegistrationEvent::Registered { expires: 120 })
        );
        assert!(reg.is_registered(t0));
        assert_eq!(reg.deadline(), Some(t0 + Duration::from_secs(60)));
        let refresh = reg
            .poll(t0 + Duration::from_secs(60), VIA)
            .expect("refresh");
        assert_eq!(refresh.cseq().unwrap().0, 3);
        assert_eq!(refresh.call_id(), first.call_id());
    }

    #[test]
    fn long_grants_refresh_ahead_of_the_end() {
        assert_eq!(refresh_after(3600), Duration::from_secs(3300));
        assert_eq!(refresh_after(600), Duration::from_secs(540));
        assert_eq!(refresh_after(60), Duration::from_secs(30));
        assert_eq!(refresh_after(2), Duration::from_secs(1));
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_up_to_the_cap() {
        let t0 = Instant::now();
        let mut reg = Registration::new(config(false), "h", t0);
        let mut now = t0;
        let mut afters = Vec::new();
        for _ in 0..10 {
            let req = reg.poll(now, VIA).expect("due");
            match reg.on_response(now, &answer(&req, 503, "")) {
                Some(RegistrationEvent::Failed { status: 503, after }) => afters.push(after),
                other => panic!("{other:?}"),
            }
            now = reg.deadline().unwrap();
        }
        let secs: Vec<f64> = afters.iter().map(Duration::as_secs_f64).collect();
        assert!((24.0..=36.0).contains(&secs[0]), "{secs:?}");
        assert!((48.0..=72.0).contains(&secs[1]), "{secs:?}");
        assert!(
            secs[9] <= 1800.0 * 1.2 && secs[9] >= 1800.0 * 0.8,
            "{secs:?}"
        );
        assert!(!reg.is_registered(now));
    }

    #[test]
    fn a_challenge_without_credentials_or_twice_rejected_fails() {
        let t0 = Instant::now();
        let mut reg = Registration::new(config(false), "h", t0);
        let req = reg.poll(t0, VIA).unwrap();
        let challenge = "WWW-Authenticate: Digest realm=\"t\", nonce=\"n\", algorithm=MD5\r\n";
        assert!(matches!(
            reg.on_response(t0, &answer(&req, 401, challenge)),
            Some(RegistrationEvent::Failed { status: 401, .. })
        ));
        let mut reg = Registration::new(config(true), "h", t0);
        let mut req = reg.poll(t0, VIA).unwrap();
        for _ in 0..2 {
            match reg.on_response(t0, &answer(&req, 401, challenge)) {
                Some(RegistrationEvent::Retry(next)) => req = next,
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            reg.on_response(t0, &answer(&req, 401, challenge)),
            Some(RegistrationEvent::Failed { status: 401, .. })
        ));
    }

    #[test]
    fn unregistering_sends_expires_zero_once() {
        let t0 = Instant::now();
        let mut reg = Registration::new(config(false), "h", t0);
        assert!(reg.unregister(t0, VIA).is_none(), "not registered yet");
        let req = reg.poll(t0, VIA).unwrap();
        reg.on_response(t0, &answer(&req, 200, "Expires: 600\r\n"));
        let bye = reg.unregister(t0, VIA).expect("registered");
        assert_eq!(bye.headers.get("Expires"), Some("0"));
        assert!(!reg.is_registered(t0));
        assert_eq!(reg.deadline(), None, "idle afterwards");
    }

    #[test]
    fn interval_too_brief_asks_again_with_min_expires() {
        let t0 = Instant::now();
        let mut reg = Registration::new(config(false), "h", t0);
        let req = reg.poll(t0, VIA).unwrap();
        assert_eq!(
            reg.on_response(t0, &answer(&req, 423, "Min-Expires: 1800\r\n")),
            None
        );
        let again = reg.poll(t0, VIA).expect("at once");
        assert_eq!(again.headers.get("Expires"), Some("1800"));
    }

    #[test]
    fn a_timeout_backs_off_and_a_late_answer_is_ignored() {
        let t0 = Instant::now();
        let mut reg = Registration::new(config(false), "h", t0);
        let req = reg.poll(t0, VIA).unwrap();
        assert!(matches!(
            reg.on_timeout(t0),
            RegistrationEvent::Failed { status: 0, .. }
        ));
        assert_eq!(
            reg.on_response(t0, &answer(&req, 200, "Expires: 60\r\n")),
            None
        );
        assert!(!reg.is_registered(t0));
    }
}
