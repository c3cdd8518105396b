//! TLS for SIP (RFC 3261 §26.3.1, RFC 5630): our certificate, and the
//! rustls configurations for the listener and for connections we open.
//!
//! rustls runs on the ring provider, chosen explicitly per configuration
//! (no process-wide default), because ring builds with just a C compiler.

use std::path::Path;
use std::sync::Arc;

use rustls::client::ClientConfig;
use rustls::server::ServerConfig;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where Debian keeps the system CA bundle, trusted for outbound TLS when
/// no CA file is configured.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What went wrong setting TLS up (at start, never on network input).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {what} from {path}: {detail}")]
    Pem {
        what: &'static str,
        path: String,
        detail: String,
    },
    #[error("{path} holds no {what}")]
    Empty { what: &'static str, path: String },
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate chain and its private key.
pub struct TlsIdentity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The leaf certificate in PEM, so a test or operator can trust it.
    pub cert_pem: String,
}

impl TlsIdentity {
    /// Loads a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
        let pem_err = |what, path: &Path, e: &dyn std::fmt::Display| TlsError::Pem {
            what,
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| pem_err("certificates", cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err("certificates", cert, &e))?;
        if certs.is_empty() {
            return Err(TlsError::Empty {
                what: "certificate",
                path: cert.display().to_string(),
            });
        }
        let key_der =
            PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err("a private key", key, &e))?;
        let cert_pem = std::fs::read_to_string(cert).map_err(|e| pem_err("PEM", cert, &e))?;
        Ok(TlsIdentity {
            certs,
            key: key_der,
            cert_pem,
        })
    }

    /// A self-signed certificate for `names` (IP literals become IP SANs,
    /// the rest DNS SANs). For loopback use only: nobody can verify it
    /// without being handed it first.
    pub fn self_signed(names: &[String]) -> Result<TlsIdentity, TlsError> {
        let certified = rcgen::generate_simple_self_signed(names.to_vec())?;
        let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).map_err(|e| {
            TlsError::Pem {
                what: "the generated key",
                path: "(memory)".into(),
                detail: e.to_string(),
            }
        })?;
        Ok(TlsIdentity {
            cert_pem: certified.cert.pem(),
            certs: vec![certified.cert.der().clone()],
            key,
        })
    }

    /// The listener's configuration: TLS 1.2 and 1.3, no client
    /// certificates (SIP digest authenticates callers).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.certs.clone(), self.key.clone_key())?;
        Ok(Arc::new(config))
    }
}

/// The configuration for connections we open: the server must present a
/// certificate for the address we dial, signed by a CA in `ca_file` (PEM),
/// or in the system bundle when `ca_file` is `None`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let path = ca_file.unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
    match CertificateDer::pem_file_iter(path) {
        Ok(certs) => {
            for cert in certs.flatten() {
                // A bundle may hold certificates rustls cannot use; skip them.
                let _ = roots.add(cert);
            }
        }
        Err(e) if ca_file.is_some() => {
            return Err(TlsError::Pem {
                what: "CA certificates",
                path: path.display().to_string(),
                detail: e.to_string(),
            })
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no system CA bundle: outbound TLS will trust nobody")
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_identity_makes_a_server_config() {
        let id = TlsIdentity::self_signed(&["127.0.0.1".into(), "localhost".into()]).unwrap();
        assert!(id.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        id.server_config().unwrap();
    }

    #[test]
    fn pem_files_round_trip_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("sb-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let id = TlsIdentity::from_pem_files(&cert, &key).unwrap();
        id.server_config().unwrap();
        client_config(Some(&cert)).unwrap();

        let missing = dir.join("missing.pem");
        let err = TlsIdentity::from_pem_files(&missing, &key).err().unwrap();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        std::fs::write(&missing, "not pem").unwrap();
        assert!(TlsIdentity::from_pem_files(&missing, &key).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
