//! The server's settings: flags, each with an environment variable of the same meaning.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use resilient_redis::memory::{DEFAULT_NAMESPACE, HASH_EMBEDDING_DIMENSION};

/// memory-server: agent memory (short-term and intermediate tiers that keep writing
/// through a Redis outage) over REST and MCP.
#[derive(Clone, Debug, Parser)]
#[command(name = "memory-server", version)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The address to serve REST, MCP (at /mcp), health and metrics on. Without tokens
    /// only a loopback address is accepted.
    #[arg(long, env = "MEMORY_SERVER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where memories live: `memory://` (embedded, no server), `redis://host:port`,
    /// `rediss://…`, `redis+sentinel://…`, or a cluster's seeds
    /// (`redis://host:port?cluster=host2:port2`).
    #[arg(long, env = "MEMORY_SERVER_REDIS_URL", default_value = "memory://")]
    pub redis_url: String,

    /// The driver for a Redis URL: `redis-rs` or `fred` (default: redis-rs).
    #[arg(long, env = "MEMORY_SERVER_BACKEND")]
    pub backend: Option<String>,

    /// Bearer tokens and their namespaces: `token=namespace,token=namespace`.
    #[arg(long, env = "MEMORY_SERVER_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,

    /// A file of `token=namespace` lines (`#` comments), read at start.
    #[arg(long, env = "MEMORY_SERVER_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// The namespace of the open tenant (no tokens) and of MCP over stdio.
    #[arg(long, env = "MEMORY_SERVER_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// The embedding width every stored memory and query vector has.
    #[arg(long, env = "MEMORY_SERVER_EMBEDDING_DIMENSION", default_value_t = HASH_EMBEDDING_DIMENSION)]
    pub embedding_dimension: usize,

    /// The largest request body, bytes.
    #[arg(long, env = "MEMORY_SERVER_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// The most memories in one batch.
    #[arg(long, env = "MEMORY_SERVER_MAX_BATCH", default_value_t = 256)]
    pub max_batch: usize,

    /// The most results one query returns.
    #[arg(long, env = "MEMORY_SERVER_MAX_RESULTS", default_value_t = 1000)]
    pub max_results: usize,

    /// Requests per second per token, with bursts of as many (0: no limit).
    #[arg(long, env = "MEMORY_SERVER_REQUESTS_PER_SECOND", default_value_t = 0)]
    pub requests_per_second: u32,

    /// Serve Prometheus metrics on this address instead of at /metrics on --listen.
    #[arg(long, env = "MEMORY_SERVER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// How long shutdown waits for queued writes to reach Redis before giving them up,
    /// milliseconds.
    #[arg(
        long,
        env = "MEMORY_SERVER_SHUTDOWN_DRAIN_MS",
        default_value_t = 10_000
    )]
    pub shutdown_drain_ms: u64,

    /// How often every known agent's memories are maintained (moved from STM to IM,
    /// expired entries cleaned), seconds; 0 turns it off.
    #[arg(long, env = "MEMORY_SERVER_MAINTENANCE_SECS", default_value_t = 60)]
    pub maintenance_secs: u64,

    /// No local fallback: during an outage, writes are only queued and reads fail.
    #[arg(long, env = "MEMORY_SERVER_NO_FALLBACK")]
    pub no_fallback: bool,

    /// Host names the MCP route accepts in `Host` (default: loopback names only, against
    /// DNS rebinding); comma-separated.
    #[arg(long, env = "MEMORY_SERVER_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub mcp_allowed_hosts: Vec<String>,

    /// Serve MCP over stdin and stdout instead of HTTP (for a desktop MCP host that spawns
    /// the server); logs go to stderr.
    #[arg(long)]
    pub mcp_stdio: bool,

    /// Print the OpenAPI document and exit.
    #[arg(long)]
    pub print_openapi: bool,
}

impl ServerConfig {
    /// The settings the binary would run with given only `--redis-url redis_url`: every
    /// other flag at its default, or at its environment variable's value when set. What
    /// tests and embedders start from.
    ///
    /// # Errors
    ///
    /// clap's error naming a `MEMORY_SERVER_*` variable whose value is refused.
    pub fn for_url(redis_url: &str) -> Result<Self, clap::Error> {
        ServerConfig::try_parse_from(["memory-server", "--redis-url", redis_url])
    }
}
