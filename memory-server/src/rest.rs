//! The REST routes: thin handlers over [`Tenant`]'s operations, each documented for the
//! OpenAPI document ([`crate::openapi`]).
//!
//! Every route under `/v1` and `/mcp` first resolves the bearer token to its tenant and
//! takes one request from the token's rate ([`authenticate`]); a handler only ever sees
//! its own tenant.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use utoipa::IntoResponses;

use crate::app::AppState;
use crate::dto::{
    CountBody, DeletedBody, FindRequest, ForgetReceipt, HealthBody, ImportanceBody,
    ImportanceRequest, ListQuery, MaintainBody, MemoriesResponse, MemoryBody, SearchQuery,
    SimilarRequest, SimilarResponse, StoreBatchRequest, StoreBatchResponse, StoreReceiptBody,
    StoreRequest, TicketBody, WriteOutcome,
};
use crate::extract::{ApiJson, ApiQuery};
use crate::problem::{ApiError, ErrorBody};
use crate::tenant::Tenant;

/// The errors any tenant route can answer with.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only its documentation is used.
pub(crate) enum CommonErrors {
    /// A body that is not JSON of the documented shape.
    #[response(status = 400)]
    Malformed(ErrorBody),
    /// No token, or one the server does not know.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A body over the size limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// A field refused: `field` names it, `hint` says what is accepted. Nothing was stored.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// The token's request rate is spent; see `Retry-After`.
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// Redis is unreachable and the request needs it (a write queued is 202, not this).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Every path the server serves: the router's and the request metrics' one list (the
/// OpenAPI annotations repeat them as literals; a test holds them to this list).
pub(crate) mod paths {
    pub(crate) const MEMORIES: &str = "/v1/agents/{agent_id}/memories";
    pub(crate) const BATCH: &str = "/v1/agents/{agent_id}/memories/batch";
    pub(crate) const MEMORY: &str = "/v1/agents/{agent_id}/memories/{memory_id}";
    pub(crate) const IMPORTANCE: &str = "/v1/agents/{agent_id}/memories/{memory_id}/importance";
    pub(crate) const COUNT: &str = "/v1/agents/{agent_id}/count";
    pub(crate) const SIMILAR: &str = "/v1/agents/{agent_id}/similar";
    pub(crate) const FIND: &str = "/v1/agents/{agent_id}/find";
    pub(crate) const SEARCH: &str = "/v1/agents/{agent_id}/search";
    pub(crate) const MAINTAIN: &str = "/v1/agents/{agent_id}/maintain";
    pub(crate) const AGENT: &str = "/v1/agents/{agent_id}";
    pub(crate) const TICKET: &str = "/v1/tickets/{ticket}";
    pub(crate) const MCP: &str = "/mcp";
    pub(crate) const HEALTHZ: &str = "/healthz";
    pub(crate) const READYZ: &str = "/readyz";
    pub(crate) const OPENAPI: &str = "/openapi.json";
    pub(crate) const METRICS: &str = "/metrics";
    /// All of them.
    pub(crate) const ALL: [&str; 16] = [
        MEMORIES, BATCH, MEMORY, IMPORTANCE, COUNT, SIMILAR, FIND, SEARCH, MAINTAIN, AGENT, TICKET,
        MCP, HEALTHZ, READYZ, OPENAPI, METRICS,
    ];
}

/// The routes, over `state`; `/metrics` among them when `with_metrics`.
pub(crate) fn router(state: Arc<AppState>, with_metrics: bool) -> axum::Router {
    let tenant_routes = axum::Router::new()
        .route(paths::MEMORIES, post(store).get(list))
        .route(paths::BATCH, post(store_batch))
        .route(paths::MEMORY, get(get_memory).delete(delete_memory))
        .route(paths::IMPORTANCE, post(adjust_importance))
        .route(paths::COUNT, get(count))
        .route(paths::SIMILAR, post(similar))
        .route(paths::FIND, post(find))
        .route(paths::SEARCH, get(search))
        .route(paths::MAINTAIN, post(maintain))
        .route(paths::AGENT, axum::routing::delete(forget))
        .route(paths::TICKET, get(ticket))
        .nest_service(paths::MCP, crate::mcp::http_service(&state))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            authenticate,
        ));
    let mut open_routes = axum::Router::new()
        .route(paths::HEALTHZ, get(healthz))
        .route(paths::READYZ, get(readyz))
        .route(paths::OPENAPI, get(openapi));
    if with_metrics {
        open_routes = open_routes.route(paths::METRICS, get(crate::metrics::render));
    }
    tenant_routes
        .merge(open_routes)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

/// Resolves the request's tenant and takes one request from its rate.
async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let tenant = match state
        .tenants
        .resolve(request.headers().get(header::AUTHORIZATION))
        .and_then(|tenant| tenant.admit().map(|()| Arc::clone(tenant)))
    {
        Ok(tenant) => tenant,
        Err(e) => return e.into_response(),
    };
    request.extensions_mut().insert(tenant);
    next.run(request).await
}

