//! # sip-stack — Switchboard's SIP signalling
//!
//! Everything between a carrier's UDP datagram or TCP/TLS stream and a call
//! the control plane can reason about: a SIP message parser, SDP offer/answer for audio,
//! and the transaction and dialog state machines of RFC 3261. It never
//! touches audio; it tells `control-api` where to send RTP and with which
//! codec ([`sdp::NegotiatedAudio`]), and `media-core` does the rest.
//!
//! ## Messages, transactions, dialogs
//!
//! SIP has three layers and this crate has one module for each:
//!
//! - **[`message`]** — one message (a datagram, or one framed off a stream), parsed: a [`message::Request`] or
//!   [`message::Response`] with ordered headers. Stateless. A malformed
//!   request can still be answered: [`message::ParseError::reply_400`].
//! - **[`transaction`]** — one request and its responses, made reliable over
//!   UDP: retransmissions, absorbing duplicates, timeouts (RFC 3261 §17);
//!   over TCP and TLS the same machines without hop-by-hop retransmissions.
//!   An INVITE and its 200 OK are one transaction; the BYE that ends the call
//!   thirty minutes later is another. The [`transaction::Endpoint`] holds
//!   them all.
//! - **[`dialog`]** — the call itself as SIP sees it (RFC 3261 §12): Call-ID
//!   and both tags, the peer's Contact, the route set and CSeq counters,
//!   outliving every transaction. It builds in-dialog requests (BYE,
//!   re-INVITE) and recognises incoming ones.
//!
//! [`sdp`] parses session descriptions and answers audio offers;
//! [`auth`] challenges and verifies SIP digest authentication (server) and
//! answers 401/407 challenges (client), SHA-256 and MD5, sans-IO;
//! [`session_timer`] (RFC 4028) and [`reliable`] (100rel/PRACK, RFC 3262)
//! are the dialog's keep-alive and reliable-provisional state machines;
//! [`replaces`] reads the Replaces header and Refer-To's embedded headers
//! (attended transfer, RFC 3891);
//! [`registration`] keeps an outbound REGISTER binding alive;
//! [`protection`] rate-limits INVITEs per source and drops known scanners;
//! [`transport`] moves bytes over UDP, TCP and TLS, and is the only part
//! that does I/O; its stream framer ([`transport::StreamFramer`]) is sans-IO
//! like the rest.
//!
//! ```text
//!  transport ─bytes─▶ message::parse ──SipMessage──▶ Endpoint::handle_message
//!                                                         │        ▲
//!                       Endpoint::handle_timeout(now) ───▶│        │ respond / send_request
//!                                                         ▼        │
//!  transport ◀─Output::Transmit── Endpoint::poll_output ──Output::Event──▶ TU (control-api):
//!                                                                       Dialog, sdp::answer_audio
//! ```
//!
//! ## The sans-IO loop
//!
//! The transaction layer owns no socket, no task and no clock. The caller
//! (the lead's signalling task) runs a loop of four calls:
//!
//! 1. a message arrives (a UDP datagram, or one framed off a TCP/TLS
//!    connection), tagged with its [`transport::Peer`] → [`message::parse`]
//!    → [`transaction::Endpoint::handle_message`];
//! 2. drain [`transaction::Endpoint::poll_output`]: `Transmit` goes to the
//!    transport named by its `Peer`, `Event` goes to call control, which may call
//!    [`transaction::Endpoint::respond`] or [`transaction::Endpoint::send_request`];
//! 3. sleep until [`transaction::Endpoint::poll_timeout`] or the next message;
//! 4. on wake-up, [`transaction::Endpoint::handle_timeout`] and drain again.
//!
//! ```
//! use std::time::Instant;
//! use sip_stack::message::{generate_tag, parse, Response};
//! use sip_stack::transaction::{Endpoint, Output, TimerConfig, TxEvent};
//! use sip_stack::transport::Peer;
//!
//! let datagram = b"OPTIONS sip:10.0.0.2 SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
//!     From: <sip:monitor@10.0.0.1>;tag=1928301774\r\n\
//!     To: <sip:10.0.0.2>\r\n\
//!     Call-ID: a84b4c76e66710@10.0.0.1\r\n\
//!     CSeq: 63104 OPTIONS\r\n\
//!     Content-Length: 0\r\n\r\n";
//! let source = Peer::udp("10.0.0.1:5060".parse().unwrap());
//! let mut endpoint = Endpoint::new(TimerConfig::default());
//!
//! let now = Instant::now(); // the caller's clock, not the endpoint's
//! match parse(datagram) {
//!     Ok(msg) => endpoint.handle_message(now, msg, source),
//!     // Broken but answerable: reply without creating any state.
//!     Err(e) => {
//!         if let Some(reply) = e.reply_400() {
//!             endpoint.send_stateless(source, reply.to_bytes());
//!         }
//!     }
//! }
//!
//! let mut sent = Vec::new();
//! while let Some(output) = endpoint.poll_output() {
//!     match output {
//!         Output::Transmit { dest, data } => sent.push((dest, data)), // socket.send_to(&data, dest)
//!         Output::Event(TxEvent::NewRequest { tx, request, .. }) => {
//!             let mut ok = Response::for_request(&request, 200, "OK");
//!             ok.set_to_tag(&generate_tag());
//!             endpoint.respond(now, tx, ok).expect("live transaction");
//!         }
//!         Output::Event(_) => {}
//!     }
//! }
//! assert_eq!(sent.len(), 1);
//! assert!(sent[0].1.starts_with(b"SIP/2.0 200 OK\r\n"));
//! // Then: sleep until endpoint.poll_timeout(), call handle_timeout(Instant::now()).
//! ```
//!
//! ## Time
//!
//! Time is an input. Every state change takes `now: Instant`, and the
//! endpoint reports the next instant it needs to be woken at; it never calls
//! `Instant::now()` or sleeps. That is why the tests can check that a 2xx
//! is retransmitted at exactly 0.5, 1.5, 3.5, 7.5, 11.5 … s and given up at
//! 32 s without waiting 32 s: they advance `now` by hand.
//!
//! The RFC 3261 timers all derive from [`transaction::TimerConfig`]: T1
//! (RTT estimate, 500 ms) starts every retransmission interval, which
//! doubles up to T2 (4 s); 64·T1 (32 s) bounds how long a transaction waits
//! for an answer (Timers B, F, H, J, L, M); T4 (5 s) is how long a finished
//! transaction lingers to absorb stray retransmissions (Timers I, K).
//! Over TCP and TLS nothing is retransmitted hop by hop and the lingering
//! timers (D, I, J, K) are zero; only the 2xx to an INVITE is still
//! retransmitted until its ACK, end to end (RFC 3261 §13.3.1.4).
//! Timers only ever live inside transactions; dialogs have none, and session
//! timers (RFC 4028) are the TU's business.
//!
//! ## Hostile input
//!
//! Every byte from the network is hostile: parsers return errors and never
//! panic, sizes and counts are bounded ([`message::ParseLimits`],
//! [`sdp::SdpLimits`], [`transaction::Endpoint::set_max_transactions`],
//! the stream framer's message bound, the connection table's size), and
//! the parsers have fuzz targets (`fuzz/fuzz_targets/sip_message.rs`,
//! `sip_stream.rs`, `sdp.rs`, `sip_auth.rs`). Test messages live as files under `tests/messages/`.

pub mod auth;
pub mod dialog;
pub mod message;
pub mod protection;
pub mod registration;
pub mod reliable;
pub mod replaces;
pub mod sdp;
pub mod session_timer;
pub mod transaction;
pub mod transport;
