//! Baseline: the same RTP legs relayed by rtpengine, set up over its ng
//! control protocol (bencode dictionaries over UDP, each datagram
//! `<cookie> <bencoded dict>`, the reply echoing the cookie). No SIP: per
//! call, `offer` with the calling leg's SDP (the reply is what the called
//! leg is told: where it sends), `answer` with the called leg's SDP (the
//! reply tells the calling leg where to send), and `delete` at the end.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};

use crate::media::{Clock, Leg, MediaHandle};
use crate::probe::Dir;
use crate::signal::{audio_dest, bump, grow_buffers, sdp_body, Shared, SigCmd, Signalling};

/// A bencode value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bval {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Bval>),
    /// Keys in the order given; [`encode`] sorts them as bencode requires.
    Dict(Vec<(Vec<u8>, Bval)>),
}

impl Bval {
    pub fn str(s: &str) -> Bval {
        Bval::Bytes(s.as_bytes().to_vec())
    }

    pub fn dict(pairs: &[(&str, Bval)]) -> Bval {
        Bval::Dict(
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
                .collect(),
        )
    }

    /// A dictionary entry.
    pub fn get(&self, key: &str) -> Option<&Bval> {
        match self {
            Bval::Dict(d) => d.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Bval::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

pub fn encode(v: &Bval, out: &mut Vec<u8>) {
    match v {
        Bval::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
        Bval::Bytes(b) => {
            out.extend_from_slice(format!("{}:", b.len()).as_bytes());
            out.extend_from_slice(b);
        }
        Bval::List(l) => {
            out.push(b'l');
            for x in l {
                encode(x, out);
            }
            out.push(b'e');
        }
        Bval::Dict(d) => {
            let mut sorted: Vec<&(Vec<u8>, Bval)> = d.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push(b'd');
            for (k, v) in sorted {
                encode(&Bval::Bytes(k.clone()), out);
                encode(v, out);
            }
            out.push(b'e');
        }
    }
}

/// Decodes one value from the front of `buf`; returns it and the rest.
/// Bounded: nesting deeper than 32 is an error.
pub fn decode(buf: &[u8]) -> Option<(Bval, &[u8])> {
    decode_depth(buf, 0)
}

fn decode_depth(buf: &[u8], depth: u32) -> Option<(Bval, &[u8])> {
    if depth > 32 {
        return None;
    }
    match *buf.first()? {
        b'i' => {
            let end = buf.iter().position(|&c| c == b'e')?;
            let n = std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()?;
            Some((Bval::Int(n), &buf[end + 1..]))
        }
        b'l' => {
            let mut rest = &buf[1..];
            let mut items = Vec::new();
            while *rest.first()? != b'e' {
                let (v, r) = decode_depth(rest, depth + 1)?;
                items.push(v);
                rest = r;
            }
            Some((Bval::List(items), &rest[1..]))
        }
        b'd' => {
            let mut rest = &buf[1..];
            let mut items = Vec::new();
            while *rest.first()? != b'e' {
                let (k, r) = decode_depth(rest, depth + 1)?;
                let Bval::Bytes(k) = k else { return None };
                let (v, r) = decode_depth(r, depth + 1)?;
                items.push((k, v));
                rest = r;
            }
            Some((Bval::Dict(items), &rest[1..]))
        }
        b'0'..=b'9' => {
            let colon = buf.iter().position(|&c| c == b':')?;
            let len: usize = std::str::from_utf8(&buf[..colon]).ok()?.parse().ok()?;
            let start = colon + 1;
            let bytes = buf.get(start..start.checked_add(len)?)?;
            Some((Bval::Bytes(bytes.to_vec()), &buf[start + len..]))
        }
        _ => None,
    }
}

/// One ng datagram: cookie, space, bencoded command.
pub fn message(cookie: &str, cmd: &Bval) -> Vec<u8> {
    let mut out = format!("{cookie} ").into_bytes();
    encode(cmd, &mut out);
    out
}

/// Splits a reply into its cookie and dictionary.
pub fn reply(buf: &[u8]) -> Option<(&str, Bval)> {
    let sp = buf.iter().position(|&c| c == b' ')?;
    let cookie = std::str::from_utf8(&buf[..sp]).ok()?;
    let (v, _) = decode(&buf[sp + 1..])?;
    Some((cookie, v))
}

/// Sends `ping` and waits up to `wait` for `pong`.
pub fn ping(ng: SocketAddr, local_ip: IpAddr, wait: Duration) -> io::Result<bool> {
    let sock = UdpSocket::bind(SocketAddr::new(local_ip, 0))?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let msg = message("ping1", &Bval::dict(&[("command", Bval::str("ping"))]));
    let deadline = std::time::Instant::now() + wait;
    let mut buf = [0u8; 1500];
    while std::time::Instant::now() < deadline {
        let _ = sock.send_to(&msg, ng);
        if let Ok((len, _)) = sock.recv_from(&mut buf) {
            if let Some((_, v)) = reply(&buf[..len]) {
                if v.get("result").and_then(Bval::as_str) == Some("pong") {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Offer,
    Answer,
    Up,
    Delete,
}

struct NgCall {
    n: u32,
    step: Step,
    a: Leg,
    b: Leg,
    pending: Vec<u8>,
    next: u64,
    interval: u64,
    deadline: u64,
    started: u64,
    /// Where the called leg sends (from the offer's reply).
    b_dest: Option<SocketAddr>,
}

#[derive(Clone, Debug)]
pub struct NgSettings {
    pub ng: SocketAddr,
    pub local_ip: IpAddr,
    pub run: u16,
    pub give_up: Duration,
}

struct NgAgent {
    s: NgSettings,
    clock: Clock,
    media: MediaHandle,
    shared: Arc<Shared>,
    sock: UdpSocket,
    calls: HashMap<String, NgCall>,
    cookie_seq: u64,
}

pub fn start(settings: NgSettings, clock: Clock, media: MediaHandle) -> io::Result<Signalling> {
    let sock = UdpSocket::bind(SocketAddr::new(settings.local_ip, 0))?;
    sock.set_read_timeout(Some(Duration::from_millis(2)))?;
    grow_buffers(&sock);
    let shared = Arc::new(Shared::default());
    let (tx, rx) = unbounded();
    let agent = NgAgent {
        s: settings,
        clock,
        media,
        shared: shared.clone(),
        sock,
        calls: HashMap::new(),
        cookie_seq: 0,
    };
    let thread = std::thread::Builder::new()
        .name("bench-ng".into())
        .spawn(move || agent.run(rx))?;
    Ok(Signalling {
        tx,
        shared,
        thread: Some(thread),
    })
}

const T1_NS: u64 = 500_000_000;

impl NgAgent {
    fn call_id(&self, n: u32) -> String {
        format!("bench-{:04x}-{n}", self.s.run)
    }

    fn run(mut self, cmds: Receiver<SigCmd>) {
        let mut buf = vec![0u8; 65_536];
        let mut last_timers = 0;
        loop {
            while let Ok(cmd) = cmds.try_recv() {
                match cmd {
                    SigCmd::Start(n) => self.place(n),
                    SigCmd::Hangup(n) => {
                        let id = self.call_id(n);
                        self.hangup_ids(vec![id]);
                    }
                    SigCmd::HangupAll => {
                        let ids = self.calls.keys().cloned().collect();
                        self.hangup_ids(ids);
                    }
                    SigCmd::Cleanup => self.cleanup(),
                    SigCmd::Shutdown => {
                        self.cleanup();
                        return;
                    }
                }
            }
            // Each read waits at most the 2 ms read timeout.
            for _ in 0..10_000 {
                let Ok((len, _)) = self.sock.recv_from(&mut buf) else {
                    break;
                };
                if let Some((cookie, v)) = reply(&buf[..len]) {
                    let cookie = cookie.to_string();
                    self.on_reply(&cookie, v);
                }
            }
            let now = self.clock.now_ns();
            if now - last_timers >= 5_000_000 {
                last_timers = now;
                self.timers(now);
            }
        }
    }

    fn cookie(&mut self, call_id: &str, step: Step) -> String {
        self.cookie_seq += 1;
        format!("{call_id}:{step:?}:{}", self.cookie_seq)
    }

    fn command(&self, n: u32, step: Step, c: &NgCall) -> Bval {
        let call_id = self.call_id(n);
        let from_tag = format!("a{n}");
        let to_tag = format!("b{n}");
        let ip = self.s.local_ip;
        match step {
            Step::Offer => Bval::dict(&[
                ("command", Bval::str("offer")),
                ("call-id", Bval::str(&call_id)),
                ("from-tag", Bval::str(&from_tag)),
                (
                    "sdp",
                    Bval::str(&sdp_body(ip, c.a.port, u64::from(n) + 1, Some(101))),
                ),
            ]),
            Step::Answer => Bval::dict(&[
                ("command", Bval::str("answer")),
                ("call-id", Bval::str(&call_id)),
                ("from-tag", Bval::str(&from_tag)),
                ("to-tag", Bval::str(&to_tag)),
                (
                    "sdp",
                    Bval::str(&sdp_body(ip, c.b.port, u64::from(n) + 1, Some(101))),
                ),
            ]),
            Step::Delete | Step::Up => Bval::dict(&[
                ("command", Bval::str("delete")),
                ("call-id", Bval::str(&call_id)),
                ("from-tag", Bval::str(&from_tag)),
                // Free the ports now, not after rtpengine's default 30 s.
                ("delete-delay", Bval::Int(0)),
            ]),
        }
    }

    fn transmit(&mut self, cookie: String, n: u32, step: Step) {
        let now = self.clock.now_ns();
        let Some(c) = self.calls.get(&cookie_call(&cookie)) else {
            return;
        };
        let msg = message(&cookie, &self.command(n, step, c));
        let _ = self.sock.send_to(&msg, self.s.ng);
        let give_up = self.s.give_up.as_nanos() as u64;
        if let Some(c) = self.calls.get_mut(&cookie_call(&cookie)) {
            c.step = step;
            c.pending = msg;
            c.interval = T1_NS;
            c.next = now + T1_NS;
            c.deadline = now + give_up;
        }
    }

    fn place(&mut self, n: u32) {
        bump(&self.shared.counters.started);
        let (a, b) = match (
            self.media.open_leg(n, Dir::BToA),
            self.media.open_leg(n, Dir::AToB),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                for l in [a, b].into_iter().flatten() {
                    self.media.close_leg(&l);
                }
                self.shared.fail("rtp socket");
                return;
            }
        };
        let call_id = self.call_id(n);
        let now = self.clock.now_ns();
        self.calls.insert(
            call_id.clone(),
            NgCall {
                n,
                step: Step::Offer,
                a,
                b,
                pending: Vec::new(),
                next: 0,
                interval: T1_NS,
                deadline: 0,
                started: now,
                b_dest: None,
            },
        );
        let cookie = self.cookie(&call_id, Step::Offer);
        self.transmit(cookie, n, Step::Offer);
    }

    fn on_reply(&mut self, cookie: &str, v: Bval) {
        let call_id = cookie_call(cookie);
        let Some(c) = self.calls.get(&call_id) else {
            return;
        };
        let (n, step) = (c.n, c.step);
        // Only the reply to what is pending now (cookie names the step).
        if !cookie.contains(&format!(":{step:?}:")) {
            return;
        }
        let ok = v.get("result").and_then(Bval::as_str) == Some("ok");
        let sdp_dest = v
            .get("sdp")
            .and_then(Bval::as_str)
            .and_then(|s| audio_dest(s.as_bytes()));
        match step {
            Step::Offer | Step::Answer if !ok || sdp_dest.is_none() => {
                let why = v
                    .get("error-reason")
                    .and_then(Bval::as_str)
                    .unwrap_or("no SDP in reply");
                self.shared.fail(format!("ng {step:?}: {why}"));
                self.drop_call(&call_id, true);
            }
            Step::Offer => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.b_dest = sdp_dest.map(|d| d.addr);
                }
                let cookie = self.cookie(&call_id, Step::Answer);
                self.transmit(cookie, n, Step::Answer);
            }
            Step::Answer => {
                let now = self.clock.now_ns();
                let Some(c) = self.calls.get_mut(&call_id) else {
                    return;
                };
                c.step = Step::Up;
                c.pending.clear();
                let (Some(a_dest), Some(b_dest)) = (sdp_dest.map(|d| d.addr), c.b_dest) else {
                    return;
                };
                self.media.start_sending(&c.a, a_dest, n, Dir::AToB);
                self.media.start_sending(&c.b, b_dest, n, Dir::BToA);
                self.shared.setup_done(now - c.started);
                bump(&self.shared.counters.a_up);
                bump(&self.shared.counters.b_up);
            }
            Step::Delete => {
                if ok {
                    bump(&self.shared.counters.a_down);
                    bump(&self.shared.counters.b_down);
                } else {
                    bump(&self.shared.counters.teardown_failed);
                    self.shared.note("ng delete failed");
                }
                self.calls.remove(&call_id);
            }
            Step::Up => {}
        }
    }

    /// Closes a call's legs; with `delete`, tells rtpengine to forget it
    /// (fire and forget: the call failed anyway).
    fn drop_call(&mut self, call_id: &str, delete: bool) {
        if let Some(c) = self.calls.remove(call_id) {
            self.media.close_leg(&c.a);
            self.media.close_leg(&c.b);
            if delete {
                let cookie = format!("{call_id}:cleanup:0");
                let msg = message(&cookie, &self.command(c.n, Step::Delete, &c));
                let _ = self.sock.send_to(&msg, self.s.ng);
            }
        }
    }

    fn hangup_ids(&mut self, ids: Vec<String>) {
        let ids: Vec<(String, u32, Step)> = ids
            .into_iter()
            .filter_map(|k| self.calls.get(&k).map(|c| (k, c.n, c.step)))
            .collect();
        for (id, n, step) in ids {
            match step {
                Step::Up => {
                    if let Some(c) = self.calls.get(&id) {
                        self.media.close_leg(&c.a);
                        self.media.close_leg(&c.b);
                    }
                    let cookie = self.cookie(&id, Step::Delete);
                    self.transmit(cookie, n, Step::Delete);
                }
                Step::Offer | Step::Answer => {
                    self.shared.fail("no ng answer before hang-up");
                    self.drop_call(&id, true);
                }
                Step::Delete => {}
            }
        }
    }

    fn timers(&mut self, now: u64) {
        let mut expired = Vec::new();
        for (id, c) in &mut self.calls {
            if c.pending.is_empty() {
                continue;
            }
            if now >= c.deadline {
                expired.push((id.clone(), c.step));
            } else if now >= c.next {
                let _ = self.sock.send_to(&c.pending, self.s.ng);
                c.interval = (c.interval * 2).min(4_000_000_000);
                c.next = now + c.interval;
            }
        }
        for (id, step) in expired {
            if step == Step::Delete {
                bump(&self.shared.counters.teardown_failed);
                self.shared.note("ng delete timed out");
                self.calls.remove(&id);
            } else {
                self.shared.fail(format!("ng {step:?} timed out"));
                self.drop_call(&id, true);
            }
        }
    }

    fn cleanup(&mut self) {
        let ids: Vec<(String, Step)> = self
            .calls
            .iter()
            .map(|(k, c)| (k.clone(), c.step))
            .collect();
        for (id, step) in ids {
            if step == Step::Up {
                bump(&self.shared.counters.teardown_failed);
            }
            self.drop_call(&id, true);
        }
    }
}

/// The call id a cookie `<call-id>:<step>:<seq>` belongs to.
fn cookie_call(cookie: &str) -> String {
    let mut parts = cookie.rsplitn(3, ':');
    let _seq = parts.next();
    let _step = parts.next();
    parts.next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencode_round_trip() {
        let v = Bval::dict(&[
            ("sdp", Bval::str("v=0\r\n")),
            ("command", Bval::str("offer")),
            (
                "flags",
                Bval::List(vec![Bval::str("trust-address"), Bval::Int(-3)]),
            ),
        ]);
        let mut out = Vec::new();
        encode(&v, &mut out);
        // Keys sorted, as bencode requires.
        assert_eq!(
            out,
            b"d7:command5:offer5:flagsl13:trust-addressi-3ee3:sdp5:v=0\r\ne".to_vec()
        );
        let (back, rest) = decode(&out).expect("decodes");
        assert!(rest.is_empty());
        assert_eq!(back.get("command").and_then(Bval::as_str), Some("offer"));
        assert_eq!(back.get("sdp").and_then(Bval::as_str), Some("v=0\r\n"));
    }

    #[test]
    fn bencode_rejects_garbage() {
        for bad in [
            &b""[..],
            b"x",
            b"5:ab",
            b"d3:abc",
            b"i12",
            b"l",
            b"99999999999999999999:",
        ] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
        let deep = [b'l'; 100];
        assert!(decode(&deep).is_none());
    }

    #[test]
    fn replies_and_cookies() {
        let (cookie, v) = reply(b"c1 d6:result4:ponge").expect("parses");
        assert_eq!(cookie, "c1");
        assert_eq!(v.get("result").and_then(Bval::as_str), Some("pong"));
        assert_eq!(cookie_call("bench-00ab-7:Offer:12"), "bench-00ab-7");
        let m = message("k", &Bval::dict(&[("command", Bval::str("ping"))]));
        assert_eq!(m, b"k d7:command4:pinge".to_vec());
    }
}
