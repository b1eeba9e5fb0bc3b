//! `cluster`: `SET`/`GET` through the core's cluster router (a [`ResilientClient`](resilience_core::ResilientClient) over a
//! backend in cluster mode) against each driver's own cluster client, on a private Redis
//! Cluster of 3 masters and 3 replicas (every node on the server CPU when pinned).
//!
//! The raw side is what a user would otherwise pick: redis-rs's
//! `cluster_async::ClusterConnection` and fred's clustered `Client`, each with the same
//! timeouts as the backends. The keys are the `setget` ones, spread over every slot.

use std::sync::Arc;

use bytes::Bytes;
use testkit::server::RedisCluster;

use super::load::key_rings;
use super::{BackendChoice, Bench, BenchConfig, BenchError, KEYS_PER_TASK, Report};

/// The scenario's name.
pub const SCENARIO: &str = "cluster";

/// Measures every backend of `config` against its driver's cluster client.
pub async fn run(
    config: &BenchConfig,
    run_id: &str,
    report: &mut Report,
) -> Result<(), BenchError> {
    let mut builder = RedisCluster::builder();
    if let Some(split) = &config.pinning {
        builder = builder.cpus(vec![split.server]);
    }
    let cluster = builder.spawn().await?;
    let connection = cluster
        .connection_config()
        .with_socket_timeout(std::time::Duration::from_secs(2));
    let prefix = format!("bench:{run_id}:");
    let tasks = config.concurrency.iter().copied().max().unwrap_or(1);
    let keys = Arc::new(key_rings(&prefix, tasks, KEYS_PER_TASK));
    let value = Bytes::from(vec![b'x'; config.value_size]);
    for &backend in &config.backends {
        let bench = Bench {
            scenario: SCENARIO,
            config,
            backend,
            keys: Arc::clone(&keys),
            value: value.clone(),
        };
        match backend {
            BackendChoice::RedisRs => super::redis_rs(&bench, &connection, report).await?,
            BackendChoice::Fred => super::fred(&bench, &connection, report).await?,
        }
    }
    drop(cluster);
    Ok(())
}

/// The drivers' own cluster clients, as [`Target`](super::load::Target)s.
pub mod raw {
    #[cfg(feature = "fred")]
    pub use fred_cluster::RawFredCluster;
    #[cfg(feature = "redis-rs")]
    pub use redis_rs_cluster::RawRedisRsCluster;

    #[cfg(feature = "redis-rs")]
    mod redis_rs_cluster {
        use bytes::Bytes;
        use redis::cluster::ClusterClient;
        use redis::cluster_async::ClusterConnection;
        use resilience_core::ConnectionConfig;

        use crate::bench::load::{OpError, Target};
        use crate::bench::targets::{get_on, set_on};

        /// redis-rs's cluster connection, with the socket timeouts of the backend.
        #[derive(Clone)]
        pub struct RawRedisRsCluster(ClusterConnection);

        impl std::fmt::Debug for RawRedisRsCluster {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("RawRedisRsCluster").finish_non_exhaustive()
            }
        }

        impl RawRedisRsCluster {
            /// Connects to the cluster of `config.cluster_nodes`.
            pub async fn connect(config: &ConnectionConfig) -> Result<Self, OpError> {
                let err = |e: redis::RedisError| OpError(format!("redis-rs cluster connect: {e}"));
                let nodes: Vec<String> = config
                    .cluster_nodes
                    .iter()
                    .map(|(host, port)| format!("redis://{host}:{port}"))
                    .collect();
                let client = ClusterClient::builder(nodes)
                    .connection_timeout(config.socket_connect_timeout)
                    .response_timeout(config.socket_timeout)
                    .build()
                    .map_err(err)?;
                Ok(RawRedisRsCluster(
                    client.get_async_connection().await.map_err(err)?,
                ))
            }
        }

        impl Target for RawRedisRsCluster {
            async fn set(&self, key: &str, value: &Bytes) -> Result<(), OpError> {
                set_on(&mut self.0.clone(), key, value).await
            }

            async fn get(&self, key: &str, expected_len: usize) -> Result<(), OpError> {
                get_on(&mut self.0.clone(), key, expected_len).await
            }
        }
    }

    #[cfg(feature = "fred")]
    mod fred_cluster {
        use bytes::Bytes;
        use fred::prelude::{Client, ClientLike};
        use fred::types::Builder;
        use fred::types::config::{Config, ServerConfig};
        use resilience_core::ConnectionConfig;

        use crate::bench::load::{OpError, Target};
        use crate::bench::targets::{fred_get, fred_set};

        /// fred's clustered client, with the command timeout of the backend.
        #[derive(Clone)]
        pub struct RawFredCluster(Client);

        impl std::fmt::Debug for RawFredCluster {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("RawFredCluster").finish_non_exhaustive()
            }
        }

        impl RawFredCluster {
            /// Connects to the cluster of `config.cluster_nodes`.
            pub async fn connect(config: &ConnectionConfig) -> Result<Self, OpError> {
                let err = |e: fred::error::Error| OpError(format!("fred cluster connect: {e}"));
                let hosts: Vec<(String, u16)> = config.cluster_nodes.clone();
                let fred_config = Config {
                    server: ServerConfig::new_clustered(hosts),
                    ..Config::default()
                };
                let client = Builder::from_config(fred_config)
                    .with_performance_config(|perf| {
                        perf.default_command_timeout = config.socket_timeout;
                    })
                    .build()
                    .map_err(err)?;
                client.init().await.map_err(err)?;
                Ok(RawFredCluster(client))
            }
        }

        impl Target for RawFredCluster {
            async fn set(&self, key: &str, value: &Bytes) -> Result<(), OpError> {
                fred_set(&self.0, key, value).await
            }

            async fn get(&self, key: &str, expected_len: usize) -> Result<(), OpError> {
                fred_get(&self.0, key, expected_len).await
            }
        }
    }
}
