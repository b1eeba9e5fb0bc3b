//! [`CommandSpec`]: one entry of the command table as data, for tests and tools.

use bytes::Bytes;

/// One entry of the command table, as data: what [`Command::SPECS`](crate::Command::SPECS) lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandSpec {
    /// The name, upper case (`"SCRIPT LOAD"` for a subcommand).
    pub name: &'static str,
    /// Redis's arity: the argument count including the name when positive, the least
    /// count when negative.
    pub arity: i32,
    /// An example call, space-separated, that [`Command::from_args`](crate::Command::from_args) reads.
    pub example: &'static str,
}

impl CommandSpec {
    /// The example as an argument list.
    pub fn example_args(&self) -> Vec<Bytes> {
        self.example
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }
}
