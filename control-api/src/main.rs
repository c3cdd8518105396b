//! `switchboard`: the engine's binary. With no arguments it runs on embedded
//! defaults, listening on loopback.

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "Real-time media and telephony engine"
)]
struct Args {
    /// A switchboard.toml; every key can also be set as `SWITCHBOARD_<SECTION>__<KEY>`.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = control_api::config::Config::load(args.config.as_deref())?;
    control_api::telemetry::init_logging(&config.server.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("signalling")
        .build()?;
    runtime.block_on(control_api::run(config, shutdown_signal()))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
    }
}
