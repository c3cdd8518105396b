//! Answering an audio offer (RFC 3264 §6) for an RTP/AVP leg, or an SRTP
//! one keyed by SDES (RFC 4568).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::crypto::{CryptoAttribute, CryptoSuite, KEY_SALT_LEN};
use super::{Attribute, Connection, MediaDescription, Origin, SdpError, SessionDescription};

/// What we accept of SRTP in an offer. Whether keys may travel in this
/// signalling at all (SDES keys are in the clear unless the SIP hop is
/// TLS) is the caller's decision, made before choosing the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SrtpPolicy {
    /// Plain RTP/AVP only; `a=crypto` is ignored and RTP/SAVP refused.
    #[default]
    Off,
    /// SRTP when offered with a usable `a=crypto` (on RTP/SAVP, or on
    /// RTP/AVP as best-effort peers do), else plain RTP/AVP.
    Optional,
    /// Only streams with a usable `a=crypto`.
    Mandatory,
}

/// Our side of SDES for an answer: the policy and our fresh key||salt
/// (made once per call, so both answer passes carry the same key).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpAnswer {
    pub policy: SrtpPolicy,
    pub local_key: [u8; KEY_SALT_LEN],
}

impl fmt::Debug for SrtpAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpAnswer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// SRTP agreed for the audio stream: the chosen line's tag and suite, our
/// key (what we send with) and the far end's (what it sends with).
/// `Debug` does not print the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct NegotiatedSrtp {
    pub tag: u32,
    pub suite: CryptoSuite,
    pub local: [u8; KEY_SALT_LEN],
    pub remote: [u8; KEY_SALT_LEN],
}

impl fmt::Debug for NegotiatedSrtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NegotiatedSrtp")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The codecs `media-core` can terminate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl AudioCodec {
    /// The rtpmap encoding name (RFC 3551 §6, RFC 7587).
    pub fn encoding_name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::G722 => "G722",
            AudioCodec::Opus => "opus",
        }
    }

    /// The RTP clock rate. G.722 samples at 16 kHz but its RTP clock is
    /// 8000 by an RFC 1890 mistake kept for compatibility (RFC 3551 §4.5.2).
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Opus => 48_000,
            _ => 8_000,
        }
    }

    /// The rtpmap channel field: RFC 7587 always says `/2` for Opus.
    pub fn channels(self) -> Option<u8> {
        (self == AudioCodec::Opus).then_some(2)
    }

    /// The RFC 3551 static payload type, if any.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            AudioCodec::Pcmu => Some(0),
            AudioCodec::Pcma => Some(8),
            AudioCodec::G722 => Some(9),
            AudioCodec::Opus => None,
        }
    }
}

/// RFC 3264 §6.1 stream direction, from the point of view of the side that
/// wrote the SDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attrs(attrs: &[Attribute]) -> Option<Direction> {
        attrs
            .iter()
            .find_map(|a| match a.name.to_ascii_lowercase().as_str() {
                "sendrecv" => Some(Direction::SendRecv),
                "sendonly" => Some(Direction::SendOnly),
                "recvonly" => Some(Direction::RecvOnly),
                "inactive" => Some(Direction::Inactive),
                _ => None,
            })
    }

    /// The answerer's direction for an offered one (RFC 3264 §6.1).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// The Opus `a=fmtp` parameters (RFC 7587 §6.1) that shape what we send.
/// Parameters not listed (stereo, sprop-*, cbr, minptime) do not change
/// how a mono 20 ms VoIP encoder works and are ignored, as are unknown or
/// malformed ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpusFmtp {
    /// `maxaveragebitrate`: the most the peer wants to receive, bit/s.
    pub max_average_bitrate: Option<u32>,
    /// `usedtx=1`: the peer prefers we send DTX.
    pub use_dtx: bool,
    /// `useinbandfec=1`: the peer can decode in-band FEC.
    pub use_inband_fec: bool,
}

impl OpusFmtp {
    /// Reads an fmtp parameter list: `key=value` pairs separated by `;`.
    pub fn parse(params: &str) -> OpusFmtp {
        let mut f = OpusFmtp::default();
        let pairs = params
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()));
        for (key, value) in pairs {
            match key.as_str() {
                "maxaveragebitrate" => f.max_average_bitrate = value.parse().ok(),
                "usedtx" => f.use_dtx = value == "1",
                "useinbandfec" => f.use_inband_fec = value == "1",
                _ => {}
            }
        }
        f
    }

    /// What we write for a stream we receive: we decode FEC. No
    /// `minptime=10`: a leg plays one 20 ms packet per tick (and our
    /// `a=ptime:20` says so), so inviting 10 ms packets would halve the
    /// audio.
    pub const OURS: &'static str = "useinbandfec=1";
}

