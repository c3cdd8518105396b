//! The crate's error type: one enum, each variant naming the input that was
//! wrong, so the control plane can log or map it without parsing strings.

use std::net::IpAddr;
use std::path::PathBuf;

/// Everything that can go wrong outside the media path (setup, files,
/// configuration). The media path itself counts problems instead of failing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("no free even RTP port in {min}-{max} on {ip}")]
    NoFreePort { ip: IpAddr, min: u16, max: u16 },
    #[error("RTP socket on {ip}:{port}: {source}")]
    Socket {
        ip: IpAddr,
        port: u16,
        source: std::io::Error,
    },
    #[error("spawning thread {name}: {source}")]
    Thread {
        name: String,
        source: std::io::Error,
    },
    #[error("prompt file {path}: {source}")]
    Wav { path: PathBuf, source: hound::Error },
    #[error("prompt file {path}: {reason}")]
    WavFormat { path: PathBuf, reason: String },
    #[error("recording {path}: {source}")]
    Recording { path: PathBuf, source: hound::Error },
    #[error("recording directory {path}: {source}")]
    RecordingDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("resampler {from} Hz -> {to} Hz: {reason}")]
    Resampler { from: u32, to: u32, reason: String },
    #[error("frame of {got} samples where {expected} were expected")]
    FrameSize { expected: usize, got: usize },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("invalid media config: {0}")]
    InvalidConfig(String),
    #[error("every media worker's command queue is full")]
    Overloaded,
    #[error("the media engine is shut down")]
    ShutDown,
    #[error("leg {0} is stopped")]
    LegStopped(String),
    #[error("media worker poll: {0}")]
    Poll(std::io::Error),
}
