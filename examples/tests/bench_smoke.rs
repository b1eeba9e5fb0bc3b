//! Smoke test of the benchmark suite: tiny numbers against private redis-servers, for
//! each backend built in and each scenario, so CI notices when the harness breaks. Targets
//! are not checked (the CI machine is not the benchmark machine), only that every scenario
//! ran and reported something sane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use examples::bench::{self, BackendChoice, BenchConfig, Measurement, Mode, Pick, Scenario};

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
        scenarios: vec![Scenario::SetGet],
        redis_benchmark_requests: 0,
        ..BenchConfig::default()
    };
    let report = bench::run(&config).await.expect("bench runs");
    assert!(
        report.measurements.is_empty(),
        "setget alone, no redis-benchmark"
    );
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

/// Tiny settings for the scenarios beyond setget, on every backend built in.
#[cfg_attr(not(any(feature = "redis-rs", feature = "fred")), allow(dead_code))]
fn tiny(scenarios: Vec<Scenario>) -> BenchConfig {
    BenchConfig {
        backends: BackendChoice::all_built(),
        scenarios,
        tier_agents: 4,
        tier_ops: 80,
        outage: Duration::from_millis(100),
        recovery_tasks: 2,
        drain_writes: 500,
        drain_batch_size: 64,
        open_ops: 2_000,
        open_concurrency: 4,
        value_size: 16,
        ..BenchConfig::default()
    }
}

#[cfg_attr(not(any(feature = "redis-rs", feature = "fred")), allow(dead_code))]
fn find<'a>(ms: &'a [Measurement], backend: &str, metric: &str) -> &'a Measurement {
    ms.iter()
        .find(|m| m.backend == backend && m.metric == metric)
        .unwrap_or_else(|| panic!("no {metric} measurement for {backend} in {ms:?}"))
}

#[cfg_attr(not(any(feature = "redis-rs", feature = "fred")), allow(dead_code))]
fn check_json(m: &Measurement, scenario: &str) {
    let v: serde_json::Value = serde_json::from_str(&m.to_json_line().unwrap()).unwrap();
    assert_eq!(v["scenario"], scenario);
    assert_eq!(v["metric"], m.metric);
    assert!(v["value"].as_f64().unwrap() >= 0.0);
}

#[cfg(any(feature = "redis-rs", feature = "fred"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_and_open_scenarios_run() {
    let config = tiny(vec![Scenario::Tiers, Scenario::Open]);
    let report = bench::run(&config).await.expect("bench runs");
    assert!(report.comparisons.is_empty());
    for backend in BackendChoice::all_built() {
        for metric in ["store", "recent20", "stm_to_im"] {
            let m = find(&report.measurements, backend.name(), metric);
            assert_eq!((m.scenario, m.mode), ("tiers", Some("tiers")));
            assert!(m.value > 0.0 && m.pass.is_some(), "{m:?}");
            check_json(m, "tiers");
        }
        // store and recent20 are also measured by hand, and compared.
        for metric in ["store", "recent20"] {
            let of = |mode: &str| {
                report
                    .measurements
                    .iter()
                    .find(|m| {
                        m.backend == backend.name() && m.metric == metric && m.mode == Some(mode)
                    })
                    .unwrap_or_else(|| panic!("no {metric} {mode} line"))
            };
            let (tiers, hand, ratio) = (of("tiers"), of("hand-rolled"), of("tiers/hand-rolled"));
            assert_eq!(hand.ops, tiers.ops);
            assert!(hand.value > 0.0 && hand.cpu_us_per_op.is_some(), "{hand:?}");
            let expected = tiers.value / hand.value;
            assert!((ratio.value - expected).abs() < 1e-9, "{ratio:?}");
            assert_eq!(ratio.unit, "x");
        }
        // A counted read by id, against one plain HGET of the same entries.
        let gets: Vec<_> = report
            .measurements
            .iter()
            .filter(|m| m.backend == backend.name() && m.metric == "get")
            .collect();
        assert_eq!(gets.len(), 2, "{gets:?}");
        assert_eq!(gets[0].mode, Some("tiers"));
        assert_eq!(gets[1].mode, Some("hand-rolled"));
        assert_eq!(gets[0].ops, gets[1].ops);
        assert_eq!(find(&report.measurements, backend.name(), "store").ops, 80);
        // 4 agents keep one memory each in STM.
        assert_eq!(
            find(&report.measurements, backend.name(), "stm_to_im").ops,
            76
        );
        let open = find(&report.measurements, backend.name(), "rejected_call");
        assert_eq!((open.scenario, open.ops, open.unit), ("open", 2_000, "us"));
        assert!(open.p99_us.unwrap() >= open.p50_us.unwrap(), "{open:?}");
        check_json(open, "open");
    }
    assert!(report.table().contains("recent20"));
}

