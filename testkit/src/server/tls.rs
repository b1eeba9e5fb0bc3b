//! Certificates for TLS test servers, generated with [`rcgen`].
//!
//! [`TlsFiles::generate`] writes a fresh certificate authority and two certificates it
//! signs into a directory, as PEM files:
//!
//! | file | what |
//! |---|---|
//! | `ca.crt` | the self-signed CA certificate: what a client trusts (`TlsConfig::ca_file`) |
//! | `server.crt`, `server.key` | the server's certificate, valid for `127.0.0.1`, `::1` and `localhost` |
//! | `client.crt`, `client.key` | a client certificate, for mutual TLS (`tls-auth-clients yes`) |
//!
//! Each call makes a new CA, so a second [`TlsFiles::generate`] gives a CA that did not
//! sign the first one's server certificate: the "wrong CA" of a test.
//!
//! ```no_run
//! use testkit::server::{RedisServer, TlsClientAuth};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = RedisServer::builder()
//!     .tls_generated()
//!     .tls_auth_clients(TlsClientAuth::Yes)
//!     .spawn()
//!     .await?;
//! let config = server.connection_config(); // tls set: the CA and the client certificate
//! assert!(config.is_tls());
//! # Ok(())
//! # }
//! ```
//!
//! These certificates are for tests only: the keys are written unencrypted next to them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::error::SpawnError;

/// The PEM files of a TLS test setup: a CA, a server certificate and key, and optionally a
/// client certificate and key signed by the same CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate the server's certificate chains to (`--tls-ca-cert-file`, and
    /// what clients trust).
    pub ca_cert: PathBuf,
    /// The server certificate (`--tls-cert-file`).
    pub server_cert: PathBuf,
    /// The server's private key (`--tls-key-file`).
    pub server_key: PathBuf,
    /// A client certificate signed by the CA, for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// Generates a new CA, a server certificate for `127.0.0.1`, `::1` and `localhost`, and
    /// a client certificate, all written into `dir` (see the module docs for file names).
    /// Existing files of the same names are overwritten.
    pub fn generate(dir: &Path) -> Result<TlsFiles, SpawnError> {
        let ca_key = KeyPair::generate().map_err(cert_error)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testkit test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_error)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(cert_error)?;
        let mut server_params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ])
        .map_err(cert_error)?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(cert_error)?;

        let client_key = KeyPair::generate().map_err(cert_error)?;
        let mut client_params =
            CertificateParams::new(vec!["testkit-client".to_owned()]).map_err(cert_error)?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "testkit client");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params
            .signed_by(&client_key, &issuer)
            .map_err(cert_error)?;

        let files = TlsFiles {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: Some(dir.join("client.crt")),
            client_key: Some(dir.join("client.key")),
        };
        std::fs::write(&files.ca_cert, ca_cert.pem())?;
        std::fs::write(&files.server_cert, server_cert.pem())?;
        std::fs::write(&files.server_key, server_key.serialize_pem())?;
        std::fs::write(dir.join("client.crt"), client_cert.pem())?;
        std::fs::write(dir.join("client.key"), client_key.serialize_pem())?;
        Ok(files)
    }
}

/// Whether a TLS server asks clients for a certificate (`--tls-auth-clients`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsClientAuth {
    /// No client certificate is asked for (`no`). The default here.
    #[default]
    No,
    /// A client certificate is verified if one is sent (`optional`).
    Optional,
    /// Every client must present a certificate the CA signed (`yes`): mutual TLS.
    Yes,
}

impl TlsClientAuth {
    /// The value of redis' `tls-auth-clients` directive.
    pub fn as_redis_arg(self) -> &'static str {
        match self {
            TlsClientAuth::No => "no",
            TlsClientAuth::Optional => "optional",
            TlsClientAuth::Yes => "yes",
        }
    }
}

/// How a builder's TLS files are obtained.
#[derive(Clone, Debug)]
pub(crate) enum TlsSource {
    /// Generate a fresh set into the server's directory at spawn.
    Generated,
    /// Use these files.
    Files(TlsFiles),
}

fn cert_error(e: rcgen::Error) -> SpawnError {
    SpawnError::Io(std::io::Error::other(format!(
        "could not generate test certificates: {e}"
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_files_are_pem_and_each_ca_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles::generate(dir.path()).unwrap();
        let ca = std::fs::read_to_string(&files.ca_cert).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        let key = std::fs::read_to_string(&files.server_key).unwrap();
        assert!(key.contains("PRIVATE KEY-----"), "{key}");
        assert!(files.client_cert.as_ref().unwrap().exists());
        assert!(files.client_key.as_ref().unwrap().exists());
        let other = tempfile::tempdir().unwrap();
        let second = TlsFiles::generate(other.path()).unwrap();
        assert_ne!(ca, std::fs::read_to_string(&second.ca_cert).unwrap());
    }
}
