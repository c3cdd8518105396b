//! The tool's SIP side: a UAC that places calls at the engine and a UAS
//! that answers the calls the engine bridges back, on one thread.
//!
//! Messages are built as text and read with `sip_stack::message::parse`.
//! Over UDP, INVITE and BYE are retransmitted from T1 = 500 ms, doubling up
//! to 4 s, and given up after a bounded time; the UAS retransmits its 200
//! until the ACK comes. Calls are correlated across the engine by the
//! Request-URI user part `bench-<run>-<n>`, which a B2BUA keeps.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use mio::net::UdpSocket as MioUdp;
use mio::{Events, Interest, Poll, Token};
use sip_stack::message::{
    generate_branch, generate_call_id, generate_tag, parse, Method, Request, Response, SipMessage,
};

use crate::media::{Clock, Leg, MediaHandle};
use crate::probe::Dir;
use crate::signal::{audio_dest, bump, grow_buffers, sdp_body, Shared, SigCmd, Signalling};

const T1_NS: u64 = 500_000_000;
const T2_NS: u64 = 4_000_000_000;

/// Settings of the SIP agent.
#[derive(Clone, Debug)]
pub struct SipSettings {
    /// Where INVITEs go: the engine, or the tool's own UAS in self mode.
    pub target: SocketAddr,
    pub local_ip: IpAddr,
    pub run: u16,
    /// Give up on an unanswered INVITE or BYE after this long.
    pub give_up: Duration,
}

/// The Request-URI user part of call `n`.
pub fn call_user(run: u16, n: u32) -> String {
    format!("bench-{run:04x}-{n}")
}

/// Call number from a Request-URI of this run: `sip:bench-<run>-<n>@...`.
pub fn call_from_uri(uri: &str, run: u16) -> Option<u32> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let user = rest.split('@').next()?;
    let user = user.split(';').next()?;
    let tail = user.strip_prefix(&format!("bench-{run:04x}-"))?;
    tail.parse().ok()
}

struct Retx {
    bytes: Vec<u8>,
    dest: SocketAddr,
    next: u64,
    interval: u64,
    deadline: u64,
}

impl Retx {
    fn new(bytes: Vec<u8>, dest: SocketAddr, now: u64, give_up: u64) -> Retx {
        Retx {
            bytes,
            dest,
            next: now + T1_NS,
            interval: T1_NS,
            deadline: now + give_up,
        }
    }

