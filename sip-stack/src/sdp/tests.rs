use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const ALL: &[AudioCodec] = &[
    AudioCodec::Opus,
    AudioCodec::G722,
    AudioCodec::Pcmu,
    AudioCodec::Pcma,
];

/// What SIPp's uac_pcap scenario sends.
const SIPP_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n\
s=-\r\n\
c=IN IP4 127.0.1.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-11,16\r\n";

/// A linphone-like offer: many codecs, dynamic PTs, media-level c=, LF ends.
const LINPHONE_OFFER: &str = "v=0
o=alice 2314 1207 IN IP4 10.1.1.5
s=Talk
c=IN IP4 10.1.1.5
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
c=IN IP4 10.1.1.77
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=rtpmap:98 speex/8000
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
m=video 9078 RTP/AVP 103
a=rtpmap:103 VP8/90000
";

fn answer(
    offer: &str,
    supported: &[AudioCodec],
) -> Result<(SessionDescription, NegotiatedAudio), SdpError> {
    let offer = SessionDescription::parse(offer)?;
    answer_audio(&offer, supported, LOCAL, 20_000, 42)
}

#[test]
fn parses_sipp_offer() {
    let sdp = SessionDescription::parse(SIPP_OFFER).unwrap();
    assert_eq!(sdp.origin.session_id, "53655765");
    assert_eq!(sdp.media.len(), 1);
    let m = &sdp.media[0];
    assert_eq!(
        (m.media.as_str(), m.port, m.proto.as_str()),
        ("audio", 6000, "RTP/AVP")
    );
    assert_eq!(m.formats, vec!["8", "101"]);
    assert_eq!(m.attribute("fmtp"), Some("101 0-11,16"));
    assert_eq!(SessionDescription::parse(&sdp.to_string()).unwrap(), sdp);
}

#[test]
fn answers_sipp_offer_exactly() {
    let (sdp, n) = answer(SIPP_OFFER, ALL).unwrap();
    assert_eq!(
        sdp.to_string(),
        "v=0\r\n\
o=switchboard 42 42 IN IP4 192.0.2.10\r\n\
s=switchboard\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n"
    );
    assert_eq!(
        n,
        NegotiatedAudio {
            remote_rtp: "127.0.1.1:6000".parse().unwrap(),
            codec: AudioCodec::Pcma,
            payload_type: 8,
            clock_rate: 8000,
            telephone_event_pt: Some(101),
            comfort_noise_pt: None,
            ptime_ms: 20,
            direction: Direction::SendRecv,
            opus: None,
            proto: "RTP/AVP".into(),
            srtp: None,
        }
    );
}

/// RFC 3389 "where offered": CN at the codec's clock is answered (static
/// 13 with or without rtpmap, or a dynamic CN/16000 for a 16 kHz clock),
/// CN at another clock or next to Opus is not.
#[test]
fn comfort_noise_is_answered_where_offered() {
    let head = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n";
    let with = |m: &str| format!("{head}{m}");
    let (sdp, n) = answer(&with("m=audio 5000 RTP/AVP 0 13\r\n"), &[AudioCodec::Pcmu]).unwrap();
    assert_eq!(n.comfort_noise_pt, Some(13));
    assert_eq!(sdp.media[0].formats, vec!["0", "13"]);
    assert!(sdp.to_string().contains("a=rtpmap:13 CN/8000\r\n"));
    let offer =
        with("m=audio 5000 RTP/AVP 9 13 98\r\na=rtpmap:13 CN/8000\r\na=rtpmap:98 CN/16000\r\n");
    let (_, n) = answer(&offer, &[AudioCodec::G722]).unwrap();
    assert_eq!(n.comfort_noise_pt, Some(13), "G.722's RTP clock is 8000");
    let offer = with("m=audio 5000 RTP/AVP 0 98\r\na=rtpmap:98 CN/16000\r\n");
    let (sdp, n) = answer(&offer, &[AudioCodec::Pcmu]).unwrap();
    assert_eq!(n.comfort_noise_pt, None, "CN at another clock");
    assert_eq!(sdp.media[0].formats, vec!["0"]);
    let offer = with("m=audio 5000 RTP/AVP 111 13\r\na=rtpmap:111 opus/48000/2\r\n");
    let (_, n) = answer(&offer, &[AudioCodec::Opus]).unwrap();
    assert_eq!(n.comfort_noise_pt, None, "Opus has its own DTX");
    let (_, n) = answer(&with("m=audio 5000 RTP/AVP 0\r\n"), &[AudioCodec::Pcmu]).unwrap();
    assert_eq!(n.comfort_noise_pt, None, "not offered");
}

