//! Reliable provisional responses (RFC 3262, "100rel"): a 18x that the far
//! end acknowledges with PRACK, retransmitted until it does.
//!
//! Carriers that need to know a call is really ringing (or that early
//! media is set up) require it. Sans-IO: [`UasReliable`] is the answering
//! side's state for one INVITE; [`UacReliable`] is the calling side's.

use crate::message::{split_comma, Headers, Method, Request, Response};
use std::time::{Duration, Instant};

/// Whether a header (Require, Supported) lists the option tag `100rel`.
pub fn lists_100rel(headers: &Headers, name: &str) -> bool {
    headers
        .get_all(name)
        .flat_map(split_comma)
        .any(|t| t.trim().eq_ignore_ascii_case("100rel"))
}

/// `RAck: <rseq> <cseq> <method>` (RFC 3262 §7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RAck {
    pub rseq: u32,
    pub cseq: u32,
    pub method: Method,
}

impl RAck {
    pub fn parse(value: &str) -> Option<RAck> {
        let mut parts = value.split_whitespace();
        let rack = RAck {
            rseq: parts.next()?.parse().ok()?,
            cseq: parts.next()?.parse().ok()?,
            method: Method::parse(parts.next()?),
        };
        parts.next().is_none().then_some(rack)
    }
}

impl std::fmt::Display for RAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.rseq, self.cseq, self.method)
    }
}

/// What a [`UasReliable`] wants done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UasAction {
    /// Send the pending provisional again.
    Retransmit,
    /// 64·T1 without PRACK: reject the INVITE with a 5xx (RFC 3262 §3).
    GiveUp,
}

/// The answering side of one INVITE: numbers reliable provisionals,
/// retransmits the unacknowledged one and matches PRACKs.
#[derive(Clone, Debug)]
pub struct UasReliable {
    invite_cseq: u32,
    next_rseq: u32,
    t1: Duration,
    pending: Option<Pending>,
}

#[derive(Clone, Debug)]
struct Pending {
    rseq: u32,
    response: Response,
    next_send: Instant,
    interval: Duration,
    give_up_at: Instant,
}

impl UasReliable {
    /// For an INVITE with this CSeq number; `t1` as in RFC 3261.
    pub fn new(invite_cseq: u32, t1: Duration) -> UasReliable {
        use rand::Rng;
        UasReliable {
            invite_cseq,
            // RFC 3262 §3: a random start between 1 and 2^31 - 1.
            next_rseq: rand::rng().random_range(1..=(1u32 << 31) - 1),
            t1,
            pending: None,
        }
    }

    /// Makes `resp` (a 101–199) reliable: Require: 100rel and the next
    /// RSeq. It is then pending until PRACKed. Returns false (and leaves
    /// `resp` alone) while an earlier one is still unacknowledged: RFC
    /// 3262 §3 allows only one at a time.
    pub fn send(&mut self, now: Instant, resp: &mut Response) -> bool {
        if self.pending.is_some() {
            return false;
        }
        let rseq = self.next_rseq;
        self.next_rseq = self.next_rseq.wrapping_add(1);
        resp.headers.set("Require", "100rel");
        resp.headers.set("RSeq", rseq.to_string());
        self.pending = Some(Pending {
            rseq,
            response: resp.clone(),
            next_send: now + self.t1,
            interval: self.t1,
            give_up_at: now + self.t1 * 64,
        });
        true
    }

    /// Whether a provisional still waits for its PRACK.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The pending provisional, to retransmit.
    pub fn pending_response(&self) -> Option<&Response> {
        self.pending.as_ref().map(|p| &p.response)
    }

    /// A PRACK arrived: true if it acknowledges the pending provisional
    /// (answer it 200), false otherwise (answer 481, RFC 3262 §3).
    pub fn on_prack(&mut self, prack: &Request) -> bool {
        let Some(rack) = prack.headers.get("RAck").and_then(RAck::parse) else {
            return false;
        };
        let matches = self.pending.as_ref().is_some_and(|p| {
            rack.rseq == p.rseq && rack.cseq == self.invite_cseq && rack.method == Method::Invite
        });
        if matches {
            self.pending = None;
        }
        matches
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.next_send.min(p.give_up_at))
    }

    /// Retransmissions at T1, 2·T1, 4·T1… until 64·T1 (RFC 3262 §3).
    pub fn poll(&mut self, now: Instant) -> Option<UasAction> {
        let p = self.pending.as_mut()?;
        if now >= p.give_up_at {
            self.pending = None;
            return Some(UasAction::GiveUp);
        }
        if now < p.next_send {
            return None;
        }
        p.interval *= 2;
        p.next_send = now + p.interval;
        Some(UasAction::Retransmit)
    }
}

/// The calling side: which reliable provisionals were already PRACKed, so
/// retransmissions are not acknowledged twice (RFC 3262 §4).
#[derive(Clone, Debug, Default)]
pub struct UacReliable {
    last_rseq: Option<u32>,
}

