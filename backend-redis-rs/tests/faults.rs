//! Fault tests against a real redis-server: a blackholed network, connections reset
//! mid-pipeline, and a server SIGKILLed and restarted on the same port.
//!
//! A call ends within `socket_timeout` + 100 ms: that bound is the backend's promise and is
//! asserted. How soon commands succeed again after the server comes back is the bench's
//! to measure (`bench --scenario recovery`); here recovery is waited for with a generous
//! deadline, and what is asserted is how many calls failed on the way (none, or only the
//! one that found the dead socket).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use backend_redis_rs::RedisRsBackend;
use common::*;
use resilience_core::{Command, ErrorKind, KvBackend, Value};
use testkit::proxy::{FaultProxy, ProxyMode};
use tokio::time::Instant;

/// How long a test waits for commands to succeed again: a deadline for the condition on a
/// loaded machine, not the promise being measured.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn blackhole_times_out_every_call_then_recovers() {
    let server = server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let r = RedisRsBackend::connect(&proxied_config(&proxy))
        .await
        .unwrap();
    assert_eq!(r.execute(set("k", "v")).await.unwrap(), Value::Okay);

    proxy.set_mode(ProxyMode::Blackhole);
    let mut slowest = Duration::ZERO;
    // Single calls, a pipeline and a transaction all end with Timeout in time, and keep
    // doing so (no call hangs on a wedged connection).
    for round in 0..3 {
        let (res, took) = timed(r.execute(get("k"))).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "round {round}: {err}");
        assert!(
            took <= SOCKET_TIMEOUT + SLACK,
            "round {round}: took {took:?}"
        );
        slowest = slowest.max(took);
        let (res, took) = timed(r.execute_batch(vec![get("k"), get("k")], round % 2 == 0)).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::Timeout);
        assert!(took <= SOCKET_TIMEOUT + SLACK, "batch took {took:?}");
    }
    // Concurrent callers are bounded the same way.
    let calls = (0..8).map(|_| {
        let r = r.clone();
        tokio::spawn(async move { timed(r.execute(get("k"))).await })
    });
    for call in calls {
        let (res, took) = call.await.unwrap();
        assert_eq!(res.unwrap_err().kind(), ErrorKind::Timeout);
        assert!(
            took <= SOCKET_TIMEOUT + SLACK,
            "concurrent call took {took:?}"
        );
        slowest = slowest.max(took);
    }
    eprintln!("blackholed: slowest Timeout took {slowest:?} (socket_timeout {SOCKET_TIMEOUT:?})");

    proxy.set_mode(ProxyMode::Pass);
    let (recovered_in, failures) = until_ping_succeeds(&r, RECOVERY_DEADLINE)
        .await
        .expect("commands succeed again after the partition heals");
    eprintln!("blackhole healed: PING succeeded after {recovered_in:?} ({failures} failed calls)");
    assert_eq!(r.execute(get("k")).await.unwrap(), Value::Bytes(b("v")));
}

#[tokio::test]
async fn connect_to_a_blackhole_times_out() {
    let server = server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    proxy.set_mode(ProxyMode::Blackhole);
    let (res, took) = timed(RedisRsBackend::connect(&proxied_config(&proxy))).await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::Timeout);
    assert!(took <= SOCKET_TIMEOUT + SLACK, "connect took {took:?}");
}

#[tokio::test]
async fn reset_mid_pipeline_is_an_error_never_a_partial_success() {
    let server = server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let r = RedisRsBackend::connect(&proxied_config(&proxy))
        .await
        .unwrap();

    // Each chunk waits 150 ms in the proxy, either way. The reset comes once the batch
    // has reached the server and before its reply has reached the client: mid-pipeline.
    proxy.set_mode(ProxyMode::Latency(Duration::from_millis(150)));
    for atomic in [false, true] {
        let cmds: Vec<Command> = (0..200)
            .map(|i| set(&format!("p:{atomic}:{i}"), "x"))
            .collect();
        let before = proxy.traffic();
        let batch = {
            let r = r.clone();
            tokio::spawn(async move { r.execute_batch(cmds, atomic).await })
        };
        let sent = proxy
            .wait_for_traffic(Duration::from_secs(5), |t| {
                t.requests_forwarded > before.requests_forwarded
            })
            .await
            .expect("the batch reached the server");
        proxy.reset_all();
        assert_eq!(
            sent.replies_forwarded, before.replies_forwarded,
            "atomic={atomic}: the reply reached the client before the reset"
        );
        let err = batch.await.unwrap().unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "atomic={atomic}: {err}"
        );
    }

    // A big batch racing a reset either fully succeeds or fails: never Ok with less.
    proxy.set_mode(ProxyMode::Pass);
    let cmds: Vec<Command> = (0..5_000).map(|i| set(&format!("big:{i}"), "x")).collect();
    let batch = {
        let r = r.clone();
        tokio::spawn(async move { r.execute_batch(cmds, false).await })
    };
    tokio::task::yield_now().await;
    proxy.reset_all();
    match batch.await.unwrap() {
        Ok(values) => {
            assert_eq!(values.len(), 5_000);
            assert!(values.iter().all(|v| *v == Value::Okay));
        }
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "{e}"
        ),
    }
    let (recovered_in, _) = until_ping_succeeds(&r, RECOVERY_DEADLINE)
        .await
        .expect("usable again after resets");
    eprintln!("after resets: PING succeeded after {recovered_in:?}");
}

