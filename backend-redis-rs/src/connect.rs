//! Connecting, and keeping one healthy connection: the `ConnectionManager` settings and the
//! [`Connector`] that swaps in a fresh manager when the old one would stay wedged. The
//! crate docs (`lib.rs`, "How redis-rs is configured, and why") explain every setting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    Client, ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    RedisConnectionInfo, TlsCertificates,
};
use resilience_core::{BackendError, ConnectionConfig, ErrorKind, TlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::classify::classify_error;

/// Builds the redis-rs client for one server from the shared config (its `host` and
/// `port`; in sentinel mode the caller puts the resolved master's there, see `sentinel`).
///
/// Fails with `InvalidInput` for configurations this function does not serve (a cluster
/// is the core's router over one backend per node) and for TLS files that cannot be read or hold no PEM
/// certificate / key.
pub(crate) fn client_for(config: &ConnectionConfig) -> Result<Client, BackendError> {
    if !config.cluster_nodes.is_empty() {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            "backend-redis-rs connects to one server or a sentinel-managed master; this configuration names a Redis Cluster (cluster_nodes): connect it with resilient_redis::connect, or ClusterBackend::connect over one RedisRsBackend per node",
        ));
    }
    let mut redis_info = RedisConnectionInfo::default().set_db(config.db);
    if config.client_tracking {
        // Invalidations arrive as RESP3 pushes (see `tracking`).
        redis_info = redis_info.set_protocol(redis::ProtocolVersion::RESP3);
    }
    if let Some(user) = &config.username {
        redis_info = redis_info.set_username(user);
    }
    if let Some(password) = &config.password {
        redis_info = redis_info.set_password(password);
    }
    let addr = match &config.tls {
        None => ConnectionAddr::Tcp(config.host.clone(), config.port),
        Some(tls) => ConnectionAddr::TcpTls {
            host: config.host.clone(),
            port: config.port,
            insecure: tls.insecure,
            tls_params: None,
        },
    };
    let info: ConnectionInfo = addr
        .into_connection_info()
        .map_err(|e| classify_error(&e))?
        .set_redis_settings(redis_info);
    match &config.tls {
        Some(tls) => {
            install_ring_provider();
            match tls_certificates(tls)? {
                Some(certs) => Client::build_with_tls(info, certs),
                None => Client::open(info),
            }
        }
        None => Client::open(info),
    }
    .map_err(|e| classify_error(&e))
}

