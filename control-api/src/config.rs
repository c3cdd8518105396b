//! `switchboard.toml` and its environment overrides.
//!
//! Every key has an embedded default, so the engine runs with no file at all.
//! Any key can be overridden as `SWITCHBOARD_<SECTION>__<KEY>`, e.g.
//! `SWITCHBOARD_SIP__PORT=5070`. All listeners bind `server.listen_ip`
//! (loopback by default): exposing the engine is that one key.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use sip_stack::transport::Peer;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The codec names `sip.codecs` may list.
pub const SUPPORTED_CODECS: [&str; 4] = ["OPUS", "G722", "PCMU", "PCMA"];

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub sip: SipConfig,
    pub media: MediaSection,
    pub recording: RecordingConfig,
    pub asr: AsrConfig,
    pub routing: RoutingConfig,
    pub grpc: GrpcConfig,
    pub http: HttpConfig,
    /// Carriers and PBXs peering with the engine (`[[trunks]]` tables).
    pub trunks: Vec<TrunkConfig>,
    /// Inbound routes by dialled number (`[[routes]]` tables), first match
    /// wins; calls no route matches go to `routing.bridge_to`, else the
    /// engine answers them.
    pub routes: Vec<RouteConfig>,
}

/// One inbound route: calls to `did` go to `trunks`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// The dialled number (Request-URI user): exact (`+15551234567`), a
    /// prefix ending in `*` (`+1555*`), or `*` for every call.
    pub did: String,
    /// `[[trunks]]` names tried in order: trunks that OPTIONS pings found
    /// down are skipped, and a trunk that fails the call (no answer, 408,
    /// 5xx) passes it to the next. Empty: the engine answers the call.
    pub trunks: Vec<String>,
}

/// One SIP trunk: where it is, whether it is pinged, who may call from it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkConfig {
    /// Names the trunk in logs and the `switchboard_trunk_up` metric.
    pub name: String,
    /// `ip:port` (UDP) or a SIP URI with an IP host
    /// (`sip:192.0.2.1:5060;transport=tcp`, `sips:`); no DNS lookups yet.
    pub address: String,
    /// Seconds between OPTIONS pings (0: never pinged). A trunk is up after
    /// an answer and down after [`TRUNK_DOWN_AFTER`] pings in a row go
    /// unanswered or get a 5xx.
    pub options_interval_secs: u64,
    /// CIDR networks the trunk calls from: trusted like
    /// `sip.trusted_networks` (no digest challenge).
    pub allowed_sources: Vec<String>,
    /// Codec preference for calls from this trunk (its `allowed_sources`);
    /// empty: `sip.codecs`. Calls bridged to the trunk offer the caller's
    /// codec if it is listed here (or the list is empty), else the first
    /// listed, and the bridge transcodes.
    pub codecs: Vec<String>,
    /// Digest credentials for this trunk's challenges when the engine
    /// calls it (401/407), and the user it registers as.
    pub username: String,
    pub password: String,
    /// Keep a REGISTER binding with this trunk (`sip:username@trunk-ip`),
    /// refreshed before it expires, retried with back-off when it fails.
    pub register: bool,
    /// Expiry asked for in REGISTER, seconds (the registrar may grant less).
    pub register_expires_secs: u32,
    /// SDES-SRTP for calls from and to this trunk; unset: `sip.srtp`.
    /// `mandatory` needs a TLS `address` (SDES keys travel in the SDP).
    pub srtp: Option<SrtpMode>,
}

