//! The conformance suite every [`KvBackend`] must pass, as library functions.
//!
//! Each case is a `pub async fn(backend, namespace)` that drives one area of Redis
//! semantics through the backend and checks each reply against what real Redis 7 returns,
//! in the canonical shape documented on [`Command`](resilience_core::Command). [`run_all`] runs every case in order.
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
//! The scripting case runs [`SET_AND_INCR_LUA`]: a real server and the in-memory backend
//! (resilience-core's feature `lua`, which this crate turns on) run the same Lua source.
//!
//! # Time
//!
//! The TTL case uses a 50 ms `PX` and waits for expiry by polling with a deadline
//! ([`wait_for`]), never a bare sleep: it passes on a slow machine and fails only if the key
//! never expires.

mod batches;
mod harness;
mod hashes;
mod keys;
mod keyspace;
mod layout;
mod lists;
mod scan;
mod scripting;
mod sets;
mod sorted_sets;
mod streams;
mod strings;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use resilience_core::KvBackend;

pub use harness::ConformanceFailure;
use harness::{Case, CaseResult};

/// The Lua script the scripting case runs: `SET KEYS[1] ARGV[1]`, `INCRBY KEYS[2] ARGV[2]`,
/// and returns `{new counter, GET KEYS[1]}`.
pub const SET_AND_INCR_LUA: &str = "redis.call('SET', KEYS[1], ARGV[1])\n\
local n = redis.call('INCRBY', KEYS[2], ARGV[2])\n\
return {n, redis.call('GET', KEYS[1])}";

/// A namespace unique to this run: `<prefix>-<16 random hex digits>`.
pub fn unique_namespace(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Polls `check` every 10 ms until it returns `true` or `deadline` passes; returns whether
/// it became true. Uses `tokio::time::sleep`, never a blocking sleep.
///
/// # Errors
///
/// None: the result says whether `check` became true in time.
///
/// # Cancel safety
///
/// Cancel safe: dropping the future only stops the polling.
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

/// A boxed case future, as [`case_by_name`] returns it.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

macro_rules! cases {
    ($( $(#[$doc:meta])* $name:ident => $body:path; )*) => {
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
        ///
        /// # Errors
        ///
        /// `ConformanceFailure` naming the case and the reply or error that
        /// differed from Redis's.
        ///
        /// # Cancel safety
        ///
        /// Dropping the future abandons the exchange: a command already written may still run on
        /// the server, and the connection should not be used again.
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
    ping_and_raw => keys::ping_and_raw_body;
    /// `GET`/`SET` (with `NX`/`XX`), `MGET`, `DEL` and `EXISTS` (counting repeats), `INCRBY`
    /// and its errors.
    strings => keys::strings_body;
    /// Binary-safe values (every byte 0x00-0xff), empty values, a 1 MiB value, unicode keys.
    binary_empty_large_unicode => keys::binary_body;
    /// `TTL`/`PTTL` (-1, -2), `EXPIRE`/`PEXPIRE` (0 and negative delete), `SET` clearing a
    /// TTL, `INCRBY` keeping it, `SET PX` expiring for real.
    ttl_and_expiry => keys::ttl_body;
    /// `HSET` (count of new fields), `HGET`, `HGETALL` (a `Map`), `HDEL` (empty hash is
    /// deleted), `HINCRBY`, `HINCRBYFLOAT` (a `Double`) and their errors.
    hashes => hashes::hashes_body;
    /// `WRONGTYPE` is a `Server` error with code `WRONGTYPE`, exactly where Redis gives it.
    wrong_type => keys::wrong_type_body;
    /// `ZADD`, `ZCARD`, `ZSCORE`, `ZRANGE` (ranks, negative indexes, `REV`, `WITHSCORES`,
    /// ties ordered by member bytes), `ZREM`, `ZREMRANGEBYRANK`.
    sorted_sets => sorted_sets::sorted_sets_body;
    /// `ZADD` with `NX`/`XX`/`GT`/`LT`/`CH`/`INCR`, and its option errors.
    zadd_options => sorted_sets::zadd_options_body;
    /// `ZRANGEBYSCORE`/`ZREVRANGEBYSCORE`: inclusive, exclusive and infinite bounds, `LIMIT`,
    /// `WITHSCORES`.
    zrangebyscore => sorted_sets::zrangebyscore_body;
    /// `SCRIPT LOAD`, `EVAL`, `EVALSHA` and `NOSCRIPT`.
    scripts => scripting::scripts_body;
    /// `SCAN` returns `[Int cursor, [keys]]`; a full iteration sees every key; `MATCH` globs.
    scan => scan::scan_body;
    /// Batches: atomic and not, results in order, queue-time errors abort a transaction,
    /// runtime errors fail the call but the other commands still apply (as in Redis).
    batches => batches::batches_body;
    /// `GETRANGE`, `SETRANGE` (zero padding, TTL kept), `APPEND` and `STRLEN`.
    string_ranges => layout::string_ranges_body;
    /// `BITFIELD` `GET`/`SET`/`INCRBY` at bit and `#` offsets, `OVERFLOW` `WRAP`/`SAT`/`FAIL`,
    /// a missing key created zero-filled without a TTL, an existing one keeping its TTL.
    bitfield => layout::bitfield_body;
    /// `PEXPIRE` with `NX`, `XX`, `GT` and `LT`, and their incompatible combinations.
    expire_conditions => layout::expire_conditions_body;
    /// `ZRANGEBYLEX`, `ZREVRANGEBYLEX` (with `LIMIT`) and `ZLEXCOUNT` over equal scores.
    lex_ranges => layout::lex_ranges_body;
    /// `SET` with `GET`/`KEEPTTL`/`PXAT`, `GETEX`, `GETDEL`, `MSET`, `MSETNX`, `INCR`,
    /// `DECR`, `DECRBY`, `INCRBYFLOAT`, `SETBIT`, `GETBIT`, `BITCOUNT`.
    string_commands => strings::string_commands_body;
    /// `UNLINK`, `PERSIST`, `EXPIREAT` with conditions, `TYPE` of every type, `COPY`,
    /// `SCAN … TYPE`, and `PUBLISH` without subscribers.
    keyspace => keyspace::keyspace_body;
    /// `HSETNX`, `HMGET`, `HEXISTS`, `HLEN`, `HKEYS`, `HVALS`, `HSCAN`.
    hash_reads => hashes::hash_reads_body;
    /// Lists: pushes, pops with counts, ranges, `LINDEX`, `LSET`, `LREM`, `LTRIM`, `LMOVE`.
    lists => lists::lists_body;
    /// Sets: `SADD`, `SREM`, membership, cardinality, `SPOP`, `SRANDMEMBER`, `SSCAN`,
    /// `SINTER`/`SUNION`/`SDIFF`.
    sets => sets::sets_body;
    /// `ZINCRBY`, `ZCOUNT`, `ZRANK`, `ZMSCORE`, `ZPOPMIN`/`ZPOPMAX`, `ZSCAN`.
    sorted_set_more => sorted_sets::sorted_set_more_body;
    /// Streams without consumer groups: `XADD` (explicit, `ms-*` and auto ids, `MINID`,
    /// `NOMKSTREAM`), `XRANGE`, `XREVRANGE`, `XLEN`, `XREAD`, `XDEL`, `XTRIM`; and
    /// `PFADD`/`PFCOUNT`.
    streams => streams::streams_body;
}
