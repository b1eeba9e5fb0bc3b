//! [`retry_with`]: run an async operation under a [`RetryPolicy`] and an optional
//! [`RetryBudget`].

use std::future::Future;

use super::{RetryBudget, RetryPolicy};
use crate::error::{BackendError, Error};

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

impl RetryError<BackendError> {
    /// The caller-facing [`Error`] for a backend call that [`retry_with`] gave up on:
    /// [`BudgetExhausted`](RetryError::BudgetExhausted) becomes
    /// [`Error::RetryBudgetExhausted`]; the other variants become the last error's own
    /// classification (`Error::from(last)`, e.g. `Error::Unavailable`).
    pub fn into_error(self) -> Error {
        match self {
            RetryError::BudgetExhausted(e) => Error::RetryBudgetExhausted(e),
            RetryError::Exhausted { last, .. } => Error::from(last),
            RetryError::NotRetryable(e) => Error::from(e),
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
/// use resilience_core::{retry_with, Jitter, RetryError, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let policy = RetryPolicy::default()
///     .with_base_delay(Duration::from_millis(1))
///     .with_jitter(Jitter::None);
/// let result = retry_with(&policy, None, |_e: &&str| true, |attempt| async move {
///     if attempt < 2 { Err("flaky") } else { Ok(attempt) }
/// })
/// .await;
/// assert_eq!(result, Ok(2));
/// # }
/// ```
///
/// # Errors
///
/// [`RetryError`]: the last attempt's error, and whether the budget or the policy stopped
/// the retries.
///
/// # Cancel safety
///
/// Dropping the future stops the retries; the attempt in flight is dropped with it.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::retry::Jitter;
    use std::cell::RefCell;
    use std::time::Duration;
    use tokio::time::Instant;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fail {
        Transient,
        Fatal,
    }

    fn policy(max_retries: u32, jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            jitter,
            seed: Some(7),
            ..RetryPolicy::default()
        }
    }

    /// Runs `retry_with` where attempt `n` returns `outcome(n)`, recording when each attempt
    /// started relative to the start.
    async fn run(
        policy: &RetryPolicy,
        budget: Option<&RetryBudget>,
        outcome: impl Fn(u32) -> Result<u32, Fail>,
    ) -> (Result<u32, RetryError<Fail>>, Vec<(u32, Duration)>) {
        let start = Instant::now();
        let log = RefCell::new(Vec::new());
        let result = retry_with(
            policy,
            budget,
            |e| *e == Fail::Transient,
            |attempt| {
                log.borrow_mut().push((attempt, start.elapsed()));
                let r = outcome(attempt);
                async move { r }
            },
        )
        .await;
        (result, log.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn makes_one_plus_max_retries_attempts_then_exhausted() {
        let p = policy(3, Jitter::None);
        let (result, log) = run(&p, None, |_| Err(Fail::Transient)).await;
        assert_eq!(
            result,
            Err(RetryError::Exhausted {
                attempts: 4,
                last: Fail::Transient
            })
        );
        let attempts: Vec<u32> = log.iter().map(|(a, _)| *a).collect();
        assert_eq!(attempts, [0, 1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_exactly_the_nominal_delays_without_jitter() {
        let p = policy(3, Jitter::None);
        let (_, log) = run(&p, None, |_| Err(Fail::Transient)).await;
        let at: Vec<Duration> = log.iter().map(|(_, t)| *t).collect();
        // 0, then +1 s, +2 s, +4 s.
        assert_eq!(at, [0, 1, 3, 7].map(Duration::from_secs));
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_exactly_the_backoffs_jittered_delays() {
        let p = policy(5, Jitter::Decorrelated);
        let expected: Vec<Duration> = p.backoff().collect();
        let (_, log) = run(&p, None, |_| Err(Fail::Transient)).await;
        let gaps: Vec<Duration> = log.windows(2).map(|w| w[1].1 - w[0].1).collect();
        assert_eq!(gaps.len(), expected.len());
        for (gap, want) in gaps.iter().zip(&expected) {
            // tokio's timer has a 1 ms resolution: a sleep ends on the first tick at or
            // after its deadline.
            assert!(
                *gap >= *want && *gap <= *want + Duration::from_millis(1),
                "slept {gap:?}, backoff said {want:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn succeeds_on_a_later_attempt() {
        let p = policy(3, Jitter::None);
        let (result, log) = run(
            &p,
            None,
            |n| if n < 2 { Err(Fail::Transient) } else { Ok(n) },
        )
        .await;
        assert_eq!(result, Ok(2));
        assert_eq!(log.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_immediately_on_a_non_retryable_error() {
        let p = policy(3, Jitter::None);
        let (result, log) = run(&p, None, |_| Err(Fail::Fatal)).await;
        assert_eq!(result, Err(RetryError::NotRetryable(Fail::Fatal)));
        assert_eq!(log, [(0, Duration::ZERO)]);
        // Also after some retryable failures.
        let (result, log) = run(&p, None, |n| {
            if n == 0 {
                Err(Fail::Transient)
            } else {
                Err(Fail::Fatal)
            }
        })
        .await;
        assert_eq!(result, Err(RetryError::NotRetryable(Fail::Fatal)));
        assert_eq!(log.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn policy_none_makes_a_single_attempt() {
        let (result, log) = run(&RetryPolicy::none(), None, |_| Err(Fail::Transient)).await;
        assert_eq!(
            result,
            Err(RetryError::Exhausted {
                attempts: 1,
                last: Fail::Transient
            })
        );
        assert_eq!(log.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn budget_refusal_stops_retries_without_waiting() {
        // Floor of 0, ratio 0.5: each call deposits half a retry.
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5);
        let p = policy(3, Jitter::None);
        // First call: 0.5 retries available, the first retry is refused.
        let (result, log) = run(&p, Some(&budget), |_| Err(Fail::Transient)).await;
        assert_eq!(result, Err(RetryError::BudgetExhausted(Fail::Transient)));
        assert_eq!(log, [(0, Duration::ZERO)]);
        // Second call: its deposit makes 1.0, so exactly one retry runs, then refusal.
        let (result, log) = run(&p, Some(&budget), |_| Err(Fail::Transient)).await;
        assert_eq!(result, Err(RetryError::BudgetExhausted(Fail::Transient)));
        assert_eq!(log.len(), 2);
        assert_eq!(budget.available(), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn exhausting_the_policy_does_not_spend_budget() {
        let budget = RetryBudget::new(Duration::from_secs(10), 1, 0.0);
        assert_eq!(budget.available(), Some(10));
        let p = policy(2, Jitter::None);
        let (result, _) = run(&p, Some(&budget), |_| Err(Fail::Transient)).await;
        assert!(matches!(
            result,
            Err(RetryError::Exhausted { attempts: 3, .. })
        ));
        // Two retries withdrew two; the final failure did not withdraw a third.
        assert_eq!(budget.available(), Some(8));
        // Success spends nothing.
        let (result, _) = run(&p, Some(&budget), Ok).await;
        assert_eq!(result, Ok(0));
        assert_eq!(budget.available(), Some(8));
    }

    #[tokio::test]
    async fn future_is_send_so_it_can_be_spawned() {
        fn assert_send<F: Future + Send>(f: F) -> F {
            f
        }
        let p = RetryPolicy::none();
        let budget = RetryBudget::default();
        let fut = assert_send(retry_with(
            &p,
            Some(&budget),
            |_: &String| true,
            |attempt| async move { Ok::<u32, String>(attempt) },
        ));
        assert_eq!(fut.await, Ok(0));
    }

    #[test]
    fn error_accessors_and_display() {
        let e: RetryError<&str> = RetryError::Exhausted {
            attempts: 4,
            last: "boom",
        };
        assert_eq!(e.to_string(), "gave up after 4 attempts: boom");
        assert_eq!(*e.last_error(), "boom");
        assert_eq!(e.into_inner(), "boom");
        let e = RetryError::BudgetExhausted("x");
        assert_eq!(e.to_string(), "retry budget exhausted: x");
        assert_eq!(RetryError::NotRetryable(3).into_inner(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn backend_errors_map_to_the_callers_error_with_is_retryable() {
        use crate::error::ErrorKind;
        let p = policy(2, Jitter::None);
        let idempotent = false;
        let kinds = [ErrorKind::Unavailable, ErrorKind::Timeout];
        let result: Result<(), _> = retry_with(
            &p,
            None,
            |e: &BackendError| e.kind().class().may_retry(idempotent),
            |attempt| {
                let kind = kinds[attempt as usize % 2];
                async move { Err(BackendError::new(kind, "boom")) }
            },
        )
        .await;
        // Unavailable is retried; the non-idempotent Timeout on attempt 1 is not.
        let err = result.unwrap_err();
        assert!(matches!(&err, RetryError::NotRetryable(e) if e.kind() == ErrorKind::Timeout));
        assert!(matches!(err.into_error(), Error::Timeout(_)));

        let budget_err = RetryError::BudgetExhausted(BackendError::new(ErrorKind::Busy, "x"));
        assert!(matches!(
            budget_err.into_error(),
            Error::RetryBudgetExhausted(_)
        ));
        let exhausted = RetryError::Exhausted {
            attempts: 3,
            last: BackendError::new(ErrorKind::Unavailable, "x"),
        };
        assert!(matches!(exhausted.into_error(), Error::Unavailable(_)));
    }
}
