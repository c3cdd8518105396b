//! Outbound REGISTER to the trunks that want it (`register = true`): one
//! [`Registration`] per trunk, driven from the signalling loop's clock.
//! State is logged on each change and exported as
//! `switchboard_trunk_registered{trunk}`; shutdown unregisters (Expires: 0,
//! best effort, not waited for).

use super::{ClientPurpose, Signalling};
use crate::config::TrunkConfig;
use sip_stack::auth::UserCredentials;
use sip_stack::registration::{Registration, RegistrationConfig, RegistrationEvent};
use sip_stack::transaction::ClientTxId;
use sip_stack::transport::Peer;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// First retry after a failed registration; doubles up to the maximum.
const MIN_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

pub(super) struct TrunkRegistration {
    trunk: String,
    target: Peer,
    registration: Registration,
    /// What the gauge says now, so changes are logged once.
    registered: bool,
}

impl TrunkRegistration {
    /// For every trunk with `register = true` (validated: it has a username).
    pub(super) fn from_config(
        trunks: &[TrunkConfig],
        me: &super::identity::LocalIdentity,
        now: Instant,
    ) -> Vec<TrunkRegistration> {
        trunks
            .iter()
            .filter(|t| t.register)
            .filter_map(|t| {
                let target = t.target()?;
                let sips = t.address.trim().to_ascii_lowercase().starts_with("sips:");
                let scheme = if sips { "sips" } else { "sip" };
                let registrar = match target.transport {
                    sip_stack::transport::TransportKind::Udp => format!("sip:{}", target.addr),
                    _ if sips => format!("sips:{}", target.addr),
                    kind => format!("sip:{};transport={kind}", target.addr),
                };
                let contact = me.contact(target.transport, sips).replacen(
                    "switchboard@",
                    &format!("{}@", t.username),
                    1,
                );
                let config = RegistrationConfig {
                    registrar,
                    aor: format!("{scheme}:{}@{}", t.username, target.addr.ip()),
                    contact,
                    expires: t.register_expires_secs,
                    credentials: Some(UserCredentials::new(&t.username, &t.password)),
                    min_backoff: MIN_BACKOFF,
                    max_backoff: MAX_BACKOFF,
                };
                Some(TrunkRegistration {
                    trunk: t.name.clone(),
                    target,
                    registration: Registration::new(config, me.host(), now),
                    registered: false,
                })
            })
            .collect()
    }
}

impl Signalling {
    /// When the next REGISTER is due, for the loop's wake-up.
    pub(super) fn registration_deadline(&self) -> Option<Instant> {
        self.registrations
            .iter()
            .filter_map(|r| r.registration.deadline())
            .min()
    }

    /// Sends the REGISTERs that are due.
    pub(super) fn poll_registrations(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        for i in 0..self.registrations.len() {
            let r = &mut self.registrations[i];
            let via = self.me.via(r.target.transport);
            if let Some(request) = r.registration.poll(now, &via) {
                let target = r.target;
                let tx = self.endpoint.send_request(now, request, target);
                self.client_txs
                    .insert(tx, (String::new(), ClientPurpose::Register(i)));
            }
        }
    }

    /// The registrar's answer (`Some`), or no answer at all (`None`).
    pub(super) fn on_register_response(
        &mut self,
        tx: ClientTxId,
        index: usize,
        response: Option<&sip_stack::message::Response>,
    ) {
        if response.is_some_and(|r| r.status < 200) {
            return;
        }
        self.client_txs.remove(&tx);
        let now = Instant::now();
        let Some(r) = self.registrations.get_mut(index) else {
            return;
        };
        let event = match response {
            Some(resp) => r.registration.on_response(now, resp),
            None => Some(r.registration.on_timeout(now)),
        };
        let trunk = r.trunk.clone();
        match event {
            Some(RegistrationEvent::Retry(request)) => {
                let target = r.target;
                let tx = self.endpoint.send_request(now, request, target);
                self.client_txs
                    .insert(tx, (String::new(), ClientPurpose::Register(index)));
            }
            Some(RegistrationEvent::Registered { expires }) => {
                info!(trunk, expires, "registered with the trunk")
            }
            Some(RegistrationEvent::Failed { status, after }) => {
                warn!(trunk, status, retry_in = ?after, "registration failed")
            }
            None => {}
        }
        self.update_registration_gauges(now);
    }

    /// Sets `switchboard_trunk_registered` and logs changes (bindings also
    /// lapse silently when refreshes fail past their expiry).
    pub(super) fn update_registration_gauges(&mut self, now: Instant) {
        for r in &mut self.registrations {
            let registered = r.registration.is_registered(now);
            if registered != r.registered {
                r.registered = registered;
                if !registered {
                    warn!(trunk = %r.trunk, "registration lapsed");
                }
            }
            metrics::gauge!("switchboard_trunk_registered", "trunk" => r.trunk.clone())
                .set(if registered { 1.0 } else { 0.0 });
        }
    }

    /// Shutdown: Expires 0 for every live binding, not waited for.
    pub(super) fn unregister_all(&mut self) {
        let now = Instant::now();
        for i in 0..self.registrations.len() {
            let r = &mut self.registrations[i];
            let via = self.me.via(r.target.transport);
            if let Some(request) = r.registration.unregister(now, &via) {
                let target = r.target;
                info!(trunk = %r.trunk, "unregistering from the trunk");
                let tx = self.endpoint.send_request(now, request, target);
                self.client_txs
                    .insert(tx, (String::new(), ClientPurpose::Register(i)));
            }
        }
    }
}
