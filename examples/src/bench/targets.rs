//! The things measured: each raw driver, set up exactly as its backend sets it up, and the
//! resilient client over that backend.
//!
//! - **redis-rs, raw:** a `redis::aio::ConnectionManager` (one multiplexed socket), built
//!   from the same client settings and `ConnectionManagerConfig` as `RedisRsBackend` (see
//!   `backend-redis-rs/src/connect.rs`: no driver retries, connect and response timeouts
//!   from the `ConnectionConfig`). Each task uses a clone, as the backend does per call.
//!   It has its own socket, separate from the backend's, configured the same way.
//! - **fred, raw:** the very `fred::clients::Client` the `FredBackend` uses
//!   ([`FredBackend::client`](backend_fred::FredBackend::client)), so the same socket,
//!   with the same per-command options
//!   ([`FredBackend::command_options`](backend_fred::FredBackend::command_options): one
//!   attempt, as the design requires, so no driver retry can apply a write twice).
//! - **resilient:** [`ResilientClient::set`] / [`ResilientClient::get`] over the backend.
//!
//! Every target sends the same bytes: `SET key value` and `GET key`, and checks the reply.

use bytes::Bytes;
use resilience_core::{Command, KvBackend, ResilientClient, SetOptions, Value};

use super::load::{OpError, Target};

/// The resilient client, through its typed `set` / `get` (what applications call).
#[derive(Clone)]
pub struct Resilient(pub ResilientClient);

impl std::fmt::Debug for Resilient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resilient").finish_non_exhaustive()
    }
}

impl Target for Resilient {
    async fn set(&self, key: &str, value: &Bytes) -> Result<(), OpError> {
        match self.0.set(key, value.clone(), SetOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(OpError("SET was not applied".into())),
            Err(e) => Err(OpError(e.to_string())),
        }
    }

    async fn get(&self, key: &str, expected_len: usize) -> Result<(), OpError> {
        match self.0.get(key).await {
            Ok(Some(v)) if v.len() == expected_len => Ok(()),
            Ok(other) => Err(OpError(format!("GET {key}: unexpected reply {other:?}"))),
            Err(e) => Err(OpError(e.to_string())),
        }
    }
}

/// The backend alone, without the resilient client: `KvBackend::execute` with a [`Command`].
/// Diagnostic only (`--with-backend-mode`): it splits the overhead between the backend
/// (translation, reply shaping, its timeout) and the client (breaker, metrics, tracing).
#[derive(Clone)]
pub struct BackendOnly(pub std::sync::Arc<dyn KvBackend>);

impl std::fmt::Debug for BackendOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendOnly").finish_non_exhaustive()
    }
}

impl Target for BackendOnly {
    async fn set(&self, key: &str, value: &Bytes) -> Result<(), OpError> {
        let cmd = Command::Set {
            key: key.to_owned(),
            value: value.clone(),
            options: SetOptions::default(),
        };
        match (*self.0).execute(cmd).await {
            Ok(Value::Okay) => Ok(()),
            Ok(other) => Err(OpError(format!("SET: unexpected reply {other:?}"))),
            Err(e) => Err(OpError(e.to_string())),
        }
    }

    async fn get(&self, key: &str, expected_len: usize) -> Result<(), OpError> {
        let cmd = Command::Get {
            key: key.to_owned(),
        };
        match (*self.0).execute(cmd).await {
            Ok(Value::Bytes(v)) if v.len() == expected_len => Ok(()),
            Ok(other) => Err(OpError(format!("GET {key}: unexpected reply {other:?}"))),
            Err(e) => Err(OpError(e.to_string())),
        }
    }
}

#[cfg(feature = "redis-rs")]
pub use redis_rs::{RawRedisRs, get_on, set_on};

