//! The conformance suite every [`KvBackend`] must pass, as library functions.
//!
//! Each case is a `pub async fn(backend, namespace)` that drives one area of Redis
//! semantics through the backend and checks each reply against what real Redis 7 returns,
//! in the canonical shape documented on [`Command`]. [`run_all`] runs every case in order.
//! A backend's own tests call them, against whatever server it needs:
//!
//! ```no_run
//! # async fn demo(backend: &dyn resilience_core::KvBackend) {
//! use testkit::conformance;
//! let ns = conformance::unique_namespace("conf");
//! let cases = conformance::run_all(backend, &ns).await.expect("conformance");
//! assert!(cases > 0);
//! # }
//! ```
//!
//! # Keys and cleanup
//!
//! Every key a case touches is `{<namespace>}:<case>:<name>`: under the caller's namespace
//! (use [`unique_namespace`] so runs never collide on a shared server) and inside one Redis
//! Cluster hash tag, so multi-key commands, scripts and transactions stay in one slot. Each
//! case deletes its keys when it finishes, pass or fail. The namespace must not contain
//! glob characters (`*?[]\`) or braces.
//!
//! # Scripts
//!
//! The scripting case runs [`SET_AND_INCR_LUA`]. A real server runs the Lua; an
//! [`InMemoryBackend`] needs its native twin, which [`register_native_scripts`] installs:
//! call it on the backend before running the suite.
//!
//! # Time
//!
//! The TTL case uses a 50 ms `PX` and waits for expiry by polling with a deadline
//! ([`wait_for`]), never a bare sleep: it passes on a slow machine and fails only if the key
//! never expires.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use resilience_core::memory::{InMemoryBackend, NativeScript, ScriptContext};
use resilience_core::{
    BackendError, Command, ErrorKind, KvBackend, Limit, ScoreBound, SetCondition, SetOptions,
    Value, ZaddOptions,
};

/// A failed expectation: which case, which command, what was expected and what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConformanceFailure {
    /// The case's name (its function name).
    pub case: &'static str,
    /// The command (or batch) that misbehaved, abbreviated.
    pub command: String,
    /// What real Redis returns.
    pub expected: String,
    /// What the backend returned.
    pub actual: String,
}

impl fmt::Display for ConformanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance case `{}` failed on {}: expected {}, got {}",
            self.case, self.command, self.expected, self.actual
        )
    }
}

impl std::error::Error for ConformanceFailure {}

/// The Lua script the scripting case runs: `SET KEYS[1] ARGV[1]`, `INCRBY KEYS[2] ARGV[2]`,
/// and returns `{new counter, GET KEYS[1]}`.
pub const SET_AND_INCR_LUA: &str = "redis.call('SET', KEYS[1], ARGV[1])\n\
local n = redis.call('INCRBY', KEYS[2], ARGV[2])\n\
return {n, redis.call('GET', KEYS[1])}";

/// The native twin of [`SET_AND_INCR_LUA`] for the in-memory backend.
pub fn set_and_incr_native() -> NativeScript {
    Arc::new(
        |ctx: &mut ScriptContext<'_>, keys: &[String], args: &[Bytes]| {
            let (Some(k1), Some(k2), Some(value), Some(delta)) =
                (keys.first(), keys.get(1), args.first(), args.get(1))
            else {
                return Err(BackendError::from_reply(
                    "ERR script needs 2 keys and 2 arguments",
                ));
            };
            let delta = std::str::from_utf8(delta)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| {
                    BackendError::from_reply("ERR value is not an integer or out of range")
                })?;
            ctx.call(Command::Set {
                key: k1.clone(),
                value: value.clone(),
                options: SetOptions::default(),
            })?;
            let n = ctx.call(Command::Incrby {
                key: k2.clone(),
                delta,
            })?;
            let v = ctx.call(Command::Get { key: k1.clone() })?;
            Ok(Value::Array(vec![n, v]))
        },
    )
}

/// Registers the native twins of every script the suite uses on `backend`.
pub fn register_native_scripts(backend: &InMemoryBackend) {
    backend.register_script(SET_AND_INCR_LUA, set_and_incr_native());
}

/// A namespace unique to this run: `<prefix>-<16 random hex digits>`.
pub fn unique_namespace(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Polls `check` every 10 ms until it returns `true` or `deadline` passes; returns whether
/// it became true. Uses `tokio::time::sleep`, never a blocking sleep.
pub async fn wait_for<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn abbreviate(text: String) -> String {
    const MAX: usize = 300;
    if text.len() <= MAX {
        return text;
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} chars)", &text[..cut], text.len())
}

fn describe(cmd: &Command) -> String {
    abbreviate(format!("{cmd:?}"))
}

type CaseResult = Result<(), ConformanceFailure>;

/// One running case: the backend, the key prefix, and the keys to delete afterwards.
struct Case<'a> {
    backend: &'a dyn KvBackend,
    name: &'static str,
    prefix: String,
    keys: Mutex<Vec<String>>,
}

impl<'a> Case<'a> {
    fn new(backend: &'a dyn KvBackend, namespace: &str, name: &'static str) -> Self {
        Case {
            backend,
            name,
            prefix: format!("{{{namespace}}}:{name}:"),
            keys: Mutex::new(Vec::new()),
        }
    }

    /// A key under this case's prefix, remembered for cleanup.
    fn key(&self, name: &str) -> String {
        let key = format!("{}{name}", self.prefix);
        if let Ok(mut keys) = self.keys.lock() {
            keys.push(key.clone());
        }
        key
    }

    async fn cleanup(&self) {
        let keys = self.keys.lock().map(|k| k.clone()).unwrap_or_default();
        if !keys.is_empty() {
            // Best effort: a failed cleanup must not hide the case's own result.
            let _ = self.backend.execute(Command::Del { keys }).await;
        }
    }

    fn fail(&self, command: String, expected: String, actual: String) -> ConformanceFailure {
        ConformanceFailure {
            case: self.name,
            command,
            expected: abbreviate(expected),
            actual: abbreviate(actual),
        }
    }

