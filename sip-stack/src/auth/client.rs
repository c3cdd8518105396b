//! The answering side: a UAC that meets a 401/407 from a carrier or a
//! registrar picks the strongest challenge and re-sends with credentials.

use std::fmt;

use rand::Rng;

use super::digest::{response, to_hex, ResponseInput};
use super::header::{Challenge, Credentials};
use super::{AuthError, Qop, Secret};
use crate::message::{generate_branch, Method, Request, Response, Via};

/// A username and password for one trunk or registration.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCredentials {
    pub username: String,
    pub password: String,
}

impl UserCredentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        UserCredentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// Never prints the password: trunk configs get logged.
impl fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Picks the challenge to answer among header values: the strongest hash
/// we support (SHA-256 over MD5, RFC 8760 §2.4), and among equals the
/// first, which is the server's preference. Unparseable challenges, unknown
/// algorithms and qop lists with nothing we support are skipped.
pub fn choose_challenge(values: &[&str]) -> Option<Challenge> {
    let mut best: Option<Challenge> = None;
    for c in values.iter().filter_map(|v| Challenge::parse(v).ok()) {
        if pick_qop(&c).is_err() {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|b| c.algorithm.strength() > b.algorithm.strength())
        {
            best = Some(c);
        }
    }
    best
}

/// `auth` when offered, else `auth-int`, else RFC 2069's no-qop when the
/// server sent no qop at all.
fn pick_qop(c: &Challenge) -> Result<Option<Qop>, AuthError> {
    if c.qop.contains(&Qop::Auth) {
        Ok(Some(Qop::Auth))
    } else if c.qop.contains(&Qop::AuthInt) {
        Ok(Some(Qop::AuthInt))
    } else if c.unknown_qop {
        Err(AuthError::UnsupportedQop)
    } else if c.algorithm.is_sess() {
        // -sess hashes the cnonce, which only exists with a qop.
        Err(AuthError::UnsupportedQop)
    } else {
        Ok(None)
    }
}

type CnonceFn = Box<dyn FnMut() -> String + Send>;

/// Answers challenges, keeping the `nc` count: reusing a nonce (a server
/// may let a client pre-authorise later requests with it) must send a
/// higher nc each time, or the server sees a replay.
pub struct DigestClient {
    cnonce: CnonceFn,
    last_nonce: Option<String>,
    nc: u32,
}

impl Default for DigestClient {
    fn default() -> Self {
        Self::new()
    }
}

impl DigestClient {
    /// Client nonces are 128 random bits.
    pub fn new() -> Self {
        Self::with_cnonce(|| {
            let b: [u8; 16] = rand::rng().random();
            to_hex(&b)
        })
    }

    /// A fixed or scripted cnonce source, for tests and RFC vectors.
    pub fn with_cnonce(cnonce: impl FnMut() -> String + Send + 'static) -> Self {
        DigestClient {
            cnonce: Box::new(cnonce),
            last_nonce: None,
            nc: 0,
        }
    }

