//! The two contexts of one media leg, and how they change on a re-key.

use super::{SrtpContext, SrtpError, SrtpKeys};

/// A leg's SRTP: ours for sending, the far end's for receiving.
pub(crate) struct LegCrypto {
    keys: SrtpKeys,
    tx: SrtpContext,
    rx: Option<SrtpContext>,
}

impl LegCrypto {
    pub(crate) fn new(keys: SrtpKeys) -> LegCrypto {
        LegCrypto {
            tx: SrtpContext::new(&keys.local),
            rx: keys.remote.as_ref().map(SrtpContext::new),
            keys,
        }
    }

    /// New keys (an answer arrived, or a re-INVITE re-keyed). A context
    /// whose key did not change is kept as it is: restarting our sending
    /// context with the same key would restart its ROC and reuse keystream,
    /// and restarting the receiving one would forget its replay windows.
    /// The same key under the other AES-CM suite (a re-offer picked
    /// another tag) keeps its context too, with the new tag length: the
    /// session keys are the same, and so must the packet indices be.
    pub(crate) fn rekey(&mut self, keys: SrtpKeys) {
        let (old, new) = (&self.keys.local, &keys.local);
        if (old.key, old.salt) == (new.key, new.salt) {
            self.tx.set_profile(new.profile);
        } else {
            self.tx = SrtpContext::new(new);
        }
        if keys.remote != self.keys.remote {
            self.rx = keys.remote.as_ref().map(SrtpContext::new);
        }
        self.keys = keys;
    }

    pub(crate) fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        self.tx.protect_rtp(buf, len)
    }

    pub(crate) fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        self.tx.protect_rtcp(buf, len)
    }

    pub(crate) fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        self.rx.as_mut().ok_or(SrtpError::NoKey)?.unprotect_rtp(buf)
    }

    pub(crate) fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        self.rx
            .as_mut()
            .ok_or(SrtpError::NoKey)?
            .unprotect_rtcp(buf)
    }
}
