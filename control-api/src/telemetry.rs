//! Logs (`tracing`) and metrics (Prometheus text via `metrics`).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Installs the global `tracing` subscriber; later calls are no-ops.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Installs the global metrics recorder once and returns its handle.
pub fn init_metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .expect("the metrics recorder is installed once, here");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!("switchboard_active_calls", "Calls in progress.");
    describe_gauge!("switchboard_sip_transactions", "Live SIP transactions.");
    describe_counter!("switchboard_calls_answered_total", "Calls answered.");
    describe_counter!(
        "switchboard_calls_rejected_total",
        "INVITEs refused, by reason."
    );
    describe_counter!("switchboard_calls_ended_total", "Calls ended, by reason.");
    describe_counter!(
        "switchboard_sip_messages_received_total",
        "SIP datagrams received."
    );
    describe_counter!(
        "switchboard_sip_parse_errors_total",
        "SIP messages that did not parse."
    );
    describe_counter!(
        "switchboard_sip_messages_dropped_total",
        "SIP messages dropped, by reason."
    );
    describe_counter!(
        "switchboard_rtp_packets_received_total",
        "RTP packets received."
    );
    describe_counter!("switchboard_rtp_packets_sent_total", "RTP packets sent.");
    describe_counter!(
        "switchboard_rtp_bytes_received_total",
        "RTP bytes received."
    );
    describe_counter!("switchboard_rtp_bytes_sent_total", "RTP bytes sent.");
    describe_counter!(
        "switchboard_rtp_packets_lost_total",
        "RTP packets lost (sequence gaps)."
    );
    describe_counter!(
        "switchboard_srtp_auth_failures_total",
        "SRTP/SRTCP packets dropped: authentication failed."
    );
    describe_counter!(
        "switchboard_srtp_replayed_total",
        "SRTP/SRTCP packets dropped as replays."
    );
    describe_counter!(
        "switchboard_asr_stream_failures_total",
        "Speech streams that failed."
    );
}
