//! [`KvBackend`], the trait a Redis driver (or the in-memory store) implements; what
//! writing one takes is in the public `backend` module's docs.

use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::{InvalidationFeed, TrackedReply};
use crate::{BackendError, Command, PubSubLink, Subscription, Value};

/// A key-value store that speaks Redis commands.
///
/// Implementations promise:
/// - every [`Command`] is supported and returns its documented canonical reply shape;
/// - every call finishes within the configured socket timeout, with `Timeout` if the server
///   does not answer, and `Unavailable` if it cannot be reached;
/// - errors are classified with [`BackendError`]'s kinds, and their text holds no secrets.
#[async_trait]
pub trait KvBackend: Send + Sync + 'static {
    /// Runs one command.
    ///
    /// # Errors
    ///
    /// The driver's failure, classified ([`ErrorKind`](crate::ErrorKind)): `Unavailable`
    /// only when nothing was sent; a command that may have been written is `Timeout`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the call: a command already written may still run on
    /// the server.
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError>;

    /// Runs `cmds` in one round trip. With `atomic`, as one `MULTI`/`EXEC` transaction: all
    /// apply or none do. Results are in command order. An error reply to one command of a
    /// non-atomic batch fails the whole call (callers never see a silent partial success).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute), for the batch as a whole; `InvalidInput` for a
    /// blocking command in a pipeline.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute); an atomic batch runs entirely or not at all.
    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError>;

    /// Opens one connection for Pub/Sub, subscribed to `subscriptions`, for a
    /// [`Subscriber`](crate::Subscriber), which reconnects and resubscribes when the link
    /// is lost. Fails like a connect; by default with `InvalidInput`, for a backend
    /// without Pub/Sub.
    async fn open_pubsub(
        &self,
        subscriptions: &[Subscription],
    ) -> Result<Box<dyn PubSubLink>, BackendError> {
        let _ = subscriptions;
        Err(BackendError::new(
            crate::ErrorKind::InvalidInput,
            format!("the {} backend has no Pub/Sub", self.name()),
        ))
    }

    /// A short, stable name: `"redis-rs"`, `"fred"`, `"memory"`.
    fn name(&self) -> &'static str;

    /// Whether this backend's calls cross a network connection, which can die silently
    /// while idle (a partition, a NAT that forgot the flow). A client over it then checks
    /// the connection while idle ([`LivenessConfig`](crate::LivenessConfig)). The
    /// default, `false`, suits backends in the same process.
    fn is_networked(&self) -> bool {
        false
    }

    /// Client-side caching ([`CacheConfig`](crate::CacheConfig)): a subscription to the server's
    /// invalidations for the keys this backend's tracked reads touched, or `None` (the
    /// default) when the backend does not track. A client cache over a backend that
    /// answers `None` stays off.
    fn invalidations(&self) -> Option<InvalidationFeed> {
        None
    }

    /// Client-side caching: runs a read (`GET`, `HGETALL`) so that the server tracks its
    /// key for this backend's connection, and says whether it did
    /// ([`TrackedReply::tracked`]). Only tracked replies are cached. The default runs
    /// [`execute`](Self::execute) and reports `tracked: false`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute); a read dropped before its reply is not cached.
    async fn execute_tracked(&self, cmd: Command) -> Result<TrackedReply, BackendError> {
        Ok(TrackedReply {
            value: self.execute(cmd).await?,
            tracked: false,
        })
    }
}

#[async_trait]
impl<B: KvBackend + ?Sized> KvBackend for Arc<B> {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        (**self).execute(cmd).await
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        (**self).execute_batch(cmds, atomic).await
    }

    async fn open_pubsub(
        &self,
        subscriptions: &[Subscription],
    ) -> Result<Box<dyn PubSubLink>, BackendError> {
        (**self).open_pubsub(subscriptions).await
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn is_networked(&self) -> bool {
        (**self).is_networked()
    }

    fn invalidations(&self) -> Option<InvalidationFeed> {
        (**self).invalidations()
    }

    async fn execute_tracked(&self, cmd: Command) -> Result<TrackedReply, BackendError> {
        (**self).execute_tracked(cmd).await
    }
}
