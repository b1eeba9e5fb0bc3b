//! A lost reply to an exactly-once write: retried with its write id, applied once, and
//! answered with the reply of the send that applied it.
//!
//! For `INCRBY` and `LPUSH`, through a fault proxy that holds the server's replies
//! ([`ProxyMode::HoldReplies`]): the server applies the write and the client hears
//! nothing. Then the proxy resets the connection (the held reply is gone for good), the
//! client sends the same write with the same id again, and must get the first
//! application's reply marked `applied_earlier`; a direct read must show the write
//! applied exactly once. The instrument is the one of [`lost_reply`](super::lost_reply):
//! without the write id the same loss leaves the caller with `Timeout`.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{Command, ConnectionConfig, ResilientClient, RetryPolicy, Value};

use super::{BackendFuture, ScenarioFailure};
use crate::proxy::{FaultProxy, ProxyMode};
use crate::server::{ClusterProxies, RedisCluster};
use resilience_core::hash_slot;

/// How long the client waits for each reply.
const SOCKET_TIMEOUT: Duration = Duration::from_millis(300);

/// One write whose reply is lost, and what it must come to.
struct Case {
    name: &'static str,
    write: Command,
    /// The reply the write's one application gives.
    reply: Value,
    check: Command,
    /// What `check` reads after exactly one application.
    once: Value,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "INCRBY",
            write: Command::Incrby {
                key: "once:counter".into(),
                delta: 5,
            },
            reply: Value::Int(5),
            check: Command::Get {
                key: "once:counter".into(),
            },
            once: Value::Bytes(Bytes::from_static(b"5")),
        },
        Case {
            name: "LPUSH",
            write: Command::Lpush {
                key: "once:list".into(),
                elements: vec![Bytes::from_static(b"a")],
            },
            reply: Value::Int(1),
            check: Command::Llen {
                key: "once:list".into(),
            },
            once: Value::Int(1),
        },
    ]
}

/// What [`lost_reply_once`] saw, per write.
#[derive(Clone, Debug)]
pub struct ExactlyOnceReport {
    /// The backend's name.
    pub backend: &'static str,
    /// `server` or `cluster`.
    pub deployment: &'static str,
    /// `name: outcome, state` per write.
    pub cases: Vec<String>,
    /// Every broken promise.
    pub violations: Vec<String>,
}

impl fmt::Display for ExactlyOnceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exactly-once lost reply backend={} deployment={} cases=[{}] violations={:?}",
            self.backend,
            self.deployment,
            self.cases.join("; "),
            self.violations
        )
    }
}

/// Runs the scenario (see the module docs) on a fresh server.
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen; a broken promise is in
/// [`ExactlyOnceReport::violations`].
///
/// # Cancel safety
///
/// Dropping the future ends the run: the server and proxy stop with their handles.
pub async fn lost_reply_once<F>(connect: F) -> Result<ExactlyOnceReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let (server, proxy, direct) =
        super::lost_reply::proxied_server(&connect, "exactly-once-direct").await?;
    let through_proxy = server
        .connection_config()
        .with_host("127.0.0.1")
        .with_port(proxy.addr().port())
        .with_socket_timeout(SOCKET_TIMEOUT);
    let backend = connect(through_proxy)
        .await
        .map_err(ScenarioFailure::Connect)?;
    let mut report = ExactlyOnceReport {
        backend: backend.name(),
        deployment: "server",
        cases: Vec::new(),
        violations: Vec::new(),
    };
    let client = once_client(backend).await?;
    for case in cases() {
        run_case(&client, &direct, &proxy, case, &mut report).await?;
    }
    Ok(report)
}

