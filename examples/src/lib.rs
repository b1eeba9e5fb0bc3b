//! Shared code of the example binaries: the benchmark harness, the agent demo, a small
//! deterministic text embedder, and the bounded-outage simulation with its counting
//! allocator.

pub mod alloc;
pub mod bench;
pub mod demo;
pub mod embedder;
pub mod outage;
