use super::kdf::{derive, keystream, Label};
use super::*;
use crate::rtp::RtpWriter;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key(profile: SrtpProfile) -> MasterKey {
    let ks = hex("E1F97A0D3E018BE0D64FA32C06DE41390EC675AD498AFEEBB6960B3AABE6");
    MasterKey::from_key_salt(profile, &ks).unwrap()
}

const P80: SrtpProfile = SrtpProfile::AesCm128HmacSha1_80;
const P32: SrtpProfile = SrtpProfile::AesCm128HmacSha1_32;

/// One RTP packet (seq, payload of 160 bytes of `fill`) in a roomy buffer.
fn rtp(seq: u16, fill: u8) -> ([u8; 256], usize) {
    let mut buf = [0u8; 256];
    let mut w = RtpWriter::with_initial(0, 160, 0x1234_5678, seq, 1000);
    let len = w.write(&[fill; 160], &mut buf).unwrap();
    (buf, len)
}

#[test]
fn key_derivation_matches_rfc3711_b3() {
    let master = key(P80);
    let mut k_e = [0u8; 16];
    let mut k_a = [0u8; 20];
    let mut k_s = [0u8; 14];
    derive(&master, Label::RtpEncryption, &mut k_e);
    derive(&master, Label::RtpAuth, &mut k_a);
    derive(&master, Label::RtpSalt, &mut k_s);
    assert_eq!(k_e.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(
        k_a.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
    assert_eq!(k_s.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
}

#[test]
fn aes_cm_keystream_matches_rfc3711_b2() {
    let cipher = <aes::Aes128 as aes::cipher::KeyInit>::new(
        &<[u8; 16]>::try_from(hex("2B7E151628AED2A6ABF7158809CF4F3C"))
            .unwrap()
            .into(),
    );
    let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
    // The blocks the RFC lists: the first three and the last three of
    // 0xff02 (the counter carries out of its low byte on the way).
    let mut stream = vec![0u8; 16 * 0xff02];
    keystream(&cipher, &iv, &mut stream);
    let block = |i: usize| stream[16 * i..16 * (i + 1)].to_vec();
    assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
}

#[test]
fn rtp_round_trips_for_both_profiles() {
    for profile in [P80, P32] {
        let (mut tx, mut rx) = (
            SrtpContext::new(&key(profile)),
            SrtpContext::new(&key(profile)),
        );
        let (mut buf, len) = rtp(7, 0x55);
        let plain = buf[..len].to_vec();
        let n = tx.protect_rtp(&mut buf, len).unwrap();
        assert_eq!(n, len + profile.rtp_tag_len());
        assert_eq!(buf[..12], plain[..12], "header stays in the clear");
        assert_ne!(buf[12..len], plain[12..], "payload is encrypted");
        assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(len));
        assert_eq!(buf[..len], plain[..]);
    }
}

#[test]
fn tampering_wrong_key_and_plain_rtp_fail_authentication() {
    let mut tx = SrtpContext::new(&key(P80));
    let mut rx = SrtpContext::new(&key(P80));
    let (mut buf, len) = rtp(1, 1);
    let n = tx.protect_rtp(&mut buf, len).unwrap();
    for byte in [1, 5, 20, n - 1] {
        let mut bad = buf;
        bad[byte] ^= 0x01;
        assert_eq!(rx.unprotect_rtp(&mut bad[..n]), Err(SrtpError::AuthFailed));
    }
    let other = MasterKey::new(P80, [1; 16], [2; 14]);
    let mut copy = buf;
    assert_eq!(
        SrtpContext::new(&other).unprotect_rtp(&mut copy[..n]),
        Err(SrtpError::AuthFailed)
    );
    let (mut plain, plen) = rtp(2, 1);
    assert_eq!(
        rx.unprotect_rtp(&mut plain[..plen]),
        Err(SrtpError::AuthFailed)
    );
    // Failures left no trace: the genuine packet still goes through.
    assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(len));
    assert_eq!(
        rx.unprotect_rtp(&mut [0x80; 5]),
        Err(SrtpError::TooShort(5))
    );
    assert_eq!(
        rx.unprotect_rtp(&mut [0x40; 40]),
        Err(SrtpError::BadVersion)
    );
}

#[test]
fn replays_and_packets_older_than_the_window_are_refused() {
    let mut tx = SrtpContext::new(&key(P80));
    let mut rx = SrtpContext::new(&key(P80));
    let mut sent = Vec::new();
    for seq in 100..400u16 {
        let (mut buf, len) = rtp(seq, seq as u8);
        let n = tx.protect_rtp(&mut buf, len).unwrap();
        sent.push(buf[..n].to_vec());
    }
    // In order, skipping every third, then those late ones within the window.
    for (i, p) in sent.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
        assert!(rx.unprotect_rtp(&mut p.clone()).is_ok(), "packet {i}");
    }
    let late = sent.len() - 60; // within 128 of the highest
    assert!(rx.unprotect_rtp(&mut sent[late - late % 3].clone()).is_ok());
    assert_eq!(
        rx.unprotect_rtp(&mut sent[late - late % 3].clone()),
        Err(SrtpError::Replayed)
    );
    assert_eq!(
        rx.unprotect_rtp(&mut sent[1].clone()),
        Err(SrtpError::Replayed)
    );
    assert_eq!(
        rx.unprotect_rtp(&mut sent[0].clone()),
        Err(SrtpError::Replayed),
        "too old"
    );
    assert_eq!(
        rx.unprotect_rtp(&mut sent[299].clone()),
        Err(SrtpError::Replayed)
    );
}