/// [`lost_reply_once`] on a Redis Cluster (3 masters, 3 replicas), each node behind a
/// proxy of its own: the replies of the node that owns the write's key are lost, and
/// the write's record lives in that key's slot.
///
/// # Errors
///
/// As [`lost_reply_once`].
///
/// # Cancel safety
///
/// As [`lost_reply_once`].
pub async fn lost_reply_once_cluster<F>(connect: F) -> Result<ExactlyOnceReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let setup = |e: &dyn fmt::Display| ScenarioFailure::Setup(e.to_string());
    let cluster = RedisCluster::spawn().await.map_err(|e| setup(&e))?;
    let proxies = ClusterProxies::start(&cluster)
        .await
        .map_err(|e| setup(&e))?;
    let direct = ResilientClient::builder_arc(
        "exactly-once-direct",
        connect(cluster.connection_config())
            .await
            .map_err(ScenarioFailure::Connect)?,
    )
    .build()?;
    let backend = connect(
        cluster
            .connection_config()
            .with_cluster_address_map(proxies.address_map())
            .with_socket_timeout(SOCKET_TIMEOUT),
    )
    .await
    .map_err(ScenarioFailure::Connect)?;
    let mut report = ExactlyOnceReport {
        backend: backend.name(),
        deployment: "cluster",
        cases: Vec::new(),
        violations: Vec::new(),
    };
    let client = once_client(backend).await?;
    for case in cases() {
        let key = case.write.keys().first().cloned().unwrap_or_default();
        let owner = cluster
            .master_of(hash_slot(key.as_bytes()))
            .await
            .map_err(|e| setup(&e))?;
        let proxy = proxies
            .of_node(owner)
            .ok_or_else(|| setup(&format!("no proxy in front of node {owner}")))?;
        run_case(&client, &direct, proxy, case, &mut report).await?;
    }
    Ok(report)
}

/// The client the scenarios drive: no liveness probe (a held reply holds it too, which
/// would open the breaker), quick retries, the script loaded.
async fn once_client(
    backend: std::sync::Arc<dyn resilience_core::KvBackend>,
) -> Result<ResilientClient, ScenarioFailure> {
    let client = ResilientClient::builder_arc("exactly-once", backend)
        .liveness(None)
        .retry_policy(
            RetryPolicy::default()
                .with_max_retries(8)
                .with_base_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_millis(400)),
        )
        .build()?;
    // The script loaded, so the first send of each write runs it (a NOSCRIPT would be
    // answered, and lost, before anything was applied).
    client
        .execute_once(Command::Incrby {
            key: "once:warm-up".into(),
            delta: 1,
        })
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("a first exactly-once write: {e}")))?;
    Ok(client)
}

/// One write whose replies `proxy` (in front of the node that owns its key) loses.
async fn run_case(
    client: &ResilientClient,
    direct: &ResilientClient,
    proxy: &FaultProxy,
    case: Case,
    report: &mut ExactlyOnceReport,
) -> Result<(), ScenarioFailure> {
    client
        .ping()
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("PING through the proxy: {e}")))?;
    let before = proxy.traffic();
    proxy.set_mode(ProxyMode::HoldReplies);
    let call = {
        let client = client.clone();
        let write = case.write.clone();
        tokio::spawn(async move { client.execute_once(write).await })
    };
    // The server applied the write and answered; the answer is held.
    let Some(applied) = proxy
        .wait_for_traffic(Duration::from_secs(5), |t| {
            t.replies_read > before.replies_read
        })
        .await
    else {
        report
            .violations
            .push(format!("{}: the server never answered", case.name));
        return Ok(());
    };
    // The first send timed out and the client sent the write again (held too).
    if proxy
        .wait_for_traffic(Duration::from_secs(5), |t| {
            t.requests_read > applied.requests_read
        })
        .await
        .is_none()
    {
        report
            .violations
            .push(format!("{}: the write was never sent again", case.name));
    }
    // The held replies are dropped with the connection: lost for good.
    proxy.set_mode(ProxyMode::Reset);
    proxy.set_mode(ProxyMode::Pass);
    let outcome = match call.await {
        Ok(Ok(once)) if once.applied_earlier && once.value == case.reply => {
            "the recorded reply, applied earlier".to_owned()
        }
        Ok(other) => {
            report.violations.push(format!(
                "{}: expected the recorded reply {:?} marked applied earlier, got {other:?}",
                case.name, case.reply
            ));
            format!("{other:?}")
        }
        Err(e) => {
            report
                .violations
                .push(format!("{}: the call panicked: {e}", case.name));
            "panicked".to_owned()
        }
    };
    let state = direct.execute(case.check.clone()).await;
    if state.as_ref().ok() != Some(&case.once) {
        report.violations.push(format!(
            "{}: expected {:?} after one application, read {state:?}",
            case.name, case.once
        ));
    }
    report
        .cases
        .push(format!("{}: {outcome}, state {state:?}", case.name));
    Ok(())
}
