//! # backend-memory
//!
//! [`InMemoryBackend`]: a [`KvBackend`] with Redis semantics and no server, beside the
//! two driver backends (`backend-redis-rs`, `backend-fred`). The examples run on it, the
//! memory tiers use it as their embedded default and their local fallback, and tests use
//! it where a real server would add nothing.
//!
//! It answers every command of the table (`resilience_core::Command`) with the reply and
//! error line real Redis gives, and passes the same conformance suite as the driver
//! backends. What needs a server (blocking commands, consumer groups) is refused with
//! `InvalidInput`, naming the command; nothing is ever answered made up.
//!
//! ## Features
//!
//! - `lua` (off by default): `EVAL` and `EVALSHA` run the script's own Lua source (Lua
//!   5.1, as Redis; vendored, so building needs a C compiler). Without it, a script runs
//!   through a [`NativeScript`] registered for its source.

mod bitfield;
mod channels;
mod context;
mod errors;
mod exec;
mod glob;
mod lists;
#[cfg(feature = "lua")]
mod lua;
#[cfg(feature = "lua")]
mod msgpack;
mod raw;
pub mod scripts;
mod sets;
mod store;
mod stream;
mod streams;
mod strings;
mod zset;

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::time::Instant;

pub use context::ScriptContext;
pub use scripts::NativeScript;

use resilience_core::{BackendError, Command, KvBackend, Value, script_sha1};
use scripts::Scripts;
use store::Keyspace;

/// How many expired keys a write removes, at most, besides the ones it touches.
const SWEEP_PER_WRITE: usize = 16;

#[derive(Debug, Default)]
struct State {
    keys: Keyspace,
    scripts: Scripts,
}

impl State {
    fn run(&mut self, cmd: Command, now: Instant) -> Result<Value, BackendError> {
        if cmd.is_write() {
            self.keys.sweep(now, SWEEP_PER_WRITE);
        }
        match cmd {
            Command::Eval { script, keys, args } => {
                self.scripts
                    .eval(&mut self.keys, &script, &keys, &args, now)
            }
            Command::Evalsha {
                sha1, keys, args, ..
            } => self
                .scripts
                .evalsha(&mut self.keys, &sha1, &keys, &args, now),
            Command::ScriptLoad { script } => Ok(Value::Bytes(self.scripts.load(&script).into())),
            other => exec::apply(&mut self.keys, other, now),
        }
    }
}

