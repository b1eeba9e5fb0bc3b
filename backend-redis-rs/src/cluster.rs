//! Redis Cluster mode: a redis-rs `ClusterConnection` configured like the single-server
//! manager, so an outage still reaches the core within `socket_timeout`.
//!
//! | redis-rs cluster setting | value | why |
//! |---|---|---|
//! | `connection_timeout` | `socket_connect_timeout` | bounds every connect to every node |
//! | `response_timeout` | `socket_timeout` | bounds each attempt on a node |
//! | `overall_response_timeout` | `socket_timeout` | bounds the whole request, redirects and retries included (unset, a request could retry for much longer) |
//! | `retries` | [`CLUSTER_RETRIES`] | enough to follow a `MOVED` and an `ASK` and to re-route once after a topology change |
//! | retry waits | 10 ms .. 100 ms | a retry after `TRYAGAIN`/`CLUSTERDOWN` stays well inside `socket_timeout` |
//!
//! On top of that the backend keeps its own deadline per call (`socket_timeout`), as in
//! single-server mode.
//!
//! Routing is the driver's: a single command goes to the master of its first key's slot
//! (`EVALSHA` by its first key), a keyless command to a random node (`SCRIPT LOAD` to all
//! masters). A batch goes, whole, to the master of the first keyed command's slot, so a
//! `MULTI`/`EXEC` batch works when all its keys share a slot (use a hash tag) and fails
//! with `CROSSSLOT` otherwise.
//!
//! One difference from single-server mode, by the driver's design: the cluster connection
//! resends a request after a connection error (it is how it moves a request to a new
//! master after a failover). A write whose connection dropped after the server applied it
//! can therefore be applied twice; keep cluster writes idempotent where that matters (the
//! memory tiers' writes are).

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsMode};
use resilience_core::{BackendError, ConnectionConfig, ErrorKind};

use crate::classify::classify_error;
use crate::connect::{install_ring_provider, tls_certificates};

/// How many times the cluster connection resends one request (redirects included).
pub(crate) const CLUSTER_RETRIES: u32 = 3;

/// The cluster client for `config` (see the module docs for each setting).
pub(crate) fn cluster_client(config: &ConnectionConfig) -> Result<ClusterClient, BackendError> {
    if config.db != 0 {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            "a Redis Cluster has only database 0",
        ));
    }
    let mut nodes: Vec<ConnectionInfo> = Vec::with_capacity(config.cluster_nodes.len());
    for (host, port) in &config.cluster_nodes {
        let addr = match &config.tls {
            None => ConnectionAddr::Tcp(host.clone(), *port),
            Some(tls) => ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: tls.insecure,
                tls_params: None,
            },
        };
        nodes.push(
            addr.into_connection_info()
                .map_err(|e| classify_error(&e))?,
        );
    }
    let mut builder: ClusterClientBuilder = ClusterClient::builder(nodes)
        .connection_timeout(config.socket_connect_timeout)
        .response_timeout(config.socket_timeout)
        .overall_response_timeout(Some(config.socket_timeout))
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(10)
        .max_retry_wait(100)
        .retry_wait_formula(10, 2);
    if let Some(user) = &config.username {
        builder = builder.username(user);
    }
    if let Some(password) = &config.password {
        builder = builder.password(password);
    }
    if let Some(tls) = &config.tls {
        install_ring_provider();
        builder = builder.tls(if tls.insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        });
        if let Some(certs) = tls_certificates(tls)? {
            builder = builder.certs(certs);
        }
    }
    builder.build().map_err(|e| classify_error(&e))
}

/// Connects to the cluster (reads its slot map), bounded by `socket_connect_timeout`
/// plus `socket_timeout` (one connect, then one `CLUSTER SLOTS`).
pub(crate) async fn connect(config: &ConnectionConfig) -> Result<ClusterConnection, BackendError> {
    let client = cluster_client(config)?;
    let budget = config.socket_connect_timeout + config.socket_timeout;
    match tokio::time::timeout(budget, client.get_async_connection()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(classify_error(&e)),
        Err(_) => Err(BackendError::timeout(format!(
            "redis-rs: no connection to the cluster within {budget:?}"
        ))),
    }
}

/// The seeds, for `Debug` and error messages.
pub(crate) fn describe(config: &ConnectionConfig) -> String {
    let seeds: Vec<String> = config
        .cluster_nodes
        .iter()
        .map(|(h, p)| format!("{h}:{p}"))
        .collect();
    format!("cluster[{}]", seeds.join(","))
}

/// Sends one request on the cluster connection under `deadline`.
///
/// A single command that meets `MOVED` is followed by the driver, which then refreshes its
/// slot map. A batch is not: the driver hands the `MOVED` back (nothing of the batch ran;
/// a `MULTI` is aborted at queue time) and keeps its stale map, so every replay of a
/// queued batch would meet the same `MOVED`. So after a batch's `MOVED`, one read-only
/// `PTTL` of its first key goes through the driver's single-command path, which follows
/// the redirect and refreshes the map, and the batch is sent once more.
pub(crate) async fn send(
    conn: &ClusterConnection,
    request: crate::Request<'_>,
    deadline: tokio::time::Instant,
    socket_timeout: Duration,
    address: &str,
) -> Result<redis::Value, BackendError> {
    let mut conn = conn.clone();
    let attempt = async {
        match request {
            crate::Request::One(cmd) => cmd.query_async::<redis::Value>(&mut conn).await,
            crate::Request::Batch(pipe) => {
                let first = pipe.query_async::<redis::Value>(&mut conn).await;
                match first {
                    // In a transaction the `MOVED` is a queued command's error, under
                    // `EXECABORT`: the classified error names the first failing command's.
                    Err(e) if classify_error(&e).code() == Some("MOVED") => {
                        let key = pipe.cmd_iter().find_map(|c| match c.args_iter().nth(1) {
                            Some(redis::Arg::Simple(key)) => Some(key.to_vec()),
                            _ => None,
                        });
                        if let Some(key) = key {
                            let _ = redis::cmd("PTTL")
                                .arg(key)
                                .query_async::<redis::Value>(&mut conn)
                                .await;
                        }
                        pipe.query_async::<redis::Value>(&mut conn).await
                    }
                    other => other,
                }
            }
        }
    };
    match tokio::time::timeout_at(deadline, attempt).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify_error(&e)),
        Err(_) => Err(BackendError::timeout(format!(
            "redis-rs: no reply from {address} within {socket_timeout:?}"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_build_a_cluster_client() {
        let config =
            ConnectionConfig::from_url("redis://u:pw@127.0.0.1:7000?cluster=127.0.0.1:7001")
                .unwrap();
        assert!(cluster_client(&config).is_ok());
        let mut db = config.clone();
        db.db = 3;
        assert_eq!(
            cluster_client(&db).err().unwrap().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(describe(&config), "cluster[127.0.0.1:7000,127.0.0.1:7001]");
    }
}