#[test]
fn linphone_offer_picks_our_preference_and_rejects_video() {
    let (sdp, n) = answer(LINPHONE_OFFER, ALL).unwrap();
    assert_eq!(n.codec, AudioCodec::Opus);
    assert_eq!(n.payload_type, 96);
    assert_eq!(n.clock_rate, 48_000);
    assert_eq!(n.telephone_event_pt, Some(101));
    assert_eq!(
        n.remote_rtp,
        "10.1.1.77:7078".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(sdp.media.len(), 2);
    assert_eq!(sdp.media[0].attribute("rtpmap"), Some("96 opus/48000/2"));
    assert_eq!(sdp.media[1].port, 0);
    assert_eq!(sdp.media[1].media, "video");

    let (_, n) = answer(LINPHONE_OFFER, &[AudioCodec::G722, AudioCodec::Pcmu]).unwrap();
    assert_eq!((n.codec, n.payload_type), (AudioCodec::Pcmu, 0));
    assert_eq!(
        n.telephone_event_pt,
        Some(100),
        "te must match the 8 kHz clock"
    );
}

#[test]
fn no_common_codec_and_no_audio() {
    assert_eq!(
        answer(SIPP_OFFER, &[AudioCodec::Pcmu]).unwrap_err(),
        SdpError::NoCommonCodec
    );
    let video_only = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n";
    assert_eq!(answer(video_only, ALL).unwrap_err(), SdpError::NoAudio);
    let srtp = SIPP_OFFER.replace("RTP/AVP", "RTP/SAVP");
    assert_eq!(answer(&srtp, ALL).unwrap_err(), SdpError::NoAudio);
    let no_c = SIPP_OFFER.replace("c=IN IP4 127.0.1.1\r\n", "");
    assert_eq!(answer(&no_c, ALL).unwrap_err(), SdpError::NoConnection);
}

#[test]
fn static_payload_types_without_rtpmap() {
    let offer = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/AVP 9 0\r\na=ptime:30\r\n";
    let (sdp, n) = answer(offer, &[AudioCodec::Pcmu, AudioCodec::G722]).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.ptime_ms),
        (AudioCodec::Pcmu, 0, 30)
    );
    assert_eq!(n.telephone_event_pt, None);
    assert_eq!(sdp.media[0].formats, vec!["0"]);
    assert_eq!(sdp.media[0].attribute("ptime"), Some("30"));
}

#[test]
fn sendonly_hold_is_answered_recvonly() {
    let hold = SIPP_OFFER.replace(
        "a=fmtp:101 0-11,16\r\n",
        "a=fmtp:101 0-11,16\r\na=sendonly\r\n",
    );
    let (sdp, n) = answer(&hold, ALL).unwrap();
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(sdp.to_string().ends_with("a=recvonly\r\n"));
    let session_level = SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n");
    assert_eq!(
        answer(&session_level, ALL).unwrap().1.direction,
        Direction::Inactive
    );
    let recvonly = SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n");
    assert_eq!(
        answer(&recvonly, ALL).unwrap().1.direction,
        Direction::SendOnly
    );
}

#[test]
fn ipv6_connection() {
    let offer = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
    let (sdp, n) = answer(offer, ALL).unwrap();
    assert_eq!(
        n.remote_rtp,
        "[2001:db8::1]:5004".parse::<SocketAddr>().unwrap()
    );
    let v6: IpAddr = "2001:db8::2".parse().unwrap();
    let (sdp6, _) =
        answer_audio(&SessionDescription::parse(offer).unwrap(), ALL, v6, 4000, 1).unwrap();
    assert!(sdp6.to_string().contains("c=IN IP6 2001:db8::2\r\n"));
    assert!(sdp.to_string().contains("c=IN IP4 192.0.2.10\r\n"));
}

