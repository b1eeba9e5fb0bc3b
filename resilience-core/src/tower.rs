//! [tower](https://docs.rs/tower) in both directions (feature `tower`).
//!
//! - **Above the client.** [`ResilientClient`] is a `tower::Service<Command>` (`Response =
//!   Value`, `Error =` [`Error`]), so tower's layers (timeout, concurrency limit, load
//!   shedding, rate limit, tracing) can wrap the whole resilience layer, as they wrap any
//!   other service of an application.
//! - **Below the client.** [`ServiceBackend`] makes any `tower::Service<Command>` a
//!   [`KvBackend`], and [`BackendService`] makes any backend a service: so layers can also
//!   sit between the client and the driver, where the breaker and retries see what they
//!   do (a tower timeout is a `Timeout` the breaker counts; a shed request is `Busy`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use resilience_core::tower::{BackendService, ServiceBackend};
//! use backend_memory::InMemoryBackend;
//! use resilience_core::{Command, ResilientClient, Value};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! // Below: a timeout on every command the backend runs.
//! let backend = ServiceBackend::new(
//!     ServiceBuilder::new()
//!         .timeout(Duration::from_millis(250))
//!         .service(BackendService::new(InMemoryBackend::new())),
//! );
//! let client = ResilientClient::new("tower", backend);
//!
//! // Above: at most 64 commands in flight through the client.
//! let mut service = ServiceBuilder::new().concurrency_limit(64).service(client);
//! let reply = service.ready().await.unwrap().call(Command::Ping).await.unwrap();
//! assert_eq!(reply, Value::Status("PONG".into()));
//! # }
//! ```
//!
//! A `Service<Command>` runs one command per call, so [`ServiceBackend`] runs a
//! non-atomic batch command by command and refuses an atomic one (`MULTI`/`EXEC` needs the
//! whole batch on one connection at once): use it for clients that do not send
//! transactions, or put the layers above the client instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tower::{BoxError, Service};
use async_trait::async_trait;

use crate::{BackendError, Command, Error, ErrorKind, KvBackend, ResilientClient, Value};

/// A boxed, sendable future, as the services here return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl Service<Command> for ResilientClient {
    type Response = Value;
    type Error = Error;
    type Future = BoxFuture<Result<Value, Error>>;

    /// Always ready: an open breaker fails each call at once (`CircuitOpen`) rather than
    /// holding callers back, so layers above see the refusal as an error they can count.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    /// [`ResilientClient::execute`]: breaker, retries and the canonical reply.
    fn call(&mut self, cmd: Command) -> Self::Future {
        let client = self.clone();
        Box::pin(async move { client.execute(cmd).await })
    }
}

/// A [`KvBackend`] as a `tower::Service<Command>`, to put tower layers under a
/// [`ResilientClient`] through [`ServiceBackend`]. Always ready; each call is one
/// [`KvBackend::execute`].
#[derive(Clone)]
pub struct BackendService {
    backend: Arc<dyn KvBackend>,
}

impl BackendService {
    /// A service over `backend`.
    pub fn new(backend: impl KvBackend) -> Self {
        BackendService {
            backend: Arc::new(backend),
        }
    }

    /// A service over a shared backend.
    pub fn from_arc(backend: Arc<dyn KvBackend>) -> Self {
        BackendService { backend }
    }
}

impl std::fmt::Debug for BackendService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendService")
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Service<Command> for BackendService {
    type Response = Value;
    type Error = BackendError;
    type Future = BoxFuture<Result<Value, BackendError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BackendError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, cmd: Command) -> Self::Future {
        let backend = Arc::clone(&self.backend);
        Box::pin(async move { backend.execute(cmd).await })
    }
}

/// Any `tower::Service<Command>` returning [`Value`]s as a [`KvBackend`].
///
/// Errors become [`BackendError`]s by [`classify`]: a `BackendError` stays as it is, a
/// tower timeout is `Timeout`, a request shed by tower's load-shed layer is `Busy`, an
/// [`Error`] of a [`ResilientClient`] underneath keeps its kind, and anything else is
/// `Unavailable` (the service failed to run the command; the breaker counts it and an
/// idempotent command may be retried).
#[derive(Clone, Debug)]
pub struct ServiceBackend<S> {
    service: S,
    name: &'static str,
}

impl<S> ServiceBackend<S> {
    /// A backend over `service`, named `"tower"` in metrics and logs.
    pub fn new(service: S) -> Self {
        ServiceBackend {
            service,
            name: "tower",
        }
    }

    /// Names the backend in metrics and logs.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
}

/// How [`ServiceBackend`] turns a service's error into a [`BackendError`] (see there).
pub fn classify(error: BoxError) -> BackendError {
    let error = match error.downcast::<BackendError>() {
        Ok(e) => return *e,
        Err(other) => other,
    };
    let error = match error.downcast::<Error>() {
        Ok(e) => {
            return match e.backend_error() {
                Some(b) => b.clone(),
                None => {
                    BackendError::new(e.kind().unwrap_or(ErrorKind::Unavailable), e.to_string())
                }
            };
        }
        Err(other) => other,
    };
    if error.is::<::tower::timeout::error::Elapsed>() {
        return BackendError::timeout("tower timeout layer: no reply within its limit");
    }
    if error.is::<::tower::load_shed::error::Overloaded>() {
        return BackendError::new(
            ErrorKind::Busy,
            "tower load-shed layer: the service was at capacity and refused the command (retry later, or raise the limit below the load-shed layer)",
        );
    }
    BackendError::new(ErrorKind::Unavailable, format!("service failed: {error}"))
}

#[async_trait]
impl<S> KvBackend for ServiceBackend<S>
where
    S: Service<Command, Response = Value> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        let mut service = self.service.clone();
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(|e| classify(e.into()))?;
        service.call(cmd).await.map_err(|e| classify(e.into()))
    }

    /// Runs a non-atomic batch command by command, in order (each command runs even after
    /// one fails, as in a Redis pipeline; the first error fails the call). An atomic batch
    /// is `InvalidInput`, before anything runs: a service takes one command per call, and
    /// `MULTI`/`EXEC` needs the whole batch on one connection.
    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        if atomic {
            return Err(BackendError::new(
                ErrorKind::InvalidInput,
                "a tower::Service<Command> runs one command per call, so it cannot run a MULTI/EXEC transaction: put the tower layers above the ResilientClient, or use a backend that sends batches whole",
            ));
        }
        let mut replies = Vec::with_capacity(cmds.len());
        let mut first_error = None;
        for cmd in cmds {
            match self.execute(cmd).await {
                Ok(v) => replies.push(v),
                Err(e) => {
                    first_error.get_or_insert(e);
                    replies.push(Value::Nil);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(replies),
        }
    }

    fn name(&self) -> &'static str {
        self.name
    }
}
