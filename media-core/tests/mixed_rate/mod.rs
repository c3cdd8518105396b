//! Far-end codecs for the mixed-rate conference tests: each far end says a
//! tone in its own codec (PCMU 8 kHz, G.722 16 kHz, Opus 48 kHz) and
//! decodes what it hears at its own rate.

#![allow(dead_code)] // each test binary uses a different subset

use media_core::codec::{ulaw_decode, ulaw_encode};
use media_core::g722::{G722Decoder, G722Encoder};
use media_core::opus::{OpusDecoder, OpusEncoder, MAX_OPUS_PACKET};
use media_core::rtp::RtpWriter;
use media_core::{Codec, OpusParams};

use crate::common::tone;

/// One far end's codec state.
pub enum FarCodec {
    Pcmu,
    G722(Box<(G722Encoder, G722Decoder)>),
    Opus(Box<(OpusEncoder, OpusDecoder)>),
}

impl FarCodec {
    pub fn new(codec: Codec) -> FarCodec {
        match codec {
            Codec::Pcmu => FarCodec::Pcmu,
            Codec::G722 => FarCodec::G722(Box::new((G722Encoder::new(), G722Decoder::new()))),
            Codec::Opus => FarCodec::Opus(Box::new((
                OpusEncoder::new(OpusParams::default()).unwrap(),
                OpusDecoder::new().unwrap(),
            ))),
            other => panic!("no far end for {other:?}"),
        }
    }

    pub fn codec(&self) -> Codec {
        match self {
            FarCodec::Pcmu => Codec::Pcmu,
            FarCodec::G722(_) => Codec::G722,
            FarCodec::Opus(_) => Codec::Opus,
        }
    }

    pub fn rate(&self) -> u32 {
        self.codec().sample_rate()
    }

    /// An RTP writer for this codec's payload type and clock.
    pub fn writer(&self, ssrc: u32) -> RtpWriter {
        let c = self.codec();
        let step = c.clock_rate() / 50;
        RtpWriter::with_initial(c.payload_type_default(), step, ssrc, 1_000, 0)
    }

    /// Frame `k` of a `freq` Hz tone, encoded.
    pub fn encode_tone(&mut self, freq: f64, k: usize) -> Vec<u8> {
        let n = self.rate() as usize / 50;
        let pcm = tone(freq, self.rate() as f64, k * n, n, 8_000.0);
        let mut out = vec![0u8; MAX_OPUS_PACKET];
        let len = match self {
            FarCodec::Pcmu => {
                for (o, &s) in out.iter_mut().zip(&pcm) {
                    *o = ulaw_encode(s);
                }
                n
            }
            FarCodec::G722(c) => c.0.encode(&pcm, &mut out),
            FarCodec::Opus(c) => c.0.encode(&pcm, &mut out),
        };
        out.truncate(len);
        out
    }

    /// Decodes one received payload, appending to `heard`.
    pub fn decode(&mut self, payload: &[u8], heard: &mut Vec<i16>) {
        let mut out = [0i16; 960];
        let n = match self {
            FarCodec::Pcmu => {
                heard.extend(payload.iter().map(|&b| ulaw_decode(b)));
                return;
            }
            FarCodec::G722(c) => c.1.decode(payload, &mut out),
            FarCodec::Opus(c) => c.1.decode(payload, &mut out),
        };
        heard.extend_from_slice(&out[..n]);
    }
}