    /// Runs `cmd`, which must succeed; returns its reply.
    async fn ok(&self, cmd: Command) -> Result<Value, ConformanceFailure> {
        let desc = describe(&cmd);
        self.backend
            .execute(cmd)
            .await
            .map_err(|e| self.fail(desc, "a reply".into(), format!("error {e}")))
    }

    /// Runs `cmd` and checks the reply equals `expected`.
    async fn expect(&self, cmd: Command, expected: Value) -> CaseResult {
        let desc = describe(&cmd);
        match self.backend.execute(cmd).await {
            Ok(v) if v == expected => Ok(()),
            Ok(v) => Err(self.fail(desc, format!("{expected:?}"), format!("{v:?}"))),
            Err(e) => Err(self.fail(desc, format!("{expected:?}"), format!("error {e}"))),
        }
    }

    /// Runs `cmd` and checks it fails with `kind` and, when given, the Redis error `code`.
    async fn expect_err(
        &self,
        cmd: Command,
        kind: ErrorKind,
        code: Option<&str>,
    ) -> Result<BackendError, ConformanceFailure> {
        let desc = describe(&cmd);
        let want = format!("a {kind} error with code {code:?}");
        match self.backend.execute(cmd).await {
            Err(e) if e.kind() == kind && (code.is_none() || e.code() == code) => Ok(e),
            Err(e) => Err(self.fail(
                desc,
                want,
                format!("{} error with code {:?}: {e}", e.kind(), e.code()),
            )),
            Ok(v) => Err(self.fail(desc, want, format!("{v:?}"))),
        }
    }

    /// Fails unless `cond`.
    fn check(
        &self,
        cond: bool,
        command: &str,
        expected: &str,
        actual: impl fmt::Debug,
    ) -> CaseResult {
        if cond {
            Ok(())
        } else {
            Err(self.fail(
                command.to_owned(),
                expected.to_owned(),
                format!("{actual:?}"),
            ))
        }
    }

    /// Runs a batch, which must succeed, and checks the replies.
    async fn expect_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
        expected: Vec<Value>,
    ) -> CaseResult {
        let desc = abbreviate(format!("batch(atomic={atomic}) {cmds:?}"));
        match self.backend.execute_batch(cmds, atomic).await {
            Ok(v) if v == expected => Ok(()),
            Ok(v) => Err(self.fail(desc, format!("{expected:?}"), format!("{v:?}"))),
            Err(e) => Err(self.fail(desc, format!("{expected:?}"), format!("error {e}"))),
        }
    }

    /// Runs a batch that must fail with a `Server` error.
    async fn expect_batch_server_error(&self, cmds: Vec<Command>, atomic: bool) -> CaseResult {
        let desc = abbreviate(format!("batch(atomic={atomic}) {cmds:?}"));
        match self.backend.execute_batch(cmds, atomic).await {
            Err(e) if e.kind() == ErrorKind::Server => Ok(()),
            Err(e) => Err(self.fail(
                desc,
                "a server error".into(),
                format!("{} error: {e}", e.kind()),
            )),
            Ok(v) => Err(self.fail(desc, "a server error".into(), format!("{v:?}"))),
        }
    }
}

fn b(s: &str) -> Value {
    Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
}

fn set(key: &str, value: impl Into<Bytes>) -> Command {
    Command::Set {
        key: key.to_owned(),
        value: value.into(),
        options: SetOptions::default(),
    }
}

fn set_with(
    key: &str,
    value: &'static str,
    expire_ms: Option<u64>,
    condition: Option<SetCondition>,
) -> Command {
    Command::Set {
        key: key.to_owned(),
        value: Bytes::from_static(value.as_bytes()),
        options: SetOptions {
            expire_ms,
            condition,
        },
    }
}

fn get(key: &str) -> Command {
    Command::Get {
        key: key.to_owned(),
    }
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| (*k).to_owned()).collect()
}

fn zadd(key: &str, members: &[(f64, &str)], options: ZaddOptions) -> Command {
    Command::Zadd {
        key: key.to_owned(),
        members: members.iter().map(|(s, m)| (*s, (*m).to_owned())).collect(),
        options,
    }
}

fn zrange(key: &str, start: i64, stop: i64, rev: bool, with_scores: bool) -> Command {
    Command::Zrange {
        key: key.to_owned(),
        start,
        stop,
        rev,
        with_scores,
    }
}

fn zbyscore(
    key: &str,
    min: ScoreBound,
    max: ScoreBound,
    rev: bool,
    with_scores: bool,
    limit: Option<(u64, u64)>,
) -> Command {
    Command::Zrangebyscore {
        key: key.to_owned(),
        min,
        max,
        rev,
        with_scores,
        limit: limit.map(|(offset, count)| Limit { offset, count }),
    }
}

fn members(list: &[&str]) -> Value {
    Value::Array(list.iter().map(|m| b(m)).collect())
}

fn scored(list: &[(&str, f64)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(m, s)| Value::Array(vec![b(m), Value::Double(*s)]))
            .collect(),
    )
}

/// A raw command that declares no key.
fn raw(args: &[&str]) -> Command {
    raw_with_keys(args, Vec::new())
}

/// A raw command that declares `key` (so a cluster backend can route it).
fn raw_on(args: &[&str], key: &str) -> Command {
    raw_with_keys(args, vec![key.to_owned()])
}

fn raw_with_keys(args: &[&str], keys: Vec<String>) -> Command {
    Command::Raw {
        args: args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect(),
        keys,
        write: true,
        idempotent: false,
    }
}

type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

