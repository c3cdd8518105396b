//! RTP packets (RFC 3550 section 5.1): a zero-copy parser and a writer.
//!
//! Parsing never trusts a length field: every field (CSRC list, header
//! extension, padding) is checked against the bytes actually received and a
//! typed error says which one lied. The writer builds into a caller buffer so
//! the send path does not allocate.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Length of the fixed RTP header (no CSRCs, no extension).
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// The datagram ends before a field the header says is present.
    #[error("packet too short: {len} bytes, header needs {needed}")]
    TooShort { len: usize, needed: usize },
    /// Only version 2 exists; anything else is STUN, DTLS, or garbage.
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    /// The padding count is zero or longer than the bytes after the header.
    #[error("padding count {padding} invalid with {available} bytes after the header")]
    BadPadding { padding: u8, available: usize },
    /// Payload types are 7 bits.
    #[error("payload type {0} does not fit in 7 bits")]
    BadPayloadType(u8),
    /// The output buffer cannot hold header plus payload.
    #[error("output buffer of {len} bytes too small, need {needed}")]
    BufferTooSmall { len: usize, needed: usize },
}

/// A parsed RTP packet borrowing its payload from the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload_type: u8,
    pub marker: bool,
    /// The media payload: after CSRCs and extension, before padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses and bounds-checks one datagram.
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        let too_short = |needed: usize| RtpError::TooShort {
            len: buf.len(),
            needed,
        };
        let fixed: &[u8; RTP_HEADER_LEN] =
            buf.first_chunk().ok_or_else(|| too_short(RTP_HEADER_LEN))?;
        let version = fixed[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = fixed[0] & 0x20 != 0;
        let has_extension = fixed[0] & 0x10 != 0;
        let csrc_count = (fixed[0] & 0x0f) as usize;
        let marker = fixed[1] & 0x80 != 0;
        let payload_type = fixed[1] & 0x7f;
        let seq = u16::from_be_bytes([fixed[2], fixed[3]]);
        let timestamp = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let ssrc = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);

        let mut offset = RTP_HEADER_LEN + 4 * csrc_count;
        if has_extension {
            // Extension header: 16-bit profile, 16-bit length in 32-bit words.
            let ext = buf
                .get(offset..offset + 4)
                .ok_or_else(|| too_short(offset + 4))?;
            let words = u16::from_be_bytes([ext[2], ext[3]]) as usize;
            offset += 4 + 4 * words;
        }
        let mut end = buf.len();
        if offset > end {
            return Err(too_short(offset));
        }
        if has_padding {
            let available = end - offset;
            let padding = buf.last().copied().unwrap_or(0);
            if padding == 0 || padding as usize > available {
                return Err(RtpError::BadPadding { padding, available });
            }
            end -= padding as usize;
        }
        let payload = buf.get(offset..end).ok_or_else(|| too_short(offset))?;
        Ok(RtpPacket {
            seq,
            timestamp,
            ssrc,
            payload_type,
            marker,
            payload,
        })
    }
}

/// The header fields we put on packets we send (no CSRCs, no extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpHeader {
    /// Writes header and payload into `out`; returns the packet length.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        if self.payload_type > 0x7f {
            return Err(RtpError::BadPayloadType(self.payload_type));
        }
        let needed = RTP_HEADER_LEN + payload.len();
        let len = out.len();
        let dst = out
            .get_mut(..needed)
            .ok_or(RtpError::BufferTooSmall { len, needed })?;
        let (head, body) = dst.split_at_mut(RTP_HEADER_LEN);
        head[0] = 0x80; // V=2, no padding, no extension, no CSRC
        head[1] = (u8::from(self.marker) << 7) | self.payload_type;
        head[2..4].copy_from_slice(&self.seq.to_be_bytes());
        head[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        head[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        body.copy_from_slice(payload);
        Ok(needed)
    }
}

/// The sending side of one RTP stream: owns SSRC, sequence and timestamp so
/// callers only hand it payloads.
#[derive(Clone, Debug)]
pub struct RtpWriter {
    next: RtpHeader,
    timestamp_step: u32,
}

impl RtpWriter {
    /// A stream with a random SSRC, sequence number and timestamp
    /// (RFC 3550 5.1 asks for random initial values to defeat plaintext
    /// attacks and to tell restarted streams apart).
    pub fn new(payload_type: u8, timestamp_step: u32) -> RtpWriter {
        let r = random_u64();
        RtpWriter::with_initial(payload_type, timestamp_step, r as u32, (r >> 32) as u16, {
            random_u64() as u32
        })
    }

