//! Scripts on the in-memory backend, and native twins of them.
//!
//! With feature `lua` the backend runs a script's own Lua source. Without it, or to stand
//! in for a script with Rust, code registers a closure that does the same thing under the
//! script's source; `EVAL` of that source and `EVALSHA` of its SHA1 then run the closure.
//! Like Lua in Redis, the closure runs atomically: [`ScriptContext::call`] executes
//! commands synchronously inside the same critical section, so nothing else interleaves.
//!
//! ```
//! use std::sync::Arc;
//! use resilience_core::{Command, Value};
//! use backend_memory::{InMemoryBackend, NativeScript, ScriptContext};
//!
//! const LUA: &str = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
//! let backend = InMemoryBackend::new();
//! let twin: NativeScript = Arc::new(|ctx: &mut ScriptContext<'_>, keys: &[String], args: &[bytes::Bytes]| {
//!     let delta = std::str::from_utf8(&args[0]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
//!     ctx.call(Command::Incrby { key: keys[0].clone(), delta })
//! });
//! let sha = backend.register_script(LUA, twin);
//! assert_eq!(sha, resilience_core::script_sha1(LUA));
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use resilience_core::script_sha1;
use tokio::time::Instant;

use super::context::ScriptContext;
use super::store::Keyspace;
use resilience_core::{BackendError, Value};

/// A native script: given the context, `KEYS` and `ARGV`, returns the script's reply.
///
/// Return the [`Value`] the Lua script would return after Redis's Lua-to-RESP conversion
/// (numbers as `Int`, tables as `Array`, `false` as `Nil`). An `Err` is the script's error;
/// commands it already ran stay applied, as in Redis.
///
/// The closure runs while the backend's lock is held: it must reach data only through the
/// [`ScriptContext`], never by calling the backend itself (that would deadlock), and it
/// should be quick, as a Lua script should.
pub type NativeScript = Arc<
    dyn Fn(&mut ScriptContext<'_>, &[String], &[Bytes]) -> Result<Value, BackendError>
        + Send
        + Sync,
>;

/// Registered native twins, the scripts the "server" has loaded (by SHA1, with their
/// source), and, with feature `lua`, the Lua state that runs them.
#[derive(Default)]
pub(crate) struct Scripts {
    native: HashMap<String, NativeScript>,
    loaded: HashMap<String, Arc<str>>,
    #[cfg(feature = "lua")]
    lua: Option<super::lua::LuaEngine>,
}

impl std::fmt::Debug for Scripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripts")
            .field("native", &self.native.len())
            .field("loaded", &self.loaded.len())
            .finish()
    }
}

#[cfg(not(feature = "lua"))]
fn unsupported(sha: &str) -> BackendError {
    BackendError::from_reply(&format!(
        "ERR scripting is not supported by the in-memory backend for script {sha}: \
         enable resilience-core's feature `lua`, or register a native twin with \
         InMemoryBackend::register_script"
    ))
}

impl Scripts {
    pub(crate) fn register(&mut self, sha: String, script: NativeScript) {
        self.native.insert(sha, script);
    }

    /// `SCRIPT LOAD`: marks the script loaded, returns its SHA.
    pub(crate) fn load(&mut self, source: &str) -> String {
        let sha = script_sha1(source);
        self.loaded
            .entry(sha.clone())
            .or_insert_with(|| Arc::from(source));
        sha
    }

    /// `EVAL`: loads the script (as Redis caches it), then runs its native twin.
    pub(crate) fn eval(
        &mut self,
        keyspace: &mut Keyspace,
        source: &str,
        keys: &[String],
        args: &[Bytes],
        now: Instant,
    ) -> Result<Value, BackendError> {
        let sha = self.load(source);
        self.run(keyspace, &sha, keys, args, now)
    }

    /// `EVALSHA`: `NOSCRIPT` unless loaded, then runs the native twin.
    pub(crate) fn evalsha(
        &mut self,
        keyspace: &mut Keyspace,
        sha: &str,
        keys: &[String],
        args: &[Bytes],
        now: Instant,
    ) -> Result<Value, BackendError> {
        let sha = sha.to_ascii_lowercase();
        if !self.loaded.contains_key(&sha) {
            return Err(BackendError::from_reply(
                "NOSCRIPT No matching script. Please use EVAL.",
            ));
        }
        self.run(keyspace, &sha, keys, args, now)
    }

    /// Runs a loaded script: its native twin if one is registered, else (feature `lua`)
    /// its Lua source.
    fn run(
        &mut self,
        keyspace: &mut Keyspace,
        sha: &str,
        keys: &[String],
        args: &[Bytes],
        now: Instant,
    ) -> Result<Value, BackendError> {
        let mut ctx = ScriptContext::new(keyspace, now);
        if let Some(script) = self.native.get(sha) {
            return script(&mut ctx, keys, args);
        }
        #[cfg(feature = "lua")]
        {
            let source = self
                .loaded
                .get(sha)
                .cloned()
                .unwrap_or_else(|| Arc::from(""));
            let engine = match &mut self.lua {
                Some(engine) => engine,
                slot => slot.insert(super::lua::LuaEngine::new()?),
            };
            engine.run(sha, &source, &mut ctx, keys, args)
        }
        #[cfg(not(feature = "lua"))]
        Err(unsupported(sha))
    }
}
