//! RESP3 client tracking for the client-side cache (`ConnectionConfig::client_tracking`).
//!
//! Only with `client_tracking` on; otherwise nothing here runs and the connection stays
//! RESP2. With it:
//!
//! - the client speaks RESP3 (`HELLO 3`), so invalidations arrive as push messages on the
//!   same connection; the connection manager hands every push to [`push_sender`]:
//!   `invalidate` pushes become [`TrackingHub::keys_changed`] (or `all_changed` for the null
//!   list `FLUSHALL`/`FLUSHDB` send), and the driver's `Disconnection` push becomes
//!   [`TrackingHub::connection_lost`];
//! - every connection must have `CLIENT TRACKING ON OPTIN`: `connect` turns it on before it
//!   returns, and the hub's enabler turns it on again after each loss. A RESP3 manager
//!   reconnects by itself after a disconnection, and the enabler's command goes through the
//!   backend (with its deadline and renewal rules), so it also drives the reconnect;
//! - the backend replaces its manager after a timeout (`Connector::renew`): the new one is
//!   not tracking, so the renewal reports a loss too (the hook set in `connect`);
//! - a cache fill is the hub's `tracked_read`: `CLIENT CACHING YES` + the read in one
//!   pipeline, on whichever connection is current.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock, Weak};

use redis::{PushInfo, PushKind};
use resilience_core::backend::TrackingHub;
use resilience_core::backend::{InvalidationFeed, TrackedReply};
use resilience_core::{BackendError, Command};
use tokio::task::JoinHandle;

use crate::{Inner, RedisRsBackend};

/// A backend's tracking: the hub, and the enabler task (aborted with the backend).
pub(crate) struct Tracking {
    pub(crate) hub: Arc<TrackingHub>,
    enabler: OnceLock<JoinHandle<()>>,
}

impl Drop for Tracking {
    fn drop(&mut self) {
        if let Some(task) = self.enabler.get() {
            task.abort();
        }
    }
}

impl Tracking {
    /// Tracking state for a backend being connected (off until [`Tracking::start`]).
    pub(crate) fn new() -> Self {
        Tracking {
            hub: TrackingHub::new(),
            enabler: OnceLock::new(),
        }
    }

    /// The connection manager's push sender (see the module docs).
    pub(crate) fn push_sender(
        &self,
    ) -> impl Fn(PushInfo) -> Result<(), Infallible> + Send + Sync + 'static {
        let hub = Arc::clone(&self.hub);
        move |push: PushInfo| {
            forward(&hub, push);
            Ok(())
        }
    }

    /// The hook `Connector::renew` calls after it replaced the manager.
    pub(crate) fn renew_hook(&self) -> Arc<dyn Fn() + Send + Sync> {
        let hub = Arc::clone(&self.hub);
        Arc::new(move || hub.connection_lost())
    }
}

/// Turns tracking on for a freshly connected backend and starts the enabler. Fails like a
/// command would (e.g. a server older than Redis 6 refuses `CLIENT TRACKING`).
pub(crate) async fn start(backend: &RedisRsBackend) -> Result<(), BackendError> {
    let Some(tracking) = &backend.inner.tracking else {
        return Ok(());
    };
    tracking.hub.enable(backend).await?;
    let weak: Weak<Inner> = Arc::downgrade(&backend.inner);
    let task = tracking.hub.spawn_enabler(move || {
        let inner = weak.upgrade()?;
        Some(async move {
            let backend = RedisRsBackend { inner };
            match &backend.inner.tracking {
                Some(tracking) => tracking.hub.enable(&backend).await,
                None => Ok(true),
            }
        })
    });
    let _ = tracking.enabler.set(task);
    Ok(())
}

/// [`KvBackend::invalidations`] for `backend`.
pub(crate) fn invalidations(backend: &RedisRsBackend) -> Option<InvalidationFeed> {
    backend.inner.tracking.as_ref().map(|t| t.hub.subscribe())
}

/// [`KvBackend::execute_tracked`] for `backend`.
pub(crate) async fn execute_tracked(
    backend: &RedisRsBackend,
    cmd: Command,
) -> Result<TrackedReply, BackendError> {
    let hub = backend.inner.tracking.as_ref().map(|t| &*t.hub);
    TrackingHub::execute_tracked(hub, backend, cmd).await
}

fn forward(hub: &TrackingHub, push: PushInfo) {
    match push.kind {
        PushKind::Invalidate => match push.data.first() {
            Some(redis::Value::Array(keys)) => {
                hub.keys_changed(keys.iter().filter_map(key_string).collect());
            }
            // The server sends a null list after FLUSHALL / FLUSHDB; anything else
            // unexpected is taken the safe way too.
            _ => hub.all_changed(),
        },
        PushKind::Disconnection => hub.connection_lost(),
        _ => {}
    }
}

/// A key of an invalidation. A key that is not UTF-8 cannot be in the cache (its keys are
/// strings), so it is skipped.
fn key_string(value: &redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use resilience_core::Invalidation;

    #[tokio::test]
    async fn pushes_become_invalidations() {
        let tracking = Tracking::new();
        let mut feed = tracking.hub.subscribe();
        assert!(!feed.tracking);
        let send = tracking.push_sender();
        let keys = redis::Value::Array(vec![
            redis::Value::BulkString(b"a".to_vec()),
            redis::Value::BulkString(vec![0xff]),
        ]);
        send(PushInfo {
            kind: PushKind::Invalidate,
            data: vec![keys],
        })
        .unwrap();
        send(PushInfo {
            kind: PushKind::Invalidate,
            data: vec![redis::Value::Nil],
        })
        .unwrap();
        send(PushInfo {
            kind: PushKind::Message,
            data: vec![],
        })
        .unwrap();
        assert_eq!(
            feed.receiver.recv().await.unwrap(),
            Invalidation::Keys(vec!["a".to_owned()])
        );
        assert_eq!(feed.receiver.recv().await.unwrap(), Invalidation::All);
        assert!(feed.receiver.try_recv().is_err());
    }
}
