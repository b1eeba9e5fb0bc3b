//! The JSON the server takes and gives, over REST and MCP alike.
//!
//! Requests refuse fields they do not know (a misspelt `embeding` is an error, not a
//! memory stored without its vector). Memory ids are ULID strings; times are Unix
//! milliseconds.

use std::collections::BTreeMap;

use resilient_redis::memory::{MaintainReport, Retrieved, Scored, Source};
use resilient_redis::{Priority, TicketOutcome};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::problem::ErrorDetail;

/// How hard a write holds on through an outage.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PriorityParam {
    /// Retried with backoff, then queued.
    Critical,
    /// Queued ahead of normal writes.
    High,
    /// Queued (the default).
    #[default]
    Normal,
    /// Dropped if Redis cannot take it now.
    Low,
}

impl From<PriorityParam> for Priority {
    fn from(p: PriorityParam) -> Self {
        match p {
            PriorityParam::Critical => Priority::Critical,
            PriorityParam::High => Priority::High,
            PriorityParam::Normal => Priority::Normal,
            PriorityParam::Low => Priority::Low,
        }
    }
}

/// One memory to store.
#[derive(Clone, Debug, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreRequest {
    /// The agent's step when it happened (any increasing counter).
    pub step: u64,
    /// What to remember: any JSON value.
    pub content: Value,
    /// How important it is, in [0, 1] (default 0.5).
    #[serde(default)]
    pub importance: Option<f64>,
    /// A free-form kind, such as `observation` or `action` (default `observation`).
    #[serde(default)]
    pub memory_type: Option<String>,
    /// The memory's embedding, as wide as the server's embedding dimension. Omit it to
    /// store a memory that similarity search does not see, or set `embed`.
    #[serde(default)]
    pub embedding: Option<Vec<f32>>,
    /// Embed the content with the server's built-in hashing embedder (a string content as
    /// it is, anything else as its JSON text). Not with `embedding`.
    #[serde(default)]
    pub embed: Option<bool>,
    /// When it happened, Unix ms (default: now).
    #[serde(default)]
    pub timestamp_ms: Option<u64>,
    /// How hard the write holds on through an outage (default `normal`).
    #[serde(default)]
    pub priority: Option<PriorityParam>,
}

/// Several memories to store, each on its own (one failing does not undo the others),
/// after all of them are checked (one refused stores none).
#[derive(Clone, Debug, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreBatchRequest {
    /// The memories, at most the server's batch limit.
    pub memories: Vec<StoreRequest>,
}

/// What became of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome {
    /// Stored in Redis.
    Stored,
    /// Redis could not take it now: it waits in the recovery queue and is written when
    /// Redis is back. Poll its ticket for the end.
    Queued,
    /// A `low`-priority write Redis could not take: not stored.
    Dropped,
    /// Not stored: `error` says why.
    Failed,
}

/// The receipt of one write.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, JsonSchema)]
pub struct StoreReceiptBody {
    /// The memory's id (a ULID); empty when the write failed before it was given one.
    pub memory_id: String,
    /// What became of the write.
    pub outcome: WriteOutcome,
    /// The ticket to poll at `/v1/tickets/{ticket}`, when queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<u64>,
    /// Whether the memory was also kept in the server's local fallback (Redis did not
    /// confirm it), so reads find it during the outage.
    pub in_fallback: bool,
    /// Why it was not stored, when `failed` or `dropped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub error: Option<ErrorDetail>,
}

/// The receipts of a batch, in the request's order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StoreBatchResponse {
    /// One receipt per memory.
    pub receipts: Vec<StoreReceiptBody>,
}

/// A stored memory.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct MemoryBody {
    /// Its id (a ULID).
    pub memory_id: String,
    /// The agent it belongs to.
    pub agent_id: String,
    /// The agent's step when it happened.
    pub step: u64,
    /// When it happened, Unix ms.
    pub timestamp_ms: u64,
    /// What was stored.
    pub content: Value,
    /// Its importance, in [0, 1].
    pub importance: f64,
    /// Its kind.
    pub memory_type: String,
    /// The tier it lives in: `stm` or `im`.
    pub tier: String,
    /// Where this read found it: `stm`, `im`, or `fallback` (Redis unreachable).
    pub source: String,
    /// How many times it was read by id.
    pub retrieval_count: u64,
    /// When it was stored, Unix ms.
    pub created_ms: u64,
    /// When it was last read by id, Unix ms.
    pub last_access_ms: u64,
    /// Whether it has an embedding (the vector itself is not returned).
    pub has_embedding: bool,
}

