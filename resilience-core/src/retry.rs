//! Retries: backoff with jitter, and a retry budget shared across calls.
//!
//! Its guide is in the docs of its main type.

pub(crate) mod budget;
pub(crate) mod decision;
pub(crate) mod policy;
pub(crate) mod run;

pub use budget::RetryBudget;
pub use decision::{ByClass, RetryDecision};
pub use policy::{Backoff, Jitter, RetryPolicy};
pub use run::{RetryError, retry_with};
