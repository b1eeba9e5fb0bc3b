//! A tenant and everything it can do: the one place the REST routes and the MCP tools
//! turn requests into memory operations.
//!
//! Each operation checks its input first and names the field at fault, so a refused
//! request stores nothing; then it runs on the tenant's own [`TieredMemory`], whose keys
//! live under the tenant's namespace, so no tenant reaches another's memories.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::DefaultDirectRateLimiter;
use governor::clock::{Clock, DefaultClock};
use resilient_redis::StoreOutcome;
use resilient_redis::memory::{
    AgentMemory, Filter, MAX_QUERY_LIMIT, MemoryInput, Scoring, StoreReceipt, TieredMemory,
    hash_embedding, parse_memory_id,
};
use serde_json::Value;

use crate::dto::{
    CountBody, DeletedBody, FilterBody, FindRequest, ForgetReceipt, ImportanceBody, ListQuery,
    MaintainBody, MemoriesResponse, MemoryBody, PriorityParam, SearchQuery, SimilarRequest,
    SimilarResponse, StoreBatchResponse, StoreReceiptBody, StoreRequest, WriteOutcome,
};
use crate::problem::ApiError;
use crate::tickets::Tickets;

/// What a list or search returns when the request does not say.
const DEFAULT_LIMIT: usize = 20;
/// How many results a similarity search returns when the request does not say.
const DEFAULT_K: usize = 10;
/// Recency's half-life when the request gives a weight and no half-life.
const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(60 * 60);

/// The limits every request is held to.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The embedding width, for stored memories and queries alike.
    pub dimension: usize,
    /// Memories per batch at most.
    pub max_batch: usize,
    /// Results per query at most (a list's `limit`, a search's `k`).
    pub max_results: usize,
}

/// What every tenant shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) tickets: Tickets,
}

/// One token's view of the server: its namespace's memories and its request rate.
#[derive(Debug)]
pub struct Tenant {
    namespace: Arc<str>,
    memory: TieredMemory,
    limiter: Option<DefaultDirectRateLimiter>,
    shared: Arc<Shared>,
}

impl Tenant {
    pub(crate) fn new(
        namespace: Arc<str>,
        memory: TieredMemory,
        limiter: Option<DefaultDirectRateLimiter>,
        shared: Arc<Shared>,
    ) -> Self {
        Tenant {
            namespace,
            memory,
            limiter,
            shared,
        }
    }

    /// The namespace its memories live under.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Takes one request from the token's rate.
    ///
    /// # Errors
    ///
    /// `rate_limited` (429) when the rate is spent, with the time until the next request.
    pub fn admit(&self) -> Result<(), ApiError> {
        match &self.limiter {
            Some(limiter) => limiter.check().map_err(|not_until| {
                ApiError::rate_limited(not_until.wait_time_from(DefaultClock::default().now()))
            }),
            None => Ok(()),
        }
    }

    fn agent(&self, agent_id: &str) -> Result<AgentMemory, ApiError> {
        self.memory
            .agent(agent_id)
            .map_err(|e| ApiError::from(e).at("agent_id"))
    }

    fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Stores one memory.
    ///
    /// # Errors
    ///
    /// A refused field (nothing stored); `dropped` for a `low` write Redis could not take;
    /// the client's failure otherwise.
    pub async fn store(
        &self,
        agent_id: &str,
        request: StoreRequest,
    ) -> Result<StoreReceiptBody, ApiError> {
        let agent = self.agent(agent_id)?;
        let (input, priority) = self.check_store(request, "")?;
        let receipt = agent.store(input, priority.into()).await?;
        let body = self.receipt_body(agent_id, receipt);
        match body.outcome {
            WriteOutcome::Stored | WriteOutcome::Queued => Ok(body),
            WriteOutcome::Dropped => Err(ApiError::dropped()),
            WriteOutcome::Failed => Err(body.error.map_or_else(
                || ApiError::internal("the write failed"),
                ApiError::from_detail,
            )),
        }
    }

