//! A conference's ticks must not allocate: every member's packets into its
//! jitter buffer, decoding, the mix (with a whisperer and a muted member),
//! encoding and sending each minus-one mix, taps, and key presses detected
//! on a member (RFC 4733) and delivered to its sink.
//!
//! Counts allocations of every thread but the test's own; its own binary,
//! with a single test, so nothing else runs alongside.

mod common;
mod counting;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use media_core::dtmf::{event_for_digit, DtmfEvent, DtmfSender};
use media_core::rtp::{RtpHeader, RtpWriter};
use media_core::{Codec, LegHandle, LegSpec, Prompt, Role, TapDirection, TapFrame};

/// `frames` 20 ms rounds: each far end sends a tone frame to its leg and
/// drains what it got; far end 0 presses `digit` during the rounds when
/// given one (event packets in place of its audio).
fn rounds(
    fars: &[UdpSocket],
    legs: &[LegHandle],
    writers: &mut [RtpWriter],
    start_frame: usize,
    frames: usize,
    digit: Option<char>,
) {
    let (mut pkt, mut buf, mut ev) = ([0u8; 200], [0u8; 1500], [0u8; 4]);
    let mut press = digit.map(|d| DtmfSender::new(event_for_digit(d).unwrap(), 100, 10, 8_000, 20));
    let press_ts = writers[0].next_header().timestamp;
    let start = Instant::now();
    for k in 0..frames {
        for (i, far) in fars.iter().enumerate() {
            let event = (i == 0)
                .then(|| press.as_mut().and_then(|p| p.next_packet(&mut ev)))
                .flatten();
            let n = match event {
                Some(p) => {
                    let h = writers[0].next_header();
                    writers[0].skip();
                    RtpHeader {
                        payload_type: 101,
                        marker: p.marker,
                        seq: h.seq.wrapping_add(k as u16),
                        timestamp: press_ts,
                        ssrc: h.ssrc,
                    }
                    .write(&ev[..p.len], &mut pkt)
                    .unwrap()
                }
                None => writers[i]
                    .write(
                        &pcmu_tone_frame(400.0 + 300.0 * i as f64, start_frame + k),
                        &mut pkt,
                    )
                    .unwrap(),
            };
            far.send_to(&pkt[..n], legs[i].local_addr()).unwrap();
            while far.recv_from(&mut buf).is_ok() {}
        }
        let due = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}

#[test]
fn conference_ticks_do_not_allocate() {
    counting::exclude_this_thread();
    let engine = engine(36_800, 1);
    let fars: Vec<UdpSocket> = (0..3).map(|_| far_end()).collect();
    for f in &fars {
        f.set_nonblocking(true).unwrap();
    }
    let (dtmf_tx, dtmf_rx) = crossbeam_channel::bounded::<DtmfEvent>(16);
    let (tap_tx, tap_rx) = crossbeam_channel::bounded::<TapFrame>(2_000);
    let mut dtmf_sink = Some(dtmf_tx);
    let mut tap_sink = Some(tap_tx);
    let legs: Vec<LegHandle> = fars
        .iter()
        .enumerate()
        .map(|(i, far)| {
            let mut spec = LegSpec::new(format!("alloc-conf-{i}"), Codec::Pcmu);
            spec.remote = Some(far.local_addr().unwrap());
            spec.prompt = Prompt::Silence;
            spec.telephone_event_pt = Some(101);
            if i == 0 {
                spec.dtmf = dtmf_sink.take().map(|s| Box::new(s) as _);
                spec.taps
                    .push((TapDirection::Outbound, Box::new(tap_sink.take().unwrap())));
            }
            engine.create_leg(spec).unwrap()
        })
        .collect();
    let room = engine.create_conference("alloc-room", 8_000).unwrap();
    engine
        .conference_join(&room, &legs[0], Role::Participant)
        .unwrap();
    engine
        .conference_join(&room, &legs[1], Role::Participant)
        .unwrap();
    let to = legs[0].id();
    engine
        .conference_join(&room, &legs[2], Role::Whisper { to })
        .unwrap();
    legs[1].set_muted(true);
    let mut writers: Vec<RtpWriter> = (0..3)
        .map(|i| RtpWriter::with_initial(0, 160, 0xc0 + i, 1, 0))
        .collect();

    rounds(&fars, &legs, &mut writers, 0, 50, Some('5')); // warm-up
    assert_eq!(
        dtmf_rx.recv_timeout(Duration::from_secs(2)).unwrap().digit,
        Some('5')
    );
    let before = counting::allocations();
    rounds(&fars, &legs, &mut writers, 50, 75, Some('9'));
    std::thread::sleep(Duration::from_millis(100));
    let allocs = counting::allocations() - before;
    let pressed = dtmf_rx.try_recv().map(|e| e.digit);
    let tapped = tap_rx.len();

    for leg in &legs {
        leg.stop().wait(Duration::from_secs(2)).expect("report");
    }
    engine.end_conference(&room).unwrap();
    engine.shutdown();
    assert_eq!(allocs, 0, "conference ticks allocated");
    assert_eq!(pressed, Ok(Some('9')), "the press was detected meanwhile");
    assert!(tapped >= 50, "the member's mix reached its tap ({tapped})");
}