macro_rules! cases {
    ($( $(#[$doc:meta])* $name:ident => $body:ident; )*) => {
        $(
            $(#[$doc])*
            pub async fn $name(backend: &dyn KvBackend, namespace: &str) -> Result<(), ConformanceFailure> {
                let case = Case::new(backend, namespace, stringify!($name));
                let result = $body(&case).await;
                case.cleanup().await;
                result
            }
        )*

        /// The name of every case, in the order [`run_all`] runs them.
        pub const CASES: &[&str] = &[$(stringify!($name)),*];

        /// Runs every case in order and returns how many ran; stops at the first failure.
        pub async fn run_all(backend: &dyn KvBackend, namespace: &str) -> Result<usize, ConformanceFailure> {
            let mut ran = 0;
            $(
                $name(backend, namespace).await?;
                ran += 1;
            )*
            Ok(ran)
        }

        /// Runs the case called `name` (one of [`CASES`]); `None` when there is no such case.
        pub fn case_by_name<'a>(name: &str, backend: &'a dyn KvBackend, namespace: &'a str) -> Option<CaseFuture<'a>> {
            match name {
                $(stringify!($name) => Some(Box::pin($name(backend, namespace))),)*
                _ => None,
            }
        }
    };
}

cases! {
    /// `PING` replies `Status("PONG")`; raw `PING`/`ECHO`/`TYPE` pass replies through, and
    /// an unknown raw command is a `Server` error.
    ping_and_raw => ping_and_raw_body;
    /// `GET`/`SET` (with `NX`/`XX`), `MGET`, `DEL` and `EXISTS` (counting repeats), `INCRBY`
    /// and its errors.
    strings => strings_body;
    /// Binary-safe values (every byte 0x00-0xff), empty values, a 1 MiB value, unicode keys.
    binary_empty_large_unicode => binary_body;
    /// `TTL`/`PTTL` (-1, -2), `EXPIRE`/`PEXPIRE` (0 and negative delete), `SET` clearing a
    /// TTL, `INCRBY` keeping it, `SET PX` expiring for real.
    ttl_and_expiry => ttl_body;
    /// `HSET` (count of new fields), `HGET`, `HGETALL` (a `Map`), `HDEL` (empty hash is
    /// deleted), `HINCRBY`, `HINCRBYFLOAT` (a `Double`) and their errors.
    hashes => hashes_body;
    /// `WRONGTYPE` is a `Server` error with code `WRONGTYPE`, exactly where Redis gives it.
    wrong_type => wrong_type_body;
    /// `ZADD`, `ZCARD`, `ZSCORE`, `ZRANGE` (ranks, negative indexes, `REV`, `WITHSCORES`,
    /// ties ordered by member bytes), `ZREM`, `ZREMRANGEBYRANK`.
    sorted_sets => sorted_sets_body;
    /// `ZADD` with `NX`/`XX`/`GT`/`LT`/`CH`/`INCR`, and its option errors.
    zadd_options => zadd_options_body;
    /// `ZRANGEBYSCORE`/`ZREVRANGEBYSCORE`: inclusive, exclusive and infinite bounds, `LIMIT`,
    /// `WITHSCORES`.
    zrangebyscore => zrangebyscore_body;
    /// `SCRIPT LOAD`, `EVAL`, `EVALSHA` and `NOSCRIPT` (needs [`register_native_scripts`] on
    /// an in-memory backend).
    scripts => scripts_body;
    /// `SCAN` returns `[Int cursor, [keys]]`; a full iteration sees every key; `MATCH` globs.
    scan => scan_body;
    /// Batches: atomic and not, results in order, queue-time errors abort a transaction,
    /// runtime errors fail the call but the other commands still apply (as in Redis).
    batches => batches_body;
}

async fn ping_and_raw_body(c: &Case<'_>) -> CaseResult {
    let k = c.key("k");
    let n = c.key("n");
    c.expect(Command::Ping, Value::Status("PONG".into()))
        .await?;
    c.expect(raw(&["PING"]), Value::Status("PONG".into()))
        .await?;
    c.expect(raw(&["ECHO", "hello"]), b("hello")).await?;
    c.expect(set(&k, "v"), Value::Okay).await?;
    c.expect(raw_on(&["TYPE", &k], &k), Value::Status("string".into()))
        .await?;
    c.expect(raw_on(&["INCR", &n], &n), Value::Int(1)).await?;
    c.expect_err(
        raw(&["NOSUCHCOMMAND-CONFORMANCE", "a"]),
        ErrorKind::Server,
        None,
    )
    .await?;
    c.expect_err(raw(&["ECHO"]), ErrorKind::Server, Some("ERR"))
        .await?;
    Ok(())
}

async fn strings_body(c: &Case<'_>) -> CaseResult {
    let (k, missing, h, n) = (c.key("k"), c.key("missing"), c.key("h"), c.key("n"));
    c.expect(get(&missing), Value::Nil).await?;
    c.expect(set(&k, "v1"), Value::Okay).await?;
    c.expect(get(&k), b("v1")).await?;
    c.expect(set(&k, "v2"), Value::Okay).await?;
    c.expect(get(&k), b("v2")).await?;
    let nx = Some(SetCondition::IfNotExists);
    let xx = Some(SetCondition::IfExists);
    c.expect(set_with(&k, "nx", None, nx), Value::Nil).await?;
    c.expect(set_with(&missing, "xx", None, xx), Value::Nil)
        .await?;
    c.expect(get(&missing), Value::Nil).await?;
    c.expect(set_with(&k, "xx", None, xx), Value::Okay).await?;
    c.expect(get(&k), b("xx")).await?;
    c.expect(set_with(&n, "nx", None, nx), Value::Okay).await?;
    c.expect(get(&n), b("nx")).await?;
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"v"))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Mget {
            keys: keys(&[&k, &missing, &h, &k]),
        },
        Value::Array(vec![b("xx"), Value::Nil, Value::Nil, b("xx")]),
    )
    .await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&k, &k, &missing, &h]),
        },
        Value::Int(3),
    )
    .await?;
    c.expect(
        Command::Del {
            keys: keys(&[&k, &k, &missing]),
        },
        Value::Int(1),
    )
    .await?;
    c.expect(Command::Exists { keys: keys(&[&k]) }, Value::Int(0))
        .await?;
    // INCRBY
    let counter = c.key("counter");
    c.expect(
        Command::Incrby {
            key: counter.clone(),
            delta: 5,
        },
        Value::Int(5),
    )
    .await?;
    c.expect(
        Command::Incrby {
            key: counter.clone(),
            delta: -7,
        },
        Value::Int(-2),
    )
    .await?;
    c.expect(get(&counter), b("-2")).await?;
    c.expect(set(&counter, "abc"), Value::Okay).await?;
    c.expect_err(
        Command::Incrby {
            key: counter.clone(),
            delta: 1,
        },
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect(set(&counter, " 1"), Value::Okay).await?;
    c.expect_err(
        Command::Incrby {
            key: counter.clone(),
            delta: 1,
        },
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect(set(&counter, i64::MAX.to_string()), Value::Okay)
        .await?;
    c.expect_err(
        Command::Incrby {
            key: counter.clone(),
            delta: 1,
        },
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect(get(&counter), b(&i64::MAX.to_string())).await?;
    Ok(())
}

async fn binary_body(c: &Case<'_>) -> CaseResult {
    let all_bytes: Bytes = (0u8..=255).collect::<Vec<u8>>().into();
    let bin = c.key("bin");
    c.expect(set(&bin, all_bytes.clone()), Value::Okay).await?;
    c.expect(get(&bin), Value::Bytes(all_bytes.clone())).await?;
    let h = c.key("h");
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![
                ("bin".into(), all_bytes.clone()),
                ("empty".into(), Bytes::new()),
            ],
        },
        Value::Int(2),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "bin".into(),
        },
        Value::Bytes(all_bytes),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "empty".into(),
        },
        Value::Bytes(Bytes::new()),
    )
    .await?;
    // An empty string is a value, not a missing key.
    let empty = c.key("empty");
    c.expect(set(&empty, Bytes::new()), Value::Okay).await?;
    c.expect(get(&empty), Value::Bytes(Bytes::new())).await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&empty]),
        },
        Value::Int(1),
    )
    .await?;
    // 1 MiB.
    let large: Bytes = (0..1024 * 1024)
        .map(|i: u32| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let big = c.key("large");
    c.expect(set(&big, large.clone()), Value::Okay).await?;
    c.expect(get(&big), Value::Bytes(large)).await?;
    // Unicode keys.
    let uni = c.key("ключ-🔑-键");
    c.expect(set(&uni, "ü"), Value::Okay).await?;
    c.expect(get(&uni), b("ü")).await?;
    c.expect(
        Command::Mget {
            keys: vec![uni.clone(), bin.clone()],
        },
        Value::Array(vec![
            b("ü"),
            Value::Bytes((0u8..=255).collect::<Vec<u8>>().into()),
        ]),
    )
    .await?;
    Ok(())
}

