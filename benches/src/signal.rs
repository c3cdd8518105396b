//! What every signalling thread (SIP agent, rtpengine ng client) shares with
//! the controller: commands in, counters and setup statistics out.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use hdrhistogram::Histogram;

use crate::stats::{new_histogram, record};

/// Commands from the controller.
#[derive(Debug)]
pub enum SigCmd {
    /// Place call number `n`.
    Start(u32),
    /// Stop media and hang up call number `n` (BYE / delete).
    Hangup(u32),
    /// Stop media and hang up every call still open (BYE / delete), and
    /// give up calls not yet answered.
    HangupAll,
    /// Forget every call still open; close its sockets.
    Cleanup,
    Shutdown,
}

/// Counters, cumulative over the run; the controller diffs them per level.
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls placed.
    pub started: AtomicU64,
    /// Calling legs answered (200 OK, ACK sent).
    pub a_up: AtomicU64,
    /// Called legs up (answered and ACKed by the engine).
    pub b_up: AtomicU64,
    /// Calls whose setup failed (error response, timeout, bad SDP).
    pub failed: AtomicU64,
    /// Calls the far end hung up before the tool did.
    pub dropped: AtomicU64,
    /// Calling legs torn down: BYE answered with 2xx.
    pub a_down: AtomicU64,
    /// Called legs torn down: BYE received and answered.
    pub b_down: AtomicU64,
    /// Hang-ups that got no 2xx in time, and legs left open at cleanup.
    pub teardown_failed: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CounterValues {
    pub started: u64,
    pub a_up: u64,
    pub b_up: u64,
    pub failed: u64,
    pub dropped: u64,
    pub a_down: u64,
    pub b_down: u64,
    pub teardown_failed: u64,
}

impl Counters {
    pub fn values(&self) -> CounterValues {
        let l = |a: &AtomicU64| a.load(Ordering::SeqCst);
        CounterValues {
            started: l(&self.started),
            a_up: l(&self.a_up),
            b_up: l(&self.b_up),
            failed: l(&self.failed),
            dropped: l(&self.dropped),
            a_down: l(&self.a_down),
            b_down: l(&self.b_down),
            teardown_failed: l(&self.teardown_failed),
        }
    }
}

impl CounterValues {
    pub fn since(&self, earlier: &CounterValues) -> CounterValues {
        CounterValues {
            started: self.started - earlier.started,
            a_up: self.a_up - earlier.a_up,
            b_up: self.b_up - earlier.b_up,
            failed: self.failed - earlier.failed,
            dropped: self.dropped - earlier.dropped,
            a_down: self.a_down - earlier.a_down,
            b_down: self.b_down - earlier.b_down,
            teardown_failed: self.teardown_failed - earlier.teardown_failed,
        }
    }
}

/// Asks for 4 MiB socket buffers, so a burst of SIP at a thousand calls is
/// queued rather than dropped (the forced variant needs CAP_NET_ADMIN; the
/// plain one is capped by net.core.rmem_max). Best effort.
pub fn grow_buffers(sock: &std::net::UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4 << 20;
    let fd = sock.as_raw_fd();
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        for opt in [force, plain] {
            // SAFETY: fd is a live socket; the value is a c_int of the given size.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                break;
            }
        }
    }
}

pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::SeqCst);
}

/// Setup times and failure reasons, per level (taken and reset).
pub struct SetupStats {
    /// INVITE (or ng offer) sent to the calling leg answered, ns.
    pub setup: Histogram<u64>,
    pub failures: BTreeMap<String, u64>,
}

impl Default for SetupStats {
    fn default() -> Self {
        SetupStats {
            setup: new_histogram(),
            failures: BTreeMap::new(),
        }
    }
}

/// State shared between a signalling thread and the controller.
#[derive(Default)]
pub struct Shared {
    pub counters: Counters,
    pub setup: Mutex<SetupStats>,
}

impl Shared {
    pub fn fail(&self, reason: impl Into<String>) {
        bump(&self.counters.failed);
        self.note(reason);
    }

    /// Records a problem without counting a failed setup.
    pub fn note(&self, reason: impl Into<String>) {
        if let Ok(mut s) = self.setup.lock() {
            *s.failures.entry(reason.into()).or_default() += 1;
        }
    }

    pub fn setup_done(&self, ns: u64) {
        if let Ok(mut s) = self.setup.lock() {
            record(&mut s.setup, ns);
        }
    }

    pub fn take_setup(&self) -> SetupStats {
        self.setup
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

/// A running signalling thread.
pub struct Signalling {
    pub tx: Sender<SigCmd>,
    pub shared: Arc<Shared>,
    pub thread: Option<JoinHandle<()>>,
}

impl Signalling {
    pub fn send(&self, cmd: SigCmd) {
        let _ = self.tx.send(cmd);
    }
}

impl Drop for Signalling {
    fn drop(&mut self) {
        let _ = self.tx.send(SigCmd::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The SDP the tool offers or answers with: PCMU, plus telephone-event when
/// `te` names its payload type.
pub fn sdp_body(ip: IpAddr, port: u16, session: u64, te: Option<u8>) -> String {
    let fmts = match te {
        Some(pt) => format!("0 {pt}"),
        None => "0".to_string(),
    };
    let mut s = format!(
        "v=0\r\no=switchboard-bench {session} {session} IN IP4 {ip}\r\ns=switchboard-bench\r\n\
         c=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {fmts}\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    if let Some(pt) = te {
        s.push_str(&format!(
            "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
        ));
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s
}

/// What the tool needs from a peer's SDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioDest {
    pub addr: SocketAddr,
    pub pcmu: bool,
    /// telephone-event payload type, if offered.
    pub te: Option<u8>,
}

/// Where to send audio per an SDP body.
pub fn audio_dest(body: &[u8]) -> Option<AudioDest> {
    let text = std::str::from_utf8(body).ok()?;
    let sdp = sip_stack::sdp::SessionDescription::parse(text).ok()?;
    let m = sdp
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0)?;
    let ip = m
        .connection
        .as_ref()
        .or(sdp.connection.as_ref())
        .and_then(|c| c.ip())?;
    let te = m
        .attributes
        .iter()
        .filter(|a| a.name.eq_ignore_ascii_case("rtpmap"))
        .filter_map(|a| a.value.as_deref())
        .find(|v| v.to_ascii_lowercase().contains("telephone-event/8000"))
        .and_then(|v| v.split_ascii_whitespace().next()?.parse().ok());
    Some(AudioDest {
        addr: SocketAddr::new(ip, m.port),
        pcmu: m.formats.iter().any(|f| f == "0"),
        te,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_round_trip() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let body = sdp_body(ip, 40_000, 7, Some(101));
        let d = audio_dest(body.as_bytes()).expect("our own SDP parses");
        assert_eq!(d.addr, "127.0.0.1:40000".parse().unwrap());
        assert!(d.pcmu);
        assert_eq!(d.te, Some(101));
        let body = sdp_body(ip, 40_002, 7, None);
        assert_eq!(audio_dest(body.as_bytes()).unwrap().te, None);
        assert_eq!(audio_dest(b"garbage"), None);
    }

    #[test]
    fn counters_diff() {
        let c = Counters::default();
        let before = c.values();
        bump(&c.started);
        bump(&c.a_up);
        let d = c.values().since(&before);
        assert_eq!((d.started, d.a_up, d.b_up), (1, 1, 0));
    }
}
