//! The future of one command through the breaker, written by hand because it is the hot
//! path of every call.
//!
//! An `async fn` around the backend's call would be a state machine that stores the
//! command, the permit, the span and the backend's (already boxed) future, and each `async`
//! layer above it would store them again while moving them in. [`Call`] is just those
//! fields: the breaker's permit and what the end of the call records, beside the backend's
//! future. Polling it polls the backend's future inside the call's span; when that is
//! ready it records the outcome (breaker, counters, metrics) exactly once.
//!
//! Dropping a `Call` before it is ready drops its permit unrecorded, which the breaker
//! counts as ignored: a cancelled call says nothing about the backend's health.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::ClientInner;
use crate::breaker::Permit;
use crate::{BackendError, Error, Value};

/// The backend's future, as the `KvBackend` trait returns it.
pub(super) type BackendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Value, BackendError>> + Send + 'a>>;

/// One command that the breaker let through, on its way to the backend.
pub(super) struct Call<'a> {
    pub(super) inner: &'a Arc<ClientInner>,
    /// Taken when the outcome is recorded.
    pub(super) permit: Option<Permit<'a>>,
    pub(super) ordinal: usize,
    pub(super) name: &'static str,
    pub(super) started: Option<crate::observe::CallStart>,
    pub(super) span: tracing::Span,
    pub(super) backend: BackendFuture<'a>,
}

impl Future for Call<'_> {
    type Output = Result<Value, Error>;

    // Inlined into `CallFuture::poll`, which polls it twice per call (callgrind: 7 to 13
    // fewer instructions per call).
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin` (the backend's future is boxed).
        let this = self.get_mut();
        let result = if this.span.is_disabled() {
            ready!(this.backend.as_mut().poll(cx))
        } else {
            let _entered = this.span.enter();
            ready!(this.backend.as_mut().poll(cx))
        };
        record_outcome(&this.span, result.as_ref().err());
        if let Some(permit) = this.permit.take() {
            this.inner.finish(
                permit,
                this.ordinal,
                this.name,
                this.started,
                result.as_ref().err(),
            );
        }
        Poll::Ready(result.map_err(|e| Error::from(e.naming_command(this.name))))
    }
}

/// What [`ClientInner::call`] returns: the common case (a [`Call`]) unboxed, a call the
/// breaker refused already answered, and the rare paths (a write that must invalidate the
/// client cache, an `EVALSHA` that may need its script loaded) boxed, so that they add
/// nothing to the size of the common one.
pub(super) enum CallFuture<'a> {
    /// Sent to the backend.
    Sent(Call<'a>),
    /// Answered without the backend (the breaker refused); `None` once taken.
    Answered(Option<Result<Value, Error>>),
    /// One of the rare paths.
    Boxed(Pin<Box<dyn Future<Output = Result<Value, Error>> + Send + 'a>>),
}

impl Future for CallFuture<'_> {
    type Output = Result<Value, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            CallFuture::Sent(call) => Pin::new(call).poll(cx),
            CallFuture::Answered(answer) => match answer.take() {
                Some(answer) => Poll::Ready(answer),
                None => Poll::Ready(Err(Error::InvalidInput(
                    "a call future was polled after it completed".to_owned(),
                ))),
            },
            CallFuture::Boxed(fut) => fut.as_mut().poll(cx),
        }
    }
}

/// Records `ok` or the error kind on a call's span (a no-op when tracing is off).
pub(super) fn record_outcome(span: &tracing::Span, error: Option<&BackendError>) {
    if !span.is_disabled() {
        span.record("outcome", error.map_or("ok", |e| e.kind().as_str()));
    }
}
