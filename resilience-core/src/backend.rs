//! Writing a backend: what a Redis driver (or any store) needs to implement
//! [`KvBackend`](crate::KvBackend), the one trait the resilience layer calls.
//!
//! A backend only translates [`Command`](crate::Command)s to its driver and classifies the driver's errors
//! into [`ErrorKind`](crate::ErrorKind)s. Breaker, retry and queueing live above it, once,
//! in this crate: a backend must not retry on its own in a way that hides an outage.
//!
//! # Writing a backend
//!
//! Everything a third-party backend needs from this crate, in the order it needs it:
//!
//! - **Sending commands.** [`Command::write_args`](crate::Command::write_args) spells each command into the
//!   driver's buffer through an [`ArgSink`]; never spell a command
//!   yourself. [`Command::keys`](crate::Command::keys) says where to route it (Redis Cluster:
//!   [`hash_slot`](crate::hash_slot)).
//! - **Shaping replies.** Convert the driver's reply one to one into a [`Value`](crate::Value), then
//!   [`ReplyShape::canonicalize`] gives it the shape the command documents.
//! - **Classifying errors.** A server error line becomes a [`BackendError`](crate::BackendError) with
//!   [`BackendError::from_reply`](crate::BackendError::from_reply) (the code decides the kind, by
//!   [`ErrorKind::from_reply_code`](crate::ErrorKind::from_reply_code)); a driver failure
//!   becomes [`BackendError::new`](crate::BackendError::new) with the kind the rules of [`ErrorKind`](crate::ErrorKind)
//!   give (not sent: `Unavailable`; maybe sent: `Timeout`), keeping the driver's error with
//!   [`BackendError::with_source`](crate::BackendError::with_source).
//! - **Client-side caching (optional).** A backend that supports RESP3 client tracking
//!   returns an [`InvalidationFeed`] from [`KvBackend::invalidations`](crate::KvBackend::invalidations) and answers
//!   [`KvBackend::execute_tracked`](crate::KvBackend::execute_tracked) with a [`TrackedReply`]; the
//!   [`TrackingHub`] does the driver-independent half.
//! - **Proving it.** The `resilient-redis-testkit` crate's `conformance` suite runs every
//!   command against a backend and checks each reply shape and error classification
//!   against what real Redis 7 gives.
//!
//! # The wire
//!
//! The wire: a [`Command`](crate::Command) as the argument list Redis receives, and a reply as the canonical
//! [`Value`](crate::Value) its command promises.
//!
//! This is the one place where commands are spelled and replies are shaped. A Redis
//! backend does three things with it:
//!
//! 1. [`Command::write_args`](crate::Command::write_args) writes the command, name first,
//!    into the backend's own [`ArgSink`] (a driver's command buffer): no backend spells
//!    a command itself, so two drivers can never send different bytes for one command.
//! 2. It sends that argument list and converts the driver's reply one to one into a
//!    [`Value`](crate::Value) (status stays status, bulk stays bytes, arrays nest as they
//!    arrived), with server errors classified.
//! 3. [`ReplyShape::canonicalize`] brings that value into the shape the command documents,
//!    ironing out RESP2 and RESP3 differences and the driver's: a flat `HGETALL` array
//!    becomes a `Map`, `WITHSCORES` pairs get `Double` scores, a `SCAN` cursor becomes an
//!    `Int`. A reply of the wrong shape is a [`ErrorKind::Server`](crate::ErrorKind) error
//!    naming the command, never a panic and never a guess.
//!
//! ```
//! use resilience_core::backend::ArgSink;
//! use resilience_core::{Command, SetOptions};
//!
//! /// Collects the arguments as text, as a test or a logging backend would.
//! #[derive(Default)]
//! struct Words(Vec<String>);
//!
//! impl ArgSink for Words {
//!     fn word(&mut self, word: &'static str) { self.0.push(word.to_owned()) }
//!     fn text(&mut self, text: &str) { self.0.push(text.to_owned()) }
//!     fn bytes(&mut self, bytes: &bytes::Bytes) { self.0.push(String::from_utf8_lossy(bytes).into_owned()) }
//!     fn int(&mut self, n: i64) { self.0.push(n.to_string()) }
//! }
//!
//! let set = Command::Set {
//!     key: "k".into(),
//!     value: "v".into(),
//!     options: SetOptions::with_ttl(std::time::Duration::from_secs(2)),
//! };
//! let mut words = Words::default();
//! set.write_args(&mut words)?;
//! assert_eq!(words.0, ["SET", "k", "v", "PX", "2000"]);
//! # Ok::<(), resilience_core::BackendError>(())
//! ```

pub use crate::cache::tracking::{TrackingHub, is_not_tracking};
pub use crate::cache::{InvalidationFeed, TrackedReply};
pub use crate::cluster::ConnectNode;
pub use crate::wire::{ArgSink, ReplyShape};

// Redis's number spellings, for a backend that reads or writes them itself (the in-memory
// backend, a script engine): one copy, shared with the wire.
pub use crate::value::{format_score, parse_redis_double, parse_strict_int};

/// Refuses a pipeline (`atomic` false) that holds a blocking command (see
/// [`Command::blocks_for`](crate::Command::blocks_for)): on a pipeline the server would
/// hold every later reply, and the connection, until it unblocked. Inside `MULTI` a
/// blocking command does not block, so a transaction may hold one. Every backend calls
/// this first in `execute_batch`.
pub fn check_batch(cmds: &[crate::Command], atomic: bool) -> Result<(), crate::BackendError> {
    match cmds.iter().find(|c| c.blocks_for().is_some()) {
        Some(cmd) if !atomic => Err(crate::BackendError::new(
            crate::ErrorKind::InvalidInput,
            format!(
                "{} blocks: send it on its own (execute), not in a pipeline",
                cmd.name()
            ),
        )),
        _ => Ok(()),
    }
}
