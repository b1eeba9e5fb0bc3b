//! Issue 7, item 3, over `RedisRsBackend`: the chaos soak. Concurrent High and Normal writers
//! against a redis-server with `appendfsync always`, behind a fault proxy, while a seeded
//! fault loop kills and restarts the server and blackholes, resets and slows the network.
//! Every acknowledged write must be there at the end with its latest value, and no
//! non-idempotent write applied twice.
//!
//! The scenario lives in `testkit::scenarios::soak` (written once, run for every backend).
//! It runs `SOAK_SECS` seconds (default 20, so both backends fit in a minute of CI);
//! a longer run, with a fixed seed to repeat one:
//!
//! ```text
//! SOAK_SECS=600 cargo test -p backend-redis-rs --test soak -- --nocapture
//! SOAK_SEED=1234 cargo test -p backend-redis-rs --test soak -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use backend_redis_rs::RedisRsBackend;
use resilience_core::{ConnectionConfig, KvBackend};
use testkit::scenarios::{BackendFuture, soak};

fn connect(config: ConnectionConfig) -> BackendFuture {
    Box::pin(async move {
        let backend = RedisRsBackend::connect(&config).await?;
        Ok(Arc::new(backend) as Arc<dyn KvBackend>)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_loses_nothing_acknowledged_and_applies_nothing_twice() {
    let report = soak::chaos_soak(connect)
        .await
        .expect("the soak must be able to run (is redis-server installed?)");
    println!("{report}");
    for write in &report.unacknowledged {
        println!("  not acknowledged: {write}");
    }
    for problem in &report.problems {
        println!("  broken: {problem}");
    }
    if !report.violations().is_empty() {
        for sample in &report.timeline {
            println!("  {sample}");
        }
    }

    assert_eq!(
        report.lost, 0,
        "acknowledged writes lost: {:#?}",
        report.problems
    );
    assert_eq!(
        report.duplicated, 0,
        "writes applied twice: {:#?}",
        report.problems
    );
    assert!(report.acknowledged > 0);
    assert!(report.faults.total() > 0);
    if report.faults.total() >= 4 {
        // A whole round of faults (one of each kind, a kill among them) was injected.
        assert!(
            report.queued_high > 0 && report.queued_normal > 0,
            "the faults must queue both priorities"
        );
    }
    let violations = report.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}