/// Makes rustls' `ring` provider the process default if no default is installed yet.
///
/// redis-rs builds its `rustls::ClientConfig` with `ClientConfig::builder()`, which uses the
/// process-wide default provider. With only `ring` compiled in, rustls would pick it by
/// itself; installing it explicitly keeps TLS working when another crate of the
/// application also compiles in `aws-lc-rs` (rustls then refuses to guess). A provider the
/// application installed first is left alone.
pub(crate) fn install_ring_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only if another thread installed one in between: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The certificates redis-rs needs for `tls`, read and checked now so that a missing or
/// malformed file is a clear `InvalidInput` at connect, naming the file.
///
/// `None` when there is neither a CA file nor a client certificate: redis-rs then trusts
/// the platform's roots (`rustls-native-certs`). With `insecure` the CA file is not read
/// (redis-rs verifies nothing and sends no SNI); a client certificate is still sent.
pub(crate) fn tls_certificates(tls: &TlsConfig) -> Result<Option<TlsCertificates>, BackendError> {
    let root_cert = match tls.ca_file.as_ref().filter(|_| !tls.insecure) {
        Some(path) => {
            let pem = read_tls_file(path, "CA")?;
            let count = CertificateDer::pem_slice_iter(&pem)
                .map(|cert| cert.map_err(|e| bad_pem(path, "CA", &e)))
                .collect::<Result<Vec<_>, _>>()?
                .len();
            if count == 0 {
                return Err(no_pem(path, "CA certificate"));
            }
            Some(pem)
        }
        None => None,
    };
    let client_tls = match (&tls.client_cert_file, &tls.client_key_file) {
        (None, None) => None,
        (Some(cert_path), Some(key_path)) => {
            let client_cert = read_tls_file(cert_path, "client certificate")?;
            let count = CertificateDer::pem_slice_iter(&client_cert)
                .map(|cert| cert.map_err(|e| bad_pem(cert_path, "client certificate", &e)))
                .collect::<Result<Vec<_>, _>>()?
                .len();
            if count == 0 {
                return Err(no_pem(cert_path, "client certificate"));
            }
            let client_key = read_tls_file(key_path, "client key")?;
            PrivateKeyDer::from_pem_slice(&client_key)
                .map_err(|_| no_pem(key_path, "private key"))?;
            Some(ClientTlsConfig {
                client_cert,
                client_key,
            })
        }
        _ => {
            return Err(BackendError::new(
                ErrorKind::InvalidInput,
                "TLS: client_cert_file and client_key_file must be set together: set both (a server with tls-auth-clients yes needs them) or neither",
            ));
        }
    };
    if root_cert.is_none() && client_tls.is_none() {
        return Ok(None);
    }
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

fn read_tls_file(path: &std::path::Path, what: &str) -> Result<Vec<u8>, BackendError> {
    std::fs::read(path).map_err(|e| {
        BackendError::new(
            ErrorKind::InvalidInput,
            format!(
                "TLS: cannot read the {what} file {}: {e}; check the path in the TLS settings (TlsConfig or the URL) and that this process may read it",
                path.display()
            ),
        )
    })
}

fn bad_pem(path: &std::path::Path, what: &str, e: &rustls::pki_types::pem::Error) -> BackendError {
    BackendError::new(
        ErrorKind::InvalidInput,
        format!(
            "TLS: the {what} file {} is not valid PEM ({e}); it must be PEM text (-----BEGIN ...-----): convert a DER file with `openssl x509 -inform der -in <file> -out <file>.pem`",
            path.display()
        ),
    )
}

fn no_pem(path: &std::path::Path, what: &str) -> BackendError {
    BackendError::new(
        ErrorKind::InvalidInput,
        format!(
            "TLS: the file {} holds no PEM {what}; point the TLS settings at the file that holds it",
            path.display()
        ),
    )
}

/// The connection manager settings described in the module docs.
pub(crate) fn manager_config(config: &ConnectionConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(config.socket_connect_timeout))
        // No driver response timeout: the backend's own deadline (one timer per call, in
        // `RedisRsBackend::send`) bounds the whole call, waiting for a reconnect included,
        // which the driver's would not. Two timers per command cost CPU and add nothing.
        .set_response_timeout(None)
        .set_min_delay(std::time::Duration::from_millis(10))
        .set_max_delay(std::time::Duration::from_millis(100))
}

struct Slot {
    generation: u64,
    manager: ConnectionManager,
}

/// One manager handed out by [`Connector::current`], with its generation to report back.
pub(crate) struct Lease {
    /// Which manager this is, for [`Connector::renew`], [`Connector::mark_answered`] and
    /// [`Connector::has_answered`].
    pub(crate) generation: u64,
    /// The manager to send on.
    pub(crate) manager: ConnectionManager,
}

