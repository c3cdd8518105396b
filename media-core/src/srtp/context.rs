//! One direction's SRTP/SRTCP crypto context: session keys plus the state
//! of each stream (SSRC) it has seen, in fixed tables so the packet path
//! never allocates.

use hmac::Mac;

use super::kdf::SessionKeys;
use super::replay::{ReplayWindow, RocState};
use super::{MasterKey, SrtpError, SrtpProfile};

/// Streams (SSRCs) tracked per context. A leg sees one or two; the rest is
/// headroom for SSRC changes (transfers, re-INVITEs) over a long call.
const MAX_STREAMS: usize = 8;

/// The E flag of the SRTCP index word: the payload is encrypted.
const SRTCP_E: u32 = 0x8000_0000;

#[derive(Clone, Copy, Debug, Default)]
struct RtpStream {
    ssrc: u32,
    roc: RocState,
    window: ReplayWindow,
    last_used: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct RtcpStream {
    ssrc: u32,
    window: ReplayWindow,
    last_used: u64,
}

/// Keys and per-SSRC state for one direction: use one context to protect
/// what a leg sends and another (with the far end's key) to unprotect what
/// it receives. Sized once; no method allocates.
pub struct SrtpContext {
    profile: SrtpProfile,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    rtp_streams: [Option<RtpStream>; MAX_STREAMS],
    rtcp_streams: [Option<RtcpStream>; MAX_STREAMS],
    /// The next SRTCP index we send (one counter for every SSRC we send
    /// RTCP for: each stream's indices still only grow).
    srtcp_index: u32,
    /// Ticks on every packet, for least-recently-used eviction.
    clock: u64,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// Derives the session keys of `master` (RFC 3711 §4.3, kdr 0).
    pub fn new(master: &MasterKey) -> SrtpContext {
        SrtpContext {
            profile: master.profile,
            rtp: SessionKeys::derive(master, false),
            rtcp: SessionKeys::derive(master, true),
            rtp_streams: [None; MAX_STREAMS],
            rtcp_streams: [None; MAX_STREAMS],
            srtcp_index: 0,
            clock: 0,
        }
    }

    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Switches between the AES-CM-128 suites, which share session keys
    /// and differ only in the SRTP tag length.
    pub(crate) fn set_profile(&mut self, profile: SrtpProfile) {
        self.profile = profile;
    }

    /// Encrypts the RTP packet in `buf[..len]` and appends its tag; returns
    /// the SRTP length. `buf` needs room for the tag past `len`.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let packet = buf.get(..len).ok_or(SrtpError::TooShort(len))?;
        let header = rtp_header_len(packet)?;
        let (ssrc, seq) = rtp_ssrc_seq(packet);
        let out_len = len + tag_len;
        if buf.len() < out_len {
            return Err(SrtpError::BufferTooSmall(out_len));
        }
        let slot = self.sending_slot(ssrc)?;
        let stream = self.rtp_streams[slot].get_or_insert(RtpStream {
            ssrc,
            ..RtpStream::default()
        });
        let index = stream.roc.estimate(seq);
        stream.roc.update(index);
        stream.last_used = self.clock;
        self.rtp.apply_keystream(ssrc, index, &mut buf[header..len]);
        let tag = rtp_tag(&self.rtp, &buf[..len], index);
        buf[len..out_len].copy_from_slice(&tag[..tag_len]);
        Ok(out_len)
    }

