//! RTCP packets (RFC 3550 section 6.4–6.6): a zero-copy parser for
//! compound packets and builders for SR, RR, SDES (CNAME) and BYE.
//!
//! As for RTP, no length field is trusted: every packet's length, report
//! count, SDES chunk and BYE reason is checked against the bytes that
//! arrived before anything is handed out, and the iterators over report
//! blocks, SDES chunks and BYE sources only walk what was checked. Builders
//! write into a caller buffer, so the send path does not allocate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Packet types (RFC 3550 section 12.1).
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;

/// SDES item type of the canonical name.
pub const SDES_CNAME: u8 = 1;

/// Report blocks (and BYE sources, SDES chunks) one packet can count: the
/// 5-bit RC field.
pub const MAX_COUNT: usize = 31;

/// Length of the common header: V, P, RC, PT, length.
pub const HEADER_LEN: usize = 4;
/// Length of one report block.
pub const REPORT_BLOCK_LEN: usize = 24;
/// Length of an SR's sender info.
const SENDER_INFO_LEN: usize = 20;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Why bytes are not a usable RTCP packet, or a packet could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// The buffer ends before a field the header says is present.
    #[error("RTCP packet too short: {len} bytes, need {needed}")]
    TooShort { len: usize, needed: usize },
    #[error("unsupported RTCP version {0}")]
    BadVersion(u8),
    /// The padding count is zero or covers more than the packet's body.
    #[error("RTCP padding count {padding} invalid in a packet of {len} bytes")]
    BadPadding { padding: u8, len: usize },
    /// The report count needs more bytes than the packet has.
    #[error("{count} report blocks do not fit in a packet of {len} bytes")]
    BadReportCount { count: u8, len: usize },
    /// An SDES chunk or item runs past the end of its packet.
    #[error("SDES chunk at byte {offset} runs past the packet")]
    BadSdes { offset: usize },
    /// BYE sources or reason run past the end of the packet.
    #[error("BYE of {count} sources does not fit in a packet of {len} bytes")]
    BadBye { count: u8, len: usize },
    /// RFC 3550 A.2: a compound packet starts with an SR or RR.
    #[error("compound RTCP packet starts with type {0}, not SR or RR")]
    NotReportFirst(u8),
    /// The output buffer cannot hold the packet.
    #[error("output buffer of {len} bytes too small, need {needed}")]
    BufferTooSmall { len: usize, needed: usize },
    /// More blocks or sources than RC can count, or a CNAME over 255 bytes.
    #[error("{0} items exceed what one RTCP packet can carry")]
    TooMany(usize),
}

/// A 64-bit NTP timestamp: seconds since 1900 in the high 32 bits, the
/// fraction in the low 32 (RFC 3550 section 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The wallclock `t` as NTP time (times before 1970 map to 1970).
    pub fn from_system_time(t: SystemTime) -> NtpTime {
        let since_unix = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        NtpTime(NTP_UNIX_OFFSET << 32) + since_unix
    }

    /// The middle 32 bits, as carried in LSR (16.16 seconds).
    pub fn middle32(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// Wraps like the NTP era does.
impl std::ops::Add<Duration> for NtpTime {
    type Output = NtpTime;
    fn add(self, d: Duration) -> NtpTime {
        let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
        NtpTime(self.0.wrapping_add(d.as_secs() << 32).wrapping_add(frac))
    }
}

/// A 16.16 fixed-point count of seconds (LSR, DLSR, RTT) as a duration.
pub fn duration_from_short(units: u32) -> Duration {
    Duration::from_nanos((units as u64 * 1_000_000_000) >> 16)
}

/// A duration as 16.16 fixed-point seconds, saturating at about 18 hours.
pub fn duration_to_short(d: Duration) -> u32 {
    let units = (d.as_nanos() << 16) / 1_000_000_000;
    units.min(u32::MAX as u128) as u32
}

/// One reception report block (RFC 3550 section 6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Lost fraction since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// 24-bit signed: duplicates can make it negative.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | seq).
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR from `ssrc`, or 0.
    pub lsr: u32,
    /// Delay since that SR arrived, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> Option<ReportBlock> {
        let b: &[u8; REPORT_BLOCK_LEN] = b.first_chunk()?;
        Some(ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            // Sign-extend the 24-bit field.
            cumulative_lost: i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8,
            highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            lsr: be32(b, 16),
            dlsr: be32(b, 20),
        })
    }

    fn write(&self, out: &mut [u8]) {
        let lost = self
            .cumulative_lost
            .clamp(-0x80_0000, 0x7f_ffff)
            .to_be_bytes();
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        out[4] = self.fraction_lost;
        out[5..8].copy_from_slice(&lost[1..4]);
        out[8..12].copy_from_slice(&self.highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.lsr.to_be_bytes());
        out[20..24].copy_from_slice(&self.dlsr.to_be_bytes());
    }
}