impl UacReliable {
    /// For a 1xx to our INVITE: the RAck to send in a PRACK, or `None`
    /// when the response is not reliable, is a retransmission, or is out
    /// of order (RSeq must be the last plus one).
    pub fn rack_for(&mut self, resp: &Response) -> Option<RAck> {
        if !(101..200).contains(&resp.status) || !lists_100rel(&resp.headers, "Require") {
            return None;
        }
        let rseq: u32 = resp.headers.get("RSeq")?.trim().parse().ok()?;
        let (cseq, method) = resp.cseq()?;
        if let Some(last) = self.last_rseq {
            if rseq != last.wrapping_add(1) {
                return None;
            }
        }
        self.last_rseq = Some(rseq);
        Some(RAck { rseq, cseq, method })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse, SipMessage};

    fn invite() -> Request {
        let text =
            "INVITE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n\
             From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: r1\r\n\
             CSeq: 7 INVITE\r\nRequire: 100rel\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        match parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    fn prack(rack: &str) -> Request {
        let mut p = invite();
        p.method = Method::Prack;
        p.headers.set("CSeq", "8 PRACK");
        p.headers.set("RAck", rack);
        p
    }

    #[test]
    fn rack_parses_and_prints() {
        let r = RAck::parse("776656 1 INVITE").unwrap();
        assert_eq!(
            (r.rseq, r.cseq, r.method.clone()),
            (776656, 1, Method::Invite)
        );
        assert_eq!(r.to_string(), "776656 1 INVITE");
        assert_eq!(RAck::parse("1 INVITE"), None);
        assert_eq!(RAck::parse("x 1 INVITE"), None);
        assert_eq!(RAck::parse("1 2 INVITE extra"), None);
    }

    #[test]
    fn option_tag_lists() {
        let req = invite();
        assert!(lists_100rel(&req.headers, "Require"));
        assert!(!lists_100rel(&req.headers, "Supported"));
    }

    #[test]
    fn a_reliable_180_is_retransmitted_until_pracked() {
        let t1 = Duration::from_millis(500);
        let t0 = Instant::now();
        let mut uas = UasReliable::new(7, t1);
        let mut ringing = Response::for_request(&invite(), 180, "Ringing");
        assert!(uas.send(t0, &mut ringing));
        assert_eq!(ringing.headers.get("Require"), Some("100rel"));
        let rseq: u32 = ringing.headers.get("RSeq").unwrap().parse().unwrap();
        // Only one unacknowledged reliable provisional at a time.
        assert!(!uas.send(t0, &mut Response::for_request(&invite(), 183, "Progress")));

        assert_eq!(uas.poll(t0 + Duration::from_millis(499)), None);
        assert_eq!(uas.poll(t0 + t1), Some(UasAction::Retransmit));
        assert_eq!(uas.deadline(), Some(t0 + t1 * 3)); // then 2·T1 later
        assert_eq!(uas.poll(t0 + t1 * 2), None);
        assert_eq!(uas.poll(t0 + t1 * 3), Some(UasAction::Retransmit));

        assert!(!uas.on_prack(&prack(&format!("{} 6 INVITE", rseq))));
        assert!(!uas.on_prack(&prack(&format!("{} 7 INVITE", rseq + 1))));
        assert!(uas.on_prack(&prack(&format!("{rseq} 7 INVITE"))));
        assert!(!uas.is_pending());
        assert_eq!(uas.poll(t0 + t1 * 100), None);

        // The next reliable provisional gets the next RSeq.
        let mut progress = Response::for_request(&invite(), 183, "Progress");
        assert!(uas.send(t0, &mut progress));
        assert_eq!(
            progress.headers.get("RSeq"),
            Some((rseq + 1).to_string().as_str())
        );
    }

    #[test]
    fn no_prack_within_64_t1_gives_up() {
        let t1 = Duration::from_millis(50);
        let t0 = Instant::now();
        let mut uas = UasReliable::new(7, t1);
        let mut ringing = Response::for_request(&invite(), 180, "Ringing");
        uas.send(t0, &mut ringing);
        let mut now;
        let mut sent = 0;
        loop {
            now = uas.deadline().unwrap();
            match uas.poll(now) {
                Some(UasAction::Retransmit) => sent += 1,
                Some(UasAction::GiveUp) => break,
                None => panic!("deadline without action"),
            }
            assert!(sent < 20);
        }
        assert_eq!(now, t0 + t1 * 64);
        assert_eq!(sent, 6); // at 1, 3, 7, 15, 31 and 63 T1
        assert!(!uas.is_pending());
    }

    #[test]
    fn the_uac_pracks_each_reliable_provisional_once() {
        let mut uac = UacReliable::default();
        let mut ringing = Response::for_request(&invite(), 180, "Ringing");
        assert_eq!(uac.rack_for(&ringing), None); // not reliable
        ringing.headers.set("Require", "100rel");
        ringing.headers.set("RSeq", "41");
        assert_eq!(
            uac.rack_for(&ringing),
            Some(RAck {
                rseq: 41,
                cseq: 7,
                method: Method::Invite
            })
        );
        assert_eq!(uac.rack_for(&ringing), None); // retransmission
        ringing.headers.set("RSeq", "43");
        assert_eq!(uac.rack_for(&ringing), None); // out of order
        ringing.headers.set("RSeq", "42");
        assert_eq!(uac.rack_for(&ringing).map(|r| r.rseq), Some(42));
    }
}
