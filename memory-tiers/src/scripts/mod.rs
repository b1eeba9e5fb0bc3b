//! The tiers' server-side scripts, in Lua: only the rare operations that must read an
//! entry before changing its index (delete by id, importance). Writes, reads, queries,
//! counts, clears and cleanup are plain commands (`MULTI`/`EXEC` where they must be
//! atomic), which cost the server far less than a script's `redis.call`s.
//!
//! A script is atomic on Redis (it runs alone) and on the
//! [`InMemoryBackend`](resilience_core::InMemoryBackend), which runs the same Lua source
//! inside its lock (resilience-core's feature `lua`): one source per operation, whatever
//! the store. Scripts are sent by SHA1 (`EVALSHA`); the [`ResilientClient`] reloads them
//! when the server answers `NOSCRIPT`, also when replaying queued writes.
//!
//! [`ResilientClient`]: resilience_core::ResilientClient

use resilience_core::Script;

pub(crate) mod lua;

/// The scripts, as [`Script`]s (with their SHA1s).
#[derive(Clone, Debug)]
pub(crate) struct ScriptSet {
    pub(crate) delete: Script,
    pub(crate) importance: Script,
}

impl ScriptSet {
    pub(crate) fn new() -> Self {
        ScriptSet {
            delete: Script::new(lua::DELETE).idempotent(true),
            // A compare-and-set that succeeded answers 0 when sent again, and the caller
            // would then add its delta twice: never resent after a timeout.
            importance: Script::new(lua::IMPORTANCE),
        }
    }

    pub(crate) fn all(&self) -> [&Script; 2] {
        [&self.delete, &self.importance]
    }
}

/// The Lua sources with their names, for tooling and for checking them on a real server.
pub fn lua_sources() -> [(&'static str, &'static str); 2] {
    [("delete", lua::DELETE), ("importance", lua::IMPORTANCE)]
}