/// Whether media is SRTP-protected (SDES, RFC 4568), per trunk or for
/// everything else (`sip.srtp`).
///
/// Inbound: `off` answers only RTP/AVP (an RTP/SAVP-only offer gets 488);
/// `optional` answers an offer with a usable `a=crypto` with SRTP (RTP/SAVP,
/// or RTP/AVP with crypto) and a plain one with plain RTP; `mandatory`
/// answers 488 to an offer without usable crypto. Outbound: `optional`
/// offers RTP/AVP with an `a=crypto` line (best effort: a peer without SDES
/// ignores it and answers plain), `mandatory` offers RTP/SAVP.
///
/// Keys only ever travel over TLS: over UDP/TCP signalling SRTP is
/// neither answered nor offered (so `optional` means plain RTP there and
/// `mandatory` refuses the call with 488) unless `sip.srtp_over_cleartext`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SrtpMode {
    Off,
    #[default]
    Optional,
    Mandatory,
}

/// Failed OPTIONS pings in a row that mark a trunk down.
pub const TRUNK_DOWN_AFTER: u32 = 2;

impl Default for TrunkConfig {
    fn default() -> Self {
        TrunkConfig {
            name: String::new(),
            address: String::new(),
            options_interval_secs: 30,
            allowed_sources: Vec::new(),
            codecs: Vec::new(),
            username: String::new(),
            password: String::new(),
            register: false,
            register_expires_secs: 3600,
            srtp: None,
        }
    }
}

impl TrunkConfig {
    pub fn target(&self) -> Option<Peer> {
        parse_target(&self.address)
    }
}

/// A SIP destination: `ip:port` (UDP) or a `sip:`/`sips:` URI.
fn parse_target(target: &str) -> Option<Peer> {
    let target = target.trim();
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return Some(Peer::udp(addr));
    }
    let lower = target.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
        return None;
    }
    sip_stack::dialog::request_target(target)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The address every listener (SIP, HTTP, gRPC, RTP) binds.
    pub listen_ip: IpAddr,
    /// Seconds that shutdown waits for BYE transactions and recordings.
    pub shutdown_grace_secs: u64,
    /// `tracing` filter, e.g. "info" or "switchboard=debug,info".
    pub log: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// The UDP port (0: ephemeral).
    pub port: u16,
    /// The TCP port; unset, the same number as `port` (SIP shares 5060
    /// between UDP and TCP); 0: ephemeral.
    pub tcp_port: Option<u16>,
    /// Set false to run without a TLS listener.
    pub tls_enabled: bool,
    /// The TLS port (0: ephemeral).
    pub tls_port: u16,
    /// PEM certificate chain and key for TLS. Both empty: a self-signed
    /// certificate is generated at start, but only when `server.listen_ip`
    /// is loopback; elsewhere the engine refuses to start TLS without them.
    pub tls_cert: String,
    pub tls_key: String,
    /// PEM CA certificates trusted when the engine opens TLS connections
    /// (bridging out); empty: the system bundle.
    pub tls_ca: String,
    /// Seconds without traffic (keep-alive pings count) before a TCP/TLS
    /// connection is closed.
    pub tcp_idle_secs: u64,
    /// TCP and TLS connections held at most; new ones beyond it are closed.
    pub max_connections: usize,
    /// Host (or host:port) written into Via/Contact; the listen address when empty.
    pub advertised_address: String,
    /// Largest SIP message accepted, in bytes; larger ones are dropped.
    pub max_message_bytes: usize,
    /// Concurrent calls; INVITEs beyond it get 503 with Retry-After.
    pub max_calls: usize,
    /// Live SIP transactions kept at most (bounds memory under floods).
    pub max_transactions: usize,
    /// Codecs offered/accepted in preference order: any of
    /// [`SUPPORTED_CODECS`] (case-insensitive). Opus first by default,
    /// then wideband G.722: speech recognition and agents hear the
    /// difference, and Opus (48 kHz, in-band FEC) also survives loss best.
    /// A peer that offers neither gets G.711.
    pub codecs: Vec<String>,
    /// New INVITEs a second from one source IP (0: no limit); beyond it, 503.
    pub invite_rate_per_source: f64,
    /// INVITEs one source may send in a burst before the rate applies.
    pub invite_burst_per_source: u32,
    /// Requests whose User-Agent contains one of these are dropped unanswered.
    pub blocked_user_agents: Vec<String>,
    /// Sources (CIDR) that may call without authenticating: trunks, the SBC.
    /// Every other INVITE gets a digest challenge (RFC 3261 §22).
    pub trusted_networks: Vec<String>,
    /// Who may call from elsewhere, with digest credentials.
    pub users: Vec<SipUser>,
    /// Realm of our challenges.
    pub auth_realm: String,
    /// Digest algorithms offered, strongest first ("SHA-256", "MD5", "-sess" forms).
    pub auth_algorithms: Vec<String>,
    /// Keys the nonces; share it across nodes behind one load balancer.
    /// Empty: random per process (nonces then die with it).
    pub auth_secret: String,
    /// RFC 3261 T1 (RTT estimate) in ms: retransmission and timeout timers
    /// scale from it (a 2xx is resent from T1 on; no ACK by 64·T1 ends the call).
    pub timer_t1_ms: u64,
    /// Session timer (RFC 4028) interval asked of callers that support
    /// timers but name none, in seconds.
    pub session_expires_secs: u32,
    /// The shortest session interval accepted (Min-SE); shorter requests
    /// get 422. RFC 4028 puts the floor at 90 s; lower values are for tests.
    pub session_min_se_secs: u32,
    /// SDES-SRTP for calls that come from or go to no trunk (see
    /// [`SrtpMode`]); a trunk's own `srtp` overrides it. `optional`: SRTP
    /// when a TLS caller offers it.
    pub srtp: SrtpMode,
    /// Allow SDES keys over UDP/TCP signalling, where anyone on the path
    /// reads them from the SDP (and so decrypts the media). Off: SRTP is
    /// negotiated only over TLS.
    pub srtp_over_cleartext: bool,
}

