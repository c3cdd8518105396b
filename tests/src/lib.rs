//! Harness for Switchboard's end-to-end tests: starts the real `switchboard`
//! binary and real peers (SIPp), makes test speech with espeak-ng and sox, and
//! checks audio by correlation. Every wait is bounded in time.

pub mod audio;
pub mod baresip;
pub mod engine;
pub mod fork_server;
pub mod kamailio;
pub mod sipp;
pub mod stream_ua;

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;

/// A port free for both UDP and TCP right now (the engine binds both kinds
/// on some of them). Picked at random below the kernel's ephemeral range
/// (32768 and up on Linux), so the source port of some other test's
/// outgoing connection cannot take it between this check and the bind.
/// Still racy between tests that pick the same number; `Engine::start`
/// retries on a bind failure.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let port = 10_000 + rand_u16() % 10_000;
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if udp.is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// A base port with `span` consecutive free UDP ports (SIPp uses media
/// port, +2 and +4 for its RTP stream), in 20000..30000: apart from
/// `free_port` and below the ephemeral range.
pub fn free_udp_range(span: u16) -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand_u16() % 4_990) * 2;
        let all_free = (0..span).all(|i| UdpSocket::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free UDP port range");
}

/// A cheap pseudo-random number: a splitmix64 step over a counter seeded
/// with the clock and the process id, so two picks in a row differ.
fn rand_u16() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
        ^ u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let _ = STATE.compare_exchange(0, seed | 1, Relaxed, Relaxed);
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u16
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-e2e-{name}-{}-{}",
            std::process::id(),
            rand_u16()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("SWITCHBOARD_KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs a command to completion and fails with its output if it fails.
pub fn run_checked(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The repository's `tests/` folder (scenarios live under it).
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads gRPC call events until the first `ended` event (bounded in time).
pub async fn events_until_ended(
    stream: &mut tonic::Streaming<control_api::proto::CallEvent>,
    limit: std::time::Duration,
) -> Vec<control_api::proto::CallEvent> {
    use control_api::proto::call_event::Event;
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.message())
            .await
            .unwrap_or_else(|_| panic!("no CallEnded within {limit:?}; got {events:?}"))
            .expect("event stream error")
            .expect("event stream ended");
        let ended = matches!(next.event, Some(Event::Ended(_)));
        events.push(next);
        if ended {
            return events;
        }
    }
}

/// Reads gRPC call events until one matches `want` (bounded in time).
pub async fn wait_event(
    stream: &mut tonic::Streaming<control_api::proto::CallEvent>,
    limit: std::time::Duration,
    want: impl Fn(&control_api::proto::CallEvent) -> bool,
) -> control_api::proto::CallEvent {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.message())
            .await
            .unwrap_or_else(|_| panic!("expected event did not come within {limit:?}"))
            .expect("event stream error")
            .expect("event stream ended");
        if want(&next) {
            return next;
        }
    }
}

/// The kind of each event, for asserting sequences: "started", "answered", …
/// Periodic quality reports are left out (how many a call gets depends on
/// its length); look for them with [`quality_reports`].
pub fn event_kinds(events: &[control_api::proto::CallEvent]) -> Vec<&'static str> {
    use control_api::proto::call_event::Event;
    events
        .iter()
        .filter(|e| !matches!(e.event, Some(Event::Quality(_))))
        .map(|e| match &e.event {
            Some(Event::Started(_)) => "started",
            Some(Event::Answered(_)) => "answered",
            Some(Event::Ended(_)) => "ended",
            Some(Event::Lagged(_)) => "lagged",
            Some(Event::RecordingPaused(_)) => "recording_paused",
            Some(Event::RecordingResumed(_)) => "recording_resumed",
            Some(Event::Quality(_)) => "quality",
            Some(Event::ConferenceJoined(_)) => "conference_joined",
            Some(Event::ConferenceLeft(_)) => "conference_left",
            Some(Event::MuteChanged(_)) => "mute_changed",
            Some(Event::Dtmf(_)) => "dtmf",
            Some(Event::Hold(_)) => "hold",
            Some(Event::Transferred(_)) => "transferred",
            None => "none",
        })
        .collect()
}

/// The periodic quality reports among `events`.
pub fn quality_reports(
    events: &[control_api::proto::CallEvent],
) -> Vec<control_api::proto::QualityReport> {
    use control_api::proto::call_event::Event;
    events
        .iter()
        .filter_map(|e| match &e.event {
            Some(Event::Quality(q)) => Some(*q),
            _ => None,
        })
        .collect()
}
