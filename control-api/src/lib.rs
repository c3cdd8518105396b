//! # control-api — the call model, the gRPC control plane, and the binary
//!
//! `switchboard` is one process: a SIP signalling task (calls, dialogs,
//! transactions from `sip_stack`), media worker threads (`media_core`), audio
//! taps to speech backends (`asr_bridge`), a gRPC server for orchestration
//! services and an HTTP server for health and metrics.
//!
//! ```text
//!   SIP/UDP,TCP,TLS ──▶ signalling task ──legs──▶ media workers ──taps──▶ asr-bridge
//!                         │    ▲                      (RTP in/out, recording)
//!               events ◀──┘    └── commands ◀── gRPC CallControl (Hangup, Transfer, ...)
//!                 │
//!                 └──▶ EventBus ──▶ gRPC SubscribeEvents
//! ```
//!
//! Where inbound calls go is [`routing`] (the `[[routes]]` table by dialled
//! number, then `routing.bridge_to`). Everything has an embedded default
//! ([`config::Config`]) and listens on loopback until `server.listen_ip`
//! says otherwise.

pub mod config;
pub mod events;
pub mod grpc;
pub mod http;
pub mod proto;
pub mod routing;
pub mod signalling;
pub mod telemetry;

use anyhow::Context;
use config::Config;
use events::EventBus;
use media_core::{MediaConfig, MediaEngine};
use signalling::Signalling;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::info;

/// Events kept for gRPC subscribers that fall behind.
const EVENT_BACKLOG: usize = 4096;

/// How long gRPC and HTTP connections get to close at shutdown.
const LISTENER_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Runs the engine until `shutdown` resolves, then ends every call with BYE,
/// finalizes recordings and stops the listeners.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let metrics = telemetry::init_metrics();

    let recordings_dir = if config.recording.enabled {
        let dir = &config.recording.dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating recordings directory {}", dir.display()))?;
        Some(dir.canonicalize()?)
    } else {
        None
    };

    let media = MediaEngine::start(MediaConfig {
        workers: config.media.workers,
        rtp_ip: config.server.listen_ip,
        rtp_port_min: config.media.rtp_port_min,
        rtp_port_max: config.media.rtp_port_max,
        jitter_delay_ms: config.media.jitter_delay_ms,
        jitter_adaptive: config.media.jitter_adaptive,
        jitter_min_delay_ms: config.media.jitter_min_delay_ms,
        jitter_max_delay_ms: config.media.jitter_max_delay_ms,
    })
    .context("starting media workers")?;
    let media = Arc::new(media);
    let bus = EventBus::new(EVENT_BACKLOG);

    let (signalling, handle, commands) =
        Signalling::bind(config.clone(), media.clone(), bus.clone(), recordings_dir)
            .await
            .with_context(|| format!("binding SIP on {}", config.sip_addr()))?;
    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_addr())
        .await
        .with_context(|| format!("binding gRPC on {}", config.grpc_addr()))?;
    let http_listener = tokio::net::TcpListener::bind(config.http_addr())
        .await
        .with_context(|| format!("binding HTTP on {}", config.http_addr()))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let signalling_task = tokio::spawn(signalling.run(commands));
    let grpc_task = tokio::spawn(grpc::serve(
        grpc_listener,
        bus.clone(),
        handle.clone(),
        config.grpc.auth_token.clone(),
        stop_rx.clone(),
    ));
    let http_task = tokio::spawn(http::serve(http_listener, metrics, stopped));
    info!("switchboard ready");

    shutdown.await;
    info!("shutdown requested");
    handle.shutdown().await;
    let _ = signalling_task.await;
    let _ = stop_tx.send(true);
    // Listeners drain their connections; a client that will not let go does
    // not hold the process hostage.
    let drain = async {
        let _ = grpc_task.await;
        let _ = http_task.await;
    };
    if tokio::time::timeout(LISTENER_DRAIN, drain).await.is_err() {
        // Dropping the runtime at exit closes whatever is still open.
        tracing::warn!("listeners did not drain in time; closing them");
    }
    // The signalling task held the other reference; it has ended.
    if let Ok(media) = Arc::try_unwrap(media) {
        tokio::task::spawn_blocking(move || media.shutdown()).await?;
    }
    info!("switchboard stopped");
    Ok(())
}
