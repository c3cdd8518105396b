//! Opus (RFC 6716) on a leg, as RFC 7587 carries it over RTP: mono, 20 ms
//! frames, 48 kHz audio on a 48 kHz RTP clock, a dynamic payload type.
//!
//! libopus does the coding (the `opus` crate, libopus built from its
//! bundled source). This module holds what a leg needs around it:
//!
//! - the encoder settings a peer may ask for in its `a=fmtp` line
//!   ([`OpusParams`]: `maxaveragebitrate`, `usedtx`, `useinbandfec`),
//!   applied once when the leg is created;
//! - loss handling on the receive side: a frame the jitter buffer reports
//!   lost is rebuilt from the in-band FEC of the packet after it when that
//!   one is already buffered, else by libopus' own concealment;
//! - DTX: a peer that stops sending while its user is silent leaves gaps
//!   the jitter buffer reports as empty (not lost); those are filled with
//!   libopus' concealment, which after a DTX packet is comfort noise,
//!   for [`MAX_GAP_CONCEALMENT`] frames, then with plain silence.
//!
//! Encoder and decoder are created with the leg; encoding and decoding
//! write into the caller's buffers, so the packet path does not allocate.

use ::opus::{Application, Bitrate, Channels, Signal};

use crate::frame::{samples_per_frame, MAX_FRAME_SAMPLES};
use crate::MediaError;

/// The Opus sample rate and RTP clock we run at (RFC 7587 §4.1: the clock
/// is always 48 kHz whatever the audio bandwidth).
pub const OPUS_RATE: u32 = 48_000;

/// The largest Opus frame (RFC 6716 §3.2.1): what the jitter buffer must
/// hold per packet.
pub const MAX_OPUS_PACKET: usize = 1_275;

/// Default encoder bit rate: wideband speech at full quality with room for
/// the in-band FEC, well below what a SIP trunk minds.
pub const DEFAULT_BITRATE: u32 = 32_000;

/// Consecutive empty frames (no packet at all: DTX or an underrun) filled
/// by the decoder's concealment before plain silence: 500 ms covers the
/// 400 ms between a DTX sender's packets, and no leg spends CPU
/// concealing a stream that has stopped.
pub const MAX_GAP_CONCEALMENT: u32 = 25;

/// Loss (percent) the encoder is told to expect with FEC on: enough for
/// libopus to code the redundancy at our bit rate.
const EXPECTED_LOSS: i32 = 10;

/// Encoder complexity (0-10): 5 costs less than half of libopus' default
/// 10 per frame for speech quality that is hard to tell apart (what
/// phones and browsers on battery use); a media server encodes for
/// hundreds of legs.
const COMPLEXITY: i32 = 5;

/// Payload length at or below which a packet is a DTX frame (RFC 7587
/// §3.1.3): not worth sending.
const DTX_FRAME_MAX: usize = 2;

/// Encoder settings for one leg ([`OpusParams::for_peer`] from the peer's
/// `a=fmtp`, RFC 7587 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusParams {
    /// Target bit rate in bit/s; the peer's `maxaveragebitrate` caps it.
    /// Clamped to Opus' 6–510 kbit/s.
    pub bitrate: u32,
    /// In-band forward error correction in what we send (the peer can
    /// recover a lost frame from the next packet).
    pub fec: bool,
    /// Discontinuous transmission: only when the peer asked (`usedtx=1`).
    pub dtx: bool,
}

impl Default for OpusParams {
    fn default() -> Self {
        OpusParams {
            bitrate: DEFAULT_BITRATE,
            fec: true,
            dtx: false,
        }
    }
}

impl OpusParams {
    /// Our defaults adjusted to what the peer asked for in its fmtp
    /// (RFC 7587 §6.1): `maxaveragebitrate` caps the rate, `usedtx=1`
    /// turns DTX on. (The SDP layer parses the fmtp line.)
    pub fn for_peer(max_average_bitrate: Option<u32>, use_dtx: bool) -> OpusParams {
        let d = OpusParams::default();
        OpusParams {
            bitrate: max_average_bitrate.map_or(d.bitrate, |max| d.bitrate.min(max)),
            dtx: use_dtx,
            ..d
        }
    }
}

