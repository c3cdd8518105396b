use super::*;

const FRAME: usize = 960;

/// A voiced, speech-like frame sequence: harmonics of 150 Hz at `amp`.
fn voice(start: usize, amp: f64, out: &mut [i16]) {
    for (i, o) in out.iter_mut().enumerate() {
        let t = (start + i) as f64 / OPUS_RATE as f64;
        let s: f64 = (1..=8)
            .map(|h| (2.0 * std::f64::consts::PI * 150.0 * h as f64 * t).sin() / h as f64)
            .sum();
        *o = (s * amp / 2.0) as i16;
    }
}

fn energy(x: &[i16]) -> f64 {
    x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64
}

/// Normalized cross-correlation of `a` with `b` delayed by `lag`.
fn correlation(a: &[i16], b: &[i16], lag: usize) -> f64 {
    let pairs = a.iter().zip(b.iter().skip(lag));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in pairs {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(1.0)
}

/// Encodes `frames` 20 ms frames of `signal`, returning the packets.
fn encode_all(enc: &mut OpusEncoder, signal: &[i16]) -> Vec<Vec<u8>> {
    signal
        .chunks(FRAME)
        .map(|pcm| {
            let mut buf = [0u8; MAX_OPUS_PACKET];
            let n = enc.encode(pcm, &mut buf);
            buf[..n].to_vec()
        })
        .collect()
}

/// A 440 Hz tone.
fn tone(out: &mut [i16]) {
    for (i, o) in out.iter_mut().enumerate() {
        let t = i as f64 / OPUS_RATE as f64;
        *o = (8_000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
    }
}

/// Encodes and decodes 1 s; returns the best correlation over the codec
/// delay and the power ratio, start-up frames left out.
fn round_trip(signal: &[i16]) -> (f64, f64) {
    let mut enc = OpusEncoder::new(OpusParams::default()).unwrap();
    let packets = encode_all(&mut enc, signal);
    assert!(packets.iter().all(|p| !p.is_empty() && p.len() < 200));
    let mut dec = OpusDecoder::new().unwrap();
    let mut decoded = vec![0i16; signal.len()];
    for (p, out) in packets.iter().zip(decoded.chunks_mut(FRAME)) {
        assert_eq!(dec.decode(p, out), FRAME);
    }
    let (a, b) = (&signal[FRAME * 5..FRAME * 45], &decoded[FRAME * 5..]);
    let best = (0..FRAME)
        .map(|lag| correlation(a, b, lag))
        .fold(0.0, f64::max);
    let ratio = energy(&decoded[FRAME * 5..]) / energy(&signal[FRAME * 5..]);
    (best, ratio)
}

#[test]
fn tone_round_trip_at_48k() {
    let mut signal = vec![0i16; FRAME * 50];
    tone(&mut signal);
    let (corr, ratio) = round_trip(&signal);
    assert!(corr > 0.95, "tone correlation {corr}");
    assert!((0.7..1.4).contains(&ratio), "tone power ratio {ratio}");
    // Speech-like sound: SILK keeps the spectrum, not every phase.
    voice(0, 8_000.0, &mut signal);
    let (corr, ratio) = round_trip(&signal);
    assert!(corr > 0.8, "voice correlation {corr}");
    assert!((0.5..2.0).contains(&ratio), "voice power ratio {ratio}");
}

/// Quiet speech, then loud speech from frame 20; frame 20 is lost.
/// Concealment can only extrapolate the quiet frames; the FEC in packet
/// 21 carries the loud frame itself.
#[test]
fn fec_recovers_a_lost_frame_concealment_cannot() {
    let mut signal = vec![0i16; FRAME * 30];
    voice(0, 1_000.0, &mut signal[..FRAME * 20]);
    voice(FRAME * 20, 12_000.0, &mut signal[FRAME * 20..]);
    let mut enc = OpusEncoder::new(OpusParams::default()).unwrap();
    let packets = encode_all(&mut enc, &signal);

    let run = |recover: bool| -> Vec<i16> {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = vec![0i16; FRAME];
        for p in &packets[..20] {
            dec.decode(p, &mut out);
        }
        let next = recover.then_some(packets[21].as_slice());
        assert_eq!(dec.conceal_loss(next, &mut out), FRAME);
        out
    };
    let mut reference = OpusDecoder::new().unwrap();
    let mut want = vec![0i16; FRAME];
    for p in &packets[..21] {
        reference.decode(p, &mut want);
    }
    let (fec, plc, want) = (energy(&run(true)), energy(&run(false)), energy(&want));
    assert!(
        fec > want * 0.25 && fec < want * 4.0,
        "FEC energy {fec} vs {want}"
    );
    assert!(plc < want * 0.1, "concealment energy {plc} vs {want}");
}

#[test]
fn concealment_fades_and_gaps_end_in_silence() {
    let mut signal = vec![0i16; FRAME * 10];
    voice(0, 8_000.0, &mut signal);
    let mut enc = OpusEncoder::new(OpusParams::default()).unwrap();
    let mut dec = OpusDecoder::new().unwrap();
    let mut out = vec![0i16; FRAME];
    // Nothing received yet: nothing to conceal.
    assert_eq!(dec.fill_gap(&mut out), 0);
    assert_eq!(dec.conceal_loss(None, &mut out), 0);
    for p in encode_all(&mut enc, &signal) {
        dec.decode(&p, &mut out);
    }
    let last = energy(&out);
    assert_eq!(dec.conceal_loss(None, &mut out), FRAME);
    let first = energy(&out);
    assert!(
        first > last * 0.1,
        "PLC continues the voice: {first} vs {last}"
    );
    for _ in 0..MAX_GAP_CONCEALMENT - 1 {
        assert_eq!(dec.fill_gap(&mut out), FRAME);
    }
    assert!(energy(&out) < first * 0.5, "concealment fades");
    assert_eq!(dec.fill_gap(&mut out), FRAME);
    assert_eq!(dec.fill_gap(&mut out), 0, "then silence");
    // A packet ends the gap.
    dec.decode(&encode_all(&mut enc, &signal[..FRAME])[0], &mut out);
    assert_eq!(dec.fill_gap(&mut out), FRAME);
}

#[test]
fn dtx_only_when_asked() {
    let silence = vec![0i16; FRAME * 30];
    let mut quiet = OpusEncoder::new(OpusParams {
        dtx: true,
        ..OpusParams::default()
    })
    .unwrap();
    let skipped = encode_all(&mut quiet, &silence)
        .iter()
        .filter(|p| p.is_empty())
        .count();
    assert!(skipped > 15, "DTX skipped {skipped} of 30 silent frames");
    let mut normal = OpusEncoder::new(OpusParams::default()).unwrap();
    assert!(encode_all(&mut normal, &silence)
        .iter()
        .all(|p| !p.is_empty()));
}

#[test]
fn corrupt_and_short_input_do_not_panic() {
    let mut dec = OpusDecoder::new().unwrap();
    let mut out = [0i16; FRAME];
    for bad in [&[0xffu8; 3][..], &[0x03, 0xff][..], &[0u8; 1275][..]] {
        let _ = dec.decode(bad, &mut out);
        let _ = dec.conceal_loss(Some(bad), &mut out);
    }
    let mut enc = OpusEncoder::new(OpusParams::default()).unwrap();
    let mut buf = [0u8; 100];
    assert_eq!(enc.encode(&out[..10], &mut buf), 0, "short frame");
}

#[test]
fn peer_parameters() {
    assert_eq!(OpusParams::for_peer(None, false), OpusParams::default());
    let p = OpusParams::for_peer(Some(20_000), true);
    assert_eq!(
        p,
        OpusParams {
            bitrate: 20_000,
            fec: true,
            dtx: true
        }
    );
    // A cap above our default leaves it.
    assert_eq!(
        OpusParams::for_peer(Some(64_000), false),
        OpusParams::default()
    );
    // Below what Opus can do: clamped when the encoder is made.
    assert!(OpusEncoder::new(OpusParams::for_peer(Some(100), false)).is_ok());
}
