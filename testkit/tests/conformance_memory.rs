//! The conformance suite against [`InMemoryBackend`]: all cases at once, and each case on
//! its own so a failure names its area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use backend_memory::InMemoryBackend;
use resilience_core::KvBackend;
use testkit::conformance;

/// The in-memory backend runs the scripting case's own Lua source (feature `lua`).
fn backend() -> InMemoryBackend {
    InMemoryBackend::new()
}

#[tokio::test]
async fn run_all_passes_and_cleans_up() {
    let b = backend();
    let ns = conformance::unique_namespace("conf");
    let ran = conformance::run_all(&b, &ns)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(ran, conformance::CASES.len());
    assert!(b.is_empty(), "the suite left {} keys behind", b.len());
}

#[tokio::test]
async fn every_case_is_reachable_by_name() {
    let b = backend();
    for name in conformance::CASES {
        let ns = conformance::unique_namespace("conf");
        let case = conformance::case_by_name(name, &b, &ns).expect("listed case exists");
        case.await.unwrap_or_else(|f| panic!("{f}"));
    }
    assert!(conformance::case_by_name("no_such_case", &b, "ns").is_none());
    assert_eq!(b.name(), "memory");
}

macro_rules! each_case {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let b = backend();
                let ns = conformance::unique_namespace("conf");
                conformance::$name(&b, &ns).await.unwrap_or_else(|f| panic!("{f}"));
                assert!(b.is_empty(), "case left keys behind");
            }
        )*
    };
}

each_case!(
    ping_and_raw,
    strings,
    binary_empty_large_unicode,
    ttl_and_expiry,
    hashes,
    wrong_type,
    sorted_sets,
    zadd_options,
    zrangebyscore,
    scripts,
    scan,
    batches,
    string_ranges,
    bitfield,
    expire_conditions,
    lex_ranges,
);