#[cfg(any(feature = "redis-rs", feature = "fred"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_scenario_runs() {
    let config = BenchConfig {
        recall_memories: 300,
        recall_queries: 20,
        recall_dimension: 32,
        ..tiny(vec![Scenario::Recall])
    };
    let report = bench::run(&config).await.expect("bench runs");
    for backend in BackendChoice::all_built() {
        let similar = find(&report.measurements, backend.name(), "similar10");
        assert_eq!(
            (similar.scenario, similar.ops, similar.unit),
            ("recall", 20, "ms")
        );
        assert!(
            similar.p99_us.unwrap() >= similar.p50_us.unwrap(),
            "{similar:?}"
        );
        assert!(similar.cpu_us_per_op.is_some() && similar.server_us_per_op.is_some());
        assert!(
            similar
                .detail
                .as_deref()
                .unwrap()
                .contains("30 STM, 270 IM"),
            "{similar:?}"
        );
        let recall = find(&report.measurements, backend.name(), "recall10");
        assert!((0.0..=1.0).contains(&recall.value) && recall.pass.is_some());
        let brute = find(&report.measurements, backend.name(), "brute10");
        assert_eq!((brute.mode, brute.ops), (Some("brute-force"), 2));
        let speedup = find(&report.measurements, backend.name(), "similar10_speedup");
        let expected = brute.value / similar.value;
        assert!((speedup.value - expected).abs() < 1e-9, "{speedup:?}");
        let bytes = find(&report.measurements, backend.name(), "im_embedding_bytes");
        assert_eq!(
            bytes.value, 36.0,
            "32 bytes and a 4-byte length per IM embedding"
        );
        assert_eq!(bytes.ops, 270);
        find(&report.measurements, backend.name(), "similar10_per_core");
        for m in report
            .measurements
            .iter()
            .filter(|m| m.backend == backend.name())
        {
            check_json(m, "recall");
        }
    }
}

#[cfg(any(feature = "redis-rs", feature = "fred"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_and_drain_scenarios_run() {
    let config = tiny(vec![Scenario::Drain, Scenario::Recovery]);
    let report = bench::run(&config).await.expect("bench runs");
    for backend in BackendChoice::all_built() {
        let closed = find(&report.measurements, backend.name(), "to_closed");
        assert_eq!(closed.scenario, "recovery");
        // The health probe pings every second; well within ten.
        assert!(closed.value > 0.0 && closed.value < 10_000.0, "{closed:?}");
        let first = find(&report.measurements, backend.name(), "to_first_success");
        assert!(first.value < 10_000.0, "{first:?}");
        check_json(closed, "recovery");
        let drain = find(&report.measurements, backend.name(), "drain");
        assert_eq!((drain.scenario, drain.ops), ("drain", 500));
        assert!(drain.value > 0.0, "{drain:?}");
        assert!(drain.detail.as_deref().unwrap().contains("batch_size=64"));
        check_json(drain, "drain");
        assert_eq!(
            find(&report.measurements, backend.name(), "enqueue").ops,
            500
        );
    }
    // Recovery and drain come in the suite's order whatever the order asked.
    let first_drain = report
        .measurements
        .iter()
        .position(|m| m.scenario == "drain");
    let first_recovery = report
        .measurements
        .iter()
        .position(|m| m.scenario == "recovery");
    assert!(first_recovery < first_drain);
}

#[test]
fn scenario_lists_parse() {
    assert_eq!(Scenario::parse_list("all").unwrap(), Scenario::ALL.to_vec());
    assert_eq!(
        Scenario::parse_list("open,setget").unwrap(),
        vec![Scenario::SetGet, Scenario::Open]
    );
    assert!(Scenario::parse_list("setget,nope").is_err());
    assert!(Scenario::parse_list("").unwrap().is_empty());
}
