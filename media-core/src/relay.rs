//! The per-packet decisions of a two-party bridge, sans-IO: is a datagram
//! one of the leg's negotiated RTP streams, and how does it leave through
//! the other leg.
//!
//! A bridge relays packets as they are (same SSRC, sequence, timestamp,
//! marker and payload). The one edit: the payload type number, when the two
//! sides negotiated different numbers for the same codec or for
//! telephone-event (dynamic payload types are per session).

use crate::rtp::RtpPacket;

/// The payload type numbers a leg negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadTypes {
    pub audio: u8,
    /// RFC 4733 telephone-event, if negotiated.
    pub telephone_event: Option<u8>,
    /// RFC 3389 comfort noise (CN), if negotiated.
    pub comfort_noise: Option<u8>,
}

/// Which negotiated stream a packet belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    Audio,
    TelephoneEvent,
    ComfortNoise,
}

impl PayloadTypes {
    /// Parses `datagram`; `None` if it is not RTP or carries a payload type
    /// this leg did not negotiate.
    pub fn classify<'a>(&self, datagram: &'a [u8]) -> Option<(RtpPacket<'a>, PacketKind)> {
        let packet = RtpPacket::parse(datagram).ok()?;
        if packet.payload_type == self.audio {
            Some((packet, PacketKind::Audio))
        } else if self.telephone_event == Some(packet.payload_type) {
            Some((packet, PacketKind::TelephoneEvent))
        } else if self.comfort_noise == Some(packet.payload_type) {
            Some((packet, PacketKind::ComfortNoise))
        } else {
            None
        }
    }

    /// Makes a packet classified as `kind` by the other leg fit to send
    /// from this one: sets this leg's number for `kind` (keeping the marker
    /// bit). False if this leg did not negotiate `kind` (the packet must not
    /// be sent) or the datagram is shorter than an RTP header.
    pub fn retarget(&self, datagram: &mut [u8], kind: PacketKind) -> bool {
        let pt = match kind {
            PacketKind::Audio => self.audio,
            PacketKind::TelephoneEvent => match self.telephone_event {
                Some(pt) => pt,
                None => return false,
            },
            PacketKind::ComfortNoise => match self.comfort_noise {
                Some(pt) => pt,
                None => return false,
            },
        };
        if datagram.len() < crate::rtp::RTP_HEADER_LEN || pt > 0x7f {
            return false;
        }
        if let Some(b) = datagram.get_mut(1) {
            if *b & 0x7f != pt {
                *b = (*b & 0x80) | pt;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpWriter;

    fn packet(pt: u8, marker: bool) -> Vec<u8> {
        let mut w = RtpWriter::with_initial(pt, 160, 9, 1, 0);
        if !marker {
            w.skip();
            let mut scratch = [0u8; 64];
            w.write(&[0; 4], &mut scratch).unwrap();
        }
        let mut out = [0u8; 64];
        let n = w.write(&[1, 2, 3, 4], &mut out).unwrap();
        out[..n].to_vec()
    }

    #[test]
    fn classifies_by_negotiated_payload_types() {
        let pts = PayloadTypes {
            audio: 0,
            telephone_event: Some(101),
            comfort_noise: Some(13),
        };
        assert_eq!(
            pts.classify(&packet(0, true)).map(|p| p.1),
            Some(PacketKind::Audio)
        );
        assert_eq!(
            pts.classify(&packet(101, false)).map(|p| p.1),
            Some(PacketKind::TelephoneEvent)
        );
        assert!(pts.classify(&packet(8, false)).is_none());
        assert_eq!(
            pts.classify(&packet(13, false)).map(|p| p.1),
            Some(PacketKind::ComfortNoise)
        );
        assert!(pts.classify(b"\x00 not rtp at all").is_none());
        let no_events = PayloadTypes {
            audio: 0,
            telephone_event: None,
            comfort_noise: None,
        };
        assert!(no_events.classify(&packet(101, false)).is_none());
    }

    #[test]
    fn retarget_changes_only_the_payload_type() {
        let other = PayloadTypes {
            audio: 0,
            telephone_event: Some(96),
            comfort_noise: None,
        };
        let original = packet(101, true);
        let mut p = original.clone();
        assert!(other.retarget(&mut p, PacketKind::TelephoneEvent));
        assert_eq!(p[1], 0x80 | 96);
        assert_eq!((&p[..1], &p[2..]), (&original[..1], &original[2..]));
        let mut same = packet(0, false);
        let copy = same.clone();
        assert!(other.retarget(&mut same, PacketKind::Audio));
        assert_eq!(same, copy);
        let none = PayloadTypes {
            audio: 0,
            telephone_event: None,
            comfort_noise: None,
        };
        assert!(!none.retarget(&mut p, PacketKind::TelephoneEvent));
        assert!(
            !none.retarget(&mut p, PacketKind::ComfortNoise),
            "no CN on this side"
        );
        assert!(!other.retarget(&mut [0x80, 0], PacketKind::Audio));
    }
}
