//! # switchboard-bench — load generator and latency probe for SIP/RTP engines
//!
//! Places N concurrent calls through an engine over SIP/UDP (or through
//! rtpengine over its ng protocol, or straight into the tool's own UAS),
//! streams 20 ms PCMU RTP both ways with a latency probe in every payload,
//! and reports one-way latency percentiles, loss, reordering, jitter and
//! CPU per load level, with an honest capacity verdict. See `README.md`.
//!
//! ```no_run
//! use switchboard_bench::{run, BenchConfig, Mode};
//! let report = run(BenchConfig {
//!     mode: Mode::SelfTest,
//!     levels: vec![5],
//!     hold_secs: 2.0,
//!     ..BenchConfig::default()
//! })
//! .unwrap();
//! println!("{}", switchboard_bench::output::table(&report));
//! ```

pub mod capacity;
pub mod media;
pub mod ng;
pub mod output;
pub mod probe;
pub mod procstat;
pub mod signal;
pub mod sip;
pub mod stats;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use capacity::{Bound, Capacity, Status, Thresholds, Verdict};
use media::{Clock, Live, Media, MediaSettings, RecvSnapshot, SendSnapshot, Window};
use procstat::{ProcUsage, Target};
use signal::{CounterValues, SigCmd, Signalling};
pub use stats::LatencySummary;

/// What is benchmarked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// SIP calls through the engine at `target`, bridged back to the UAS.
    Switchboard,
    /// The same RTP relayed by rtpengine, set up over ng (no SIP).
    Rtpengine,
    /// Switchboard, then rtpengine, at the same levels.
    Both,
    /// The UAC straight to the built-in UAS: what the tool alone can drive.
    #[value(name = "self")]
    #[serde(rename = "self")]
    SelfTest,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Switchboard => "switchboard",
            Mode::Rtpengine => "rtpengine",
            Mode::Both => "both",
            Mode::SelfTest => "self",
        }
    }
}

/// Everything a run needs. `Default` is a 10-call, 10 s Switchboard run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchConfig {
    pub mode: Mode,
    /// The engine's SIP address (switchboard mode).
    pub target: SocketAddr,
    /// Where the built-in UAS listens (port 0: any free port; self mode
    /// sends its INVITEs there).
    pub uas_listen: SocketAddr,
    /// rtpengine's ng control address.
    pub ng: SocketAddr,
    /// Address of every socket the tool opens.
    pub local_ip: IpAddr,
    /// Concurrent calls per level, run in increasing order.
    pub levels: Vec<u32>,
    /// Calls started per second while ramping up.
    pub cps: f64,
    /// Measurement window per level, after every call is up.
    pub hold_secs: f64,
    /// Switchboard's process, for CPU and RSS.
    pub engine_pid: Option<u32>,
    /// rtpengine's process, for CPU and RSS.
    pub rtpengine_pid: Option<u32>,
    pub thresholds: Thresholds,
    /// Stop stepping at the first level that does not pass.
    pub stop_on_fail: bool,
    /// Give up an unanswered INVITE, BYE or ng command after this long.
    pub give_up_secs: f64,
    /// Live progress line on stderr once a second.
    pub progress: bool,
    /// UDP sockets per side that every call's RTP shares (calls are told
    /// apart by the probe in the payload; see `media::pool`).
    pub rtp_sockets: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        BenchConfig {
            mode: Mode::Switchboard,
            target: SocketAddr::new(lo, 5060),
            uas_listen: SocketAddr::new(lo, 5070),
            ng: SocketAddr::new(lo, 2223),
            local_ip: lo,
            levels: vec![10],
            cps: 50.0,
            hold_secs: 10.0,
            engine_pid: None,
            rtpengine_pid: None,
            thresholds: Thresholds::default(),
            stop_on_fail: true,
            give_up_secs: 8.0,
            progress: false,
            rtp_sockets: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("rtpengine at {0} did not answer an ng ping")]
    NoRtpengine(SocketAddr),
    #[error("media threads stopped answering")]
    MediaGone,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// One direction of one level.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirReport {
    pub sent: u64,
    /// Unique probes received.
    pub received: u64,
    /// sent - received (includes misrouted).
    pub lost: u64,
    pub loss_pct: f64,
    pub duplicates: u64,
    pub reordered: u64,
    pub misrouted: u64,
    pub latency: LatencySummary,
    /// RFC 3550 jitter, averaged over the direction's streams.
    pub jitter_ms_mean: f64,
    pub jitter_ms_max: f64,
}

