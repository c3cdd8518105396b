//! Session timers (RFC 4028): keep-alives for a dialog, so a call whose
//! far end vanished (a crashed PBX, a lost BYE) is released instead of
//! holding a media leg forever.
//!
//! One side, the *refresher*, sends a re-INVITE or UPDATE before each
//! interval runs out; if the other side sees no refresh in time it sends
//! BYE. This module is sans-IO: [`negotiate`] reads a request and decides
//! what to answer, [`SessionTimer`] is told the current time and says when
//! to refresh or give up.
//!
//! `uac` and `uas` in the `refresher` parameter name the roles in the
//! transaction that carries the header, not in the dialog: when the
//! original callee sends a refresh re-INVITE, `refresher=uac` means the
//! callee.

use crate::message::{split_comma, Headers, Request, Response};
use std::time::{Duration, Instant};

/// The floor RFC 4028 §4 puts on Min-SE: 90 seconds.
pub const RFC_MIN_SE: u32 = 90;

/// Our side's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTimerConfig {
    /// The shortest interval we accept (sent in Min-SE and in 422s).
    pub min_se: u32,
    /// The interval we ask for when the request names none but its sender
    /// supports timers.
    pub session_expires: u32,
}

impl Default for SessionTimerConfig {
    fn default() -> Self {
        SessionTimerConfig {
            min_se: RFC_MIN_SE,
            session_expires: 1800,
        }
    }
}

/// Which side of one transaction refreshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// What a UAS answers a dialog-creating or refreshing request with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Negotiation {
    /// The asked interval is below our minimum: answer 422 with this Min-SE.
    TooSmall { min_se: u32 },
    /// The sender asked for nothing and does not support timers.
    Off,
    /// Run a timer: put it in the 2xx ([`Agreed::add_to_response`]).
    On(Agreed),
}

/// An agreed interval and refresher, as seen from the transaction's UAS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    pub interval: u32,
    pub refresher: Refresher,
    /// The request's sender listed `timer` in Supported or Require.
    pub peer_supports: bool,
}

impl Agreed {
    /// Session-Expires (and Require: timer when the UAC refreshes, which
    /// RFC 4028 §9 demands) on a 2xx.
    pub fn add_to_response(&self, resp: &mut Response) {
        resp.headers.set(
            "Session-Expires",
            format!("{};refresher={}", self.interval, self.refresher.as_str()),
        );
        if self.refresher == Refresher::Uac {
            resp.headers.set("Require", "timer");
        }
    }

    /// Whether we (the UAS of this transaction) send the refreshes.
    pub fn we_refresh(&self) -> bool {
        self.refresher == Refresher::Uas
    }
}

/// RFC 4028 §9: the UAS's choice for a request it received. A request
/// below our Min-SE is refused (422); otherwise the requested interval is
/// kept, and the refresher is the one asked for, else the UAC when it
/// supports timers (it then does the work), else us.
pub fn negotiate(req: &Request, config: &SessionTimerConfig) -> Negotiation {
    let peer_supports =
        lists_timer(&req.headers, "Supported") || lists_timer(&req.headers, "Require");
    let asked = req
        .headers
        .get("Session-Expires")
        .and_then(parse_session_expires);
    let Some((interval, refresher)) = asked else {
        if !peer_supports {
            return Negotiation::Off;
        }
        return Negotiation::On(Agreed {
            interval: config.session_expires.max(config.min_se),
            refresher: Refresher::Uac,
            peer_supports,
        });
    };
    if interval < config.min_se {
        return Negotiation::TooSmall {
            min_se: config.min_se,
        };
    }
    let refresher = refresher.unwrap_or(if peer_supports {
        Refresher::Uac
    } else {
        Refresher::Uas
    });
    // A UAC that does not support timers cannot be made the refresher.
    let refresher = if peer_supports {
        refresher
    } else {
        Refresher::Uas
    };
    Negotiation::On(Agreed {
        interval,
        refresher,
        peer_supports,
    })
}

/// The Session-Expires of a 2xx to a request we sent (we were its UAC).
/// `None` when the answer carries none: the session has no timer.
pub fn from_response(resp: &Response) -> Option<Agreed> {
    let (interval, refresher) = parse_session_expires(resp.headers.get("Session-Expires")?)?;
    Some(Agreed {
        interval,
        // A 2xx must name the refresher; a lenient default is the UAS.
        refresher: refresher.unwrap_or(Refresher::Uas),
        peer_supports: true,
    })
}

