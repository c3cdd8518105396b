//! Where an inbound call goes: the `[[routes]]` table matched on the
//! dialled number (the Request-URI user, the DID), then `routing.bridge_to`,
//! else the engine answers the call itself.
//!
//! Pure and synchronous: the signalling task asks [`Router::route`] once
//! per INVITE and gets the ordered list of destinations to try. Which of
//! them are up (OPTIONS pings) is the caller's business, so this module can
//! be tested without a network.

use crate::config::{Config, TrunkConfig};
use sip_stack::transport::Peer;

/// One place a call can be bridged to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// The `[[trunks]]` entry, if the destination is one.
    pub trunk: Option<String>,
    pub target: Peer,
    /// The destination was given as a `sips:` URI.
    pub sips: bool,
}

/// What to do with an inbound call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The engine answers it (prompt, recording, taps).
    Answer,
    /// Bridge to the first destination that is up and answers; the
    /// others are tried in order when one fails (no answer, 408, 5xx).
    Bridge(Vec<Destination>),
}

/// A DID pattern: exact, a prefix (`+1555*`), or `*` for every call.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn parse(did: &str) -> Option<Pattern> {
        let did = did.trim();
        match did.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => Some(Pattern::Prefix(prefix.to_owned())),
            Some(_) => None,
            None if !did.is_empty() && !did.contains('*') => Some(Pattern::Exact(did.to_owned())),
            None => None,
        }
    }

    fn matches(&self, user: &str) -> bool {
        match self {
            Pattern::Exact(did) => user == did,
            Pattern::Prefix(prefix) => user.starts_with(prefix.as_str()),
        }
    }
}

/// The routing table, built once from the config.
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<(Pattern, Route)>,
    fallback: Route,
}

impl Router {
    /// From a validated config (`Config::validate` checks what this trusts).
    pub fn new(config: &Config) -> Router {
        let trunk = |name: &str| config.trunks.iter().find(|t| t.name == name);
        let routes = config
            .routes
            .iter()
            .filter_map(|r| {
                let pattern = Pattern::parse(&r.did)?;
                let route = if r.trunks.is_empty() {
                    Route::Answer
                } else {
                    let destinations = r
                        .trunks
                        .iter()
                        .filter_map(|name| trunk(name).and_then(trunk_destination))
                        .collect();
                    Route::Bridge(destinations)
                };
                Some((pattern, route))
            })
            .collect();
        let fallback = match config.routing.bridge_target() {
            Some(target) => Route::Bridge(vec![Destination {
                trunk: None,
                target,
                sips: is_sips(config.routing.bridge_to.trim()),
            }]),
            None => Route::Answer,
        };
        Router { routes, fallback }
    }

    /// The first route whose DID matches `user`, else the fallback.
    pub fn route(&self, user: &str) -> &Route {
        self.routes
            .iter()
            .find(|(pattern, _)| pattern.matches(user))
            .map_or(&self.fallback, |(_, route)| route)
    }
}

fn trunk_destination(trunk: &TrunkConfig) -> Option<Destination> {
    Some(Destination {
        trunk: Some(trunk.name.clone()),
        target: trunk.target()?,
        sips: is_sips(trunk.address.trim()),
    })
}

fn is_sips(uri: &str) -> bool {
    uri.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

/// Whether `did` is a pattern [`Router`] understands (for config checks).
pub fn valid_did(did: &str) -> bool {
    Pattern::parse(did).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RouteConfig, RoutingConfig};
    use sip_stack::transport::TransportKind;

    fn config() -> Config {
        let trunk = |name: &str, address: &str| TrunkConfig {
            name: name.into(),
            address: address.into(),
            ..TrunkConfig::default()
        };
        let route = |did: &str, trunks: &[&str]| RouteConfig {
            did: did.into(),
            trunks: trunks.iter().map(|t| t.to_string()).collect(),
        };
        Config {
            trunks: vec![
                trunk("a", "192.0.2.1:5060"),
                trunk("b", "sips:192.0.2.2:5061"),
            ],
            routes: vec![
                route("+15551230000", &["a"]),
                route("+1555*", &["b", "a"]),
                route("ivr", &[]),
            ],
            routing: RoutingConfig {
                bridge_to: "sip:192.0.2.9:5070;transport=tcp".into(),
                ..RoutingConfig::default()
            },
            ..Config::default()
        }
    }

    fn trunks(route: &Route) -> Vec<&str> {
        match route {
            Route::Bridge(d) => d.iter().filter_map(|d| d.trunk.as_deref()).collect(),
            Route::Answer => vec!["<answer>"],
        }
    }

    #[test]
    fn the_first_matching_route_wins() {
        let router = Router::new(&config());
        assert_eq!(trunks(router.route("+15551230000")), ["a"]);
        assert_eq!(trunks(router.route("+15559999999")), ["b", "a"]);
        assert_eq!(trunks(router.route("ivr")), ["<answer>"]);
        assert_eq!(trunks(router.route("ivr2")), Vec::<&str>::new());
    }

    #[test]
    fn unmatched_calls_go_to_bridge_to_or_are_answered() {
        let router = Router::new(&config());
        let Route::Bridge(d) = router.route("+4420") else {
            panic!("bridge_to is the fallback")
        };
        assert_eq!(d[0].target.transport, TransportKind::Tcp);
        assert_eq!(d[0].trunk, None);
        let mut c = config();
        c.routing.bridge_to.clear();
        assert_eq!(Router::new(&c).route("+4420"), &Route::Answer);
    }

    #[test]
    fn sips_trunks_are_marked() {
        let router = Router::new(&config());
        let Route::Bridge(d) = router.route("+15550000000") else {
            panic!()
        };
        assert!(d[0].sips && d[0].target.transport == TransportKind::Tls);
        assert!(!d[1].sips);
    }

    #[test]
    fn did_patterns() {
        assert!(valid_did("+15551234"));
        assert!(valid_did("+1555*"));
        assert!(valid_did("*"));
        assert!(!valid_did(""));
        assert!(!valid_did("1*2"));
        assert!(!valid_did("**"));
        assert!(Pattern::parse("*").unwrap().matches("anything"));
        assert!(!Pattern::parse("100").unwrap().matches("1000"));
    }
}
