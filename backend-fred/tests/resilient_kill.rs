//! Issue 3, item 6, first bullet, at the `ResilientClient` level over `FredBackend`:
//! a real redis-server SIGKILLed under load and restarted on the same port.
//!
//! The scenario itself lives in `testkit::scenarios` (written once, run for every backend);
//! this test prints its numbers (`cargo test -p backend-fred --test resilient_kill --
//! --nocapture`) and asserts its promises.
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
async fn sigkill_under_load_then_restart_loses_nothing_and_applies_nothing_twice() {
    let report = scenarios::kill_and_restart(connect)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)");
    println!("{report}");

    // The promises, spelled out (`violations()` checks the same and a few more).
    assert_eq!(report.open_reason, Some("failure threshold reached"));
    assert!(report.failures_before_open >= 3);
    assert_eq!(
        report.calls_while_open, 0,
        "nothing reaches Redis while Open"
    );
    assert!(report.fail_fast.count > 0);
    assert!(report.fail_fast.p99 < Duration::from_millis(5));
    let closed = report.closed_after_restart.expect("the breaker closed");
    assert!(
        closed <= Duration::from_millis(1500),
        "closed after {closed:?}"
    );
    assert_eq!(report.close_reason, Some("health probe succeeded"));
    assert_eq!(report.final_state, CircuitState::Closed);
    let w = &report.writes;
    assert!(w.queued_high > 0 && w.queued_normal > 0);
    assert_eq!(w.completed, w.queued, "every queued write landed");
    assert_eq!(
        (w.failed, w.dropped, w.dead_lettered, w.unresolved),
        (0, 0, 0, 0)
    );
    assert!(report.wrong_values.is_empty(), "{:?}", report.wrong_values);
    assert!(report.incr.consistent(), "{:?}", report.incr);
    assert_eq!(report.retries, 0);
    let violations = report.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}
