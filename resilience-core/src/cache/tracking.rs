//! For backend authors: the driver-independent half of RESP3 client tracking.
//!
//! Its guide is in the docs of [`TrackingHub`].

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use super::types::{Invalidation, InvalidationFeed, TrackedReply};
use crate::{BackendError, Command, ErrorKind, KvBackend};

/// How many invalidation messages a slow subscriber may fall behind before it must assume
/// it missed some (and empty its cache).
pub(crate) const CHANNEL_CAPACITY: usize = 4096;

/// First and largest wait between two attempts to turn tracking on again.
const RETRY_MIN: Duration = Duration::from_millis(20);
const RETRY_MAX: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct State {
    on: bool,
    /// Bumped by every loss, so an enable that raced a loss is not taken as success.
    generation: u64,
}

/// The invalidation channel and tracking state of one tracking backend.
///
/// A tracking backend owns one [`TrackingHub`] and does three driver-specific things:
///
/// 1. connects with RESP3 (the server sends invalidations on the same connection);
/// 2. forwards the server's invalidation pushes to [`TrackingHub::keys_changed`] /
///    [`TrackingHub::all_changed`], and calls [`TrackingHub::connection_lost`] whenever its
///    connection drops or is replaced (the new one is not tracking yet);
/// 3. after connecting, calls [`TrackingHub::enable`] once, then
///    [`TrackingHub::spawn_enabler`] so tracking is switched on again after every loss.
///
/// The hub does the rest: it keeps the on/off state, turns tracking on with
/// `CLIENT TRACKING ON OPTIN` (so the server tracks only the keys the cache reads, not every
/// read of the connection), and runs cache fills as `CLIENT CACHING YES` + the read in one
/// pipeline ([`TrackingHub::tracked_read`]). A pipeline goes out on one connection in one
/// write, so nothing can come between the two; and if that connection is not tracking
/// (it was just replaced), `CLIENT CACHING` fails, so an untracked read is never cached.
///
/// Losing tracking and turning it on again are ordered with a generation counter: a
/// `CLIENT TRACKING ON` that succeeded while another loss happened does not mark tracking
/// on; the enabler tries again.
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
    ///
    /// # Errors
    ///
    /// The backend's failure to turn tracking on (`CLIENT TRACKING`), as it classified it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves tracking counted as off: the next
    /// enable turns it on again.
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

    /// [`KvBackend::execute_tracked`] for a backend whose hub is `hub`: a tracked read
    /// ([`TrackingHub::tracked_read`]), or, with no hub (connected without
    /// `client_tracking`), the plain command with its reply marked `tracked: false`.
    ///
    /// # Errors
    ///
    /// The backend's failure of the read, as it classified it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the read; nothing is cached from it.
    pub async fn execute_tracked(
        hub: Option<&TrackingHub>,
        backend: &dyn KvBackend,
        cmd: Command,
    ) -> Result<TrackedReply, BackendError> {
        match hub {
            Some(hub) => hub.tracked_read(backend, cmd).await,
            None => Ok(TrackedReply {
                value: backend.execute(cmd).await?,
                tracked: false,
            }),
        }
    }

    /// Runs a read so that the server tracks its key for this connection (see the type's
    /// docs). If the connection is not tracking, the loss is recorded and the read is sent
    /// again on its own, untracked: its reply is returned with `tracked: false`.
    ///
    /// # Errors
    ///
    /// The backend's failure of the read, as it classified it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the read; nothing is cached from it.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Value;
    use crate::test_support::MapBackend;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Answers `CLIENT TRACKING` / `CLIENT CACHING` like a server, the rest from memory.
    struct Server {
        memory: MapBackend,
        tracking: AtomicBool,
        enables: AtomicUsize,
        /// Called while `CLIENT TRACKING ON` is being answered (to race a loss).
        during_enable: Mutex<Option<Arc<TrackingHub>>>,
    }

    impl Server {
        fn new() -> Self {
            Server {
                memory: MapBackend::new(),
                tracking: AtomicBool::new(false),
                enables: AtomicUsize::new(0),
                during_enable: Mutex::new(None),
            }
        }

        fn client_command(cmd: &Command) -> Option<String> {
            match cmd {
                Command::Raw { args, .. } => Some(
                    args.iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                _ => None,
            }
        }
    }

    #[async_trait]
    impl KvBackend for Server {
        async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
            if Self::client_command(&cmd).as_deref() == Some("CLIENT TRACKING ON OPTIN") {
                self.enables.fetch_add(1, Ordering::SeqCst);
                self.tracking.store(true, Ordering::SeqCst);
                let racer = self.during_enable.lock().unwrap().take();
                if let Some(hub) = racer {
                    hub.connection_lost();
                }
                return Ok(Value::Okay);
            }
            self.memory.execute(cmd).await
        }

        async fn execute_batch(
            &self,
            cmds: Vec<Command>,
            atomic: bool,
        ) -> Result<Vec<Value>, BackendError> {
            if Self::client_command(&cmds[0]).as_deref() == Some("CLIENT CACHING YES") {
                if !self.tracking.load(Ordering::SeqCst) {
                    return Err(BackendError::from_reply(
                        "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
                    ));
                }
                let mut values = vec![Value::Okay];
                values.extend(
                    self.memory
                        .execute_batch(cmds[1..].to_vec(), atomic)
                        .await?,
                );
                return Ok(values);
            }
            self.memory.execute_batch(cmds, atomic).await
        }

        fn name(&self) -> &'static str {
            "scripted"
        }
    }

    #[tokio::test]
    async fn enable_loss_and_resume_are_announced_in_order() {
        let hub = TrackingHub::new();
        let server = Server::new();
        let mut feed = hub.subscribe();
        assert!(!feed.tracking);
        assert!(hub.enable(&server).await.unwrap());
        assert!(hub.is_on());
        assert!(hub.subscribe().tracking);
        hub.keys_changed(vec!["k".into()]);
        hub.keys_changed(Vec::new());
        hub.connection_lost();
        hub.connection_lost();
        hub.all_changed();
        let mut seen = Vec::new();
        while let Ok(message) = feed.receiver.try_recv() {
            seen.push(message);
        }
        assert_eq!(
            seen,
            vec![
                Invalidation::Resumed,
                Invalidation::Keys(vec!["k".into()]),
                Invalidation::Lost,
                Invalidation::All,
            ]
        );
        assert!(!hub.is_on());
    }

    #[tokio::test]
    async fn an_enable_that_raced_a_loss_does_not_count() {
        let hub = TrackingHub::new();
        let server = Server::new();
        *server.during_enable.lock().unwrap() = Some(Arc::clone(&hub));
        assert!(!hub.enable(&server).await.unwrap());
        assert!(!hub.is_on());
        assert!(hub.enable(&server).await.unwrap());
        assert!(hub.is_on());
    }

    #[tokio::test]
    async fn a_read_on_a_connection_that_is_not_tracking_is_not_tracked() {
        let hub = TrackingHub::new();
        let server = Server::new();
        server
            .execute(Command::Set {
                key: "k".into(),
                value: Bytes::from_static(b"v"),
                options: Default::default(),
            })
            .await
            .unwrap();
        let get = Command::Get { key: "k".into() };
        let reply = hub.tracked_read(&server, get.clone()).await.unwrap();
        assert_eq!(reply.value, Value::Bytes(Bytes::from_static(b"v")));
        assert!(!reply.tracked);
        assert!(hub.enable(&server).await.unwrap());
        let reply = hub.tracked_read(&server, get).await.unwrap();
        assert!(reply.tracked);
        assert_eq!(reply.value, Value::Bytes(Bytes::from_static(b"v")));
    }

    #[tokio::test]
    async fn the_enabler_turns_tracking_on_again_after_a_loss() {
        let hub = TrackingHub::new();
        let server = Arc::new(Server::new());
        assert!(hub.enable(&*server).await.unwrap());
        let weak = Arc::downgrade(&server);
        let hub_for_task = Arc::clone(&hub);
        let task = hub.spawn_enabler(move || {
            let server = weak.upgrade()?;
            let hub = Arc::clone(&hub_for_task);
            Some(async move { hub.enable(&*server).await })
        });
        server.tracking.store(false, Ordering::SeqCst);
        hub.connection_lost();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !hub.is_on() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(hub.is_on());
        assert!(server.tracking.load(Ordering::SeqCst));
        assert_eq!(server.enables.load(Ordering::SeqCst), 2);
        task.abort();
    }
}
