//! The wire: a [`Command`](crate::Command) as the argument list Redis receives, and a reply
//! as the canonical [`Value`](crate::Value) its command promises.
//!
//! Its guide is in the docs of the public `backend` module.

mod args;
#[cfg(feature = "lua")]
pub(crate) mod parse;
mod reply;

pub use args::ArgSink;
pub use reply::ReplyShape;
