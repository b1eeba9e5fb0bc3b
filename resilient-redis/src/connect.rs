//! Connecting by URL: [`connect`], [`connect_with`] and [`connect_backend`], the one place
//! where a URL and a [`BackendKind`] become a backend, and a Redis Cluster configuration
//! becomes the cluster router over one connection per node.

use std::sync::Arc;

use backend_memory::InMemoryBackend;
use resilience_core::{
    BackendError, ClusterBackend, ConnectionConfig, Error, ErrorKind, KvBackend, ResilientClient,
    ResilientClientBuilder, SentinelReadBackend,
};

use crate::kind::{BackendKind, MEMORY_SCHEME, is_memory_url};

/// Connects to `url` and wraps the backend in a [`ResilientClient`] named `redis` with the
/// default settings.
///
/// The URL decides the backend: `memory://` is the embedded in-memory backend (no
/// server); `redis://`, `rediss://` (TLS), `redis+sentinel://` and cluster seeds
/// (`redis://h1:p1?cluster=h2:p2,…`) use the default driver ([`BackendKind::default`]:
/// `redis-rs` when its feature is on, else `fred`). The URL's forms and options are
/// [`ConnectionConfig::from_url`]'s.
///
/// # Errors
///
/// [`Error::InvalidInput`] for a URL that does not parse or a build without a driver;
/// otherwise what the connect gave: `Unavailable` (refused, DNS, TLS), `Timeout` (no
/// handshake within `socket_connect_timeout`) or `Auth`.
///
/// # Cancel safety
///
/// Dropping the future before it completes closes whatever connections it opened; nothing
/// was sent on the caller's behalf.
pub async fn connect(url: &str) -> Result<ResilientClient, Error> {
    connect_with("redis", url, BackendKind::for_url(url), |builder| builder).await
}

/// Like [`connect`], with a client name, an explicit backend kind and a chance to
/// configure the client before it is built.
///
/// # Errors
///
/// As [`connect`]; also [`Error::InvalidInput`] when `kind` was not compiled in, when a
/// `memory://` URL is given with a driver kind, or for a setting
/// [`ResilientClientBuilder::build`] refuses.
///
/// # Cancel safety
///
/// As [`connect`].
pub async fn connect_with(
    client_name: &str,
    url: &str,
    kind: BackendKind,
    configure: impl FnOnce(ResilientClientBuilder) -> ResilientClientBuilder,
) -> Result<ResilientClient, Error> {
    let backend = connect_backend_url(url, kind).await?;
    configure(ResilientClient::builder_arc(client_name, backend)).build()
}

/// Opens the backend `url` names with `kind`, for callers that build several clients over
/// one backend (the memory tiers' two clients share one connection this way).
///
/// # Errors
///
/// As [`connect_with`].
///
/// # Cancel safety
///
/// As [`connect`].
pub async fn connect_backend_url(
    url: &str,
    kind: BackendKind,
) -> Result<Arc<dyn KvBackend>, Error> {
    match (is_memory_url(url), kind) {
        (true, BackendKind::InMemory) => {
            if url.len() > MEMORY_SCHEME.len() {
                return Err(Error::InvalidInput(format!(
                    "{url:?}: a memory:// URL takes nothing after the scheme"
                )));
            }
            Ok(Arc::new(InMemoryBackend::new()))
        }
        (true, driver) => Err(Error::InvalidInput(format!(
            "{url:?} names the embedded backend, but backend {driver} was asked for"
        ))),
        // The in-memory kind ignores a server URL: one command line can switch to it.
        (false, BackendKind::InMemory) => Ok(Arc::new(InMemoryBackend::new())),
        (false, driver) => connect_backend(&ConnectionConfig::from_url(url)?, driver).await,
    }
}

