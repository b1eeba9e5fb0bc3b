//! A lost reply to a non-idempotent write: applied exactly once, and the caller told
//! `Timeout`.
//!
//! For each non-idempotent family (`INCR`, `LPUSH`, `ZINCRBY`, `APPEND`, `SPOP`, `XADD`
//! with an auto id), through a fault proxy that forwards the command to the server but
//! holds the server's reply ([`ProxyMode::HoldReplies`]): the server applies the write,
//! the client hears nothing, and its call (`execute_with_retry` with a policy that does
//! retry) must end as `Timeout` without a second attempt. Then the proxy resets the
//! connection (the held reply is gone for good) and a direct connection reads the state:
//! the write must show exactly once.
//!
//! The instrument is checked first, for every family: the write sent twice directly must
//! read back as applied twice. A scenario that could not see a double apply would prove
//! nothing. (A wrong retry shows either as a second application or, where the driver
//! drops the connection after a timeout, as an answer other than `Timeout`.)

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{Command, ConnectionConfig, ResilientClient, RetryPolicy, Value};
use tokio::time::Instant;

use super::{BackendFuture, ScenarioFailure, print_and_assert};
use crate::proxy::{FaultProxy, ProxyMode};
use crate::server::RedisServer;

/// How long the client waits for each reply: short, since every reply here is lost.
const SOCKET_TIMEOUT: Duration = Duration::from_millis(300);

/// One family's write and how to read back how many times it was applied.
struct Family {
    /// What is written, for the report.
    name: &'static str,
    /// Commands that prepare the key (sent directly, not through the proxy).
    setup: Vec<Command>,
    /// The write whose reply is lost.
    write: Command,
    /// Reads the state back.
    check: Command,
    /// How many times the write was applied, from the check's reply.
    applied: fn(&Value) -> Option<u64>,
}

fn words(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn typed(line: &str) -> Command {
    Command::from_args(&words(line)).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::Nil => Some(0),
        _ => None,
    }
}

fn families() -> Vec<Family> {
    vec![
        Family {
            name: "INCR",
            setup: vec![],
            write: typed("INCR lost:incr"),
            check: typed("GET lost:incr"),
            applied: int,
        },
        Family {
            name: "LPUSH",
            setup: vec![],
            write: typed("LPUSH lost:list x"),
            check: typed("LLEN lost:list"),
            applied: int,
        },
        Family {
            name: "ZINCRBY",
            setup: vec![],
            write: typed("ZINCRBY lost:zset 1 m"),
            check: typed("ZSCORE lost:zset m"),
            applied: |v| match v {
                Value::Double(d) if *d >= 0.0 => Some(*d as u64),
                Value::Nil => Some(0),
                _ => None,
            },
        },
        Family {
            name: "APPEND",
            setup: vec![],
            write: typed("APPEND lost:string ab"),
            check: typed("STRLEN lost:string"),
            applied: |v| int(v).map(|len| len / 2),
        },
        Family {
            name: "XADD *",
            setup: vec![],
            write: typed("XADD lost:stream * f v"),
            check: typed("XLEN lost:stream"),
            applied: int,
        },
        Family {
            name: "SPOP",
            setup: vec![typed("SADD lost:set a b c d")],
            write: typed("SPOP lost:set"),
            check: typed("SCARD lost:set"),
            applied: |v| int(v).map(|left| 4u64.saturating_sub(left)),
        },
    ]
}

/// What happened to one family's write.
#[derive(Clone, Debug)]
pub struct LostReplyCase {
    /// The family.
    pub name: &'static str,
    /// How the call ended, as its error's kind (`timeout`) or `answered`.
    pub outcome: String,
    /// How long the call took.
    pub took: Duration,
    /// How many times the server applied the write (`None`: the state was unreadable).
    pub applied: Option<u64>,
    /// The instrument's check: how many times two direct writes read back as applied.
    pub calibrated: Option<u64>,
}

/// What [`lost_reply`] saw.
#[derive(Clone, Debug)]
pub struct LostReplyReport {
    /// The backend's name.
    pub backend: &'static str,
    /// Each non-idempotent family.
    pub cases: Vec<LostReplyCase>,
    /// Steps that went wrong.
    pub problems: Vec<String>,
}

impl LostReplyReport {
    /// The promises this run broke, one sentence each; empty when all held.
    pub fn violations(&self) -> Vec<String> {
        let mut v = self.problems.clone();
        for case in &self.cases {
            if case.calibrated != Some(2) {
                v.push(format!(
                    "{}: two direct writes read back as {:?}: the scenario cannot see a \
                     double apply",
                    case.name, case.calibrated
                ));
            }
            if case.outcome != "timeout" {
                v.push(format!(
                    "{}: the caller was told {}, not timeout",
                    case.name, case.outcome
                ));
            }
            if case.applied != Some(1) {
                v.push(format!(
                    "{}: applied {:?} times, not exactly once",
                    case.name, case.applied
                ));
            }
        }
        v
    }

