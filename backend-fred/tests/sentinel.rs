//! Sentinel over `FredBackend`: a master, a replica and three sentinels on this machine;
//! the master is SIGKILLed under writes, which must resume on the new master within 10 s
//! with the same client; and a master demoted under an open connection (`READONLY`) is
//! left for the new one. The scenarios live in `testkit::scenarios::sentinel` (shared
//! with the redis-rs backend); run with `--nocapture` to see the numbers.

mod common;

use std::time::Duration;

use resilience_core::CircuitState;
use testkit::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_resume_on_the_new_master_after_a_failover() {
    let report = scenarios::sentinel_failover(common::factory)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)");
    let resumed = report.kill_to_first_write.expect("writes resumed");
    assert!(resumed <= Duration::from_secs(10), "{report}");
    assert_ne!(Some(report.killed), report.new_master, "{report}");
    assert!(report.lost.is_empty(), "{report}");
    assert_eq!(report.final_state, CircuitState::Closed, "{report}");
    report.print_and_assert();
}

/// A master demoted while the connection stays open answers writes with `READONLY`; the
/// backend asks the sentinel again and writes land on the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_master_is_left_for_the_new_one() {
    let report = scenarios::sentinel::follow_demoted_master(common::factory)
        .await
        .expect("the scenario must be able to run");
    // The demoted master answered (the connection stayed open): the READONLY path ran.
    assert!(report.readonly_errors >= 1, "{report}");
    report.print_and_assert();
}
