//! The wire: a [`Command`](crate::Command) as the argument list Redis receives, and a reply
//! as the canonical [`Value`](crate::Value) its command promises.
//!
//! Its guide is in the docs of the public `backend` module.

mod args;
mod reply;

pub use args::ArgSink;
pub(crate) use reply::Reply;
pub use reply::ReplyShape;
