//! Redis's error replies and argument readings, shared by every command family.

use resilience_core::BackendError;
use resilience_core::backend::parse_strict_int;

/// An error reply, classified by its code as Redis's would be.
pub(crate) fn err(line: &str) -> BackendError {
    BackendError::from_reply(line)
}

/// `ERR wrong number of arguments for '<cmd>' command`.
pub(crate) fn wrong_args(cmd: &str) -> BackendError {
    err(&format!(
        "ERR wrong number of arguments for '{}' command",
        cmd.to_ascii_lowercase()
    ))
}

/// The reply to a value or argument that is not an integer.
pub(crate) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// An integer exactly as Redis's `string2ll` reads it.
pub(crate) fn parse_strict_i64(bytes: &[u8]) -> Option<i64> {
    parse_strict_int(bytes)
}
