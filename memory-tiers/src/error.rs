//! The errors memory operations return.
//!
//! Its guide is in the docs of its main type.

/// What can go wrong in a memory operation.
///
/// Failures of the resilient client (Redis unreachable, circuit open, a server error) are
/// carried as [`Error::Redis`]; input the tiers refuse is [`Error::InvalidInput`] before
/// anything is sent; a stored entry that cannot be decoded (a truncated or corrupt payload,
/// a decompressed size over the configured maximum) is [`Error::Corrupt`], never a panic;
/// one written in another schema version is [`Error::UnsupportedSchema`]; an update that
/// kept losing to concurrent updates of the same entry is [`Error::Contended`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Refused input: a bad agent id or memory id, an oversized value, a non-finite number.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A stored entry could not be decoded.
    #[error(
        "corrupt memory entry: {0} (it was damaged, or written by something other than this crate; delete it)"
    )]
    Corrupt(String),
    /// A stored entry was written in a layout this build does not read (an older or a
    /// newer version of this crate): it is refused, never misread.
    #[error(
        "memory entry is in schema version {found}; this build reads version {supported}: read it with the build that wrote it, or clear the agent's memories (or let them expire) before switching"
    )]
    UnsupportedSchema {
        /// The version the entry was written in.
        found: u8,
        /// The version this build reads and writes.
        supported: u8,
    },
    /// A read-modify-write lost every attempt to concurrent changes of the same entry
    /// (for example many `adjust_importance` calls on one memory at once); nothing was
    /// changed by this call.
    #[error(
        "memory entry kept changing under a concurrent update: {0}; nothing was changed, retry the call"
    )]
    Contended(String),
    /// The resilient client failed.
    #[error(transparent)]
    Redis(#[from] resilience_core::Error),
}

impl Error {
    /// Whether the error says the primary store could not be reached: the client's outage
    /// class ([`ErrorClass::is_outage`](resilience_core::ErrorClass::is_outage)), the
    /// cases where reads and writes fall back to the local tier.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Redis(e) => e.class().is_outage(),
            _ => false,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