#[test]
fn rollover_counter_follows_the_sequence_wrap_and_late_packets() {
    let mut tx = SrtpContext::new(&key(P32));
    let mut rx = SrtpContext::new(&key(P32));
    let mut held = None;
    // 65530 .. 65535, 0 .. 20 (ROC 1), and one of ROC 0 delivered late.
    for k in 0..26u32 {
        let seq = (65_530 + k) as u16;
        let (mut buf, len) = rtp(seq, k as u8);
        let plain = buf[..len].to_vec();
        let n = tx.protect_rtp(&mut buf, len).unwrap();
        if seq == 65_534 {
            held = Some((buf[..n].to_vec(), plain));
            continue;
        }
        assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(len), "seq {seq}");
        assert_eq!(buf[..len], plain[..]);
    }
    let (mut late, plain) = held.unwrap();
    let len = rx.unprotect_rtp(&mut late).unwrap();
    assert_eq!(late[..len], plain[..], "ROC 0 packet after the wrap");
    // The tag covers the ROC: a sender still at ROC 0 for seq 30 is not
    // the sender at ROC 1 (same seq, different keystream and tag).
    let mut fresh = SrtpContext::new(&key(P32));
    let (mut buf, len) = rtp(30, 0);
    let n = fresh.protect_rtp(&mut buf, len).unwrap();
    assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Err(SrtpError::AuthFailed));
}

#[test]
fn streams_are_tracked_per_ssrc() {
    let mut tx = SrtpContext::new(&key(P80));
    let mut rx = SrtpContext::new(&key(P80));
    for ssrc in 0..20u32 {
        let mut buf = [0u8; 64];
        let mut w = RtpWriter::with_initial(0, 160, ssrc, 9, 0);
        let len = w.write(&[3; 20], &mut buf).unwrap();
        let n = tx.protect_rtp(&mut buf, len).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(len), "ssrc {ssrc}");
    }
}

#[test]
fn protect_needs_room_for_the_tag() {
    let mut tx = SrtpContext::new(&key(P80));
    let (mut buf, len) = rtp(1, 0);
    assert_eq!(
        tx.protect_rtp(&mut buf[..len + 9], len),
        Err(SrtpError::BufferTooSmall(len + 10))
    );
    assert_eq!(tx.protect_rtp(&mut buf, 300), Err(SrtpError::TooShort(300)));
}

fn rtcp_rr() -> ([u8; 128], usize) {
    let mut buf = [0u8; 128];
    // RR from 0xDEADBEEF with one (zeroed) report block.
    let packet = hex(&format!("81C90007DEADBEEF{}", "00".repeat(24)));
    buf[..packet.len()].copy_from_slice(&packet);
    (buf, packet.len())
}

#[test]
fn srtcp_round_trips_and_refuses_replays_and_forgeries() {
    let mut tx = SrtpContext::new(&key(P32));
    let mut rx = SrtpContext::new(&key(P32));
    let (mut buf, len) = rtcp_rr();
    let plain = buf[..len].to_vec();
    let n = tx.protect_rtcp(&mut buf, len).unwrap();
    assert_eq!(n, len + 14, "E||index and an 80-bit tag even for _32");
    assert_eq!(buf[..8], plain[..8]);
    assert_ne!(buf[8..len], plain[8..]);
    assert_eq!(buf[len..len + 4], [0x80, 0, 0, 0], "E set, index 0");
    let mut copy = buf;
    assert_eq!(rx.unprotect_rtcp(&mut buf[..n]), Ok(len));
    assert_eq!(buf[..len], plain[..]);
    assert_eq!(rx.unprotect_rtcp(&mut copy[..n]), Err(SrtpError::Replayed));
    let (mut next, len) = rtcp_rr();
    let n = tx.protect_rtcp(&mut next, len).unwrap();
    assert_eq!(next[len..len + 4], [0x80, 0, 0, 1]);
    let mut bad = next;
    bad[12] ^= 4;
    assert_eq!(rx.unprotect_rtcp(&mut bad[..n]), Err(SrtpError::AuthFailed));
    assert_eq!(rx.unprotect_rtcp(&mut next[..n]), Ok(len));
    assert_eq!(
        rx.unprotect_rtcp(&mut [0x81; 10]),
        Err(SrtpError::TooShort(10))
    );
}

