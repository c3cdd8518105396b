use super::*;

const INVITE: &str = "INVITE sip:bob@10.0.0.2 SIP/2.0\r\n\
    Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKf1\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:alice@10.0.0.1>;tag=a\r\n\
    To: <sip:bob@10.0.0.2>\r\n\
    Call-ID: framer-1@10.0.0.1\r\n\
    CSeq: 1 INVITE\r\n\
    Content-Type: application/sdp\r\n\
    Content-Length: 30\r\n\r\n\
    v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n";

const BYE: &str = "BYE sip:bob@10.0.0.2 SIP/2.0\r\n\
    v: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKf2\r\n\
    f: <sip:alice@10.0.0.1>;tag=a\r\n\
    t: <sip:bob@10.0.0.2>;tag=b\r\n\
    i: framer-1@10.0.0.1\r\n\
    CSeq: 2 BYE\r\n\
    l: 0\r\n\r\n";

/// Everything the framer yields for `input` fed in one piece.
fn frames(input: &[u8], max: usize) -> Result<Vec<Frame>, FrameError> {
    let mut f = StreamFramer::new(max);
    f.push(input);
    drain(&mut f)
}

fn drain(f: &mut StreamFramer) -> Result<Vec<Frame>, FrameError> {
    let mut out = Vec::new();
    while let Some(frame) = f.next_frame()? {
        out.push(frame);
    }
    Ok(out)
}

fn msg(s: &str) -> Frame {
    Frame::Message(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn body_is_exactly_content_length() {
    assert_eq!(INVITE.len() - INVITE.find("v=0").unwrap(), 30);
    assert_eq!(frames(INVITE.as_bytes(), 65_535), Ok(vec![msg(INVITE)]));
    let Frame::Message(bytes) = msg(INVITE) else {
        unreachable!()
    };
    let Ok(SipMessage::Request(req)) = parse(&bytes) else {
        panic!("framed INVITE must parse");
    };
    assert_eq!(&req.body[..], b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n");
}

#[test]
fn split_at_every_byte_boundary() {
    let stream = format!("\r\n{INVITE}\r\n\r\n{BYE}");
    let want = vec![msg(INVITE), Frame::Ping, msg(BYE)];
    for cut in 0..=stream.len() {
        let mut f = StreamFramer::new(65_535);
        f.push(&stream.as_bytes()[..cut]);
        let mut got = drain(&mut f).unwrap();
        f.push(&stream.as_bytes()[cut..]);
        got.extend(drain(&mut f).unwrap());
        assert_eq!(got, want, "split at byte {cut}");
        assert_eq!(f.buffered(), 0);
    }
}

#[test]
fn one_byte_at_a_time() {
    let stream = format!("{BYE}{INVITE}{BYE}");
    let mut f = StreamFramer::new(65_535);
    let mut got = Vec::new();
    for b in stream.as_bytes() {
        f.push(std::slice::from_ref(b));
        got.extend(drain(&mut f).unwrap());
    }
    assert_eq!(got, vec![msg(BYE), msg(INVITE), msg(BYE)]);
}

#[test]
fn several_messages_in_one_read() {
    let stream = format!("{INVITE}{BYE}{INVITE}");
    assert_eq!(
        frames(stream.as_bytes(), 65_535),
        Ok(vec![msg(INVITE), msg(BYE), msg(INVITE)])
    );
}

#[test]
fn ping_pong_and_padding() {
    // A ping is CRLF CRLF; a lone CRLF (a pong, or RFC 3261 §7.5 padding) is skipped.
    assert_eq!(frames(PING, 100), Ok(vec![Frame::Ping]));
    assert_eq!(
        frames(b"\r\n\r\n\r\n\r\n", 100),
        Ok(vec![Frame::Ping, Frame::Ping])
    );
    let mut f = StreamFramer::new(100);
    f.push(b"\r\n");
    assert_eq!(f.next_frame(), Ok(None), "could still become a ping");
    f.push(b"\r\n");
    assert_eq!(f.next_frame(), Ok(Some(Frame::Ping)));
    let stream = format!("\r\n{BYE}\n\n{BYE}");
    assert_eq!(
        frames(stream.as_bytes(), 65_535),
        Ok(vec![msg(BYE), msg(BYE)])
    );
}

#[test]
fn bare_lf_header_section() {
    let bye = BYE.replace("\r\n", "\n");
    assert_eq!(frames(bye.as_bytes(), 65_535), Ok(vec![msg(&bye)]));
}

#[test]
fn oversize_is_refused_early() {
    // Declared too large: refused as soon as the headers are in.
    let big = INVITE.replace("Content-Length: 30", "Content-Length: 70000");
    assert!(matches!(
        frames(big.as_bytes(), 65_535),
        Err(FrameError::TooLarge { size, max: 65_535 }) if size > 70_000
    ));
    // Headers that never end: refused once past the bound, not buffered forever.
    let mut f = StreamFramer::new(1000);
    f.push(b"INVITE sip:a@b SIP/2.0\r\n");
    assert_eq!(f.next_frame(), Ok(None));
    let filler = "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut result = Ok(None);
    for _ in 0..40 {
        f.push(filler.as_bytes());
        result = f.next_frame();
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(
        result,
        Err(FrameError::TooLarge { max: 1000, .. })
    ));
    // Exactly at the bound is fine.
    assert_eq!(
        frames(INVITE.as_bytes(), INVITE.len()),
        Ok(vec![msg(INVITE)])
    );
    assert!(frames(INVITE.as_bytes(), INVITE.len() - 1).is_err());
}

#[test]
fn missing_content_length_is_an_error_with_a_400() {
    let bye = BYE.replace("l: 0\r\n", "");
    let err = frames(bye.as_bytes(), 65_535).unwrap_err();
    assert!(matches!(err, FrameError::MissingContentLength { .. }));
    let reply = err.reply_400().expect("a request can be answered");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.call_id(), Some("framer-1@10.0.0.1"));
    // A response or garbage without Content-Length gets no answer.
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n";
    let err = frames(resp.as_bytes(), 65_535).unwrap_err();
    assert!(err.reply_400().is_none());
    let err = frames(b"\x16\x03\x01garbage\r\n\r\n", 65_535).unwrap_err();
    assert!(matches!(err, FrameError::MissingContentLength { .. }));
    assert!(err.reply_400().is_none());
}

#[test]
fn bad_content_length_is_an_error() {
    for bad in ["l: -1", "l: 1e3", "l: ", "l: 99999999999999999999"] {
        let bye = BYE.replace("l: 0", bad);
        assert!(
            matches!(
                frames(bye.as_bytes(), 65_535),
                Err(FrameError::InvalidContentLength { .. })
            ),
            "{bad}"
        );
        // The request is still answered: 400, not a silent close.
        let err = frames(bye.as_bytes(), 65_535).unwrap_err();
        let reply = err.reply_400().expect("a 400 for the BYE");
        assert_eq!(reply.status, 400);
        assert!(reply.reason.contains("invalid Content-Length"), "{bad}");
    }
    let twice = BYE.replace("l: 0\r\n", "l: 0\r\nContent-Length: 5\r\n");
    assert!(frames(twice.as_bytes(), 65_535).is_err());
    let agree = BYE.replace("l: 0\r\n", "l: 0\r\nContent-Length: 0\r\n");
    assert_eq!(frames(agree.as_bytes(), 65_535).unwrap().len(), 1);
}
