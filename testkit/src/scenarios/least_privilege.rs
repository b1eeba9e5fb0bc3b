//! A least-privilege ACL user, as managed services hand out: everything works as that user.
//!
//! Managed Redis and Valkey services refuse admin commands (`CONFIG`, `MODULE`, `DEBUG`,
//! `INFO` …) and give an application a user limited to some command categories and key
//! patterns. This library needs only what [`rules`] grants, for keys and channels under
//! one namespace: no `@admin`, no `@dangerous`.
//!
//! ```text
//! ACL SETUSER app on >password resetkeys ~app:* resetchannels &app:* -@all +@read +@write +@keyspace +@connection +@transaction +@scripting -@admin -@dangerous +cluster|slots
//! ```
//!
//! (`+cluster|slots`: the cluster router reads the slot map with `CLUSTER SLOTS`, which is
//! in no category but `@slow`.)
//!
//! [`least_privilege`] runs, as that user on a single server, a `ResilientClient` with a
//! client-side cache (RESP3 `CLIENT TRACKING`): `PING`, strings, hashes, sorted sets,
//! counters, TTLs, deletes, a pipeline, a transaction and a script (`SCRIPT LOAD` and
//! `EVALSHA`), a cached read invalidated by another client's write, and a key outside the
//! namespace, which must be refused with `NOPERM` as a `Server` error (never `Auth`, and
//! the breaker stays closed). [`least_privilege_cluster`] runs the writes, reads and
//! script across every master of a cluster whose nodes all have the user, through the
//! core's cluster router. The memory tiers' real-server suite runs as this user too
//! (`memory-tiers/tests/redis_lua.rs`).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{
    CacheConfig, CircuitState, Command, ConnectionConfig, Error, Freshness, ReadPolicy,
    ResilientClient, Script, SetOptions, Value,
};
use tokio::time::Instant;

use super::{BackendFuture, ScenarioFailure, print_and_assert};
use crate::server::{AclUser, RedisCluster, RedisServer, RespConnection};

/// The least-privilege user's name.
pub const USER: &str = "app";
/// Its password.
pub const PASSWORD: &str = "Le4stPriv1lege-2291";
/// The namespace the scenarios use (keys `app:…`).
pub const NAMESPACE: &str = "app";

/// The ACL rules of the least-privilege user for keys and channels under `namespace`
/// (see the [module docs](self)).
pub fn rules(namespace: &str) -> String {
    format!(
        "resetkeys ~{namespace}:* resetchannels &{namespace}:* -@all +@read +@write +@keyspace \
         +@connection +@transaction +@scripting -@admin -@dangerous +cluster|slots"
    )
}

/// The least-privilege user for `namespace`, to give a spawned server
/// ([`RedisServerBuilder::acl_user`](crate::server::RedisServerBuilder::acl_user)).
pub fn user(namespace: &str) -> AclUser {
    AclUser {
        name: USER.to_owned(),
        password: PASSWORD.to_owned(),
        rules: rules(namespace),
    }
}

/// `config` with the least-privilege user's credentials.
pub fn as_user(config: ConnectionConfig) -> ConnectionConfig {
    config.with_username(USER).with_password(PASSWORD)
}

/// What a least-privilege run saw: each check and what went wrong with it.
#[derive(Clone, Debug)]
pub struct LeastPrivilegeReport {
    /// The backend's name.
    pub backend: &'static str,
    /// `"single"` or `"cluster"`.
    pub deployment: &'static str,
    /// The checks that passed, by name.
    pub passed: Vec<&'static str>,
    /// The checks that failed, with why.
    pub violations: Vec<String>,
}

impl LeastPrivilegeReport {
    /// Prints the report and panics, like `assert!`, listing every failed check.
    pub fn print_and_assert(&self) {
        print_and_assert(self, &self.violations);
    }
}

