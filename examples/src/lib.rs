//! Shared code of the example binaries: the benchmark harness and the agent demo.

pub mod bench;
pub mod demo;
