//! Wall-clock milliseconds that follow tokio's clock.
//!
//! Entry timestamps and expiry deadlines are Unix milliseconds. They are read from one base
//! `SystemTime` plus the time elapsed on tokio's clock since, so tests that pause and
//! advance tokio's clock (as the in-memory backend's TTLs do) see timestamps move with it.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A clock in Unix milliseconds, advancing with tokio's clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    base_ms: u64,
    base: Instant,
}

impl Clock {
    /// A clock reading the system time now.
    pub(crate) fn new() -> Self {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            base_ms,
            base: Instant::now(),
        }
    }

    /// Unix milliseconds now.
    pub(crate) fn now_ms(&self) -> u64 {
        self.base_ms + self.base.elapsed().as_millis() as u64
    }
}