async fn ttl_body(c: &Case<'_>) -> CaseResult {
    let (k, missing) = (c.key("k"), c.key("missing"));
    c.expect(
        Command::Ttl {
            key: missing.clone(),
        },
        Value::Int(-2),
    )
    .await?;
    c.expect(
        Command::Pttl {
            key: missing.clone(),
        },
        Value::Int(-2),
    )
    .await?;
    c.expect(
        Command::Expire {
            key: missing.clone(),
            seconds: 10,
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Pexpire {
            key: missing.clone(),
            millis: 10,
        },
        Value::Int(0),
    )
    .await?;
    c.expect(set(&k, "v"), Value::Okay).await?;
    c.expect(Command::Ttl { key: k.clone() }, Value::Int(-1))
        .await?;
    c.expect(Command::Pttl { key: k.clone() }, Value::Int(-1))
        .await?;
    c.expect(
        Command::Expire {
            key: k.clone(),
            seconds: 100,
        },
        Value::Int(1),
    )
    .await?;
    let cmd = Command::Ttl { key: k.clone() };
    let ttl = c.ok(cmd.clone()).await?;
    c.check(
        matches!(ttl, Value::Int(99..=100)),
        &describe(&cmd),
        "Int in 99..=100",
        &ttl,
    )?;
    let cmd = Command::Pttl { key: k.clone() };
    let pttl = c.ok(cmd.clone()).await?;
    c.check(
        matches!(pttl, Value::Int(90_000..=100_000)),
        &describe(&cmd),
        "Int in 90000..=100000",
        &pttl,
    )?;
    // SET clears the TTL.
    c.expect(set(&k, "v2"), Value::Okay).await?;
    c.expect(Command::Ttl { key: k.clone() }, Value::Int(-1))
        .await?;
    // SET PX sets one; INCRBY keeps it.
    let n = c.key("n");
    c.expect(set_with(&n, "1", Some(100_000), None), Value::Okay)
        .await?;
    c.expect(
        Command::Incrby {
            key: n.clone(),
            delta: 1,
        },
        Value::Int(2),
    )
    .await?;
    let cmd = Command::Pttl { key: n.clone() };
    let pttl = c.ok(cmd.clone()).await?;
    c.check(
        matches!(pttl, Value::Int(90_000..=100_000)),
        &describe(&cmd),
        "Int in 90000..=100000",
        &pttl,
    )?;
    // PEXPIRE 0 and EXPIRE -1 delete.
    c.expect(
        Command::Pexpire {
            key: n.clone(),
            millis: 0,
        },
        Value::Int(1),
    )
    .await?;
    c.expect(get(&n), Value::Nil).await?;
    c.expect(
        Command::Expire {
            key: k.clone(),
            seconds: -1,
        },
        Value::Int(1),
    )
    .await?;
    c.expect(Command::Exists { keys: keys(&[&k]) }, Value::Int(0))
        .await?;
    // A hash expires like a string.
    let h = c.key("h");
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"v"))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Pexpire {
            key: h.clone(),
            millis: 100_000,
        },
        Value::Int(1),
    )
    .await?;
    let cmd = Command::Ttl { key: h.clone() };
    let ttl = c.ok(cmd.clone()).await?;
    c.check(
        matches!(ttl, Value::Int(90..=100)),
        &describe(&cmd),
        "Int in 90..=100",
        &ttl,
    )?;
    // Real expiry: PX 50, then poll until gone (2 s deadline).
    let short = c.key("short");
    c.expect(set_with(&short, "v", Some(50), None), Value::Okay)
        .await?;
    let backend = c.backend;
    let gone = wait_for(Duration::from_secs(2), || {
        let key = short.clone();
        async move { matches!(backend.execute(get(&key)).await, Ok(Value::Nil)) }
    })
    .await;
    c.check(
        gone,
        "GET after SET PX 50",
        "Nil within 2 s",
        "the value was still there",
    )?;
    c.expect(
        Command::Exists {
            keys: keys(&[&short]),
        },
        Value::Int(0),
    )
    .await?;
    c.expect(Command::Ttl { key: short.clone() }, Value::Int(-2))
        .await?;
    // SET NX treats an expired key as missing.
    c.expect(
        set_with(&short, "again", None, Some(SetCondition::IfNotExists)),
        Value::Okay,
    )
    .await?;
    Ok(())
}

