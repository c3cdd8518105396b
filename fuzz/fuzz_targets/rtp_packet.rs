//! RTP parser and jitter buffer against hostile input.
//!
//! The whole input is first parsed as one datagram. Then it is read as a
//! capture: records of `[len: u8][advance_ms: u8][len bytes]`; each record
//! advances a synthetic clock, is parsed, and valid packets are pushed into a
//! jitter buffer that is popped on a 20 ms tick grid, as a media worker
//! would. Nothing may panic, and the buffer's outputs must stay in bounds.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media_core::jitter::{JitterBuffer, JitterConfig, Playout};
use media_core::rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(data) {
        assert!(p.payload.len() + 12 <= data.len());
        assert!(p.payload_type < 128);
    }

    let config = JitterConfig::default();
    let max_payload = config.max_payload;
    let mut jb = JitterBuffer::new(config);
    let tick = Duration::from_millis(20);
    let start = Instant::now();
    let mut now = start;
    let mut next_tick = start;
    let mut rest = data;
    while let [len, advance, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (datagram, tail) = tail.split_at(n);
        rest = tail;
        now += Duration::from_millis(*advance as u64);
        if let Ok(packet) = RtpPacket::parse(datagram) {
            jb.push_rtp(now, &packet);
        }
        while next_tick <= now {
            if let Playout::Frame(frame) = jb.pop(next_tick) {
                assert!(frame.len() <= max_payload);
            }
            next_tick += tick;
        }
        assert!(jb.buffered() <= 16);
    }
    // Drain: a buffer left alone must run dry within its capacity.
    for _ in 0..64 {
        let _ = jb.pop(next_tick);
        next_tick += tick;
    }
    assert_eq!(jb.buffered(), 0);
});
