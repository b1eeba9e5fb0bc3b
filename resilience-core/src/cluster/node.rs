//! [`Node`]: one cluster node's single-server backend, connected on first use, and
//! [`ConnectNode`], how a driver opens one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::{BackendError, ConnectionConfig, ErrorKind, KvBackend};

use super::slot_map::Addr;

/// Opens a single-server connection to one cluster node, for a
/// [`ClusterBackend`](crate::ClusterBackend).
///
/// A driver implements this with its ordinary single-server connect. The connection must
/// follow the [`KvBackend`] promises of a single server: every call ends within the
/// socket timeout, and a failure after the command may have been sent is `Timeout`,
/// never `Unavailable`, so that the router can tell "did not run" from "may have run".
/// It must not resend commands by itself, and should reconnect in the background after a
/// lost connection (the router keeps using the same backend for the node).
///
/// Any `Fn(ConnectionConfig) -> impl Future<Output = Result<Arc<dyn KvBackend>, _>>`
/// closure is a `ConnectNode`.
#[async_trait]
pub trait ConnectNode: Send + Sync + 'static {
    /// Connects to the node at `config.host`:`config.port`. `config` is the cluster's
    /// configuration with that address, no `cluster_nodes` and client tracking off.
    async fn connect_node(
        &self,
        config: ConnectionConfig,
    ) -> Result<Arc<dyn KvBackend>, BackendError>;
}

#[async_trait]
impl<F, Fut> ConnectNode for F
where
    F: Fn(ConnectionConfig) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Arc<dyn KvBackend>, BackendError>> + Send + 'static,
{
    async fn connect_node(
        &self,
        config: ConnectionConfig,
    ) -> Result<Arc<dyn KvBackend>, BackendError> {
        self(config).await
    }
}

/// A connect in progress, awaited by every caller that needs the node meanwhile.
type Connecting = Shared<BoxFuture<'static, Result<Arc<dyn KvBackend>, BackendError>>>;

/// One node: its address and, once connected, its backend.
pub(crate) struct Node {
    addr: Addr,
    backend: OnceLock<Arc<dyn KvBackend>>,
    connecting: Mutex<Option<Connecting>>,
    /// Until when (the router's clock, in ms) reads leave this replica out after it
    /// failed one; 0 when it has not failed.
    left_out_until_ms: AtomicU64,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("addr", &self.addr)
            .field("connected", &self.backend.get().is_some())
            .finish()
    }
}

impl Node {
    /// A node not connected yet.
    pub(crate) fn new(addr: Addr) -> Node {
        Node {
            addr,
            backend: OnceLock::new(),
            connecting: Mutex::new(None),
            left_out_until_ms: AtomicU64::new(0),
        }
    }

    /// A node with a backend already connected.
    pub(crate) fn connected(addr: Addr, backend: Arc<dyn KvBackend>) -> Node {
        let node = Node::new(addr);
        let _ = node.backend.set(backend);
        node
    }

    /// The node's address as the cluster announces it.
    pub(crate) fn addr(&self) -> &Addr {
        &self.addr
    }

    /// Leaves this replica out of reads until `until_ms` (the router's clock).
    pub(crate) fn leave_out_until(&self, until_ms: u64) {
        self.left_out_until_ms.store(until_ms, Ordering::Relaxed);
    }

