//! For backend authors: the driver-independent half of RESP3 client tracking.
//!
//! A tracking backend owns one [`TrackingHub`] and does three driver-specific things:
//!
//! 1. connects with RESP3 (the server sends invalidations on the same connection);
//! 2. forwards the server's invalidation pushes to [`TrackingHub::keys_changed`] /
//!    [`TrackingHub::all_changed`], and calls [`TrackingHub::connection_lost`] whenever its
//!    connection drops or is replaced (the new one is not tracking yet);
//! 3. after connecting, calls [`TrackingHub::enable`] once, then
//!    [`TrackingHub::spawn_enabler`] so tracking is switched on again after every loss.
//!
//! The hub does the rest: it keeps the on/off state, turns tracking on with
//! `CLIENT TRACKING ON OPTIN` (so the server tracks only the keys the cache reads, not every
//! read of the connection), and runs cache fills as `CLIENT CACHING YES` + the read in one
//! pipeline ([`TrackingHub::tracked_read`]). A pipeline goes out on one connection in one
//! write, so nothing can come between the two; and if that connection is not tracking
//! (it was just replaced), `CLIENT CACHING` fails, so an untracked read is never cached.
//!
//! Losing tracking and turning it on again are ordered with a generation counter: a
//! `CLIENT TRACKING ON` that succeeded while another loss happened does not mark tracking
//! on; the enabler tries again.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use super::{Invalidation, InvalidationFeed, TrackedReply};
use crate::{BackendError, Command, ErrorKind, KvBackend};

/// How many invalidation messages a slow subscriber may fall behind before it must assume
/// it missed some (and empty its cache).
pub const CHANNEL_CAPACITY: usize = 4096;

/// First and largest wait between two attempts to turn tracking on again.
const RETRY_MIN: Duration = Duration::from_millis(20);
const RETRY_MAX: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct State {
    on: bool,
    /// Bumped by every loss, so an enable that raced a loss is not taken as success.
    generation: u64,
}

/// The invalidation channel and tracking state of one tracking backend. See the module docs.
#[derive(Debug)]
pub struct TrackingHub {
    sender: broadcast::Sender<Invalidation>,
    state: Mutex<State>,
    wake: Notify,
}

impl TrackingHub {
    /// A hub with tracking off (until [`enable`](Self::enable) succeeds).
    pub fn new() -> Arc<Self> {
        let (sender, _) = broadcast::channel(CHANNEL_CAPACITY);
        Arc::new(TrackingHub {
            sender,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new subscription (what [`KvBackend::invalidations`] returns).
    pub fn subscribe(&self) -> InvalidationFeed {
        let receiver = self.sender.subscribe();
        InvalidationFeed {
            receiver,
            tracking: self.is_on(),
        }
    }

    /// Whether the current connection is tracking.
    pub fn is_on(&self) -> bool {
        self.state().on
    }

    /// The server said these keys changed.
    pub fn keys_changed(&self, keys: Vec<String>) {
        if !keys.is_empty() {
            // No subscriber is not an error: no cache to tell.
            let _ = self.sender.send(Invalidation::Keys(keys));
        }
    }

    /// The server said every key may have changed (`FLUSHDB`, `FLUSHALL`).
    pub fn all_changed(&self) {
        let _ = self.sender.send(Invalidation::All);
    }

    /// The tracked connection dropped or was replaced: subscribers stop trusting their
    /// entries, and the enabler turns tracking on again on the next connection.
    pub fn connection_lost(&self) {
        let mut state = self.state();
        state.generation = state.generation.wrapping_add(1);
        if state.on {
            state.on = false;
            let _ = self.sender.send(Invalidation::Lost);
            tracing::debug!("client tracking lost with the connection");
        }
        drop(state);
        self.wake.notify_one();
    }

    /// `CLIENT TRACKING ON OPTIN`.
    pub fn tracking_on_command() -> Command {
        raw(&["CLIENT", "TRACKING", "ON", "OPTIN"])
    }

    /// `CLIENT CACHING YES`: the next read of this connection is tracked.
    pub fn caching_yes_command() -> Command {
        raw(&["CLIENT", "CACHING", "YES"])
    }

    /// Turns tracking on through `backend` (its current connection). `Ok(true)` when it is
    /// on now; `Ok(false)` when the connection was lost meanwhile (try again).
    pub async fn enable(&self, backend: &dyn KvBackend) -> Result<bool, BackendError> {
        let generation = self.state().generation;
        backend.execute(Self::tracking_on_command()).await?;
        let mut state = self.state();
        if state.generation != generation {
            return Ok(false);
        }
        if !state.on {
            state.on = true;
            let _ = self.sender.send(Invalidation::Resumed);
            tracing::debug!("client tracking on");
        }
        Ok(true)
    }

    /// Runs a read so that the server tracks its key for this connection (see the module
    /// docs). If the connection is not tracking, the loss is recorded and the read is sent
    /// again on its own, untracked: its reply is returned with `tracked: false`.
    pub async fn tracked_read(
        &self,
        backend: &dyn KvBackend,
        cmd: Command,
    ) -> Result<TrackedReply, BackendError> {
        let batch = vec![Self::caching_yes_command(), cmd.clone()];
        match backend.execute_batch(batch, false).await {
            Ok(mut values) if values.len() == 2 => Ok(TrackedReply {
                value: values.pop().unwrap_or(crate::Value::Nil),
                tracked: true,
            }),
            Ok(values) => Err(BackendError::new(
                ErrorKind::Server,
                format!(
                    "unexpected reply: expected 2 replies to CLIENT CACHING + read, got {}",
                    values.len()
                ),
            )),
            Err(e) if is_not_tracking(&e) => {
                self.connection_lost();
                let value = backend.execute(cmd).await?;
                Ok(TrackedReply {
                    value,
                    tracked: false,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Spawns the task that turns tracking on again after every
    /// [`connection_lost`](Self::connection_lost), retrying 20 ms to 500 ms apart while
    /// the server is unreachable. `attempt` returns `None` once the backend is gone (the
    /// task ends), else a future running [`enable`](Self::enable) on it. Abort the handle
    /// when the backend is dropped.
    pub fn spawn_enabler<F, Fut>(self: &Arc<Self>, attempt: F) -> JoinHandle<()>
    where
        F: Fn() -> Option<Fut> + Send + Sync + 'static,
        Fut: Future<Output = Result<bool, BackendError>> + Send + 'static,
    {
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                hub.wake.notified().await;
                let mut delay = RETRY_MIN;
                while !hub.is_on() {
                    let Some(enable) = attempt() else { return };
                    match enable.await {
                        Ok(true) => break,
                        Ok(false) => delay = RETRY_MIN,
                        Err(e) => {
                            tracing::debug!(error = %e, "client tracking: could not turn tracking on yet");
                            delay = (delay * 2).min(RETRY_MAX);
                        }
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        })
    }
}

/// Whether `e` is the server refusing `CLIENT CACHING` because the connection is not in
/// tracking mode.
pub fn is_not_tracking(e: &BackendError) -> bool {
    e.kind() == ErrorKind::Server && e.message().contains("CLIENT CACHING")
}

fn raw(args: &[&'static str]) -> Command {
    Command::Raw {
        args: args
            .iter()
            .map(|a| Bytes::from_static(a.as_bytes()))
            .collect(),
        keys: Vec::new(),
        write: false,
        idempotent: true,
    }
}
