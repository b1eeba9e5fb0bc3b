//! [`BackendKind`]: which backend a client runs on, chosen at run time among those the
//! build's features compiled in.

use std::fmt;
use std::str::FromStr;

use resilience_core::Error;

/// Which backend a client runs on.
///
/// The Redis drivers are compiled in by cargo features: `redis-rs` (default) and `fred`.
/// Asking for a driver that was not compiled in is a clear [`Error::InvalidInput`], not a
/// build error in the caller, so one binary can offer every backend it was built with.
/// [`BackendKind::InMemory`] needs no server and no feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// The `redis` crate (feature `redis-rs`, on by default).
    RedisRs,
    /// The `fred` crate (feature `fred`).
    Fred,
    /// The embedded in-memory backend: Redis semantics, no server (`memory://`).
    InMemory,
}

/// The URL scheme of the embedded backend.
pub(crate) const MEMORY_SCHEME: &str = "memory://";

impl BackendKind {
    /// Every kind, in a stable order.
    pub const ALL: [BackendKind; 3] = [
        BackendKind::RedisRs,
        BackendKind::Fred,
        BackendKind::InMemory,
    ];

    /// The name used on command lines and in `KvBackend::name()`: `redis-rs`, `fred`, `memory`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendKind::RedisRs => "redis-rs",
            BackendKind::Fred => "fred",
            BackendKind::InMemory => "memory",
        }
    }

    /// Whether this build can connect with it.
    pub const fn is_available(self) -> bool {
        match self {
            BackendKind::RedisRs => cfg!(feature = "redis-rs"),
            BackendKind::Fred => cfg!(feature = "fred"),
            BackendKind::InMemory => true,
        }
    }

    /// The Redis driver kinds compiled into this build.
    pub fn compiled_drivers() -> Vec<BackendKind> {
        [BackendKind::RedisRs, BackendKind::Fred]
            .into_iter()
            .filter(|k| k.is_available())
            .collect()
    }

    /// The kind a URL asks for: the embedded backend for `memory://`, else the default
    /// driver ([`BackendKind::default`]).
    pub fn for_url(url: &str) -> BackendKind {
        if is_memory_url(url) {
            BackendKind::InMemory
        } else {
            BackendKind::default()
        }
    }
}

/// Whether `url` names the embedded backend.
pub(crate) fn is_memory_url(url: &str) -> bool {
    url.get(..MEMORY_SCHEME.len())
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(MEMORY_SCHEME))
}

impl Default for BackendKind {
    /// `redis-rs` when compiled in, else `fred`, else the in-memory backend.
    fn default() -> Self {
        if cfg!(feature = "redis-rs") {
            BackendKind::RedisRs
        } else if cfg!(feature = "fred") {
            BackendKind::Fred
        } else {
            BackendKind::InMemory
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    /// Parses `redis-rs` (or `redis`), `fred`, `memory` (or `in-memory`).
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "redis-rs" | "redis" | "redisrs" => Ok(BackendKind::RedisRs),
            "fred" => Ok(BackendKind::Fred),
            "memory" | "in-memory" | "inmemory" => Ok(BackendKind::InMemory),
            other => Err(Error::InvalidInput(format!(
                "unknown backend {other:?}: expected redis-rs, fred or memory"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_print() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.as_str().parse::<BackendKind>().ok(), Some(kind));
        }
        assert!(matches!(
            "mysql".parse::<BackendKind>(),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn the_url_picks_the_embedded_backend_or_the_default_driver() {
        assert_eq!(BackendKind::for_url("memory://"), BackendKind::InMemory);
        assert_eq!(BackendKind::for_url("MEMORY://"), BackendKind::InMemory);
        for url in [
            "redis://h:6379",
            "rediss://h",
            "redis+sentinel://s:26379/m",
            "mem",
        ] {
            assert_eq!(BackendKind::for_url(url), BackendKind::default(), "{url}");
        }
    }
}