/// The report blocks of an SR or RR, as checked by the parser.
#[derive(Clone, Debug)]
pub struct ReportBlocks<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        self.0.next().and_then(ReportBlock::parse)
    }
}

/// An SR's sender info: the wallclock–media-time pair and send counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp: NtpTime,
    /// The RTP timestamp of the same instant as `ntp`.
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    /// Payload octets (headers and padding not counted).
    pub octet_count: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderReport<'a> {
    pub ssrc: u32,
    pub info: SenderInfo,
    blocks: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks(self.blocks.chunks_exact(REPORT_BLOCK_LEN))
    }
}

impl<'a> ReceiverReport<'a> {
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks(self.blocks.chunks_exact(REPORT_BLOCK_LEN))
    }
}

/// A source description packet; its chunks were checked when parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

/// One SDES chunk: a source and its items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    pub ssrc: u32,
    /// The items, without the terminating null octets.
    items: &'a [u8],
}

/// One SDES item: its type (1 = CNAME) and its UTF-8 text, unchecked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesItem<'a> {
    pub kind: u8,
    pub value: &'a [u8],
}

impl<'a> Sdes<'a> {
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks {
            body: self.body,
            offset: 0,
            left: self.count,
        }
    }
}

impl<'a> SdesChunk<'a> {
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems(self.items)
    }

    /// The CNAME item's value, if the chunk has one.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|i| i.kind == SDES_CNAME).map(|i| i.value)
    }
}

#[derive(Clone, Debug)]
pub struct SdesChunks<'a> {
    body: &'a [u8],
    offset: usize,
    left: u8,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;
    fn next(&mut self) -> Option<SdesChunk<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (chunk, next) = sdes_chunk(self.body, self.offset).ok()?;
        self.offset = next;
        Some(chunk)
    }
}

#[derive(Clone, Debug)]
pub struct SdesItems<'a>(&'a [u8]);

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;
    fn next(&mut self) -> Option<SdesItem<'a>> {
        let [kind, len, rest @ ..] = self.0 else {
            return None;
        };
        let value = rest.get(..*len as usize)?;
        self.0 = &rest[value.len()..];
        Some(SdesItem { kind: *kind, value })
    }
}

/// The chunk starting at `offset` of an SDES body, and where the next one
/// starts (chunks are 32-bit aligned).
fn sdes_chunk(body: &[u8], offset: usize) -> Result<(SdesChunk<'_>, usize), RtcpError> {
    let bad = RtcpError::BadSdes {
        offset: HEADER_LEN + offset,
    };
    let ssrc_bytes = body.get(offset..offset + 4).ok_or(bad)?;
    let start = offset + 4;
    let mut at = start;
    loop {
        match body.get(at) {
            None => return Err(bad),
            Some(0) => break,
            Some(_) => {
                let len = *body.get(at + 1).ok_or(bad)? as usize;
                at += 2 + len;
            }
        }
    }
    let items = body.get(start..at).ok_or(bad)?;
    // The null terminator, then nulls up to the next 32-bit boundary.
    let next = (at + 1).next_multiple_of(4);
    if next > body.len() {
        return Err(bad);
    }
    Ok((
        SdesChunk {
            ssrc: be32(ssrc_bytes, 0),
            items,
        },
        next,
    ))
}

/// A BYE: the sources leaving and an optional reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bye<'a> {
    sources: &'a [u8],
    /// The reason text (UTF-8, unchecked), if given.
    pub reason: Option<&'a [u8]>,
}

impl Bye<'_> {
    pub fn sources(&self) -> impl Iterator<Item = u32> + '_ {
        self.sources.chunks_exact(4).map(|c| be32(c, 0))
    }
}

