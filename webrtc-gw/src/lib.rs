//! # webrtc-gw — browsers as media legs
//!
//! This crate will own WebRTC peer connections for Switchboard: ICE, DTLS-SRTP,
//! Opus, SIP over WebSocket (RFC 7118) signalling for JsSIP/SIP.js, and a plain
//! HTTP offer/answer. A browser becomes a `media_core` leg like any SIP trunk
//! leg, so bridging, mixing, recording and taps need no WebRTC knowledge.
//!
//! It is deliberately empty in the walking skeleton: no open milestone asks for
//! WebRTC yet, and the crate exists so the dependency direction
//! (`control-api` → `webrtc-gw` → `media-core`) is fixed from the start.
