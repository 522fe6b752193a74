//! TLS for `https://` / `wss://` servers: rustls (no OpenSSL), trusting the system's root
//! certificates (`rustls-native-certs`, which also honours `SSL_CERT_FILE` / `SSL_CERT_DIR`) plus
//! any extra certificates the caller adds (a private CA, a self-signed deployment).

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::client::{Error, Result};

/// Every certificate in a PEM bundle (`-----BEGIN CERTIFICATE-----` blocks).
pub(crate) fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Connect(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Connect("no certificate in the PEM data".into()));
    }
    Ok(certs)
}

/// The client configuration for one [`Client`](crate::Client): system roots and `extra`.
pub(crate) fn client_config(extra: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "a system certificate could not be loaded");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system root certificates");
    for pem in extra {
        for cert in parse_pem(pem)? {
            roots
                .add(cert)
                .map_err(|e| Error::Connect(format!("unusable certificate: {e}")))?;
        }
    }
    if roots.is_empty() {
        return Err(Error::Connect(
            "no trusted root certificates: install the system's CA bundle (ca-certificates) or add one"
                .into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Connect(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A failed WebSocket connect as this crate reports it. A certificate the client does not trust
/// is a refusal (retrying cannot help, so the client does not reconnect); anything else may be
/// transient.
pub(crate) fn connect_error(e: tokio_tungstenite::tungstenite::Error) -> Error {
    if let tokio_tungstenite::tungstenite::Error::Io(io) = &e
        && let Some(rustls::Error::InvalidCertificate(why)) = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return Error::Refused(format!(
            "the server's TLS certificate is not trusted ({why}); trust its CA with \
             Config::add_root_certificate_pem (confab chat: --ca-file)"
        ));
    }
    Error::Connect(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_errors_are_reported() {
        assert!(parse_pem(b"").is_err());
        assert!(
            parse_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").is_err()
        );
    }
}
