//! The tiers' server-side scripts, in Lua: only the rare operations that must read a key
//! before changing it (delete by id, importance, compacting a vector block). Writes, reads, queries,
//! counts, clears and cleanup are plain commands (`MULTI`/`EXEC` where they must be
//! atomic), which cost the server far less than a script's `redis.call`s.
//!
//! A script is atomic on Redis (it runs alone) and on the
//! [`InMemoryBackend`](backend_memory::InMemoryBackend), which runs the same Lua source
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
    pub(crate) compact_vectors: Script,
}

impl ScriptSet {
    pub(crate) fn new() -> Self {
        ScriptSet {
            delete: Script::new(lua::DELETE).idempotent(true),
            // A compare-and-set that succeeded answers 0 when sent again, and the caller
            // would then add its delta twice: never resent after a timeout.
            importance: Script::new(lua::IMPORTANCE),
            // Replaces a block only while its generation is the one read: a resend finds
            // the next generation and changes nothing.
            compact_vectors: Script::new(lua::COMPACT_VECTORS).idempotent(true),
        }
    }

    pub(crate) fn all(&self) -> [&Script; 3] {
        [&self.delete, &self.importance, &self.compact_vectors]
    }
}

/// The Lua sources with their names, for tooling and for checking them on a real server.
pub fn lua_sources() -> [(&'static str, &'static str); 3] {
    [
        ("delete", lua::DELETE),
        ("importance", lua::IMPORTANCE),
        ("compact_vectors", lua::COMPACT_VECTORS),
    ]
}