async fn hashes_body(c: &Case<'_>) -> CaseResult {
    let (h, missing) = (c.key("h"), c.key("missing"));
    let hset = |fields: &[(&str, &str)]| Command::Hset {
        key: h.clone(),
        fields: fields
            .iter()
            .map(|(f, v)| ((*f).to_owned(), Bytes::copy_from_slice(v.as_bytes())))
            .collect(),
    };
    c.expect(hset(&[("a", "1"), ("b", "2")]), Value::Int(2))
        .await?;
    c.expect(hset(&[("a", "10"), ("c", "3")]), Value::Int(1))
        .await?;
    c.expect(hset(&[("d", "x"), ("d", "y")]), Value::Int(1))
        .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "a".into(),
        },
        b("10"),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "d".into(),
        },
        b("y"),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "zz".into(),
        },
        Value::Nil,
    )
    .await?;
    c.expect(
        Command::Hget {
            key: missing.clone(),
            field: "a".into(),
        },
        Value::Nil,
    )
    .await?;
    let cmd = Command::Hgetall { key: h.clone() };
    let all = c.ok(cmd.clone()).await?;
    let mut pairs = match &all {
        Value::Map(pairs) => pairs.clone(),
        other => return Err(c.fail(describe(&cmd), "a Map".into(), format!("{other:?}"))),
    };
    pairs.sort_by(|x, y| format!("{:?}", x.0).cmp(&format!("{:?}", y.0)));
    let want = vec![
        (b("a"), b("10")),
        (b("b"), b("2")),
        (b("c"), b("3")),
        (b("d"), b("y")),
    ];
    c.check(
        pairs == want,
        &describe(&cmd),
        &format!("{want:?} (any order)"),
        &all,
    )?;
    c.expect(
        Command::Hgetall {
            key: missing.clone(),
        },
        Value::Map(Vec::new()),
    )
    .await?;
    c.expect(
        Command::Hdel {
            key: h.clone(),
            fields: keys(&["a", "zz", "a"]),
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Hdel {
            key: missing.clone(),
            fields: keys(&["a"]),
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Hdel {
            key: h.clone(),
            fields: keys(&["b", "c", "d"]),
        },
        Value::Int(3),
    )
    .await?;
    c.expect(Command::Exists { keys: keys(&[&h]) }, Value::Int(0))
        .await?;
    // HINCRBY / HINCRBYFLOAT.
    let hi = c.key("counters");
    let hincr = |field: &str, delta: i64| Command::Hincrby {
        key: hi.clone(),
        field: field.into(),
        delta,
    };
    let hfloat = |field: &str, delta: f64| Command::Hincrbyfloat {
        key: hi.clone(),
        field: field.into(),
        delta,
    };
    c.expect(hincr("n", 5), Value::Int(5)).await?;
    c.expect(hincr("n", -8), Value::Int(-3)).await?;
    c.expect(
        Command::Hget {
            key: hi.clone(),
            field: "n".into(),
        },
        b("-3"),
    )
    .await?;
    c.expect(hfloat("f", 1.5), Value::Double(1.5)).await?;
    c.expect(hfloat("f", 2.25), Value::Double(3.75)).await?;
    c.expect(hfloat("n", 0.5), Value::Double(-2.5)).await?;
    c.expect(
        Command::Hget {
            key: hi.clone(),
            field: "f".into(),
        },
        b("3.75"),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: hi.clone(),
            field: "n".into(),
        },
        b("-2.5"),
    )
    .await?;
    c.expect_err(hincr("n", 1), ErrorKind::Server, Some("ERR"))
        .await?;
    c.expect(
        Command::Hset {
            key: hi.clone(),
            fields: vec![("s".into(), Bytes::from_static(b"abc"))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect_err(hfloat("s", 1.0), ErrorKind::Server, Some("ERR"))
        .await?;
    c.expect_err(hincr("s", 1), ErrorKind::Server, Some("ERR"))
        .await?;
    c.expect(
        Command::Hset {
            key: hi.clone(),
            fields: vec![("max".into(), Bytes::from(i64::MAX.to_string()))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect_err(hincr("max", 1), ErrorKind::Server, Some("ERR"))
        .await?;
    Ok(())
}

async fn wrong_type_body(c: &Case<'_>) -> CaseResult {
    let (s, h, z) = (c.key("s"), c.key("h"), c.key("z"));
    c.expect(set(&s, "v"), Value::Okay).await?;
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"1"))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        zadd(&z, &[(1.0, "m")], ZaddOptions::default()),
        Value::Int(1),
    )
    .await?;
    let wrong: Vec<Command> = vec![
        Command::Hget {
            key: s.clone(),
            field: "f".into(),
        },
        Command::Hset {
            key: s.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"1"))],
        },
        Command::Hgetall { key: s.clone() },
        Command::Hdel {
            key: z.clone(),
            fields: keys(&["f"]),
        },
        Command::Hincrby {
            key: s.clone(),
            field: "f".into(),
            delta: 1,
        },
        Command::Hincrbyfloat {
            key: z.clone(),
            field: "f".into(),
            delta: 1.0,
        },
        zadd(&s, &[(1.0, "m")], ZaddOptions::default()),
        zrange(&h, 0, -1, false, false),
        zbyscore(
            &s,
            ScoreBound::NegInf,
            ScoreBound::PosInf,
            false,
            false,
            None,
        ),
        Command::Zrem {
            key: h.clone(),
            members: keys(&["m"]),
        },
        Command::Zcard { key: s.clone() },
        Command::Zscore {
            key: h.clone(),
            member: "m".into(),
        },
        Command::Zremrangebyrank {
            key: s.clone(),
            start: 0,
            stop: -1,
        },
        get(&h),
        get(&z),
        Command::Incrby {
            key: h.clone(),
            delta: 1,
        },
    ];
    for cmd in wrong {
        c.expect_err(cmd, ErrorKind::Server, Some("WRONGTYPE"))
            .await?;
    }
    // Type-agnostic commands work on any type.
    c.expect(
        Command::Mget {
            keys: keys(&[&s, &h, &z]),
        },
        Value::Array(vec![b("v"), Value::Nil, Value::Nil]),
    )
    .await?;
    c.expect(Command::Ttl { key: h.clone() }, Value::Int(-1))
        .await?;
    c.expect(
        Command::Expire {
            key: z.clone(),
            seconds: 100,
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&s, &h, &z]),
        },
        Value::Int(3),
    )
    .await?;
    c.expect(raw_on(&["TYPE", &z], &z), Value::Status("zset".into()))
        .await?;
    // SET replaces any type.
    c.expect(set(&h, "now a string"), Value::Okay).await?;
    c.expect(get(&h), b("now a string")).await?;
    c.expect(
        Command::Del {
            keys: keys(&[&s, &h, &z]),
        },
        Value::Int(3),
    )
    .await?;
    Ok(())
}