/// A digest user: a password, or its HA1 (`MD5(user:realm:password)` /
/// `SHA-256(...)`) so the config need not hold passwords.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipUser {
    pub username: String,
    pub password: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSection {
    /// Media worker threads; 0 means one per core.
    pub workers: usize,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Jitter buffer delay to start with (adaptive) or the fixed delay.
    pub jitter_delay_ms: u32,
    /// Adapt the jitter buffer delay to the network (and sender clock drift).
    pub jitter_adaptive: bool,
    /// Bounds of the adaptive delay.
    pub jitter_min_delay_ms: u32,
    pub jitter_max_delay_ms: u32,
    /// What callers hear: a WAV file to loop; a tone when empty.
    pub prompt_wav: String,
    pub prompt_tone_hz: f32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    pub enabled: bool,
    /// Where stereo WAVs go (left: caller, right: engine), one per call.
    pub dir: PathBuf,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AsrConfig {
    /// Audio fork WebSocket URL (`ws://…`); no audio leaves the engine when empty.
    pub fork_url: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// A SIP peer (agent platform, PBX) to bridge every inbound call to,
    /// keeping the Request-URI user: `ip:port` (UDP), or a SIP URI with an
    /// IP host, `sip:10.0.0.5:5060;transport=tcp`, `;transport=tls`, or
    /// `sips:10.0.0.5:5061`. Empty: the engine answers calls itself and
    /// plays the prompt.
    pub bridge_to: String,
    /// Credentials for the target's digest challenges (401/407), if it asks.
    pub bridge_username: String,
    pub bridge_password: String,
}

impl RoutingConfig {
    /// The bridge target, if routing is configured (checked by `validate`).
    pub fn bridge_target(&self) -> Option<Peer> {
        parse_target(&self.bridge_to)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    pub port: u16,
    /// Bearer token required on every call when set; mandatory off loopback.
    pub auth_token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub port: u16,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            shutdown_grace_secs: 5,
            log: "info".into(),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            port: 5060,
            tcp_port: None,
            tls_enabled: true,
            tls_port: 5061,
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_ca: String::new(),
            tcp_idle_secs: 1800,
            max_connections: 10_000,
            advertised_address: String::new(),
            max_message_bytes: 65_535,
            max_calls: 10_000,
            max_transactions: 50_000,
            codecs: vec!["OPUS".into(), "G722".into(), "PCMU".into(), "PCMA".into()],
            timer_t1_ms: 500,
            session_expires_secs: 1800,
            session_min_se_secs: sip_stack::session_timer::RFC_MIN_SE,
            trusted_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            users: Vec::new(),
            auth_realm: "switchboard".into(),
            auth_algorithms: vec!["SHA-256".into(), "MD5".into()],
            auth_secret: String::new(),
            invite_rate_per_source: 20.0,
            invite_burst_per_source: 40,
            blocked_user_agents: sip_stack::protection::UserAgentFilter::default_signatures(),
            srtp: SrtpMode::Optional,
            srtp_over_cleartext: false,
        }
    }
}

