//! RESP3 client tracking for the client-side cache (`ConnectionConfig::client_tracking`).
//!
//! Only with `client_tracking` on; otherwise nothing here runs and the connection stays
//! RESP2. With it (fred feature `i-tracking`):
//!
//! - the client speaks RESP3, so invalidations arrive as push messages on the same
//!   connection; fred parses them and broadcasts them (`invalidation_rx`), and a task here
//!   forwards them to [`TrackingHub::keys_changed`];
//! - fred does not switch tracking on again after a reconnect, and its new connection is
//!   not tracking: a task here reports every reconnect (`reconnect_rx`) and every
//!   connection error (`error_rx`, which fred sends when a connection drops) as
//!   [`TrackingHub::connection_lost`], and the hub's enabler sends
//!   `CLIENT TRACKING ON OPTIN` again through the backend;
//! - a cache fill is the hub's `tracked_read`: `CLIENT CACHING YES` + the read in one fred
//!   pipeline (written to the connection in one go).
//!
//! Known gap: fred drops the null invalidation the server sends after `FLUSHALL` /
//! `FLUSHDB` (it only forwards lists of keys), so a flush by another client is not seen;
//! the cache's `ttl` bounds how long such entries live.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use fred::interfaces::{EventInterface, TrackingInterface};
use fred::prelude::Client;
use resilience_core::backend::TrackingHub;
use resilience_core::backend::{InvalidationFeed, TrackedReply};
use resilience_core::{BackendError, Command};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::{FredBackend, Inner};

/// A backend's tracking: the hub, and its tasks (aborted with the backend).
pub(crate) struct Tracking {
    hub: Arc<TrackingHub>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Tracking {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Tracking {
    /// Tracking state for a backend being connected (off until [`start`]).
    pub(crate) fn new() -> Self {
        Tracking {
            hub: TrackingHub::new(),
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn keep(&self, task: JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }
}

/// Starts forwarding fred's events, turns tracking on, and starts the enabler. Fails like
/// a command would (e.g. a server older than Redis 6 refuses `CLIENT TRACKING`).
pub(crate) async fn start(backend: &FredBackend) -> Result<(), BackendError> {
    let Some(tracking) = &backend.inner.tracking else {
        return Ok(());
    };
    // Listen first, so a reconnect during the first enable is not missed.
    tracking.keep(spawn_forwarder(backend.client(), Arc::clone(&tracking.hub)));
    tracking.hub.enable(backend).await?;
    let weak: Weak<Inner> = Arc::downgrade(&backend.inner);
    tracking.keep(tracking.hub.spawn_enabler(move || {
        let inner = weak.upgrade()?;
        Some(async move {
            let backend = FredBackend { inner };
            match &backend.inner.tracking {
                Some(tracking) => tracking.hub.enable(&backend).await,
                None => Ok(true),
            }
        })
    }));
    Ok(())
}

/// Forwards fred's invalidations, reconnects and connection errors to `hub` until the
/// client's channels close.
fn spawn_forwarder(client: &Client, hub: Arc<TrackingHub>) -> JoinHandle<()> {
    let mut invalidations = client.invalidation_rx();
    let mut reconnects = client.reconnect_rx();
    let mut errors = client.error_rx();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = invalidations.recv() => match message {
                    Ok(invalidation) => hub.keys_changed(
                        invalidation.keys.into_iter().filter_map(|k| k.into_string()).collect(),
                    ),
                    // Some invalidations were missed: any key may be stale.
                    Err(RecvError::Lagged(_)) => hub.all_changed(),
                    Err(RecvError::Closed) => return,
                },
                event = reconnects.recv() => match event {
                    Ok(_) | Err(RecvError::Lagged(_)) => hub.connection_lost(),
                    Err(RecvError::Closed) => return,
                },
                event = errors.recv() => match event {
                    Ok(_) | Err(RecvError::Lagged(_)) => hub.connection_lost(),
                    Err(RecvError::Closed) => return,
                },
            }
        }
    })
}

/// [`KvBackend::invalidations`] for `backend`.
pub(crate) fn invalidations(backend: &FredBackend) -> Option<InvalidationFeed> {
    backend.inner.tracking.as_ref().map(|t| t.hub.subscribe())
}

/// [`KvBackend::execute_tracked`] for `backend`.
pub(crate) async fn execute_tracked(
    backend: &FredBackend,
    cmd: Command,
) -> Result<TrackedReply, BackendError> {
    let hub = backend.inner.tracking.as_ref().map(|t| &*t.hub);
    TrackingHub::execute_tracked(hub, backend, cmd).await
}
