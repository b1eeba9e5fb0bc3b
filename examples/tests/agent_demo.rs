//! The agent demo, end to end: a small run on the embedded backend with its scripted
//! outage, the Prometheus endpoint scraped once, and a small run on a spawned
//! `redis-server` that is killed and restarted in the middle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use examples::demo::{DemoArgs, DemoError, DemoReport, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn args(extra: &[&str], chart: &Path) -> DemoArgs {
    let mut argv = vec![
        "agent-demo",
        "--agents",
        "5",
        "--steps",
        "40",
        "--step-ms",
        "20",
        "--outage-from",
        "0.3",
        "--outage-to",
        "0.7",
        "--health-check-ms",
        "100",
        "--no-progress",
        "--chart",
    ];
    let chart = chart.to_str().unwrap();
    argv.push(chart);
    argv.extend_from_slice(extra);
    DemoArgs::parse_from(argv)
}

/// What every demo run must show.
fn assert_recovered(report: &DemoReport) {
    assert_eq!(report.lost, 0, "{report}");
    assert!(report.unexpected.is_empty(), "{report}");
    assert!(report.is_success(), "{report}");
    assert_eq!(report.issued, 5 * 40, "{report}");
    assert!(report.queued > 0, "nothing was queued: {report}");
    assert_eq!(
        report.completed,
        report.queued - report.dead_lettered_total(),
        "{report}"
    );
    assert!(report.breaker_opened(), "{report}");
    assert!(report.breaker_closed_after_opening(), "{report}");
    assert!(report.close_after_outage.is_some(), "{report}");
    // Every write is accounted for.
    let critical_failed: u64 = report.by_priority[0].failed;
    assert_eq!(
        report.stored_directly + report.queued + report.dropped + report.failed_total(),
        report.issued,
        "{report}"
    );
    assert_eq!(report.critical_restored, critical_failed, "{report}");
    assert_eq!(
        report.expected_present,
        report.stored_directly + report.completed + report.critical_restored,
        "{report}"
    );
    // Agents searched by similarity during the run, and remember what they saw.
    assert!(report.searches > 0 && report.search_errors == 0, "{report}");
    assert_eq!(report.recall_queries, 6, "{report}");
    assert!(report.recall_matched >= 5, "{report}");
    assert_eq!(report.recall_examples.len(), 6, "{report}");
    let chart = report.chart_path.as_ref().expect("a chart path");
    let svg = std::fs::read_to_string(chart).unwrap();
    assert!(svg.starts_with("<svg"), "not an SVG: {chart:?}");
    assert!(svg.contains("breaker state"), "{chart:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_backend_scripted_outage_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("charts/demo.svg");
    let report = run(&args(&[], &chart)).await.unwrap();
    assert_eq!(report.backend, "memory");
    assert_recovered(&report);
    assert!(report.outage_window.is_some(), "{report}");
    assert!(
        report.reads_fallback > 0,
        "no read used the fallback: {report}"
    );
}

async fn scrape(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut body))
        .await
        .expect("the exporter answered in time")
        .unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_shows_the_core_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("demo.svg");
    let mut attempts = 0;
    let (addr, report) = loop {
        attempts += 1;
        let port = testkit::server::free_port().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let addr_arg = addr.to_string();
        match run(&args(&["--metrics-addr", &addr_arg], &chart)).await {
            Ok(report) => break (addr, report),
            // The exporter binds before it installs itself, so a port taken in the
            // meantime leaves nothing installed: try another one.
            Err(DemoError::Metrics(e)) if attempts < 5 => {
                eprintln!("metrics port {addr} was taken ({e}); trying another");
            }
            Err(e) => panic!("the demo failed: {e}"),
        }
    };
    assert_eq!(report.metrics_url, Some(format!("http://{addr}/metrics")));
    assert_eq!(report.lost, 0, "{report}");
    let body = scrape(addr).await;
    for name in [
        resilience_core::observe::CALLS,
        resilience_core::observe::STORE_OUTCOMES,
        resilience_core::observe::QUEUE_ENQUEUED,
        resilience_core::observe::BREAKER_TRANSITIONS,
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
}

#[test]
fn invalid_combinations_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("demo.svg");
    let kill_with_url = args(
        &[
            "--backend",
            "redis-rs",
            "--url",
            "redis://127.0.0.1:1/",
            "--outage",
            "kill",
        ],
        &chart,
    );
    let err = kill_with_url.validate().unwrap_err().to_string();
    assert!(err.contains("spawned"), "{err}");
    let blackhole_in_memory = args(&["--outage", "blackhole"], &chart);
    assert!(blackhole_in_memory.validate().is_err());
    let backwards = args(&["--outage-from", "0.8", "--outage-to", "0.2"], &chart);
    assert!(backwards.validate().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_redis_killed_and_restarted_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("redis.svg");
    let report = run(&args(
        &[
            "--backend",
            "redis-rs",
            "--outage",
            "kill",
            "--drain-timeout-secs",
            "8",
        ],
        &chart,
    ))
    .await
    .unwrap();
    assert_eq!(report.backend, "redis-rs");
    assert_recovered(&report);
    assert!(
        report.elapsed < Duration::from_secs(10),
        "took {:?}",
        report.elapsed
    );
}