    /// Authenticates and decrypts the SRTP packet `buf` in place; returns
    /// the RTP length. Nothing changes unless the packet authenticates.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let len = buf.len();
        let body_len = len.checked_sub(tag_len).ok_or(SrtpError::TooShort(len))?;
        let header = rtp_header_len(&buf[..body_len])?;
        let (ssrc, seq) = rtp_ssrc_seq(buf);
        let known = self
            .rtp_streams
            .iter()
            .position(|s| s.is_some_and(|s| s.ssrc == ssrc));
        let stream = known
            .and_then(|k| self.rtp_streams[k])
            .unwrap_or(RtpStream {
                ssrc,
                ..RtpStream::default()
            });
        let index = stream.roc.estimate(seq);
        if !stream.window.check(index) {
            return Err(SrtpError::Replayed);
        }
        let tag = rtp_tag(&self.rtp, &buf[..body_len], index);
        if !ct_eq(&tag[..tag_len], &buf[body_len..]) {
            return Err(SrtpError::AuthFailed);
        }
        self.rtp
            .apply_keystream(ssrc, index, &mut buf[header..body_len]);
        self.clock += 1;
        let mut stream = stream;
        stream.roc.update(index);
        stream.window.accept(index);
        stream.last_used = self.clock;
        let slot = known.unwrap_or_else(|| lru_slot(&self.rtp_streams, |s| s.last_used));
        self.rtp_streams[slot] = Some(stream);
        Ok(body_len)
    }

    /// Encrypts the RTCP compound packet in `buf[..len]` (all but its first
    /// 8 bytes), appends E||SRTCP index and the tag; returns the SRTCP
    /// length. `buf` needs [`super::SRTP_MAX_OVERHEAD`] spare bytes.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtcp_tag_len();
        let packet = buf.get(..len).ok_or(SrtpError::TooShort(len))?;
        let ssrc = rtcp_ssrc(packet)?;
        let out_len = len + 4 + tag_len;
        if buf.len() < out_len {
            return Err(SrtpError::BufferTooSmall(out_len));
        }
        let index = self.srtcp_index;
        if index & SRTCP_E != 0 {
            return Err(SrtpError::KeyExhausted);
        }
        self.srtcp_index += 1;
        self.rtcp
            .apply_keystream(ssrc, u64::from(index), &mut buf[8..len]);
        buf[len..len + 4].copy_from_slice(&(SRTCP_E | index).to_be_bytes());
        let mut mac = self.rtcp.auth.clone();
        mac.update(&buf[..len + 4]);
        let tag = mac.finalize().into_bytes();
        buf[len + 4..out_len].copy_from_slice(&tag[..tag_len]);
        Ok(out_len)
    }

    /// Authenticates and (if its E flag says so) decrypts the SRTCP packet
    /// `buf` in place; returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtcp_tag_len();
        let len = buf.len();
        let auth_end = len.checked_sub(tag_len).ok_or(SrtpError::TooShort(len))?;
        let body_len = auth_end.checked_sub(4).ok_or(SrtpError::TooShort(len))?;
        let ssrc = rtcp_ssrc(&buf[..body_len])?;
        let word = u32::from_be_bytes([
            buf[body_len],
            buf[body_len + 1],
            buf[body_len + 2],
            buf[body_len + 3],
        ]);
        let index = u64::from(word & !SRTCP_E);
        let known = self
            .rtcp_streams
            .iter()
            .position(|s| s.is_some_and(|s| s.ssrc == ssrc));
        let mut stream = known
            .and_then(|k| self.rtcp_streams[k])
            .unwrap_or(RtcpStream {
                ssrc,
                ..RtcpStream::default()
            });
        if !stream.window.check(index) {
            return Err(SrtpError::Replayed);
        }
        let mut mac = self.rtcp.auth.clone();
        mac.update(&buf[..auth_end]);
        let tag = mac.finalize().into_bytes();
        if !ct_eq(&tag[..tag_len], &buf[auth_end..]) {
            return Err(SrtpError::AuthFailed);
        }
        if word & SRTCP_E != 0 {
            self.rtcp
                .apply_keystream(ssrc, index, &mut buf[8..body_len]);
        }
        self.clock += 1;
        stream.window.accept(index);
        stream.last_used = self.clock;
        let slot = known.unwrap_or_else(|| lru_slot(&self.rtcp_streams, |s| s.last_used));
        self.rtcp_streams[slot] = Some(stream);
        Ok(body_len)
    }

    /// The table slot for a stream we send. A full table forgets its
    /// least recently used stream, but only one whose ROC is still 0:
    /// forgetting a wrapped stream and meeting it again would restart its
    /// ROC and reuse keystream.
    fn sending_slot(&mut self, ssrc: u32) -> Result<usize, SrtpError> {
        self.clock += 1;
        if let Some(k) = self
            .rtp_streams
            .iter()
            .position(|s| s.is_some_and(|s| s.ssrc == ssrc))
        {
            return Ok(k);
        }
        let k = lru_slot(&self.rtp_streams, |s| {
            if s.roc.roc == 0 {
                s.last_used
            } else {
                u64::MAX
            }
        });
        match self.rtp_streams[k] {
            Some(s) if s.roc.roc != 0 => Err(SrtpError::KeyExhausted),
            _ => {
                self.rtp_streams[k] = None;
                Ok(k)
            }
        }
    }
}

/// An empty slot, else the one with the lowest `age`.
fn lru_slot<T: Copy>(slots: &[Option<T>], age: impl Fn(&T) -> u64) -> usize {
    slots
        .iter()
        .position(Option::is_none)
        .or_else(|| {
            slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.as_ref().map_or(0, &age))
                .map(|(k, _)| k)
        })
        .unwrap_or(0)
}

/// HMAC-SHA1 over the authenticated portion and the ROC (§4.2).
fn rtp_tag(keys: &SessionKeys, authenticated: &[u8], index: u64) -> [u8; 20] {
    let mut mac = keys.auth.clone();
    mac.update(authenticated);
    mac.update(&((index >> 16) as u32).to_be_bytes());
    mac.finalize().into_bytes().into()
}

/// Length of the RTP header (fixed part, CSRCs, extension): what SRTP
/// leaves in the clear. Checks only that it fits in `packet`.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    let too_short = SrtpError::TooShort(packet.len());
    let first = *packet.first().ok_or(too_short)?;
    if first >> 6 != 2 {
        return Err(SrtpError::BadVersion);
    }
    let mut len = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let ext = packet.get(len..len + 4).ok_or(too_short)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if len > packet.len() {
        return Err(too_short);
    }
    Ok(len)
}

/// SSRC and sequence number of a packet whose header length was checked.
fn rtp_ssrc_seq(packet: &[u8]) -> (u32, u16) {
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    (ssrc, u16::from_be_bytes([packet[2], packet[3]]))
}

/// The sender SSRC of an RTCP packet (bytes 4–8), after a version check.
fn rtcp_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    let head: &[u8; 8] = packet
        .first_chunk()
        .ok_or(SrtpError::TooShort(packet.len()))?;
    if head[0] >> 6 != 2 {
        return Err(SrtpError::BadVersion);
    }
    Ok(u32::from_be_bytes([head[4], head[5], head[6], head[7]]))
}

/// Compares tags without an early exit, so timing says nothing about
/// how many leading bytes of a forgery were right.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
