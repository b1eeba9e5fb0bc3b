//! Shared code of the example binaries: the benchmark harness, the agent demo, and the
//! bounded-outage simulation with its counting allocator.

pub mod alloc;
pub mod bench;
pub mod demo;
pub mod outage;