    /// Stores several memories: all are checked first (one refused stores none), then each
    /// is stored on its own and gets its own receipt.
    ///
    /// # Errors
    ///
    /// A refused field (nothing stored), or a batch over the limit.
    pub async fn store_batch(
        &self,
        agent_id: &str,
        requests: Vec<StoreRequest>,
    ) -> Result<StoreBatchResponse, ApiError> {
        let agent = self.agent(agent_id)?;
        let max = self.limits().max_batch;
        if requests.is_empty() || requests.len() > max {
            return Err(ApiError::invalid_field(
                "memories",
                format!("{} memories in the batch", requests.len()),
                format!("send 1 to {max} memories per batch"),
            ));
        }
        let inputs = requests
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.check_store(r, &format!("memories[{i}].")))
            .collect::<Result<Vec<_>, _>>()?;
        let stores = inputs
            .into_iter()
            .map(|(input, priority)| agent.store(input, priority.into()));
        let receipts = futures::future::join_all(stores)
            .await
            .into_iter()
            .map(|r| match r {
                Ok(receipt) => self.receipt_body(agent_id, receipt),
                Err(e) => StoreReceiptBody {
                    memory_id: String::new(),
                    outcome: WriteOutcome::Failed,
                    ticket: None,
                    in_fallback: false,
                    error: Some(ApiError::from(e).detail().clone()),
                },
            })
            .collect();
        Ok(StoreBatchResponse { receipts })
    }

    fn receipt_body(&self, agent_id: &str, receipt: StoreReceipt) -> StoreReceiptBody {
        let memory_id = receipt.memory_id.to_string();
        let (outcome, ticket, error) = match receipt.outcome {
            StoreOutcome::Stored => (WriteOutcome::Stored, None, None),
            StoreOutcome::Queued(ticket) => {
                let id =
                    self.shared
                        .tickets
                        .track(&self.namespace, agent_id, memory_id.clone(), ticket);
                (WriteOutcome::Queued, Some(id), None)
            }
            StoreOutcome::Dropped => (
                WriteOutcome::Dropped,
                None,
                Some(ApiError::dropped().detail().clone()),
            ),
            StoreOutcome::Failed(e) => (
                WriteOutcome::Failed,
                None,
                Some(ApiError::from(e).detail().clone()),
            ),
        };
        StoreReceiptBody {
            memory_id,
            outcome,
            ticket,
            in_fallback: receipt.in_fallback,
            error,
        }
    }

    /// Checks one memory to store and builds what the tiers take; `at` prefixes the
    /// fields named in errors (`memories[3].`).
    fn check_store(
        &self,
        request: StoreRequest,
        at: &str,
    ) -> Result<(MemoryInput, PriorityParam), ApiError> {
        let mut input = MemoryInput::new(request.step, request.content);
        if let Some(importance) = request.importance {
            if !(0.0..=1.0).contains(&importance) {
                return Err(ApiError::invalid_field(
                    format!("{at}importance"),
                    format!("importance {importance} is outside [0, 1]"),
                    "send a number from 0 to 1",
                ));
            }
            input = input.importance(importance);
        }
        if let Some(kind) = request.memory_type {
            if kind.is_empty() || kind.len() > 64 {
                return Err(ApiError::invalid_field(
                    format!("{at}memory_type"),
                    format!("a memory type of {} bytes", kind.len()),
                    "send 1 to 64 bytes, such as \"observation\"",
                ));
            }
            input = input.memory_type(kind);
        }
        let embedding = match (request.embedding, request.embed.unwrap_or(false)) {
            (Some(_), true) => {
                return Err(ApiError::invalid_field(
                    format!("{at}embed"),
                    "both an embedding and embed: true were given",
                    "send your own embedding, or embed: true, not both",
                ));
            }
            (Some(v), false) => Some(self.check_vector(v, &format!("{at}embedding"))?),
            (None, true) => Some(hash_embedding(
                &text_of(&input.content),
                self.limits().dimension,
            )),
            (None, false) => None,
        };
        if let Some(v) = embedding {
            input = input.embedding(v);
        }
        if let Some(ts) = request.timestamp_ms {
            input = input.timestamp(ts);
        }
        Ok((input, request.priority.unwrap_or_default()))
    }

    fn check_vector(&self, v: Vec<f32>, field: &str) -> Result<Vec<f32>, ApiError> {
        let dimension = self.limits().dimension;
        if v.len() != dimension {
            return Err(ApiError::invalid_field(
                field,
                format!(
                    "{} values, this server's embeddings have {dimension}",
                    v.len()
                ),
                format!("send {dimension} numbers, or text to embed with the built-in embedder"),
            ));
        }
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(ApiError::invalid_field(
                format!("{field}[{i}]"),
                "a value that is not a finite 32-bit float",
                "send finite numbers within ±3.4e38",
            ));
        }
        Ok(v)
    }

    fn check_limit(
        &self,
        limit: Option<usize>,
        default: usize,
        field: &str,
    ) -> Result<usize, ApiError> {
        let max = self.limits().max_results.min(MAX_QUERY_LIMIT);
        match limit.unwrap_or(default) {
            n if (1..=max).contains(&n) => Ok(n),
            n => Err(ApiError::invalid_field(
                field,
                format!("{field} {n}"),
                format!("ask for 1 to {max}"),
            )),
        }
    }

    /// A memory by id (counted as a retrieval).
    ///
    /// # Errors
    ///
    /// `not_found` when the agent has no such memory; a bad id; the client's failure.
    pub async fn get(&self, agent_id: &str, memory_id: &str) -> Result<MemoryBody, ApiError> {
        let agent = self.agent(agent_id)?;
        let id = memory_id_of(memory_id)?;
        agent.get(id).await?.map(MemoryBody::from).ok_or_else(|| {
            ApiError::not_found(format!("agent {agent_id:?} has no memory {memory_id}"))
        })
    }

    /// The newest memories, or one range of them.
    ///
    /// # Errors
    ///
    /// A refused parameter (two ranges, a bad limit); the client's failure.
    pub async fn list(&self, agent_id: &str, q: ListQuery) -> Result<MemoriesResponse, ApiError> {
        let agent = self.agent(agent_id)?;
        let limit = self.check_limit(q.limit, DEFAULT_LIMIT, "limit")?;
        let steps = q.from_step.is_some() || q.to_step.is_some();
        let times = q.from_ms.is_some() || q.to_ms.is_some();
        let importance = q.min_importance.is_some() || q.max_importance.is_some();
        let found = match (steps, times, importance) {
            (false, false, false) => agent.recent(limit).await?,
            (true, false, false) => {
                let (from, to) = (q.from_step.unwrap_or(0), q.to_step.unwrap_or(u64::MAX));
                agent.by_step_range(from, to, limit).await?
            }
            (false, true, false) => {
                let (from, to) = (q.from_ms.unwrap_or(0), q.to_ms.unwrap_or(u64::MAX));
                agent.by_time_range(from, to, limit).await?
            }
            (false, false, true) => {
                let (min, max) =
                    check_importance_range(q.min_importance, q.max_importance, "min_importance")?;
                agent.by_importance(min, max, limit).await?
            }
            _ => {
                return Err(ApiError::invalid_field(
                    "from_step",
                    "more than one range was given",
                    "give steps (from_step, to_step), times (from_ms, to_ms) or importance (min_importance, max_importance), one of them",
                ));
            }
        };
        Ok(MemoriesResponse {
            memories: found.into_iter().map(MemoryBody::from).collect(),
        })
    }

    /// Live memories per tier.
    ///
    /// # Errors
    ///
    /// The client's failure.
    pub async fn count(&self, agent_id: &str) -> Result<CountBody, ApiError> {
        let counts = self.agent(agent_id)?.count().await?;
        Ok(CountBody {
            stm: counts.stm,
            im: counts.im,
            total: counts.total(),
        })
    }

    /// The memories most similar to a vector or a text, ranked by the request's weights.
    ///
    /// # Errors
    ///
    /// A refused field (no query, a wrong width, a bad weight); the client's failure.
    pub async fn similar(
        &self,
        agent_id: &str,
        request: SimilarRequest,
    ) -> Result<SimilarResponse, ApiError> {
        let agent = self.agent(agent_id)?;
        let k = self.check_limit(request.k, DEFAULT_K, "k")?;
        let query = match (request.embedding, &request.text) {
            (Some(v), _) => self.check_vector(v, "embedding")?,
            (None, Some(text)) if !text.trim().is_empty() => {
                hash_embedding(text, self.limits().dimension)
            }
            _ => {
                return Err(ApiError::invalid_field(
                    "embedding",
                    "no query was given",
                    "send an embedding, or a text for the built-in embedder",
                ));
            }
        };
        let filter = filter_of(&request.filter.unwrap_or_default(), "filter.")?;
        let scoring = scoring_of(
            &request.weights.unwrap_or_default(),
            request.text.as_deref(),
        )?;
        let found = agent.similar_scored(&query, k, &filter, &scoring).await?;
        Ok(SimilarResponse {
            results: found.into_iter().map(Into::into).collect(),
        })
    }

    /// Memories meeting a filter, newest first.
    ///
    /// # Errors
    ///
    /// A refused field; the client's failure.
    pub async fn find(
        &self,
        agent_id: &str,
        request: FindRequest,
    ) -> Result<MemoriesResponse, ApiError> {
        let agent = self.agent(agent_id)?;
        let limit = self.check_limit(request.limit, DEFAULT_LIMIT, "limit")?;
        let filter = filter_of(&request.filter, "filter.")?;
        let found = agent.find(&filter, limit).await?;
        Ok(MemoriesResponse {
            memories: found.into_iter().map(MemoryBody::from).collect(),
        })
    }

    /// Memories whose content contains a text.
    ///
    /// # Errors
    ///
    /// A refused parameter; the client's failure.
    pub async fn search(
        &self,
        agent_id: &str,
        q: SearchQuery,
    ) -> Result<MemoriesResponse, ApiError> {
        let agent = self.agent(agent_id)?;
        let limit = self.check_limit(q.limit, DEFAULT_LIMIT, "limit")?;
        if q.text.trim().is_empty() {
            return Err(ApiError::invalid_field(
                "text",
                "an empty text",
                "send the text to look for",
            ));
        }
        let found = agent.search_content(&q.text, limit).await?;
        Ok(MemoriesResponse {
            memories: found.into_iter().map(MemoryBody::from).collect(),
        })
    }

    /// Deletes a memory everywhere.
    ///
    /// # Errors
    ///
    /// A bad id; the client's failure.
    pub async fn delete(&self, agent_id: &str, memory_id: &str) -> Result<DeletedBody, ApiError> {
        let agent = self.agent(agent_id)?;
        let id = memory_id_of(memory_id)?;
        let deleted = agent.delete(id).await?;
        Ok(DeletedBody {
            memory_id: id.to_string(),
            deleted,
        })
    }

    /// Adds to a memory's importance.
    ///
    /// # Errors
    ///
    /// `not_found`; a bad id or delta; the client's failure.
    pub async fn adjust_importance(
        &self,
        agent_id: &str,
        memory_id: &str,
        delta: f64,
    ) -> Result<ImportanceBody, ApiError> {
        let agent = self.agent(agent_id)?;
        let id = memory_id_of(memory_id)?;
        if !delta.is_finite() {
            return Err(ApiError::invalid_field(
                "delta",
                "a delta that is not finite",
                "send a number from -1 to 1",
            ));
        }
        let importance = agent.adjust_importance(id, delta).await?.ok_or_else(|| {
            ApiError::not_found(format!("agent {agent_id:?} has no memory {memory_id}"))
        })?;
        Ok(ImportanceBody {
            memory_id: id.to_string(),
            importance,
        })
    }

    /// Runs a maintenance pass for the agent now (moves from STM to IM, expired entries
    /// cleaned); the server also runs one in the background.
    ///
    /// # Errors
    ///
    /// The client's failure.
    pub async fn maintain(&self, agent_id: &str) -> Result<MaintainBody, ApiError> {
        Ok(self.agent(agent_id)?.maintain().await?.into())
    }

    /// Deletes every memory of the agent, in both tiers and the fallback, and stops
    /// maintaining it.
    ///
    /// # Errors
    ///
    /// The client's failure (then nothing is known to be deleted: forget again).
    pub async fn forget(&self, agent_id: &str) -> Result<ForgetReceipt, ApiError> {
        let deleted = self.agent(agent_id)?.clear().await?;
        self.memory.forget_agent(agent_id);
        Ok(ForgetReceipt {
            agent_id: agent_id.to_owned(),
            deleted,
            forgotten_at_ms: now_ms(),
        })
    }

    /// A queued write's ticket, if it is this tenant's.
    ///
    /// # Errors
    ///
    /// `not_found` for an unknown, forgotten or foreign ticket.
    pub fn ticket(&self, ticket: u64) -> Result<crate::dto::TicketBody, ApiError> {
        self.shared
            .tickets
            .get(&self.namespace, ticket)
            .ok_or_else(|| ApiError::not_found(format!("no ticket {ticket}")))
    }
}