#[test]
fn hostile_input_is_bounded() {
    let mut many = String::from("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n");
    for _ in 0..100 {
        many.push_str("m=audio 1 RTP/AVP 0\r\n");
    }
    assert_eq!(
        SessionDescription::parse(&many).unwrap_err(),
        SdpError::TooManyMedia(16)
    );
    let mut long = String::from("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n");
    for _ in 0..1000 {
        long.push_str("a=x\r\n");
    }
    assert_eq!(
        SessionDescription::parse(&long).unwrap_err(),
        SdpError::TooManyLines(512)
    );
    for bad in [
        "",
        "v=1\r\n",
        "x\r\n",
        "v=0\r\ns=-\r\n",
        "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nm=audio x RTP/AVP 0\r\n",
    ] {
        assert!(SessionDescription::parse(bad).is_err(), "{bad:?}");
    }
}

/// A Chrome-style audio section (as a SIP gateway in front of a browser
/// passes it on, plain RTP/AVP): Opus first at 111, telephone-event at
/// both clocks.
const CHROME_LIKE_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
m=audio 50000 RTP/AVP 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 198.51.100.7\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=sendrecv\r\n";

/// What baresip 1.0's opus module offers (stereo flags, a bit-rate cap,
/// DTX), with the encoding name in capitals as some UAs write it.
const BARESIP_LIKE_OFFER: &str = "v=0\r\n\
o=- 1 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 10004 RTP/AVP 96 9 0 8 101\r\n\
a=rtpmap:96 OPUS/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1;maxaveragebitrate=28000;usedtx=1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n";

