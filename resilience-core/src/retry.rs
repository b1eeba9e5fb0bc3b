//! Retries: backoff with jitter, and a retry budget shared across calls.
//!
//! Three pieces, one concept each:
//!
//! - [`RetryPolicy`] (in [`policy`]) is the per-call schedule: at most `max_retries` retries,
//!   the `n`-th after `min(max_delay, base_delay * backoff_factor^n)`, randomised by a
//!   [`Jitter`]. [`RetryPolicy::backoff`] gives the delays of one call as a [`Backoff`]
//!   iterator.
//! - [`RetryBudget`] (in [`budget`]) is shared by all calls of a client and caps retries at a
//!   fraction of recent calls plus a small floor, so an outage does not multiply the load on
//!   a struggling server.
//! - [`retry_with`] (in [`run`]) runs an async operation under a policy and an optional
//!   budget, waiting with `tokio::time::sleep` (never a blocking sleep), and says why it gave
//!   up in a [`RetryError`].
//!
//! What to retry is the caller's decision, passed as `should_retry`: the client uses
//! [`ErrorKind::is_retryable`](crate::ErrorKind::is_retryable) with the command's
//! idempotency, so only failures classified as retryable are retried.
//!
//! ```
//! use std::time::Duration;
//! use resilience_core::retry::{Jitter, RetryPolicy};
//!
//! // The default schedule, without jitter: 1 s, 2 s, 4 s.
//! let policy = RetryPolicy::default().with_jitter(Jitter::None);
//! let delays: Vec<Duration> = policy.backoff().collect();
//! assert_eq!(delays, [1, 2, 4].map(Duration::from_secs));
//!
//! // The default (Equal jitter) keeps each delay within [d/2, d].
//! for (n, d) in RetryPolicy::default().backoff().enumerate() {
//!     let nominal = policy.nominal_delay(n as u32);
//!     assert!(d >= nominal / 2 && d <= nominal);
//! }
//! ```

pub mod budget;
pub mod policy;
pub mod run;

pub use budget::RetryBudget;
pub use policy::{Backoff, Jitter, RetryPolicy};
pub use run::{RetryError, retry_with};