fn memory_id_of(s: &str) -> Result<resilient_redis::memory::Ulid, ApiError> {
    parse_memory_id(s).map_err(|e| ApiError::from(e).at("memory_id"))
}

/// The text the built-in embedder reads from a content: a string as it is, anything else
/// as its JSON.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn check_importance_range(
    min: Option<f64>,
    max: Option<f64>,
    field: &str,
) -> Result<(f64, f64), ApiError> {
    let (min, max) = (min.unwrap_or(0.0), max.unwrap_or(1.0));
    if !(min.is_finite() && max.is_finite() && min <= max) {
        return Err(ApiError::invalid_field(
            field,
            format!("importance range [{min}, {max}]"),
            "send finite bounds with min_importance <= max_importance",
        ));
    }
    Ok((min, max))
}

fn filter_of(body: &FilterBody, at: &str) -> Result<Filter, ApiError> {
    let mut filter = Filter::new();
    if let Some(kind) = &body.memory_type {
        filter = filter.memory_type(kind.clone());
    }
    if body.from_ms.is_some() || body.to_ms.is_some() {
        filter = filter.time_range(body.from_ms.unwrap_or(0), body.to_ms.unwrap_or(u64::MAX));
    }
    if body.from_step.is_some() || body.to_step.is_some() {
        filter = filter.step_range(
            body.from_step.unwrap_or(0),
            body.to_step.unwrap_or(u64::MAX),
        );
    }
    if body.min_importance.is_some() || body.max_importance.is_some() {
        let (min, max) = check_importance_range(
            body.min_importance,
            body.max_importance,
            &format!("{at}min_importance"),
        )?;
        filter = filter.importance_range(min, max);
    }
    for (path, value) in body.attributes.iter().flatten() {
        filter = filter.attribute(path.clone(), value.clone());
    }
    if let Some(text) = &body.content_contains {
        filter = filter.content_contains(text);
    }
    Ok(filter)
}

