//! Connecting, and keeping one healthy connection: the `ConnectionManager` settings and the
//! [`Connector`] that swaps in a fresh manager when the old one would stay wedged. The
//! crate docs (`lib.rs`, "How redis-rs is configured, and why") explain every setting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};
use resilience_core::{BackendError, ConnectionConfig, ErrorKind};

use crate::classify::classify_error;

/// Builds the redis-rs client for one server from the shared config.
///
/// Fails with `InvalidInput` for configurations this backend does not serve: TLS
/// (`rediss://`), cluster and sentinel mode.
pub(crate) fn client_for(config: &ConnectionConfig) -> Result<Client, BackendError> {
    if config.is_tls() {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            "rediss:// (TLS) is not enabled in this build of backend-redis-rs",
        ));
    }
    if !config.cluster_nodes.is_empty() || config.sentinel.is_some() {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            "backend-redis-rs connects to one server; cluster and sentinel are not supported",
        ));
    }
    let mut redis_info = RedisConnectionInfo::default().set_db(config.db);
    if let Some(user) = &config.username {
        redis_info = redis_info.set_username(user);
    }
    if let Some(password) = &config.password {
        redis_info = redis_info.set_password(password);
    }
    let info: ConnectionInfo = ConnectionAddr::Tcp(config.host.clone(), config.port)
        .into_connection_info()
        .map_err(|e| classify_error(&e))?
        .set_redis_settings(redis_info);
    Client::open(info).map_err(|e| classify_error(&e))
}

/// The connection manager settings described in the module docs.
pub(crate) fn manager_config(config: &ConnectionConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(config.socket_connect_timeout))
        .set_response_timeout(Some(config.socket_timeout))
        .set_min_delay(std::time::Duration::from_millis(10))
        .set_max_delay(std::time::Duration::from_millis(100))
}

struct Slot {
    generation: u64,
    manager: ConnectionManager,
    answered: Arc<AtomicBool>,
}

/// One manager handed out by [`Connector::current`], with what is needed to report back.
pub(crate) struct Lease {
    /// Which manager this is, for [`Connector::renew`].
    pub(crate) generation: u64,
    /// The manager to send on.
    pub(crate) manager: ConnectionManager,
    answered: Arc<AtomicBool>,
}

impl Lease {
    /// Records that this manager's connection answered a command.
    pub(crate) fn mark_answered(&self) {
        if !self.answered.load(Ordering::Relaxed) {
            self.answered.store(true, Ordering::Relaxed);
        }
    }

    /// Whether this manager's connection ever answered: a timeout on a connection that
    /// never answered is still its connect attempt, which the manager ends by itself
    /// (`connection_timeout`, then a reconnect); replacing it would restart a slow
    /// connect again and again.
    pub(crate) fn has_answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }
}

/// The current connection manager, swappable for a fresh one.
///
/// Reading it takes an uncontended read lock for the time of two `Arc` clones; it is never
/// held across an `await`.
pub(crate) struct Connector {
    client: Client,
    config: ConnectionManagerConfig,
    slot: RwLock<Slot>,
}

impl Connector {
    /// Wraps an already connected manager.
    pub(crate) fn new(
        client: Client,
        config: ConnectionManagerConfig,
        manager: ConnectionManager,
    ) -> Self {
        Connector {
            client,
            config,
            slot: RwLock::new(Slot {
                generation: 0,
                manager,
                answered: Arc::new(AtomicBool::new(true)),
            }),
        }
    }

    /// The manager to use now, with its generation (to pass to [`Connector::renew`]).
    pub(crate) fn current(&self) -> Lease {
        let slot = self.slot.read().unwrap_or_else(|p| p.into_inner());
        Lease {
            generation: slot.generation,
            manager: slot.manager.clone(),
            answered: Arc::clone(&slot.answered),
        }
    }

    /// Replaces the manager of `generation` by a fresh one that connects on first use.
    /// Does nothing if another call already replaced it, so a burst of timeouts makes one
    /// new connection, not one each.
    pub(crate) fn renew(&self, generation: u64) {
        let mut slot = self.slot.write().unwrap_or_else(|p| p.into_inner());
        if slot.generation != generation {
            return;
        }
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(manager) => {
                slot.manager = manager;
                slot.answered = Arc::new(AtomicBool::new(false));
                slot.generation = slot.generation.wrapping_add(1);
                tracing::debug!(
                    backend = "redis-rs",
                    generation = slot.generation,
                    "replaced the connection after a timeout or failed handshake"
                );
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
    fn unsupported_modes_are_invalid_input() {
        let tls = ConnectionConfig::from_url("rediss://localhost").unwrap();
        assert_eq!(
            client_for(&tls).err().unwrap().kind(),
            ErrorKind::InvalidInput
        );
        let cluster = ConnectionConfig {
            cluster_nodes: vec![("a".into(), 1)],
            ..ConnectionConfig::default()
        };
        assert_eq!(
            client_for(&cluster).err().unwrap().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn manager_never_retries_and_uses_our_timeouts() {
        let config = ConnectionConfig {
            socket_timeout: Duration::from_millis(300),
            socket_connect_timeout: Duration::from_millis(200),
            ..ConnectionConfig::default()
        };
        let m = manager_config(&config);
        assert_eq!(m.number_of_retries(), 0);
        assert_eq!(m.response_timeout(), Some(Duration::from_millis(300)));
        assert_eq!(m.connection_timeout(), Some(Duration::from_millis(200)));
    }
}