/// Asks for session timers in a dialog-creating request we send (RFC 4028
/// §7.1): we support them, want `config.session_expires`, and take no
/// less than `config.min_se`. The answer's refresher decides who works.
pub fn ask_in_request(req: &mut Request, config: &SessionTimerConfig) {
    let interval = config.session_expires.max(config.min_se);
    req.headers.set("Session-Expires", interval.to_string());
    req.headers.set("Min-SE", config.min_se.to_string());
}

/// After a 422 to our request (RFC 4028 §7.4): the same request again,
/// now asking for the peer's Min-SE, as a new transaction (next CSeq,
/// new branch). False when the 422 names no usable Min-SE or one we
/// already asked for (no loop), or the request has no CSeq to bump.
pub fn retry_after_422(req: &mut Request, resp: &Response) -> bool {
    let Some(min_se) = resp
        .headers
        .get("Min-SE")
        .and_then(|v| v.split(';').next()?.trim().parse::<u32>().ok())
    else {
        return false;
    };
    let asked = req
        .headers
        .get("Session-Expires")
        .and_then(parse_session_expires)
        .map_or(0, |(interval, _)| interval);
    let Some((cseq, method)) = req.cseq() else {
        return false;
    };
    if resp.status != 422 || min_se <= asked || cseq >= (1 << 31) - 1 {
        return false;
    }
    req.headers.set("Session-Expires", min_se.to_string());
    req.headers.set("Min-SE", min_se.to_string());
    req.headers.set("CSeq", format!("{} {method}", cseq + 1));
    crate::auth::with_new_branch(req)
}

/// `1800;refresher=uac` → (1800, Some(Uac)). Delta-seconds of 0 or garbage
/// are refused.
pub fn parse_session_expires(value: &str) -> Option<(u32, Option<Refresher>)> {
    let mut parts = value.split(';');
    let interval: u32 = parts.next()?.trim().parse().ok().filter(|&s| s > 0)?;
    let refresher = parts.find_map(|p| {
        let (name, v) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("refresher") {
            return None;
        }
        match v.trim().to_ascii_lowercase().as_str() {
            "uac" => Some(Refresher::Uac),
            "uas" => Some(Refresher::Uas),
            _ => None,
        }
    });
    Some((interval, refresher))
}

fn lists_timer(headers: &Headers, name: &str) -> bool {
    headers
        .get_all(name)
        .flat_map(split_comma)
        .any(|t| t.trim().eq_ignore_ascii_case("timer"))
}

/// What a running session timer wants done now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// We are the refresher: send a re-INVITE or UPDATE.
    Refresh,
    /// No refresh came in time: send BYE (RFC 4028 §10).
    Expire,
}

/// One dialog's running timer, from our side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTimer {
    interval: Duration,
    we_refresh: bool,
    /// When the interval last started (the 2xx of the last refresh).
    started: Instant,
    /// A refresh we sent is waiting for its answer.
    refresh_in_flight: bool,
    /// A refused refresh (491 glare) is tried again at this time.
    retry_at: Option<Instant>,
}

impl SessionTimer {
    pub fn new(now: Instant, interval_secs: u32, we_refresh: bool) -> SessionTimer {
        SessionTimer {
            interval: Duration::from_secs(u64::from(interval_secs)),
            we_refresh,
            started: now,
            refresh_in_flight: false,
            retry_at: None,
        }
    }

    pub fn we_refresh(&self) -> bool {
        self.we_refresh
    }

    pub fn interval_secs(&self) -> u64 {
        self.interval.as_secs()
    }

    /// A refresh succeeded (either direction): a new interval starts now,
    /// possibly with a new interval and refresher.
    pub fn refreshed(&mut self, now: Instant, interval_secs: u32, we_refresh: bool) {
        *self = SessionTimer::new(now, interval_secs, we_refresh);
    }

    /// Our refresh failed but the dialog lives (491 glare, RFC 3261
    /// §14.1): try again at `at` unless the session expires first.
    pub fn retry_refresh(&mut self, at: Instant) {
        self.refresh_in_flight = false;
        self.retry_at = Some(at);
    }

    /// When [`SessionTimer::poll`] next has something to do.
    pub fn deadline(&self) -> Instant {
        let expiry = self.started + self.expiry_offset();
        if let Some(at) = self.retry_at.filter(|_| !self.refresh_in_flight) {
            return at.min(expiry);
        }
        if self.we_refresh && !self.refresh_in_flight {
            // RFC 4028 §10: the refresher refreshes at half the interval.
            self.started + self.interval / 2
        } else {
            expiry
        }
    }