    /// Prints the report and panics, like `assert!`, with every broken promise.
    pub fn print_and_assert(&self) {
        print_and_assert(self, &self.violations());
    }
}

impl fmt::Display for LostReplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lost reply, backend={}", self.backend)?;
        for case in &self.cases {
            writeln!(
                f,
                "  {:<8} told {:<9} after {:>4} ms, applied {:?} (two direct writes: {:?})",
                case.name,
                case.outcome,
                case.took.as_millis(),
                case.applied,
                case.calibrated
            )?;
        }
        Ok(())
    }
}

/// A fresh server, a fault proxy in front of it, and a client (named `name`) that
/// reaches the server directly, to read the truth behind the proxy's faults.
pub(super) async fn proxied_server<F>(
    connect: &F,
    name: &str,
) -> Result<(RedisServer, FaultProxy, ResilientClient), ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = RedisServer::spawn().await?;
    let proxy = FaultProxy::start(server.addr())
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("fault proxy: {e}")))?;
    let direct = ResilientClient::builder_arc(
        name,
        connect(server.connection_config())
            .await
            .map_err(ScenarioFailure::Connect)?,
    )
    .build()?;
    Ok((server, proxy, direct))
}

/// Runs every family, and the control first (see the [module docs](self)).
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn lost_reply<F>(connect: F) -> Result<LostReplyReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let (server, proxy, direct) = proxied_server(&connect, "lost-reply-direct").await?;
    let through_proxy = server
        .connection_config()
        .with_host("127.0.0.1")
        .with_port(proxy.addr().port())
        .with_socket_timeout(SOCKET_TIMEOUT);
    let mut problems = Vec::new();
    let mut backend_name = "";
    let mut run = async |family: Family| -> Result<LostReplyCase, ScenarioFailure> {
        let step = |what: &str, e: resilience_core::Error| {
            ScenarioFailure::Setup(format!("{}: {what}: {e}", family.name))
        };
        // Calibrate: two direct writes must read back as two.
        for cmd in family.setup.iter().chain([&family.write, &family.write]) {
            direct
                .execute(cmd.clone())
                .await
                .map_err(|e| step("calibration", e))?;
        }
        let calibrated = match direct.execute(family.check.clone()).await {
            Ok(v) => (family.applied)(&v),
            Err(e) => return Err(step("reading the calibration", e)),
        };
        let keys = family.write.keys().to_vec();
        direct
            .execute(Command::Del { keys })
            .await
            .map_err(|e| step("cleanup", e))?;
        for cmd in family.setup {
            direct.execute(cmd).await.map_err(|e| step("setup", e))?;
        }
        let backend = connect(through_proxy.clone())
            .await
            .map_err(ScenarioFailure::Connect)?;
        backend_name = backend.name();
        let client = ResilientClient::builder_arc("lost-reply", backend)
            // The held reply holds the liveness probe too, which would open the breaker.
            .liveness(None)
            .build()?;
        client
            .ping()
            .await
            .map_err(|e| ScenarioFailure::Setup(format!("PING through the proxy: {e}")))?;
        let before = proxy.traffic();
        proxy.set_mode(ProxyMode::HoldReplies);
        let policy = RetryPolicy::default()
            .with_max_retries(2)
            .with_base_delay(Duration::from_millis(10));
        let started = Instant::now();
        let result = client.execute_with_retry(family.write, &policy).await;
        let took = started.elapsed();
        if proxy
            .wait_for_traffic(Duration::from_secs(5), |t| {
                t.replies_read > before.replies_read
            })
            .await
            .is_none()
        {
            problems.push(format!(
                "{}: the server never answered through the proxy",
                family.name
            ));
        }
        // The held replies are dropped with the connections: lost for good.
        proxy.set_mode(ProxyMode::Reset);
        proxy.set_mode(ProxyMode::Pass);
        let outcome = match &result {
            Ok(v) => format!("answered {v:?}"),
            Err(e) => e
                .kind()
                .map_or_else(|| e.to_string(), |kind| kind.to_string()),
        };
        let applied = match direct.execute(family.check).await {
            Ok(v) => (family.applied)(&v),
            Err(e) => {
                problems.push(format!("{}: reading the state: {e}", family.name));
                None
            }
        };
        Ok(LostReplyCase {
            name: family.name,
            outcome,
            took,
            applied,
            calibrated,
        })
    };
    let mut cases = Vec::new();
    for family in families() {
        cases.push(run(family).await?);
    }
    Ok(LostReplyReport {
        backend: backend_name,
        cases,
        problems,
    })
}
