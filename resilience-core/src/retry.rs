//! Retries: backoff with jitter, and a retry budget shared across calls.
//!
//! Its guide is in the docs of its main type.

pub mod budget;
pub mod decision;
pub mod policy;
pub mod run;

pub use budget::RetryBudget;
pub use decision::{ByClass, RetryDecision};
pub use policy::{Backoff, Jitter, RetryPolicy};
pub use run::{RetryError, retry_with};
