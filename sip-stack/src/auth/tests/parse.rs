//! Parser torture: what hostile or sloppy peers send.

use super::*;

fn creds(extra: &str) -> String {
    format!(r#"Digest username="u", realm="r", nonce="n", uri="sip:a@b", response="abcdef"{extra}"#)
}

#[test]
fn commas_and_escapes_inside_quotes() {
    let c = Challenge::parse(
        r#"Digest realm="Acme, Inc. \"East\" \\ PBX", nonce="a,b,c", algorithm=MD5"#,
    )
    .unwrap();
    assert_eq!(c.realm, r#"Acme, Inc. "East" \ PBX"#);
    assert_eq!(c.nonce, "a,b,c");
    // Formatting escapes again, and the round trip is exact.
    assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
}

#[test]
fn names_and_tokens_are_case_insensitive_and_spacing_is_loose() {
    let c = Challenge::parse("  dIgEsT   REALM = \"r\" ,,NONCE=\"n\",\tAlgorithm=sha-256 , QOP=\"AUTH , foo\", STALE=TRUE,")
        .unwrap();
    assert_eq!((c.realm.as_str(), c.nonce.as_str()), ("r", "n"));
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert_eq!(c.qop, vec![Qop::Auth]);
    assert!(c.unknown_qop && c.stale);
    // Absent algorithm means MD5; absent qop is RFC 2069.
    let c = Challenge::parse(r#"Digest realm="r", nonce=bare-token"#).unwrap();
    assert_eq!(
        (c.algorithm, c.qop.len(), c.nonce.as_str()),
        (Algorithm::Md5, 0, "bare-token")
    );
}

#[test]
fn credentials_accept_quoted_or_bare_nc_and_qop() {
    let c = Credentials::parse(&creds(
        r#", qop="auth", nc="0000000A", cnonce="x", RESPONSE2=1"#,
    ))
    .unwrap();
    assert_eq!(c.qop, Some((Qop::Auth, 10, "x".into())));
    let c = Credentials::parse(&creds(", qop=auth, nc=ffffffff, cnonce=x")).unwrap();
    assert_eq!(c.qop.unwrap().1, u32::MAX);
}

#[test]
fn missing_and_bad_fields() {
    assert_eq!(
        Challenge::parse(r#"Digest nonce="n""#),
        Err(AuthError::Missing("realm"))
    );
    assert_eq!(
        Challenge::parse(r#"Digest realm="r""#),
        Err(AuthError::Missing("nonce"))
    );
    assert_eq!(Challenge::parse("Digest"), Err(AuthError::Missing("realm")));
    assert_eq!(Challenge::parse(""), Err(AuthError::NotDigest));
    assert_eq!(
        Challenge::parse(r#"Basic realm="r""#),
        Err(AuthError::NotDigest)
    );
    assert_eq!(
        Challenge::parse(r#"Digestrealm="r""#),
        Err(AuthError::NotDigest)
    );
    assert_eq!(
        Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#),
        Err(AuthError::UnsupportedAlgorithm)
    );
    let no_uri = r#"Digest username="u", realm="r", nonce="n", response="ab""#;
    assert_eq!(Credentials::parse(no_uri), Err(AuthError::Missing("uri")));
    assert_eq!(
        Credentials::parse(&creds(", qop=auth, nc=00000001")),
        Err(AuthError::Missing("cnonce"))
    );
    assert_eq!(
        Credentials::parse(&creds(", nc=00000001, cnonce=x")),
        Err(AuthError::Missing("qop"))
    );
    for nc in ["1", "000000001", "0000000g", "-0000001", "+0000001"] {
        let e = Credentials::parse(&creds(&format!(", qop=auth, nc={nc}, cnonce=x")));
        assert_eq!(e, Err(AuthError::BadValue("nc")), "{nc}");
    }
    assert_eq!(
        Credentials::parse(&creds(", qop=bogus, nc=00000001, cnonce=x")),
        Err(AuthError::BadValue("qop"))
    );
    let bad_response = r#"Digest username="u", realm="r", nonce="n", uri="x", response="zz""#;
    assert_eq!(
        Credentials::parse(bad_response),
        Err(AuthError::BadValue("response"))
    );
}

#[test]
fn duplicates_are_refused() {
    // Two realms or two responses: which one would we check?
    let e = Challenge::parse(r#"Digest realm="a", nonce="n", Realm="b""#);
    assert_eq!(e, Err(AuthError::Duplicate("realm".into())));
    assert!(matches!(
        Credentials::parse(&creds(r#", response="00""#)),
        Err(AuthError::Duplicate(_))
    ));
}

#[test]
fn syntax_errors() {
    for bad in [
        r#"Digest realm="unterminated"#,
        r#"Digest realm="r" nonce="n""#,
        r#"Digest realm"#,
        r#"Digest realm="#,
        r#"Digest ="r""#,
        r#"Digest realm="a\"#,
        "Digest realm=\"a\r\nInjected: yes\", nonce=\"n\"",
        "Digest realm=\"a\\\nb\", nonce=\"n\"",
        "Digest realm=\"a\u{0}\", nonce=\"n\"",
        "Digest realm=r\u{e9}, nonce=n",
        "Digest, realm=\"r\"",
    ] {
        assert!(Challenge::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn limits_and_huge_inputs() {
    let huge = format!(r#"Digest realm="{}", nonce="n""#, "a".repeat(1 << 20));
    assert!(matches!(
        Challenge::parse(&huge),
        Err(AuthError::TooLong { .. })
    ));
    let many: String = (0..100).map(|i| format!(", p{i}=x")).collect();
    let e = Challenge::parse(&format!(r#"Digest realm="r", nonce="n"{many}"#));
    assert_eq!(e, Err(AuthError::TooManyParams { max: 32 }));
    let tight = AuthLimits {
        max_len: 30,
        max_params: 2,
    };
    assert!(Challenge::parse_bytes(br#"Digest realm="r", nonce="n""#, &tight).is_ok());
    assert!(Challenge::parse_bytes(br#"Digest realm="r", nonce="n", x=y"#, &tight).is_err());
    // Deep nesting of escapes and commas only costs linear time.
    let escapes = format!(r#"Digest realm="{}", nonce="n""#, "\\\",".repeat(1000));
    assert_eq!(Challenge::parse(&escapes).unwrap().realm.len(), 2000);
}

#[test]
fn non_utf8_is_an_error() {
    let raw = b"Digest realm=\"caf\xe9\", nonce=\"n\"";
    assert_eq!(
        Challenge::parse_bytes(raw, &AuthLimits::default()),
        Err(AuthError::NotUtf8)
    );
    let raw = b"Digest username=\"\xff\xfe\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"ab\"";
    assert_eq!(
        Credentials::parse_bytes(raw, &AuthLimits::default()),
        Err(AuthError::NotUtf8)
    );
    // UTF-8 usernames are fine (RFC 7616 charset=UTF-8).
    let c = Credentials::parse(
        r#"Digest username="J\"ürgen", realm="r", nonce="n", uri="u", response="ab""#,
    )
    .unwrap();
    assert_eq!(c.username, "J\"ürgen");
}

#[test]
fn formatting_drops_control_characters() {
    let c = Challenge {
        realm: "evil\r\nVia: x".into(),
        nonce: "n".into(),
        opaque: Some("o\"q".into()),
        algorithm: Algorithm::Sha256Sess,
        qop: vec![Qop::Auth, Qop::AuthInt],
        unknown_qop: false,
        stale: false,
    };
    let s = c.to_string();
    assert_eq!(
        s,
        r#"Digest realm="evilVia: x", nonce="n", opaque="o\"q", algorithm=SHA-256-sess, qop="auth,auth-int""#
    );
    assert!(Challenge::parse(&s).is_ok());
}

#[test]
fn choose_challenge_skips_what_it_cannot_answer() {
    let values = [
        "Basic realm=\"r\"",
        r#"Digest realm="r", nonce="1", algorithm=SHA-512-256"#,
        r#"Digest realm="r", nonce="2", qop="auth-conf""#,
        r#"Digest realm="r", nonce="3", algorithm=MD5-sess"#,
        r#"Digest realm="r", nonce="4", algorithm=MD5, qop="auth""#,
        "garbage",
    ];
    assert_eq!(choose_challenge(&values).unwrap().nonce, "4");
    assert_eq!(choose_challenge(&values[..4]), None);
    assert_eq!(choose_challenge(&[]), None);
}

#[test]
fn escaped_controls_are_refused() {
    assert!(Challenge::parse("Digest realm=\"a\\\u{1}\", nonce=\"n\"").is_err());
    assert_eq!(
        Challenge::parse("Digest realm=\"a\\\tb\", nonce=\"n\"")
            .unwrap()
            .realm,
        "a\tb"
    );
}