/// What `media-core` needs to open the RTP leg after answering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedAudio {
    /// Where to send RTP: media-level c= over session-level, plus the m= port.
    pub remote_rtp: SocketAddr,
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub clock_rate: u32,
    /// RFC 4733 DTMF, when offered at the codec's clock rate.
    pub telephone_event_pt: Option<u8>,
    /// RFC 3389 comfort noise, when offered at the codec's clock rate (the
    /// static PT 13 is CN/8000 without an rtpmap); never with Opus, which
    /// has its own DTX.
    pub comfort_noise_pt: Option<u8>,
    pub ptime_ms: u32,
    /// Our direction, as written in the answer (the offer's reversed).
    pub direction: Direction,
    /// For Opus: the peer's fmtp for the chosen payload type (defaults if
    /// it had none); `None` for the other codecs.
    pub opus: Option<OpusFmtp>,
    /// The m= line's transport protocol as answered (`RTP/AVP`,
    /// `RTP/SAVP`, `RTP/SAVPF`).
    pub proto: String,
    /// SDES-SRTP, when agreed.
    pub srtp: Option<NegotiatedSrtp>,
}

const DEFAULT_PTIME_MS: u32 = 20;

/// An rtpmap entry: payload type, encoding name, clock rate.
fn rtpmaps(m: &MediaDescription) -> impl Iterator<Item = (u8, &str, u32)> {
    m.attributes
        .iter()
        .filter(|a| a.name.eq_ignore_ascii_case("rtpmap"))
        .filter_map(|a| {
            let (pt, enc) = a.value.as_deref()?.trim().split_once(' ')?;
            let mut enc = enc.trim().split('/');
            let name = enc.next()?;
            let rate = enc.next()?.parse().ok()?;
            Some((pt.parse().ok()?, name, rate))
        })
}

/// Whether format `pt` of `m` is `codec`: by rtpmap when there is one,
/// else by static payload type.
fn is_codec(m: &MediaDescription, pt: u8, codec: AudioCodec) -> bool {
    match rtpmaps(m).find(|(p, _, _)| *p == pt) {
        Some((_, name, rate)) => {
            name.eq_ignore_ascii_case(codec.encoding_name()) && rate == codec.clock_rate()
        }
        None => codec.static_payload_type() == Some(pt),
    }
}

/// The `a=fmtp` parameters of format `pt`, if any.
fn fmtp(m: &MediaDescription, pt: u8) -> Option<&str> {
    m.attributes
        .iter()
        .filter(|a| a.name.eq_ignore_ascii_case("fmtp"))
        .filter_map(|a| a.value.as_deref()?.trim().split_once(' '))
        .find(|(p, _)| p.parse() == Ok(pt))
        .map(|(_, params)| params.trim())
}

fn ptime(offer: &SessionDescription, m: &MediaDescription) -> u32 {
    m.attribute("ptime")
        .or_else(|| offer.attribute("ptime"))
        .and_then(|v| v.trim().split('.').next()?.parse().ok())
        .filter(|p| (10..=200).contains(p))
        .unwrap_or(DEFAULT_PTIME_MS)
}

/// Negotiates one offered audio stream; `Ok(None)` when no codec matches.
pub(super) fn negotiate(
    offer: &SessionDescription,
    m: &MediaDescription,
    supported: &[AudioCodec],
) -> Result<Option<NegotiatedAudio>, SdpError> {
    let pts: Vec<u8> = m.formats.iter().filter_map(|f| f.parse().ok()).collect();
    let Some((codec, payload_type)) = supported.iter().find_map(|&c| {
        pts.iter()
            .find(|&&pt| is_codec(m, pt, c))
            .map(|&pt| (c, pt))
    }) else {
        return Ok(None);
    };
    let telephone_event_pt = rtpmaps(m)
        .find(|(pt, name, rate)| {
            name.eq_ignore_ascii_case("telephone-event")
                && *rate == codec.clock_rate()
                && pts.contains(pt)
        })
        .map(|(pt, _, _)| pt);
    let comfort_noise_pt = comfort_noise(m, &pts, codec);
    let ip = m
        .connection
        .as_ref()
        .or(offer.connection.as_ref())
        .and_then(Connection::ip)
        .ok_or(SdpError::NoConnection)?;
    let offered = Direction::from_attrs(&m.attributes)
        .or_else(|| Direction::from_attrs(&offer.attributes))
        .unwrap_or(Direction::SendRecv);
    Ok(Some(NegotiatedAudio {
        remote_rtp: SocketAddr::new(ip, m.port),
        codec,
        payload_type,
        clock_rate: codec.clock_rate(),
        telephone_event_pt,
        comfort_noise_pt,
        ptime_ms: ptime(offer, m),
        direction: offered.reversed(),
        opus: (codec == AudioCodec::Opus).then(|| {
            fmtp(m, payload_type)
                .map(OpusFmtp::parse)
                .unwrap_or_default()
        }),
        proto: m.proto.clone(),
        srtp: None,
    }))
}