impl fmt::Display for LeastPrivilegeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "least-privilege backend={} deployment={} passed={} failed={}",
            self.backend,
            self.deployment,
            self.passed.len(),
            self.violations.len()
        )?;
        for v in &self.violations {
            writeln!(f, "  failed: {v}")?;
        }
        Ok(())
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The script the checks run: one key, one increment, returns the new value.
const INCR_SCRIPT: &str = "return redis.call('INCRBY', KEYS[1], ARGV[1])";

/// Notes one check's outcome in `report`.
fn record(
    report: &mut LeastPrivilegeReport,
    name: &'static str,
    key: &str,
    result: Result<bool, Error>,
) {
    match result {
        Ok(true) => report.passed.push(name),
        Ok(false) => report
            .violations
            .push(format!("{name} on {key}: wrong answer")),
        Err(e) => report.violations.push(format!("{name} on {key}: {e}")),
    }
}

/// The commands every deployment runs on `key` (and its siblings `key:h`, `key:z`, which
/// share `key`'s hash tag when it has one), with what each must answer.
async fn data_checks(client: &ResilientClient, key: &str, report: &mut LeastPrivilegeReport) {
    let hash = format!("{key}:h");
    let zset = format!("{key}:z");
    let counter = format!("{key}:n");
    let check =
        |name: &'static str, result: Result<bool, Error>, report: &mut LeastPrivilegeReport| {
            record(report, name, key, result);
        };
    check("PING", client.ping().await.map(|()| true), report);
    check(
        "SET",
        client
            .set(key, b("v"), SetOptions::default())
            .await
            .map(|_| true),
        report,
    );
    check(
        "GET",
        client.get(key).await.map(|v| v == Some(b("v"))),
        report,
    );
    check(
        "HSET/HGETALL",
        async {
            client.hset(hash.as_str(), "f", b("1")).await?;
            Ok(client.hgetall(hash.as_str()).await?.get("f") == Some(&b("1")))
        }
        .await,
        report,
    );
    check(
        "ZADD/ZCARD",
        client
            .execute(Command::Zadd {
                key: zset.clone(),
                members: vec![(1.0, "m".to_owned())],
                options: Default::default(),
            })
            .await
            .and(client.execute(Command::Zcard { key: zset.clone() }).await)
            .map(|v| v == Value::Int(1)),
        report,
    );
    check(
        "INCRBY",
        client.incrby(counter.as_str(), 2).await.map(|n| n == 2),
        report,
    );
    check(
        "EXPIRE/PTTL",
        async {
            client.expire(key, Duration::from_secs(60)).await?;
            let ttl = client
                .execute(Command::Pttl {
                    key: key.to_owned(),
                })
                .await?;
            Ok(matches!(ttl, Value::Int(ms) if ms > 0))
        }
        .await,
        report,
    );
    check(
        "pipeline",
        client
            .pipeline()
            .add_command(Command::Get {
                key: key.to_owned(),
            })
            .add_command(Command::Hgetall { key: hash.clone() })
            .execute()
            .await
            .map(|replies| replies.len() == 2),
        report,
    );
    check(
        "MULTI/EXEC",
        client
            .transaction()
            .add_command(Command::Incrby {
                key: counter.clone(),
                delta: 1,
            })
            .add_command(Command::Get {
                key: key.to_owned(),
            })
            .execute()
            .await
            .map(|replies| replies.first() == Some(&Value::Int(3))),
        report,
    );
    check(
        "SCRIPT LOAD/EVALSHA",
        client
            .eval(
                &Script::new(INCR_SCRIPT),
                vec![counter.clone()],
                vec![b("1")],
            )
            .await
            .map(|v| v == Value::Int(4)),
        report,
    );
    check(
        "DEL",
        client
            .execute(Command::Del {
                keys: vec![hash.clone()],
            })
            .await
            .map(|v| v == Value::Int(1)),
        report,
    );
}