#[test]
fn chrome_like_offer_negotiates_opus_at_its_payload_type() {
    let (sdp, n) = answer(CHROME_LIKE_OFFER, ALL).unwrap();
    assert_eq!((n.codec, n.payload_type), (AudioCodec::Opus, 111));
    assert_eq!(n.clock_rate, 48_000);
    assert_eq!(n.telephone_event_pt, Some(110), "te at the 48 kHz clock");
    assert_eq!(
        n.opus,
        Some(OpusFmtp {
            max_average_bitrate: None,
            use_dtx: false,
            use_inband_fec: true,
        })
    );
    let text = sdp.to_string();
    assert!(
        text.contains(
            "m=audio 20000 RTP/AVP 111 110\r\n\
             a=rtpmap:111 opus/48000/2\r\n\
             a=fmtp:111 useinbandfec=1\r\n\
             a=rtpmap:110 telephone-event/48000\r\n\
             a=fmtp:110 0-16\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        ),
        "{text}"
    );
    // Without Opus on our list the same offer gets G.722 and 8 kHz events.
    let (_, n) = answer(CHROME_LIKE_OFFER, &[AudioCodec::G722, AudioCodec::Pcmu]).unwrap();
    assert_eq!(
        (n.codec, n.telephone_event_pt, n.opus),
        (AudioCodec::G722, Some(126), None)
    );
}

#[test]
fn baresip_like_offer_fmtp_and_case_insensitive_rtpmap() {
    let (sdp, n) = answer(BARESIP_LIKE_OFFER, ALL).unwrap();
    assert_eq!((n.codec, n.payload_type), (AudioCodec::Opus, 96));
    assert_eq!(
        n.opus,
        Some(OpusFmtp {
            max_average_bitrate: Some(28_000),
            use_dtx: true,
            use_inband_fec: false,
        })
    );
    // No telephone-event at 48 kHz offered: none accepted.
    assert_eq!(n.telephone_event_pt, None);
    assert_eq!(sdp.media[0].formats, vec!["96"]);
    assert_eq!(sdp.media[0].attribute("fmtp"), Some("96 useinbandfec=1"));
    // opus at the wrong clock is not Opus.
    let wrong = BARESIP_LIKE_OFFER.replace("OPUS/48000/2", "opus/8000");
    assert_eq!(answer(&wrong, ALL).unwrap().1.codec, AudioCodec::G722);
}

#[test]
fn opus_fmtp_parsing() {
    assert_eq!(OpusFmtp::parse(""), OpusFmtp::default());
    assert_eq!(
        OpusFmtp::parse(" MaxAverageBitrate = 20000 ; useinbandfec=1;usedtx=0;stereo;a=b=c"),
        OpusFmtp {
            max_average_bitrate: Some(20_000),
            use_dtx: false,
            use_inband_fec: true,
        }
    );
    assert_eq!(
        OpusFmtp::parse("maxaveragebitrate=lots").max_average_bitrate,
        None
    );
    // Another format's fmtp is not Opus': defaults.
    let other = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n\
                 m=audio 5000 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\na=fmtp:98 usedtx=1\r\n";
    assert_eq!(
        answer(other, ALL).unwrap().1.opus,
        Some(OpusFmtp::default())
    );
}

#[test]
fn opus_offer_and_its_answer() {
    let offer = AudioOffer {
        codec: AudioCodec::Opus,
        payload_type: 111,
        telephone_event_pt: Some(110),
        ptime_ms: 20,
    };
    let sdp = offer_audio(&offer, LOCAL, 20_002, 9).to_string();
    assert!(sdp.contains("m=audio 20002 RTP/AVP 111 110\r\n"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n"));
    assert!(sdp.contains("a=rtpmap:110 telephone-event/48000\r\n"));
    let answer = SessionDescription::parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
         m=audio 31000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 usedtx=1\r\n",
    )
    .unwrap();
    let n = accept_answer(&answer, &offer).unwrap();
    assert_eq!((n.codec, n.payload_type), (AudioCodec::Opus, 111));
    assert_eq!(n.opus.map(|o| o.use_dtx), Some(true));
    assert_eq!(n.telephone_event_pt, None);
}

/// RFC 4568 §9.1's example key, and another.
const KEY_A: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
const KEY_B: &str = "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";

fn srtp_offer(proto: &str, crypto: &[&str]) -> String {
    let mut s = SIPP_OFFER.replace("RTP/AVP", proto);
    for c in crypto {
        s.push_str(&format!("a=crypto:{c}\r\n"));
    }
    s
}

fn srtp(policy: SrtpPolicy) -> SrtpAnswer {
    SrtpAnswer {
        policy,
        local_key: [7; KEY_SALT_LEN],
    }
}

fn answer_with(
    offer: &str,
    policy: SrtpPolicy,
) -> Result<(SessionDescription, NegotiatedAudio), SdpError> {
    let offer = SessionDescription::parse(offer)?;
    answer_audio_srtp(&offer, ALL, Some(&srtp(policy)), LOCAL, 20_000, 42)
}

#[test]
fn savp_offer_gets_the_first_usable_crypto_line_with_our_key() {
    let offer = srtp_offer(
        "RTP/SAVP",
        &[
            &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY_A}"),
            &format!("2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|2^20|1:4"),
            &format!("3 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}|2^31"),
            &format!("4 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}"),
        ],
    );
    let (sdp, n) = answer_with(&offer, SrtpPolicy::Optional).unwrap();
    let text = sdp.to_string();
    assert!(text.contains("m=audio 20000 RTP/SAVP 8 101\r\n"), "{text}");
    let ours = CryptoAttribute {
        tag: 3,
        suite: CryptoSuite::AesCm128HmacSha1_32,
        key_salt: [7; KEY_SALT_LEN],
    };
    assert!(
        text.contains(&format!("a=crypto:{}\r\n", ours.value())),
        "{text}"
    );
    assert_eq!(text.matches("a=crypto").count(), 1);
    let agreed = n.srtp.unwrap();
    assert_eq!(
        (agreed.tag, agreed.suite),
        (3, CryptoSuite::AesCm128HmacSha1_32)
    );
    let theirs =
        CryptoAttribute::parse(&format!("3 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}")).unwrap();
    assert_eq!(
        (agreed.local, agreed.remote),
        ([7; KEY_SALT_LEN], theirs.key_salt)
    );
    assert_eq!(n.proto, "RTP/SAVP");
    // SAVPF is answered in kind.
    let (sdp, _) = answer_with(
        &offer.replace("RTP/SAVP", "RTP/SAVPF"),
        SrtpPolicy::Mandatory,
    )
    .unwrap();
    assert!(sdp.to_string().contains("RTP/SAVPF 8 101"));
}

#[test]
fn srtp_policy_decides_what_is_answered() {
    let good = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}");
    let savp = srtp_offer("RTP/SAVP", &[&good]);
    let avp_crypto = srtp_offer("RTP/AVP", &[&good]);
    let savp_unusable = srtp_offer(
        "RTP/SAVP",
        &[&format!("1 F8_128_HMAC_SHA1_80 inline:{KEY_A}")],
    );
    // Off: SAVP refused, crypto on AVP ignored.
    assert_eq!(
        answer_with(&savp, SrtpPolicy::Off).unwrap_err(),
        SdpError::NoAudio
    );
    let (sdp, n) = answer_with(&avp_crypto, SrtpPolicy::Off).unwrap();
    assert!(n.srtp.is_none() && !sdp.to_string().contains("crypto"));
    // Optional: best-effort AVP with crypto gets SRTP on RTP/AVP; plain stays plain.
    let (sdp, n) = answer_with(&avp_crypto, SrtpPolicy::Optional).unwrap();
    assert!(n.srtp.is_some());
    assert!(sdp
        .to_string()
        .contains("m=audio 20000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=crypto:1 "));
    let (_, n) = answer_with(SIPP_OFFER, SrtpPolicy::Optional).unwrap();
    assert!(n.srtp.is_none());
    assert_eq!(
        answer_with(&savp_unusable, SrtpPolicy::Optional).unwrap_err(),
        SdpError::NoAudio
    );
    // Mandatory: plain refused.
    assert_eq!(
        answer_with(SIPP_OFFER, SrtpPolicy::Mandatory).unwrap_err(),
        SdpError::NoAudio
    );
    assert!(answer_with(&avp_crypto, SrtpPolicy::Mandatory)
        .unwrap()
        .1
        .srtp
        .is_some());
    // A second, SAVP audio line after a rejected one is taken.
    let two = format!("{SIPP_OFFER}m=audio 6002 RTP/SAVP 0\r\na=crypto:{good}\r\n");
    let (sdp, n) = answer_with(&two, SrtpPolicy::Mandatory).unwrap();
    assert_eq!(sdp.media[0].port, 0);
    assert_eq!((n.remote_rtp.port(), n.proto.as_str()), (6002, "RTP/SAVP"));
}

