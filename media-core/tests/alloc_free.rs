//! The media path must not allocate per packet or per frame. A counting
//! global allocator (per thread, so parallel tests do not interfere) checks
//! the steady state of every per-tick operation, and measures what a leg's
//! parts cost at construction (the numbers quoted in the crate docs).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use media_core::codec::Codec;
use media_core::jitter::{JitterBuffer, JitterConfig, Playout};
use media_core::player::{Prompt, PromptPlayer};
use media_core::quality::EModel;
use media_core::resample::Resampler;
use media_core::rtcp::packet::write_receiver_report;
use media_core::rtcp::{ReportBlock, RtcpConfig, RtcpSession};
use media_core::rtp::{RtpPacket, RtpWriter};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note(bytes: usize) {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + bytes));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, bytes) made by `f` on this thread.
fn measure<T>(f: impl FnOnce() -> T) -> (usize, usize, T) {
    let (a0, b0) = (ALLOCS.with(Cell::get), BYTES.with(Cell::get));
    let out = f();
    (ALLOCS.with(Cell::get) - a0, BYTES.with(Cell::get) - b0, out)
}

#[test]
fn per_tick_operations_do_not_allocate() {
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut rs = Resampler::new(8_000, 16_000).unwrap();
    let tone = Prompt::Tone {
        freq_hz: 425.0,
        on_ms: 1_000,
        off_ms: 4_000,
        amplitude: 8_000,
    };
    let mut player = PromptPlayer::new(&tone, 8_000).unwrap();
    let mut writer = RtpWriter::new(0, 160);
    let (mut pcm, mut wide, mut payload, mut packet) =
        ([0i16; 160], [0i16; 320], [0u8; 160], [0u8; 172]);
    let t0 = Instant::now();
    let mut rtcp = RtcpSession::new(
        RtcpConfig {
            ssrc: writer.ssrc(),
            cname: "alloc".into(),
            clock_rate: 8_000,
            interval: Duration::from_millis(200),
            seed: 1,
        },
        t0,
        std::time::SystemTime::now(),
    );
    let (mut report, mut rr, mut lsr) = ([0u8; 512], [0u8; 64], 0u32);
    let mut tick = |k: u32| {
        let now = t0 + Duration::from_millis(20 * k as u64);
        player.next_frame(&mut pcm);
        Codec::Pcmu.encode(&pcm, &mut payload);
        let n = writer.write(&payload, &mut packet).unwrap();
        let parsed = RtpPacket::parse(&packet[..n]).unwrap();
        rtcp.handle_rtp_sent(now, parsed.ssrc, parsed.timestamp, parsed.payload.len());
        rtcp.handle_rtp_received(now, &parsed, true);
        jb.push_rtp(now, &parsed);
        // RTCP: a report when due, and the far end's answer to it.
        if let Some(len) = rtcp.poll_transmit(now, &mut report) {
            assert!(len > 0);
            lsr = u32::from_be_bytes([report[10], report[11], report[12], report[13]]);
        }
        if k.is_multiple_of(10) {
            let block = ReportBlock {
                ssrc: parsed.ssrc,
                lsr,
                ..ReportBlock::default()
            };
            let len = write_receiver_report(7, &[block], &mut rr).unwrap();
            rtcp.handle_rtcp(now, &rr[..len]).unwrap();
        }
        assert!(rtcp
            .quality(Duration::from_millis(40), EModel::G711_PLC)
            .mos
            .is_some());
        if let Playout::Frame(p) = jb.pop(now) {
            Codec::Pcmu.decode(p, &mut pcm);
        }
        rs.process(&pcm, &mut wide).unwrap();
    };
    for k in 0..10 {
        tick(k); // warm-up (lazy FFT plans, etc.)
    }
    let (allocs, bytes, ()) = measure(|| {
        for k in 10..1_010 {
            tick(k);
        }
    });
    assert_eq!((allocs, bytes), (0, 0), "1000 ticks allocated");
    assert!(rtcp.rtt().is_some(), "the RTCP path ran");
}

#[test]
fn construction_cost_per_leg_part() {
    let cfg = JitterConfig {
        max_payload: Codec::Pcmu.encoded_len(160),
        ..JitterConfig::default()
    };
    let (_, jitter_bytes, _jb) = measure(|| JitterBuffer::new(cfg));
    let (_, resampler_bytes, _rs) = measure(|| Resampler::new(8_000, 16_000).unwrap());
    println!("jitter buffer: {jitter_bytes} B, 8k->16k resampler: {resampler_bytes} B");
    assert!(jitter_bytes <= 4 * 1024, "jitter {jitter_bytes}");
    assert!(resampler_bytes <= 64 * 1024, "resampler {resampler_bytes}");
}

/// An Opus leg's per-tick work: encode (FEC on, and a DTX encoder on
/// silence), jitter buffer with every 7th packet lost, decode, FEC
/// recovery from the next packet, concealment of gaps. (libopus' own C
/// allocations would not show here; it makes none after creation: its
/// scratch lives on the stack.)
#[test]
fn opus_ticks_do_not_allocate() {
    use media_core::codec::CodecState;
    use media_core::opus::MAX_OPUS_PACKET;
    use media_core::OpusParams;

    let mut coder = CodecState::new(Codec::Opus, OpusParams::default()).unwrap();
    let mut dtx = CodecState::new(Codec::Opus, OpusParams::for_peer(None, true)).unwrap();
    let mut jb = JitterBuffer::new(JitterConfig {
        clock_rate: 48_000,
        max_payload: Codec::Opus.encoded_len(960),
        ..JitterConfig::default()
    });
    let tone = Prompt::Tone {
        freq_hz: 425.0,
        on_ms: 1_000,
        off_ms: 1_000,
        amplitude: 8_000,
    };
    let mut player = PromptPlayer::new(&tone, 48_000).unwrap();
    let mut writer = RtpWriter::new(111, 960);
    let (mut pcm, mut payload, mut packet) = ([0i16; 960], [0u8; MAX_OPUS_PACKET], [0u8; 1_500]);
    let silence = [0i16; 960];
    let t0 = Instant::now();
    let (mut recovered, mut gaps) = (0, 0);
    let mut tick = |k: u32| {
        let now = t0 + Duration::from_millis(20 * k as u64);
        player.next_frame(&mut pcm);
        let len = coder.encode(&pcm, &mut payload);
        let _ = dtx.encode(&silence, &mut payload[len..]);
        let n = writer.write(&payload[..len], &mut packet).unwrap();
        // Every 7th packet lost, and a silent stretch (a DTX peer's gap).
        if k % 7 != 3 && !(200..210).contains(&k) {
            jb.push_rtp(now, &RtpPacket::parse(&packet[..n]).unwrap());
        }
        match jb.pop(now) {
            Playout::Frame(p) => {
                coder.decode(p, &mut pcm);
            }
            Playout::Insert => {
                coder.conceal_loss(None, &mut pcm);
            }
            Playout::Lost => {
                let next = jb.peek_next();
                recovered += usize::from(next.is_some());
                coder.conceal_loss(next, &mut pcm);
            }
            Playout::Empty | Playout::ComfortNoise(_) => {
                gaps += 1;
                coder.fill_gap(&mut pcm);
            }
        }
    };
    for k in 0..10 {
        tick(k);
    }
    let (allocs, bytes, ()) = measure(|| {
        for k in 10..510 {
            tick(k);
        }
    });
    assert_eq!((allocs, bytes), (0, 0), "500 Opus ticks allocated");
    assert!(recovered > 50, "FEC path ran {recovered} times");
    assert!(gaps >= 10, "gap concealment ran {gaps} times");
}