/// A key outside the namespace is refused with `NOPERM` as a `Server` error, which the
/// breaker does not count.
async fn outside_namespace_is_refused(client: &ResilientClient, report: &mut LeastPrivilegeReport) {
    for _ in 0..4 {
        match client.get("elsewhere:key").await {
            Err(Error::Server(e))
                if e.code() == Some("NOPERM") && e.message().starts_with("GET") => {}
            other => {
                report.violations.push(format!(
                    "a key outside the namespace answered {other:?}, expected a Server error NOPERM naming GET"
                ));
                return;
            }
        }
    }
    if client.circuit_state() != CircuitState::Closed {
        report.violations.push(format!(
            "after refused keys the breaker is {:?}, expected Closed",
            client.circuit_state()
        ));
        return;
    }
    report
        .passed
        .push("outside the namespace: NOPERM, breaker closed");
}

/// The least-privilege checks on one server (see the [module docs](self)).
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
pub async fn least_privilege<F>(connect: F) -> Result<LeastPrivilegeReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = RedisServer::builder()
        .acl_user(user(NAMESPACE))
        .spawn()
        .await?;
    let config = as_user(server.connection_config()).with_client_tracking(true);
    let backend = connect(config).await.map_err(ScenarioFailure::Connect)?;
    let client = ResilientClient::builder_arc("least-privilege", backend)
        .client_cache(CacheConfig::default())
        .build()?;
    let mut report = LeastPrivilegeReport {
        backend: client.backend_name(),
        deployment: "single",
        passed: Vec::new(),
        violations: Vec::new(),
    };
    data_checks(&client, "app:k", &mut report).await;

    // The cache: a tracked read, then another client's write evicts it.
    let key = "app:cached";
    let cached = async {
        client.set(key, b("one"), SetOptions::default()).await?;
        let first = client.get_cached(key).await?;
        let second = client.get_cached(key).await?;
        Ok::<_, Error>((first.freshness, second.freshness))
    }
    .await;
    match cached {
        Ok((Freshness::Fresh, Freshness::Cached)) => report.passed.push("cached read"),
        other => report.violations.push(format!(
            "cached reads answered {other:?}, expected Fresh then Cached"
        )),
    }
    let mut other = RespConnection::connect(server.addr())
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("a second connection: {e}")))?;
    if let Err(e) = other.command(&["SET", key, "two"]).await {
        return Err(ScenarioFailure::Setup(format!(
            "the other client's SET: {e}"
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while client.is_cached(key) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    match client.get_cached(key).await {
        Ok(read) if read.value == Some(b("two")) && read.freshness == Freshness::Fresh => {
            report.passed.push("invalidation (CLIENT TRACKING)");
        }
        other => report.violations.push(format!(
            "after another client's write the cache answered {other:?}, expected the new value, Fresh"
        )),
    }
    outside_namespace_is_refused(&client, &mut report).await;
    Ok(report)
}

/// The least-privilege checks through the cluster router, on every master of a cluster
/// whose nodes all have the user (see the [module docs](self)).
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
pub async fn least_privilege_cluster<F>(connect: F) -> Result<LeastPrivilegeReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let cluster = RedisCluster::builder()
        .acl_user(user(NAMESPACE))
        .spawn()
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("cluster: {e}")))?;
    let backend = connect(as_user(cluster.connection_config()))
        .await
        .map_err(ScenarioFailure::Connect)?;
    let client = ResilientClient::builder_arc("least-privilege-cluster", backend).build()?;
    let mut report = LeastPrivilegeReport {
        backend: client.backend_name(),
        deployment: "cluster",
        passed: Vec::new(),
        violations: Vec::new(),
    };
    // Hash tags `a`, `b` and `c` fall on three different masters (slots 15495, 3300 and
    // 7365 of the three-master split).
    for tag in ["a", "b", "c"] {
        data_checks(&client, &format!("app:{{{tag}}}"), &mut report).await;
    }
    // A replica answers as that user too (`READONLY` is in `@connection`).
    match ReadPolicy::Replica
        .scope(client.exists(["app:{a}:replica-read"]))
        .await
    {
        Ok(_) => report.passed.push("read from a replica"),
        Err(e) => report
            .violations
            .push(format!("a read from a replica failed: {e}")),
    }
    outside_namespace_is_refused(&client, &mut report).await;
    Ok(report)
}
