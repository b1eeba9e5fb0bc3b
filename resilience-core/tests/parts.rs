//! The client's parts, each with its own configuration: observability that, turned off,
//! records nothing per call, and a retry decision that every retry path consults.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use backend_memory::InMemoryBackend;
use common::Rig;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use resilience_core::observe::{CALL_DURATION, CALLS, Observability};
use resilience_core::{
    CircuitBreakerConfig, Command, Error, Priority, ResilientClient, RetryPolicy, SetOptions,
    StoreOutcome,
};

/// How many call-duration values and call counts the recorder holds for client `name`.
fn recorded(recorder: &DebuggingRecorder, name: &str) -> (usize, u64) {
    let mut durations = 0;
    let mut calls = 0;
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let ours = key
            .key()
            .labels()
            .any(|l| l.key() == "client" && l.value() == name);
        match (key.key().name(), value) {
            (n, DebugValue::Histogram(v)) if ours && n == CALL_DURATION => durations += v.len(),
            (n, DebugValue::Counter(c)) if ours && n == CALLS => calls += c,
            _ => {}
        }
    }
    (durations, calls)
}

#[test]
fn call_metrics_turned_off_record_nothing_per_call() {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (on, off) = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let on = ResilientClient::new("on", InMemoryBackend::new());
            let off = ResilientClient::builder("off", InMemoryBackend::new())
                .observability(Observability::OFF)
                .build()
                .expect("valid client settings");
            for client in [&on, &off] {
                for _ in 0..3 {
                    client
                        .set("k", "v", SetOptions::default())
                        .await
                        .expect("set");
                }
            }
            (on.stats(), off.stats())
        })
    });
    // The instrument works: the client with metrics on is seen.
    assert_eq!(recorded(&recorder, "on"), (3, 3));
    assert_eq!(on.calls, 3);
    assert_eq!(recorded(&recorder, "off"), (0, 0));
    assert_eq!(off.calls, 0);
}

#[tokio::test(start_paused = true)]
async fn every_retry_path_asks_the_retry_decision() {
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&asked);
    let (rig, client) = Rig::client(move |b| {
        b.breaker(CircuitBreakerConfig::default().circuit_threshold(1_000))
            .retry_decision(move |_: &Error, _: bool| {
                counted.fetch_add(1, Ordering::SeqCst);
                false
            })
    });
    rig.faults.set_outage(true);
    // Inline retries: the decision says no, so one attempt only.
    let get = Command::Get { key: "k".into() };
    let policy = RetryPolicy::default().with_max_retries(3);
    assert!(matches!(
        client.execute_with_retry(get, &policy).await,
        Err(Error::Unavailable(_))
    ));
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(client.stats().calls, 1);
    // Priorities: a write the decision will not retry is not queued either.
    let set = Command::Set {
        key: "k".into(),
        value: "v".into(),
        options: SetOptions::default(),
    };
    let outcome = client.submit(vec![set], Priority::High).await;
    assert!(
        matches!(outcome, StoreOutcome::Failed(Error::Unavailable(_))),
        "{outcome:?}"
    );
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}
