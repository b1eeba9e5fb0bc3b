//! The MCP tools: `store_memory`, `search_memories`, `recent_memories`, `get_memory` and
//! `forget_agent`, over stdio (for a desktop host that spawns the server) and over
//! streamable HTTP at `/mcp`.
//!
//! Each tool is a thin translation onto [`Tenant`]'s operations, the same ones the REST
//! routes run, so both surfaces check and store alike. Over HTTP a tool acts as the
//! tenant the request's bearer token opens (the route's middleware puts it in the request
//! extensions, which rmcp hands to the tool); over stdio, as the `--namespace` tenant.
//! A refused call is a tool error whose structured content is the REST error body.

use std::sync::Arc;

use axum::http::request::Parts;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::AppState;
use crate::dto::{FilterBody, ListQuery, SimilarRequest, StoreRequest, WeightsBody};
use crate::problem::{ApiError, ErrorBody};
use crate::tenant::Tenant;

/// Arguments of `store_memory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreMemoryArgs {
    /// The agent whose memory this is: 1 to 128 bytes, no braces or control characters.
    pub agent_id: String,
    /// What to remember: a text, or any JSON value.
    pub content: Value,
    /// The agent's step when it happened (any increasing counter; default 0).
    #[serde(default)]
    pub step: Option<u64>,
    /// How important it is, from 0 to 1 (default 0.5); important memories are kept longer
    /// and can be ranked first.
    #[serde(default)]
    pub importance: Option<f64>,
    /// A free-form kind, such as "observation", "action" or "fact" (default
    /// "observation").
    #[serde(default)]
    pub memory_type: Option<String>,
    /// Your own embedding of the content, as wide as the server's dimension. Omit it and
    /// the content is embedded by the server's built-in hashing embedder, so
    /// `search_memories` finds it by its words.
    #[serde(default)]
    pub embedding: Option<Vec<f32>>,
}

/// Arguments of `search_memories`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchMemoriesArgs {
    /// The agent whose memories to search.
    pub agent_id: String,
    /// What to look for, in words: embedded by the built-in embedder, and matched word by
    /// word (BM25) when `text_weight` is above 0.
    pub query: String,
    /// How many memories to return at most (default 10).
    #[serde(default)]
    pub k: Option<usize>,
    /// How much exact word matches count beside similarity (default 0; 0.1 to 1 is
    /// typical).
    #[serde(default)]
    pub text_weight: Option<f32>,
    /// Only memories meeting every condition given.
    #[serde(default)]
    pub filter: Option<FilterBody>,
}

/// Arguments of `recent_memories`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecentMemoriesArgs {
    /// The agent whose memories to list.
    pub agent_id: String,
    /// How many, newest first (default 20).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Arguments of `get_memory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetMemoryArgs {
    /// The agent the memory belongs to.
    pub agent_id: String,
    /// The memory's id, as `store_memory` returned it (a 26-character ULID).
    pub memory_id: String,
}

/// Arguments of `forget_agent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgetAgentArgs {
    /// The agent to forget: every one of its memories is deleted, for good.
    pub agent_id: String,
}

/// The MCP server: the tools over one server's tenants.
#[derive(Clone, Debug)]
pub(crate) struct MemoryTools {
    /// Over stdio: the tenant every call acts as.
    fixed: Option<Arc<Tenant>>,
    tool_router: ToolRouter<Self>,
}

fn to_result<T: Serialize>(outcome: Result<T, ApiError>) -> CallToolResult {
    let value = match outcome {
        Ok(body) => serde_json::to_value(body),
        Err(e) => {
            return CallToolResult::structured_error(
                serde_json::to_value(ErrorBody {
                    error: e.detail().clone(),
                })
                .unwrap_or(Value::Null),
            );
        }
    };
    match value {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => CallToolResult::structured_error(Value::String(e.to_string())),
    }
}

#[tool_router]
impl MemoryTools {
    fn new(fixed: Option<Arc<Tenant>>) -> Self {
        MemoryTools {
            fixed,
            tool_router: Self::tool_router(),
        }
    }

