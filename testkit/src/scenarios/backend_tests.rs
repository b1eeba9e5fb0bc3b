//! Every end-to-end scenario, as the tests a backend crate runs: [`backend_tests!`](crate::backend_tests)
//! expands them from a backend factory, so each backend writes one line instead of a file
//! per scenario that differs only by the backend's name.
//!
//! ```ignore
//! // backend-xyz/tests/scenarios.rs
//! mod common; // defines `factory`
//! testkit::backend_tests!(crate::common::factory);
//! ```
//!
//! The tests land in one module per scenario family (`commands::…`, `cluster::…`,
//! `dead_server::…`, `least_privilege::…`, `lost_reply::…`, `pubsub::…`,
//! `resilient_kill::…`, `sentinel::…`, `soak::…`), so a run can pick families by name:
//! `cargo test --test scenarios -- --skip cluster:: --skip soak::`. They run one at a time
//! ([`run_serially`]): each starts its own servers and most time their promises (a
//! breaker closing within a bound), which two scenarios sharing a 2-core machine would
//! blur.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

/// Runs `scenario` on a multi-thread runtime of its own (2 workers), after every earlier
/// scenario of this test binary has finished.
///
/// # Panics
///
/// If no Tokio runtime can be built (the test cannot run), or as `scenario` panics.
pub fn run_serially(scenario: impl Future<Output = ()>) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    // A scenario that failed (panicked) leaves the lock poisoned; the next one still runs.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(scenario),
        Err(e) => panic!("no Tokio runtime for the scenario: {e}"),
    }
}

/// One test: `$name` runs `$body` through [`run_serially`].
#[doc(hidden)]
#[macro_export]
macro_rules! serial_test {
    ($(#[$attr:meta])* $name:ident, $body:expr) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            $crate::scenarios::backend_tests::run_serially($body);
        }
    };
}