    /// A stream with fixed initial values, for tests and reproducible output.
    pub fn with_initial(
        payload_type: u8,
        timestamp_step: u32,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
    ) -> RtpWriter {
        RtpWriter {
            next: RtpHeader {
                payload_type,
                // The first packet of a talkspurt carries the marker (RFC 3551 4.1).
                marker: true,
                seq,
                timestamp,
                ssrc,
            },
            timestamp_step,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.next.ssrc
    }

    /// The header the next [`RtpWriter::write`] will use.
    pub fn next_header(&self) -> RtpHeader {
        self.next
    }

    /// Builds the next packet into `out` and advances seq and timestamp.
    pub fn write(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        let len = self.next.write(payload, out)?;
        self.next.marker = false;
        self.next.seq = self.next.seq.wrapping_add(1);
        self.next.timestamp = self.next.timestamp.wrapping_add(self.timestamp_step);
        Ok(len)
    }

    /// Builds a packet of another payload (an RFC 4733 event) on this
    /// stream: our SSRC and the next sequence number, but the caller's
    /// payload type, marker and timestamp; media time does not advance
    /// (call [`RtpWriter::skip`] per packet interval for that).
    pub fn write_other(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let header = RtpHeader {
            payload_type,
            marker,
            timestamp,
            ..self.next
        };
        let len = header.write(payload, out)?;
        self.next.seq = self.next.seq.wrapping_add(1);
        Ok(len)
    }

    /// Marks the next packet as the first of a talkspurt (RFC 3551 4.1), e.g.
    /// when the stream resumes after another source was relayed in its place.
    pub fn start_talkspurt(&mut self) {
        self.next.marker = true;
    }

    /// Lets one packet's worth of media time pass without sending (nobody to
    /// send to yet): the timestamp advances, the sequence does not, so the
    /// receiver sees a silence gap rather than loss.
    pub fn skip(&mut self) {
        self.next.timestamp = self.next.timestamp.wrapping_add(self.timestamp_step);
    }
}

/// A non-cryptographic random number from the std hasher's per-process
/// random keys, a counter and the clock: enough for SSRCs and initial
/// sequence numbers without pulling an RNG crate into the media path.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(b0: u8, b1: u8) -> Vec<u8> {
        vec![b0, b1, 0x12, 0x34, 0, 0, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef]
    }

    #[test]
    fn parses_minimal_packet() {
        let mut p = header(0x80, 0x80);
        p.extend_from_slice(&[1, 2, 3]);
        let pkt = RtpPacket::parse(&p).unwrap();
        assert_eq!(pkt.seq, 0x1234);
        assert_eq!(pkt.timestamp, 256);
        assert_eq!(pkt.ssrc, 0xdead_beef);
        assert_eq!(pkt.payload_type, 0);
        assert!(pkt.marker);
        assert_eq!(pkt.payload, &[1, 2, 3]);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        // 2 CSRCs, extension of 1 word, 2 bytes padding.
        let mut p = header(0x80 | 0x20 | 0x10 | 2, 8);
        p.extend_from_slice(&[0; 8]); // CSRCs
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension
        p.extend_from_slice(&[7, 7, 7]); // payload
        p.extend_from_slice(&[0, 2]); // padding, count 2
        let pkt = RtpPacket::parse(&p).unwrap();
        assert_eq!(pkt.payload_type, 8);
        assert!(!pkt.marker);
        assert_eq!(pkt.payload, &[7, 7, 7]);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            RtpPacket::parse(&[0x80; 5]),
            Err(RtpError::TooShort { len: 5, needed: 12 })
        );
        assert_eq!(
            RtpPacket::parse(&header(0x40, 0)),
            Err(RtpError::BadVersion(1))
        );
        // CSRC count says 15 but no CSRCs follow.
        assert!(matches!(
            RtpPacket::parse(&header(0x8f, 0)),
            Err(RtpError::TooShort { needed: 72, .. })
        ));
        // Extension header missing, then extension length beyond the end.
        assert!(RtpPacket::parse(&header(0x90, 0)).is_err());
        let mut p = header(0x90, 0);
        p.extend_from_slice(&[0, 0, 0xff, 0xff]);
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::TooShort { .. })
        ));
        // Padding count zero, and larger than what follows the header.
        let mut p = header(0xa0, 0);
        p.push(0);
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::BadPadding { padding: 0, .. })
        ));
        let mut p = header(0xa0, 0);
        p.extend_from_slice(&[1, 9]);
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::BadPadding { padding: 9, .. })
        ));
        // Padding but nothing after the header at all.
        assert!(RtpPacket::parse(&header(0xa0, 0)).is_err());
    }

    #[test]
    fn writer_round_trips_and_advances() {
        let mut w = RtpWriter::with_initial(0, 160, 42, 65_535, u32::MAX - 10);
        let mut buf = [0u8; 200];
        let n = w.write(&[5; 160], &mut buf).unwrap();
        assert_eq!(n, 172);
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert!(p.marker);
        assert_eq!((p.seq, p.timestamp, p.ssrc), (65_535, u32::MAX - 10, 42));
        let n = w.write(&[6; 160], &mut buf).unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert!(!p.marker);
        assert_eq!((p.seq, p.timestamp), (0, 149));
        assert_eq!(p.payload, &[6; 160][..]);
    }

    #[test]
    fn writer_rejects_small_buffer_and_bad_pt() {
        let mut w = RtpWriter::new(0, 160);
        assert_eq!(
            w.write(&[0; 10], &mut [0u8; 15]),
            Err(RtpError::BufferTooSmall {
                len: 15,
                needed: 22
            })
        );
        let h = RtpHeader {
            payload_type: 200,
            marker: false,
            seq: 0,
            timestamp: 0,
            ssrc: 0,
        };
        assert_eq!(
            h.write(&[], &mut [0u8; 12]),
            Err(RtpError::BadPayloadType(200))
        );
        assert_ne!(RtpWriter::new(0, 160).ssrc(), RtpWriter::new(0, 160).ssrc());
    }
}
