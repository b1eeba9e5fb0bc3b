//! # memory-tiers
//!
//! Will hold short-term (STM) and intermediate (IM) agent memory on a
//! `resilience_core::ResilientClient`: atomic writes with indexes and TTLs, compression,
//! STM -> IM transitions and fallback during outages. Not written yet; see the project's
//! issues for the plan.

pub mod connect;

pub use connect::{BackendKind, connect, connect_backend, connect_with};