#[test]
fn keys_do_not_show_in_debug_output() {
    let k = key(P80);
    let shown = format!("{k:?} {:?}", SrtpContext::new(&k));
    assert!(
        !shown.contains("225") && !shown.to_lowercase().contains("e1f9"),
        "{shown}"
    );
}

/// libsrtp's known answers for the RFC 3711 B.3 master key (SSRC
/// 0xcafebabe, 16 bytes of 0xab): the form other stacks check against.
#[test]
fn known_answers_for_srtp_and_srtcp() {
    let mut tx = SrtpContext::new(&key(P80));
    let mut buf = [0u8; 64];
    let plain = hex(&format!("800F1234DECAFBADCAFEBABE{}", "AB".repeat(16)));
    buf[..28].copy_from_slice(&plain);
    let n = tx.protect_rtp(&mut buf, 28).unwrap();
    let want = "800F1234DECAFBADCAFEBABE4E55DC4CE79978D88CA4D215949D2402B78D6ACC99EA179B8DBB";
    assert_eq!(buf[..n].to_vec(), hex(want));
    let mut rx = SrtpContext::new(&key(P80));
    assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(28));
    assert_eq!(buf[..28].to_vec(), plain);

    // SRTCP with index 1 (libsrtp's first): unprotect it, then re-protect
    // from a context whose index has moved on to 1.
    let want = "81C8000BCAFEBABE7128035BE487B9BDBEF89041F977A5A880000001993E08CD54D6C1230798";
    let mut wire = hex(want);
    let mut rx = SrtpContext::new(&key(P80));
    assert_eq!(rx.unprotect_rtcp(&mut wire), Ok(24));
    assert_eq!(
        wire[..24].to_vec(),
        hex(&format!("81C8000BCAFEBABE{}", "AB".repeat(16)))
    );
    let mut tx = SrtpContext::new(&key(P80));
    let mut scratch = [0u8; 64];
    scratch[..24].copy_from_slice(&wire[..24]);
    tx.protect_rtcp(&mut scratch, 24).unwrap();
    scratch[..24].copy_from_slice(&wire[..24]);
    let n = tx.protect_rtcp(&mut scratch, 24).unwrap();
    assert_eq!(scratch[..n].to_vec(), hex(want));
}

#[test]
fn rekey_keeps_the_sending_context_for_the_same_key() {
    let (ours, theirs) = (key(P80), MasterKey::new(P80, [5; 16], [6; 14]));
    let mut leg = super::LegCrypto::new(SrtpKeys {
        local: ours.clone(),
        remote: None,
    });
    let mut buf = [0u8; 256];
    assert_eq!(leg.unprotect_rtp(&mut buf[..50]), Err(SrtpError::NoKey));
    // Our stream wraps its sequence: ROC 1 from here on.
    for seq in [65_535u16, 0] {
        let (mut b, n) = rtp(seq, 1);
        leg.protect_rtp(&mut b, n).unwrap();
    }
    // The answer brings their key, and a re-offer our key under _32.
    leg.rekey(SrtpKeys {
        local: ours.clone(),
        remote: Some(theirs.clone()),
    });
    leg.rekey(SrtpKeys {
        local: MasterKey {
            profile: P32,
            ..ours.clone()
        },
        remote: Some(theirs.clone()),
    });
    let (mut b, n) = rtp(1, 1);
    let m = leg.protect_rtp(&mut b, n).unwrap();
    assert_eq!(m, n + 4, "the new suite's tag");
    // A receiver that followed the stream (ROC 1) authenticates it.
    let mut rx = SrtpContext::new(&MasterKey {
        profile: P32,
        ..ours
    });
    let mut warm = SrtpContext::new(&key(P32));
    for seq in [65_535u16, 0] {
        let (mut b2, n2) = rtp(seq, 1);
        let m2 = warm.protect_rtp(&mut b2, n2).unwrap();
        rx.unprotect_rtp(&mut b2[..m2]).unwrap();
    }
    assert_eq!(rx.unprotect_rtp(&mut b[..m]), Ok(n), "index kept ROC 1");
}
