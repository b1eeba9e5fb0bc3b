//! The primary backend and the outage that cuts it off.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backend_memory::InMemoryBackend;
use memory_tiers::DEFAULT_NAMESPACE;
use resilience_core::{ConnectionConfig, KvBackend};
use resilient_redis::BackendKind;
use testkit::faulty::{FaultController, FaultyBackend};
use testkit::proxy::{FaultProxy, ProxyMode};
use testkit::server::RedisServer;
use tokio::time::Instant;

use super::agent::Shared;
use super::args::{DemoArgs, OutageKind};
use super::error::DemoError;

/// How the outage is made, and what must stay alive for the run.
pub(super) enum Outage {
    /// The embedded backend's fault switch.
    Fault(FaultController),
    /// A proxy between the client and Redis (and the server, when the demo spawned it).
    Blackhole {
        proxy: FaultProxy,
        _server: Option<RedisServer>,
    },
    /// The spawned server, stopped and restarted.
    Kill(RedisServer),
    /// No outage (keeps a spawned server alive).
    None { _server: Option<RedisServer> },
}

impl Outage {
    async fn begin(&mut self) -> Result<(), DemoError> {
        match self {
            Outage::Fault(faults) => faults.set_outage(true),
            Outage::Blackhole { proxy, .. } => proxy.set_mode(ProxyMode::Blackhole),
            Outage::Kill(server) => server.stop().await?,
            Outage::None { .. } => {}
        }
        Ok(())
    }

    async fn end(&mut self) -> Result<(), DemoError> {
        match self {
            Outage::Fault(faults) => faults.set_outage(false),
            Outage::Blackhole { proxy, .. } => proxy.set_mode(ProxyMode::Pass),
            Outage::Kill(server) => server.restart().await?,
            Outage::None { .. } => {}
        }
        Ok(())
    }
}

/// The outage window actually applied, relative to the start: (began, ended).
pub(super) type Window = Option<(Duration, Duration)>;

/// Begins the outage at `from`, ends it at `to` (for `kill`, once the restarted server
/// answers), and hands the outage back so the server and proxy live until the run ends.
pub(super) async fn drive_outage(
    mut outage: Outage,
    from: Instant,
    to: Instant,
    start: Instant,
    shared: Arc<Shared>,
) -> (Option<Outage>, Window, Option<String>) {
    if matches!(outage, Outage::None { .. }) {
        return (Some(outage), None, None);
    }
    tokio::time::sleep_until(from).await;
    let began = start.elapsed();
    shared.outage_on.store(true, Ordering::Relaxed);
    if let Err(e) = outage.begin().await {
        shared.outage_on.store(false, Ordering::Relaxed);
        return (
            Some(outage),
            None,
            Some(format!("could not start the outage: {e}")),
        );
    }
    tokio::time::sleep_until(to).await;
    let result = outage.end().await;
    let ended = start.elapsed();
    shared.outage_on.store(false, Ordering::Relaxed);
    let error = result
        .err()
        .map(|e| format!("could not end the outage: {e}"));
    (Some(outage), Some((began, ended)), error)
}

/// The primary backend, the outage that goes with it, and the key namespace to use.
pub(super) async fn primary_backend(
    args: &DemoArgs,
    outage: OutageKind,
) -> Result<(Arc<dyn KvBackend>, Outage, String), DemoError> {
    if args.backend == BackendKind::InMemory {
        let inner = InMemoryBackend::new();
        let (backend, faults) = FaultyBackend::new(inner);
        let outage = match outage {
            OutageKind::None => Outage::None { _server: None },
            _ => Outage::Fault(faults),
        };
        return Ok((Arc::new(backend), outage, DEFAULT_NAMESPACE.to_owned()));
    }

    let (server, mut config, namespace) = match &args.url {
        Some(url) => {
            let mut config = ConnectionConfig::from_url(url)?;
            if !url.contains("socket_timeout") {
                config.socket_timeout = Duration::from_millis(args.socket_timeout_ms);
            }
            if !url.contains("socket_connect_timeout") {
                config.socket_connect_timeout = Duration::from_millis(args.socket_timeout_ms);
            }
            // A server we did not spawn: our own namespace, cleared at the end.
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            (None, config, format!("agent_demo:{ms}"))
        }
        None => {
            // Every acknowledged write is fsynced, so a SIGKILL loses none of them.
            let server = RedisServer::builder()
                .appendfsync_always(true)
                .spawn()
                .await?;
            let mut config = server.connection_config();
            config.socket_timeout = Duration::from_millis(args.socket_timeout_ms);
            config.socket_connect_timeout = Duration::from_millis(args.socket_timeout_ms);
            (Some(server), config, DEFAULT_NAMESPACE.to_owned())
        }
    };

    let outage = match outage {
        OutageKind::Blackhole => {
            let upstream = tokio::net::lookup_host((config.host.as_str(), config.port))
                .await?
                .next()
                .ok_or_else(|| {
                    DemoError::InvalidArgs(format!("{} does not resolve", config.host))
                })?;
            let proxy = FaultProxy::start(upstream).await?;
            config.host = proxy.addr().ip().to_string();
            config.port = proxy.addr().port();
            Outage::Blackhole {
                proxy,
                _server: server,
            }
        }
        OutageKind::Kill => match server {
            Some(server) => Outage::Kill(server),
            None => {
                return Err(DemoError::InvalidArgs(
                    "--outage kill needs a server the demo spawned itself (no --url)".to_owned(),
                ));
            }
        },
        OutageKind::None | OutageKind::Fault => Outage::None { _server: server },
    };
    let backend = resilient_redis::connect_backend(&config, args.backend).await?;
    Ok((backend, outage, namespace))
}
