//! Making an audio offer (RFC 3264 §5) for an outbound leg, and reading the
//! answer to it (§7).

use std::net::IpAddr;

use super::answer::{answer_section, crypto_lines, negotiate, session};
use super::crypto::CryptoAttribute;
use super::{Direction, NegotiatedAudio, NegotiatedSrtp, SdpError, SessionDescription};
use crate::sdp::AudioCodec;

/// SDES in an outbound offer: one `a=crypto` line with our key.
///
/// `savp: true` offers RTP/SAVP: the far end must do SRTP or refuse (what
/// a `mandatory` policy wants). `false` offers RTP/AVP with the crypto
/// line, the common best-effort practice: a peer that knows SDES answers
/// with its key, one that does not ignores the line and answers plain RTP
/// (where an RTP/SAVP offer would have been refused outright).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpOffer {
    pub savp: bool,
    pub crypto: CryptoAttribute,
}

/// What we offer on an outbound leg. One codec: a transparent bridge needs
/// the far end to speak exactly what the other leg speaks. For Opus the
/// offer carries our fmtp (in-band FEC) and the answer's
/// fmtp comes back in [`NegotiatedAudio::opus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioOffer {
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub telephone_event_pt: Option<u8>,
    pub ptime_ms: u32,
}

/// The offer: one sendrecv RTP/AVP audio stream on `local_ip:local_rtp_port`.
pub fn offer_audio(
    offer: &AudioOffer,
    local_ip: IpAddr,
    local_rtp_port: u16,
    session_id: u64,
) -> SessionDescription {
    offer_audio_srtp(offer, None, local_ip, local_rtp_port, session_id)
}

/// The offer, with SDES when `srtp` is given (see [`SrtpOffer`]).
pub fn offer_audio_srtp(
    offer: &AudioOffer,
    srtp: Option<&SrtpOffer>,
    local_ip: IpAddr,
    local_rtp_port: u16,
    session_id: u64,
) -> SessionDescription {
    let n = NegotiatedAudio {
        remote_rtp: (local_ip, local_rtp_port).into(),
        codec: offer.codec,
        payload_type: offer.payload_type,
        clock_rate: offer.codec.clock_rate(),
        telephone_event_pt: offer.telephone_event_pt,
        // Not offered: a bridged leg relays the caller's stream as it is.
        comfort_noise_pt: None,
        ptime_ms: offer.ptime_ms,
        direction: Direction::SendRecv,
        opus: None,
        proto: match srtp {
            Some(s) if s.savp => "RTP/SAVP".into(),
            _ => "RTP/AVP".into(),
        },
        srtp: srtp.map(|s| NegotiatedSrtp {
            tag: s.crypto.tag,
            suite: s.crypto.suite,
            local: s.crypto.key_salt,
            // Unknown until the answer; only `local` is written.
            remote: [0; super::KEY_SALT_LEN],
        }),
    };
    session(
        local_ip,
        session_id,
        vec![answer_section(&n, local_rtp_port)],
    )
}

/// Reads the answer to `offer`: where to send RTP and what was accepted.
/// The answer must accept our audio stream with our codec and payload type.
pub fn accept_answer(
    answer: &SessionDescription,
    offer: &AudioOffer,
) -> Result<NegotiatedAudio, SdpError> {
    accept_answer_srtp(answer, offer, None)
}

/// Reads the answer to an offer made with [`offer_audio_srtp`]: SRTP is
/// agreed when the answer carries a crypto line with our tag and suite
/// (its key is the far end's); an RTP/SAVP offer answered without one is
/// an error, a best-effort RTP/AVP one falls back to plain RTP.
pub fn accept_answer_srtp(
    answer: &SessionDescription,
    offer: &AudioOffer,
    srtp: Option<&SrtpOffer>,
) -> Result<NegotiatedAudio, SdpError> {
    let m = answer
        .media
        .first()
        .filter(|m| m.media.eq_ignore_ascii_case("audio") && m.port != 0)
        .ok_or(SdpError::NoAudio)?;
    let accepted = negotiate(answer, m, &[offer.codec])?.ok_or(SdpError::NoCommonCodec)?;
    if accepted.payload_type != offer.payload_type {
        return Err(SdpError::NoCommonCodec);
    }
    let agreed = srtp.and_then(|ours| {
        crypto_lines(m)
            .find(|c| c.tag == ours.crypto.tag && c.suite == ours.crypto.suite)
            .map(|theirs| NegotiatedSrtp {
                tag: theirs.tag,
                suite: theirs.suite,
                local: ours.crypto.key_salt,
                remote: theirs.key_salt,
            })
    });
    if agreed.is_none() && srtp.is_some_and(|s| s.savp) {
        return Err(SdpError::NoAcceptableCrypto);
    }
    Ok(NegotiatedAudio {
        telephone_event_pt: accepted
            .telephone_event_pt
            .filter(|pt| Some(*pt) == offer.telephone_event_pt),
        comfort_noise_pt: None,
        srtp: agreed,
        ..accepted
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: AudioOffer = AudioOffer {
        codec: AudioCodec::Pcmu,
        payload_type: 0,
        telephone_event_pt: Some(101),
        ptime_ms: 20,
    };

    #[test]
    fn offer_lists_codec_dtmf_and_ptime() {
        let sdp = offer_audio(&OFFER, "127.0.0.1".parse().unwrap(), 20_000, 7).to_string();
        assert!(sdp.contains("m=audio 20000 RTP/AVP 0 101\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(sdp.contains("a=ptime:20\r\n"));
        assert!(sdp.contains("a=sendrecv\r\n"));
        assert!(sdp.contains("c=IN IP4 127.0.0.1\r\n"));
    }

    #[test]
    fn answer_gives_the_remote_address() {
        let answer = SessionDescription::parse(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
             m=audio 31000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        )
        .unwrap();
        let n = accept_answer(&answer, &OFFER).unwrap();
        assert_eq!(n.remote_rtp, "127.0.0.2:31000".parse().unwrap());
        assert_eq!(n.payload_type, 0);
        assert_eq!(n.telephone_event_pt, Some(101));
    }

    #[test]
    fn answer_with_another_codec_or_rejected_stream_is_an_error() {
        let pcma = SessionDescription::parse(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 31000 RTP/AVP 8\r\n",
        )
        .unwrap();
        assert!(accept_answer(&pcma, &OFFER).is_err());
        let rejected = SessionDescription::parse(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
        )
        .unwrap();
        assert!(accept_answer(&rejected, &OFFER).is_err());
    }
}