impl From<Retrieved> for MemoryBody {
    fn from(r: Retrieved) -> Self {
        let e = r.entry;
        MemoryBody {
            memory_id: e.memory_id.to_string(),
            agent_id: e.agent_id,
            step: e.step_number,
            timestamp_ms: e.timestamp,
            content: e.content,
            importance: e.metadata.importance_score,
            memory_type: e.metadata.memory_type,
            tier: e.metadata.current_tier.as_str().to_owned(),
            source: match r.source {
                Source::Stm => "stm",
                Source::Im => "im",
                _ => "fallback",
            }
            .to_owned(),
            retrieval_count: e.metadata.retrieval_count,
            created_ms: e.metadata.creation_time,
            last_access_ms: e.metadata.last_access_time,
            has_embedding: e.embedding.is_some(),
        }
    }
}

/// Memories, in the order the query defines.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MemoriesResponse {
    /// The memories.
    pub memories: Vec<MemoryBody>,
}

/// Which memories to list: the newest by default, or one range (steps, times or
/// importance), oldest first (most important first for importance).
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// How many at most (default 20).
    pub limit: Option<usize>,
    /// Steps from (inclusive).
    pub from_step: Option<u64>,
    /// Steps to (inclusive).
    pub to_step: Option<u64>,
    /// Times from, Unix ms (inclusive).
    pub from_ms: Option<u64>,
    /// Times to, Unix ms (inclusive).
    pub to_ms: Option<u64>,
    /// Importance at least.
    pub min_importance: Option<f64>,
    /// Importance at most.
    pub max_importance: Option<f64>,
}

/// Live memories per tier.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CountBody {
    /// In short-term memory.
    pub stm: u64,
    /// In intermediate memory.
    pub im: u64,
    /// Both.
    pub total: u64,
}

/// Conditions a memory must meet; every one given must hold.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterBody {
    /// Its kind is exactly this.
    #[serde(default)]
    pub memory_type: Option<String>,
    /// Happened at or after this, Unix ms.
    #[serde(default)]
    pub from_ms: Option<u64>,
    /// Happened at or before this, Unix ms.
    #[serde(default)]
    pub to_ms: Option<u64>,
    /// Step at least.
    #[serde(default)]
    pub from_step: Option<u64>,
    /// Step at most.
    #[serde(default)]
    pub to_step: Option<u64>,
    /// Importance at least.
    #[serde(default)]
    pub min_importance: Option<f64>,
    /// Importance at most.
    #[serde(default)]
    pub max_importance: Option<f64>,
    /// Content attributes by dotted path (`"place.room": "kitchen"`), each equal.
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, Value>>,
    /// The content's text contains this (case-insensitive).
    #[serde(default)]
    pub content_contains: Option<String>,
}

/// How a similarity search ranks: the sum of each term times its weight.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightsBody {
    /// Cosine similarity to the query vector (default 1).
    #[serde(default)]
    pub cosine: Option<f32>,
    /// BM25 of the request's `text` against each memory's words (default 0).
    #[serde(default)]
    pub text: Option<f32>,
    /// Recency, `2^(-age / recency_half_life_ms)` (default 0).
    #[serde(default)]
    pub recency: Option<f32>,
    /// The half-life of recency, ms (default one hour).
    #[serde(default)]
    pub recency_half_life_ms: Option<u64>,
    /// The memory's importance (default 0).
    #[serde(default)]
    pub importance: Option<f32>,
}

/// A similarity search.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarRequest {
    /// The query vector, as wide as the server's embedding dimension.
    #[serde(default)]
    pub embedding: Option<Vec<f32>>,
    /// The query text: embedded with the built-in hashing embedder when no `embedding` is
    /// given, and the words BM25 scores when `weights.text` is set.
    #[serde(default)]
    pub text: Option<String>,
    /// How many results at most (default 10).
    #[serde(default)]
    pub k: Option<usize>,
    /// Only memories meeting it.
    #[serde(default)]
    pub filter: Option<FilterBody>,
    /// How to rank (default: cosine alone).
    #[serde(default)]
    pub weights: Option<WeightsBody>,
}