impl Default for MediaSection {
    fn default() -> Self {
        Self {
            workers: 0,
            rtp_port_min: 20_000,
            rtp_port_max: 30_000,
            jitter_delay_ms: 40,
            jitter_adaptive: true,
            jitter_min_delay_ms: 20,
            jitter_max_delay_ms: 200,
            prompt_wav: String::new(),
            prompt_tone_hz: 440.0,
        }
    }
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: PathBuf::from("recordings"),
        }
    }
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            port: 50051,
            auth_token: String::new(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { port: 8080 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// The session timer policy (RFC 4028) from the SIP section.
    pub fn session_timers(&self) -> sip_stack::session_timer::SessionTimerConfig {
        sip_stack::session_timer::SessionTimerConfig {
            min_se: self.sip.session_min_se_secs,
            session_expires: self.sip.session_expires_secs,
        }
    }

    /// Embedded defaults, then the file (if any), then `SWITCHBOARD_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("SWITCHBOARD_")
                .split("__")
                .ignore(&["config"]),
        );
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.media.rtp_port_min >= self.media.rtp_port_max {
            return invalid("media.rtp_port_min must be below media.rtp_port_max");
        }
        if !self.sip.invite_rate_per_source.is_finite() || self.sip.invite_rate_per_source < 0.0 {
            return invalid("sip.invite_rate_per_source must be 0 or more");
        }
        if !(10..=10_000).contains(&self.sip.timer_t1_ms) {
            return invalid("sip.timer_t1_ms must be between 10 and 10000");
        }
        if self.sip.session_min_se_secs < 2
            || self.sip.session_expires_secs < self.sip.session_min_se_secs
        {
            return invalid(
                "sip.session_min_se_secs must be 2 or more and sip.session_expires_secs at least that",
            );
        }
        if let Some(bad) = self
            .sip
            .trusted_networks
            .iter()
            .find(|n| n.parse::<ipnet::IpNet>().is_err())
        {
            return Err(ConfigError::Invalid(format!(
                "sip.trusted_networks: {bad:?} is not a CIDR network (e.g. 10.0.0.0/8)"
            )));
        }
        let mut names = std::collections::HashSet::new();
        for r in &self.routes {
            if !crate::routing::valid_did(&r.did) {
                return Err(ConfigError::Invalid(format!(
                    "route did {:?}: an exact number, a prefix ending in '*', or '*'",
                    r.did
                )));
            }
            if let Some(bad) = r
                .trunks
                .iter()
                .find(|name| !self.trunks.iter().any(|t| &t.name == *name))
            {
                return Err(ConfigError::Invalid(format!(
                    "route {}: no [[trunks]] entry named {bad:?}",
                    r.did
                )));
            }
        }
        for t in &self.trunks {
            if t.name.is_empty() || !names.insert(t.name.as_str()) {
                return invalid("every [[trunks]] needs a unique, non-empty name");
            }
            if t.target().is_none() {
                return Err(ConfigError::Invalid(format!(
                    "trunk {}: address {:?} is not ip:port or a SIP URI",
                    t.name, t.address
                )));
            }
            if let Some(bad) = t
                .allowed_sources
                .iter()
                .find(|n| n.parse::<ipnet::IpNet>().is_err())
            {
                return Err(ConfigError::Invalid(format!(
                    "trunk {}: allowed_sources {bad:?} is not a CIDR network",
                    t.name
                )));
            }
            let tls = t
                .target()
                .is_some_and(|p| p.transport == sip_stack::transport::TransportKind::Tls);
            if t.srtp == Some(SrtpMode::Mandatory) && !tls && !self.sip.srtp_over_cleartext {
                return Err(ConfigError::Invalid(format!(
                    "trunk {}: srtp = \"mandatory\" needs a TLS address (sip:...;transport=tls \
                     or sips:), or sip.srtp_over_cleartext = true",
                    t.name
                )));
            }
            if t.register && (t.username.is_empty() || t.register_expires_secs == 0) {
                return Err(ConfigError::Invalid(format!(
                    "trunk {}: register needs a username and register_expires_secs above 0",
                    t.name
                )));
            }
            if let Some(bad) = t
                .codecs
                .iter()
                .find(|c| !SUPPORTED_CODECS.contains(&c.to_ascii_uppercase().as_str()))
            {
                return Err(ConfigError::Invalid(format!(
                    "trunk {}: codec {bad:?} is not one of {SUPPORTED_CODECS:?}",
                    t.name
                )));
            }
        }
        if let Some(bad) = self
            .sip
            .auth_algorithms
            .iter()
            .find(|a| sip_stack::auth::Algorithm::parse(a).is_none())
        {
            return Err(ConfigError::Invalid(format!(
                "sip.auth_algorithms: unknown algorithm {bad:?}"
            )));
        }
        if self.sip.auth_algorithms.is_empty() {
            return invalid("sip.auth_algorithms must name at least one algorithm");
        }
        if !self.routing.bridge_to.is_empty() && self.routing.bridge_target().is_none() {
            return invalid(
                "routing.bridge_to must be an ip:port or a SIP URI with an IP host \
                 (sip:10.0.0.5:5060;transport=tcp)",
            );
        }
        if self.sip.tls_cert.is_empty() != self.sip.tls_key.is_empty() {
            return invalid("sip.tls_cert and sip.tls_key must be set together");
        }
        if self.sip.tls_enabled
            && self.sip.tls_cert.is_empty()
            && !self.server.listen_ip.is_loopback()
        {
            return invalid(
                "sip.tls_cert and sip.tls_key are required for SIP over TLS when \
                 server.listen_ip is not loopback (a self-signed certificate is only \
                 generated for loopback); set them, or set sip.tls_enabled = false",
            );
        }
        if self.sip.max_connections == 0 || self.sip.tcp_idle_secs == 0 {
            return invalid("sip.max_connections and sip.tcp_idle_secs must be above 0");
        }
        if self.sip.codecs.is_empty() {
            return invalid("sip.codecs must name at least one codec");
        }
        if let Some(unknown) = self
            .sip
            .codecs
            .iter()
            .find(|c| !SUPPORTED_CODECS.iter().any(|k| k.eq_ignore_ascii_case(c)))
        {
            return invalid(&format!(
                "sip.codecs: unknown codec {unknown:?} (supported: {})",
                SUPPORTED_CODECS.join(", ")
            ));
        }
        if !self.server.listen_ip.is_loopback() && self.grpc.auth_token.is_empty() {
            return invalid(
                "grpc.auth_token is required when server.listen_ip is not loopback \
                 (the control plane must not be open to the network)",
            );
        }
        Ok(())
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::new(self.server.listen_ip, self.sip.port)
    }
    pub fn sip_tcp_addr(&self) -> SocketAddr {
        let port = self.sip.tcp_port.unwrap_or(self.sip.port);
        SocketAddr::new(self.server.listen_ip, port)
    }
    /// The TLS listener's address, `None` when TLS is disabled.
    pub fn sip_tls_addr(&self) -> Option<SocketAddr> {
        self.sip
            .tls_enabled
            .then(|| SocketAddr::new(self.server.listen_ip, self.sip.tls_port))
    }
    pub fn grpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.server.listen_ip, self.grpc.port)
    }
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::new(self.server.listen_ip, self.http.port)
    }
}

