//! Key presses, however they arrive: RFC 4733 telephone-events detected by
//! the media leg, or SIP INFO with `application/dtmf-relay` (the de facto
//! format: `Signal=5` and `Duration=160` lines) or `application/dtmf` (the
//! bare key). Each becomes one `DtmfReceived` event on the call.

use super::{ControlError, DtmfForward, Signalling};
use crate::proto::{call_event, DtmfReceived};
use media_core::dtmf::DtmfSink;
use media_core::MediaError;
use sip_stack::message::{Request, Response};
use sip_stack::transaction::ServerTxId;
use tracing::{debug, info};

/// Duration of each key sent when the request does not say.
const DEFAULT_SEND_DURATION_MS: u32 = 100;

/// Duration reported for an INFO key press that does not say.
const DEFAULT_INFO_DURATION_MS: u32 = 100;

/// Longest key press believed from an INFO body (a minute).
const MAX_INFO_DURATION_MS: u32 = 60_000;

impl Signalling {
    /// The sink a leg of `call_id` reports its key presses to.
    pub(super) fn dtmf_sink(&self, call_id: &str, party: &'static str) -> Box<dyn DtmfSink> {
        Box::new(DtmfForward {
            call_id: call_id.to_owned(),
            party,
            internal: self.internal_tx.clone(),
        })
    }

    pub(super) fn publish_dtmf(
        &self,
        call_id: &str,
        digit: char,
        duration_ms: u32,
        method: &str,
        party: &str,
    ) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        call.span
            .in_scope(|| info!(%digit, duration_ms, method, party, "DTMF"));
        metrics::counter!("switchboard_dtmf_total", "method" => method.to_owned()).increment(1);
        let event = DtmfReceived {
            digit: digit.to_string(),
            duration_ms,
            method: method.into(),
            party: party.into(),
        };
        self.bus.publish(call_id, call_event::Event::Dtmf(event));
    }

    /// Queues key presses on a call's leg (RFC 4733 generation).
    pub(super) fn send_dtmf(
        &mut self,
        call_id: &str,
        digits: &str,
        duration_ms: u32,
    ) -> Result<(), ControlError> {
        let call = self
            .calls
            .get(call_id)
            .filter(|c| !c.is_ending() && !c.is_ringing())
            .ok_or_else(|| ControlError::NotFound(format!("no answered call with id {call_id}")))?;
        if call.outbound.is_some() {
            return Err(ControlError::FailedPrecondition(format!(
                "call {call_id} is bridged: its parties' key presses pass through unchanged"
            )));
        }
        let duration_ms = if duration_ms == 0 {
            DEFAULT_SEND_DURATION_MS
        } else {
            duration_ms
        };
        call.leg()
            .send_dtmf(digits, duration_ms)
            .map_err(|e| match e {
                MediaError::Overloaded => ControlError::Unavailable(e.to_string()),
                other => ControlError::InvalidArgument(other.to_string()),
            })?;
        call.span
            .in_scope(|| info!(digits, duration_ms, "sending DTMF"));
        Ok(())
    }

    /// An in-dialog INFO: 481 if the dialog is unknown; otherwise 200, and
    /// a key press if it carries one.
    pub(super) fn on_info(&mut self, tx: ServerTxId, req: Request) {
        let id = req.call_id().unwrap_or_default().to_owned();
        let (call_id, party) = if self.calls.contains_key(&id) {
            (id, "caller")
        } else if let Some(parent) = self.outbound_ids.get(&id) {
            (parent.clone(), "callee")
        } else {
            let resp = Response::for_request(&req, 481, "Call/Transaction Does Not Exist");
            return self.respond(tx, resp);
        };
        let key = req
            .content_type()
            .and_then(|ct| info_key_press(ct, &req.body));
        match key {
            Some((digit, duration_ms)) => {
                self.publish_dtmf(&call_id, digit, duration_ms, "sip_info", party)
            }
            None => debug!(call_id, "INFO without a key press"),
        }
        self.respond(tx, Response::for_request(&req, 200, "OK"));
    }
}

/// The key and its duration (ms) in an INFO body of `content_type`.
fn info_key_press(content_type: &str, body: &[u8]) -> Option<(char, u32)> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    match mime.as_str() {
        "application/dtmf-relay" => {
            let (mut digit, mut duration) = (None, DEFAULT_INFO_DURATION_MS);
            for line in text.lines() {
                let Some((name, value)) = line.split_once('=') else {
                    continue;
                };
                match name.trim().to_ascii_lowercase().as_str() {
                    "signal" => digit = key(value),
                    "duration" => {
                        if let Ok(ms) = value.trim().parse::<u32>() {
                            duration = ms.min(MAX_INFO_DURATION_MS);
                        }
                    }
                    _ => {}
                }
            }
            digit.map(|d| (d, duration))
        }
        "application/dtmf" => key(text).map(|d| (d, DEFAULT_INFO_DURATION_MS)),
        _ => None,
    }
}

/// One DTMF key, upper-cased; also the RFC 4733 event numbers 10 and 11
/// some devices send as `Signal=10` / `11` for `*` / `#`.
fn key(value: &str) -> Option<char> {
    let value = value.trim();
    match value {
        "10" => return Some('*'),
        "11" => return Some('#'),
        _ => {}
    }
    let mut chars = value.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && media_core::dtmf::event_for_digit(c).is_some()).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_bodies() {
        let relay = "application/dtmf-relay";
        assert_eq!(
            info_key_press(relay, b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', 160))
        );
        assert_eq!(
            info_key_press("Application/DTMF-Relay; x=y", b"signal= #\nduration = 250"),
            Some(('#', 250))
        );
        assert_eq!(info_key_press(relay, b"Signal=10\r\n"), Some(('*', 100)));
        assert_eq!(info_key_press(relay, b"Signal=d\r\n"), Some(('D', 100)));
        assert_eq!(
            info_key_press(relay, b"Signal=1\r\nDuration=99999999\r\n"),
            Some(('1', MAX_INFO_DURATION_MS))
        );
        assert_eq!(
            info_key_press(relay, b"Signal=1\r\nDuration=-5\r\n"),
            Some(('1', 100))
        );
    }

    #[test]
    fn bare_dtmf_and_refusals() {
        assert_eq!(info_key_press("application/dtmf", b"7"), Some(('7', 100)));
        assert_eq!(
            info_key_press("application/dtmf", b" * \r\n"),
            Some(('*', 100))
        );
        for (ct, body) in [
            ("application/dtmf-relay", &b"Signal=55\r\n"[..]),
            ("application/dtmf-relay", b"Signal=X\r\n"),
            ("application/dtmf-relay", b"Duration=100\r\n"),
            ("application/dtmf-relay", b"\xff\xfe"),
            ("application/dtmf", b""),
            ("application/media_control+xml", b"<media_control/>"),
        ] {
            assert_eq!(info_key_press(ct, body), None, "{ct} {body:?}");
        }
    }
}
