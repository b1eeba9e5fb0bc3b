//! [`retry_with`]: run an async operation under a [`RetryPolicy`] and an optional
//! [`RetryBudget`].

use std::future::Future;

use super::{RetryBudget, RetryPolicy};

/// Why [`retry_with`] gave up; each variant carries the last error the operation returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError<E> {
    /// Every attempt failed with a retryable error: `attempts` is `1 + max_retries`.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// How many times the operation ran.
        attempts: u32,
        /// The error of the last attempt.
        last: E,
    },
    /// The operation failed with an error `should_retry` rejected; no further attempt was made.
    #[error("non-retryable error: {0}")]
    NotRetryable(E),
    /// The error was retryable and retries were left, but the shared budget refused the
    /// retry: the service as a whole is retrying too much.
    #[error("retry budget exhausted: {0}")]
    BudgetExhausted(E),
}

impl<E> RetryError<E> {
    /// The last error the operation returned.
    pub fn last_error(&self) -> &E {
        match self {
            RetryError::Exhausted { last, .. } => last,
            RetryError::NotRetryable(e) | RetryError::BudgetExhausted(e) => e,
        }
    }

    /// Consumes this, returning the last error the operation returned.
    pub fn into_inner(self) -> E {
        match self {
            RetryError::Exhausted { last, .. } => last,
            RetryError::NotRetryable(e) | RetryError::BudgetExhausted(e) => e,
        }
    }
}

/// Runs `op` until it succeeds, fails with an error `should_retry` rejects, runs out of
/// retries, or the budget refuses a retry.
///
/// - `op(attempt)` is called with the attempt number: 0 for the original call, then 1, 2, …;
///   at most `1 + policy.max_retries` times.
/// - After a failed attempt: if `should_retry(&err)` is false, returns
///   [`RetryError::NotRetryable`] at once. If the policy has no retries left, returns
///   [`RetryError::Exhausted`]. Otherwise, if a `budget` is given and
///   [`try_withdraw`](RetryBudget::try_withdraw) refuses, returns
///   [`RetryError::BudgetExhausted`]; else waits the next delay of
///   [`policy.backoff()`](RetryPolicy::backoff) with `tokio::time::sleep` and tries again.
/// - The budget is fully handled here: this function [`deposit`](RetryBudget::deposit)s once
///   per call (before the first attempt) and withdraws once per retry. Do not deposit for the
///   same call yourself.
///
/// Cancel-safe: dropping the future stops between attempts or during a wait.
///
/// ```
/// use std::time::Duration;
/// use resilience_core::retry::{retry_with, Jitter, RetryError, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let policy = RetryPolicy {
///     base_delay: Duration::from_millis(1),
///     jitter: Jitter::None,
///     ..RetryPolicy::default()
/// };
/// let result = retry_with(&policy, None, |_e: &&str| true, |attempt| async move {
///     if attempt < 2 { Err("flaky") } else { Ok(attempt) }
/// })
/// .await;
/// assert_eq!(result, Ok(2));
/// # }
/// ```
pub async fn retry_with<T, E, Fut>(
    policy: &RetryPolicy,
    budget: Option<&RetryBudget>,
    mut should_retry: impl FnMut(&E) -> bool,
    mut op: impl FnMut(u32) -> Fut,
) -> Result<T, RetryError<E>>
where
    Fut: Future<Output = Result<T, E>>,
{
    if let Some(budget) = budget {
        budget.deposit();
    }
    let mut delays = policy.backoff();
    let mut attempt: u32 = 0;
    loop {
        let err = match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        if !should_retry(&err) {
            return Err(RetryError::NotRetryable(err));
        }
        let Some(delay) = delays.next() else {
            return Err(RetryError::Exhausted {
                attempts: attempt.saturating_add(1),
                last: err,
            });
        };
        if let Some(budget) = budget
            && !budget.try_withdraw()
        {
            tracing::debug!(attempt, "retry refused by the retry budget");
            return Err(RetryError::BudgetExhausted(err));
        }
        tracing::debug!(attempt, ?delay, "retrying after a retryable error");
        tokio::time::sleep(delay).await;
        attempt = attempt.saturating_add(1);
    }
}