#[cfg(test)]
// figment's Jail closures return its large error type; that is its API.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use sip_stack::transport::TransportKind;

    #[test]
    fn defaults_listen_on_loopback_and_validate() {
        let c = Config::default();
        assert!(c.server.listen_ip.is_loopback());
        assert_eq!(c.sip_addr().port(), 5060);
        assert_eq!(c.grpc_addr().port(), 50051);
        assert_eq!(c.http_addr().port(), 8080);
        c.validate().unwrap();
    }

    #[test]
    fn file_and_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "sb.toml",
                "[sip]\nport = 5070\n[recording]\nenabled = false\n",
            )?;
            jail.set_env("SWITCHBOARD_SIP__PORT", "5080");
            jail.set_env("SWITCHBOARD_HTTP__PORT", "9090");
            let c = Config::load(Some(Path::new("sb.toml"))).unwrap();
            assert_eq!(c.sip.port, 5080, "environment wins over the file");
            assert_eq!(c.http.port, 9090);
            assert!(!c.recording.enabled, "file wins over defaults");
            Ok(())
        });
    }

    #[test]
    fn srtp_modes_from_files_and_mandatory_trunks_need_tls() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "sb.toml",
                "[sip]\nsrtp = \"off\"\n[[trunks]]\nname = \"a\"\n\
                 address = \"sip:192.0.2.1:5061;transport=tls\"\nsrtp = \"mandatory\"\n",
            )?;
            let c = Config::load(Some(Path::new("sb.toml"))).unwrap();
            assert_eq!(c.sip.srtp, SrtpMode::Off);
            assert_eq!(c.trunks[0].srtp, Some(SrtpMode::Mandatory));
            jail.set_env("SWITCHBOARD_SIP__SRTP", "sometimes");
            assert!(Config::load(Some(Path::new("sb.toml"))).is_err());
            Ok(())
        });
        let mut c = Config::default();
        assert_eq!(
            (c.sip.srtp, c.sip.srtp_over_cleartext),
            (SrtpMode::Optional, false)
        );
        c.trunks.push(TrunkConfig {
            name: "udp".into(),
            address: "192.0.2.1:5060".into(),
            srtp: Some(SrtpMode::Mandatory),
            ..TrunkConfig::default()
        });
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("needs a TLS address"), "{err}");
        c.sip.srtp_over_cleartext = true;
        c.validate().unwrap();
    }

    #[test]
    fn codecs_opus_first_by_default_any_case_unknown_refused() {
        let mut c = Config::default();
        assert_eq!(c.sip.codecs, ["OPUS", "G722", "PCMU", "PCMA"]);
        c.sip.codecs = vec!["opus".into(), "pcmu".into()];
        c.validate().unwrap();
        c.sip.codecs = vec!["OPUS".into(), "speex".into()];
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("speex") && err.contains("OPUS, G722"), "{err}");
    }

    #[test]
    fn public_listener_without_grpc_token_is_refused() {
        let mut c = Config::default();
        c.server.listen_ip = "0.0.0.0".parse().unwrap();
        c.sip.tls_enabled = false;
        assert!(c.validate().is_err());
        c.grpc.auth_token = "secret".into();
        c.validate().unwrap();
    }

    #[test]
    fn sip_ports_default_to_5060_shared_and_5061() {
        let mut c = Config::default();
        assert_eq!(c.sip_tcp_addr().port(), 5060);
        assert_eq!(c.sip_tls_addr().map(|a| a.port()), Some(5061));
        c.sip.port = 5070;
        assert_eq!(c.sip_tcp_addr().port(), 5070, "TCP follows the UDP port");
        c.sip.tcp_port = Some(5080);
        assert_eq!(c.sip_tcp_addr().port(), 5080);
        c.sip.tls_enabled = false;
        assert_eq!(c.sip_tls_addr(), None);
    }

    #[test]
    fn tls_off_loopback_needs_a_certificate() {
        let mut c = Config::default();
        c.server.listen_ip = "0.0.0.0".parse().unwrap();
        c.grpc.auth_token = "secret".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("sip.tls_cert"), "{err}");
        c.sip.tls_cert = "/etc/switchboard/cert.pem".into();
        assert!(c.validate().is_err(), "a key must come with it");
        c.sip.tls_key = "/etc/switchboard/key.pem".into();
        c.validate().unwrap();
        c.sip.tls_cert.clear();
        c.sip.tls_key.clear();
        c.sip.tls_enabled = false;
        c.validate().unwrap();
    }

    #[test]
    fn bridge_targets_name_their_transport() {
        let target = |s: &str| {
            RoutingConfig {
                bridge_to: s.into(),
                ..RoutingConfig::default()
            }
            .bridge_target()
        };
        let peer = |k, a: &str| Some(Peer::new(k, a.parse().unwrap()));
        assert_eq!(
            target("127.0.0.1:5070"),
            peer(TransportKind::Udp, "127.0.0.1:5070")
        );
        assert_eq!(
            target("sip:127.0.0.1:5070;transport=tcp"),
            peer(TransportKind::Tcp, "127.0.0.1:5070")
        );
        assert_eq!(
            target("sip:10.0.0.5;transport=TLS"),
            peer(TransportKind::Tls, "10.0.0.5:5061")
        );
        assert_eq!(
            target("sips:10.0.0.5"),
            peer(TransportKind::Tls, "10.0.0.5:5061")
        );
        assert_eq!(target("pbx.example.com:5060"), None);
        assert_eq!(target("sip:10.0.0.5;transport=sctp"), None);
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("sb.toml", "[sip]\nprot = 5070\n")?;
            assert!(Config::load(Some(Path::new("sb.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn trunks_are_checked() {
        let trunk = |name: &str, address: &str, sources: &[&str]| TrunkConfig {
            name: name.into(),
            address: address.into(),
            allowed_sources: sources.iter().map(|s| s.to_string()).collect(),
            ..TrunkConfig::default()
        };
        let mut c = Config {
            trunks: vec![
                trunk("a", "192.0.2.1:5060", &["192.0.2.0/24"]),
                trunk("b", "sip:192.0.2.9:5061;transport=tls", &[]),
            ],
            ..Config::default()
        };
        assert!(c.validate().is_ok());
        assert_eq!(c.trunks[0].options_interval_secs, 30);
        for bad in [
            vec![
                trunk("a", "192.0.2.1:5060", &[]),
                trunk("a", "192.0.2.2:5060", &[]),
            ],
            vec![trunk("", "192.0.2.1:5060", &[])],
            vec![trunk("c", "192.0.2.1", &[])],
            vec![trunk("e", "sip:pbx.example", &[])],
            vec![trunk("d", "192.0.2.1:5060", &["192.0.2.0"])],
            vec![TrunkConfig {
                codecs: vec!["G729".into()],
                ..trunk("f", "192.0.2.1:5060", &[])
            }],
        ] {
            c.trunks = bad;
            assert!(c.validate().is_err(), "{:?}", c.trunks);
        }
        c.trunks = vec![trunk("a", "192.0.2.1:5060", &[])];
        let route = |did: &str, trunks: &[&str]| RouteConfig {
            did: did.into(),
            trunks: trunks.iter().map(|t| t.to_string()).collect(),
        };
        c.routes = vec![route("+1555*", &["a"]), route("ivr", &[])];
        assert!(c.validate().is_ok());
        for bad in [
            route("1*5", &["a"]),
            route("", &[]),
            route("100", &["nope"]),
        ] {
            c.routes = vec![bad];
            assert!(c.validate().is_err(), "{:?}", c.routes);
        }
    }
}
