//! Switchboard's media plane: RTP legs that send, receive, record and tap
//! 20 ms audio frames, report on call quality over RTCP, and bridges that
//! relay packets between two legs, run by a few worker threads that never
//! block.
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
//! // ... the call goes on; stats and quality are lock-free snapshots ...
//! let _sent = leg.stats().packets_sent;
//! let _mos = leg.quality().mos; // None until the far end's RTP arrives
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
//! // Adaptive: starts at 40 ms, then follows the measured jitter (20–200 ms).
//! let mut jb = JitterBuffer::new(JitterConfig::default());
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
//! # Bridges
//!
//! Two legs of the same codec on the same worker (create the second with
//! [`LegSpec::colocate_with`] = the first) can be bridged with
//! [`MediaEngine::bridge`]: every valid RTP packet one receives leaves
//! through the other's socket in the same wakeup, unchanged (SSRC,
//! sequence, timestamp, payload; see [`relay`] for the one exception), so
//! DTMF events and anything carried in payloads survive. While bridged a
//! leg sends no prompt; [`MediaEngine::unbridge`], or stopping either leg,
//! gives the other its prompt back.
//!
//! Legs of different codecs (an Opus caller, a PCMU trunk) are bridged by
//! transcoding: nothing is relayed; each tick both legs decode, the frames
//! are resampled to the other side's rate at the edge, and each leg sends
//! the other's audio in its own codec on its own stream. Key presses are
//! regenerated on the other side as its own telephone-events
//! ([`dtmf_relay`]).
//!
//! ```
//! use media_core::{Codec, LegSpec, MediaConfig, MediaEngine};
//!
//! let engine = MediaEngine::start(MediaConfig { workers: 2, ..MediaConfig::default() })?;
//! let caller = engine.create_leg(LegSpec::new("call-7-caller", Codec::Pcmu))?;
//! let mut agent = LegSpec::new("call-7-agent", Codec::Pcmu);
//! agent.colocate_with = Some(caller.clone()); // a bridge lives on one worker
//! let agent = engine.create_leg(agent)?;
//! engine.bridge(&caller, &agent)?;
//! // ... talk ...
//! engine.unbridge(&caller)?; // both back to their prompts
//! caller.stop();
//! agent.stop();
//! # engine.shutdown();
//! # Ok::<(), media_core::MediaError>(())
//! ```
//!
//! Legs on different workers can be bridged too: the engine first moves
//! one to the other's worker (a leg moves with its sockets, jitter buffer
//! and recording; commands queued for it meanwhile follow it).
//!
//! # Conferences
//!
//! [`MediaEngine::create_conference`] starts an N-party mixer on one
//! worker; [`MediaEngine::conference_join`] moves a leg there with a
//! [`Role`]: participants hear everyone but themselves (minus-one mixes),
//! a listener hears all and is heard by none, a whisperer is heard only by
//! the member it coaches, barge is a supervisor heard by all.
//! [`LegHandle::set_muted`] keeps a party's audio from everyone else (in a
//! bridge its packets are not relayed). A member's recording has its own
//! audio left and its mix right.
//!
//! Members may speak at different rates (G.711 8 kHz, G.722 16 kHz, Opus
//! 48 kHz): the room mixes at the highest rate present, rising when a
//! wideband member joins and falling back when the last one leaves; each
//! member's frame is resampled once into the mix and its minus-one mix
//! once back to its own rate ([`mix_edge`]).
//!
//! ```
//! use media_core::{Codec, LegSpec, MediaConfig, MediaEngine, Role};
//!
//! let engine = MediaEngine::start(MediaConfig { workers: 2, ..MediaConfig::default() })?;
//! let customer = engine.create_leg(LegSpec::new("call-1", Codec::Pcmu))?;
//! let agent = engine.create_leg(LegSpec::new("call-2", Codec::Pcmu))?;
//! let coach = engine.create_leg(LegSpec::new("call-3", Codec::Pcmu))?;
//! let room = engine.create_conference("room-1", 8_000)?;
//! engine.conference_join(&room, &customer, Role::Participant)?;
//! engine.conference_join(&room, &agent, Role::Participant)?;
//! engine.conference_join(&room, &coach, Role::Whisper { to: agent.id() })?;
//! engine.conference_join(&room, &coach, Role::Barge)?; // same call, new role
//! engine.end_conference(&room)?; // everyone back to their prompt
//! # engine.shutdown();
//! # Ok::<(), media_core::MediaError>(())
//! ```
//!
//! Recording and taps keep their meaning from the leg's point of view:
//! left / inbound = what its far end says, right / outbound = what its far
//! end hears, which while bridged is the peer's inbound audio of the same
//! tick. So recording only the caller's leg gives one stereo file per call,
//! caller left, agent right. Decoding is done only for legs whose audio
//! someone needs (a recording or tap on either side); a relaying bridge
//! with neither relays packets without touching jitter buffer or codec.
//!
//! # RTCP and call quality
//!
//! Each leg binds an even/odd port pair: RTP on the even port
//! ([`LegHandle::local_addr`]), RTCP on the one above
//! ([`LegHandle::rtcp_addr`]). RTCP is also accepted multiplexed on the RTP
//! port (RFC 5761: second byte 192–223, then it must parse as a valid
//! compound packet, else it is judged as RTP). A leg's [`rtcp::RtcpSession`]
//! is fed every valid RTP packet it receives (sequence and loss per RFC 3550
//! A.1/A.3; jitter per A.8 from audio packets, not telephone events) and
//! every one it sends, and every RTCP datagram that arrives. At the tick
//! when a report is due (every 5 s on average, randomized 0.5–1.5×, the
//! first after half that; [`LegSpec::rtcp_interval`]) the leg sends an SR
//! (or an RR if it sent nothing in the last two intervals) with one report
//! block about the far end's stream, plus SDES with a random per-leg CNAME:
//! to the source of the far end's first valid RTCP (symmetric RTCP), else to
//! the remote's port + 1, or to the RTP remote with [`LegSpec::rtcp_mux`].
//! On hangup it sends a last report and a BYE.
//!
//! RTCP is terminated per leg, also while bridged: each leg reports on its
//! own hop and RTCP is never relayed. On a bridged leg the stream on the hop
//! is the relayed one, so its SRs carry that stream's SSRC and this hop's
//! counts, and the far end's reports about it (their LSR) give the RTT.
//!
//! [`LegHandle::quality`] (and [`LegReport::quality`]) is a [`LegQuality`]:
//! our loss, fraction lost and jitter about the far end's stream, its view
//! of ours from its last report block, the RTT (RFC 3550 6.4.1, from a
//! report block whose LSR is one of our last SRs), and a MOS estimate from
//! the E-model ([`quality`]: G.711 with concealment, the call's loss so
//! far, RTT/2 plus the jitter buffer's delay). Published once per tick as
//! relaxed atomics, like [`LegStats`].
//!
//! # Three kinds of time
//!
//! - **Media time** is the RTP timestamp: sample counts on the codec's
//!   clock (8 kHz for G.711 and G.722, 48 kHz for Opus), chosen by each sender, with a random start.
//!   It orders and measures audio, and it is what [`TapFrame::rtp_timestamp`]
//!   carries: the far end's clock for inbound, ours for outbound (the
//!   peer's far end's, while bridged).
//! - **Wallclock** is [`std::time::Instant`], the worker's 20 ms ticks. Ticks
//!   follow absolute deadlines (wait until the next one; when late, tick at
//!   once and count an overrun), so a leg sends exactly 50 packets a second
//!   over hours. The wait is a poll with a millisecond timeout, so a tick
//!   fires up to about 1 ms after its deadline, never before, and never
//!   drifts. Packets are handled when they arrive, between ticks. The
//!   protocol state machines never read the clock: the worker passes `now`
//!   in, which is why tests can drive an hour of jitter in microseconds.
//! - **NTP wallclock** is what RTCP sender reports carry: the leg reads
//!   [`std::time::SystemTime`] once, when created, and its RTCP session
//!   adds the `Instant`s since, so reports stay monotonic even if the
//!   system clock is stepped during the call.
//!
//! Media time and wallclock meet in the jitter buffer, which turns packets
//! arriving at wallclock times into one frame of media per tick (its delay
//! controller compares the two for each packet: the relative transit delay
//! that sizes the buffer, and the drift of a far-end clock), and in
//! RTCP, whose interarrival jitter compares the two and whose SRs pair an
//! NTP time with the RTP timestamp of the same instant.
//!
//! # Design
//!
//! ```text
//!   control side (tokio, any thread)             media workers ("media-N", one per core)
//!  +-------------------------------+          +------------------------------------------+
//!  | MediaEngine::create_leg       |  bounded |  mio Poll (edge-triggered), timeout =    |
//!  |  bind RTP/RTCP port pair      |  channel |  time left to the next 20 ms deadline:   |
//!  |  load prompt, build resamplers|--------->|                                          |
//!  |  create WAV file              | Add(leg) |  waker   -> apply commands (try_recv)    |
//!  | LegHandle::set_remote  -------|--------->|  socket  -> drain leg until WouldBlock:  |  UDP
//!  | MediaEngine::bridge/unbridge -|--------->|    parse -> [jitter buffer] -> relay out |<----> far ends
//!  |   ... then Waker::wake()      |          |    of the bridged peer's socket, at once |
//!  | LegHandle::stop (atomic flag) |          |    (RTCP, either port -> RtcpSession)    |
//!  | LegHandle::stats <- atomics --|----------|  deadline -> tick every leg (pairs       |
//!  | LegHandle::quality <- atomics |          |    together): pop frame -> decode /      |
//!  +-------------------------------+          |    conceal; prompt -> encode -> RTP ->   |
//!                                             |    send (unless bridged); taps, recorder;|
//!                                             |    RTCP report if due                    |
//!                                             +-----------+------------------+-----------+
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
//! codec state), so the media path takes no locks; a bridge joins two legs
//! of one worker, so a relayed packet never crosses threads. The control
//! side reaches a leg only through the worker's bounded command queue (and
//! the waker that interrupts its poll), the leg's stop flag, and relaxed
//! atomic stats published once per tick. File I/O happens only on the
//! recorder thread; a full recorder queue or a slow tap costs a counted
//! drop, never a stalled tick (and the recording is padded so its timeline
//! stays true).
//!
//! Per packet, on arrival: multiplexed RTCP goes to the leg's RTCP session
//! and no further; everything else is classified (not RTP or wrong payload
//! type → `packets_invalid`; the telephone-event type → `dtmf_packets`;
//! the comfort noise type → `cn_packets`; from a foreign source after
//! latching → `packets_invalid`), counted in the RTCP receiver
//! statistics, relayed if bridged, and audio and comfort noise are pushed
//! into the jitter buffer (unless a bridge needs no decoded audio). A leg
//! reads at most 32 RTP and 8 RTCP datagrams per tick period; a flood
//! beyond that waits in (or is dropped by) the kernel until the next tick.
//!
//! Per leg per tick: play one frame (`Lost` → the last frame repeated with
//! falling gain for 60 ms, then silence; `Empty` → silence), then encode
//! and send the next prompt frame to the remote. Sending starts at the
//! first tick, before anything is received, so the caller hears the prompt
//! at once; with symmetric RTP the leg then latches to where the far end
//! really sends from. A bridged pair ticks together: both inbound frames
//! (if needed), then each leg's taps and recording get its own frame and
//! its peer's; no prompt is sent. Then each leg sends its RTCP report if
//! one is due.
//!
//! # Memory per leg
//!
//! About 5 KB for a G.711 leg without taps: the jitter buffer's 16 slots
//! of 160 bytes plus metadata (2.8 KB) and its delay controller's
//! arrival history (0.6 KB), one frame of concealment history
//! (320 B), RTP/codec state, the RTCP session (about 300 B with its CNAME)
//! and the shared stats and quality; and two sockets (RTP, RTCP). Each tapped direction adds
//! one rubato FFT resampler (at most 27 KB). A WAV prompt holds its decoded
//! samples (16 KB per second at 8 kHz; files are capped at
//! [`player::MAX_PROMPT_SECONDS`]). Worker scratch buffers and the poll's
//! event buffer (256 events) are per worker, not per leg. The recorder's
//! queue is engine-wide (4096 messages of 1.3 KB).
//!
//! # Modules
//!
//! [`codec`] G.711 · [`comfort_noise`] RFC 3389 CN · [`g722`] G.722 · [`opus`] Opus (libopus, FEC, DTX) · [`dtmf`] RFC 4733 key presses
//! ([`dtmf_relay`] across transcoding bridges) ·
//! [`rtp`] packets · [`rtcp`] RTCP packets and sessions · [`quality`]
//! call quality and the E-model · [`jitter`] the jitter buffer
//! ([`jitter_delay`] its adaptive delay) ·
//! [`resample`] frame resampling · [`player`] prompts · [`tap`] taps ·
//! [`relay`] a bridge's per-packet decisions · [`mixer`] conference
//! mixing (minus-one, listen, whisper, barge, mute) · [`mix_edge`] each
//! member's resampling into and out of the mix rate · [`leg`] leg API ·
//! [`engine`] engine, workers, bridges and conferences · [`frame`] frame
//! sizes.
//!
//! # Not yet
//!
//! ptime other than 20 ms; RTCP beyond RFC 3550 (XR blocks, feedback
//! messages, reduced-size RTCP; the SDP `a=rtcp` address: reports go to the
//! latched source or port + 1); sending DTMF
//! into a bridged leg's relayed stream (unbridged and conference legs send
//! it: [`LegHandle::send_dtmf`]); in-band DTMF tones for a leg without
//! telephone-event (a press relayed to it is dropped and counted); batch
//! I/O (`recvmmsg`).

pub mod codec;
pub mod comfort_noise;
pub mod dtmf;
pub mod dtmf_relay;
pub mod engine;
mod error;
pub mod frame;
pub mod g722;
pub mod jitter;
pub mod jitter_delay;
pub mod leg;
pub mod mix_edge;
pub mod mixer;
pub mod opus;
pub mod player;
mod plc;
pub mod quality;
mod recorder;
pub mod relay;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod srtp;
pub mod tap;
mod worker;

pub use codec::Codec;
pub use engine::{ConferenceHandle, MediaConfig, MediaEngine};
pub use error::MediaError;
pub use frame::FRAME_MS;
pub use jitter::{JitterBuffer, JitterConfig, Playout};
pub use leg::{LegHandle, LegReport, LegSpec, LegStats, StopReceipt};
pub use mixer::Role;
pub use opus::OpusParams;
pub use player::Prompt;
pub use quality::LegQuality;
pub use resample::Resampler;
pub use rtp::{RtpPacket, RtpWriter};
pub use srtp::{MasterKey, SrtpKeys, SrtpProfile};
pub use tap::{TapDirection, TapFrame, TapSink, TAP_RATE, TAP_SAMPLES};