fn codec_error(what: &str, e: ::opus::Error) -> MediaError {
    MediaError::Unsupported(format!("opus {what}: {e}"))
}

/// A leg's Opus encoder: mono, 48 kHz, VoIP application.
pub struct OpusEncoder {
    inner: ::opus::Encoder,
    dtx: bool,
}

impl OpusEncoder {
    pub fn new(params: OpusParams) -> Result<OpusEncoder, MediaError> {
        let mut inner = ::opus::Encoder::new(OPUS_RATE, Channels::Mono, Application::Voip)
            .map_err(|e| codec_error("encoder", e))?;
        let bitrate = params.bitrate.clamp(6_000, 510_000) as i32;
        inner
            .set_bitrate(Bitrate::Bits(bitrate))
            .and_then(|()| inner.set_inband_fec(params.fec))
            // FEC is only coded when the encoder expects loss, and only in
            // the SILK and hybrid modes that speech keeps it in.
            .and_then(|()| inner.set_packet_loss_perc(if params.fec { EXPECTED_LOSS } else { 0 }))
            .and_then(|()| inner.set_signal(Signal::Voice))
            .and_then(|()| inner.set_complexity(COMPLEXITY))
            .and_then(|()| inner.set_dtx(params.dtx))
            .map_err(|e| codec_error("encoder settings", e))?;
        Ok(OpusEncoder {
            inner,
            dtx: params.dtx,
        })
    }

    /// Encodes one 20 ms frame (960 samples); returns the payload length,
    /// 0 when there is nothing to send: a DTX frame, or an encoder error.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let frame = samples_per_frame(OPUS_RATE);
        let Some(pcm) = pcm.get(..frame) else {
            return 0;
        };
        match self.inner.encode(pcm, out) {
            Ok(n) if self.dtx && n <= DTX_FRAME_MAX => 0,
            Ok(n) => n,
            Err(_) => 0,
        }
    }
}

/// A leg's Opus decoder, with the concealment policy of the module docs.
pub struct OpusDecoder {
    inner: ::opus::Decoder,
    /// Empty frames in a row since the last packet.
    gap: u32,
    /// Whether anything was decoded yet (nothing to conceal before).
    started: bool,
}

impl OpusDecoder {
    pub fn new() -> Result<OpusDecoder, MediaError> {
        let inner = ::opus::Decoder::new(OPUS_RATE, Channels::Mono)
            .map_err(|e| codec_error("decoder", e))?;
        Ok(OpusDecoder {
            inner,
            gap: 0,
            started: false,
        })
    }

    /// Decodes a packet; returns samples written (0 for a corrupt packet).
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        self.gap = 0;
        self.started = true;
        let out = frame_of(out);
        self.inner.decode(payload, out, false).unwrap_or(0)
    }

    /// A lost frame: rebuilt from the in-band FEC of `next` (the packet
    /// after the lost one, if it is already here), else concealed.
    pub fn conceal_loss(&mut self, next: Option<&[u8]>, out: &mut [i16]) -> usize {
        self.gap = 0;
        let out = frame_of(out);
        if !self.started {
            return 0;
        }
        if let Some(next) = next.filter(|p| !p.is_empty()) {
            if let Ok(n) = self.inner.decode(next, out, true) {
                if n > 0 {
                    return n;
                }
            }
        }
        self.inner.decode(&[], out, false).unwrap_or(0)
    }

    /// No packet at all this tick (DTX, underrun, not started): concealment
    /// (comfort noise after DTX) for a while, then silence (returns 0).
    pub fn fill_gap(&mut self, out: &mut [i16]) -> usize {
        self.gap = self.gap.saturating_add(1);
        if !self.started || self.gap > MAX_GAP_CONCEALMENT {
            return 0;
        }
        self.inner.decode(&[], frame_of(out), false).unwrap_or(0)
    }
}

/// The part of `out` one 20 ms frame fills (libopus sizes what it decodes,
/// and its concealment, by the buffer it is given).
fn frame_of(out: &mut [i16]) -> &mut [i16] {
    let n = out.len().min(samples_per_frame(OPUS_RATE));
    &mut out[..n]
}

const _: () = assert!(samples_per_frame(OPUS_RATE) <= MAX_FRAME_SAMPLES);

#[cfg(test)]
#[path = "opus_tests.rs"]
mod tests;