/// One search result.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScoredBody {
    /// Its score under the request's weights.
    pub score: f32,
    /// The memory.
    pub memory: MemoryBody,
}

impl From<Scored> for ScoredBody {
    fn from(s: Scored) -> Self {
        ScoredBody {
            score: s.score,
            memory: s.memory.into(),
        }
    }
}

/// Search results, best first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SimilarResponse {
    /// The results.
    pub results: Vec<ScoredBody>,
}

/// A filtered listing.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindRequest {
    /// The conditions.
    #[serde(default)]
    pub filter: FilterBody,
    /// How many at most (default 20).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A content search.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The text to look for in each memory's content (case-insensitive).
    pub text: String,
    /// How many at most (default 20).
    pub limit: Option<usize>,
}

/// A change of importance.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportanceRequest {
    /// Added to the importance, which stays within [0, 1].
    pub delta: f64,
}

/// A memory's importance after a change.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ImportanceBody {
    /// The memory.
    pub memory_id: String,
    /// Its importance now.
    pub importance: f64,
}

/// The end of a delete.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeletedBody {
    /// The memory.
    pub memory_id: String,
    /// Whether it existed anywhere (it exists nowhere now).
    pub deleted: bool,
}

/// What a maintenance pass did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MaintainBody {
    /// Memories moved from STM to IM.
    pub moved: u64,
    /// Expired index members removed.
    pub expired_removed: u64,
    /// Live STM memories after the pass.
    pub stm_count: u64,
    /// Live IM memories after the pass.
    pub im_count: u64,
    /// Whether IM is over its capacity.
    pub im_over_capacity: bool,
}

impl From<MaintainReport> for MaintainBody {
    fn from(r: MaintainReport) -> Self {
        MaintainBody {
            moved: r.moved,
            expired_removed: r.expired_removed,
            stm_count: r.stm_count,
            im_count: r.im_count,
            im_over_capacity: r.im_over_capacity,
        }
    }
}

/// The receipt of forgetting an agent.
#[derive(Clone, Debug, Serialize, ToSchema, JsonSchema)]
pub struct ForgetReceipt {
    /// The agent forgotten.
    pub agent_id: String,
    /// Memories deleted, over both tiers and the fallback.
    pub deleted: u64,
    /// When, Unix ms. Writes of the agent still queued from an outage are written when
    /// Redis is back: forget again after the outage to be sure.
    pub forgotten_at_ms: u64,
}

/// Where a queued write stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Still waiting for Redis.
    Pending,
    /// Written.
    Completed,
    /// Given up: `reason` says why.
    DeadLettered,
}

/// A queued write's ticket.
#[derive(Clone, Debug, Serialize, ToSchema, JsonSchema)]
pub struct TicketBody {
    /// The ticket.
    pub ticket: u64,
    /// The agent whose memory it is.
    pub agent_id: String,
    /// The memory.
    pub memory_id: String,
    /// Where it stands.
    pub status: TicketStatus,
    /// Why it was given up, when dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TicketBody {
    /// The body of a ticket whose outcome is `outcome` (`None`: pending).
    pub(crate) fn new(
        ticket: u64,
        agent_id: &str,
        memory_id: &str,
        outcome: Option<&TicketOutcome>,
    ) -> Self {
        let (status, reason) = match outcome {
            None => (TicketStatus::Pending, None),
            Some(TicketOutcome::Completed) => (TicketStatus::Completed, None),
            Some(TicketOutcome::DeadLettered { reason }) => {
                (TicketStatus::DeadLettered, Some(reason.to_string()))
            }
        };
        TicketBody {
            ticket,
            agent_id: agent_id.to_owned(),
            memory_id: memory_id.to_owned(),
            status,
            reason,
        }
    }
}

/// Whether the server can take requests.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok` (Redis taking writes), `degraded` (writes waiting for Redis in the recovery
    /// queue, or Redis unreachable with the fallback serving) or `unavailable` (Redis
    /// unreachable, no fallback: not ready).
    pub status: String,
    /// The circuit breaker's state: `closed`, `open` or `half_open`.
    pub breaker: String,
    /// Whether a local fallback keeps writes and recent reads through an outage.
    pub fallback: bool,
    /// Writes waiting in the recovery queues.
    pub queued: u64,
}
