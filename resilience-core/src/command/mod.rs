//! Commands as data: the [`Command`] enum, generated from the command table.
//!
//! Everything the library knows about a Redis command (its name, arity, keys, whether it
//! writes, whether a retry is safe, how it is spelled on the wire, how it is read back,
//! the shape of its reply and its typed client method) is stated once, in one entry of
//! `table.rs`, and derived by the macro in `define.rs`. Adding a command is one entry,
//! its in-memory implementation and a conformance case.

mod arg;
#[macro_use]
mod define;
mod irregular;
mod options;
mod spec;
mod table;

use bytes::Bytes;

use crate::wire::ReplyShape;

pub use arg::{ArgReader, IntoField, WireArg};
pub use options::{
    ByteRange, Count, ExpireCondition, GetExpiry, GroupRead, LexBound, LexEnd, Limit, ListEnd,
    MkStream, Replace, ScanOptions, ScoreBound, SetCondition, SetOptions, StreamTrim, TrimTo,
    XaddOptions, XautoclaimCount, ZaddOptions,
};
pub use spec::CommandSpec;
pub use table::Command;

// Every move of a command copies all of it: keep it as small as it was with 29 commands.
// A variant that would grow it boxes its rare parts.
const _: () = assert!(std::mem::size_of::<Command>() <= 88);

impl ReplyShape {
    /// The shape `cmd`'s reply must have.
    #[inline]
    pub fn of(cmd: &Command) -> ReplyShape {
        ReplyShape::new(cmd.reply_kind(), cmd.name())
    }
}

impl Command {
    /// Approximate payload size in bytes (keys and values), for metrics and limits.
    pub fn payload_len(&self) -> usize {
        let keys: usize = self.keys().iter().map(String::len).sum();
        let values: usize = match self {
            Command::Set { value, .. } => value.len(),
            Command::Hset { fields, .. } => fields.iter().map(|(f, v)| f.len() + v.len()).sum(),
            Command::Eval { script, args, .. } => {
                script.len() + args.iter().map(Bytes::len).sum::<usize>()
            }
            Command::Evalsha { args, .. } => args.iter().map(Bytes::len).sum(),
            Command::Raw { args, .. } => args.iter().map(Bytes::len).sum(),
            Command::Zadd { members, .. } => members.iter().map(|(_, m)| m.len() + 8).sum(),
            _ => 0,
        };
        keys + values
    }
}

#[cfg(test)]
mod tests;

impl Command {
    /// Whether a replica may answer this command: it reads keys and changes nothing, what
    /// Redis flags `readonly` (a test checks every entry against `COMMAND INFO`). Derived
    /// from the table's write flag and keys: a command that does not write and names keys
    /// reads them, except `SPUBLISH`, whose key is a shard channel.
    #[inline]
    pub fn is_read_only(&self) -> bool {
        !self.is_write() && !self.keys().is_empty() && !matches!(self, Command::Spublish { .. })
    }
}
