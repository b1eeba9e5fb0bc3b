//! [`InMemoryBackend`]: Redis semantics with no server.
//!
//! A real [`KvBackend`] that keeps strings, hashes and sorted sets in process memory and
//! answers every [`Command`] with the same canonical reply, and the same error line, that
//! real Redis 7 gives. It is the embedded default the examples run on, the local fallback
//! tier, and it passes the same conformance suite (`testkit::conformance`) as the Redis
//! backends.
//!
//! ```
//! use resilience_core::{Command, KvBackend, SetOptions, Value};
//! use resilience_core::memory::InMemoryBackend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), resilience_core::BackendError> {
//! let backend = InMemoryBackend::new();
//! backend
//!     .execute(Command::Set { key: "k".into(), value: "v".into(), options: SetOptions::default() })
//!     .await?;
//! let got = backend.execute(Command::Get { key: "k".into() }).await?;
//! assert_eq!(got, Value::Bytes("v".into()));
//! # Ok(())
//! # }
//! ```
//!
//! # How it behaves
//!
//! - **Types.** Each key holds a string, a hash or a sorted set. A command against a key of
//!   another type fails with `WRONGTYPE` exactly where Redis does (`MGET` returns `Nil` for
//!   such a key, `SET` replaces any type). A hash or sorted set that becomes empty is deleted.
//! - **Sorted sets** order by score, then by the member's bytes; `-0` equals `0`.
//! - **Expiry** runs on [`tokio::time::Instant`], so tests can drive it with a paused
//!   clock. An expired key disappears the moment anything looks at it; writes also remove a
//!   few already-expired keys each, so memory does not grow with keys nobody reads again.
//!   No background task is needed.
//! - **Scripts.** Lua cannot run here: register a native twin of each script with
//!   [`InMemoryBackend::register_script`] (see [`scripts`]). `EVAL` of a registered source
//!   runs the twin; `EVALSHA` runs it once the script was loaded (`SCRIPT LOAD` or `EVAL`),
//!   and fails with `NOSCRIPT` before, as Redis does. Any other script is a `Server` error.
//! - **Batches.** [`KvBackend::execute_batch`] runs all commands under one lock
//!   acquisition, so nothing interleaves. With `atomic`, it first checks what Redis checks
//!   when queueing inside `MULTI` (unknown raw command, wrong number of arguments); any such
//!   error discards the whole batch with `EXECABORT` and applies nothing. Otherwise every
//!   command is applied, in order, even after one fails (a runtime error inside `EXEC` or a
//!   pipeline does not undo or skip the others in Redis either), and the call returns the
//!   first error, or all replies.
//! - **SCAN** walks keys in the order of a fixed hash; the cursor is the next hash to look
//!   at. A full iteration returns every key that existed throughout it (at least once).
//! - **Raw commands**: `PING`, `ECHO`, `FLUSHDB`, `FLUSHALL`, `DBSIZE`, `TYPE`, `INCR`,
//!   `DECR`, `INCRBY`, `DECRBY`, `GET`, `DEL`, `EXISTS`, `PERSIST`, `HLEN`; anything else is
//!   Redis's `ERR unknown command` error.
//! - **Concurrency.** One mutex guards the whole keyspace and is never held across an
//!   `.await`; the backend is cheap to clone and clones share the store.

mod exec;
mod glob;
pub mod scripts;
mod store;
mod zset;

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::time::Instant;

pub use scripts::{NativeScript, ScriptContext, script_sha1};

use crate::{BackendError, Command, KvBackend, Value};
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

/// An in-process store with Redis semantics; see the [module docs](self).
///
/// Cloning is cheap and clones share the same data.
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
        let now = Instant::now();
        let mut state = self.lock();
        if atomic && let Some(e) = cmds.iter().find_map(exec::queue_time_error) {
            return Err(BackendError::from_reply(&format!(
                "EXECABORT Transaction discarded because of previous errors: {}",
                e.message()
            )));
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

    fn name(&self) -> &'static str {
        "memory"
    }
}
