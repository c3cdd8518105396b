//! Helpers shared by the bridge tests: an engine on its own port range,
//! far-end sockets, tone generation and tone checks.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use media_core::codec::ulaw_encode;
use media_core::{MediaConfig, MediaEngine};

pub fn engine(port_min: u16, workers: usize) -> MediaEngine {
    MediaEngine::start(MediaConfig {
        workers,
        rtp_port_min: port_min,
        rtp_port_max: port_min + 200,
        ..MediaConfig::default()
    })
    .expect("engine starts")
}

/// A far end: a loopback socket with a read timeout.
pub fn far_end() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

/// Every datagram that arrives within `window`.
pub fn collect_for(sock: &UdpSocket, window: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    let until = Instant::now() + window;
    sock.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    while Instant::now() < until && out.len() < 10_000 {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            out.push(buf[..n].to_vec());
        }
    }
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    out
}

pub fn tone(freq: f64, rate: f64, start: usize, n: usize, amp: f64) -> Vec<i16> {
    (start..start + n)
        .map(|i| (amp * (std::f64::consts::TAU * freq * i as f64 / rate).sin()) as i16)
        .collect()
}

/// One 20 ms PCMU frame of a tone, frame number `k`.
pub fn pcmu_tone_frame(freq: f64, k: usize) -> Vec<u8> {
    tone(freq, 8_000.0, k * 160, 160, 10_000.0)
        .iter()
        .map(|&s| ulaw_encode(s))
        .collect()
}

/// Power of one frequency (Goertzel), normalised by length.
pub fn goertzel(x: &[i16], rate: f64, freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = v as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / x.len() as f64
}

pub fn zero_crossing_hz(x: &[i16], rate: f64) -> f64 {
    let ups = x.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    ups as f64 * rate / x.len() as f64
}

/// Asserts `x` is a tone of `freq`: zero crossings agree and the Goertzel
/// power at `freq` dwarfs the power at `other`.
pub fn assert_tone(x: &[i16], rate: f64, freq: f64, other: f64, what: &str) {
    assert!(x.len() > 800, "{what}: only {} samples", x.len());
    let hz = zero_crossing_hz(x, rate);
    assert!(
        (hz - freq).abs() < freq * 0.03,
        "{what}: {hz} Hz, want {freq}"
    );
    let (p, q) = (goertzel(x, rate, freq), goertzel(x, rate, other));
    assert!(
        p > 100.0 * q,
        "{what}: power {p} at {freq} vs {q} at {other}"
    );
}

/// The samples between the first and last loud ones, trimmed by `trim`.
pub fn loud_region(x: &[i16], trim: usize) -> &[i16] {
    let first = x.iter().position(|s| s.unsigned_abs() > 2_000).unwrap_or(0);
    let last = x
        .iter()
        .rposition(|s| s.unsigned_abs() > 2_000)
        .unwrap_or(0);
    if last > first + 2 * trim {
        &x[first + trim..last - trim]
    } else {
        &[]
    }
}

/// p50, p99 and max of durations, in microseconds.
pub fn percentiles_us(d: &mut [Duration]) -> (f64, f64, f64) {
    d.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| us(d[((d.len() - 1) as f64 * q) as usize]);
    (at(0.5), at(0.99), at(1.0))
}
