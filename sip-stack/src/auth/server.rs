//! The challenging side: stateless nonces, verification, replay protection.
//!
//! ## Nonces
//!
//! A nonce is 64 lowercase hex digits: `ts` (16, seconds since the Unix
//! epoch), `salt` (16, random, so two challenges in the same second differ
//! and their nc counters don't collide) and `mac` (32):
//!
//! ```text
//! mac = first 128 bits of SHA-256(secret ":" ts ":" salt ":" realm ":" algorithm ":" secret)
//! ```
//!
//! No HMAC crate: the secret is hashed at both ends and the output is
//! truncated, so SHA-256 length extension (which needs the full state and
//! works only on a secret prefix) has nothing to extend. SHA-256 is used for
//! every nonce, MD5 challenges included, so MD5's weakness never reaches the
//! MAC. Binding the realm and algorithm stops a nonce issued for one being
//! replayed under the other. Any node with the same secret verifies any
//! node's nonces, which is what running behind a SIP load balancer needs.
//!
//! ## Replay
//!
//! With `qop=auth` each request carries `nc`, which must grow per nonce. A
//! bounded map remembers the highest `nc` per nonce; expired entries are
//! dropped first and, when full, the oldest is evicted. A nonce not in the
//! map that is not newer than the newest evicted one is answered `Stale`
//! rather than trusted, so eviction can never re-open a replay.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;

use super::digest::{constant_time_eq, response, sha256, to_hex, ResponseInput};
use super::header::{AuthLimits, Challenge, Credentials};
use super::{Algorithm, AuthError, Qop, Secret};
use crate::message::Method;

/// What a [`DigestServer`] offers and how long its nonces live.
#[derive(Clone)]
pub struct DigestServerConfig {
    pub realm: String,
    /// Offered in this order, one challenge header each. Default SHA-256
    /// then MD5 (RFC 8760 §2.4): old PBXs only read the MD5 one.
    pub algorithms: Vec<Algorithm>,
    pub nonce_lifetime: Duration,
    /// Keys the nonce MAC. Share it across nodes; rotating it turns every
    /// outstanding nonce into a 401 (not a stale one).
    pub secret: Vec<u8>,
    /// Bound on the replay map (entries are about 100 bytes).
    pub max_tracked_nonces: usize,
    pub limits: AuthLimits,
}

impl DigestServerConfig {
    pub fn new(realm: impl Into<String>, secret: Vec<u8>) -> Self {
        DigestServerConfig {
            realm: realm.into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            secret,
            max_tracked_nonces: 65_536,
            limits: AuthLimits::default(),
        }
    }
}

/// The outcome of [`DigestServer::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The response is right: this user is who they say.
    Ok { username: String },
    /// The response was right but the nonce expired (or may have been
    /// used already and forgotten): re-challenge with `stale = true`, and
    /// the client retries without asking the user again.
    Stale,
    /// Answer 401/407 with a fresh challenge, and count it.
    Unauthorized(Unauthorized),
}

/// Why credentials were refused: for logs and metrics, never for the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unauthorized {
    Malformed(AuthError),
    WrongRealm,
    /// Algorithm or qop we did not offer (including RFC 2069's no-qop:
    /// without `nc` a captured request can be replayed until the nonce expires).
    NotOffered,
    /// Not one of ours, or forged.
    BadNonce,
    /// The lookup knows no such user, or has no HA1 for this algorithm.
    UnknownUser,
    WrongResponse,
    /// The digest-uri is not the Request-URI (a response captured for another request).
    UriMismatch,
    /// `nc` not above the highest seen for this nonce.
    Replay,
}

/// A digest challenger and verifier for one realm. Sans-IO: the caller
/// passes the time and does the sending.
pub struct DigestServer {
    config: DigestServerConfig,
    seen: NonceCounts,
}

impl DigestServer {
    pub fn new(config: DigestServerConfig) -> Self {
        DigestServer {
            seen: NonceCounts::new(config.max_tracked_nonces),
            config,
        }
    }

    pub fn config(&self) -> &DigestServerConfig {
        &self.config
    }

