//! Smoke test of the benchmark harness: tiny numbers against a private redis-server, for
//! each backend built in, so CI notices when the harness breaks. Numbers are not checked,
//! only that both modes ran and reported something sane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use examples::bench::{self, BackendChoice, BenchConfig, Mode, Pick};

#[cfg_attr(not(any(feature = "redis-rs", feature = "fred")), allow(dead_code))]
async fn smoke(backend: BackendChoice) {
    let config = BenchConfig {
        url: None,
        backends: vec![backend],
        concurrency: vec![1, 4],
        ops: 200,
        repeats: 1,
        value_size: 16,
        pick: Pick::Median,
        progress: false,
        backend_mode: false,
    };
    let report = bench::run(&config).await.expect("bench runs");
    assert_eq!(
        report.comparisons.len(),
        2,
        "one comparison per concurrency"
    );
    assert_eq!(report.samples.len(), 4, "raw and resilient per concurrency");
    for concurrency in [1, 4] {
        for mode in [Mode::Raw, Mode::Resilient] {
            let s = report
                .samples
                .iter()
                .find(|s| s.concurrency == concurrency && s.mode == mode)
                .expect("a sample per concurrency and mode");
            assert_eq!(s.backend, backend.name());
            assert_eq!(s.scenario, "setget");
            assert_eq!(s.ops, 200);
            assert!(s.ops_per_sec > 0.0, "{s:?}");
            assert!(s.p50_us > 0.0 && s.p99_us >= s.p50_us, "{s:?}");
            let line = s.to_json_line().unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["mode"], mode.name());
        }
    }
    for c in &report.comparisons {
        assert!(c.ratio() > 0.0, "{c:?}");
    }
    assert!(report.table().contains("resilient/raw"));
}

#[cfg(feature = "redis-rs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_on_redis_rs() {
    smoke(BackendChoice::RedisRs).await;
}

#[cfg(feature = "fred")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_on_fred() {
    smoke(BackendChoice::Fred).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbuilt_or_empty_settings_fail_cleanly() {
    let config = BenchConfig {
        concurrency: vec![],
        ..BenchConfig::default()
    };
    assert!(bench::run(&config).await.is_err());
}
