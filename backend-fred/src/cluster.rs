//! Redis Cluster mode: the core's [`ClusterBackend`] over one single-server
//! [`FredBackend`] per node.
//!
//! Why not fred's own clustered client: fred 10 reconnects a clustered client as a whole.
//! Losing one node's connection starts a full re-sync (`CLUSTER SLOTS`, then connect to
//! every master), and until it succeeds the client is not `Connected`, so every command
//! fails, whatever its slot; while a dead master is still listed as the owner of its slots
//! (until its replica is promoted) the re-sync keeps failing. One dead shard would stop
//! them all. It also follows `MOVED` with a second write attempt, so it may resend a
//! command after a connection drop.
//!
//! So each node gets an ordinary single-server client, configured as in single-server
//! mode (see the crate docs: one attempt, `fail_fast`, timeouts, background reconnects),
//! and the core's router, the same for every driver, routes between them: a dead master
//! only fails the commands for its own slots, and nothing is resent after a failure.

use std::sync::{Arc, OnceLock};

use resilience_core::{BackendError, ClusterBackend, ConnectionConfig, KvBackend};

use crate::FredBackend;

/// Connects to the cluster named by `config.cluster_nodes` (see
/// [`ClusterBackend::connect`]). Also returns the first node's backend, whose client
/// [`FredBackend::client`] hands out.
pub(crate) async fn connect(
    config: &ConnectionConfig,
) -> Result<(ClusterBackend, FredBackend), BackendError> {
    let first: Arc<OnceLock<FredBackend>> = Arc::new(OnceLock::new());
    let record = Arc::clone(&first);
    let cluster = ClusterBackend::connect(config, move |node: ConnectionConfig| {
        let record = Arc::clone(&record);
        async move {
            let backend = FredBackend::connect_single(&node).await?;
            let _ = record.set(backend.clone());
            Ok(Arc::new(backend) as Arc<dyn KvBackend>)
        }
    })
    .await?;
    let seed = first.get().cloned().ok_or_else(|| {
        BackendError::unavailable("fred: the cluster answered before any node was connected")
    })?;
    Ok((cluster, seed))
}