/// Call setup and teardown of one level.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallReport {
    pub counts: CounterValues,
    /// Time from INVITE (ng offer) to the calling leg's 200 OK (answer).
    pub setup: LatencySummary,
    /// Failure reasons and oddities seen, with counts.
    pub problems: BTreeMap<String, u64>,
}

/// The tool's own side of a level: did it offer the load it claims?
#[derive(Clone, Debug, Default, Serialize)]
pub struct ToolReport {
    pub due: u64,
    pub sent: u64,
    pub skipped: u64,
    pub late: u64,
    pub send_errors: u64,
    /// (late + skipped + send errors) / due, %.
    pub behind_pct: f64,
    /// How far behind schedule sends went out.
    pub lateness: LatencySummary,
    pub process: Option<ProcUsage>,
    pub sender_thread_cpu_pct: Option<f64>,
    pub receiver_thread_cpu_pct: Option<f64>,
    /// Datagrams without an intact probe of this run.
    pub foreign_packets: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LevelReport {
    pub calls: u32,
    pub window_secs: f64,
    pub setup: CallReport,
    pub a_to_b: DirReport,
    pub b_to_a: DirReport,
    /// Both directions together.
    pub latency: LatencySummary,
    pub loss_pct: f64,
    /// Probes received per second in the window, both directions.
    pub packets_per_sec: f64,
    pub tool: ToolReport,
    pub engine: Option<ProcUsage>,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModeReport {
    pub mode: Mode,
    pub levels: Vec<LevelReport>,
    pub capacity: Capacity,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub tool: String,
    /// The run id carried in every probe and SIP user part.
    pub run_id: u16,
    pub config: BenchConfig,
    pub modes: Vec<ModeReport>,
}

struct Ctx {
    config: BenchConfig,
    clock: Clock,
    window: Arc<Window>,
    live: Arc<Live>,
    media: Media,
    next_call: u32,
}

/// Runs the benchmark the config describes, level by level, mode by mode.
pub fn run(config: BenchConfig) -> Result<BenchReport, BenchError> {
    if config.levels.is_empty() || config.levels.contains(&0) {
        return Err(BenchError::Config(
            "levels must be non-empty and > 0".into(),
        ));
    }
    if !(config.cps > 0.0 && config.hold_secs > 0.0 && config.give_up_secs > 0.0) {
        return Err(BenchError::Config(
            "cps, hold and give-up times must be > 0".into(),
        ));
    }
    if !(1..=64).contains(&config.rtp_sockets) {
        return Err(BenchError::Config("rtp sockets must be 1..=64".into()));
    }
    let run_id = (media_core::rtp::random_u64() & 0xFFFF) as u16;
    let clock = Clock::new();
    let window = Arc::new(Window::closed());
    let live = Arc::new(Live::default());
    let media = Media::start(
        clock,
        window.clone(),
        live.clone(),
        MediaSettings {
            run: run_id,
            local_ip: config.local_ip,
            max_late_ns: (config.thresholds.max_late_ms * 1e6) as u64,
            rtp_sockets: config.rtp_sockets,
        },
    )
    .map_err(io_err("starting media threads"))?;
    let mut levels = config.levels.clone();
    levels.sort_unstable();
    levels.dedup();
    let modes = match config.mode {
        Mode::Both => vec![Mode::Switchboard, Mode::Rtpengine],
        m => vec![m],
    };
    let mut ctx = Ctx {
        config,
        clock,
        window,
        live,
        media,
        next_call: 0,
    };
    let mut reports = Vec::new();
    for mode in modes {
        let (sig, pid) = start_mode(&ctx, mode)?;
        let mut done = Vec::new();
        for &calls in &levels {
            let level = run_level(&mut ctx, &sig, mode, calls, pid)?;
            let stop = ctx.config.stop_on_fail && level.verdict.status != Status::Pass;
            if ctx.config.progress {
                eprintln!("{}", output::level_line(mode, &level));
            }
            done.push(level);
            if stop {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        drop(sig);
        let cap = capacity::capacity(
            &done
                .iter()
                .map(|l| (l.calls, l.verdict.status))
                .collect::<Vec<_>>(),
        );
        reports.push(ModeReport {
            mode,
            levels: done,
            capacity: cap,
        });
    }
    let Ctx { config, media, .. } = ctx;
    media.shutdown();
    Ok(BenchReport {
        tool: format!("switchboard-bench {}", env!("CARGO_PKG_VERSION")),
        run_id,
        config,
        modes: reports,
    })
}

fn start_mode(ctx: &Ctx, mode: Mode) -> Result<(Signalling, Option<u32>), BenchError> {
    let c = &ctx.config;
    let give_up = Duration::from_secs_f64(c.give_up_secs);
    let run = ctx.media_run();
    match mode {
        Mode::Switchboard | Mode::SelfTest => {
            let uas = UdpSocket::bind(c.uas_listen)
                .map_err(io_err(format!("binding the UAS to {}", c.uas_listen)))?;
            let target = if mode == Mode::SelfTest {
                uas.local_addr().map_err(io_err("UAS address"))?
            } else {
                c.target
            };
            let sig = sip::start(
                sip::SipSettings {
                    target,
                    local_ip: c.local_ip,
                    run,
                    give_up,
                },
                uas,
                ctx.clock,
                ctx.media.handle(),
            )
            .map_err(io_err("starting the SIP thread"))?;
            let pid = (mode == Mode::Switchboard)
                .then_some(c.engine_pid)
                .flatten();
            Ok((sig, pid))
        }
        Mode::Rtpengine | Mode::Both => {
            if !ng::ping(c.ng, c.local_ip, Duration::from_secs(3)).map_err(io_err("ng ping"))? {
                return Err(BenchError::NoRtpengine(c.ng));
            }
            let sig = ng::start(
                ng::NgSettings {
                    ng: c.ng,
                    local_ip: c.local_ip,
                    run,
                    give_up,
                },
                ctx.clock,
                ctx.media.handle(),
            )
            .map_err(io_err("starting the ng thread"))?;
            let pid = c.rtpengine_pid.or(if c.mode == Mode::Rtpengine {
                c.engine_pid
            } else {
                None
            });
            Ok((sig, pid))
        }
    }
}

impl Ctx {
    fn media_run(&self) -> u16 {
        self.media.run()
    }

    /// Sleeps until `until_ns` in ≤100 ms steps, printing progress.
    fn wait_until(&self, until_ns: u64, progress: &mut output::Progress, phase: &str) {
        for _ in 0..1_000_000 {
            let now = self.clock.now_ns();
            if now >= until_ns {
                return;
            }
            progress.tick(phase);
            std::thread::sleep(Duration::from_nanos((until_ns - now).min(100_000_000)));
        }
    }

    /// Waits up to `limit` for `done` to hold over the counters since `base`.
    fn wait_for(
        &self,
        sig: &Signalling,
        base: &CounterValues,
        limit: Duration,
        progress: &mut output::Progress,
        phase: &str,
        done: impl Fn(&CounterValues) -> bool,
    ) {
        let deadline = self.clock.now_ns() + limit.as_nanos() as u64;
        while self.clock.now_ns() < deadline {
            if done(&sig.shared.counters.values().since(base)) {
                return;
            }
            progress.tick(phase);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn run_level(
    ctx: &mut Ctx,
    sig: &Signalling,
    mode: Mode,
    calls: u32,
    engine_pid: Option<u32>,
) -> Result<LevelReport, BenchError> {
    let c = ctx.config.clone();
    let base = sig.shared.counters.values();
    let _ = sig.shared.take_setup();
    let mut progress = output::Progress::new(
        c.progress,
        std::io::stderr().is_terminal(),
        mode,
        calls,
        ctx.clock,
        ctx.live.clone(),
        sig.shared.clone(),
        base,
    );
    // Ramp.
    let t0 = ctx.clock.now_ns();
    let first_call = ctx.next_call;
    let step_ns = (1e9 / c.cps) as u64;
    for i in 0..calls {
        ctx.wait_until(t0 + u64::from(i) * step_ns, &mut progress, "ramp");
        sig.send(SigCmd::Start(ctx.next_call));
        ctx.next_call = ctx.next_call.wrapping_add(1);
    }
    let give_up = Duration::from_secs_f64(c.give_up_secs + 1.0);
    let want = u64::from(calls);
    ctx.wait_for(sig, &base, give_up, &mut progress, "setup", |v| {
        v.a_up + v.failed >= want && v.b_up + v.failed >= want
    });
    // Hold: the window is fixed ahead of time so both media threads agree.
    let start = ctx.clock.now_ns() + 200_000_000;
    let end = start + (c.hold_secs * 1e9) as u64;
    ctx.window.set(start, end);
    ctx.wait_until(start, &mut progress, "hold");
    let tid = |t: &std::sync::atomic::AtomicI32| t.load(std::sync::atomic::Ordering::Relaxed);
    let targets = [
        engine_pid.map(Target::process),
        Some(Target::process(std::process::id())),
        Some(Target::own_thread(tid(&ctx.live.sender_tid))),
        Some(Target::own_thread(tid(&ctx.live.receiver_tid))),
    ];
    let marks: Vec<_> = targets
        .iter()
        .map(|t| t.as_ref().and_then(Target::start))
        .collect();
    progress.set_hold(start, end);
    ctx.wait_until(end, &mut progress, "hold");
    let usage: Vec<Option<ProcUsage>> = targets
        .iter()
        .zip(&marks)
        .map(|(t, m)| t.as_ref().zip(m.as_ref()).and_then(|(t, m)| t.finish(m)))
        .collect();
    // Let in-window packets arrive.
    ctx.wait_until(end + 300_000_000, &mut progress, "drain");
    let (send, recv) = ctx.media.snapshot().ok_or(BenchError::MediaGone)?;
    ctx.window.close();
    // Tear down at the ramp rate, as calls end in life, then sweep.
    let t1 = ctx.clock.now_ns();
    for i in 0..calls {
        ctx.wait_until(t1 + u64::from(i) * step_ns, &mut progress, "hangup");
        sig.send(SigCmd::Hangup(first_call.wrapping_add(i)));
    }
    sig.send(SigCmd::HangupAll);
    ctx.wait_for(sig, &base, give_up, &mut progress, "hangup", |v| {
        v.a_down + v.dropped + v.teardown_failed >= v.a_up && v.b_down >= v.b_up
    });
    sig.send(SigCmd::Cleanup);
    std::thread::sleep(Duration::from_millis(50));
    progress.finish();
    let counts = sig.shared.counters.values().since(&base);
    let setup = sig.shared.take_setup();
    Ok(build_level(
        &c,
        calls,
        (end - start) as f64 / 1e9,
        CallReport {
            counts,
            setup: LatencySummary::of(&setup.setup),
            problems: setup.failures,
        },
        send,
        recv,
        &usage,
    ))
}

fn build_level(
    c: &BenchConfig,
    calls: u32,
    window_secs: f64,
    setup: CallReport,
    send: SendSnapshot,
    recv: RecvSnapshot,
    usage: &[Option<ProcUsage>],
) -> LevelReport {
    let mut all = stats::new_histogram();
    let mut dirs = Vec::new();
    for (s, r) in send.dirs.iter().zip(&recv.dirs) {
        let _ = all.add(&r.latency);
        let lost = s.sent.saturating_sub(r.received);
        dirs.push(DirReport {
            sent: s.sent,
            received: r.received,
            lost,
            loss_pct: pct(lost, s.sent),
            duplicates: r.duplicates,
            reordered: r.reordered,
            misrouted: r.misrouted,
            latency: LatencySummary::of(&r.latency),
            jitter_ms_mean: if r.streams > 0 {
                r.jitter_sum_ns / r.streams as f64 / 1e6
            } else {
                0.0
            },
            jitter_ms_max: r.jitter_max_ns / 1e6,
        });
    }
    let b_to_a = dirs.pop().unwrap_or_default();
    let a_to_b = dirs.pop().unwrap_or_default();
    let sum = |f: fn(&media::DirSend) -> u64| send.dirs.iter().map(f).sum::<u64>();
    let due = sum(|d| d.due);
    let behind = sum(|d| d.late) + sum(|d| d.skipped) + sum(|d| d.send_errors);
    let tool = ToolReport {
        due,
        sent: sum(|d| d.sent),
        skipped: sum(|d| d.skipped),
        late: sum(|d| d.late),
        send_errors: sum(|d| d.send_errors),
        behind_pct: pct(behind, due),
        lateness: LatencySummary::of(&send.lateness),
        process: usage.get(1).cloned().flatten(),
        sender_thread_cpu_pct: usage.get(2).cloned().flatten().map(|u| u.cpu_pct),
        receiver_thread_cpu_pct: usage.get(3).cloned().flatten().map(|u| u.cpu_pct),
        foreign_packets: recv.foreign,
    };
    let sent = a_to_b.sent + b_to_a.sent;
    let received = a_to_b.received + b_to_a.received;
    let latency = LatencySummary::of(&all);
    let loss_pct = pct(sent.saturating_sub(received), sent);
    let counts = &setup.counts;
    let facts = capacity::LevelFacts {
        calls,
        calls_up: counts.a_up.min(counts.b_up),
        received,
        loss_pct,
        p99_ms: latency.p99_ms,
        due,
        behind,
        sender_cpu_pct: tool.sender_thread_cpu_pct,
        receiver_cpu_pct: tool.receiver_thread_cpu_pct,
    };
    LevelReport {
        calls,
        window_secs,
        verdict: capacity::judge(&facts, &c.thresholds),
        setup,
        a_to_b,
        b_to_a,
        latency,
        loss_pct,
        packets_per_sec: received as f64 / window_secs,
        tool,
        engine: usage.first().cloned().flatten(),
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}
