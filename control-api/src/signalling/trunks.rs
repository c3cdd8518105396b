//! Trunk health: an OPTIONS ping to each configured trunk every
//! `options_interval_secs`, the way SIP load balancers (Kamailio's
//! dispatcher) keep their destination sets. Any answer but a 5xx means the
//! trunk is there (a 404 or 405 to OPTIONS still proves a live SIP stack);
//! [`TRUNK_DOWN_AFTER`] pings in a row that time out or get a 5xx mark it
//! down. State changes are logged and exported as `switchboard_trunk_up`.

use super::{ClientPurpose, Signalling};
use crate::config::{TrunkConfig, TRUNK_DOWN_AFTER};
use sip_stack::message::{generate_call_id, generate_tag, Method, Request};
use sip_stack::transaction::ClientTxId;
use sip_stack::transport::Peer;
use std::time::{Duration, Instant};
use tracing::{info, warn};

pub(super) struct TrunkMonitor {
    trunks: Vec<Trunk>,
}

struct Trunk {
    name: String,
    target: Peer,
    uri: String,
    interval: Duration,
    next_ping: Instant,
    /// Unknown until the first ping is answered or fails.
    up: Option<bool>,
    failures: u32,
    in_flight: Option<ClientTxId>,
}

impl TrunkMonitor {
    pub(super) fn new(config: &[TrunkConfig]) -> TrunkMonitor {
        let now = Instant::now();
        let trunks = config
            .iter()
            .filter(|t| t.options_interval_secs > 0)
            .filter_map(|t| {
                let target = t.target()?;
                let uri = if t.address.trim().to_ascii_lowercase().starts_with("sip") {
                    t.address.trim().to_owned()
                } else {
                    format!("sip:{}", target.addr)
                };
                Some(Trunk {
                    name: t.name.clone(),
                    target,
                    uri,
                    interval: Duration::from_secs(t.options_interval_secs),
                    next_ping: now,
                    up: None,
                    failures: 0,
                    in_flight: None,
                })
            })
            .collect();
        TrunkMonitor { trunks }
    }
}

impl TrunkMonitor {
    /// Whether pings found the trunk down (unknown counts as up: a trunk
    /// is tried until pings say otherwise, or when it is not pinged).
    pub(super) fn is_down(&self, name: &str) -> bool {
        self.trunks
            .iter()
            .any(|t| t.name == name && t.up == Some(false))
    }
}

impl Signalling {
    /// Sends the pings that are due (called once a second).
    pub(super) fn ping_trunks(&mut self, now: Instant) {
        for i in 0..self.trunks.trunks.len() {
            let trunk = &self.trunks.trunks[i];
            if trunk.in_flight.is_some() || now < trunk.next_ping {
                continue;
            }
            let (target, uri, name) = (trunk.target, trunk.uri.clone(), trunk.name.clone());
            let request = self.options_request(&uri, target);
            let tx = self.endpoint.send_request(now, request, target);
            self.client_txs
                .insert(tx, (name, ClientPurpose::TrunkPing(i)));
            let trunk = &mut self.trunks.trunks[i];
            trunk.in_flight = Some(tx);
            trunk.next_ping = now + trunk.interval;
        }
    }

    fn options_request(&self, uri: &str, target: Peer) -> Request {
        let mut req = Request::new(Method::Options, uri.to_owned());
        let sent_by = self.me.sent_by(target.transport);
        let h = &mut req.headers;
        h.push("Via", self.me.via(target.transport));
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!("<sip:switchboard@{sent_by}>;tag={}", generate_tag()),
        );
        h.push("To", format!("<{uri}>"));
        h.push("Call-ID", generate_call_id(self.me.host()));
        h.push("CSeq", "1 OPTIONS");
        h.push("Accept", "application/sdp");
        req
    }

    /// A ping's final answer (`Some(status)`) or its timeout (`None`).
    pub(super) fn on_trunk_ping(&mut self, tx: ClientTxId, index: usize, status: Option<u16>) {
        if status.is_some_and(|s| s < 200) {
            return; // provisional: wait for the final answer
        }
        self.client_txs.remove(&tx);
        let Some(trunk) = self.trunks.trunks.get_mut(index) else {
            return;
        };
        if trunk.in_flight != Some(tx) {
            return;
        }
        trunk.in_flight = None;
        let alive = status.is_some_and(|s| !(500..600).contains(&s));
        let before = trunk.up;
        if alive {
            trunk.failures = 0;
            trunk.up = Some(true);
        } else {
            trunk.failures += 1;
            if trunk.failures >= TRUNK_DOWN_AFTER {
                trunk.up = Some(false);
            }
        }
        if trunk.up != before {
            match trunk.up {
                Some(true) => info!(trunk = %trunk.name, target = %trunk.target, "trunk up"),
                _ => {
                    warn!(trunk = %trunk.name, target = %trunk.target, ?status, failures = trunk.failures, "trunk down")
                }
            }
        }
        if let Some(up) = trunk.up {
            metrics::gauge!("switchboard_trunk_up", "trunk" => trunk.name.clone()).set(if up {
                1.0
            } else {
                0.0
            });
        }
    }
}
