//! TLS (`rediss://`): the shared [`TlsConfig`] to the rustls `ClientConfig` fred connects
//! with (fred feature `enable-rustls-ring`: rustls with the `ring` provider).
//!
//! fred takes a ready `rustls::ClientConfig` (`TlsConnector::from(ClientConfig)`), so it
//! is built here:
//!
//! | `TlsConfig` | rustls |
//! |---|---|
//! | `ca_file: None` | the platform's roots, loaded with `rustls-native-certs` (what fred's own `TlsConnector::default_rustls` does) |
//! | `ca_file: Some(path)` | exactly the certificates of that PEM file |
//! | `client_cert_file` + `client_key_file` | a client certificate (mutual TLS); both or neither |
//! | `insecure: true` | no certificate verification at all (handshake signatures are still checked). **Tests only.** |
//!
//! Files are read once, when the client is built: a missing, unreadable or non-PEM file
//! is `InvalidInput`, naming the file. The provider is passed explicitly
//! (`ClientConfig::builder_with_provider`), so nothing process-wide is installed or needed.

use std::path::Path;
use std::sync::Arc;

use fred::types::config::{TlsConfig as FredTlsConfig, TlsConnector};
use resilience_core::{BackendError, ErrorKind, TlsConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Builds fred's TLS settings for `tls` (see the module docs).
pub(crate) fn fred_tls_config(tls: &TlsConfig) -> Result<FredTlsConfig, BackendError> {
    Ok(TlsConnector::from(client_config(tls)?).into())
}

/// The rustls client configuration for `tls`.
pub(crate) fn client_config(tls: &TlsConfig) -> Result<ClientConfig, BackendError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: no usable protocol version: {e}")))?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification { provider }))
    } else {
        builder.with_root_certificates(roots(tls.ca_file.as_deref())?)
    };
    match (&tls.client_cert_file, &tls.client_key_file) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "client certificate")?;
            let key_pem = read(key, "client key")?;
            let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
                invalid(format!(
                    "TLS: the file {} holds no PEM private key; point client_key_file at the key of the client certificate",
                    key.display()
                ))
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| invalid(format!(
                    "TLS: unusable client certificate or key ({e}); check that client_key_file holds the key of client_cert_file"
                )))
        }
        _ => Err(invalid(
            "TLS: client_cert_file and client_key_file must be set together: set both (a server with tls-auth-clients yes needs them) or neither",
        )),
    }
}

/// The CAs to trust: the file's, or the platform's.
fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, BackendError> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in certificates(path, "CA certificate")? {
                store.add(cert).map_err(|e| {
                    invalid(format!(
                        "TLS: the CA file {} holds an unusable certificate ({e}); point ca_file at the CA that signed the server's certificate",
                        path.display()
                    ))
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(native.certs);
            if added == 0 {
                let why = native
                    .errors
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "the store is empty".to_owned());
                return Err(invalid(format!(
                    "TLS: no ca_file given and the platform's root certificates could not be \
                     loaded ({why}): set ca_file to the CA that signed the server's certificate, \
                     or install the platform's CA bundle (apt-get install ca-certificates)"
                )));
            }
        }
    }
    Ok(store)
}

/// Every PEM certificate of `path`; at least one.
fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, BackendError> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(format!(
                "TLS: the {what} file {} is not valid PEM ({e}); it must be PEM text (-----BEGIN ...-----): convert a DER file with `openssl x509 -inform der -in <file> -out <file>.pem`",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "TLS: the file {} holds no PEM {what}; point the TLS settings at the file that holds it",
            path.display()
        )));
    }
    Ok(certs)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, BackendError> {
    std::fs::read(path).map_err(|e| {
        invalid(format!(
            "TLS: cannot read the {what} file {}: {e}; check the path in the TLS settings (TlsConfig or the URL) and that this process may read it",
            path.display()
        ))
    })
}

fn invalid(message: impl Into<String>) -> BackendError {
    BackendError::new(ErrorKind::InvalidInput, message)
}

/// `insecure: true`: accepts any server certificate. The handshake signature is still
/// verified against the certificate presented, so the connection is encrypted, but to
/// anyone: for tests only.
#[derive(Debug)]
struct NoVerification {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::PathBuf;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bfred-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn unreadable_or_empty_files_are_invalid_input_naming_the_file() {
        let dir = scratch();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, b"not a certificate").unwrap();
        let missing = dir.join("missing-ca.pem");
        let cases = [
            (
                TlsConfig::default().with_ca_file(missing.clone()),
                "missing-ca.pem",
            ),
            (TlsConfig::default().with_ca_file(junk.clone()), "junk.pem"),
            (
                TlsConfig::default().with_client_key_file(junk.clone()),
                "together",
            ),
        ];
        for (tls, needle) in cases {
            let err = client_config(&tls).map(|_| ()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.to_string().contains("TLS"), "{err}");
        }
    }

    #[test]
    fn insecure_needs_no_files() {
        let tls = TlsConfig::default().with_insecure(true);
        assert!(client_config(&tls).is_ok());
    }
}
