//! Connecting: [`ConnectionConfig`] to a fred client configured so the core, not fred,
//! decides about retries.
//!
//! fred's defaults hide outages, so every knob that matters is set:
//!
//! | fred setting | value | why |
//! |---|---|---|
//! | `ConnectionConfig::connection_timeout` | `socket_connect_timeout` | bounds every TCP connect, first or reconnect |
//! | `ConnectionConfig::internal_command_timeout` | `socket_timeout` | bounds `AUTH`/`SELECT` on (re)connect |
//! | `ConnectionConfig::max_command_attempts` | 1 | fred never re-sends a command: no double-applied `INCR` |
//! | `UnresponsiveConfig::max_timeout` | `socket_timeout` | a connection whose replies stop (a hung server, a blackhole) is closed and rebuilt instead of staying wedged |
//! | `PerformanceConfig::default_command_timeout` | `socket_timeout` | no command waits longer than the socket timeout |
//! | `ReconnectPolicy` | exponential 20 ms .. 200 ms, forever | fred reconnects in the background; commands succeed again a fraction of a second after the server returns |
//! | `ConnectionConfig::reconnect_errors` | `READONLY`, `MASTERDOWN` in sentinel mode, none otherwise | a demoted master makes fred reconnect through the sentinels (see `sentinel`) |
//! | `Config::fail_fast` | true | the first connect reports its error instead of looping |
//! | per-command `Options::fail_fast` | true | while disconnected a command fails at once with `Unavailable` instead of waiting in fred's buffer |
//!
//! `connect` also sends one `PING` (bounded by `socket_connect_timeout`) so that a server
//! that accepts connections but never answers, or that needs a password, fails `connect`
//! with `Timeout` / `Auth` instead of failing later.

use std::time::Duration;

use fred::prelude::{ClientLike, ReconnectPolicy, Server, ServerConfig};
use fred::types::config::{
    Config, ConnectionConfig as FredConnectionConfig, Options, PerformanceConfig,
    UnresponsiveConfig,
};
use fred::types::{Builder, RespVersion};
use resilience_core::{BackendError, ConnectionConfig, ErrorKind};

/// First delay between reconnection attempts, in milliseconds.
pub(crate) const RECONNECT_MIN_DELAY_MS: u32 = 20;
/// Largest delay between reconnection attempts, in milliseconds: bounds the time from the
/// server coming back to commands succeeding again.
pub(crate) const RECONNECT_MAX_DELAY_MS: u32 = 200;

/// Builds the fred configuration for `cfg` (see the module docs for each setting).
pub(crate) fn build_client(cfg: &ConnectionConfig) -> Result<fred::prelude::Client, BackendError> {
    build(cfg, PerformanceConfig::default().broadcast_channel_capacity)
}

/// How many messages a subscriber's client holds for its reader: fred's default (32)
/// would drop messages of a burst before the reader's task runs.
const SUBSCRIBER_BROADCAST_CAPACITY: usize = 4096;

/// [`build_client`] for a Pub/Sub connection.
pub(crate) fn build_subscriber(
    cfg: &ConnectionConfig,
) -> Result<fred::prelude::Client, BackendError> {
    build(cfg, SUBSCRIBER_BROADCAST_CAPACITY)
}

