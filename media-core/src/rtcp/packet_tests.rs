//! Round trips through the builders and parser, and hostile input.

use std::time::{Duration, UNIX_EPOCH};

use super::packet::*;

fn block(ssrc: u32) -> ReportBlock {
    ReportBlock {
        ssrc,
        fraction_lost: 64,
        cumulative_lost: -3,
        highest_seq: 0x0001_0005,
        jitter: 77,
        lsr: 0xdead_beef,
        dlsr: 0x0001_8000,
    }
}

fn info() -> SenderInfo {
    SenderInfo {
        ntp: NtpTime(0x1122_3344_5566_7788),
        rtp_timestamp: 160_000,
        packet_count: 50,
        octet_count: 8_000,
    }
}

fn only(buf: &[u8]) -> RtcpPacket<'_> {
    let (p, len) = RtcpPacket::parse(buf).unwrap();
    assert_eq!(len, buf.len());
    p
}

#[test]
fn sender_report_round_trip() {
    let mut out = [0u8; 200];
    let blocks = [block(1), block(2)];
    let n = write_sender_report(0xabcd, &info(), &blocks, &mut out).unwrap();
    assert_eq!(n, 28 + 48);
    assert_eq!(&out[..4], &[0x82, 200, 0, 18]);
    let RtcpPacket::SenderReport(sr) = only(&out[..n]) else {
        panic!("not an SR");
    };
    assert_eq!((sr.ssrc, sr.info), (0xabcd, info()));
    assert_eq!(sr.report_blocks().collect::<Vec<_>>(), blocks);
    validate_compound(&out[..n]).unwrap();
}

#[test]
fn receiver_report_round_trip_and_lost_field_limits() {
    let mut out = [0u8; 100];
    let mut b = block(9);
    b.cumulative_lost = 0x7f_ffff;
    let n = write_receiver_report(5, &[b], &mut out).unwrap();
    assert_eq!(n, 32);
    let RtcpPacket::ReceiverReport(rr) = only(&out[..n]) else {
        panic!("not an RR");
    };
    assert_eq!(rr.ssrc, 5);
    assert_eq!(rr.report_blocks().next(), Some(b));
    // Beyond 24 bits it saturates, both ways.
    for (value, want) in [(i32::MAX, 0x7f_ffff), (i32::MIN, -0x80_0000), (-1, -1)] {
        b.cumulative_lost = value;
        write_receiver_report(5, &[b], &mut out).unwrap();
        let RtcpPacket::ReceiverReport(rr) = only(&out[..n]) else {
            panic!()
        };
        assert_eq!(rr.report_blocks().next().unwrap().cumulative_lost, want);
    }
    // An empty RR is the minimal compound packet.
    let n = write_receiver_report(5, &[], &mut out).unwrap();
    assert_eq!(n, 8);
    validate_compound(&out[..n]).unwrap();
}

#[test]
fn compound_sr_sdes_bye() {
    let mut out = [0u8; 300];
    let mut n = write_sender_report(7, &info(), &[block(3)], &mut out).unwrap();
    n += write_sdes_cname(7, b"sb-0123456789abcdef", &mut out[n..]).unwrap();
    n += write_bye(&[7, 8], Some(b"hangup"), &mut out[n..]).unwrap();
    assert_eq!(n % 4, 0);
    validate_compound(&out[..n]).unwrap();
    let packets: Vec<_> = compound(&out[..n]).collect::<Result<_, _>>().unwrap();
    assert_eq!(packets.len(), 3);
    let RtcpPacket::SourceDescription(sdes) = packets[1] else {
        panic!("not SDES");
    };
    let chunks: Vec<_> = sdes.chunks().collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].ssrc, 7);
    assert_eq!(chunks[0].cname(), Some(&b"sb-0123456789abcdef"[..]));
    let RtcpPacket::Bye(bye) = packets[2] else {
        panic!("not BYE");
    };
    assert_eq!(bye.sources().collect::<Vec<_>>(), [7, 8]);
    assert_eq!(bye.reason, Some(&b"hangup"[..]));
}

