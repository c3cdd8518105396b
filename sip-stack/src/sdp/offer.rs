//! Making an audio offer (RFC 3264 §5) for an outbound leg, and reading the
//! answer to it (§7).

use std::net::IpAddr;

use super::answer::{answer_section, negotiate, session};
use super::{Direction, NegotiatedAudio, SdpError, SessionDescription};
use crate::sdp::AudioCodec;

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
    let m = answer
        .media
        .first()
        .filter(|m| m.media.eq_ignore_ascii_case("audio") && m.port != 0)
        .ok_or(SdpError::NoAudio)?;
    let accepted = negotiate(answer, m, &[offer.codec])?.ok_or(SdpError::NoCommonCodec)?;
    if accepted.payload_type != offer.payload_type {
        return Err(SdpError::NoCommonCodec);
    }
    Ok(NegotiatedAudio {
        telephone_event_pt: accepted
            .telephone_event_pt
            .filter(|pt| Some(*pt) == offer.telephone_event_pt),
        comfort_noise_pt: None,
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