fn build(
    cfg: &ConnectionConfig,
    broadcast_capacity: usize,
) -> Result<fred::prelude::Client, BackendError> {
    if !cfg.cluster_nodes.is_empty() {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            "one fred client serves one server or a sentinel-managed master; this configuration names a Redis Cluster (cluster_nodes): connect it with resilient_redis::connect, or ClusterBackend::connect over one FredBackend per node",
        ));
    }
    let database = match cfg.db {
        0 => None,
        db => Some(u8::try_from(db).map_err(|_| {
            BackendError::new(
                ErrorKind::InvalidInput,
                format!(
                    "database index {db} is out of range 0..=255: use a database the server has (`databases` in redis.conf, 16 by default)"
                ),
            )
        })?),
    };
    let tls = cfg
        .tls
        .as_ref()
        .map(crate::tls::fred_tls_config)
        .transpose()?;
    let config = Config {
        fail_fast: true,
        tls,
        username: cfg.username.clone(),
        password: cfg.password.clone(),
        server: match &cfg.sentinel {
            Some(sentinel) => crate::sentinel::server_config(sentinel)?,
            None => ServerConfig::Centralized {
                server: Server::new(cfg.host.clone(), cfg.port),
            },
        },
        // RESP3 only for client tracking: invalidations arrive as pushes (see `tracking`).
        version: if cfg.client_tracking {
            RespVersion::RESP3
        } else {
            RespVersion::RESP2
        },
        database,
        ..Config::default()
    };
    let socket_timeout = nonzero(cfg.socket_timeout);
    let connection = FredConnectionConfig {
        connection_timeout: nonzero(cfg.socket_connect_timeout),
        internal_command_timeout: socket_timeout,
        max_command_attempts: 1,
        reconnect_errors: crate::sentinel::reconnect_errors(cfg.sentinel.is_some()),
        unresponsive: UnresponsiveConfig {
            max_timeout: Some(socket_timeout),
            interval: (socket_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)),
        },
        ..FredConnectionConfig::default()
    };
    let performance = PerformanceConfig {
        default_command_timeout: socket_timeout,
        broadcast_channel_capacity: broadcast_capacity,
        ..PerformanceConfig::default()
    };
    Builder::from_config(config)
        .set_connection_config(connection)
        .set_performance_config(performance)
        .set_policy(ReconnectPolicy::new_exponential(
            0,
            RECONNECT_MIN_DELAY_MS,
            RECONNECT_MAX_DELAY_MS,
            2,
        ))
        .build()
        .map_err(|e| crate::classify_error(&e))
}

/// Per-command options: fail at once while disconnected, one attempt, `socket_timeout`.
pub(crate) fn command_options(cfg: &ConnectionConfig) -> Options {
    Options {
        max_attempts: Some(1),
        max_redirections: Some(0),
        timeout: Some(nonzero(cfg.socket_timeout)),
        fail_fast: true,
        ..Options::default()
    }
}

/// fred treats a zero duration as "no timeout"; never pass zero.
fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// Initialises the client: connects (bounded by fred's connect and internal-command
/// timeouts, and a backstop here) and pings. On failure the client is shut down.
pub(crate) async fn init(
    client: &fred::prelude::Client,
    cfg: &ConnectionConfig,
) -> Result<fred::types::ConnectHandle, BackendError> {
    let budget = nonzero(cfg.socket_connect_timeout) + nonzero(cfg.socket_timeout);
    let handle = match tokio::time::timeout(budget, client.init()).await {
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) => return Err(crate::classify_error(&e).at_connect()),
        Err(_) => {
            stop(client).await;
            return Err(BackendError::timeout(format!(
                "connecting to {}:{} timed out after {budget:?}",
                cfg.host, cfg.port
            )));
        }
    };
    let ping = client.with_options(&Options {
        timeout: Some(nonzero(cfg.socket_connect_timeout)),
        ..command_options(cfg)
    });
    let cmd =
        fred::types::CustomCommand::new_static("PING", fred::types::ClusterHash::FirstKey, false);
    let probe = tokio::time::timeout(
        nonzero(cfg.socket_connect_timeout) + Duration::from_millis(50),
        ping.custom_raw::<fred::types::Value>(cmd, Vec::new()),
    )
    .await;
    let result = match probe {
        Ok(Ok(frame)) => crate::reply::frame_to_value(frame).map(|_| ()),
        Ok(Err(e)) => Err(crate::classify_error(&e).at_connect()),
        Err(_) => Err(BackendError::timeout("PING after connect timed out")),
    };
    match result {
        Ok(()) => Ok(handle),
        Err(e) => {
            stop(client).await;
            handle.abort();
            Err(e)
        }
    }
}

