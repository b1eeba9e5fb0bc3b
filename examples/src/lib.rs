//! Shared helpers of the example binaries.

pub mod demo;
