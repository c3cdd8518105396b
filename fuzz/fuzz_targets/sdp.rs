//! Feeds arbitrary text to the SDP parser and, when it parses, to the audio
//! answerer; the answer itself must parse again.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use sip_stack::sdp::{answer_audio, AudioCodec, SessionDescription};

const CODECS: &[AudioCodec] = &[
    AudioCodec::Opus,
    AudioCodec::G722,
    AudioCodec::Pcmu,
    AudioCodec::Pcma,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(offer) = SessionDescription::parse(text) else {
        return;
    };
    let reparsed = SessionDescription::parse(&offer.to_string());
    assert!(reparsed.is_ok(), "serialized SDP must parse: {reparsed:?}");
    let local = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    if let Ok((answer, _negotiated)) = answer_audio(&offer, CODECS, local, 20_000, 1) {
        assert!(SessionDescription::parse(&answer.to_string()).is_ok());
    }
});