/// Opens the backend of `kind` for `config` (ignored for the in-memory kind).
///
/// This is where single server and cluster part: a configuration with
/// [`cluster_nodes`](ConnectionConfig::cluster_nodes) gets the core's
/// [`ClusterBackend`], which routes by slot over one single-server connection of the
/// driver per node and never resends after a failure (the drivers' own cluster clients
/// may); any other gets one connection, or a Sentinel-followed master whose replicas
/// answer reads by the [`ReadPolicy`](resilience_core::ReadPolicy) (a
/// [`SentinelReadBackend`]). The driver backends themselves only ever talk to one server.
///
/// # Errors
///
/// As [`connect`], and [`Error::InvalidInput`] when `kind` was not compiled in.
///
/// # Cancel safety
///
/// As [`connect`].
pub async fn connect_backend(
    config: &ConnectionConfig,
    kind: BackendKind,
) -> Result<Arc<dyn KvBackend>, Error> {
    if kind == BackendKind::InMemory {
        return Ok(Arc::new(InMemoryBackend::new()));
    }
    if !kind.is_available() {
        return Err(Error::InvalidInput(format!(
            "backend {kind} is not compiled into this build: enable the cargo feature `{kind}`"
        )));
    }
    if config.is_cluster() {
        let cluster = ClusterBackend::connect(config, move |node: ConnectionConfig| async move {
            connect_server(&node, kind).await
        })
        .await?;
        return Ok(Arc::new(cluster));
    }
    let server = connect_server(config, kind).await?;
    if config.sentinel.is_some() {
        // Reads may go to the master's replicas (by the client's read policy or one
        // call's); everything else goes to the driver's Sentinel-followed master.
        let split = SentinelReadBackend::connect(
            config,
            server,
            move |node: ConnectionConfig| async move { connect_server(&node, kind).await },
        )
        .await?;
        return Ok(Arc::new(split));
    }
    Ok(server)
}

/// One server (or a Sentinel-managed master) with the driver of `kind`.
async fn connect_server(
    config: &ConnectionConfig,
    kind: BackendKind,
) -> Result<Arc<dyn KvBackend>, BackendError> {
    match kind {
        #[cfg(feature = "redis-rs")]
        BackendKind::RedisRs => Ok(Arc::new(
            backend_redis_rs::RedisRsBackend::connect(config).await?,
        )),
        #[cfg(feature = "fred")]
        BackendKind::Fred => Ok(Arc::new(backend_fred::FredBackend::connect(config).await?)),
        BackendKind::InMemory => Ok(Arc::new(InMemoryBackend::new())),
        #[allow(unreachable_patterns)]
        other => {
            let _ = config;
            Err(BackendError::new(
                ErrorKind::InvalidInput,
                format!("backend {other} is not compiled into this build"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_urls_need_no_server() -> Result<(), Error> {
        let client = connect("memory://").await?;
        assert_eq!(client.backend_name(), "memory");
        client.ping().await?;
        let named = connect_with("named", "ignored", BackendKind::InMemory, |b| b).await?;
        assert_eq!(named.backend_name(), "memory");
        Ok(())
    }

    #[tokio::test]
    async fn a_memory_url_with_a_driver_or_a_path_is_refused() {
        for (url, kind) in [
            ("memory://", BackendKind::RedisRs),
            ("memory://x", BackendKind::InMemory),
        ] {
            let err = connect_with("c", url, kind, |b| b).await.err();
            assert!(
                matches!(err, Some(Error::InvalidInput(_))),
                "{url}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_driver_not_compiled_in_is_a_clear_error() {
        for kind in [BackendKind::RedisRs, BackendKind::Fred] {
            if !kind.is_available() {
                let err = connect_with("c", "redis://127.0.0.1:1", kind, |b| b)
                    .await
                    .err();
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
            let url = "redis://127.0.0.1:1/?socket_connect_timeout=1";
            let err = connect_with("c", url, kind, |b| b).await.err();
            assert!(
                matches!(err, Some(Error::Unavailable(_) | Error::Timeout(_))),
                "{kind}: {err:?}"
            );
        }
    }
}