    /// RFC 4028 §10: the side without the refresher duty sends BYE at
    /// interval − min(32 s, interval / 3). We apply the same bound to our
    /// own unanswered refreshes.
    fn expiry_offset(&self) -> Duration {
        self.interval - (self.interval / 3).min(Duration::from_secs(32))
    }

    /// What is due at `now`, if anything. A `Refresh` is reported once per
    /// interval: the caller sends it and then calls [`Self::refreshed`] on
    /// its 2xx (or gets `Expire` later if none comes).
    pub fn poll(&mut self, now: Instant) -> Option<TimerAction> {
        if now < self.deadline() {
            return None;
        }
        let expired = now >= self.started + self.expiry_offset();
        if !expired && (self.we_refresh || self.retry_at.is_some()) && !self.refresh_in_flight {
            self.refresh_in_flight = true;
            self.retry_at = None;
            return Some(TimerAction::Refresh);
        }
        Some(TimerAction::Expire)
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;
    use crate::message::{Method, Request, Response};

    fn invite() -> Request {
        let mut req = Request::new(Method::Invite, "sip:agent@127.0.0.1:5070");
        req.headers
            .push("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfirst");
        req.headers.push("CSeq", "1 INVITE");
        req
    }

    #[test]
    fn a_request_asks_for_our_interval_and_floor() {
        let mut req = invite();
        let config = SessionTimerConfig {
            min_se: 120,
            session_expires: 600,
        };
        ask_in_request(&mut req, &config);
        assert_eq!(req.headers.get("Session-Expires"), Some("600"));
        assert_eq!(req.headers.get("Min-SE"), Some("120"));
    }

    #[test]
    fn a_422_is_retried_once_with_its_min_se() {
        let mut req = invite();
        ask_in_request(&mut req, &SessionTimerConfig::default());
        let mut too_small = Response::for_request(&req, 422, "Session Interval Too Small");
        too_small.headers.set("Min-SE", "3600");
        assert!(retry_after_422(&mut req, &too_small));
        assert_eq!(req.headers.get("Session-Expires"), Some("3600"));
        assert_eq!(req.headers.get("Min-SE"), Some("3600"));
        assert_eq!(req.cseq(), Some((2, Method::Invite)));
        assert!(!req.headers.get("Via").unwrap().contains("z9hG4bKfirst"));
        // The same floor again, or none: no loop.
        assert!(!retry_after_422(&mut req, &too_small));
        too_small.headers.remove("Min-SE");
        assert!(!retry_after_422(&mut req, &too_small));
        // Only a 422 asks for this.
        let mut other = Response::for_request(&req, 500, "Server Internal Error");
        other.headers.set("Min-SE", "7200");
        assert!(!retry_after_422(&mut req, &other));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse, SipMessage};

    fn request(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n\
             From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: st1\r\n\
             CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    const CONFIG: SessionTimerConfig = SessionTimerConfig {
        min_se: 90,
        session_expires: 1800,
    };

    #[test]
    fn a_request_below_min_se_gets_422() {
        let req = request("Supported: timer\r\nSession-Expires: 60\r\n");
        assert_eq!(
            negotiate(&req, &CONFIG),
            Negotiation::TooSmall { min_se: 90 }
        );
    }

    #[test]
    fn no_timer_without_support_or_request() {
        assert_eq!(negotiate(&request(""), &CONFIG), Negotiation::Off);
    }

    #[test]
    fn a_supporting_uac_without_interval_gets_ours_and_refreshes() {
        let got = negotiate(&request("Supported: 100rel, timer\r\n"), &CONFIG);
        assert_eq!(
            got,
            Negotiation::On(Agreed {
                interval: 1800,
                refresher: Refresher::Uac,
                peer_supports: true
            })
        );
    }

    #[test]
    fn asked_refresher_is_kept_and_compact_form_is_read() {
        let got = negotiate(&request("k: timer\r\nx: 120;refresher=uas\r\n"), &CONFIG);
        let Negotiation::On(agreed) = got else {
            panic!("{got:?}")
        };
        assert_eq!(agreed.interval, 120);
        assert!(agreed.we_refresh());
    }

    #[test]
    fn a_uac_without_timer_support_is_never_the_refresher() {
        let got = negotiate(&request("Session-Expires: 300;refresher=uac\r\n"), &CONFIG);
        let Negotiation::On(agreed) = got else {
            panic!("{got:?}")
        };
        assert_eq!(agreed.refresher, Refresher::Uas);
        let mut resp = Response::for_request(&request(""), 200, "OK");
        agreed.add_to_response(&mut resp);
        assert_eq!(
            resp.headers.get("Session-Expires"),
            Some("300;refresher=uas")
        );
        assert_eq!(resp.headers.get("Require"), None);
    }

    #[test]
    fn a_uac_refresher_gets_require_timer() {
        let Negotiation::On(agreed) = negotiate(
            &request("Supported: timer\r\nSession-Expires: 90\r\n"),
            &CONFIG,
        ) else {
            panic!()
        };
        let mut resp = Response::for_request(&request(""), 200, "OK");
        agreed.add_to_response(&mut resp);
        assert_eq!(resp.headers.get("Require"), Some("timer"));
        assert_eq!(
            resp.headers.get("Session-Expires"),
            Some("90;refresher=uac")
        );
    }

    #[test]
    fn session_expires_values() {
        assert_eq!(parse_session_expires("1800"), Some((1800, None)));
        assert_eq!(
            parse_session_expires(" 90 ; Refresher = UAC"),
            Some((90, Some(Refresher::Uac)))
        );
        assert_eq!(parse_session_expires("0"), None);
        assert_eq!(parse_session_expires("soon"), None);
        assert_eq!(parse_session_expires("90;refresher=me"), Some((90, None)));
    }

    #[test]
    fn the_refresher_refreshes_at_half_time_then_expires_if_unanswered() {
        let t0 = Instant::now();
        let mut timer = SessionTimer::new(t0, 90, true);
        assert_eq!(timer.deadline(), t0 + Duration::from_secs(45));
        assert_eq!(timer.poll(t0 + Duration::from_secs(44)), None);
        assert_eq!(
            timer.poll(t0 + Duration::from_secs(45)),
            Some(TimerAction::Refresh)
        );
        // Reported once: now waiting for the answer until 90 - 30 = 60 s.
        assert_eq!(timer.deadline(), t0 + Duration::from_secs(60));
        assert_eq!(timer.poll(t0 + Duration::from_secs(50)), None);
        assert_eq!(
            timer.poll(t0 + Duration::from_secs(60)),
            Some(TimerAction::Expire)
        );
    }

    #[test]
    fn a_glared_refresh_is_retried_before_expiry() {
        let t0 = Instant::now();
        let mut timer = SessionTimer::new(t0, 90, true);
        assert_eq!(
            timer.poll(t0 + Duration::from_secs(45)),
            Some(TimerAction::Refresh)
        );
        timer.retry_refresh(t0 + Duration::from_secs(48));
        assert_eq!(timer.deadline(), t0 + Duration::from_secs(48));
        assert_eq!(timer.poll(t0 + Duration::from_secs(47)), None);
        assert_eq!(
            timer.poll(t0 + Duration::from_secs(48)),
            Some(TimerAction::Refresh)
        );
        // A retry that would land after expiry is cut short by it.
        timer.retry_refresh(t0 + Duration::from_secs(80));
        assert_eq!(timer.deadline(), t0 + Duration::from_secs(60));
        assert_eq!(
            timer.poll(t0 + Duration::from_secs(60)),
            Some(TimerAction::Expire)
        );
    }

    #[test]
    fn a_refresh_restarts_the_interval() {
        let t0 = Instant::now();
        let mut timer = SessionTimer::new(t0, 90, true);
        assert_eq!(
            timer.poll(t0 + Duration::from_secs(45)),
            Some(TimerAction::Refresh)
        );
        timer.refreshed(t0 + Duration::from_secs(46), 120, true);
        assert_eq!(timer.deadline(), t0 + Duration::from_secs(46 + 60));
    }

    #[test]
    fn the_other_side_expires_at_interval_minus_a_third_capped_at_32s() {
        let t0 = Instant::now();
        let short = SessionTimer::new(t0, 90, false);
        assert_eq!(short.deadline(), t0 + Duration::from_secs(60));
        let long = SessionTimer::new(t0, 1800, false);
        assert_eq!(long.deadline(), t0 + Duration::from_secs(1768));
        let mut tiny = SessionTimer::new(t0, 3, false);
        assert_eq!(tiny.poll(t0 + Duration::from_secs(1)), None);
        assert_eq!(
            tiny.poll(t0 + Duration::from_secs(2)),
            Some(TimerAction::Expire)
        );
    }

    #[test]
    fn timer_from_a_2xx() {
        let mut resp = Response::for_request(&request(""), 200, "OK");
        assert_eq!(from_response(&resp), None);
        resp.headers.set("Session-Expires", "600;refresher=uac");
        let agreed = from_response(&resp).unwrap();
        assert_eq!(agreed.interval, 600);
        assert_eq!(agreed.refresher, Refresher::Uac);
    }
}