    /// One header value per configured algorithm, in preference order; put
    /// each in its own `WWW-Authenticate` (401) or `Proxy-Authenticate` (407).
    pub fn challenge(&self, now: SystemTime, stale: bool) -> Vec<String> {
        let ts = unix_secs(now);
        self.config
            .algorithms
            .iter()
            .map(|&algorithm| {
                let salt: u64 = rand::rng().random();
                let ts_salt = format!("{ts:016x}{salt:016x}");
                Challenge {
                    realm: self.config.realm.clone(),
                    nonce: format!("{ts_salt}{}", self.mac(&ts_salt, algorithm)),
                    opaque: None,
                    algorithm,
                    qop: vec![Qop::Auth],
                    unknown_qop: false,
                    stale,
                }
                .to_string()
            })
            .collect()
    }

    /// Checks `credentials` (the Authorization/Proxy-Authorization value) for
    /// a request with this method and Request-URI. `lookup(username, realm)`
    /// finds the user's secret; it is only called once the nonce is proven ours.
    ///
    /// On `Unauthorized`, answer with a fresh [`DigestServer::challenge`]
    /// (`stale = false`); on `Stale`, with `stale = true`.
    pub fn verify(
        &mut self,
        method: &Method,
        request_uri: &str,
        credentials: &str,
        lookup: impl Fn(&str, &str) -> Option<Secret>,
        now: SystemTime,
    ) -> Verdict {
        match self.check(method, request_uri, credentials, lookup, now) {
            Ok(v) => v,
            Err(why) => Verdict::Unauthorized(why),
        }
    }

    fn check(
        &mut self,
        method: &Method,
        request_uri: &str,
        credentials: &str,
        lookup: impl Fn(&str, &str) -> Option<Secret>,
        now: SystemTime,
    ) -> Result<Verdict, Unauthorized> {
        let creds = Credentials::parse_bytes(credentials.as_bytes(), &self.config.limits)
            .map_err(Unauthorized::Malformed)?;
        if creds.realm != self.config.realm {
            return Err(Unauthorized::WrongRealm);
        }
        let (nc, cnonce) = match &creds.qop {
            Some((Qop::Auth, nc, cnonce)) if self.config.algorithms.contains(&creds.algorithm) => {
                (*nc, cnonce)
            }
            _ => return Err(Unauthorized::NotOffered),
        };
        let issued = self
            .nonce_issued(&creds.nonce, creds.algorithm)
            .ok_or(Unauthorized::BadNonce)?;
        // An unknown user costs the same hashing as a wrong password, so
        // response times don't tell which usernames exist.
        let found = lookup(&creds.username, &creds.realm);
        let known = found.is_some();
        let secret = found.unwrap_or_else(|| Secret::Password(String::new()));
        let nc_hex = format!("{nc:08x}");
        let input = ResponseInput {
            algorithm: creds.algorithm,
            username: &creds.username,
            realm: &creds.realm,
            nonce: &creds.nonce,
            method: method.as_str(),
            uri: &creds.uri,
            qop: Some((Qop::Auth, &nc_hex, cnonce)),
            body: &[],
        };
        let expected = response(&input, &secret).ok_or(Unauthorized::UnknownUser)?;
        let matches = constant_time_eq(expected.as_bytes(), creds.response.as_bytes());
        if !known {
            return Err(Unauthorized::UnknownUser);
        }
        if !matches {
            return Err(Unauthorized::WrongResponse);
        }
        if !same_target(&creds.uri, request_uri) {
            return Err(Unauthorized::UriMismatch);
        }
        let now_secs = unix_secs(now);
        let lifetime = self.config.nonce_lifetime.as_secs();
        // A nonce from the future beyond one lifetime is a clock gone wrong
        // on some node; refusing it bounds how long any nonce can live.
        if issued > now_secs.saturating_add(lifetime) {
            return Err(Unauthorized::BadNonce);
        }
        if now_secs.saturating_sub(issued) > lifetime {
            return Ok(Verdict::Stale);
        }
        match self
            .seen
            .record(&creds.nonce, issued, nc, now_secs.saturating_sub(lifetime))
        {
            Record::Fresh => Ok(Verdict::Ok {
                username: creds.username,
            }),
            Record::Replay => Err(Unauthorized::Replay),
            Record::Forgotten => Ok(Verdict::Stale),
        }
    }

    fn mac(&self, ts_salt: &str, algorithm: Algorithm) -> String {
        let mut data = Vec::with_capacity(2 * self.config.secret.len() + 80);
        data.extend_from_slice(&self.config.secret);
        for part in [
            &ts_salt[..16],
            &ts_salt[16..],
            &self.config.realm,
            algorithm.as_str(),
        ] {
            data.push(b':');
            data.extend_from_slice(part.as_bytes());
        }
        data.push(b':');
        data.extend_from_slice(&self.config.secret);
        to_hex(&sha256(&data)[..16])
    }

