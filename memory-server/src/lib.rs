//! # memory-server
//!
//! The memory tiers (short-term and intermediate agent memory on Redis, written through
//! outages) as a server, for agents in any language: a REST API with its OpenAPI document,
//! and MCP tools over stdio and streamable HTTP.
//!
//! ```text
//! cargo run --release -p memory-server                      # embedded backend, 127.0.0.1:8080
//! cargo run --release -p memory-server -- --redis-url redis://127.0.0.1:6379
//! ```
//!
//! ## How it is laid out
//!
//! - [`ServerConfig`]: flags and their environment variables.
//! - [`MemoryServer`]: starts the clients, tiers and tenants, serves HTTP or MCP over
//!   stdio, and drains the recovery queue on shutdown ([`ShutdownSummary`]).
//! - [`Tenant`]: one token's namespace and rate, and every operation the REST routes and
//!   the MCP tools run, checked before anything is stored.
//! - `rest` (routes and their OpenAPI annotations), `mcp` (the tools), [`openapi`] (the
//!   document), `tokens` (bearer tokens to namespaces), [`ApiError`] (the one error
//!   shape), [`dto`] (the JSON).
//!
//! ## What it promises
//!
//! - A write answered `stored` is in Redis; one answered `queued` waits in the recovery
//!   queue and is written once Redis is back (poll its ticket), or reported as given up at
//!   shutdown. Nothing is dropped silently: a `low`-priority write Redis cannot take is
//!   answered `dropped` (503).
//! - A refused request stores nothing and names the field at fault.
//! - No tenant reads or changes another's memories: each token's memories live under its
//!   own key namespace, and tickets are per namespace.
//! - Without tokens it serves loopback only.

mod app;
mod config;
pub mod dto;
mod extract;
mod mcp;
mod metrics;
pub mod openapi;
mod problem;
mod rest;
mod tenant;
mod tickets;
mod tokens;

pub use app::{MemoryServer, ShutdownSummary, StartError};
pub use config::ServerConfig;
pub use mcp::{
    ForgetAgentArgs, GetMemoryArgs, RecentMemoriesArgs, SearchMemoriesArgs, StoreMemoryArgs,
};
pub use problem::{ApiError, ErrorBody, ErrorDetail};
pub use tenant::{Limits, Tenant};
pub use tokens::{MIN_TOKEN_BYTES, TokenSpec, parse_tokens};