/// One packet of a compound RTCP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    SourceDescription(Sdes<'a>),
    Bye(Bye<'a>),
    /// APP, XR, feedback and anything newer: length-checked, not decoded.
    Other {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

impl<'a> RtcpPacket<'a> {
    /// Parses the first packet of `buf`; returns it and its length (the
    /// next packet of a compound starts there).
    pub fn parse(buf: &'a [u8]) -> Result<(RtcpPacket<'a>, usize), RtcpError> {
        let head: &[u8; HEADER_LEN] = buf.first_chunk().ok_or(RtcpError::TooShort {
            len: buf.len(),
            needed: HEADER_LEN,
        })?;
        let version = head[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let padded = head[0] & 0x20 != 0;
        let count = head[0] & 0x1f;
        let packet_type = head[1];
        let len = (u16::from_be_bytes([head[2], head[3]]) as usize + 1) * 4;
        let packet = buf.get(..len).ok_or(RtcpError::TooShort {
            len: buf.len(),
            needed: len,
        })?;
        let mut body = &packet[HEADER_LEN..];
        if padded {
            let padding = packet[len - 1];
            if padding == 0 || padding as usize > body.len() {
                return Err(RtcpError::BadPadding { padding, len });
            }
            body = &body[..body.len() - padding as usize];
        }
        let parsed = match packet_type {
            PT_SR => {
                let blocks = report_blocks(body, SENDER_INFO_LEN + 4, count, len)?;
                RtcpPacket::SenderReport(SenderReport {
                    ssrc: be32(body, 0),
                    info: SenderInfo {
                        ntp: NtpTime(((be32(body, 4) as u64) << 32) | be32(body, 8) as u64),
                        rtp_timestamp: be32(body, 12),
                        packet_count: be32(body, 16),
                        octet_count: be32(body, 20),
                    },
                    blocks,
                })
            }
            PT_RR => RtcpPacket::ReceiverReport(ReceiverReport {
                blocks: report_blocks(body, 4, count, len)?,
                ssrc: be32(body, 0),
            }),
            PT_SDES => {
                let mut offset = 0;
                for _ in 0..count {
                    offset = sdes_chunk(body, offset)?.1;
                }
                RtcpPacket::SourceDescription(Sdes { count, body })
            }
            PT_BYE => RtcpPacket::Bye(bye(body, count, len)?),
            _ => RtcpPacket::Other {
                packet_type,
                count,
                body,
            },
        };
        Ok((parsed, len))
    }
}

/// The `count` report blocks after `fixed` bytes of an SR/RR body (whose
/// fixed part must be there too). Bytes after the blocks are profile
/// extensions and ignored.
fn report_blocks(body: &[u8], fixed: usize, count: u8, len: usize) -> Result<&[u8], RtcpError> {
    let end = fixed + count as usize * REPORT_BLOCK_LEN;
    if body.len() < fixed {
        return Err(RtcpError::TooShort {
            len,
            needed: HEADER_LEN + fixed,
        });
    }
    body.get(fixed..end)
        .ok_or(RtcpError::BadReportCount { count, len })
}

fn bye(body: &[u8], count: u8, len: usize) -> Result<Bye<'_>, RtcpError> {
    let bad = RtcpError::BadBye { count, len };
    let end = count as usize * 4;
    let sources = body.get(..end).ok_or(bad)?;
    let reason = match body.get(end) {
        None => None,
        Some(&n) => Some(body.get(end + 1..end + 1 + n as usize).ok_or(bad)?),
    };
    Ok(Bye { sources, reason })
}

/// The packets of a compound RTCP datagram, in order. After an error it
/// yields nothing more (lengths after a bad packet cannot be trusted).
#[derive(Clone, Debug)]
pub struct Compound<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match RtcpPacket::parse(self.rest) {
            Ok((packet, len)) => {
                self.rest = self.rest.get(len..).unwrap_or_default();
                Some(Ok(packet))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Iterates over the packets of a compound datagram without checking it
/// as a whole; see [`validate_compound`] for that.
pub fn compound(buf: &[u8]) -> Compound<'_> {
    Compound { rest: buf }
}

/// RFC 3550 A.2's checks of a received compound packet: it starts with an
/// SR or RR, and every packet in it parses, lengths adding up exactly.
pub fn validate_compound(buf: &[u8]) -> Result<(), RtcpError> {
    let mut first = true;
    for packet in compound(buf) {
        let packet = packet?;
        if first {
            if let RtcpPacket::SourceDescription(_) | RtcpPacket::Bye(_) = packet {
                return Err(RtcpError::NotReportFirst(buf.get(1).copied().unwrap_or(0)));
            }
            if let RtcpPacket::Other { packet_type, .. } = packet {
                return Err(RtcpError::NotReportFirst(packet_type));
            }
            first = false;
        }
    }
    if first {
        return Err(RtcpError::TooShort {
            len: buf.len(),
            needed: HEADER_LEN,
        });
    }
    Ok(())
}

/// RFC 5761 section 4: on a port shared with RTP, a datagram whose second
/// byte is 192–223 (RTP payload types 64–95 with the marker bit) is RTCP.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram, [b0, 192..=223, ..] if b0 >> 6 == 2)
}

/// Writes the common header for a packet of `len` bytes (a multiple of 4).
fn header(out: &mut [u8], count: usize, packet_type: u8, len: usize) {
    out[0] = 0x80 | count as u8;
    out[1] = packet_type;
    out[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
}

/// `out[..needed]`, or the error saying why not.
fn space(out: &mut [u8], needed: usize) -> Result<&mut [u8], RtcpError> {
    let len = out.len();
    out.get_mut(..needed)
        .ok_or(RtcpError::BufferTooSmall { len, needed })
}

/// Builds an SR into `out`; returns its length.
pub fn write_sender_report(
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
    out: &mut [u8],
) -> Result<usize, RtcpError> {
    if blocks.len() > MAX_COUNT {
        return Err(RtcpError::TooMany(blocks.len()));
    }
    let fixed = HEADER_LEN + 4 + SENDER_INFO_LEN;
    let len = fixed + blocks.len() * REPORT_BLOCK_LEN;
    let dst = space(out, len)?;
    header(dst, blocks.len(), PT_SR, len);
    dst[4..8].copy_from_slice(&ssrc.to_be_bytes());
    dst[8..16].copy_from_slice(&info.ntp.0.to_be_bytes());
    dst[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
    dst[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
    dst[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
    for (b, chunk) in blocks
        .iter()
        .zip(dst[fixed..].chunks_exact_mut(REPORT_BLOCK_LEN))
    {
        b.write(chunk);
    }
    Ok(len)
}

/// Builds an RR into `out`; returns its length.
pub fn write_receiver_report(
    ssrc: u32,
    blocks: &[ReportBlock],
    out: &mut [u8],
) -> Result<usize, RtcpError> {
    if blocks.len() > MAX_COUNT {
        return Err(RtcpError::TooMany(blocks.len()));
    }
    let fixed = HEADER_LEN + 4;
    let len = fixed + blocks.len() * REPORT_BLOCK_LEN;
    let dst = space(out, len)?;
    header(dst, blocks.len(), PT_RR, len);
    dst[4..8].copy_from_slice(&ssrc.to_be_bytes());
    for (b, chunk) in blocks
        .iter()
        .zip(dst[fixed..].chunks_exact_mut(REPORT_BLOCK_LEN))
    {
        b.write(chunk);
    }
    Ok(len)
}

/// Builds an SDES packet of one chunk with one CNAME item; returns its
/// length.
pub fn write_sdes_cname(ssrc: u32, cname: &[u8], out: &mut [u8]) -> Result<usize, RtcpError> {
    if cname.len() > u8::MAX as usize {
        return Err(RtcpError::TooMany(cname.len()));
    }
    // SSRC, type, length, text, then at least one null up to a word boundary.
    let len = HEADER_LEN + (4 + 2 + cname.len() + 1).next_multiple_of(4);
    let dst = space(out, len)?;
    header(dst, 1, PT_SDES, len);
    dst[4..8].copy_from_slice(&ssrc.to_be_bytes());
    dst[8] = SDES_CNAME;
    dst[9] = cname.len() as u8;
    dst[10..10 + cname.len()].copy_from_slice(cname);
    dst[10 + cname.len()..].fill(0);
    Ok(len)
}

/// Builds a BYE for `sources`, with an optional reason (at most 255
/// bytes); returns its length.
pub fn write_bye(
    sources: &[u32],
    reason: Option<&[u8]>,
    out: &mut [u8],
) -> Result<usize, RtcpError> {
    if sources.len() > MAX_COUNT {
        return Err(RtcpError::TooMany(sources.len()));
    }
    if let Some(r) = reason.filter(|r| r.len() > u8::MAX as usize) {
        return Err(RtcpError::TooMany(r.len()));
    }
    let fixed = HEADER_LEN + 4 * sources.len();
    let len = fixed + reason.map_or(0, |r| (1 + r.len()).next_multiple_of(4));
    let dst = space(out, len)?;
    header(dst, sources.len(), PT_BYE, len);
    for (s, chunk) in sources.iter().zip(dst[HEADER_LEN..].chunks_exact_mut(4)) {
        chunk.copy_from_slice(&s.to_be_bytes());
    }
    if let Some(r) = reason {
        let tail = &mut dst[fixed..];
        tail.fill(0);
        tail[0] = r.len() as u8;
        tail[1..1 + r.len()].copy_from_slice(r);
    }
    Ok(len)
}

/// Big-endian u32 at `at`; callers have checked the length (0 if not).
fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.first_chunk::<4>())
        .map_or(0, |s| u32::from_be_bytes(*s))
}
