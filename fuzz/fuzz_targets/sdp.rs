//! Feeds arbitrary text to the SDP parser and, when it parses, to the audio
//! answerer, plain and with SDES-SRTP (`a=crypto` lines) allowed; each
//! answer must parse again, and an SRTP answer must carry exactly one
//! crypto line that reads back as ours. Every `a=crypto` value also goes
//! through the RFC 4568 parser on its own.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use sip_stack::sdp::{
    answer_audio, answer_audio_srtp, AudioCodec, CryptoAttribute, SessionDescription,
    SrtpAnswer, SrtpPolicy,
};

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
    for m in &offer.media {
        for a in m.attributes.iter().filter(|a| a.name == "crypto") {
            if let Some(Ok(c)) = a.value.as_deref().map(CryptoAttribute::parse) {
                assert_eq!(CryptoAttribute::parse(&c.value()), Ok(c));
            }
        }
    }
    for policy in [SrtpPolicy::Optional, SrtpPolicy::Mandatory] {
        let ours = SrtpAnswer {
            policy,
            local_key: [0x5a; 30],
        };
        let Ok((answer, negotiated)) =
            answer_audio_srtp(&offer, CODECS, Some(&ours), local, 20_000, 1)
        else {
            continue;
        };
        let answer = SessionDescription::parse(&answer.to_string()).expect("answer parses");
        if let Some(srtp) = negotiated.srtp {
            let lines: Vec<_> = answer
                .media
                .iter()
                .flat_map(|m| &m.attributes)
                .filter(|a| a.name == "crypto")
                .collect();
            assert_eq!(lines.len(), 1);
            let line = CryptoAttribute::parse(lines[0].value.as_deref().unwrap_or("")).unwrap();
            assert_eq!((line.tag, line.suite, line.key_salt), (srtp.tag, srtp.suite, [0x5a; 30]));
        } else {
            assert_eq!(policy, SrtpPolicy::Optional, "mandatory answered without SRTP");
        }
    }
});