    /// The `Authorization`/`Proxy-Authorization` value answering
    /// `challenge` for a request with this method, Request-URI and body
    /// (the body only matters for auth-int).
    pub fn respond(
        &mut self,
        challenge: &Challenge,
        method: &Method,
        uri: &str,
        creds: &UserCredentials,
        body: &[u8],
    ) -> Result<String, AuthError> {
        let qop = pick_qop(challenge)?;
        if self.last_nonce.as_deref() == Some(challenge.nonce.as_str()) {
            self.nc = self.nc.wrapping_add(1).max(1);
        } else {
            self.last_nonce = Some(challenge.nonce.clone());
            self.nc = 1;
        }
        let cnonce = (self.cnonce)();
        let nc_hex = format!("{:08x}", self.nc);
        let input = ResponseInput {
            algorithm: challenge.algorithm,
            username: &creds.username,
            realm: &challenge.realm,
            nonce: &challenge.nonce,
            method: method.as_str(),
            uri,
            qop: qop.map(|q| (q, nc_hex.as_str(), cnonce.as_str())),
            body,
        };
        let secret = Secret::Password(creds.password.clone());
        let response = response(&input, &secret).ok_or(AuthError::UnsupportedQop)?;
        Ok(Credentials {
            username: creds.username.clone(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.to_string(),
            response,
            algorithm: challenge.algorithm,
            opaque: challenge.opaque.clone(),
            qop: qop.map(|q| (q, self.nc, cnonce)),
        }
        .to_string())
    }

    /// Parses `challenge` first; see [`DigestClient::respond`].
    pub fn respond_to_header(
        &mut self,
        challenge: &str,
        method: &Method,
        uri: &str,
        creds: &UserCredentials,
        body: &[u8],
    ) -> Result<String, AuthError> {
        self.respond(&Challenge::parse(challenge)?, method, uri, creds, body)
    }

    /// Turns `request`, which drew `response` (401 or 407), into the retry:
    /// one credentials header per challenged realm (the strongest challenge
    /// of each; a request through a proxy and a UAS may need both), replacing
    /// credentials this request already had for those realms; CSeq + 1
    /// (RFC 3261 §22.2: same Call-ID and From tag, new CSeq); and a new Via
    /// branch, because the retry is a new transaction. Send the result with
    /// `Endpoint::send_request` as usual.
    pub fn authorize_request(
        &mut self,
        request: &mut Request,
        response: &Response,
        creds: &UserCredentials,
    ) -> Result<(), AuthError> {
        let (challenge_name, credentials_name) = match response.status {
            401 => ("WWW-Authenticate", "Authorization"),
            407 => ("Proxy-Authenticate", "Proxy-Authorization"),
            other => return Err(AuthError::NotAChallenge(other)),
        };
        let (cseq, method) = request.cseq().ok_or(AuthError::NoCSeq)?;
        let next_cseq = cseq
            .checked_add(1)
            .filter(|n| *n < 1 << 31)
            .ok_or(AuthError::NoCSeq)?;
        let values: Vec<&str> = response.headers.get_all(challenge_name).collect();
        let mut realms: Vec<String> = Vec::new();
        for v in &values {
            if let Ok(c) = Challenge::parse(v) {
                if !realms.contains(&c.realm) {
                    realms.push(c.realm);
                }
            }
        }
        let mut answers = Vec::new();
        for realm in &realms {
            let same_realm: Vec<&str> = values
                .iter()
                .copied()
                .filter(|v| Challenge::parse(v).is_ok_and(|c| &c.realm == realm))
                .collect();
            if let Some(c) = choose_challenge(&same_realm) {
                answers.push(self.respond(
                    &c,
                    &request.method,
                    &request.uri,
                    creds,
                    &request.body,
                )?);
            }
        }
        if answers.is_empty() {
            return Err(AuthError::NoUsableChallenge);
        }
        let kept: Vec<String> = request
            .headers
            .get_all(credentials_name)
            .filter(|v| Credentials::parse(v).map_or(true, |c| !realms.contains(&c.realm)))
            .map(str::to_string)
            .collect();
        request.headers.remove(credentials_name);
        for v in kept.into_iter().chain(answers) {
            request.headers.push(credentials_name, v);
        }
        request.headers.set("CSeq", format!("{next_cseq} {method}"));
        with_new_branch(request);
        Ok(())
    }
}

/// [`DigestClient::authorize_request`] with a fresh client, for a request
/// answered once (the usual INVITE case).
pub fn authorize_request(
    request: &mut Request,
    response: &Response,
    creds: &UserCredentials,
) -> Result<(), AuthError> {
    DigestClient::new().authorize_request(request, response, creds)
}

/// Gives the top Via a new branch, so a re-sent request (after a 401/407, or
/// any retry) is a new transaction (RFC 3261 §8.1.1.7). Via lines are
/// rewritten as one comma-separated line, which means the same. Returns
/// false if there is no parseable top Via.
pub fn with_new_branch(request: &mut Request) -> bool {
    let vias: Vec<String> = request.headers.vias().map(str::to_string).collect();
    let Some(mut top) = vias.first().and_then(|v| Via::parse(v)) else {
        return false;
    };
    let branch = generate_branch();
    match top
        .params
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("branch"))
    {
        Some(p) => p.1 = Some(branch.clone()),
        None => top.params.push(("branch".into(), Some(branch.clone()))),
    }
    top.branch = Some(branch);
    let mut line = top.to_string();
    for rest in vias.iter().skip(1) {
        line.push_str(", ");
        line.push_str(rest);
    }
    request.headers.set("Via", line);
    true
}
