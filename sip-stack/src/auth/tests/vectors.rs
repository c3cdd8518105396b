//! Worked examples from the RFCs (HTTP ones: method GET, uri /dir/index.html),
//! plus vectors computed with an independent implementation (Python hashlib)
//! for the forms the RFCs give no example of.

use super::*;

const RFC2617_CHALLENGE: &str = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

/// RFC 7616 §3.9.1, unfolded; the same challenge once per algorithm.
fn rfc7616_challenge(algorithm: &str) -> String {
    format!(
        r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
    )
}
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn answer(
    challenge: &str,
    cnonce: &'static str,
    method: &Method,
    uri: &str,
    password: &str,
    body: &[u8],
) -> Credentials {
    let value = fixed_client(cnonce)
        .respond_to_header(challenge, method, uri, &mufasa(password), body)
        .expect("answerable");
    Credentials::parse(&value).expect("our own output parses")
}

#[test]
fn rfc2617_section_3_5_md5_auth() {
    let c = answer(
        RFC2617_CHALLENGE,
        "0a4f113b",
        &get(),
        "/dir/index.html",
        "Circle Of Life",
        b"",
    );
    assert_eq!(c.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(c.qop, Some((Qop::Auth, 1, "0a4f113b".to_string())));
    assert_eq!(
        c.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert_eq!(c.algorithm, Algorithm::Md5);
}

#[test]
fn rfc2617_authorization_formats_as_expected() {
    let value = fixed_client("0a4f113b")
        .respond_to_header(
            RFC2617_CHALLENGE,
            &get(),
            "/dir/index.html",
            &mufasa("Circle Of Life"),
            b"",
        )
        .unwrap();
    assert_eq!(
        value,
        r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41""#
    );
}

#[test]
fn rfc7616_section_3_9_1_md5_and_sha256() {
    for (alg, expected) in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        (
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let c = answer(
            &rfc7616_challenge(alg),
            RFC7616_CNONCE,
            &get(),
            "/dir/index.html",
            "Circle of Life",
            b"",
        );
        assert_eq!(c.response, expected, "{alg}");
        assert_eq!(c.algorithm.as_str(), alg);
    }
}

#[test]
fn rfc7616_authorization_header_parses() {
    let header = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    let c = Credentials::parse(header).unwrap();
    assert_eq!(c.username, "Mufasa");
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert_eq!(c.qop, Some((Qop::Auth, 1, RFC7616_CNONCE.to_string())));
    // Formatting and re-parsing loses nothing.
    assert_eq!(Credentials::parse(&c.to_string()).unwrap(), c);
}

#[test]
fn sha256_sess_matches_independent_vector() {
    let c = answer(
        &rfc7616_challenge("SHA-256-sess"),
        RFC7616_CNONCE,
        &get(),
        "/dir/index.html",
        "Circle of Life",
        b"",
    );
    assert_eq!(
        c.response,
        "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"
    );
}

#[test]
fn rfc2069_no_qop_form() {
    let challenge =
        r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#;
    let c = answer(
        challenge,
        "unused",
        &get(),
        "/dir/index.html",
        "CircleOfLife",
        b"",
    );
    assert_eq!(c.response, "1949323746fe6a43ef61f9606e7febea");
    assert_eq!(c.qop, None);
}

#[test]
fn auth_int_covers_the_body() {
    let challenge = r#"Digest realm="testrealm@host.com", qop="auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#;
    let invite = Method::Invite;
    let c = answer(
        challenge,
        "0a4f113b",
        &invite,
        "sip:bob@example.com",
        "Circle Of Life",
        b"v=0\r\n",
    );
    assert_eq!(c.response, "6a6e449f512a9f3e11597febd92718ea");
    assert_eq!(c.qop.map(|q| q.0), Some(Qop::AuthInt));
}

#[test]
fn precomputed_ha1_is_the_rfc_one() {
    // RFC 7616 §3.9.1's HA1 for MD5 is H("Mufasa:http-auth@example.org:Circle of Life").
    let h = ha1(
        Algorithm::Md5,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
    );
    assert_eq!(h, "3d78807defe7de2157e2b0b6573a855f");
    assert_eq!(
        ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life"
        )
        .len(),
        64
    );
}
