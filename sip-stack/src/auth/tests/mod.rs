//! Digest auth tests: RFC vectors, server/client round trips, parser torture.

mod parse;
mod request;
mod round_trip;
mod vectors;

use super::*;
use crate::message::Method;

/// A client whose cnonce is fixed, so outputs can be compared with RFC text.
fn fixed_client(cnonce: &'static str) -> DigestClient {
    DigestClient::with_cnonce(move || cnonce.to_string())
}

fn mufasa(password: &str) -> UserCredentials {
    UserCredentials::new("Mufasa", password)
}

fn get() -> Method {
    Method::Other("GET".into())
}