    /// At `now`: true once the request has timed out; otherwise resends it
    /// through `socket` when due (T1 doubling to T2).
    fn step(&mut self, now: u64, socket: &mio::net::UdpSocket) -> bool {
        if now >= self.deadline {
            return true;
        }
        if now >= self.next {
            let _ = socket.send_to(&self.bytes, self.dest);
            self.interval = (self.interval * 2).min(T2_NS);
            self.next = now + self.interval;
        }
        false
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AState {
    Inviting,
    Up,
    Bye,
}

struct ALeg {
    n: u32,
    from: String,
    to: String,
    uri: String,
    remote_target: String,
    route: Vec<String>,
    state: AState,
    retx: Option<Retx>,
    ack: Vec<u8>,
    leg: Leg,
    invite_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BState {
    Answered,
    Up,
}

struct BLeg {
    n: u32,
    state: BState,
    retx: Option<Retx>,
    ok: Vec<u8>,
    to_tag: String,
    dest: SocketAddr,
    leg: Leg,
}

struct Agent {
    settings: SipSettings,
    clock: Clock,
    media: MediaHandle,
    shared: Arc<Shared>,
    uac: MioUdp,
    uac_addr: SocketAddr,
    uas: MioUdp,
    uas_addr: SocketAddr,
    give_up_ns: u64,
    a: HashMap<String, ALeg>,
    b: HashMap<String, BLeg>,
    /// Calls placed and not yet hung up, by number: who the UAS may answer.
    placed: HashMap<u32, String>,
}

/// Starts the SIP thread. `uas` is the already-bound UAS socket.
pub fn start(
    settings: SipSettings,
    uas: UdpSocket,
    clock: Clock,
    media: MediaHandle,
) -> io::Result<Signalling> {
    let uac = UdpSocket::bind(SocketAddr::new(settings.local_ip, 0))?;
    uac.set_nonblocking(true)?;
    uas.set_nonblocking(true)?;
    grow_buffers(&uac);
    grow_buffers(&uas);
    let uac_addr = uac.local_addr()?;
    let uas_addr = uas.local_addr()?;
    let shared = Arc::new(Shared::default());
    let (tx, rx) = unbounded();
    let agent = Agent {
        give_up_ns: settings.give_up.as_nanos() as u64,
        settings,
        clock,
        media,
        shared: shared.clone(),
        uac: MioUdp::from_std(uac),
        uac_addr,
        uas: MioUdp::from_std(uas),
        uas_addr,
        a: HashMap::new(),
        b: HashMap::new(),
        placed: HashMap::new(),
    };
    let thread = std::thread::Builder::new()
        .name("bench-sip".into())
        .spawn(move || agent.run(rx))?;
    Ok(Signalling {
        tx,
        shared,
        thread: Some(thread),
    })
}

const UAC: Token = Token(0);
const UAS: Token = Token(1);

impl Agent {
    fn run(mut self, cmds: Receiver<SigCmd>) {
        let Ok(mut poll) = Poll::new() else { return };
        if poll
            .registry()
            .register(&mut self.uac, UAC, Interest::READABLE)
            .is_err()
            || poll
                .registry()
                .register(&mut self.uas, UAS, Interest::READABLE)
                .is_err()
        {
            return;
        }
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; 65_536];
        let mut last_timers = 0u64;
        loop {
            while let Ok(cmd) = cmds.try_recv() {
                match cmd {
                    SigCmd::Start(n) => self.place(n),
                    SigCmd::Hangup(n) => self.hangup(n),
                    SigCmd::HangupAll => self.hangup_all(),
                    SigCmd::Cleanup => self.cleanup(),
                    SigCmd::Shutdown => {
                        self.cleanup();
                        return;
                    }
                }
            }
            let _ = poll.poll(&mut events, Some(Duration::from_millis(2)));
            // Drain both sockets whatever the events say (edge-triggered).
            for from_uas in [false, true] {
                for _ in 0..10_000 {
                    let sock = if from_uas { &self.uas } else { &self.uac };
                    let Ok((len, src)) = sock.recv_from(&mut buf) else {
                        break;
                    };
                    if let Ok(msg) = parse(&buf[..len]) {
                        self.on_message(from_uas, msg, src);
                    }
                }
            }
            let now = self.clock.now_ns();
            if now - last_timers >= 5_000_000 {
                last_timers = now;
                self.timers(now);
            }
        }
    }

    fn send(&self, from_uas: bool, bytes: &[u8], dest: SocketAddr) {
        let sock = if from_uas { &self.uas } else { &self.uac };
        let _ = sock.send_to(bytes, dest);
    }

    // ---- UAC -------------------------------------------------------------

    fn place(&mut self, n: u32) {
        bump(&self.shared.counters.started);
        let leg = match self.media.open_leg(n, Dir::BToA) {
            Ok(l) => l,
            Err(e) => {
                self.shared.fail(format!("rtp socket: {e}"));
                return;
            }
        };
        let s = &self.settings;
        let user = call_user(s.run, n);
        let target = s.target;
        let uri = format!("sip:{user}@{target}");
        let call_id = generate_call_id(&s.local_ip.to_string());
        let from = format!(
            "<sip:switchboard-bench@{}>;tag={}",
            self.uac_addr,
            generate_tag()
        );
        let to = format!("<sip:{user}@{target}>");
        let sdp = sdp_body(s.local_ip, leg.port, u64::from(n) + 1, Some(101));
        let mut req = Request::new(Method::Invite, uri.clone());
        let h = &mut req.headers;
        h.push(
            "Via",
            format!(
                "SIP/2.0/UDP {};branch={};rport",
                self.uac_addr,
                generate_branch()
            ),
        );
        h.push("Max-Forwards", "70");
        h.push("From", from.clone());
        h.push("To", to.clone());
        h.push("Call-ID", call_id.clone());
        h.push("CSeq", "1 INVITE");
        h.push(
            "Contact",
            format!("<sip:switchboard-bench@{}>", self.uac_addr),
        );
        h.push("X-Bench-Call", n.to_string());
        h.push("User-Agent", "switchboard-bench");
        h.push("Content-Type", "application/sdp");
        req.body = sdp.into_bytes().into();
        let bytes = req.to_bytes();
        let now = self.clock.now_ns();
        self.send(false, &bytes, target);
        self.placed.insert(n, call_id.clone());
        self.a.insert(
            call_id,
            ALeg {
                n,
                from,
                to,
                remote_target: uri.clone(),
                uri,
                route: Vec::new(),
                state: AState::Inviting,
                retx: Some(Retx::new(bytes, target, now, self.give_up_ns)),
                ack: Vec::new(),
                leg,
                invite_ns: now,
            },
        );
    }

    /// An in-dialog request of the calling leg (ACK for 2xx, BYE).
    fn a_request(&self, a: &ALeg, method: Method, cseq: u32, call_id: &str) -> Vec<u8> {
        let mut req = Request::new(method.clone(), a.remote_target.clone());
        let h = &mut req.headers;
        h.push(
            "Via",
            format!(
                "SIP/2.0/UDP {};branch={};rport",
                self.uac_addr,
                generate_branch()
            ),
        );
        h.push("Max-Forwards", "70");
        for r in &a.route {
            h.push("Route", r.clone());
        }
        h.push("From", a.from.clone());
        h.push("To", a.to.clone());
        h.push("Call-ID", call_id);
        h.push("CSeq", format!("{cseq} {method}"));
        h.push("User-Agent", "switchboard-bench");
        req.to_bytes()
    }

    fn on_uac_response(&mut self, resp: Response) {
        let Some(call_id) = resp.call_id().map(str::to_string) else {
            return;
        };
        let Some((_, method)) = resp.cseq() else {
            return;
        };
        let now = self.clock.now_ns();
        let target = self.settings.target;
        let Some(mut a) = self.a.remove(&call_id) else {
            return;
        };
        match (method, a.state) {
            (Method::Invite, AState::Inviting) if resp.status < 200 => {
                // Proceeding: the engine has it; stop retransmitting but
                // keep the give-up deadline.
                if let Some(r) = &mut a.retx {
                    r.next = u64::MAX;
                }
            }
            (Method::Invite, AState::Inviting) if resp.status < 300 => {
                a.to = resp.headers.get("To").unwrap_or(&a.to).to_string();
                if let Some(c) = resp.contact_uri() {
                    a.remote_target = c;
                }
                a.route = resp
                    .headers
                    .get_all("Record-Route")
                    .map(str::to_string)
                    .collect();
                a.route.reverse();
                a.ack = self.a_request(&a, Method::Ack, 1, &call_id);
                self.send(false, &a.ack, target);
                a.retx = None;
                match audio_dest(&resp.body) {
                    Some(d) if d.pcmu => {
                        a.state = AState::Up;
                        bump(&self.shared.counters.a_up);
                        self.shared.setup_done(now - a.invite_ns);
                        self.media.start_sending(&a.leg, d.addr, a.n, Dir::AToB);
                    }
                    other => {
                        let why = if other.is_some() {
                            "answer without PCMU"
                        } else {
                            "200 OK without usable SDP"
                        };
                        self.shared.fail(why);
                        self.media.close_leg(&a.leg);
                        a.state = AState::Bye;
                        let bye = self.a_request(&a, Method::Bye, 2, &call_id);
                        self.send(false, &bye, target);
                        a.retx = Some(Retx::new(bye, target, now, self.give_up_ns));
                        // A BYE of a failed call is not a teardown to count.
                        a.n = u32::MAX;
                    }
                }
            }
            (Method::Invite, AState::Inviting) => {
                // Non-2xx final: ACK in the INVITE's transaction (same branch).
                if let Some(r) = &a.retx {
                    if let Ok(SipMessage::Request(inv)) = parse(&r.bytes) {
                        let mut ack = Request::new(Method::Ack, a.uri.clone());
                        if let Some(v) = inv.headers.vias().next() {
                            ack.headers.push("Via", v);
                        }
                        ack.headers.push("Max-Forwards", "70");
                        ack.headers.push("From", a.from.clone());
                        ack.headers
                            .push("To", resp.headers.get("To").unwrap_or(&a.to));
                        ack.headers.push("Call-ID", call_id.clone());
                        ack.headers.push("CSeq", "1 ACK");
                        self.send(false, &ack.to_bytes(), target);
                    }
                }
                self.shared
                    .fail(format!("INVITE {} {}", resp.status, resp.reason));
                self.media.close_leg(&a.leg);
                self.placed.remove(&a.n);
                return;
            }
            (Method::Invite, _) if (200..300).contains(&resp.status) => {
                // A retransmitted 200: our ACK was lost.
                self.send(false, &a.ack, target);
            }
            (Method::Bye, AState::Bye) if resp.status >= 200 => {
                if a.n != u32::MAX {
                    if resp.status < 300 {
                        bump(&self.shared.counters.a_down);
                    } else {
                        bump(&self.shared.counters.teardown_failed);
                        self.shared.note(format!("BYE {}", resp.status));
                    }
                }
                return;
            }
            _ => {}
        }
        self.a.insert(call_id, a);
    }

    fn hangup(&mut self, n: u32) {
        if let Some(id) = self.placed.get(&n).cloned() {
            self.hangup_ids(vec![id]);
        }
    }

    fn hangup_all(&mut self) {
        let ids: Vec<String> = self.a.keys().cloned().collect();
        self.hangup_ids(ids);
    }

    fn hangup_ids(&mut self, ids: Vec<String>) {
        let now = self.clock.now_ns();
        let target = self.settings.target;
        for id in ids {
            let Some(mut a) = self.a.remove(&id) else {
                continue;
            };
            self.placed.remove(&a.n);
            match a.state {
                AState::Up => {
                    self.media.close_leg(&a.leg);
                    let bye = self.a_request(&a, Method::Bye, 2, &id);
                    self.send(false, &bye, target);
                    a.retx = Some(Retx::new(bye, target, now, self.give_up_ns));
                    a.state = AState::Bye;
                    self.a.insert(id, a);
                }
                AState::Inviting => {
                    self.media.close_leg(&a.leg);
                    self.shared.fail("no final response before hang-up");
                }
                AState::Bye => {
                    self.a.insert(id, a);
                }
            }
        }
    }

    // ---- UAS -------------------------------------------------------------

    fn respond(&self, from_uas: bool, req: &Request, status: u16, reason: &str, src: SocketAddr) {
        let resp = Response::for_request(req, status, reason);
        self.send(from_uas, &resp.to_bytes(), src);
    }

    fn on_uas_invite(&mut self, req: Request, src: SocketAddr) {
        let Some(call_id) = req.call_id().map(str::to_string) else {
            return;
        };
        if let Some(b) = self.b.get(&call_id) {
            if req.to_tag().is_none() {
                // A retransmitted INVITE: repeat our answer.
                self.send(true, &b.ok, src);
            } else {
                // A re-INVITE: same media, same answer.
                let mut ok = Response::for_request(&req, 200, "OK");
                ok.set_to_tag(&b.to_tag);
                self.fill_answer(&mut ok, b.leg.port, None);
                self.send(true, &ok.to_bytes(), src);
            }
            return;
        }
        let Some(n) = call_from_uri(&req.uri, self.settings.run) else {
            self.respond(true, &req, 404, "Not Found", src);
            return;
        };
        if !self.placed.contains_key(&n) || self.b.values().any(|b| b.n == n) {
            self.respond(true, &req, 486, "Busy Here", src);
            self.shared
                .note("engine INVITE for an unknown or answered call");
            return;
        }
        self.respond(true, &req, 100, "Trying", src);
        let offer = match audio_dest(&req.body) {
            Some(d) if d.pcmu => d,
            _ => {
                self.respond(true, &req, 488, "Not Acceptable Here", src);
                self.shared.note("engine INVITE without PCMU offer");
                return;
            }
        };
        let leg = match self.media.open_leg(n, Dir::AToB) {
            Ok(l) => l,
            Err(e) => {
                self.respond(true, &req, 503, "Service Unavailable", src);
                self.shared.note(format!("rtp socket: {e}"));
                return;
            }
        };
        let to_tag = generate_tag();
        let mut ok = Response::for_request(&req, 200, "OK");
        ok.set_to_tag(&to_tag);
        self.fill_answer(&mut ok, leg.port, offer.te);
        let bytes = ok.to_bytes();
        self.send(true, &bytes, src);
        let now = self.clock.now_ns();
        self.b.insert(
            call_id,
            BLeg {
                n,
                state: BState::Answered,
                retx: Some(Retx::new(bytes.clone(), src, now, self.give_up_ns)),
                ok: bytes,
                to_tag,
                dest: offer.addr,
                leg,
            },
        );
    }

    fn fill_answer(&self, ok: &mut Response, port: u16, te: Option<u8>) {
        ok.headers
            .push("Contact", format!("<sip:bench-uas@{}>", self.uas_addr));
        ok.headers.push("User-Agent", "switchboard-bench");
        ok.headers.push("Content-Type", "application/sdp");
        let sdp = sdp_body(self.settings.local_ip, port, u64::from(port), te);
        ok.body = sdp.into_bytes().into();
    }

    fn on_request(&mut self, from_uas: bool, req: Request, src: SocketAddr) {
        let call_id = req.call_id().unwrap_or("").to_string();
        match req.method {
            Method::Invite if from_uas => self.on_uas_invite(req, src),
            Method::Ack => {
                if let Some(b) = self.b.get_mut(&call_id) {
                    if b.state == BState::Answered {
                        b.state = BState::Up;
                        b.retx = None;
                        bump(&self.shared.counters.b_up);
                        self.media.start_sending(&b.leg, b.dest, b.n, Dir::BToA);
                    }
                }
            }
            Method::Bye => {
                self.respond(from_uas, &req, 200, "OK", src);
                if let Some(b) = self.b.remove(&call_id) {
                    self.media.close_leg(&b.leg);
                    bump(&self.shared.counters.b_down);
                } else if let Some(a) = self.a.get(&call_id) {
                    if a.state == AState::Up {
                        // The engine hung up the calling leg first.
                        let a = self.a.remove(&call_id).expect("present");
                        self.media.close_leg(&a.leg);
                        self.placed.remove(&a.n);
                        bump(&self.shared.counters.dropped);
                        self.shared.note("engine sent BYE to the calling leg");
                    }
                }
            }
            Method::Cancel => {
                self.respond(from_uas, &req, 200, "OK", src);
                if let Some(b) = self.b.remove(&call_id) {
                    self.media.close_leg(&b.leg);
                    self.shared.note("engine cancelled a called leg");
                }
            }
            Method::Options => self.respond(from_uas, &req, 200, "OK", src),
            _ => self.respond(from_uas, &req, 501, "Not Implemented", src),
        }
    }

    fn on_message(&mut self, from_uas: bool, msg: SipMessage, src: SocketAddr) {
        match msg {
            SipMessage::Request(req) => self.on_request(from_uas, req, src),
            SipMessage::Response(resp) if !from_uas => self.on_uac_response(resp),
            SipMessage::Response(_) => {}
        }
    }

    // ---- timers ----------------------------------------------------------

    fn timers(&mut self, now: u64) {
        let mut expired_a = Vec::new();
        for (id, a) in &mut self.a {
            if a.retx.as_mut().is_some_and(|r| r.step(now, &self.uac)) {
                expired_a.push(id.clone());
            }
        }
        for id in expired_a {
            let Some(a) = self.a.remove(&id) else {
                continue;
            };
            match a.state {
                AState::Inviting => {
                    self.media.close_leg(&a.leg);
                    self.placed.remove(&a.n);
                    self.shared.fail("INVITE timed out");
                }
                _ if a.n != u32::MAX => {
                    bump(&self.shared.counters.teardown_failed);
                    self.shared.note("BYE timed out");
                }
                _ => {}
            }
        }
        let mut expired_b = Vec::new();
        for (id, b) in &mut self.b {
            if b.retx.as_mut().is_some_and(|r| r.step(now, &self.uas)) {
                expired_b.push(id.clone());
            }
        }
        for id in expired_b {
            if let Some(b) = self.b.remove(&id) {
                self.media.close_leg(&b.leg);
                self.shared.note("no ACK for the called leg's 200 OK");
            }
        }
    }

    fn cleanup(&mut self) {
        for (_, a) in self.a.drain() {
            self.media.close_leg(&a.leg);
            if a.state == AState::Up {
                bump(&self.shared.counters.teardown_failed);
            }
        }
        for (_, b) in self.b.drain() {
            self.media.close_leg(&b.leg);
            bump(&self.shared.counters.teardown_failed);
            self.shared.note("called leg never got a BYE");
        }
        self.placed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_user_round_trips() {
        let u = call_user(0xab, 42);
        assert_eq!(u, "bench-00ab-42");
        assert_eq!(
            call_from_uri(&format!("sip:{u}@127.0.0.1:5070"), 0xab),
            Some(42)
        );
        assert_eq!(
            call_from_uri(&format!("sip:{u}@h;transport=udp"), 0xab),
            Some(42)
        );
        assert_eq!(call_from_uri(&format!("sip:{u}@h"), 0xac), None);
        assert_eq!(call_from_uri("sip:alice@h", 0xab), None);
    }
}