#[test]
fn sdes_cname_lengths_pad_to_words() {
    let mut out = [0u8; 300];
    for len in 0..=255usize {
        let cname = vec![b'x'; len];
        let n = write_sdes_cname(1, &cname, &mut out).unwrap();
        assert_eq!(n % 4, 0);
        let RtcpPacket::SourceDescription(s) = only(&out[..n]) else {
            panic!()
        };
        assert_eq!(s.chunks().next().unwrap().cname(), Some(&cname[..]));
    }
    assert_eq!(
        write_sdes_cname(1, &[b'x'; 256], &mut out),
        Err(RtcpError::TooMany(256))
    );
}

#[test]
fn sdes_with_several_chunks_and_items() {
    // Two chunks: (ssrc 1: CNAME "ab", NAME "c") and (ssrc 2: no items).
    let body = [
        0, 0, 0, 1, 1, 2, b'a', b'b', 2, 1, b'c', 0, // chunk 1 (12 bytes)
        0, 0, 0, 2, 0, 0, 0, 0, // chunk 2 (8 bytes)
    ];
    let mut p = vec![0x82, 202, 0, 5];
    p.extend_from_slice(&body);
    let RtcpPacket::SourceDescription(s) = only(&p) else {
        panic!()
    };
    let chunks: Vec<_> = s.chunks().collect();
    assert_eq!(chunks.len(), 2);
    let items: Vec<_> = chunks[0].items().collect();
    assert_eq!(
        items,
        [
            SdesItem {
                kind: 1,
                value: b"ab"
            },
            SdesItem {
                kind: 2,
                value: b"c"
            }
        ]
    );
    assert_eq!(chunks[1].ssrc, 2);
    assert_eq!(chunks[1].cname(), None);
}

#[test]
fn other_packet_types_are_skipped_not_rejected() {
    let mut out = [0u8; 100];
    let mut n = write_receiver_report(1, &[], &mut out).unwrap();
    // An APP packet: name "TEST", 4 bytes of data.
    out[n..n + 12].copy_from_slice(&[0x80, 204, 0, 2, 0, 0, 0, 1, b'T', b'E', b'S', b'T']);
    n += 12;
    validate_compound(&out[..n]).unwrap();
    let kinds: Vec<_> = compound(&out[..n]).map(|p| p.unwrap()).collect();
    assert!(matches!(
        kinds[1],
        RtcpPacket::Other {
            packet_type: 204,
            ..
        }
    ));
}

#[test]
fn rejects_malformed() {
    use RtcpError::*;
    let parse = |b: &[u8]| RtcpPacket::parse(b).map(|(_, n)| n);
    assert_eq!(parse(&[0x80, 201]), Err(TooShort { len: 2, needed: 4 }));
    assert_eq!(parse(&[0x40, 201, 0, 1, 0, 0, 0, 0]), Err(BadVersion(1)));
    // Length says 3 words, 2 present.
    assert_eq!(
        parse(&[0x80, 201, 0, 2, 0, 0, 0, 1]),
        Err(TooShort { len: 8, needed: 12 })
    );
    // RR claims one block, has none.
    assert_eq!(
        parse(&[0x81, 201, 0, 1, 0, 0, 0, 1]),
        Err(BadReportCount { count: 1, len: 8 })
    );
    // SR without sender info.
    assert!(matches!(
        parse(&[0x80, 200, 0, 1, 0, 0, 0, 1]),
        Err(TooShort { .. })
    ));
    // RR with no SSRC at all.
    assert!(matches!(parse(&[0x80, 201, 0, 0]), Err(TooShort { .. })));
    // Padding count of zero, and larger than the body.
    assert!(matches!(
        parse(&[0xa0, 201, 0, 1, 0, 0, 0, 0]),
        Err(BadPadding { padding: 0, .. })
    ));
    assert!(matches!(
        parse(&[0xa0, 201, 0, 1, 0, 0, 0, 9]),
        Err(BadPadding { padding: 9, .. })
    ));
    // SDES: item length beyond the packet; chunk without terminator; more
    // chunks counted than present.
    assert!(matches!(
        parse(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 200, b'a', 0]),
        Err(BadSdes { .. })
    ));
    assert!(matches!(
        parse(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b']),
        Err(BadSdes { .. })
    ));
    assert!(matches!(
        parse(&[0x82, 202, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0]),
        Err(BadSdes { .. })
    ));
    // BYE: sources beyond the packet; reason beyond the packet.
    assert!(matches!(
        parse(&[0x82, 203, 0, 1, 0, 0, 0, 1]),
        Err(BadBye { .. })
    ));
    assert!(matches!(
        parse(&[0x81, 203, 0, 2, 0, 0, 0, 1, 5, b'a', 0, 0]),
        Err(BadBye { .. })
    ));
}

