//! Fault tests against a real redis-server: a blackholed link, connections reset
//! mid-pipeline, a server SIGKILLed and restarted on the same port, and no double-applied
//! writes. Each prints what it measured (run with `--nocapture` to see the numbers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use backend_fred::FredBackend;
use bytes::Bytes;
use resilience_core::{BackendError, Command, ErrorKind, KvBackend, SetOptions, Value};
use testkit::proxy::{FaultProxy, ProxyMode};
use testkit::server::RedisServer;

const SOCKET_TIMEOUT: Duration = Duration::from_millis(300);
const SLACK: Duration = Duration::from_millis(100);

fn set(key: &str, v: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: Bytes::copy_from_slice(v.as_bytes()),
        options: SetOptions::default(),
    }
}

fn get(key: &str) -> Command {
    Command::Get { key: key.into() }
}

async fn behind_proxy() -> (RedisServer, FaultProxy, FredBackend) {
    behind_proxy_with(SOCKET_TIMEOUT).await
}

async fn behind_proxy_with(socket_timeout: Duration) -> (RedisServer, FaultProxy, FredBackend) {
    let server = RedisServer::spawn().await.expect("spawn redis-server");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let backend = FredBackend::connect(&common::config(proxy.addr().port(), socket_timeout))
        .await
        .expect("connect through proxy");
    (server, proxy, backend)
}

/// How long a test waits for commands to succeed again: a deadline for the condition on a
/// loaded machine, not a promise (how soon is the bench's to measure: `bench --scenario
/// recovery`).
const RECOVERY_DEADLINE: Duration = Duration::from_secs(10);

/// Link delay for the reset tests: long enough that a request is certainly still held by
/// the proxy when the connection is reset, whatever the machine's load.
const HOLD: Duration = Duration::from_secs(1);

/// Runs `call` on a task, waits until the proxy has read its request and holds it (read
/// from the client, not yet forwarded to the server), resets every proxied connection,
/// and returns the call's result. Fails the test if the request was not held when the
/// reset came: a reset that missed the request would prove nothing.
async fn reset_while_in_flight<T: Send + 'static>(
    proxy: &FaultProxy,
    call: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let before = proxy.traffic();
    let task = tokio::spawn(call);
    let held = proxy
        .wait_for_traffic(HOLD, |t| t.requests_read > before.requests_read)
        .await
        .expect("the proxy read the request");
    proxy.reset_all();
    assert_eq!(
        held.requests_forwarded, before.requests_forwarded,
        "the request reached the server before the reset"
    );
    task.await.expect("task")
}

/// Waits until a PING succeeds; returns how long it took.
async fn recovery_time(be: &FredBackend, deadline: Duration) -> Duration {
    common::wait_for(deadline, || async {
        be.execute(Command::Ping).await.ok().map(|_| ())
    })
    .await
    .1
}

fn is_outage(e: &BackendError) -> bool {
    matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
}

#[tokio::test]
async fn blackhole_times_out_within_socket_timeout_and_recovers() {
    let (_server, proxy, be) = behind_proxy().await;
    be.execute(set("k", "v")).await.unwrap();
    proxy.set_mode(ProxyMode::Blackhole);
    let mut worst = Duration::ZERO;
    let mut kinds = Vec::new();
    for i in 0..4 {
        let start = Instant::now();
        let err = if i % 2 == 0 {
            be.execute(get("k")).await.unwrap_err()
        } else {
            be.execute_batch(vec![get("k"), Command::Ping], i == 3)
                .await
                .unwrap_err()
        };
        let took = start.elapsed();
        worst = worst.max(took);
        // The first call times out; fred's unresponsive check then drops the wedged
        // connection, so later calls may also fail before being sent (Unavailable).
        assert!(is_outage(&err), "call {i}: {err}");
        if i == 0 {
            assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        }
        kinds.push(err.kind());
        assert!(
            took <= SOCKET_TIMEOUT + SLACK,
            "call {i} took {took:?} (socket_timeout {SOCKET_TIMEOUT:?})"
        );
    }
    proxy.set_mode(ProxyMode::Pass);
    let healed = Instant::now();
    let took = recovery_time(&be, RECOVERY_DEADLINE).await;
    assert_eq!(be.execute(get("k")).await.unwrap(), Value::from("v"));
    eprintln!(
        "blackhole: worst failing call {worst:?} (socket_timeout {SOCKET_TIMEOUT:?}), \
         kinds {kinds:?}; first success {took:?} after the link healed ({:?} incl. the check)",
        healed.elapsed()
    );
}