/// The offered CN format at `codec`'s clock rate, if any (RFC 3389 §5: CN
/// is listed like any format; PT 13 is CN/8000 by RFC 3551 when it has no
/// rtpmap).
fn comfort_noise(m: &MediaDescription, pts: &[u8], codec: AudioCodec) -> Option<u8> {
    if codec == AudioCodec::Opus {
        return None;
    }
    let mapped = rtpmaps(m)
        .find(|(pt, name, rate)| {
            name.eq_ignore_ascii_case("CN") && *rate == codec.clock_rate() && pts.contains(pt)
        })
        .map(|(pt, _, _)| pt);
    let static_13 =
        codec.clock_rate() == 8000 && pts.contains(&13) && rtpmaps(m).all(|(pt, _, _)| pt != 13);
    mapped.or(static_13.then_some(13))
}

/// The usable `a=crypto` lines of `m`, in offer order (RFC 4568 §7.1.1:
/// the offerer lists them by preference); lines we cannot honour are
/// skipped, never fatal.
pub(super) fn crypto_lines(m: &MediaDescription) -> impl Iterator<Item = CryptoAttribute> + '_ {
    m.attributes
        .iter()
        .filter(|a| a.name.eq_ignore_ascii_case("crypto"))
        .filter_map(|a| CryptoAttribute::parse(a.value.as_deref()?).ok())
}

fn is_savp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/SAVP") || proto.eq_ignore_ascii_case("RTP/SAVPF")
}

/// How an offered stream can be taken under `srtp`: `None` if not at all,
/// `Some(None)` as plain RTP, `Some(Some(_))` with SRTP.
fn stream_security(
    m: &MediaDescription,
    srtp: Option<&SrtpAnswer>,
) -> Option<Option<NegotiatedSrtp>> {
    let savp = is_savp(&m.proto);
    if !savp && !m.proto.eq_ignore_ascii_case("RTP/AVP") {
        return None;
    }
    let Some(ours) = srtp.filter(|s| s.policy != SrtpPolicy::Off) else {
        return (!savp).then_some(None);
    };
    match crypto_lines(m).next() {
        Some(c) => Some(Some(NegotiatedSrtp {
            tag: c.tag,
            suite: c.suite,
            local: ours.local_key,
            remote: c.key_salt,
        })),
        None if !savp && ours.policy == SrtpPolicy::Optional => Some(None),
        None => None,
    }
}

pub(super) fn answer_section(n: &NegotiatedAudio, port: u16) -> MediaDescription {
    let mut formats = vec![n.payload_type.to_string()];
    let mut rtpmap = format!(
        "{} {}/{}",
        n.payload_type,
        n.codec.encoding_name(),
        n.clock_rate
    );
    if let Some(ch) = n.codec.channels() {
        rtpmap.push_str(&format!("/{ch}"));
    }
    let mut attributes = vec![Attribute::new("rtpmap", Some(rtpmap))];
    if let Some(srtp) = &n.srtp {
        let ours = CryptoAttribute {
            tag: srtp.tag,
            suite: srtp.suite,
            key_salt: srtp.local,
        };
        attributes.push(Attribute::new("crypto", Some(ours.value())));
    }
    if n.codec == AudioCodec::Opus {
        let params = format!("{} {}", n.payload_type, OpusFmtp::OURS);
        attributes.push(Attribute::new("fmtp", Some(params)));
    }
    if let Some(te) = n.telephone_event_pt {
        formats.push(te.to_string());
        attributes.push(Attribute::new(
            "rtpmap",
            Some(format!("{te} telephone-event/{}", n.clock_rate)),
        ));
        attributes.push(Attribute::new("fmtp", Some(format!("{te} 0-16"))));
    }
    if let Some(cn) = n.comfort_noise_pt {
        formats.push(cn.to_string());
        attributes.push(Attribute::new(
            "rtpmap",
            Some(format!("{cn} CN/{}", n.clock_rate)),
        ));
    }
    attributes.push(Attribute::new("ptime", Some(n.ptime_ms.to_string())));
    attributes.push(Attribute::new(n.direction.as_str(), None));
    MediaDescription {
        media: "audio".into(),
        port,
        port_count: None,
        proto: n.proto.clone(),
        formats,
        connection: None,
        bandwidths: Vec::new(),
        attributes,
        other: Vec::new(),
    }
}