#[tokio::test]
async fn sigkill_and_restart_fail_fast_then_recover_on_the_first_call() {
    let mut server = server().await;
    let r = connect(&server).await;
    assert_eq!(r.execute(set("k", "v")).await.unwrap(), Value::Okay);

    server.stop().await.unwrap();
    // While down: every call fails fast, with Unavailable (refused) or Timeout.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let (res, took) = timed(r.execute(get("k"))).await;
        let err = res.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "{err}"
        );
        slowest = slowest.max(took);
        // A non-idempotent write is never retried into a double apply: it just fails.
        let err = r
            .execute(Command::Incrby {
                key: "n".into(),
                delta: 1,
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    }
    assert!(
        slowest <= SOCKET_TIMEOUT + SLACK,
        "slowest failure {slowest:?}"
    );
    eprintln!("server down: slowest failing call took {slowest:?}");

    server.restart().await.unwrap();
    let (recovered_in, failures) = until_ping_succeeds(&r, RECOVERY_DEADLINE)
        .await
        .expect("commands succeed again after the restart");
    eprintln!(
        "restart while calling: PING succeeded {recovered_in:?} after restart ({failures} failures)"
    );
    assert_eq!(failures, 0, "the first call after the restart succeeds");
    // The INCRs that failed while down were never applied (no buffered replay).
    assert_eq!(r.execute(get("n")).await.unwrap(), Value::Nil);
}

#[tokio::test]
async fn restart_while_idle_recovers_after_at_most_one_failed_call() {
    let mut server = server().await;
    let r = connect(&server).await;
    assert_eq!(
        r.execute(Command::Ping).await.unwrap(),
        Value::Status("PONG".into())
    );
    // No call at all while the server is down: the manager still holds the dead socket.
    server.stop().await.unwrap();
    server.restart().await.unwrap();
    let (recovered_in, failures) = until_ping_succeeds(&r, RECOVERY_DEADLINE)
        .await
        .expect("commands succeed again after the restart");
    eprintln!("restart while idle: PING succeeded after {recovered_in:?} ({failures} failures)");
    assert!(
        failures <= 1,
        "at most the call that finds the dead socket fails"
    );
}

#[tokio::test]
async fn connect_timeout_longer_than_socket_timeout_still_bounds_calls_and_recovers() {
    let server = server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let mut config = proxied_config(&proxy);
    config.socket_connect_timeout = Duration::from_millis(1_200);
    let r = RedisRsBackend::connect(&config).await.unwrap();
    assert_eq!(
        r.execute(Command::Ping).await.unwrap(),
        Value::Status("PONG".into())
    );

    proxy.set_mode(ProxyMode::Blackhole);
    // Long enough for the reconnect attempt itself to time out and be restarted.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_millis(2_600) {
        let (res, took) = timed(r.execute(get("k"))).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::Timeout);
        assert!(took <= SOCKET_TIMEOUT + SLACK, "took {took:?}");
    }
    proxy.set_mode(ProxyMode::Pass);
    let (recovered_in, failures) = until_ping_succeeds(&r, RECOVERY_DEADLINE)
        .await
        .expect("commands succeed again after the partition heals");
    eprintln!("long connect timeout, healed: PING after {recovered_in:?} ({failures} failures)");
}

#[tokio::test]
async fn a_reply_lost_to_a_reset_is_never_resent_by_the_driver() {
    let server = server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let r = RedisRsBackend::connect(&proxied_config(&proxy))
        .await
        .unwrap();
    let direct = connect(&server).await;

    // The INCR reaches the server after ~200 ms, its reply would come back after ~400 ms;
    // the reset at ~300 ms drops the reply. Whatever the exact timing, the increment is
    // applied at most once: the driver never resends a command.
    proxy.set_mode(ProxyMode::Latency(Duration::from_millis(200)));
    let incr = {
        let r = r.clone();
        tokio::spawn(async move {
            r.execute(Command::Incrby {
                key: "once".into(),
                delta: 1,
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.reset_all();
    let result = incr.await.unwrap();
    proxy.set_mode(ProxyMode::Pass);
    let stored = direct.execute(get("once")).await.unwrap();
    eprintln!("INCR with its reply reset: call {result:?}, server holds {stored:?}");
    match result {
        Err(e) => {
            assert!(
                matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                "{e}"
            );
            assert!(
                stored == Value::Nil || stored == Value::Bytes(b("1")),
                "applied more than once: {stored:?}"
            );
        }
        Ok(v) => {
            assert_eq!(v, Value::Int(1));
            assert_eq!(stored, Value::Bytes(b("1")));
        }
    }
    // And nothing is replayed later either, once the connection is back.
    until_ping_succeeds(&r, RECOVERY_DEADLINE).await.unwrap();
    assert!(direct.execute(get("once")).await.unwrap() != Value::Bytes(b("2")));
}
