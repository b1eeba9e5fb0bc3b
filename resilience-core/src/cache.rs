//! The optional client-side read cache, kept honest by Redis's own invalidation messages.
//!
//! Its guide is in the docs of its main type.

#[cfg(feature = "cache")]
mod store;
pub(crate) mod tracking;
mod types;

#[cfg(feature = "cache")]
pub(crate) use store::{Entry, ReadCache};

#[cfg(feature = "cache")]
pub use types::{CacheConfig, CacheStats, Cached, Freshness};
pub use types::{Invalidation, InvalidationFeed, TrackedReply};