#[tokio::test]
async fn connections_reset_mid_pipeline_give_an_error_never_a_partial_success() {
    let (_server, proxy, be) = behind_proxy_with(Duration::from_secs(3)).await;
    for atomic in [false, true] {
        proxy.set_mode(ProxyMode::Pass);
        recovery_time(&be, RECOVERY_DEADLINE).await;
        // Slow the link so the pipeline is held in flight when the connection is reset.
        proxy.set_mode(ProxyMode::Latency(HOLD));
        let prefix = if atomic { "atomic" } else { "pipe" };
        let cmds: Vec<Command> = (0..200)
            .map(|i| Command::Incrby {
                key: format!("{prefix}{}", i % 5),
                delta: 1,
            })
            .collect();
        let be2 = be.clone();
        let result =
            reset_while_in_flight(&proxy, async move { be2.execute_batch(cmds, atomic).await })
                .await;
        let err = result.expect_err("a reset pipeline must not report success");
        assert!(is_outage(&err), "atomic={atomic}: {err}");
        eprintln!("reset mid-batch (atomic={atomic}): {err}");
    }
    proxy.set_mode(ProxyMode::Pass);
    recovery_time(&be, RECOVERY_DEADLINE).await;
    // The driver did not re-send the batches after reconnecting: the reset came before
    // the delayed bytes were forwarded, so nothing was applied, and nothing shows up later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for prefix in ["pipe", "atomic"] {
        let mut sum = 0;
        for i in 0..5 {
            if let Value::Bytes(b) = be.execute(get(&format!("{prefix}{i}"))).await.unwrap() {
                sum += std::str::from_utf8(&b).unwrap().parse::<i64>().unwrap();
            }
        }
        assert_eq!(sum, 0, "{prefix}: increments were applied or replayed");
    }
}

#[tokio::test]
async fn a_write_cut_off_in_flight_is_never_replayed() {
    let (_server, proxy, be) = behind_proxy_with(Duration::from_secs(3)).await;
    proxy.set_mode(ProxyMode::Latency(HOLD));
    let be2 = be.clone();
    let result = reset_while_in_flight(&proxy, async move {
        be2.execute(Command::Incrby {
            key: "counter".into(),
            delta: 1,
        })
        .await
    })
    .await;
    let err = result.unwrap_err();
    assert!(is_outage(&err), "{err}");
    proxy.set_mode(ProxyMode::Pass);
    recovery_time(&be, RECOVERY_DEADLINE).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(be.execute(get("counter")).await.unwrap(), Value::Nil);
    // And an increment that does go through is applied exactly once.
    assert_eq!(
        be.execute(Command::Incrby {
            key: "counter".into(),
            delta: 1
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
}

#[tokio::test]
async fn server_killed_and_restarted_fails_fast_then_recovers() {
    let (mut server, be) = common::server_and_backend(SOCKET_TIMEOUT).await;
    be.execute(set("k", "v")).await.unwrap();
    server.stop().await.unwrap(); // SIGKILL
    // While down: every call fails with Unavailable or Timeout within socket_timeout.
    let mut worst = Duration::ZERO;
    let mut kinds = Vec::new();
    let mut times = Vec::new();
    for i in 0..10 {
        let start = Instant::now();
        let err = if i % 3 == 2 {
            be.execute_batch(vec![get("k")], i % 2 == 0)
                .await
                .unwrap_err()
        } else {
            be.execute(get("k")).await.unwrap_err()
        };
        let took = start.elapsed();
        worst = worst.max(took);
        assert!(is_outage(&err), "call {i}: {err}");
        assert!(took <= SOCKET_TIMEOUT + SLACK, "call {i} took {took:?}");
        kinds.push(err.kind());
        times.push(took);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.restart().await.unwrap();
    let back = Instant::now();
    let took = recovery_time(&be, RECOVERY_DEADLINE).await;
    times.sort();
    eprintln!(
        "kill/restart: failing calls while down: median {:?}, worst {worst:?}, kinds {kinds:?}; \
         first success {took:?} after the server answered again ({:?})",
        times[times.len() / 2],
        back.elapsed()
    );
    // Data is gone (no persistence), but the connection works for writes and batches.
    assert_eq!(be.execute(set("k2", "v2")).await.unwrap(), Value::Okay);
    assert_eq!(
        be.execute_batch(vec![get("k2"), Command::Ping], true)
            .await
            .unwrap(),
        vec![Value::from("v2"), Value::Status("PONG".into())]
    );
}

#[tokio::test]
async fn connect_to_a_blackholed_server_times_out() {
    let server = RedisServer::spawn().await.expect("spawn");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    proxy.set_mode(ProxyMode::Blackhole);
    let start = Instant::now();
    let err = FredBackend::connect(&common::config(proxy.addr().port(), SOCKET_TIMEOUT))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // Budget: socket_connect_timeout for the PING probe (plus scheduling slack).
    assert!(took <= SOCKET_TIMEOUT * 2 + SLACK, "connect took {took:?}");
}