/// Logs why fred's background reconnects fail, which commands do not show: while fred is
/// disconnected a command fails fast with "Connection closed unexpectedly"
/// (`Unavailable`), whatever the cause. A TLS failure (say, the server's certificate was
/// replaced by one from a CA the client does not trust) is logged at `warn` with the
/// classified message (`TLS handshake failed …`), once per distinct message in a row;
/// other connection errors at `debug`. Every error and every reconnect also goes to
/// `link`, which from an error until the next reconnect refuses calls as not sent, and
/// makes those failing while the credentials are refused say `Auth` (see `link_state`).
/// Errors are taken before reconnects when both are waiting, so a reconnect is never
/// applied before the error that preceded it. The task ends when the client is dropped
/// (its channels close) or when the backend aborts it.
pub(crate) fn spawn_error_log(
    client: &fred::prelude::Client,
    link: std::sync::Arc<crate::link_state::LinkState>,
) -> tokio::task::JoinHandle<()> {
    use fred::interfaces::EventInterface;
    use tokio::sync::broadcast::error::RecvError;
    let mut errors = client.error_rx();
    let mut reconnects = client.reconnect_rx();
    tokio::spawn(async move {
        let mut last_warned: Option<String> = None;
        loop {
            let (error, server) = tokio::select! {
                biased;
                error = errors.recv() => match error {
                    Ok(error) => error,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                },
                reconnected = reconnects.recv() => match reconnected {
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        link.connected();
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                },
            };
            let classified = crate::classify_error(&error);
            link.connection_error(&classified);
            let server = server.map(|s| s.to_string()).unwrap_or_default();
            let message = classified.to_string();
            if message.contains("TLS") {
                if last_warned.as_deref() != Some(message.as_str()) {
                    tracing::warn!(backend = "fred", %server, error = %classified, "connection failed");
                    last_warned = Some(message);
                }
            } else {
                tracing::debug!(backend = "fred", %server, error = %classified, "connection error");
                last_warned = None;
            }
        }
    })
}

/// Stops the client's connection task without waiting on a dead server for long.
pub(crate) async fn stop(client: &fred::prelude::Client) {
    let _ = tokio::time::timeout(Duration::from_millis(100), client.quit()).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use resilience_core::{SentinelConfig, TlsConfig};

    fn base() -> ConnectionConfig {
        ConnectionConfig::default()
            .with_host("127.0.0.1")
            .with_port(1)
    }

    #[test]
    fn unsupported_configurations_are_invalid_input() {
        let mut tls = base();
        tls.tls = Some(TlsConfig::default().with_ca_file("/nonexistent/ca.pem"));
        let mut cluster = base();
        cluster.cluster_nodes = vec![("127.0.0.1".to_owned(), 7000)];
        let mut sentinel = base();
        sentinel.sentinel = Some(
            SentinelConfig::default()
                .with_master_name("m")
                .with_nodes(vec![]),
        );
        let mut db = base();
        db.db = 256;
        let mut negative_db = base();
        negative_db.db = -1;
        for cfg in [tls, cluster, sentinel, db, negative_db] {
            let err = build_client(&cfg).map(|_| ()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        }
    }

    #[test]
    fn supported_configuration_builds_with_the_documented_settings() {
        let mut cfg = base();
        cfg.db = 255;
        cfg.password = Some("pw".to_owned());
        cfg.socket_timeout = Duration::from_millis(250);
        cfg.socket_connect_timeout = Duration::from_millis(400);
        let client = build_client(&cfg).map_err(|e| e.to_string());
        let client = match client {
            Ok(c) => c,
            Err(e) => panic!("build failed: {e}"),
        };
        let conn = client.connection_config();
        assert_eq!(conn.max_command_attempts, 1);
        assert_eq!(conn.connection_timeout, Duration::from_millis(400));
        assert_eq!(conn.internal_command_timeout, Duration::from_millis(250));
        assert_eq!(
            conn.unresponsive.max_timeout,
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            client.perf_config().default_command_timeout,
            Duration::from_millis(250)
        );
        assert!(client.client_reconnect_policy().is_some());
        assert_eq!(client.client_config().database, Some(255));
        assert!(client.client_config().fail_fast);
        let opts = command_options(&cfg);
        assert!(opts.fail_fast);
        assert_eq!(opts.max_attempts, Some(1));
        assert_eq!(opts.timeout, Some(Duration::from_millis(250)));
    }

    #[test]
    fn zero_timeouts_never_mean_no_timeout() {
        assert_eq!(nonzero(Duration::ZERO), Duration::from_millis(1));
        assert_eq!(nonzero(Duration::from_secs(2)), Duration::from_secs(2));
    }
}