/// An in-process store with Redis semantics.
///
/// Cloning is cheap and clones share the same data.
///
/// A real [`KvBackend`] that keeps strings, hashes and sorted sets in process memory and
/// answers every [`Command`] with the same canonical reply, and the same error line, that
/// real Redis 7 gives. It is the embedded default the examples run on, the local fallback
/// tier, and it passes the same conformance suite (`testkit::conformance`) as the Redis
/// backends.
///
/// ```
/// use resilience_core::{Command, KvBackend, SetOptions, Value};
/// use backend_memory::InMemoryBackend;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), resilience_core::BackendError> {
/// let backend = InMemoryBackend::new();
/// backend
///     .execute(Command::Set { key: "k".into(), value: "v".into(), options: SetOptions::default() })
///     .await?;
/// let got = backend.execute(Command::Get { key: "k".into() }).await?;
/// assert_eq!(got, Value::Bytes("v".into()));
/// # Ok(())
/// # }
/// ```
///
/// # How it behaves
///
/// - **Types.** Each key holds a string, a hash or a sorted set. A command against a key of
///   another type fails with `WRONGTYPE` exactly where Redis does (`MGET` returns `Nil` for
///   such a key, `SET` replaces any type). A hash or sorted set that becomes empty is deleted.
/// - **Sorted sets** order by score, then by the member's bytes; `-0` equals `0`.
/// - **Expiry** runs on [`tokio::time::Instant`], so tests can drive it with a paused
///   clock. An expired key disappears the moment anything looks at it; writes also remove a
///   few already-expired keys each, so memory does not grow with keys nobody reads again.
///   No background task is needed. A key is gone from the instant its deadline is reached
///   (Redis keeps it for that one millisecond more; no caller can tell the difference).
///   `TTL` rounds to the nearest second and `PTTL` rounds up to the millisecond, as Redis.
/// - **Scripts.** With feature `lua`, `EVAL` runs the script's own source in Lua 5.1, as
///   Redis does, with `redis.call` over this backend's data, atomically (see `backend-memory/src/lua.rs`
///   for what a script sees): one source for Redis and for tests without a server.
///   `EVALSHA` runs a script once it was loaded (`SCRIPT LOAD` or `EVAL`), and fails with
///   `NOSCRIPT` before, as Redis does. A native twin registered with
///   [`InMemoryBackend::register_script`] runs instead of the source;
///   without feature `lua`, a script with no twin is a `Server` error.
/// - **Batches.** [`KvBackend::execute_batch`] runs all commands under one lock
///   acquisition, so nothing interleaves. With `atomic`, it first checks what Redis checks
///   when queueing inside `MULTI` (unknown raw command, wrong number of arguments); any such
///   error discards the whole batch with `EXECABORT` and applies nothing. Otherwise every
///   command is applied, in order, even after one fails (a runtime error inside `EXEC` or a
///   pipeline does not undo or skip the others in Redis either), and the call returns the
///   first error, or all replies.
/// - **SCAN** walks keys in the order of a fixed hash; the cursor is the next hash to look
///   at. A full iteration returns every key that existed throughout it (at least once).
///   Each call looks at every key once (O(keys)), which suits an embedded store, not a
///   huge one.
/// - **Raw commands**: `PING`, `ECHO`, `FLUSHDB`, `FLUSHALL`, `DBSIZE`, `TYPE`, `INCR`,
///   `DECR`, `INCRBY`, `DECRBY`, `GET`, `DEL`, `EXISTS`, `PERSIST`, `HLEN`, `HMGET`,
///   `APPEND`, `STRLEN`, `GETRANGE`, `SETRANGE`, `BITFIELD`, `EXPIRE`/`PEXPIRE` with `NX`, `XX`, `GT` or `LT`,
///   `ZRANGEBYLEX`, `ZREVRANGEBYLEX` and `ZLEXCOUNT`; anything else is Redis's
///   `ERR unknown command` error.
/// - **Floats.** Redis adds `HINCRBYFLOAT` in `long double`; here whole-number results
///   stay exact (as there) and the rest use `f64`, so a fractional sum beyond 2^53 can be
///   stored with different trailing digits than Redis would store.
/// - **Concurrency.** One mutex guards the whole keyspace and is never held across an
///   `.await`; the backend is cheap to clone and clones share the store.
#[derive(Clone, Debug, Default)]
pub struct InMemoryBackend {
    state: Arc<Mutex<State>>,
}

impl InMemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking native script cannot leave the keyspace half-updated in a way that
        // breaks its invariants, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers `script` as the native twin of the Lua `source`; returns its SHA1 (what
    /// `SCRIPT LOAD` of `source` returns). Registering does not load it: like Redis,
    /// `EVALSHA` answers `NOSCRIPT` until `SCRIPT LOAD` or `EVAL` of the source ran.
    /// Registering the same source again replaces the twin.
    pub fn register_script(&self, source: &str, script: NativeScript) -> String {
        let sha = script_sha1(source);
        self.lock().scripts.register(sha.clone(), script);
        sha
    }

    /// Runs one command synchronously (what [`KvBackend::execute`] does, without a future).
    pub fn execute_now(&self, cmd: Command) -> Result<Value, BackendError> {
        let now = Instant::now();
        self.lock().run(cmd, now)
    }

    /// Number of live keys (`DBSIZE`). Expired keys are removed first.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock().keys.live_len(now)
    }

    /// Whether no live key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every key (`FLUSHDB`). Loaded scripts and native twins stay, as in Redis.
    pub fn flush(&self) {
        self.lock().keys.clear();
    }
}