/// The current connection manager, swappable for a fresh one.
///
/// The per-call read ([`Connector::current`]) is lock-free: an `ArcSwap` load and one clone
/// of the manager (an `Arc` inside). Only [`Connector::renew`], on a timeout or a failed
/// handshake, takes a lock.
pub(crate) struct Connector {
    config: ConnectionManagerConfig,
    slot: ArcSwap<Slot>,
    /// One more than the newest generation whose connection answered a command (0: none).
    /// Generations only grow, so "generation `g` answered" is `answered > g`.
    answered: AtomicU64,
    /// The client fresh managers are made from (replaced when a sentinel reports a new
    /// master). The lock also serialises renewals, so a burst of timeouts makes one new
    /// connection, not one each.
    renewing: Mutex<Client>,
    /// Called after a renewal (client tracking: the new manager is not tracking yet).
    renew_hook: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Connector {
    /// Wraps an already connected manager.
    pub(crate) fn new(
        client: Client,
        config: ConnectionManagerConfig,
        manager: ConnectionManager,
    ) -> Self {
        Connector {
            config,
            slot: ArcSwap::from_pointee(Slot {
                generation: 0,
                manager,
            }),
            answered: AtomicU64::new(1),
            renewing: Mutex::new(client),
            renew_hook: None,
        }
    }

    /// Calls `hook` after every renewal.
    pub(crate) fn with_renew_hook(mut self, hook: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.renew_hook = Some(hook);
        self
    }

    /// The manager to use now, with its generation (to pass to [`Connector::renew`]).
    pub(crate) fn current(&self) -> Lease {
        let slot = self.slot.load();
        Lease {
            generation: slot.generation,
            manager: slot.manager.clone(),
        }
    }

    /// Records that the connection of `generation` answered a command.
    pub(crate) fn mark_answered(&self, generation: u64) {
        // A plain load first: on the hot path the flag is already set and the cache line
        // stays shared between threads.
        if self.answered.load(Ordering::Relaxed) <= generation {
            self.answered
                .fetch_max(generation.saturating_add(1), Ordering::Relaxed);
        }
    }

    /// Whether the connection of `generation` ever answered: a timeout on a connection
    /// that never answered is still its connect attempt, which the manager ends by itself
    /// (`connection_timeout`, then a reconnect); replacing it would restart a slow
    /// connect again and again.
    pub(crate) fn has_answered(&self, generation: u64) -> bool {
        self.answered.load(Ordering::Relaxed) > generation
    }

    /// Replaces the manager of `generation` by a fresh one that connects on first use.
    /// Does nothing if another call already replaced it, so a burst of timeouts makes one
    /// new connection, not one each.
    pub(crate) fn renew(&self, generation: u64) {
        let client = self.renewing.lock().unwrap_or_else(|p| p.into_inner());
        if self.slot.load().generation != generation {
            return;
        }
        self.install(&client, generation);
    }

    /// The client connections are made from (the current master's, in sentinel mode).
    pub(crate) fn client(&self) -> Client {
        self.renewing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Points every later call at another server (a new master reported by the sentinels):
    /// `client` replaces the current one, and a fresh manager made from it replaces the
    /// current manager, whatever its generation. Calls running on the old one finish there.
    pub(crate) fn switch_to(&self, client: Client) {
        let mut current = self.renewing.lock().unwrap_or_else(|p| p.into_inner());
        *current = client;
        self.install(&current, self.slot.load().generation);
    }

    /// Installs a fresh lazy manager made from `client` as generation `generation + 1`.
    /// Called with the `renewing` lock held.
    fn install(&self, client: &Client, generation: u64) {
        match ConnectionManager::new_lazy_with_config(client.clone(), self.config.clone()) {
            Ok(manager) => {
                let generation = generation.saturating_add(1);
                self.slot.store(Arc::new(Slot {
                    generation,
                    manager,
                }));
                tracing::debug!(
                    backend = "redis-rs",
                    generation,
                    "replaced the connection (a timeout, a failed handshake or a new master)"
                );
                if let Some(hook) = &self.renew_hook {
                    hook();
                }
            }
            Err(e) => {
                tracing::warn!(backend = "redis-rs", error = %classify_error(&e), "could not create a fresh connection manager");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn client_carries_db_and_credentials() {
        let config = ConnectionConfig::from_url("redis://alice:s3cret@db.example:6390/4").unwrap();
        let client = client_for(&config).unwrap();
        let info = client.get_connection_info();
        assert_eq!(info.addr(), &ConnectionAddr::Tcp("db.example".into(), 6390));
        assert_eq!(info.redis_settings().db(), 4);
        assert_eq!(info.redis_settings().username(), Some("alice"));
        assert_eq!(info.redis_settings().password(), Some("s3cret"));
        assert!(!info.redis_settings().protocol().supports_resp3());
    }

    #[test]
    fn rediss_builds_a_tls_client() {
        let tls = ConnectionConfig::from_url("rediss://localhost:6390").unwrap();
        let client = client_for(&tls).unwrap();
        assert!(matches!(
            client.get_connection_info().addr(),
            ConnectionAddr::TcpTls { host, port: 6390, insecure: false, .. } if host == "localhost"
        ));
    }

    #[test]
    fn unreadable_or_empty_tls_files_are_invalid_input() {
        let dir = std::env::temp_dir().join(format!("brr-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, b"not a certificate").unwrap();
        let missing = dir.join("missing.pem");
        let cases = [
            TlsConfig::default().with_ca_file(missing.clone()),
            TlsConfig::default().with_ca_file(empty.clone()),
            TlsConfig::default().with_client_cert_file(empty.clone()),
            TlsConfig::default()
                .with_client_cert_file(empty.clone())
                .with_client_key_file(empty.clone()),
        ];
        for tls in cases {
            let config = ConnectionConfig::default().with_tls(tls.clone());
            let err = client_for(&config).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{tls:?}: {err}");
            assert!(err.to_string().contains("TLS"), "{err}");
        }
        let err = client_for(
            &ConnectionConfig::default()
                .with_tls(TlsConfig::default().with_ca_file(missing.clone())),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unsupported_modes_are_invalid_input() {
        let cluster = ConnectionConfig::default().with_cluster_nodes(vec![("a".into(), 1)]);
        assert_eq!(
            client_for(&cluster).err().unwrap().kind(),
            ErrorKind::InvalidInput
        );
    }

    /// A connector over a lazy manager for a port nothing listens on (nothing is sent).
    fn lazy_connector() -> Connector {
        let config = ConnectionConfig::from_url("redis://127.0.0.1:1").unwrap();
        let client = client_for(&config).unwrap();
        let manager_config = manager_config(&config);
        let manager =
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
                .unwrap();
        Connector::new(client, manager_config, manager)
    }

    #[tokio::test]
    async fn connector_tracks_answers_and_renews_once_per_generation() {
        let connector = lazy_connector();
        // The first manager is connected when wrapped: it has answered.
        let first = connector.current();
        assert_eq!(first.generation, 0);
        assert!(connector.has_answered(0));
        connector.renew(0);
        let second = connector.current().generation;
        assert_eq!(second, 1);
        // A fresh manager has not answered until a call says so.
        assert!(!connector.has_answered(second));
        // A stale renewal (another call already replaced generation 0) does nothing.
        connector.renew(0);
        assert_eq!(connector.current().generation, second);
        connector.mark_answered(second);
        assert!(connector.has_answered(second));
        connector.renew(second);
        assert_eq!(connector.current().generation, 2);
        assert!(!connector.has_answered(2));
        // A late answer from an older generation does not count for the new one.
        connector.mark_answered(0);
        assert!(!connector.has_answered(2));
    }

    #[tokio::test]
    async fn switching_client_installs_a_new_generation_whatever_the_current_one() {
        let connector = lazy_connector();
        connector.renew(0);
        assert_eq!(connector.current().generation, 1);
        let other =
            client_for(&ConnectionConfig::from_url("redis://127.0.0.1:2").unwrap()).unwrap();
        connector.switch_to(other.clone());
        assert_eq!(connector.current().generation, 2);
        assert!(!connector.has_answered(2));
        // Later renewals make managers from the new client.
        let kept = connector
            .renewing
            .lock()
            .unwrap()
            .get_connection_info()
            .addr()
            .clone();
        assert_eq!(&kept, other.get_connection_info().addr());
    }

    #[test]
    fn manager_never_retries_and_uses_our_timeouts() {
        let config = ConnectionConfig::default()
            .with_socket_timeout(Duration::from_millis(300))
            .with_socket_connect_timeout(Duration::from_millis(200));
        let m = manager_config(&config);
        assert_eq!(m.number_of_retries(), 0);
        // The backend's own deadline (socket_timeout) replaces the driver's.
        assert_eq!(m.response_timeout(), None);
        assert_eq!(m.connection_timeout(), Some(Duration::from_millis(200)));
    }
}
