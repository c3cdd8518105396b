//! `switchboard-bench`: a thin command-line wrapper over
//! [`switchboard_bench::run`]. See benches/README.md.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchboard_bench::{output, run, BenchConfig, Mode, Thresholds};

/// Load generator and latency probe for SIP/RTP engines: places concurrent
/// calls, streams 20 ms PCMU both ways with a latency probe in every
/// packet, and reports one-way latency, loss, jitter and CPU per load level.
#[derive(Parser, Debug)]
#[command(name = "switchboard-bench", version)]
struct Cli {
    /// What to benchmark.
    #[arg(long, value_enum, default_value = "switchboard")]
    mode: Mode,
    /// The engine's SIP address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    /// Where the built-in UAS answers the calls the engine bridges back.
    #[arg(long, default_value = "127.0.0.1:5070")]
    uas_listen: SocketAddr,
    /// rtpengine's ng control address.
    #[arg(long, default_value = "127.0.0.1:2223")]
    ng: SocketAddr,
    /// Local address for every socket of the tool.
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// Concurrent calls (one level).
    #[arg(short = 'n', long, default_value_t = 10, conflicts_with_all = ["step_calls", "step"])]
    calls: u32,
    /// Step mode: call counts to hold in turn, e.g. 100,250,500,1000.
    #[arg(long, value_delimiter = ',')]
    step_calls: Option<Vec<u32>>,
    /// Step mode: START:INCREMENT:MAX, e.g. 100:100:1000.
    #[arg(long, value_name = "START:INC:MAX")]
    step: Option<String>,
    /// Calls started per second while ramping up.
    #[arg(short = 'r', long, default_value_t = 50.0)]
    cps: f64,
    /// Seconds measured per level, once every call is up.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// PID of the Switchboard engine, to sample its CPU and RSS.
    #[arg(long)]
    engine_pid: Option<u32>,
    /// PID of rtpengine, to sample its CPU and RSS.
    #[arg(long)]
    rtpengine_pid: Option<u32>,
    /// Pass rule: most loss allowed, %.
    #[arg(long, default_value_t = 0.1)]
    max_loss: f64,
    /// Pass rule: highest p99 one-way latency allowed, ms.
    #[arg(long, default_value_t = 5.0)]
    max_p99_ms: f64,
    /// A send later than this behind schedule counts against the tool, ms.
    #[arg(long, default_value_t = 5.0)]
    max_late_ms: f64,
    /// Keep stepping after a level fails.
    #[arg(long)]
    no_stop: bool,
    /// Give up an unanswered INVITE, BYE or ng command after this many seconds.
    #[arg(long, default_value_t = 8.0)]
    give_up: f64,
    /// Write the whole report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a latency-vs-load SVG plot here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// UDP sockets per side that all calls' RTP shares; each leg's SDP
    /// names one of them, and packets are sorted by the probe inside.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    rtp_sockets: u16,
    /// No live progress line.
    #[arg(short, long)]
    quiet: bool,
}

fn levels(cli: &Cli) -> Result<Vec<u32>, String> {
    if let Some(l) = &cli.step_calls {
        return Ok(l.clone());
    }
    if let Some(s) = &cli.step {
        let parts: Vec<u32> = s
            .split(':')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--step {s}: {e}"))?;
        let [start, inc, max] = parts[..] else {
            return Err(format!("--step {s}: want START:INC:MAX"));
        };
        if start == 0 || inc == 0 || max < start {
            return Err(format!("--step {s}: want 0 < START <= MAX and INC > 0"));
        }
        return Ok((start..=max).step_by(inc as usize).take(1000).collect());
    }
    Ok(vec![cli.calls])
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let levels = match levels(&cli) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("switchboard-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let config = BenchConfig {
        mode: cli.mode,
        target: cli.target,
        uas_listen: cli.uas_listen,
        ng: cli.ng,
        local_ip: cli.local_ip,
        levels,
        cps: cli.cps,
        hold_secs: cli.duration,
        engine_pid: cli.engine_pid,
        rtpengine_pid: cli.rtpengine_pid,
        thresholds: Thresholds {
            max_loss_pct: cli.max_loss,
            max_p99_ms: cli.max_p99_ms,
            max_late_ms: cli.max_late_ms,
            ..Thresholds::default()
        },
        stop_on_fail: !cli.no_stop,
        give_up_secs: cli.give_up,
        progress: !cli.quiet,
        rtp_sockets: usize::from(cli.rtp_sockets),
    };
    let report = match run(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchboard-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", output::table(&report));
    if let Some(path) = &cli.json {
        if let Err(e) = output::write_json(&report, path) {
            eprintln!("switchboard-bench: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &cli.plot {
        if let Err(e) = output::write_plot(&report, path) {
            eprintln!("switchboard-bench: plotting to {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