fn scoring_of(weights: &crate::dto::WeightsBody, text: Option<&str>) -> Result<Scoring, ApiError> {
    let check = |w: Option<f32>, name: &str| -> Result<f32, ApiError> {
        match w {
            Some(w) if !(w.is_finite() && w >= 0.0) => Err(ApiError::invalid_field(
                format!("weights.{name}"),
                format!("weight {w}"),
                "send a finite weight of 0 or more",
            )),
            Some(w) => Ok(w),
            None => Ok(0.0),
        }
    };
    let mut scoring = Scoring::cosine().with_cosine_weight(
        weights
            .cosine
            .map_or(Ok(1.0), |w| check(Some(w), "cosine"))?,
    );
    let text_weight = check(weights.text, "text")?;
    if text_weight > 0.0 {
        match text {
            Some(t) if !t.trim().is_empty() => scoring = scoring.with_text(t, text_weight),
            _ => {
                return Err(ApiError::invalid_field(
                    "text",
                    "weights.text is set but no text was given",
                    "send the query's words in text",
                ));
            }
        }
    }
    let recency = check(weights.recency, "recency")?;
    if recency > 0.0 {
        let half_life = weights
            .recency_half_life_ms
            .map_or(DEFAULT_HALF_LIFE, Duration::from_millis);
        if half_life.is_zero() {
            return Err(ApiError::invalid_field(
                "weights.recency_half_life_ms",
                "a half-life of 0",
                "send a half-life of 1 ms or more",
            ));
        }
        scoring = scoring.with_recency(half_life, recency);
    }
    let importance = check(weights.importance, "importance")?;
    if importance > 0.0 {
        scoring = scoring.with_importance(importance);
    }
    Ok(scoring)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