type Tenanted = Extension<Arc<Tenant>>;

/// Store one memory.
///
/// Answers 201 when Redis stored it, or 202 when Redis was unreachable and the write
/// waits in the recovery queue (with a ticket to poll; reads find it in the fallback
/// meanwhile).
#[utoipa::path(post, path = "/v1/agents/{agent_id}/memories", tag = "memories",
    params(("agent_id" = String, Path, description = "The agent: 1 to 128 bytes, no braces or control characters")),
    request_body = StoreRequest,
    responses(
        (status = 201, description = "Stored in Redis", body = StoreReceiptBody),
        (status = 202, description = "Queued until Redis is back; poll the ticket", body = StoreReceiptBody),
        CommonErrors,
    ),
    security(("bearer" = [])))]
pub(crate) async fn store(
    Extension(tenant): Tenanted,
    Path(agent_id): Path<String>,
    ApiJson(request): ApiJson<StoreRequest>,
) -> Result<(StatusCode, Json<StoreReceiptBody>), ApiError> {
    let receipt = tenant.store(&agent_id, request).await?;
    let status = match receipt.outcome {
        WriteOutcome::Queued => StatusCode::ACCEPTED,
        _ => StatusCode::CREATED,
    };
    Ok((status, Json(receipt)))
}

/// Store several memories.
///
/// Every memory is checked first; one refused stores none. Then each is stored on its
/// own, with its own receipt (stored, queued, dropped or failed).
#[utoipa::path(post, path = "/v1/agents/{agent_id}/memories/batch", tag = "memories",
    params(("agent_id" = String, Path, description = "The agent")),
    request_body = StoreBatchRequest,
    responses((status = 200, description = "One receipt per memory, in order", body = StoreBatchResponse), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn store_batch(
    Extension(tenant): Tenanted,
    Path(agent_id): Path<String>,
    ApiJson(request): ApiJson<StoreBatchRequest>,
) -> Result<Json<StoreBatchResponse>, ApiError> {
    Ok(Json(tenant.store_batch(&agent_id, request.memories).await?))
}

/// List memories: the newest, or one range (steps, times or importance).
#[utoipa::path(get, path = "/v1/agents/{agent_id}/memories", tag = "memories",
    params(("agent_id" = String, Path, description = "The agent"), ListQuery),
    responses((status = 200, description = "Newest first; a range oldest first, importance most important first", body = MemoriesResponse), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn list(
    Extension(tenant): Tenanted,
    Path(agent_id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<MemoriesResponse>, ApiError> {
    Ok(Json(tenant.list(&agent_id, query).await?))
}

/// Get one memory by id (counted as a retrieval).
#[utoipa::path(get, path = "/v1/agents/{agent_id}/memories/{memory_id}", tag = "memories",
    params(("agent_id" = String, Path, description = "The agent"), ("memory_id" = String, Path, description = "The memory (a ULID)")),
    responses((status = 200, description = "The memory", body = MemoryBody), (status = 404, description = "No such memory", body = ErrorBody), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn get_memory(
    Extension(tenant): Tenanted,
    Path((agent_id, memory_id)): Path<(String, String)>,
) -> Result<Json<MemoryBody>, ApiError> {
    Ok(Json(tenant.get(&agent_id, &memory_id).await?))
}

/// Delete one memory from every tier and the fallback.
#[utoipa::path(delete, path = "/v1/agents/{agent_id}/memories/{memory_id}", tag = "memories",
    params(("agent_id" = String, Path, description = "The agent"), ("memory_id" = String, Path, description = "The memory (a ULID)")),
    responses((status = 200, description = "Gone; `deleted` says whether it existed", body = DeletedBody), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn delete_memory(
    Extension(tenant): Tenanted,
    Path((agent_id, memory_id)): Path<(String, String)>,
) -> Result<Json<DeletedBody>, ApiError> {
    Ok(Json(tenant.delete(&agent_id, &memory_id).await?))
}

/// Add to a memory's importance (kept within [0, 1]).
#[utoipa::path(post, path = "/v1/agents/{agent_id}/memories/{memory_id}/importance", tag = "memories",
    params(("agent_id" = String, Path, description = "The agent"), ("memory_id" = String, Path, description = "The memory (a ULID)")),
    request_body = ImportanceRequest,
    responses((status = 200, description = "The importance now", body = ImportanceBody), (status = 404, description = "No such memory", body = ErrorBody), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn adjust_importance(
    Extension(tenant): Tenanted,
    Path((agent_id, memory_id)): Path<(String, String)>,
    ApiJson(request): ApiJson<ImportanceRequest>,
) -> Result<Json<ImportanceBody>, ApiError> {
    Ok(Json(
        tenant
            .adjust_importance(&agent_id, &memory_id, request.delta)
            .await?,
    ))
}

/// Count the agent's live memories per tier.
#[utoipa::path(get, path = "/v1/agents/{agent_id}/count", tag = "memories",
    params(("agent_id" = String, Path, description = "The agent")),
    responses((status = 200, description = "Counts", body = CountBody), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn count(
    Extension(tenant): Tenanted,
    Path(agent_id): Path<String>,
) -> Result<Json<CountBody>, ApiError> {
    Ok(Json(tenant.count(&agent_id).await?))
}

/// Search by similarity to a vector or a text, optionally filtered, ranked by cosine and,
/// with weights, by BM25 of the text, recency and importance.
#[utoipa::path(post, path = "/v1/agents/{agent_id}/similar", tag = "search",
    params(("agent_id" = String, Path, description = "The agent")),
    request_body = SimilarRequest,
    responses((status = 200, description = "Best first", body = SimilarResponse), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn similar(
    Extension(tenant): Tenanted,
    Path(agent_id): Path<String>,
    ApiJson(request): ApiJson<SimilarRequest>,
) -> Result<Json<SimilarResponse>, ApiError> {
    Ok(Json(tenant.similar(&agent_id, request).await?))
}

/// List the memories meeting a filter, newest first.
#[utoipa::path(post, path = "/v1/agents/{agent_id}/find", tag = "search",
    params(("agent_id" = String, Path, description = "The agent")),
    request_body = FindRequest,
    responses((status = 200, description = "Newest first", body = MemoriesResponse), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn find(
    Extension(tenant): Tenanted,
    Path(agent_id): Path<String>,
    ApiJson(request): ApiJson<FindRequest>,
) -> Result<Json<MemoriesResponse>, ApiError> {
    Ok(Json(tenant.find(&agent_id, request).await?))
}

/// List the memories whose content contains a text (case-insensitive).
#[utoipa::path(get, path = "/v1/agents/{agent_id}/search", tag = "search",
    params(("agent_id" = String, Path, description = "The agent"), SearchQuery),
    responses((status = 200, description = "Newest first", body = MemoriesResponse), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn search(
    Extension(tenant): Tenanted,
    Path(agent_id): Path<String>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<MemoriesResponse>, ApiError> {
    Ok(Json(tenant.search(&agent_id, query).await?))
}

/// Run a maintenance pass for the agent now: STM's oldest moved to IM, expired entries
/// cleaned (the server also runs one in the background).
#[utoipa::path(post, path = "/v1/agents/{agent_id}/maintain", tag = "agents",
    params(("agent_id" = String, Path, description = "The agent")),
    responses((status = 200, description = "What the pass did", body = MaintainBody), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn maintain(
    Extension(tenant): Tenanted,
    Path(agent_id): Path<String>,
) -> Result<Json<MaintainBody>, ApiError> {
    Ok(Json(tenant.maintain(&agent_id).await?))
}

/// Forget an agent: delete every memory it has, in both tiers and the fallback.
#[utoipa::path(delete, path = "/v1/agents/{agent_id}", tag = "agents",
    params(("agent_id" = String, Path, description = "The agent")),
    responses((status = 200, description = "The receipt", body = ForgetReceipt), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn forget(
    Extension(tenant): Tenanted,
    Path(agent_id): Path<String>,
) -> Result<Json<ForgetReceipt>, ApiError> {
    Ok(Json(tenant.forget(&agent_id).await?))
}

/// Where a queued write stands.
#[utoipa::path(get, path = "/v1/tickets/{ticket}", tag = "memories",
    params(("ticket" = u64, Path, description = "The ticket from a `queued` receipt")),
    responses((status = 200, description = "The ticket", body = TicketBody), (status = 404, description = "Unknown, forgotten, or another tenant's", body = ErrorBody), CommonErrors),
    security(("bearer" = [])))]
pub(crate) async fn ticket(
    Extension(tenant): Tenanted,
    Path(ticket): Path<u64>,
) -> Result<Json<TicketBody>, ApiError> {
    Ok(Json(tenant.ticket(ticket)?))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive, with the readiness detail", body = HealthBody)))]
pub(crate) async fn healthz(State(state): State<Arc<AppState>>) -> Json<HealthBody> {
    Json(state.health())
}

/// Readiness: Redis answering (the breaker closed), or the fallback serving.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready: `ok` or `degraded`", body = HealthBody),
        (status = 503, description = "Redis unreachable and no fallback", body = HealthBody),
    ))]
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<HealthBody>) {
    let health = state.health();
    let status = if health.status == "unavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(health))
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1, JSON")))]
pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::paths;

    #[test]
    fn the_openapi_document_lists_exactly_the_routed_paths() {
        let doc: serde_json::Value =
            serde_json::from_str(&crate::openapi::document()).expect("JSON");
        let mut documented: Vec<&str> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort_unstable();
        // MCP and metrics are not REST routes of the document.
        let mut routed: Vec<&str> = paths::ALL
            .into_iter()
            .filter(|p| *p != paths::MCP && *p != paths::METRICS)
            .collect();
        routed.sort_unstable();
        assert_eq!(documented, routed);
    }
}