    /// The issue time if `nonce` is one of ours for `algorithm`.
    fn nonce_issued(&self, nonce: &str, algorithm: Algorithm) -> Option<u64> {
        let b = nonce.as_bytes();
        if b.len() != 64 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let expected = self.mac(&nonce[..32], algorithm);
        if !constant_time_eq(expected.as_bytes(), &b[32..]) {
            return None;
        }
        u64::from_str_radix(&nonce[..16], 16).ok()
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

enum Record {
    Fresh,
    Replay,
    /// Possibly seen before and evicted: can't tell, so don't trust it.
    Forgotten,
}

/// nonce → highest nc, bounded. `order` holds (nonce, issue time) in
/// first-use order for eviction.
struct NonceCounts {
    max: usize,
    highest: HashMap<String, u32>,
    order: VecDeque<(String, u64)>,
    /// Newest issue time among evicted entries.
    evicted_up_to: Option<u64>,
}

impl NonceCounts {
    fn new(max: usize) -> Self {
        NonceCounts {
            max: max.max(1),
            highest: HashMap::new(),
            order: VecDeque::new(),
            evicted_up_to: None,
        }
    }

    /// `expired_before`: issue times at or before it are past their lifetime
    /// and can be forgotten without risk (verify answers them Stale anyway).
    fn record(&mut self, nonce: &str, issued: u64, nc: u32, expired_before: u64) -> Record {
        if let Some(h) = self.highest.get_mut(nonce) {
            if nc <= *h {
                return Record::Replay;
            }
            *h = nc;
            return Record::Fresh;
        }
        if self.evicted_up_to.is_some_and(|e| issued <= e) {
            return Record::Forgotten;
        }
        // Drop expired entries from the front (roughly oldest first).
        while self
            .order
            .front()
            .is_some_and(|(_, ts)| *ts < expired_before)
        {
            if let Some((n, _)) = self.order.pop_front() {
                self.highest.remove(&n);
            }
        }
        while self.order.len() >= self.max {
            if let Some((n, ts)) = self.order.pop_front() {
                self.highest.remove(&n);
                if ts >= expired_before {
                    self.evicted_up_to = Some(self.evicted_up_to.map_or(ts, |e| e.max(ts)));
                }
            }
        }
        self.highest.insert(nonce.to_string(), nc);
        self.order.push_back((nonce.to_string(), issued));
        Record::Fresh
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.highest.len()
    }
}

#[cfg(test)]
impl DigestServer {
    pub(crate) fn tracked_nonces(&self) -> usize {
        self.seen.len()
    }
}

/// Whether the digest-uri names the request's target (RFC 3261 §22.4 asks
/// for the Request-URI). Several UAs (SIPp among them) put only the host
/// there, `sip:host:port`, leaving out the user part: accepted when scheme
/// and host:port are the same, since the response still binds the nonce,
/// method and that host, and nc replay protection still applies.
fn same_target(digest_uri: &str, request_uri: &str) -> bool {
    fn host_part(uri: &str) -> Option<(String, String)> {
        let (scheme, rest) = uri.split_once(':')?;
        let rest = rest.split([';', '?']).next()?;
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
    }
    let host_only = !digest_uri.contains('@');
    digest_uri == request_uri
        || (host_only
            && matches!((host_part(digest_uri), host_part(request_uri)), (Some(a), Some(b)) if a == b))
}

#[cfg(test)]
mod same_target_tests {
    use super::same_target;

    #[test]
    fn host_only_digest_uri_matches_its_host_and_nothing_else() {
        assert!(same_target("sip:bob@example.com", "sip:bob@example.com"));
        assert!(same_target(
            "sip:127.0.0.1:5060",
            "sip:agent@127.0.0.1:5060"
        ));
        assert!(same_target(
            "sip:127.0.0.1:5060",
            "sip:agent@127.0.0.1:5060;transport=udp"
        ));
        assert!(!same_target(
            "sip:127.0.0.1:5061",
            "sip:agent@127.0.0.1:5060"
        ));
        assert!(!same_target("sip:evil.example", "sip:agent@127.0.0.1:5060"));
        assert!(!same_target(
            "sips:127.0.0.1:5060",
            "sip:agent@127.0.0.1:5060"
        ));
        assert!(!same_target(
            "sip:other@127.0.0.1:5060",
            "sip:agent@127.0.0.1:5060"
        ));
    }
}
