//! The tiers' server-side scripts: Lua for Redis, with native twins for the in-memory
//! backend.
//!
//! Every operation that touches an entry and its indexes is one script, so it is atomic on
//! Redis (a script runs alone) and on [`InMemoryBackend`] (a native twin runs inside the
//! backend's lock). Scripts are sent by SHA1 (`EVALSHA`); the [`ResilientClient`] they are
//! registered with reloads them when the server answers `NOSCRIPT`, also when replaying
//! queued writes.
//!
//! Use [`register_natives`] on any [`InMemoryBackend`] the tiers run on (the STM, IM or
//! fallback store); [`crate::connect_in_memory`] does it for you.
//!
//! [`ResilientClient`]: resilience_core::ResilientClient

use std::sync::Arc;

use resilience_core::{InMemoryBackend, NativeScript, Script};

pub(crate) mod lua;
pub(crate) use lua::QUERY_FIELDS;
mod native;

/// The scripts, as [`Script`]s (with their SHA1s).
#[derive(Clone, Debug)]
pub(crate) struct ScriptSet {
    pub(crate) write: Script,
    pub(crate) get: Script,
    pub(crate) query: Script,
    pub(crate) count: Script,
    pub(crate) delete: Script,
    pub(crate) clear: Script,
    pub(crate) importance: Script,
}

impl ScriptSet {
    pub(crate) fn new() -> Self {
        ScriptSet {
            // Same fields, same scores, same TTL: running it twice is running it once.
            write: Script::new(lua::WRITE).idempotent(true),
            // Bumps a counter: not idempotent.
            get: Script::new(lua::GET),
            query: Script::new(lua::QUERY),
            count: Script::new(lua::COUNT).idempotent(true),
            delete: Script::new(lua::DELETE).idempotent(true),
            clear: Script::new(lua::CLEAR).idempotent(true),
            importance: Script::new(lua::IMPORTANCE),
        }
    }

    pub(crate) fn all(&self) -> [&Script; 7] {
        [
            &self.write,
            &self.get,
            &self.query,
            &self.count,
            &self.delete,
            &self.clear,
            &self.importance,
        ]
    }
}

/// Every Lua source with its native twin.
fn twins() -> Vec<(&'static str, NativeScript)> {
    vec![
        (lua::WRITE, Arc::new(native::write) as NativeScript),
        (lua::GET, Arc::new(native::get)),
        (lua::QUERY, Arc::new(native::query)),
        (lua::COUNT, Arc::new(native::count)),
        (lua::DELETE, Arc::new(native::delete)),
        (lua::CLEAR, Arc::new(native::clear)),
        (lua::IMPORTANCE, Arc::new(native::importance)),
    ]
}

/// Registers the native twins of every tier script on `backend`, so tiers (and the
/// fallback) can run on it. Idempotent.
pub fn register_natives(backend: &InMemoryBackend) {
    for (source, twin) in twins() {
        backend.register_script(source, twin);
    }
}

/// The Lua sources with their names, for tooling and for checking them on a real server.
pub fn lua_sources() -> [(&'static str, &'static str); 7] {
    [
        ("write", lua::WRITE),
        ("get", lua::GET),
        ("query", lua::QUERY),
        ("count", lua::COUNT),
        ("delete", lua::DELETE),
        ("clear", lua::CLEAR),
        ("importance", lua::IMPORTANCE),
    ]
}