#[test]
fn srtp_offer_and_answer_exchange_keys_crosswise() {
    let audio = AudioOffer {
        codec: AudioCodec::Pcmu,
        payload_type: 0,
        telephone_event_pt: Some(101),
        ptime_ms: 20,
    };
    for savp in [true, false] {
        let ours = SrtpOffer {
            savp,
            crypto: CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80).unwrap(),
        };
        let offer = offer_audio_srtp(&audio, Some(&ours), LOCAL, 30_000, 1);
        let text = offer.to_string();
        assert!(
            text.contains(if savp {
                "RTP/SAVP 0 101"
            } else {
                "RTP/AVP 0 101"
            }),
            "{text}"
        );
        let offer = SessionDescription::parse(&text).unwrap();
        let far = SrtpAnswer {
            policy: SrtpPolicy::Optional,
            local_key: fresh_key().unwrap(),
        };
        let (answer, theirs) =
            answer_audio_srtp(&offer, ALL, Some(&far), LOCAL, 31_000, 2).unwrap();
        let theirs = theirs.srtp.unwrap();
        let answer = SessionDescription::parse(&answer.to_string()).unwrap();
        let mine = accept_answer_srtp(&answer, &audio, Some(&ours))
            .unwrap()
            .srtp
            .unwrap();
        assert_eq!((mine.local, mine.remote), (theirs.remote, theirs.local));
        // The far end answered without crypto.
        let plain = answer_audio(
            &SessionDescription::parse(&text.replace("RTP/SAVP", "RTP/AVP")).unwrap(),
            ALL,
            LOCAL,
            31_000,
            2,
        )
        .unwrap()
        .0;
        let got = accept_answer_srtp(&plain, &audio, Some(&ours));
        if savp {
            assert_eq!(got.unwrap_err(), SdpError::NoAcceptableCrypto);
        } else {
            assert!(got.unwrap().srtp.is_none());
        }
    }
}
