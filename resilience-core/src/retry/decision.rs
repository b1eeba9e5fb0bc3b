//! What to retry: [`RetryDecision`], one pluggable answer for every retry the client makes.

use crate::Error;

/// Decides whether a failed command may be sent again: by the inline retries of
/// `Critical` writes and [`execute_with_retry`](crate::ResilientClient::execute_with_retry),
/// by the priority handling (retryable means queueable), and by the recovery queue's
/// replay (retryable means kept for another attempt, else dead-lettered).
///
/// The default, [`ByClass`], is the rule of the error's class
/// ([`ErrorClass::may_retry`](crate::ErrorClass::may_retry)): never after a refusal, after
/// an indeterminate failure (a timeout) only for an idempotent command. A decision may be
/// stricter (never retry `Busy`), or looser where the caller knows more than the command
/// table (a script it wrote to be safe twice), but a looser one takes on the risk of
/// applying a write twice.
pub trait RetryDecision: Send + Sync + 'static {
    /// Whether a command that failed with `error` may be sent again; `idempotent` is what
    /// the command table (or the script's declaration) says of it.
    fn may_retry(&self, error: &Error, idempotent: bool) -> bool;
}

/// The default [`RetryDecision`]: the error's class decides.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByClass;

impl RetryDecision for ByClass {
    #[inline]
    fn may_retry(&self, error: &Error, idempotent: bool) -> bool {
        error.class().may_retry(idempotent)
    }
}

impl<F> RetryDecision for F
where
    F: Fn(&Error, bool) -> bool + Send + Sync + 'static,
{
    fn may_retry(&self, error: &Error, idempotent: bool) -> bool {
        self(error, idempotent)
    }
}
