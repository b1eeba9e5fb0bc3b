//! The tiers' server-side scripts, in Lua.
//!
//! Every operation that touches an entry and its indexes is one script, so it is atomic on
//! Redis (a script runs alone) and on the
//! [`InMemoryBackend`](resilience_core::InMemoryBackend), which runs the same Lua source
//! inside its lock (resilience-core's feature `lua`): one source per operation, whatever
//! the store. Scripts are sent by SHA1 (`EVALSHA`); the [`ResilientClient`] they are
//! registered with reloads them when the server answers `NOSCRIPT`, also when replaying
//! queued writes.
//!
//! [`ResilientClient`]: resilience_core::ResilientClient

use resilience_core::Script;

pub(crate) mod lua;
pub(crate) use lua::QUERY_FIELDS;

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