async fn sorted_sets_body(c: &Case<'_>) -> CaseResult {
    let (z, missing) = (c.key("z"), c.key("missing"));
    let none = ZaddOptions::default();
    c.expect(
        zadd(&z, &[(1.0, "b"), (1.0, "a"), (0.0, "c"), (2.5, "d")], none),
        Value::Int(4),
    )
    .await?;
    c.expect(zadd(&z, &[(1.0, "B")], none), Value::Int(1))
        .await?;
    c.expect(zadd(&z, &[(3.0, "d")], none), Value::Int(0))
        .await?;
    c.expect(Command::Zcard { key: z.clone() }, Value::Int(5))
        .await?;
    c.expect(
        Command::Zcard {
            key: missing.clone(),
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "d".into(),
        },
        Value::Double(3.0),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "zz".into(),
        },
        Value::Nil,
    )
    .await?;
    // Ties order by member bytes: "B" (0x42) before "a" (0x61).
    c.expect(
        zrange(&z, 0, -1, false, false),
        members(&["c", "B", "a", "b", "d"]),
    )
    .await?;
    c.expect(
        zrange(&z, 0, -1, true, false),
        members(&["d", "b", "a", "B", "c"]),
    )
    .await?;
    c.expect(zrange(&z, -2, -1, false, false), members(&["b", "d"]))
        .await?;
    c.expect(
        zrange(&z, 1, 2, false, true),
        scored(&[("B", 1.0), ("a", 1.0)]),
    )
    .await?;
    c.expect(zrange(&z, 0, 0, true, true), scored(&[("d", 3.0)]))
        .await?;
    c.expect(zrange(&z, -100, 0, false, false), members(&["c"]))
        .await?;
    c.expect(zrange(&z, 3, 100, false, false), members(&["b", "d"]))
        .await?;
    c.expect(zrange(&z, 2, 1, false, false), members(&[]))
        .await?;
    c.expect(zrange(&z, 5, 10, false, false), members(&[]))
        .await?;
    c.expect(zrange(&missing, 0, -1, false, true), members(&[]))
        .await?;
    c.expect(
        Command::Zrem {
            key: z.clone(),
            members: keys(&["a", "zz"]),
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zrem {
            key: missing.clone(),
            members: keys(&["a"]),
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Zremrangebyrank {
            key: z.clone(),
            start: 0,
            stop: 1,
        },
        Value::Int(2),
    )
    .await?;
    c.expect(zrange(&z, 0, -1, false, false), members(&["b", "d"]))
        .await?;
    c.expect(
        Command::Zremrangebyrank {
            key: z.clone(),
            start: 5,
            stop: 10,
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Zremrangebyrank {
            key: missing.clone(),
            start: 0,
            stop: -1,
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Zremrangebyrank {
            key: z.clone(),
            start: -1,
            stop: -1,
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zrem {
            key: z.clone(),
            members: keys(&["b"]),
        },
        Value::Int(1),
    )
    .await?;
    c.expect(Command::Exists { keys: keys(&[&z]) }, Value::Int(0))
        .await?;
    // Infinite scores.
    c.expect(
        zadd(
            &z,
            &[
                (f64::INFINITY, "top"),
                (f64::NEG_INFINITY, "bottom"),
                (0.0, "mid"),
            ],
            none,
        ),
        Value::Int(3),
    )
    .await?;
    c.expect(
        zrange(&z, 0, -1, false, true),
        scored(&[
            ("bottom", f64::NEG_INFINITY),
            ("mid", 0.0),
            ("top", f64::INFINITY),
        ]),
    )
    .await?;
    Ok(())
}

async fn zadd_options_body(c: &Case<'_>) -> CaseResult {
    let (z, missing) = (c.key("z"), c.key("missing"));
    let opts = |condition, greater_than, changed, incr| ZaddOptions {
        condition,
        greater_than,
        changed,
        incr,
    };
    let nx = Some(SetCondition::IfNotExists);
    let xx = Some(SetCondition::IfExists);
    c.expect(
        zadd(
            &z,
            &[(1.0, "a"), (2.0, "b")],
            opts(None, None, false, false),
        ),
        Value::Int(2),
    )
    .await?;
    // Option errors.
    c.expect_err(
        zadd(&z, &[(1.0, "a")], opts(nx, Some(true), false, false)),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect_err(
        zadd(&z, &[(1.0, "a")], opts(nx, Some(false), false, false)),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect_err(
        zadd(&z, &[(1.0, "a"), (2.0, "b")], opts(None, None, false, true)),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    // NX: only new members.
    c.expect(
        zadd(&z, &[(10.0, "a"), (3.0, "c")], opts(nx, None, false, false)),
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "a".into(),
        },
        Value::Double(1.0),
    )
    .await?;
    // XX: only existing members, CH counts updates.
    c.expect(
        zadd(&z, &[(5.0, "a"), (4.0, "new")], opts(xx, None, true, false)),
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "new".into(),
        },
        Value::Nil,
    )
    .await?;
    // XX on a missing key creates nothing.
    c.expect(
        zadd(&missing, &[(1.0, "a")], opts(xx, None, false, false)),
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&missing]),
        },
        Value::Int(0),
    )
    .await?;
    // GT: updates only upward, still adds new members; CH counts both.
    c.expect(
        zadd(
            &z,
            &[(0.5, "a"), (9.0, "b"), (7.0, "d")],
            opts(None, Some(true), true, false),
        ),
        Value::Int(2),
    )
    .await?;
    c.expect(
        zrange(&z, 0, -1, false, true),
        scored(&[("c", 3.0), ("a", 5.0), ("d", 7.0), ("b", 9.0)]),
    )
    .await?;
    // LT: updates only downward.
    c.expect(
        zadd(
            &z,
            &[(6.0, "a"), (1.0, "b")],
            opts(None, Some(false), true, false),
        ),
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "b".into(),
        },
        Value::Double(1.0),
    )
    .await?;
    // Without CH, updates are not counted.
    c.expect(
        zadd(&z, &[(2.0, "b")], opts(None, None, false, false)),
        Value::Int(0),
    )
    .await?;
    // INCR returns the new score, Nil when a condition blocks it.
    c.expect(
        zadd(&z, &[(1.5, "b")], opts(None, None, false, true)),
        Value::Double(3.5),
    )
    .await?;
    c.expect(
        zadd(&z, &[(2.0, "fresh")], opts(None, None, false, true)),
        Value::Double(2.0),
    )
    .await?;
    c.expect(
        zadd(&z, &[(1.0, "b")], opts(nx, None, false, true)),
        Value::Nil,
    )
    .await?;
    c.expect(
        zadd(&z, &[(1.0, "ghost")], opts(xx, None, false, true)),
        Value::Nil,
    )
    .await?;
    c.expect(
        zadd(&z, &[(-1.0, "b")], opts(None, Some(true), false, true)),
        Value::Nil,
    )
    .await?;
    c.expect(
        zadd(&z, &[(-1.0, "b")], opts(None, Some(false), false, true)),
        Value::Double(2.5),
    )
    .await?;
    c.expect(
        zadd(&missing, &[(1.0, "a")], opts(xx, None, false, true)),
        Value::Nil,
    )
    .await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&missing]),
        },
        Value::Int(0),
    )
    .await?;
    Ok(())
}

