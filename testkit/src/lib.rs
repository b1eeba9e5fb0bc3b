//! # testkit
//!
//! Tools for testing code built on `resilience-core`:
//!
//! - [`mock`]: `MockKvBackend`, a mockall mock of `KvBackend` for exact call expectations.
//! - [`faulty`]: `FaultyBackend<B>`, scripted deterministic faults around any backend.
//! - [`affinity`]: CPU pinning, so a benchmark's client and server do not share a core.
//! - [`server`]: real `redis-server` processes on free ports, stopped and restarted at will.
//! - [`proxy`]: a TCP proxy that passes, delays, blackholes or resets connections.
//! - [`conformance`]: the suite every backend must pass, as library functions.
//! - [`logs`]: an in-memory capture of every log line, to check what a run wrote.
//! - [`scenarios`]: end-to-end fault scenarios for a `ResilientClient` over a real server.
//!
//! Every item has one path, in its module (`testkit::server::RedisServer`,
//! `testkit::scenarios::kill::kill_and_restart`): nothing is re-exported a second time.

pub mod affinity;
pub mod conformance;
pub mod faulty;
mod fine_timer;
pub mod logs;
pub mod mock;
pub mod proxy;
pub mod scenarios;
pub mod server;
