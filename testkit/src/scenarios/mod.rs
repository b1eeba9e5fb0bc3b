//! End-to-end fault scenarios for a `ResilientClient` over a real `redis-server`, written
//! once and run for every backend.
//!
//! A scenario owns everything it needs: it starts its own server, connects a backend
//! through the factory you pass (so this crate never depends on a driver crate), builds a
//! client, injects the fault, measures, checks the data that ended up in Redis and returns
//! a report with the numbers. The report lists the promises the run broke
//! ([`KillReport::violations`](kill::KillReport::violations)); a backend's test prints the report and asserts that list
//! is empty.
//!
//! ```no_run
//! use std::sync::Arc;
//! use backend_memory::InMemoryBackend;
//! use resilience_core::{BackendError, ConnectionConfig, KvBackend};
//! use testkit::scenarios::{self, BackendFuture};
//!
//! # async fn demo() {
//! // A real test passes e.g. `RedisRsBackend::connect(&config)` here.
//! fn connect(config: ConnectionConfig) -> BackendFuture {
//!     Box::pin(async move {
//!         let _ = config;
//!         Ok(Arc::new(InMemoryBackend::new()) as Arc<dyn KvBackend>)
//!     })
//! }
//! let report = scenarios::kill::kill_and_restart(connect).await.expect("scenario ran");
//! println!("{report}");
//! assert!(report.violations().is_empty(), "{:#?}", report.violations());
//! # }
//! ```
//!
//! # Scenarios
//!
//! - [`kill::kill_and_restart`]: one SIGKILL under load, with the breaker's promises.
//! - [`soak::chaos_soak`]: concurrent writers while a seeded fault loop kills, restarts,
//!   blackholes, resets and slows the server for a while; every acknowledged write must
//!   be there at the end, none applied twice.
//! - [`sentinel::sentinel_failover`]: a master, a replica and three sentinels; the master
//!   is SIGKILLed under writes, which must resume on the new master within 10 s without
//!   a new client, losing no confirmed write.
//! - [`dead_server::dead_server`]: kills, idle and under load, repeated: the first call
//!   after a kill fails fast as `Unavailable` (not sent), a `High` or `Normal` non-idempotent write
//!   made then is queued and applied exactly once, the breaker opens within 100 ms of a
//!   kill under load and closes within 1.5 s of the restart; and a write whose reply is
//!   lost in flight is `Timeout` and applied at most once.
//! - [`replica_reads::cluster_replica_reads`]: reads served by a cluster's replicas
//!   (their `INFO commandstats` move, the masters' do not), and answered through a
//!   master's failover.
//! - [`least_privilege::least_privilege`] (and `least_privilege_cluster`): a user
//!   without `@admin` or `@dangerous`, limited to one key namespace, as managed services
//!   hand out; the client, its cache and the cluster router work as that user.
//! - [`idle::idle_blackhole`]: a connection idle for 10 s, then blackholed: with no call
//!   made, the breaker opens within 3 s, the cached key reads `Stale` and the next call
//!   fails fast.
//! - [`acl::acl_checks`]: ACL users over a real server: right and wrong passwords, `Auth`
//!   never opening the breaker, and the password in no error, `Debug` or log line.
//!
//! [`kill::kill_and_restart`]'s run, step by step, and the promises it checks are on
//! [`kill::kill_and_restart_with`].

pub mod acl;
pub mod backend_tests;
pub mod cache;
pub mod cluster;
pub mod cluster_chaos;
pub mod commands;
pub mod dead_server;
pub mod exactly_once;
pub mod idle;
pub mod kill;
pub mod least_privilege;
pub mod lost_reply;
pub mod pubsub;
pub mod replica_reads;
mod run;
pub mod sentinel;
pub mod soak;
pub mod support;
pub mod tls;

pub use acl::{AclOptions, AclReport, acl_checks, acl_checks_with};
pub use dead_server::{
    DeadServerOptions, DeadServerReport, InFlightReport, dead_server, dead_server_with,
    in_flight_then_death,
};

pub(crate) use run::print_and_assert;
pub use run::{BackendFuture, Latency, Load, ScenarioFailure};