async fn zrangebyscore_body(c: &Case<'_>) -> CaseResult {
    use ScoreBound::{Exclusive, Inclusive, NegInf, PosInf};
    let (z, missing) = (c.key("z"), c.key("missing"));
    c.expect(
        zadd(
            &z,
            &[
                (1.0, "a"),
                (2.0, "b"),
                (2.0, "c"),
                (3.0, "d"),
                (f64::INFINITY, "inf"),
            ],
            ZaddOptions::default(),
        ),
        Value::Int(5),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(2.0), Inclusive(3.0), false, false, None),
        members(&["b", "c", "d"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Exclusive(1.0), Exclusive(3.0), false, false, None),
        members(&["b", "c"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Exclusive(2.0), PosInf, false, false, None),
        members(&["d", "inf"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, false, None),
        members(&["a", "b", "c", "d", "inf"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, Exclusive(2.0), false, true, None),
        scored(&[("a", 1.0)]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(2.0), PosInf, true, false, None),
        members(&["inf", "d", "c", "b"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(1.0), Inclusive(2.0), true, true, None),
        scored(&[("c", 2.0), ("b", 2.0), ("a", 1.0)]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, false, Some((1, 2))),
        members(&["b", "c"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, true, false, Some((1, 2))),
        members(&["d", "c"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, true, Some((4, 10))),
        scored(&[("inf", f64::INFINITY)]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, false, Some((10, 10))),
        members(&[]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, false, Some((0, 0))),
        members(&[]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(3.0), Inclusive(1.0), false, false, None),
        members(&[]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Exclusive(2.0), Exclusive(2.0), false, false, None),
        members(&[]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(2.0), Inclusive(2.0), false, false, None),
        members(&["b", "c"]),
    )
    .await?;
    c.expect(
        zbyscore(&missing, NegInf, PosInf, false, true, None),
        members(&[]),
    )
    .await?;
    Ok(())
}

async fn scripts_body(c: &Case<'_>) -> CaseResult {
    let (k1, k2) = (c.key("value"), c.key("counter"));
    let sha = resilience_core::memory::script_sha1(SET_AND_INCR_LUA);
    c.expect(
        Command::ScriptLoad {
            script: SET_AND_INCR_LUA.to_owned(),
        },
        b(&sha),
    )
    .await?;
    // A script nobody loaded: NOSCRIPT, a Server error.
    let unknown = resilience_core::memory::script_sha1(&format!("return '{}'", c.prefix));
    let e = c
        .expect_err(
            Command::Evalsha {
                sha1: unknown,
                keys: vec![],
                args: vec![],
                idempotent: true,
            },
            ErrorKind::Server,
            Some("NOSCRIPT"),
        )
        .await?;
    c.check(
        e.is_noscript(),
        "EVALSHA of an unknown script",
        "is_noscript()",
        &e,
    )?;
    let args = |v: &'static str, d: &'static str| {
        vec![
            Bytes::from_static(v.as_bytes()),
            Bytes::from_static(d.as_bytes()),
        ]
    };
    c.expect(
        Command::Eval {
            script: SET_AND_INCR_LUA.to_owned(),
            keys: vec![k1.clone(), k2.clone()],
            args: args("first", "5"),
        },
        Value::Array(vec![Value::Int(5), b("first")]),
    )
    .await?;
    c.expect(
        Command::Evalsha {
            sha1: sha,
            keys: vec![k1.clone(), k2.clone()],
            args: args("second", "-2"),
            idempotent: false,
        },
        Value::Array(vec![Value::Int(3), b("second")]),
    )
    .await?;
    c.expect(get(&k2), b("3")).await?;
    Ok(())
}

async fn scan_body(c: &Case<'_>) -> CaseResult {
    let mut want = Vec::new();
    for i in 0..25 {
        let k = c.key(&format!("all:{i:02}"));
        c.expect(set(&k, "v"), Value::Okay).await?;
        want.push(k);
    }
    let h = c.key("all:hash");
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"v"))],
        },
        Value::Int(1),
    )
    .await?;
    want.push(h);
    want.sort();
    let seen = scan_all(c, &format!("{}all:*", c.prefix), Some(5)).await?;
    c.check(
        seen == want,
        "full SCAN MATCH iteration",
        &format!("{want:?}"),
        &seen,
    )?;
    // Glob features: ?, [set], [^set], ranges and escapes.
    for name in ["g:a1", "g:b1", "g:c1", "g:a22", "g:x*y", "g:xzy"] {
        c.expect(set(&c.key(name), "v"), Value::Okay).await?;
    }
    let p = &c.prefix;
    for (pattern, names) in [
        ("g:[ab]?", &["g:a1", "g:b1"][..]),
        ("g:[^ab]1", &["g:c1"][..]),
        ("g:[a-b]1", &["g:a1", "g:b1"][..]),
        ("g:a*", &["g:a1", "g:a22"][..]),
        ("g:x\\*y", &["g:x*y"][..]),
        ("g:x?y", &["g:x*y", "g:xzy"][..]),
    ] {
        let mut expected: Vec<String> = names.iter().map(|n| format!("{p}{n}")).collect();
        expected.sort();
        let got = scan_all(c, &format!("{p}{pattern}"), None).await?;
        c.check(
            got == expected,
            &format!("SCAN MATCH {pattern}"),
            &format!("{expected:?}"),
            &got,
        )?;
    }
    Ok(())
}

/// Iterates SCAN to the end; returns the distinct keys seen, sorted.
async fn scan_all(
    c: &Case<'_>,
    pattern: &str,
    count: Option<u64>,
) -> Result<Vec<String>, ConformanceFailure> {
    let mut cursor = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    // Generous: even a huge shared database finishes long before this.
    for _ in 0..1_000_000 {
        let cmd = Command::Scan {
            cursor,
            pattern: Some(pattern.to_owned()),
            count,
        };
        let reply = c.ok(cmd.clone()).await?;
        let shape_error = || {
            c.fail(
                describe(&cmd),
                "Array[Int cursor, Array[Bytes]]".into(),
                format!("{reply:?}"),
            )
        };
        let Value::Array(parts) = &reply else {
            return Err(shape_error());
        };
        let [Value::Int(next), Value::Array(keys)] = parts.as_slice() else {
            return Err(shape_error());
        };
        for key in keys {
            let Value::Bytes(key) = key else {
                return Err(shape_error());
            };
            seen.insert(String::from_utf8_lossy(key).into_owned());
        }
        cursor = u64::try_from(*next).map_err(|_| shape_error())?;
        if cursor == 0 {
            return Ok(seen.into_iter().collect());
        }
    }
    Err(c.fail(
        format!("SCAN MATCH {pattern}"),
        "the cursor to return to 0".into(),
        "it never did".into(),
    ))
}

async fn batches_body(c: &Case<'_>) -> CaseResult {
    let (a, s, t, u) = (c.key("a"), c.key("s"), c.key("t"), c.key("u"));
    let seq = |key: &str| {
        vec![
            set(key, "1"),
            Command::Incrby {
                key: key.to_owned(),
                delta: 2,
            },
            get(key),
            Command::Exists {
                keys: vec![key.to_owned()],
            },
        ]
    };
    let want = vec![Value::Okay, Value::Int(3), b("3"), Value::Int(1)];
    c.expect_batch(seq(&a), false, want.clone()).await?;
    c.expect_batch(seq(&a), true, want).await?;
    c.expect_batch(
        vec![
            Command::Hset {
                key: s.clone(),
                fields: vec![("f".into(), Bytes::from_static(b"v"))],
            },
            Command::Hgetall { key: s.clone() },
            zadd(&t, &[(1.0, "m")], ZaddOptions::default()),
            zrange(&t, 0, -1, false, true),
            Command::Del {
                keys: vec![s.clone(), t.clone()],
            },
        ],
        true,
        vec![
            Value::Int(1),
            Value::Map(vec![(b("f"), b("v"))]),
            Value::Int(1),
            scored(&[("m", 1.0)]),
            Value::Int(2),
        ],
    )
    .await?;
    // A queue-time error (wrong number of arguments) discards the whole transaction.
    c.expect_batch_server_error(vec![set(&u, "applied?"), raw(&["INCR"])], true)
        .await?;
    c.expect(get(&u), Value::Nil).await?;
    // A runtime error fails the call, but Redis still applies the other commands, in both
    // transactions and pipelines.
    for atomic in [true, false] {
        c.expect_batch_server_error(
            vec![
                set(&s, "not a number"),
                Command::Incrby {
                    key: s.clone(),
                    delta: 1,
                },
                set(&t, "after"),
            ],
            atomic,
        )
        .await?;
        c.expect(get(&s), b("not a number")).await?;
        c.expect(get(&t), b("after")).await?;
        c.expect(
            Command::Del {
                keys: vec![s.clone(), t.clone()],
            },
            Value::Int(2),
        )
        .await?;
    }
    Ok(())
}
