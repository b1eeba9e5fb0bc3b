//! Redis Cluster mode: the core's [`ClusterBackend`] over one single-server
//! [`RedisRsBackend`] per node.
//!
//! redis-rs has a cluster connection of its own, but it resends a request after a
//! connection error (that is how it moves a request to a new master after a failover),
//! so a write the server applied just before its connection dropped could be applied
//! twice. The core's router never resends after a failure, and routes for every driver
//! the same way. Each node gets an ordinary single-server connection, configured as in
//! single-server mode (see the crate docs): its own reconnects, its own `socket_timeout`.

use std::sync::Arc;

use resilience_core::{BackendError, ClusterBackend, ConnectionConfig, KvBackend};

use crate::RedisRsBackend;

/// Connects to the cluster named by `config.cluster_nodes` (see [`ClusterBackend::connect`]).
pub(crate) async fn connect(config: &ConnectionConfig) -> Result<ClusterBackend, BackendError> {
    ClusterBackend::connect(config, |node: ConnectionConfig| async move {
        let backend = RedisRsBackend::connect_single(&node).await?;
        Ok(Arc::new(backend) as Arc<dyn KvBackend>)
    })
    .await
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use resilience_core::ErrorKind;

    #[tokio::test]
    async fn cluster_urls_are_checked_before_connecting() {
        let config =
            ConnectionConfig::from_url("redis://u:pw@127.0.0.1:7000?cluster=127.0.0.1:7001")
                .unwrap();
        assert_eq!(describe(&config), "cluster[127.0.0.1:7000,127.0.0.1:7001]");
        let db = config.with_db(3);
        assert_eq!(
            connect(&db).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
