//! Choosing a backend at run time: [`BackendKind`] and [`connect`].
//!
//! Its guide is in the docs of its main type.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use backend_memory::InMemoryBackend;
use resilience_core::{
    ConnectionConfig, Error, KvBackend, ResilientClient, ResilientClientBuilder,
};

/// An [`InMemoryBackend`] (which runs the tiers' Lua scripts itself), and a
/// [`ResilientClient`] named `name` over it (default settings). No server needed: use it
/// for examples, tests, and as the local fallback tier.
pub fn connect_in_memory(name: &str) -> (ResilientClient, InMemoryBackend) {
    let backend = InMemoryBackend::new();
    let client = ResilientClient::builder(name, backend.clone()).build();
    (client, backend)
}

/// Which backend a client runs on.
///
/// The Redis drivers are compiled in by cargo features: `redis-rs` (default) and `fred`.
/// Asking for a driver that was not compiled in is a clear [`Error::InvalidInput`], not a
/// build error in the caller, so one binary can offer every backend it was built with.
/// [`BackendKind::InMemory`] needs no server and no feature: its backend runs the tiers'
/// Lua scripts itself, like [`connect_in_memory`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The `redis` crate (feature `redis-rs`, on by default).
    RedisRs,
    /// The `fred` crate (feature `fred`).
    Fred,
    /// The embedded in-memory backend: Redis semantics, no server.
    InMemory,
}

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

/// Opens the backend of `kind` (the URL is ignored for the in-memory kind).
pub async fn connect_backend(
    config: &ConnectionConfig,
    kind: BackendKind,
) -> Result<Arc<dyn KvBackend>, Error> {
    match kind {
        BackendKind::InMemory => Ok(Arc::new(InMemoryBackend::new())),
        #[cfg(feature = "redis-rs")]
        BackendKind::RedisRs => Ok(Arc::new(
            backend_redis_rs::RedisRsBackend::connect(config).await?,
        )),
        #[cfg(feature = "fred")]
        BackendKind::Fred => Ok(Arc::new(backend_fred::FredBackend::connect(config).await?)),
        #[allow(unreachable_patterns)]
        other => {
            let _ = config;
            Err(Error::InvalidInput(format!(
                "backend {other} is not compiled into this build: enable the cargo feature `{other}`"
            )))
        }
    }
}

/// Connects to `url` with the backend of `kind` and wraps it in a [`ResilientClient`]
/// named `redis` with the default settings.
pub async fn connect(url: &str, kind: BackendKind) -> Result<ResilientClient, Error> {
    connect_with("redis", url, kind, |builder| builder).await
}

/// Like [`connect`], with a client name and a chance to configure the client.
pub async fn connect_with(
    client_name: &str,
    url: &str,
    kind: BackendKind,
    configure: impl FnOnce(ResilientClientBuilder) -> ResilientClientBuilder,
) -> Result<ResilientClient, Error> {
    let config = if kind == BackendKind::InMemory {
        ConnectionConfig::default()
    } else {
        ConnectionConfig::from_url(url)?
    };
    let backend = connect_backend(&config, kind).await?;
    Ok(configure(ResilientClient::builder_arc(client_name, backend)).build())
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

    #[tokio::test]
    async fn in_memory_needs_no_server() -> Result<(), Error> {
        let client = connect("ignored", BackendKind::InMemory).await?;
        assert_eq!(client.backend_name(), "memory");
        client.ping().await
    }

    #[tokio::test]
    async fn a_driver_not_compiled_in_is_a_clear_error() {
        for kind in [BackendKind::RedisRs, BackendKind::Fred] {
            if !kind.is_available() {
                let err = connect("redis://127.0.0.1:1", kind).await.err();
                assert!(
                    matches!(err, Some(Error::InvalidInput(ref m)) if m.contains("feature")),
                    "{err:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable() {
        // Port 1 on loopback: nothing listens there.
        for kind in BackendKind::compiled_drivers() {
            let err = connect("redis://127.0.0.1:1/?socket_connect_timeout=1", kind)
                .await
                .err();
            assert!(
                matches!(err, Some(Error::Unavailable(_) | Error::Timeout(_))),
                "{kind}: {err:?}"
            );
        }
    }
}