/// A rejected stream: same media and proto, port 0 (RFC 3264 §6).
fn rejected(m: &MediaDescription) -> MediaDescription {
    MediaDescription {
        media: m.media.clone(),
        port: 0,
        port_count: None,
        proto: m.proto.clone(),
        formats: vec![m.formats.first().cloned().unwrap_or_else(|| "0".into())],
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    }
}

/// Answers `offer` with one RTP/AVP audio stream (no SRTP: RTP/SAVP
/// lines are refused); see [`answer_audio_srtp`].
pub fn answer_audio(
    offer: &SessionDescription,
    supported: &[AudioCodec],
    local_ip: IpAddr,
    local_rtp_port: u16,
    session_id: u64,
) -> Result<(SessionDescription, NegotiatedAudio), SdpError> {
    answer_audio_srtp(offer, supported, None, local_ip, local_rtp_port, session_id)
}

/// Answers `offer` with one audio stream, plain or SDES-SRTP as `srtp`
/// allows ([`SrtpPolicy`]).
///
/// Our preference (`supported` order) wins over the offerer's, because the
/// choice drives transcoding cost on our side. The answer keeps the offer's
/// payload type numbers (RFC 3264 §6.1) and one m= line per offered line,
/// in order: the first usable audio stream is accepted, every other line
/// (video, a second audio, profiles or crypto we cannot honour) gets
/// port 0. telephone-event is accepted when offered at the chosen codec's
/// clock rate (so 8000 for PCMU/PCMA/G.722, 48000 for Opus), and so is
/// comfort noise (CN, RFC 3389; not with Opus). For Opus the
/// answer carries our fmtp ([`OpusFmtp::OURS`]) and the negotiated audio
/// the offerer's ([`NegotiatedAudio::opus`]).
///
/// SRTP (RFC 4568 §7.1.2): the first `a=crypto` line we can honour is
/// chosen, and the answer carries the same tag and suite with our own key
/// ([`SrtpAnswer::local_key`]) on the offer's profile (RTP/SAVP stays
/// RTP/SAVP; best-effort RTP/AVP with crypto stays RTP/AVP).
pub fn answer_audio_srtp(
    offer: &SessionDescription,
    supported: &[AudioCodec],
    srtp: Option<&SrtpAnswer>,
    local_ip: IpAddr,
    local_rtp_port: u16,
    session_id: u64,
) -> Result<(SessionDescription, NegotiatedAudio), SdpError> {
    let mut media = Vec::with_capacity(offer.media.len());
    let mut negotiated = None;
    let mut saw_audio = false;
    for m in &offer.media {
        let security =
            (negotiated.is_none() && m.media.eq_ignore_ascii_case("audio") && m.port != 0)
                .then(|| stream_security(m, srtp))
                .flatten();
        saw_audio |= security.is_some();
        let accepted = match security {
            Some(security) => negotiate(offer, m, supported)?.map(|n| NegotiatedAudio {
                srtp: security,
                ..n
            }),
            None => None,
        };
        match accepted {
            Some(n) => {
                media.push(answer_section(&n, local_rtp_port));
                negotiated = Some(n);
            }
            None => media.push(rejected(m)),
        }
    }
    let negotiated = match negotiated {
        Some(n) => n,
        None if saw_audio => return Err(SdpError::NoCommonCodec),
        None => return Err(SdpError::NoAudio),
    };
    let answer = session(local_ip, session_id, media);
    Ok((answer, negotiated))
}

/// A session with our origin and connection around `media`.
pub(super) fn session(
    local_ip: IpAddr,
    session_id: u64,
    media: Vec<MediaDescription>,
) -> SessionDescription {
    let connection = Connection::new(local_ip);
    SessionDescription {
        origin: Origin {
            username: "switchboard".into(),
            session_id: session_id.to_string(),
            session_version: session_id.to_string(),
            net_type: "IN".into(),
            addr_type: connection.addr_type.clone(),
            address: connection.address.clone(),
        },
        session_name: "switchboard".into(),
        connection: Some(connection),
        bandwidths: Vec::new(),
        timing: vec!["0 0".into()],
        attributes: Vec::new(),
        other: Vec::new(),
        media,
    }
}