/// Expands every end-to-end scenario into tests of a backend (see the module docs):
/// `$connect` is the path of a [`BackendFuture`](super::BackendFuture) factory, written
/// so that it resolves from any module of the test crate (`crate::common::factory`).
#[macro_export]
macro_rules! backend_tests {
    ($connect:path) => {
        /// Every command against a real server with its canonical reply shape, batches and
        /// error classification end to end.
        mod commands {
            $crate::command_tests!($connect);
        }

        /// Redis Cluster: `ASK` and `MOVED`, `MULTI` and `EVALSHA` on hash-tagged keys, a
        /// killed master with per-shard breakers, and the chaos run (`CLUSTER_CHAOS_SECS`
        /// runs it longer).
        mod cluster {
            use $crate::scenarios::{cluster, cluster_chaos};
            $crate::serial_test!(commands_follow_ask_and_moved_and_run_multi_and_evalsha, async {
                cluster::cluster_commands($connect).await.expect("cluster commands");
            });
            $crate::serial_test!(
                /// Reads go to replicas (their command counts move, the masters' do not)
                /// and are answered through a master's failover.
                replicas_answer_reads_through_a_failover,
                async {
                    let report =
                        $crate::scenarios::replica_reads::cluster_replica_reads($connect)
                            .await
                            .expect("replica reads scenario");
                    println!("{report}");
                }
            );
            $crate::serial_test!(a_killed_master_stops_only_its_shard, async {
                let report = cluster::cluster_failover($connect)
                    .await
                    .expect("failover scenario");
                println!("{report}");
            });
            $crate::serial_test!(
                /// Masters killed (and brought back as replicas), blackholed and reset
                /// under concurrent `INCR`s and high-priority writes: no increment applied
                /// twice, no acknowledged write lost.
                cluster_chaos,
                async {
                    let report =
                        cluster_chaos::cluster_chaos($connect, cluster_chaos::chaos_duration())
                            .await
                            .expect("chaos scenario");
                    println!("{report}");
                    assert_eq!(report.violations, 0, "{report}");
                    assert_eq!(report.lost, 0, "{report}");
                    assert_eq!(report.exact_ambiguous, 0, "{report}");
                    assert!(
                        report.kills >= 1
                            && report.blackholes >= 1
                            && report.resets >= 1
                            && report.ok > 0
                            && report.exact > 0
                            && report.acknowledged > 0,
                        "{report}"
                    );
                }
            );
        }

        /// A dead server: the first call after a kill fails fast as `Unavailable`, a `High`
        /// non-idempotent write made then is queued and applied once, and a write whose
        /// reply is lost in flight is `Timeout`.
        mod dead_server {
            use $crate::scenarios;
            $crate::serial_test!(killed_server_fails_fast_and_truthfully, async {
                scenarios::dead_server::dead_server($connect)
                    .await
                    .expect("the scenario must be able to run (is redis-server installed?)")
                    .print_and_assert();
            });
            $crate::serial_test!(reply_lost_in_flight_is_timeout_and_applied_at_most_once, async {
                scenarios::dead_server::in_flight_then_death($connect)
                    .await
                    .expect("the scenario must be able to run (is redis-server installed?)")
                    .print_and_assert();
            });
        }

        /// A connection that dies while idle is noticed without a call: the breaker opens,
        /// cached values turn `Stale`, the next call fails fast.
        mod idle {
            use $crate::scenarios;
            $crate::serial_test!(an_idle_connection_blackholed_is_noticed_without_a_call, async {
                scenarios::idle::idle_blackhole($connect)
                    .await
                    .expect("the scenario must be able to run (is redis-server installed?)")
                    .print_and_assert();
            });
        }

        /// A least-privilege ACL user (no `@admin`, no `@dangerous`, keys of one
        /// namespace): the client, its cache and the cluster router work as that user.
        mod least_privilege {
            use $crate::scenarios::least_privilege;
            $crate::serial_test!(least_privilege_user_on_a_single_server, async {
                least_privilege::least_privilege($connect)
                    .await
                    .expect("the scenario must be able to run (is redis-server installed?)")
                    .print_and_assert();
            });
            $crate::serial_test!(least_privilege_user_on_a_cluster, async {
                least_privilege::least_privilege_cluster($connect)
                    .await
                    .expect("the scenario must be able to run (are redis-server and redis-cli installed?)")
                    .print_and_assert();
            });
        }

        /// A lost reply to each non-idempotent family: applied exactly once, the caller
        /// told `Timeout`.
        mod lost_reply {
            use $crate::scenarios::lost_reply;
            $crate::serial_test!(
                /// The same loss under a write id: retried, applied once, answered with the
                /// recorded reply.
                an_exactly_once_write_is_retried_and_applied_once,
                async {
                    let report =
                        $crate::scenarios::exactly_once::lost_reply_once($connect)
                            .await
                            .expect("the scenario must be able to run");
                    println!("{report}");
                    assert!(report.violations.is_empty(), "{report}");
                }
            );
            $crate::serial_test!(
                /// The same on a cluster: the record lives in the key's slot.
                an_exactly_once_write_is_applied_once_on_a_cluster,
                async {
                    let report =
                        $crate::scenarios::exactly_once::lost_reply_once_cluster($connect)
                            .await
                            .expect("the scenario must be able to run");
                    println!("{report}");
                    assert!(report.violations.is_empty(), "{report}");
                }
            );
            $crate::serial_test!(a_lost_reply_is_a_timeout_and_the_write_applied_once, async {
                lost_reply::lost_reply($connect)
                    .await
                    .expect("the scenario must be able to run (is redis-server installed?)")
                    .print_and_assert();
            });
        }

        /// Pub/Sub through a SIGKILL and a cluster failover: the `Subscriber`
        /// resubscribes and reports the outage as a gap.
        mod pubsub {
            use $crate::scenarios::pubsub;
            $crate::serial_test!(a_subscriber_resubscribes_after_a_kill_and_reports_the_gap, async {
                pubsub::subscriber_survives_a_kill($connect)
                    .await
                    .expect("the scenario must be able to run (is redis-server installed?)")
                    .print_and_assert();
            });
            $crate::serial_test!(a_subscriber_follows_a_cluster_failover, async {
                pubsub::subscriber_follows_a_cluster_failover($connect)
                    .await
                    .expect("the scenario must be able to run (are redis-server and redis-cli installed?)")
                    .print_and_assert();
            });
        }

        /// A real server SIGKILLed under load and restarted on the same port, at the
        /// `ResilientClient` level.
        mod resilient_kill {
            use $crate::scenarios;
            $crate::serial_test!(sigkill_under_load_then_restart_loses_nothing_and_applies_nothing_twice, async {
                scenarios::kill::kill_and_restart($connect)
                    .await
                    .expect("the scenario must be able to run (is redis-server installed?)")
                    .print_and_assert();
            });
        }

        /// Sentinel: the master SIGKILLed under writes (they resume on the new master
        /// within 10 s, same client), and a master demoted under an open connection.
        mod sentinel {
            use $crate::scenarios;
            $crate::serial_test!(
                /// The replica answers reads (its command counts move, the master's do
                /// not), and a call scoped to `Primary` reads from the master.
                the_replica_answers_reads,
                async {
                    let report =
                        $crate::scenarios::replica_reads::sentinel_replica_reads($connect)
                            .await
                            .expect("sentinel replica reads scenario");
                    println!("{report}");
                }
            );
            $crate::serial_test!(writes_resume_on_the_new_master_after_a_failover, async {
                let report = scenarios::sentinel::sentinel_failover($connect)
                    .await
                    .expect("the scenario must be able to run (is redis-server installed?)");
                let resumed = report.kill_to_first_write.expect("writes resumed");
                assert!(resumed <= std::time::Duration::from_secs(10), "{report}");
                assert_ne!(Some(report.killed), report.new_master, "{report}");
                assert!(report.lost.is_empty(), "{report}");
                assert_eq!(
                    report.final_state,
                    resilience_core::CircuitState::Closed,
                    "{report}"
                );
                report.print_and_assert();
            });
            $crate::serial_test!(a_demoted_master_is_left_for_the_new_one, async {
                let report = scenarios::sentinel::follow_demoted_master($connect)
                    .await
                    .expect("the scenario must be able to run");
                // The demoted master answered (the connection stayed open): READONLY ran.
                assert!(report.readonly_errors >= 1, "{report}");
                report.print_and_assert();
            });
        }

        /// The chaos soak (`SOAK_SECS`, default 20; `SOAK_SEED` repeats one run): every
        /// acknowledged write there at the end with its latest value, no non-idempotent
        /// write applied twice, on one server and on a cluster.
        mod soak {
            use $crate::scenarios::soak;
            $crate::serial_test!(chaos_soak_loses_nothing_acknowledged_and_applies_nothing_twice, async {
                soak::chaos_soak($connect)
                    .await
                    .expect("the soak must be able to run (is redis-server installed?)")
                    .print_and_assert();
            });
            $crate::serial_test!(chaos_soak_on_a_cluster_loses_nothing_acknowledged_and_applies_nothing_twice, async {
                soak::chaos_soak_cluster($connect)
                    .await
                    .expect("the soak must be able to run (are redis-server and redis-cli installed?)")
                    .print_and_assert();
            });
        }
    };
}
