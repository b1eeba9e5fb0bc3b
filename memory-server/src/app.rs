//! Starting, serving and stopping: the clients and tiers behind the routes, and the
//! shutdown that drains the recovery queue.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use metrics_exporter_prometheus::PrometheusHandle;
use resilient_redis::memory::{TieredMemory, connect_in_memory, validate_namespace};
use resilient_redis::{BackendKind, CircuitState, ResilientClient};
use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::tenant::{Limits, Shared, Tenant};
use crate::tickets::Tickets;
use crate::tokens::{Tenants, TokenSpec, parse_tokens};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is refused; the message names it.
    #[error("bad setting: {0}")]
    Config(String),
    /// The tiers or their clients could not be built or connected.
    #[error("cannot connect: {0}")]
    Connect(#[from] resilient_redis::Error),
    /// The tiers refused their settings.
    #[error("cannot build the memory tiers: {0}")]
    Memory(#[from] resilient_redis::memory::Error),
    /// A socket or file could not be opened.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What shutdown could and could not store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownSummary {
    /// Whether every queued write reached Redis before the deadline.
    pub drained: bool,
    /// Queued writes given up (dead-lettered, each logged with its key) because Redis
    /// did not come back in time.
    pub abandoned: usize,
}

/// What the routes and tools share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) tenants: Tenants,
    /// The short-term and intermediate tiers' clients.
    pub(crate) clients: [ResilientClient; 2],
    pub(crate) fallback: bool,
    pub(crate) max_body_bytes: usize,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) mcp_allowed_hosts: Vec<String>,
    /// The tenant MCP over stdio acts as.
    pub(crate) stdio_tenant: Arc<Tenant>,
}

impl AppState {
    /// What readiness reports: `ok` (the breaker closed, no write waiting), `unavailable`
    /// (the breaker open and no fallback), else `degraded` (writes waiting in the recovery
    /// queue, or the breaker open with the fallback serving). Writes waiting mean Redis is not taking them, whatever the breaker has seen
    /// so far (a queue that is not empty takes new writes behind the old ones without
    /// trying Redis).
    pub(crate) fn health(&self) -> crate::dto::HealthBody {
        let state = self.clients[0].circuit_state();
        let queued: u64 = self
            .clients
            .iter()
            .map(|c| c.stats().queue.depth as u64)
            .sum();
        let status = match (state == CircuitState::Closed && queued == 0, self.fallback) {
            (true, _) => "ok",
            (false, true) => "degraded",
            (false, false) if state == CircuitState::Closed => "degraded",
            (false, false) => "unavailable",
        };
        crate::dto::HealthBody {
            status: status.to_owned(),
            breaker: state.to_string(),
            fallback: self.fallback,
            queued,
        }
    }
}

/// A started server: its tiers connected, its routes ready to serve.
#[derive(Clone, Debug)]
pub struct MemoryServer {
    pub(crate) state: Arc<AppState>,
    config: ServerConfig,
}

impl MemoryServer {
    /// Connects the tiers and builds the tenants `config` describes.
    ///
    /// # Errors
    ///
    /// A refused setting (named), a token file that cannot be read, a URL that cannot be
    /// parsed or connected.
    pub async fn start(config: ServerConfig) -> Result<MemoryServer, StartError> {
        let specs = token_specs(&config)?;
        if specs.is_empty() && !config.listen.ip().is_loopback() && !config.mcp_stdio {
            return Err(StartError::Config(format!(
                "--listen {}: with no tokens configured the server listens on loopback only; set MEMORY_SERVER_TOKENS (token=namespace) to serve other hosts",
                config.listen
            )));
        }
        if config.embedding_dimension == 0
            || config.embedding_dimension > resilient_redis::memory::MAX_DIMENSION
        {
            return Err(StartError::Config(format!(
                "--embedding-dimension {}: give 1 to {}",
                config.embedding_dimension,
                resilient_redis::memory::MAX_DIMENSION
            )));
        }
        if config.max_batch == 0 || config.max_results == 0 || config.max_body_bytes == 0 {
            return Err(StartError::Config(
                "--max-batch, --max-results and --max-body-bytes must be at least 1".to_owned(),
            ));
        }
        validate_namespace(&config.namespace)
            .map_err(|e| StartError::Config(format!("--namespace: {e}")))?;

        let kind = match &config.backend {
            Some(name) => name.parse::<BackendKind>()?,
            None => BackendKind::for_url(&config.redis_url),
        };
        let clients = resilient_redis::memory::connect_clients(&config.redis_url, kind).await?;
        let networked = clients[0].backend().is_networked();
        let fallback = (networked && !config.no_fallback)
            .then(|| connect_in_memory("memory_server_fallback").0);
        for client in &clients {
            client.on_dead_letter(|dead| {
                tracing::error!(write = ?dead, "a queued memory write could not be stored and was given up");
            });
        }

        let shared = Arc::new(Shared {
            limits: Limits {
                dimension: config.embedding_dimension,
                max_batch: config.max_batch,
                max_results: config.max_results,
            },
            tickets: Tickets::default(),
        });
        let build_memory = |namespace: &str| -> Result<TieredMemory, StartError> {
            let mut builder = TieredMemory::builder(clients[0].clone(), clients[1].clone())
                .namespace(namespace)
                .embedding_dimension(config.embedding_dimension);
            if let Some(fb) = &fallback {
                builder = builder.fallback(fb.clone());
            }
            Ok(builder.build()?)
        };
        let limiter = || {
            NonZeroU32::new(config.requests_per_second)
                .map(|rate| RateLimiter::direct(Quota::per_second(rate)))
        };
        let mut memories: Vec<(String, TieredMemory)> = Vec::new();
        let mut memory_of = |namespace: &str| -> Result<TieredMemory, StartError> {
            if let Some((_, m)) = memories.iter().find(|(ns, _)| ns == namespace) {
                return Ok(m.clone());
            }
            let m = build_memory(namespace)?;
            memories.push((namespace.to_owned(), m.clone()));
            Ok(m)
        };
        let tenant = |namespace: &str, memory: TieredMemory| {
            Arc::new(Tenant::new(
                Arc::from(namespace),
                memory,
                limiter(),
                Arc::clone(&shared),
            ))
        };
        let stdio_tenant = tenant(&config.namespace, memory_of(&config.namespace)?);
        let tenants = if specs.is_empty() {
            Tenants::Open(Arc::clone(&stdio_tenant))
        } else {
            let mut tokens = Vec::with_capacity(specs.len());
            for TokenSpec { token, namespace } in specs {
                let t = tenant(&namespace, memory_of(&namespace)?);
                tokens.push((token.into_bytes().into_boxed_slice(), t));
            }
            Tenants::Tokens(tokens)
        };
        if config.maintenance_secs > 0 {
            for (_, memory) in &memories {
                memory.spawn_maintenance(Duration::from_secs(config.maintenance_secs));
            }
        }

        let state = AppState {
            tenants,
            clients,
            fallback: fallback.is_some(),
            max_body_bytes: config.max_body_bytes,
            metrics: crate::metrics::handle(),
            shared,
            mcp_allowed_hosts: config.mcp_allowed_hosts.clone(),
            stdio_tenant,
        };
        Ok(MemoryServer {
            state: Arc::new(state),
            config,
        })
    }

