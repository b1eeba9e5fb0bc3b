//! The call-duration histogram measures real time: a call that takes 30 ms is recorded as
//! at least 30 ms, and a fast call as much less.
//!
//! Calls are timed on quanta's clock (the CPU's time-stamp counter, scaled to nanoseconds
//! by a calibration), not `std::time::Instant`; this checks the scaling end to end, through
//! the `metrics` facade, with a recorder that keeps every value.

use std::time::Duration;

use backend_memory::InMemoryBackend;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use resilience_core::{ResilientClient, SetOptions, observe::CALL_DURATION};
use testkit::faulty::FaultyBackend;

/// What the recorder holds: one snapshot, taken once (taking a snapshot drains the
/// recorder's histograms).
type Entries = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Every value recorded into the call-duration histogram of client `name`, in seconds.
fn durations(entries: &Entries, name: &str) -> Vec<f64> {
    entries
        .iter()
        .filter(|(key, _, _, _)| {
            key.key().name() == CALL_DURATION
                && key
                    .key()
                    .labels()
                    .any(|l| l.key() == "client" && l.value() == name)
        })
        .flat_map(|(_, _, _, value)| match value {
            DebugValue::Histogram(values) => values.iter().map(|v| v.into_inner()).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn a_slow_call_is_recorded_with_its_real_duration() {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let (slow, faults) = FaultyBackend::new(InMemoryBackend::new());
            faults.set_latency(Duration::from_millis(30));
            let slow = ResilientClient::builder("slow", slow)
                .build()
                .expect("valid client settings");
            assert!(
                slow.set("k", "v", SetOptions::default())
                    .await
                    .expect("set")
            );

            let fast = ResilientClient::builder("fast", InMemoryBackend::new())
                .build()
                .expect("valid client settings");
            assert!(
                fast.set("k", "v", SetOptions::default())
                    .await
                    .expect("set")
            );
        });
    });

    let entries: Entries = recorder.snapshotter().snapshot().into_vec();
    let slow = durations(&entries, "slow");
    assert_eq!(slow.len(), 1, "one call, one value: {slow:?}");
    assert!(
        (0.030..10.0).contains(&slow[0]),
        "a call that slept 30 ms was recorded as {} s",
        slow[0]
    );
    let fast = durations(&entries, "fast");
    assert_eq!(fast.len(), 1, "{fast:?}");
    assert!(
        fast[0] >= 0.0 && fast[0] < slow[0],
        "an in-memory call took {} s, the slow one {} s",
        fast[0],
        slow[0]
    );
}
