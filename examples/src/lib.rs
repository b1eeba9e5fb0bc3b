//! Shared helpers of the example binaries.

pub mod alloc;
pub mod outage;