#[test]
fn compound_validation() {
    let mut out = [0u8; 200];
    let n = write_sdes_cname(1, b"x", &mut out).unwrap();
    assert_eq!(
        validate_compound(&out[..n]),
        Err(RtcpError::NotReportFirst(202))
    );
    assert!(validate_compound(&[]).is_err());
    // A good RR followed by trailing garbage: the compound is invalid, and
    // iteration stops at the garbage.
    let mut n = write_receiver_report(1, &[block(2)], &mut out).unwrap();
    out[n..n + 3].copy_from_slice(&[0x80, 202, 0]);
    n += 3;
    assert!(validate_compound(&out[..n]).is_err());
    let items: Vec<_> = compound(&out[..n]).collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok() && items[1].is_err());
}

#[test]
fn builders_check_buffers_and_counts() {
    let blocks = [block(1); 32];
    let mut out = [0u8; 2_000];
    assert_eq!(
        write_receiver_report(1, &blocks, &mut out),
        Err(RtcpError::TooMany(32))
    );
    assert_eq!(
        write_sender_report(1, &info(), &blocks[..1], &mut out[..50]),
        Err(RtcpError::BufferTooSmall {
            len: 50,
            needed: 52
        })
    );
    assert!(write_bye(&[1; 32], None, &mut out).is_err());
    assert!(write_bye(&[1], Some(&[b'x'; 300]), &mut out).is_err());
    assert_eq!(write_bye(&[1], None, &mut out), Ok(8));
    assert!(write_sdes_cname(1, b"abc", &mut out[..8]).is_err());
}

#[test]
fn rtcp_mux_demultiplexing() {
    let mut out = [0u8; 100];
    let n = write_receiver_report(1, &[], &mut out).unwrap();
    assert!(is_rtcp(&out[..n]));
    for pt in [200u8, 201, 202, 203, 204, 205, 206, 207] {
        assert!(is_rtcp(&[0x80, pt, 0, 0]), "{pt}");
    }
    // RTP audio, with and without marker; dynamic types; garbage.
    for b1 in [0u8, 0x80, 8, 96, 0x80 | 101, 0x80 | 96, 0xe0] {
        assert!(!is_rtcp(&[0x80, b1, 0, 0]), "{b1}");
    }
    assert!(!is_rtcp(&[0x00, 200, 0, 0]));
    assert!(!is_rtcp(&[0x80]));
}

#[test]
fn ntp_time_and_short_durations() {
    let t = UNIX_EPOCH + Duration::from_millis(1_500);
    let ntp = NtpTime::from_system_time(t);
    assert_eq!(ntp.0 >> 32, 2_208_988_801);
    assert_eq!(ntp.0 as u32, 0x8000_0000);
    assert_eq!(ntp.middle32(), ((2_208_988_801u64 << 16) as u32) | 0x8000);
    assert_eq!((ntp + Duration::from_millis(500)).0, 2_208_988_802u64 << 32);
    assert_eq!(duration_to_short(Duration::from_millis(1_500)), 0x0001_8000);
    assert_eq!(
        duration_from_short(0x0001_8000),
        Duration::from_millis(1_500)
    );
    assert_eq!(duration_to_short(Duration::from_secs(1 << 20)), u32::MAX);
}
