//! Tier settings, with these defaults: STM keeps 1000 entries per agent for 24 hours,
//! IM 10000 for 7 days, values up to 1 MiB.

use std::time::Duration;

/// The default largest content accepted, in bytes of its JSON encoding: 1 MiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Short-term memory settings.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`StmConfig::default().with_…(…)`), or assign fields of a default value.
#[derive(Clone, Debug, PartialEq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct StmConfig {
    /// How long an entry lives (its hash's TTL). Default 24 h.
    pub ttl: Duration,
    /// Entries per agent before the lowest-value ones move to IM. Default 1000.
    pub capacity: usize,
    /// Largest entry accepted: its content's JSON plus its metadata and embedding, in
    /// bytes. Default 1 MiB.
    pub max_value_bytes: usize,
    /// A maintenance pass also moves entries whose TTL ends within this window. Default 1 h.
    pub near_expiry: Duration,
    /// When a write finds STM over capacity, it moves the excess plus this many more, so
    /// transitions run in batches rather than on every write. Default 100.
    pub transition_slack: usize,
    /// At most this many expired index members are removed per query. Default 1000.
    pub cleanup_batch: usize,
}

impl Default for StmConfig {
    fn default() -> Self {
        StmConfig {
            ttl: Duration::from_secs(24 * 3600),
            capacity: 1000,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            near_expiry: Duration::from_secs(3600),
            transition_slack: 100,
            cleanup_batch: 1000,
        }
    }
}

/// How IM entries are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum CompressionLevel {
    /// Stored as written.
    None,
    /// Transient content fields dropped, floats rounded to 3 decimal places.
    #[default]
    Light,
    /// Transient fields dropped, floats rounded to 1 place, content compressed with LZ4.
    Heavy,
}

impl CompressionLevel {
    /// The level as a number: 0, 1 or 2.
    pub fn as_u8(self) -> u8 {
        match self {
            CompressionLevel::None => 0,
            CompressionLevel::Light => 1,
            CompressionLevel::Heavy => 2,
        }
    }
}

/// Intermediate memory settings.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`ImConfig::default().with_…(…)`), or assign fields of a default value.
#[derive(Clone, Debug, PartialEq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct ImConfig {
    /// How long an entry lives. Default 7 days.
    pub ttl: Duration,
    /// Entries per agent the tier is sized for. Default 10000. There is no tier below IM
    /// here, so IM never deletes to honour it: [`crate::MaintainReport::im_over_capacity`]
    /// reports it instead.
    pub capacity: usize,
    /// Compression of moved entries. Default [`CompressionLevel::Light`].
    pub compression: CompressionLevel,
    /// Top-level content fields dropped by compression. Default `raw_observation`,
    /// `debug_info`, `temporary_data`.
    pub transient_fields: Vec<String>,
    /// Largest content accepted, and largest decompressed content, in bytes. Default 1 MiB.
    pub max_value_bytes: usize,
    /// At most this many expired index members are removed per query. Default 1000.
    pub cleanup_batch: usize,
}

impl Default for ImConfig {
    fn default() -> Self {
        ImConfig {
            ttl: Duration::from_secs(7 * 24 * 3600),
            capacity: 10_000,
            compression: CompressionLevel::Light,
            transient_fields: vec![
                "raw_observation".to_owned(),
                "debug_info".to_owned(),
                "temporary_data".to_owned(),
            ],
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            cleanup_batch: 1000,
        }
    }
}
