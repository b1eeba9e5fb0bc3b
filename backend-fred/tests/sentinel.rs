//! Sentinel failover over `FredBackend`: a master, a replica and three sentinels on this
//! machine; the master is SIGKILLed under writes, which must resume on the new master
//! within 10 s with the same client. The scenario lives in `testkit::scenarios::sentinel`
//! (shared with the redis-rs backend); run with `--nocapture` to see the numbers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use backend_fred::FredBackend;
use resilience_core::{CircuitState, ConnectionConfig, KvBackend};
use testkit::scenarios::{self, BackendFuture};

fn connect(config: ConnectionConfig) -> BackendFuture {
    Box::pin(async move {
        let backend = FredBackend::connect(&config).await?;
        Ok(Arc::new(backend) as Arc<dyn KvBackend>)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_resume_on_the_new_master_after_a_failover() {
    let report = scenarios::sentinel_failover(connect)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)");
    println!("{report}");
    let resumed = report.kill_to_first_write.expect("writes resumed");
    assert!(resumed <= Duration::from_secs(10), "{resumed:?}");
    assert_ne!(Some(report.killed), report.new_master);
    assert!(report.lost.is_empty(), "{:?}", report.lost);
    assert_eq!(report.final_state, CircuitState::Closed);
    let violations = report.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

/// A master demoted while the connection stays open answers writes with `READONLY`; the
/// backend asks the sentinel again and writes land on the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_master_is_left_for_the_new_one() {
    let report = scenarios::sentinel::follow_demoted_master(connect)
        .await
        .expect("the scenario must be able to run");
    println!("{report}");
    // The demoted master answered (the connection stayed open): the READONLY path ran.
    assert!(report.readonly_errors >= 1, "{report}");
    let violations = report.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}