#[async_trait]
impl KvBackend for InMemoryBackend {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        self.execute_now(cmd)
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        resilience_core::backend::check_batch(&cmds, atomic)?;
        let now = Instant::now();
        let mut state = self.lock();
        if atomic && cmds.iter().any(|c| exec::queue_time_error(c).is_some()) {
            // Redis answered the bad command itself at queue time; EXEC then says only this.
            return Err(BackendError::from_reply(
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        let mut replies = Vec::with_capacity(cmds.len());
        let mut first_error = None;
        for cmd in cmds {
            match state.run(cmd, now) {
                Ok(v) => replies.push(v),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(replies),
        }
    }

    async fn open_pubsub(
        &self,
        subscriptions: &[resilience_core::Subscription],
    ) -> Result<Box<dyn resilience_core::PubSubLink>, BackendError> {
        Ok(Box::new(self.lock().keys.channels.subscribe(subscriptions)))
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use resilience_core::{ErrorKind, SetCondition, SetOptions, ZaddOptions};

    fn set(key: &str, value: &str, expire_ms: Option<u64>) -> Command {
        Command::Set {
            key: key.into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
            options: match expire_ms {
                Some(ms) => SetOptions::default().with_expire_ms(ms),
                None => SetOptions::default(),
            },
        }
    }

    fn get(key: &str) -> Command {
        Command::Get { key: key.into() }
    }

    fn raw(args: &[&str]) -> Command {
        Command::Raw {
            args: args
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect(),
            keys: vec![],
            write: true,
            idempotent: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keys_expire_on_the_paused_clock() {
        let b = InMemoryBackend::new();
        b.execute(set("k", "v", Some(1_000))).await.unwrap();
        assert_eq!(
            b.execute(Command::Pttl { key: "k".into() }).await.unwrap(),
            Value::Int(1_000)
        );
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(
            b.execute(Command::Pttl { key: "k".into() }).await.unwrap(),
            Value::Int(600)
        );
        assert_eq!(
            b.execute(Command::Ttl { key: "k".into() }).await.unwrap(),
            Value::Int(1)
        );
        tokio::time::advance(Duration::from_millis(599)).await;
        assert_eq!(b.execute(get("k")).await.unwrap(), Value::Bytes("v".into()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.execute(get("k")).await.unwrap(), Value::Nil);
        assert_eq!(
            b.execute(Command::Ttl { key: "k".into() }).await.unwrap(),
            Value::Int(-2)
        );
        assert!(b.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn expire_rearms_set_clears_and_incr_keeps_the_ttl() {
        let b = InMemoryBackend::new();
        b.execute(set("n", "1", Some(100))).await.unwrap();
        b.execute(Command::Incrby {
            key: "n".into(),
            delta: 1,
        })
        .await
        .unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(b.execute(get("n")).await.unwrap(), Value::Nil);

        b.execute(set("k", "v", None)).await.unwrap();
        assert_eq!(
            b.execute(Command::Expire {
                key: "k".into(),
                seconds: 10,
                condition: None,
            })
            .await
            .unwrap(),
            Value::Int(1)
        );
        b.execute(set("k", "v2", None)).await.unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            b.execute(get("k")).await.unwrap(),
            Value::Bytes("v2".into())
        );
        assert_eq!(
            b.execute(Command::Pexpire {
                key: "k".into(),
                millis: -5,
                condition: None,
            })
            .await
            .unwrap(),
            Value::Int(1)
        );
        assert_eq!(b.execute(get("k")).await.unwrap(), Value::Nil);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_sweep_expired_keys_nobody_reads() {
        let b = InMemoryBackend::new();
        for i in 0..40 {
            b.execute(set(&format!("tmp{i}"), "v", Some(10)))
                .await
                .unwrap();
        }
        tokio::time::advance(Duration::from_millis(10)).await;
        // Each write removes up to SWEEP_PER_WRITE expired keys without touching them.
        b.execute(set("live", "v", None)).await.unwrap();
        b.execute(set("live", "v", None)).await.unwrap();
        let stored = b.lock().keys.iter().count();
        assert_eq!(stored, 40 + 1 - 2 * SWEEP_PER_WRITE);
        assert_eq!(b.len(), 1);
    }

    #[tokio::test]
    async fn set_conditions_and_invalid_ttls() {
        let b = InMemoryBackend::new();
        let nx = Command::Set {
            key: "k".into(),
            value: "v".into(),
            options: SetOptions::default()
                .with_expire_ms(50_000)
                .with_condition(SetCondition::IfNotExists),
        };
        assert_eq!(b.execute(nx.clone()).await.unwrap(), Value::Okay);
        assert_eq!(b.execute(nx).await.unwrap(), Value::Nil);
        // A zero TTL cannot be typed (`SetOptions` holds a non-zero one); spelled out, it is
        // Redis's error.
        let e = b
            .execute(raw(&["SET", "k", "v", "PX", "0"]))
            .await
            .unwrap_err();
        assert_eq!(e.message(), "ERR invalid expire time in 'set' command");
        let e = b
            .execute(Command::Expire {
                key: "k".into(),
                seconds: i64::MAX,
                condition: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.message(), "ERR invalid expire time in 'expire' command");
    }

    #[tokio::test]
    async fn errors_carry_redis_codes_and_lines() {
        let b = InMemoryBackend::new();
        b.execute(set("s", "abc", None)).await.unwrap();
        let e = b
            .execute(Command::Hget {
                key: "s".into(),
                field: "f".into(),
            })
            .await
            .unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::Server, Some("WRONGTYPE")));
        let e = b
            .execute(Command::Incrby {
                key: "s".into(),
                delta: 1,
            })
            .await
            .unwrap_err();
        assert_eq!(e.message(), "ERR value is not an integer or out of range");
        let e = b
            .execute(Command::Zadd {
                key: "z".into(),
                members: vec![(1.0, "a".into())],
                options: ZaddOptions::default().with_condition(SetCondition::IfExists),
            })
            .await;
        assert_eq!(e.unwrap(), Value::Int(0));
        let e = b
            .execute(Command::Zadd {
                key: "z".into(),
                members: vec![(f64::NAN, "a".into())],
                options: ZaddOptions::default(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.message(), "ERR value is not a valid float");
        let e = b.execute(raw(&["NOSUCH", "l", "x"])).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(e.message().starts_with("ERR unknown command 'NOSUCH'"));
        let e = b.execute(Command::Del { keys: vec![] }).await.unwrap_err();
        assert_eq!(
            e.message(),
            "ERR wrong number of arguments for 'del' command"
        );
    }

    #[tokio::test]
    async fn blocking_and_consumer_group_commands_are_refused_by_name() {
        let b = InMemoryBackend::new();
        for (line, name) in [
            ("BLPOP l 1", "BLPOP"),
            ("BLMOVE a b LEFT LEFT 1", "BLMOVE"),
            ("XREAD BLOCK 10 STREAMS s $", "XREAD"),
            ("XGROUP CREATE s g $ MKSTREAM", "XGROUP CREATE"),
            ("XREADGROUP GROUP g c STREAMS s >", "XREADGROUP"),
            ("XACK s g 1-1", "XACK"),
        ] {
            let args: Vec<Bytes> = line.split(' ').map(|w| Bytes::from(w.to_owned())).collect();
            let cmd = Command::from_args(&args).unwrap();
            let e = b.execute(cmd).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{line}");
            assert!(e.message().starts_with(name), "{line}: {e}");
        }
        assert_eq!(b.execute(raw(&["DBSIZE"])).await.unwrap(), Value::Int(0));
    }

    #[tokio::test]
    async fn raw_commands() {
        let b = InMemoryBackend::new();
        assert_eq!(
            b.execute(raw(&["ping"])).await.unwrap(),
            Value::Status("PONG".into())
        );
        assert_eq!(
            b.execute(raw(&["PING", "hi"])).await.unwrap(),
            Value::Bytes("hi".into())
        );
        assert_eq!(b.execute(raw(&["incr", "n"])).await.unwrap(), Value::Int(1));
        assert_eq!(
            b.execute(raw(&["DECRBY", "n", "5"])).await.unwrap(),
            Value::Int(-4)
        );
        assert_eq!(
            b.execute(raw(&["TYPE", "n"])).await.unwrap(),
            Value::Status("string".into())
        );
        assert_eq!(
            b.execute(raw(&["TYPE", "x"])).await.unwrap(),
            Value::Status("none".into())
        );
        assert_eq!(b.execute(raw(&["DBSIZE"])).await.unwrap(), Value::Int(1));
        assert_eq!(b.execute(raw(&["FLUSHDB"])).await.unwrap(), Value::Okay);
        assert!(b.is_empty());
    }

    #[tokio::test]
    async fn atomic_batches_abort_on_queue_errors_and_apply_the_rest_on_runtime_errors() {
        let b = InMemoryBackend::new();
        let e = b
            .execute_batch(vec![set("a", "1", None), raw(&["INCR"])], true)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("EXECABORT"));
        assert!(b.is_empty(), "a discarded transaction applies nothing");
        let e = b
            .execute_batch(
                vec![
                    set("s", "x", None),
                    Command::Incrby {
                        key: "s".into(),
                        delta: 1,
                    },
                    set("t", "y", None),
                ],
                true,
            )
            .await
            .unwrap_err();
        assert_eq!(e.message(), "ERR value is not an integer or out of range");
        assert_eq!(b.execute(get("t")).await.unwrap(), Value::Bytes("y".into()));
    }

    #[tokio::test]
    async fn native_scripts_follow_eval_and_evalsha_rules() {
        let b = InMemoryBackend::new();
        let src = "return redis.call('INCRBY', KEYS[1], 2)";
        let twin: NativeScript = Arc::new(|ctx, keys, _args| {
            ctx.call(Command::Incrby {
                key: keys[0].clone(),
                delta: 2,
            })
        });
        let sha = b.register_script(src, twin);
        let evalsha = Command::Evalsha {
            sha1: sha.to_ascii_uppercase(),
            keys: vec!["n".into()],
            args: vec![],
            idempotent: false,
        };
        let e = b.execute(evalsha.clone()).await.unwrap_err();
        assert!(e.is_noscript());
        assert_eq!(
            b.execute(Command::ScriptLoad { script: src.into() })
                .await
                .unwrap(),
            Value::Bytes(sha.clone().into())
        );
        assert_eq!(b.execute(evalsha).await.unwrap(), Value::Int(2));
        let eval = Command::Eval {
            script: src.into(),
            keys: vec!["n".into()],
            args: vec![],
        };
        assert_eq!(b.execute(eval).await.unwrap(), Value::Int(4));
        #[cfg(not(feature = "lua"))]
        {
            let e = b
                .execute(Command::Eval {
                    script: "return 1".into(),
                    keys: vec![],
                    args: vec![],
                })
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Server);
            assert!(
                e.message()
                    .contains("not supported by the in-memory backend")
            );
        }
    }

    #[cfg(feature = "lua")]
    mod lua {
        use super::*;

        fn eval(script: &str, keys: &[&str], args: &[&str]) -> Command {
            Command::Eval {
                script: script.into(),
                keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                args: args
                    .iter()
                    .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                    .collect(),
            }
        }

        #[tokio::test]
        async fn a_script_runs_its_own_source_and_is_cached_by_sha() {
            let b = InMemoryBackend::new();
            let src = "redis.call('HSET', KEYS[1], 'f', ARGV[1]) \
                       return redis.call('HINCRBY', KEYS[1], 'f', 2)";
            assert_eq!(
                b.execute(eval(src, &["h"], &["40"])).await.unwrap(),
                Value::Int(42)
            );
            let sha = resilience_core::script_sha1(src);
            let again = Command::Evalsha {
                sha1: sha,
                keys: vec!["h".into()],
                args: vec![Bytes::from_static(b"1")],
                idempotent: false,
            };
            assert_eq!(b.execute(again).await.unwrap(), Value::Int(3));
        }

        #[tokio::test]
        async fn replies_convert_both_ways_as_redis_converts_them() {
            let b = InMemoryBackend::new();
            b.execute(Command::Zadd {
                key: "z".into(),
                members: vec![(1.5, "m".into())],
                options: ZaddOptions::default(),
            })
            .await
            .unwrap();
            let src = "return {1, 'two', false, redis.call('ZSCORE', KEYS[1], 'm'), \
                       redis.call('GET', KEYS[2]), 3.9, \
                       redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES')}";
            let got = b
                .execute(eval(src, &["z", "missing"], &["2"]))
                .await
                .unwrap();
            assert_eq!(
                got,
                Value::Array(vec![
                    Value::Int(1),
                    Value::Bytes(Bytes::from_static(b"two")),
                    Value::Nil,
                    Value::Bytes(Bytes::from_static(b"1.5")),
                    Value::Nil,
                    Value::Int(3),
                    Value::Array(vec![
                        Value::Bytes(Bytes::from_static(b"m")),
                        Value::Bytes(Bytes::from_static(b"1.5")),
                    ]),
                ])
            );
            let status = b
                .execute(eval("return redis.call('SET', KEYS[1], 'v')", &["k"], &[]))
                .await
                .unwrap();
            assert_eq!(status, Value::Status("OK".into()));
        }

        #[tokio::test]
        async fn a_key_not_passed_in_keys_is_refused_by_name() {
            let b = InMemoryBackend::new();
            for src in [
                "return redis.call('SET', 'built' .. ARGV[1], 'v')",
                "return redis.call('BITFIELD', 'built' .. ARGV[1], 'GET', 'u8', 0)",
                "return redis.call('DEL', KEYS[1], 'built' .. ARGV[1])",
            ] {
                let e = b.execute(eval(src, &["k"], &["1"])).await.unwrap_err();
                assert!(e.message().contains("'built1'"), "{src}: {e}");
            }
            assert_eq!(
                b.execute(raw(&["EXISTS", "built1"])).await.unwrap(),
                Value::Int(0),
                "nothing was written"
            );
            let ok = "return redis.call('GETRANGE', KEYS[1], 0, -1)";
            assert!(b.execute(eval(ok, &["k"], &[])).await.is_ok());
        }

        #[tokio::test]
        async fn errors_keep_their_code() {
            let b = InMemoryBackend::new();
            b.execute(Command::Set {
                key: "s".into(),
                value: Bytes::from_static(b"x"),
                options: SetOptions::default(),
            })
            .await
            .unwrap();
            let e = b
                .execute(eval("return redis.call('HGET', KEYS[1], 'f')", &["s"], &[]))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Some("WRONGTYPE"), "{e}");
            let caught = b
                .execute(eval(
                    "local r = redis.pcall('HGET', KEYS[1], 'f') return r.err ~= nil",
                    &["s"],
                    &[],
                ))
                .await
                .unwrap();
            assert_eq!(caught, Value::Int(1));
            let own = b
                .execute(eval("return redis.error_reply('NOPE not here')", &[], &[]))
                .await
                .unwrap_err();
            assert_eq!(own.code(), Some("NOPE"), "{own}");
            for bad in ["error('boom')", "return (", "return os.time()"] {
                let e = b.execute(eval(bad, &[], &[])).await.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Server, "{bad}: {e}");
                assert!(e.message().starts_with("ERR "), "{bad}: {e}");
            }
        }
    }

    #[tokio::test]
    async fn scan_survives_concurrent_changes() {
        let b = InMemoryBackend::new();
        for i in 0..100 {
            b.execute(set(&format!("k{i}"), "v", None)).await.unwrap();
        }
        let mut cursor = 0;
        let mut seen = std::collections::HashSet::new();
        let mut round = 0;
        loop {
            let reply = b
                .execute(Command::Scan {
                    cursor,
                    pattern: Some("k*".into()),
                    count: Some(7),
                    type_name: None,
                })
                .await
                .unwrap();
            let Value::Array(parts) = reply else {
                panic!("shape")
            };
            let (Value::Int(next), Value::Array(keys)) = (&parts[0], &parts[1]) else {
                panic!("shape")
            };
            for k in keys {
                let Value::Bytes(k) = k else { panic!("shape") };
                seen.insert(String::from_utf8(k.to_vec()).unwrap());
            }
            // Churn: add and remove other keys while iterating.
            round += 1;
            b.execute(set(&format!("new{round}"), "v", None))
                .await
                .unwrap();
            b.execute(Command::Del {
                keys: vec![format!("new{}", round - 1)],
            })
            .await
            .unwrap();
            cursor = u64::try_from(*next).unwrap();
            if cursor == 0 {
                break;
            }
        }
        for i in 0..100 {
            assert!(seen.contains(&format!("k{i}")), "k{i} missed");
        }
        assert!(seen.iter().all(|k| k.starts_with('k')));
    }

    #[tokio::test]
    async fn clones_share_the_store_and_hgetall_keeps_insertion_order() {
        let a = InMemoryBackend::new();
        let b = a.clone();
        a.execute(Command::Hset {
            key: "h".into(),
            fields: vec![
                ("z".into(), "1".into()),
                ("a".into(), "2".into()),
                ("m".into(), "3".into()),
            ],
        })
        .await
        .unwrap();
        let all = b
            .execute(Command::Hgetall { key: "h".into() })
            .await
            .unwrap();
        let fields: Vec<Value> = match all {
            Value::Map(pairs) => pairs.into_iter().map(|(f, _)| f).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            fields,
            vec![Value::from("z"), Value::from("a"), Value::from("m")]
        );
        assert_eq!(b.name(), "memory");
    }

    #[tokio::test]
    async fn hincrbyfloat_keeps_whole_numbers_exact_like_redis_long_doubles() {
        let b = InMemoryBackend::new();
        b.execute(Command::Hset {
            key: "h".into(),
            fields: vec![("f".into(), Bytes::from(i64::MAX.to_string()))],
        })
        .await
        .unwrap();
        let incr = |delta| Command::Hincrbyfloat {
            key: "h".into(),
            field: "f".into(),
            delta,
        };
        let hget = Command::Hget {
            key: "h".into(),
            field: "f".into(),
        };
        // What Redis 7 stores: 9223372036854775808, then 9223372036854775805.
        b.execute(incr(1.0)).await.unwrap();
        assert_eq!(
            b.execute(hget.clone()).await.unwrap(),
            Value::Bytes("9223372036854775808".into())
        );
        b.execute(incr(-3.0)).await.unwrap();
        assert_eq!(
            b.execute(hget.clone()).await.unwrap(),
            Value::Bytes("9223372036854775805".into())
        );
        assert_eq!(
            b.execute(incr(0.25)).await.unwrap(),
            Value::Double(9_223_372_036_854_775_805.0 + 0.25)
        );
    }
}