    /// Whether reads leave this replica out at `now_ms` (the router's clock).
    #[inline]
    pub(crate) fn is_left_out(&self, now_ms: u64) -> bool {
        self.left_out_until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// The backend, without waiting: `None` until the first connect succeeded.
    #[inline]
    pub(crate) fn ready(&self) -> Option<&Arc<dyn KvBackend>> {
        self.backend.get()
    }

    /// The backend, connecting it first if needed with `connector` and `base` (its
    /// host and port replaced by the node's).
    ///
    /// The connect runs in its own task, so a caller that gives up (at its deadline)
    /// does not abort it half-way, and callers for the same node share it. A failed
    /// connect is not remembered: the next call tries again.
    pub(crate) async fn backend(
        &self,
        connector: &Arc<dyn ConnectNode>,
        base: &ConnectionConfig,
    ) -> Result<Arc<dyn KvBackend>, BackendError> {
        if let Some(backend) = self.backend.get() {
            return Ok(Arc::clone(backend));
        }
        let connecting = {
            let mut pending = self
                .connecting
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match &*pending {
                Some(shared) => shared.clone(),
                None => {
                    let config = node_config(base, &self.addr)?;
                    let connector = Arc::clone(connector);
                    let task = tokio::spawn(async move { connector.connect_node(config).await });
                    let addr = Arc::clone(&self.addr);
                    let shared = async move {
                        task.await.unwrap_or_else(|e| {
                            Err(BackendError::unavailable(format!(
                                "the connect to cluster node {addr} failed: {e}"
                            )))
                        })
                    }
                    .boxed()
                    .shared();
                    *pending = Some(shared.clone());
                    shared
                }
            }
        };
        let result = connecting.await;
        *self
            .connecting
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let backend = result?;
        Ok(Arc::clone(self.backend.get_or_init(|| backend)))
    }
}

/// `base` pointed at `addr` (`host:port`, IPv6 hosts in brackets or not), or at what
/// `base.cluster_address_map` maps it to.
pub(crate) fn node_config(
    base: &ConnectionConfig,
    announced: &str,
) -> Result<ConnectionConfig, BackendError> {
    let addr = base
        .cluster_address_map
        .iter()
        .find(|(from, _)| from == announced)
        .map_or(announced, |(_, to)| to.as_str());
    let bad = || {
        BackendError::new(
            ErrorKind::InvalidInput,
            format!("bad cluster node address {addr:?}: expected host:port"),
        )
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok(base.clone().with_host(host.to_owned()).with_port(port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::MapBackend;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn node_addresses_become_configs() {
        let base = ConnectionConfig::default().with_password("pw");
        let config = node_config(&base, "10.0.0.1:7001").unwrap();
        assert_eq!((config.host.as_str(), config.port), ("10.0.0.1", 7001));
        assert_eq!(config.password.as_deref(), Some("pw"));
        let v6 = node_config(&base, "[::1]:7000").unwrap();
        assert_eq!(v6.host, "::1");
        let mapped = base
            .clone()
            .with_cluster_address_map(vec![("10.0.0.1:7001".into(), "127.0.0.1:17001".into())]);
        let config = node_config(&mapped, "10.0.0.1:7001").unwrap();
        assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 17001));
        let config = node_config(&mapped, "10.0.0.1:7002").unwrap();
        assert_eq!((config.host.as_str(), config.port), ("10.0.0.1", 7002));
        for bad in ["nohost", ":7000", "h:port", "h:70000"] {
            assert_eq!(
                node_config(&base, bad).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        }
    }

    #[tokio::test]
    async fn callers_share_one_connect_and_a_failure_is_not_remembered() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let connector: Arc<dyn ConnectNode> = Arc::new(move |config: ConnectionConfig| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::task::yield_now().await;
                if n == 0 {
                    Err(BackendError::unavailable(format!(
                        "{} refused",
                        config.port
                    )))
                } else {
                    Ok(Arc::new(MapBackend::new()) as Arc<dyn KvBackend>)
                }
            }
        });
        let node = Node::new(Arc::from("127.0.0.1:7000"));
        let base = ConnectionConfig::default();
        let first = node.backend(&connector, &base).await;
        assert_eq!(first.err().map(|e| e.kind()), Some(ErrorKind::Unavailable));
        assert!(node.ready().is_none());
        let (a, b) = tokio::join!(
            node.backend(&connector, &base),
            node.backend(&connector, &base)
        );
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(node.ready().is_some());
    }
}
