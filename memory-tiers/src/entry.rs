//! What a memory is: [`MemoryEntry`], what an agent writes ([`MemoryInput`]) and where a
//! read found it ([`Retrieved`]).

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// A stored tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// Short-term memory.
    Stm,
    /// Intermediate memory.
    Im,
}

impl Tier {
    /// `"stm"` or `"im"`: the tier's segment in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Stm => "stm",
            Tier::Im => "im",
        }
    }
}

/// Where a read found an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Short-term memory on the primary store.
    Stm,
    /// Intermediate memory on the primary store.
    Im,
    /// The local fallback, while the primary store was unreachable: recent writes only.
    Fallback,
}

/// Bookkeeping about an entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryMetadata {
    /// When the entry was first stored, Unix ms.
    pub creation_time: u64,
    /// When it was last read by id (the creation time until then), Unix ms.
    pub last_access_time: u64,
    /// 0 (as written), 1 or 2; see [`crate::CompressionLevel`].
    pub compression_level: u8,
    /// How important the entry is, always within [0, 1].
    pub importance_score: f64,
    /// How many times it was read by id.
    pub retrieval_count: u64,
    /// A free-form kind ("observation", "action", ...).
    pub memory_type: String,
    /// The tier it is stored in.
    pub current_tier: Tier,
}

/// One memory of one agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// Unique, time-ordered id.
    pub memory_id: Ulid,
    /// The agent it belongs to.
    pub agent_id: String,
    /// The agent's step when it was written.
    pub step_number: u64,
    /// When it happened, Unix ms.
    pub timestamp: u64,
    /// What the agent stored.
    pub content: serde_json::Value,
    /// Bookkeeping.
    pub metadata: MemoryMetadata,
    /// An optional embedding vector.
    pub embedding: Option<Vec<f32>>,
}

/// What an agent asks to store.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryInput {
    /// The agent's step.
    pub step_number: u64,
    /// The content (any JSON).
    pub content: serde_json::Value,
    /// Importance; clamped to [0, 1] when stored. Default 0.5.
    pub importance: f64,
    /// A free-form kind. Default `"observation"`.
    pub memory_type: String,
    /// An optional embedding.
    pub embedding: Option<Vec<f32>>,
    /// When it happened, Unix ms; `None` means now.
    pub timestamp: Option<u64>,
}

impl MemoryInput {
    /// Content at a step, with importance 0.5 and type `"observation"`.
    pub fn new(step_number: u64, content: serde_json::Value) -> Self {
        MemoryInput {
            step_number,
            content,
            importance: 0.5,
            memory_type: "observation".to_owned(),
            embedding: None,
            timestamp: None,
        }
    }

    /// Sets the importance (clamped to [0, 1] when stored).
    pub fn importance(mut self, importance: f64) -> Self {
        self.importance = importance;
        self
    }

    /// Sets the memory type.
    pub fn memory_type(mut self, memory_type: impl Into<String>) -> Self {
        self.memory_type = memory_type.into();
        self
    }

    /// Sets the embedding.
    pub fn embedding(mut self, embedding: Vec<f32>) -> Self {
        self.embedding = Some(embedding);
        self
    }

    /// Sets the timestamp (Unix ms) instead of now.
    pub fn timestamp(mut self, timestamp_ms: u64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// An entry and where it was found.
#[derive(Clone, Debug, PartialEq)]
pub struct Retrieved {
    /// The entry.
    pub entry: MemoryEntry,
    /// Where it came from.
    pub source: Source,
}

/// Clamps an importance to [0, 1]; NaN (which `f64::clamp` passes through) becomes 0.
pub(crate) fn clamp_importance(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}
