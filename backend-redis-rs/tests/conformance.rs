//! The shared conformance suite against `RedisRsBackend` on a real redis-server: all cases
//! at once, and each case on its own so a failure names its area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use resilience_core::{Command, KvBackend, Value};
use testkit::conformance;

#[tokio::test]
async fn run_all_passes_and_cleans_up() {
    let server = server().await;
    let r = connect(&server).await;
    let ns = conformance::unique_namespace("conf");
    let ran = conformance::run_all(&r, &ns)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(ran, conformance::CASES.len());
    let left = r
        .execute(Command::Scan {
            cursor: 0,
            pattern: Some(format!("{{{ns}}}*")),
            count: Some(10_000),
            type_name: None,
        })
        .await
        .unwrap();
    assert_eq!(
        left,
        Value::Array(vec![Value::Int(0), Value::Array(vec![])]),
        "the suite left keys behind"
    );
}

#[tokio::test]
async fn every_case_by_name() {
    let server = server().await;
    let r = connect(&server).await;
    let mut failures = Vec::new();
    for name in conformance::CASES {
        let ns = conformance::unique_namespace("conf");
        let case = conformance::case_by_name(name, &r, &ns).expect("listed case exists");
        if let Err(f) = case.await {
            failures.push(f.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
