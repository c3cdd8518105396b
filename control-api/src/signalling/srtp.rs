//! SDES-SRTP policy: which [`SrtpMode`] applies to a call, what that means
//! for an answer or an offer given the signalling transport, and turning
//! SDP keys into media keys.
//!
//! The rule that makes it secure by default: SDES keys are in the SDP, so
//! they are only exchanged over TLS (unless `sip.srtp_over_cleartext`).

use super::Signalling;
use crate::config::SrtpMode;
use media_core::{MasterKey, SrtpKeys, SrtpProfile};
use sip_stack::sdp::{
    fresh_key, CryptoAttribute, CryptoSuite, NegotiatedSrtp, SrtpAnswer, SrtpOffer, SrtpPolicy,
};
use sip_stack::transport::TransportKind;
use std::net::IpAddr;

impl Signalling {
    /// The mode for a caller: the `srtp` of the trunk it calls from (by
    /// `allowed_sources`), else `sip.srtp`.
    pub(super) fn srtp_mode_for_source(&self, source: IpAddr) -> SrtpMode {
        self.config
            .trunks
            .iter()
            .filter(|t| t.srtp.is_some())
            .find(|t| {
                t.allowed_sources
                    .iter()
                    .filter_map(|n| n.parse::<ipnet::IpNet>().ok())
                    .any(|net| net.contains(&source))
            })
            .and_then(|t| t.srtp)
            .unwrap_or(self.config.sip.srtp)
    }

    /// The mode for a party we call: its trunk's `srtp`, else `sip.srtp`.
    pub(super) fn srtp_mode_for_trunk(&self, trunk: Option<&str>) -> SrtpMode {
        trunk
            .and_then(|name| self.config.trunks.iter().find(|t| t.name == name))
            .and_then(|t| t.srtp)
            .unwrap_or(self.config.sip.srtp)
    }

    /// Whether SDES keys may travel over `transport`.
    fn keys_may_travel(&self, transport: TransportKind) -> bool {
        transport == TransportKind::Tls || self.config.sip.srtp_over_cleartext
    }

    /// What we answer under `mode` for an offer that came over
    /// `transport`, with a fresh key. `Err` with why the call must be
    /// refused (488): SRTP is mandatory but keys cannot travel here, or
    /// the OS has no randomness for a key.
    pub(super) fn srtp_answer(
        &self,
        mode: SrtpMode,
        transport: TransportKind,
    ) -> Result<Option<SrtpAnswer>, &'static str> {
        let policy = match (mode, self.keys_may_travel(transport)) {
            (SrtpMode::Off, _) | (SrtpMode::Optional, false) => return Ok(None),
            (SrtpMode::Mandatory, false) => {
                return Err("SRTP is mandatory here but SDES keys may only travel over TLS")
            }
            (SrtpMode::Optional, true) => SrtpPolicy::Optional,
            (SrtpMode::Mandatory, true) => SrtpPolicy::Mandatory,
        };
        let local_key = fresh_key().map_err(|_| "no randomness for an SRTP key")?;
        Ok(Some(SrtpAnswer { policy, local_key }))
    }

    /// What we offer a party under `mode` over `transport`: RTP/SAVP when
    /// mandatory, RTP/AVP with a crypto line when optional (see
    /// [`SrtpOffer`]), nothing over cleartext signalling.
    pub(super) fn srtp_offer(
        &self,
        mode: SrtpMode,
        transport: TransportKind,
    ) -> Result<Option<SrtpOffer>, &'static str> {
        if mode == SrtpMode::Off || !self.keys_may_travel(transport) {
            return Ok(None);
        }
        let crypto = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80)
            .map_err(|_| "no randomness for an SRTP key")?;
        Ok(Some(SrtpOffer {
            savp: mode == SrtpMode::Mandatory,
            crypto,
        }))
    }
}

/// How we answer a re-offer from a party we offered `ours` to: with the
/// same key, SRTP still required if we asked for RTP/SAVP.
pub(super) fn answer_for_offered(ours: &SrtpOffer) -> SrtpAnswer {
    SrtpAnswer {
        policy: if ours.savp {
            SrtpPolicy::Mandatory
        } else {
            SrtpPolicy::Optional
        },
        local_key: ours.crypto.key_salt,
    }
}

fn profile(suite: CryptoSuite) -> SrtpProfile {
    match suite {
        CryptoSuite::AesCm128HmacSha1_80 => SrtpProfile::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => SrtpProfile::AesCm128HmacSha1_32,
    }
}

fn master(suite: CryptoSuite, key_salt: &[u8]) -> Option<MasterKey> {
    MasterKey::from_key_salt(profile(suite), key_salt)
}

/// The media keys of agreed SDES.
pub(super) fn media_keys(n: &NegotiatedSrtp) -> Option<SrtpKeys> {
    Some(SrtpKeys {
        local: master(n.suite, &n.local)?,
        remote: Some(master(n.suite, &n.remote)?),
    })
}

/// The media keys of our offer before its answer: ours only, so the leg
/// drops everything it receives until the far end's key is known.
pub(super) fn offered_keys(o: &SrtpOffer) -> Option<SrtpKeys> {
    Some(SrtpKeys {
        local: master(o.crypto.suite, &o.crypto.key_salt)?,
        remote: None,
    })
}
