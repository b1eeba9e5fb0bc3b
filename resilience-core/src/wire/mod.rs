//! The wire: a [`Command`](crate::Command) as the argument list Redis receives, and a reply
//! as the canonical [`Value`](crate::Value) its command promises.
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
//! use resilience_core::wire::ArgSink;
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

mod args;
#[cfg(feature = "lua")]
pub(crate) mod parse;
mod reply;

pub use args::ArgSink;
pub use reply::ReplyShape;