    /// The settings it started with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The HTTP routes: REST under `/v1`, MCP at `/mcp`, `/healthz`, `/readyz`,
    /// `/metrics` (unless metrics have their own address) and `/openapi.json`.
    pub fn router(&self) -> axum::Router {
        crate::rest::router(
            Arc::clone(&self.state),
            self.config.metrics_listen.is_none(),
        )
    }

    /// Serves HTTP on `listener` until `shutdown` completes, then stops taking requests,
    /// finishes those in flight and drains the recovery queue (up to
    /// `--shutdown-drain-ms`).
    ///
    /// # Errors
    ///
    /// The listener failed.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<ShutdownSummary, StartError> {
        let addr = listener.local_addr()?;
        self.announce(addr);
        let metrics_server = match self.config.metrics_listen {
            Some(metrics_addr) => {
                Some(crate::metrics::serve(metrics_addr, Arc::clone(&self.state)).await?)
            }
            None => None,
        };
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await?;
        if let Some(task) = metrics_server {
            task.abort();
        }
        Ok(self.drain().await)
    }

    /// Serves MCP over stdin and stdout until the host closes them, then drains the
    /// recovery queue.
    ///
    /// # Errors
    ///
    /// The MCP handshake failed.
    pub async fn serve_mcp_stdio(&self) -> Result<ShutdownSummary, StartError> {
        crate::mcp::serve_stdio(Arc::clone(&self.state))
            .await
            .map_err(|e| StartError::Io(std::io::Error::other(e)))?;
        Ok(self.drain().await)
    }

    fn announce(&self, addr: SocketAddr) {
        match &self.state.tenants {
            Tenants::Open(tenant) => tracing::warn!(
                %addr,
                namespace = tenant.namespace(),
                "no tokens configured: listening on loopback only, every request uses one namespace"
            ),
            Tenants::Tokens(tokens) => {
                tracing::info!(%addr, tokens = tokens.len(), "serving with bearer tokens");
            }
        }
        let backend = self.state.clients[0].backend_name();
        tracing::info!(%addr, backend, fallback = self.state.fallback, "memory-server ready");
    }

    /// Stops taking prioritized writes and waits for the queued ones to reach Redis, up to
    /// the configured deadline; what is left is given up and reported.
    pub async fn drain(&self) -> ShutdownSummary {
        let deadline = Duration::from_millis(self.config.shutdown_drain_ms);
        let reports =
            futures::future::join_all(self.state.clients.iter().map(|c| c.shutdown(deadline)))
                .await;
        let summary = ShutdownSummary {
            drained: reports.iter().all(|r| r.drained),
            abandoned: reports.iter().map(|r| r.abandoned).sum(),
        };
        if summary.drained {
            tracing::info!("shut down: every queued write reached Redis");
        } else {
            tracing::error!(
                abandoned = summary.abandoned,
                "shut down: queued writes were given up because Redis did not come back in time"
            );
        }
        summary
    }
}

fn token_specs(config: &ServerConfig) -> Result<Vec<TokenSpec>, StartError> {
    let mut specs = match &config.tokens {
        Some(text) => {
            parse_tokens(text).map_err(|e| StartError::Config(format!("--tokens: {e}")))?
        }
        None => Vec::new(),
    };
    if let Some(path) = &config.tokens_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StartError::Config(format!("--tokens-file {}: {e}", path.display())))?;
        specs.extend(
            parse_tokens(&text).map_err(|e| {
                StartError::Config(format!("--tokens-file {}: {e}", path.display()))
            })?,
        );
    }
    Ok(specs)
}
