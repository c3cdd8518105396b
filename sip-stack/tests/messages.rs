//! Runs every message under `tests/messages/` (see its README for the
//! naming rules): files are raw wire bytes, CRLF included.

use std::fs;
use std::path::PathBuf;

use sip_stack::message::{parse, parse_with_limits, ParseLimits, SipMessage};

fn cases(dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/messages")
        .join(dir);
    let mut out: Vec<_> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, fs::read(&p).unwrap_or_default())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no cases in {}", root.display());
    out
}

/// What must survive a serialize/parse round trip.
fn essence(m: &SipMessage) -> (String, Option<String>, Vec<String>, Vec<u8>) {
    let start = match m {
        SipMessage::Request(r) => format!("{} {}", r.method, r.uri),
        SipMessage::Response(r) => format!("{} {}", r.status, r.reason),
    };
    let h = m.headers();
    let headers = h
        .iter()
        .filter(|h| h.name != "Content-Length")
        .map(|h| format!("{}: {}", h.name, h.value))
        .collect();
    let body = match m {
        SipMessage::Request(r) => r.body.to_vec(),
        SipMessage::Response(r) => r.body.to_vec(),
    };
    (start, h.call_id().map(str::to_string), headers, body)
}

#[test]
fn valid_messages_parse_and_round_trip() {
    for (name, bytes) in cases("valid") {
        let msg = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = parse(&msg.to_bytes()).unwrap_or_else(|e| panic!("{name} re-parse: {e}"));
        assert_eq!(essence(&msg), essence(&again), "{name}");
        let h = msg.headers();
        assert!(
            h.call_id().is_some() && h.cseq().is_some() && h.top_via().is_some(),
            "{name}"
        );
    }
}

#[test]
fn invalid_messages_fail_and_are_answered_as_named() {
    for (name, bytes) in cases("invalid") {
        let err = match parse(&bytes) {
            Ok(m) => panic!("{name}: parsed as {m:?}"),
            Err(e) => e,
        };
        let reply = err.reply_400();
        let expected = name.split('-').next().unwrap_or_default();
        match (expected, &reply) {
            ("drop", None) => {}
            ("400", Some(r)) => {
                assert_eq!(r.status, 400, "{name}");
                assert!(
                    r.reason.starts_with("Bad Request - "),
                    "{name}: {}",
                    r.reason
                );
            }
            ("505", Some(r)) => assert_eq!(r.status, 505, "{name}"),
            _ => panic!("{name}: error {err}, reply {reply:?}"),
        }
        if let Some(r) = reply {
            assert!(r.top_via().is_some(), "{name}: reply must route by Via");
            let text = String::from_utf8(r.to_bytes()).unwrap_or_default();
            assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{name}");
            if r.headers.get("To").is_some() {
                assert!(r.to_tag().is_some(), "{name}: To tag added");
            }
        }
    }
}

#[test]
fn carrier_compact_forms_are_understood() {
    let bytes = fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/messages/valid/carrier-compact-folded-invite.sip"),
    )
    .unwrap_or_default();
    let Ok(SipMessage::Request(req)) = parse(&bytes) else {
        panic!("carrier INVITE must parse");
    };
    assert_eq!(req.call_id(), Some("8c1f0e2a@198.51.100.20"));
    assert_eq!(req.from_tag(), Some("c-77"));
    assert_eq!(
        req.headers.get("Subject"),
        Some("a subject that was folded across two lines")
    );
    assert_eq!(req.headers.get("k"), Some("timer, 100rel"));
    assert_eq!(
        req.headers.get("Session-Expires"),
        Some("1800;refresher=uac")
    );
    assert_eq!(req.content_type(), Some("application/sdp"));
    assert_eq!(
        req.contact_uri().as_deref(),
        Some("sip:+15559870000@198.51.100.20:5060")
    );
    let vias: Vec<_> = req.headers.vias().collect();
    assert_eq!(vias.len(), 3, "{vias:?}");
    assert_eq!(
        req.headers.get_all("Via").count(),
        2,
        "lines kept as received"
    );
    let top = req.top_via().unwrap_or_else(|| panic!("top Via"));
    assert_eq!(
        (top.branch.as_deref(), top.rport),
        (Some("z9hG4bKcarrier1"), Some(None))
    );
    let sdp = std::str::from_utf8(&req.body).unwrap_or_default();
    assert!(
        sdp.starts_with("v=0\r\n") && sdp.ends_with("a=fmtp:101 0-16\r\n"),
        "{sdp:?}"
    );
    assert!(sip_stack::sdp::SessionDescription::parse(sdp).is_ok());
}

#[test]
fn limits_are_enforced() {
    let bytes = fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/messages/valid/sipp-invite-with-sdp.sip"),
    )
    .unwrap_or_default();
    let small = ParseLimits {
        max_message_size: 100,
        ..ParseLimits::default()
    };
    let err = parse_with_limits(&bytes, &small).unwrap_err();
    assert!(
        err.to_string().contains("exceeds the 100 byte limit"),
        "{err}"
    );
    assert!(err.reply_400().is_none());
    let few = ParseLimits {
        max_headers: 3,
        ..ParseLimits::default()
    };
    assert!(parse_with_limits(&bytes, &few)
        .unwrap_err()
        .to_string()
        .contains("more than 3 header lines"));
}
