//! Reliable provisional responses (RFC 3262) on both sides of the B2BUA:
//! the caller's PRACKs for our reliable 180, and our PRACKs for the
//! callee's reliable 18x.

use super::{ClientPurpose, Signalling};
use sip_stack::dialog::Dialog;
use sip_stack::message::{Method, Request, Response};
use sip_stack::transaction::ServerTxId;
use tracing::{debug, info};

impl Signalling {
    /// A PRACK from the caller: 200 if it acknowledges our pending
    /// reliable provisional (then a 200 OK that waited for it goes out),
    /// 481 otherwise (RFC 3262 §3).
    pub(super) fn on_prack(&mut self, tx: ServerTxId, req: Request) {
        let call_id = req.call_id().unwrap_or_default().to_owned();
        let acked = self
            .calls
            .get_mut(&call_id)
            .filter(|c| c.dialog.matches(&req) && !c.is_ending())
            .and_then(|c| c.reliable.as_mut())
            .is_some_and(|r| r.on_prack(&req));
        if !acked {
            let resp = Response::for_request(&req, 481, "Call/Transaction Does Not Exist");
            return self.respond(tx, resp);
        }
        self.respond(tx, Response::for_request(&req, 200, "OK"));
        let waiting = self.calls.get(&call_id).is_some_and(|c| {
            c.span.in_scope(|| info!("PRACK received"));
            c.answer_waits_for_prack
        });
        if waiting {
            self.answer_caller(&call_id);
        }
    }

    /// A provisional from a party we call (the bridged-to party, or the
    /// transfer target when `transfer_target`): a reliable one (Require:
    /// 100rel, RSeq) gets a PRACK in the early dialog it creates.
    pub(super) fn on_party_provisional(
        &mut self,
        call_id: &str,
        resp: &Response,
        transfer_target: bool,
    ) {
        let Some(call) = self.calls.get_mut(call_id).filter(|c| !c.is_ending()) else {
            return;
        };
        let span = call.span.clone();
        let out = match transfer_target {
            true => call.transfer.as_mut().map(|t| &mut t.target),
            false => call.outbound.as_mut(),
        };
        let Some(out) = out else {
            return;
        };
        let Some(rack) = out.reliable.rack_for(resp) else {
            return;
        };
        let same_early_dialog = out
            .early_dialog
            .as_ref()
            .is_some_and(|d| d.remote_tag.as_deref() == resp.to_tag());
        if !same_early_dialog {
            let sips = super::identity::is_sips(&out.invite.uri);
            let contact = self.me.contact(out.dest.transport, sips);
            match Dialog::new_uac(&out.invite, resp, &contact) {
                Some(dialog) => out.early_dialog = Some(dialog),
                None => {
                    return span.in_scope(|| {
                        debug!(
                            status = resp.status,
                            "reliable provisional without a Contact or tag: no PRACK"
                        )
                    })
                }
            }
        }
        let Some(dialog) = out.early_dialog.as_mut() else {
            return;
        };
        let dest = super::identity::dialog_target(&dialog.remote_target, out.dest);
        let sent_by = self.me.sent_by(dest.transport);
        let mut prack = dialog.new_request(Method::Prack, dest.transport, &sent_by);
        prack.headers.push("RAck", rack.to_string());
        span.in_scope(|| {
            info!(
                status = resp.status,
                rseq = rack.rseq,
                "PRACK to the callee"
            )
        });
        let (tx, _) = self.send_originated(prack, dest);
        self.client_txs
            .insert(tx, (call_id.to_owned(), ClientPurpose::Prack));
    }
}
