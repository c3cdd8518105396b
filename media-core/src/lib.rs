//! Switchboard's media plane: RTP legs that send, receive, record and tap
//! 20 ms audio frames, run by a few worker threads that never block.
//!
//! media-core knows nothing about SIP, WebRTC or gRPC, and does not depend
//! on tokio. Signalling (sip-stack, webrtc-gw) decides *what* a leg is —
//! codec, payload types, remote address, from SDP — and the control plane
//! (control-api) asks a [`MediaEngine`] for it. The engine hands back a
//! [`LegHandle`]; everything after that happens on media worker threads.
//!
//! # Usage
//!
//! ```
//! use std::time::Duration;
//! use media_core::{Codec, LegSpec, MediaConfig, MediaEngine, Prompt, TapDirection, TapFrame};
//!
//! let engine = MediaEngine::start(MediaConfig { workers: 1, ..MediaConfig::default() })?;
//!
//! // Frames of what the caller says, for the ASR bridge: a bounded channel
//! // is a TapSink (a full channel drops the frame and counts it).
//! let (asr_tx, asr_rx) = crossbeam_channel::bounded::<TapFrame>(50);
//!
//! let mut spec = LegSpec::new("call-42", Codec::Pcmu);
//! spec.remote = Some("127.0.0.1:40000".parse().unwrap()); // from the SDP offer
//! spec.telephone_event_pt = Some(101);
//! spec.prompt = Prompt::Tone { freq_hz: 425.0, on_ms: 1_000, off_ms: 4_000, amplitude: 6_000 };
//! spec.taps.push((TapDirection::Inbound, Box::new(asr_tx)));
//! let leg = engine.create_leg(spec)?;
//! println!("answer SDP with c=/m= {}", leg.local_addr());
//!
//! // ... the call goes on; stats are lock-free snapshots ...
//! let _sent = leg.stats().packets_sent;
//!
//! // Hang up: the receipt resolves once the recording (if any) is final.
//! let report = leg.stop().wait(Duration::from_secs(2)).expect("leg report");
//! println!("{} packets in, {:?}", report.stats.packets_received, report.recording);
//! drop(asr_rx);
//! engine.shutdown();
//! # Ok::<(), media_core::MediaError>(())
//! ```
//!
//! The protocol pieces are usable on their own, sans-IO. The jitter buffer,
//! for one, is fed packets and the time, and asked for a frame per tick:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use media_core::jitter::{JitterBuffer, JitterConfig, Playout};
//!
//! let mut jb = JitterBuffer::new(JitterConfig::default()); // 40 ms target
//! let t0 = Instant::now();
//! jb.push(t0, 7, 1_120, &[0xff; 160]);
//! assert_eq!(jb.pop(t0), Playout::Empty); // still buffering
//! assert!(matches!(jb.pop(t0 + Duration::from_millis(40)), Playout::Frame(_)));
//! ```
//!
//! # Frames
//!
//! A frame is [`FRAME_MS`] = 20 ms of mono i16 PCM at the leg's native rate
//! (160 samples for G.711), with its RTP timestamp. Everything is sized in
//! frames: one packet per frame, one jitter-buffer pop per frame, one tap
//! frame ([`TapFrame`], always 16 kHz = [`TAP_SAMPLES`] samples) and one
//! stereo recording frame per tick. Buffers are allocated when a leg is
//! created and reused, so a tick does not allocate (a test with a counting
//! allocator checks this).
//!
//! # Two kinds of time
//!
//! - **Media time** is the RTP timestamp: sample counts on the codec's
//!   clock (8 kHz for G.711), chosen by each sender, with a random start.
//!   It orders and measures audio, and it is what [`TapFrame::rtp_timestamp`]
//!   carries: the far end's clock for inbound, ours for outbound.
//! - **Wallclock** is [`std::time::Instant`], the worker's 20 ms ticks. Ticks
//!   follow absolute deadlines (sleep until the next one; when late, tick at
//!   once and count an overrun), so a leg sends exactly 50 packets a second
//!   over hours. The protocol state machines never read the clock: the
//!   worker passes `now` in, which is why tests can drive an hour of jitter
//!   in microseconds.
//!
//! The two meet in the jitter buffer, which turns packets arriving at
//! wallclock times into one frame of media per tick.
//!
//! # Design
//!
//! ```text
//!   control side (tokio, any thread)             media workers ("media-N", one per core)
//!  +-------------------------------+          +------------------------------------------+
//!  | MediaEngine::create_leg       |  bounded |  every 20 ms:                            |
//!  |  bind even RTP port           |  channel |   apply commands (try_recv, never wait)  |
//!  |  load prompt, build resamplers|--------->|   for each owned leg:                    |
//!  |  create WAV file              | Add(leg) |     recv all  -> parse -> jitter buffer  |  UDP
//!  | LegHandle::set_remote  -------|--------->|     pop frame -> decode / conceal        |<----> far end
//!  | LegHandle::stop (atomic flag) |          |     prompt -> encode -> RTP -> send      |
//!  | LegHandle::stats <- atomics --|----------|     frames -> taps, recorder             |
//!  +-------------------------------+          +-----------+------------------+-----------+
//!                                                         | try_send (drop   | TapSink::try_push
//!                                                         | + count if full) | (drop + count)
//!                                              +----------v---------+   +----v-----------+
//!                                              | "media-recorder"   |   | subscribers    |
//!                                              | writer thread:     |   | (asr-bridge)   |
//!                                              | stereo WAV, flush  |   +----------------+
//!                                              | header every 1 s,  |
//!                                              | finalize -> report |
//!                                              +--------------------+
//! ```
//!
//! A worker owns its legs for their whole life (sockets, jitter buffers,
//! codec state), so the media path takes no locks. The control side reaches
//! a leg only through the worker's bounded command queue, the leg's stop
//! flag, and relaxed atomic stats published once per tick. File I/O happens
//! only on the recorder thread; a full recorder queue or a slow tap costs a
//! counted drop, never a stalled tick (and the recording is padded so its
//! timeline stays true).
//!
//! Per-leg work each tick: drain the socket (at most 32 datagrams), classify
//! each (not RTP or wrong payload type → `packets_invalid`; the
//! telephone-event type → `dtmf_packets`; audio → jitter buffer), play one
//! frame (`Lost` → the last frame repeated with falling gain for 60 ms, then
//! silence; `Empty` → silence), then encode and send the next prompt frame to
//! the remote. Sending starts at the first tick, before anything is
//! received, so the caller hears the prompt at once; with symmetric RTP the
//! leg then latches to where the far end really sends from.
//!
//! # Memory per leg
//!
//! About 4 KB for a G.711 leg without taps: the jitter buffer's 16 slots of
//! 160 bytes plus metadata (2.8 KB), one frame of concealment history
//! (320 B), RTP/codec state and the shared stats. Each tapped direction adds
//! one rubato FFT resampler (at most 27 KB). A WAV prompt holds its decoded
//! samples (16 KB per second at 8 kHz; files are capped at
//! [`player::MAX_PROMPT_SECONDS`]). Worker scratch buffers are per worker,
//! not per leg. The recorder's queue is engine-wide (4096 messages of
//! 1.3 KB).
//!
//! # Modules
//!
//! [`codec`] G.711 · [`rtp`] packets · [`jitter`] the jitter buffer ·
//! [`resample`] frame resampling · [`player`] prompts · [`tap`] taps ·
//! [`leg`] leg API · [`engine`] engine and workers · [`frame`] frame sizes.
//!
//! # Not yet
//!
//! ptime other than 20 ms; RTCP (port + 1 stays unbound); DTMF decoding
//! (telephone-event packets are counted); adaptive jitter delay (the
//! buffer has `set_target_delay` for it); G.722/Opus ([`Codec`] is
//! non-exhaustive).

pub mod codec;
pub mod engine;
mod error;
pub mod frame;
pub mod jitter;
pub mod leg;
pub mod player;
mod plc;
mod recorder;
pub mod resample;
pub mod rtp;
pub mod tap;
mod worker;

pub use codec::Codec;
pub use engine::{MediaConfig, MediaEngine};
pub use error::MediaError;
pub use frame::FRAME_MS;
pub use jitter::{JitterBuffer, JitterConfig, Playout};
pub use leg::{LegHandle, LegReport, LegSpec, LegStats, StopReceipt};
pub use player::Prompt;
pub use resample::Resampler;
pub use rtp::{RtpPacket, RtpWriter};
pub use tap::{TapDirection, TapFrame, TapSink, TAP_RATE, TAP_SAMPLES};