#[cfg(feature = "redis-rs")]
mod redis_rs {
    use bytes::Bytes;
    use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};
    use resilience_core::ConnectionConfig;

    use crate::bench::load::{OpError, Target};

    /// The raw redis-rs driver: a clone of one `ConnectionManager` per task.
    #[derive(Clone)]
    pub struct RawRedisRs(ConnectionManager);

    impl std::fmt::Debug for RawRedisRs {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RawRedisRs").finish_non_exhaustive()
        }
    }

    impl RawRedisRs {
        /// Connects a `ConnectionManager` configured as `RedisRsBackend` configures its own.
        pub async fn connect(config: &ConnectionConfig) -> Result<Self, OpError> {
            let err = |e: redis::RedisError| OpError(format!("redis-rs raw connect: {e}"));
            let mut settings = RedisConnectionInfo::default().set_db(config.db);
            if let Some(user) = &config.username {
                settings = settings.set_username(user);
            }
            if let Some(password) = &config.password {
                settings = settings.set_password(password);
            }
            let info: ConnectionInfo = ConnectionAddr::Tcp(config.host.clone(), config.port)
                .into_connection_info()
                .map_err(err)?
                .set_redis_settings(settings);
            let client = Client::open(info).map_err(err)?;
            // The same settings as backend-redis-rs's `manager_config`.
            let manager_config = ConnectionManagerConfig::new()
                .set_number_of_retries(0)
                .set_connection_timeout(Some(config.socket_connect_timeout))
                .set_response_timeout(Some(config.socket_timeout))
                .set_min_delay(std::time::Duration::from_millis(10))
                .set_max_delay(std::time::Duration::from_millis(100));
            let manager = ConnectionManager::new_with_config(client, manager_config)
                .await
                .map_err(err)?;
            Ok(RawRedisRs(manager))
        }

        /// A clone of the connection manager (one per call, as the backend does).
        pub fn manager(&self) -> ConnectionManager {
            self.0.clone()
        }
    }

    impl Target for RawRedisRs {
        async fn set(&self, key: &str, value: &Bytes) -> Result<(), OpError> {
            set_on(&mut self.0.clone(), key, value).await
        }

        async fn get(&self, key: &str, expected_len: usize) -> Result<(), OpError> {
            get_on(&mut self.0.clone(), key, expected_len).await
        }
    }

    /// `SET key value` on any redis-rs connection (one server or a cluster), checking the
    /// reply.
    pub async fn set_on(
        conn: &mut impl redis::aio::ConnectionLike,
        key: &str,
        value: &Bytes,
    ) -> Result<(), OpError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value.as_ref());
        match cmd.query_async::<redis::Value>(conn).await {
            Ok(redis::Value::Okay) => Ok(()),
            Ok(other) => Err(OpError(format!("SET: unexpected reply {other:?}"))),
            Err(e) => Err(OpError(e.to_string())),
        }
    }

    /// `GET key` on any redis-rs connection, checking the value's length.
    pub async fn get_on(
        conn: &mut impl redis::aio::ConnectionLike,
        key: &str,
        expected_len: usize,
    ) -> Result<(), OpError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        match cmd.query_async::<redis::Value>(conn).await {
            Ok(redis::Value::BulkString(v)) if v.len() == expected_len => Ok(()),
            Ok(other) => Err(OpError(format!("GET {key}: unexpected reply {other:?}"))),
            Err(e) => Err(OpError(e.to_string())),
        }
    }
}

#[cfg(feature = "fred")]
pub use fred_raw::{RawFred, fred_get, fred_set};

#[cfg(feature = "fred")]
mod fred_raw {
    use bytes::Bytes;
    use fred::clients::WithOptions;
    use fred::prelude::{Client, KeysInterface};

    use crate::bench::load::{OpError, Target};

    /// The raw fred client: the one `FredBackend` sends on, with the per-command options it
    /// sends every command with (one attempt, no redirections, its timeout, fail fast),
    /// through fred's typed commands.
    #[derive(Clone)]
    pub struct RawFred(pub WithOptions<Client>);

    impl std::fmt::Debug for RawFred {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RawFred").finish_non_exhaustive()
        }
    }

    impl Target for RawFred {
        async fn set(&self, key: &str, value: &Bytes) -> Result<(), OpError> {
            fred_set(&self.0, key, value).await
        }

        async fn get(&self, key: &str, expected_len: usize) -> Result<(), OpError> {
            fred_get(&self.0, key, expected_len).await
        }
    }

    /// `SET key value` through any fred client (one server or a cluster).
    pub async fn fred_set(
        client: &(impl KeysInterface + Sync),
        key: &str,
        value: &Bytes,
    ) -> Result<(), OpError> {
        client
            .set::<(), _, _>(key, value.clone(), None, None, false)
            .await
            .map_err(|e| OpError(e.to_string()))
    }

    /// `GET key` through any fred client, checking the value's length.
    pub async fn fred_get(
        client: &(impl KeysInterface + Sync),
        key: &str,
        expected_len: usize,
    ) -> Result<(), OpError> {
        match client.get::<Option<Bytes>, _>(key).await {
            Ok(Some(v)) if v.len() == expected_len => Ok(()),
            Ok(other) => Err(OpError(format!("GET {key}: unexpected reply {other:?}"))),
            Err(e) => Err(OpError(e.to_string())),
        }
    }
}
