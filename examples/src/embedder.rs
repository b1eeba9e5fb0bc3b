//! The examples' text embedder: memory-tiers' deterministic
//! [`hash_embedding`](memory_tiers::hash_embedding), at its usual width.

pub use memory_tiers::{HASH_EMBEDDING_DIMENSION as DIMENSION, hash_embedding as embed};