    /// The tenant a call acts as.
    fn tenant(&self, ctx: &RequestContext<RoleServer>) -> Result<Arc<Tenant>, ApiError> {
        if let Some(t) = &self.fixed {
            return Ok(Arc::clone(t));
        }
        ctx.extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Tenant>>())
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("the MCP request carried no tenant"))
    }

    #[tool(
        description = "Store one memory for an agent. It is kept through Redis outages: the answer says `stored`, or `queued` (written when Redis is back). Returns the memory's id."
    )]
    async fn store_memory(
        &self,
        Parameters(args): Parameters<StoreMemoryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let embed = args.embedding.is_none();
        let request = StoreRequest {
            step: args.step.unwrap_or(0),
            content: args.content,
            importance: args.importance,
            memory_type: args.memory_type,
            embedding: args.embedding,
            embed: Some(embed),
            timestamp_ms: None,
            priority: None,
        };
        let outcome = match self.tenant(&ctx) {
            Ok(t) => t.store(&args.agent_id, request).await,
            Err(e) => Err(e),
        };
        to_result(outcome)
    }

    #[tool(
        description = "Find an agent's memories most similar to a query in words, best first, optionally filtered by type, time, step, importance or content attributes."
    )]
    async fn search_memories(
        &self,
        Parameters(args): Parameters<SearchMemoriesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let request = SimilarRequest {
            embedding: None,
            text: Some(args.query),
            k: args.k,
            filter: args.filter,
            weights: Some(WeightsBody {
                text: args.text_weight,
                ..WeightsBody::default()
            }),
        };
        let outcome = match self.tenant(&ctx) {
            Ok(t) => t.similar(&args.agent_id, request).await,
            Err(e) => Err(e),
        };
        to_result(outcome)
    }

    #[tool(description = "List an agent's most recent memories, newest first.")]
    async fn recent_memories(
        &self,
        Parameters(args): Parameters<RecentMemoriesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let query = ListQuery {
            limit: args.limit,
            ..ListQuery::default()
        };
        let outcome = match self.tenant(&ctx) {
            Ok(t) => t.list(&args.agent_id, query).await,
            Err(e) => Err(e),
        };
        to_result(outcome)
    }

    #[tool(description = "Get one memory of an agent by its id.")]
    async fn get_memory(
        &self,
        Parameters(args): Parameters<GetMemoryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let outcome = match self.tenant(&ctx) {
            Ok(t) => t.get(&args.agent_id, &args.memory_id).await,
            Err(e) => Err(e),
        };
        to_result(outcome)
    }

    #[tool(
        description = "Forget an agent: delete every memory it has, in every tier. Cannot be undone. Returns how many were deleted."
    )]
    async fn forget_agent(
        &self,
        Parameters(args): Parameters<ForgetAgentArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let outcome = match self.tenant(&ctx) {
            Ok(t) => t.forget(&args.agent_id).await,
            Err(e) => Err(e),
        };
        to_result(outcome)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MemoryTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Long-term memory for agents: store what an agent saw or did with store_memory, recall it with search_memories (by meaning and words) or recent_memories, and erase an agent with forget_agent. Memories are per agent_id.",
        )
    }
}

/// The `/mcp` service: streamable HTTP, stateless, JSON answers.
pub(crate) fn http_service(
    state: &Arc<AppState>,
) -> StreamableHttpService<MemoryTools, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(state.max_body_bytes);
    if !state.mcp_allowed_hosts.is_empty() {
        config = config.with_allowed_hosts(state.mcp_allowed_hosts.clone());
    }
    StreamableHttpService::new(|| Ok(MemoryTools::new(None)), Arc::default(), config)
}

/// Serves the tools over stdin and stdout until the host closes them.
pub(crate) async fn serve_stdio(state: Arc<AppState>) -> Result<(), String> {
    let server = MemoryTools::new(Some(Arc::clone(&state.stdio_tenant)))
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP over stdio: {e}"))?;
    server
        .waiting()
        .await
        .map_err(|e| format!("MCP over stdio: {e}"))?;
    Ok(())
}
