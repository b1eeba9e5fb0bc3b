//! Translation: a [`Command`] into one redis-rs [`Cmd`], as the core spells it.
//!
//! The arguments come from [`Command::write_args`], the one spelling of every command in
//! `resilience-core`; this module only says how each kind of argument goes into redis-rs's
//! command buffer (every one is copied into it, in order). The reply's canonical shape is
//! the core's [`ReplyShape`], taken from the command beside it.

use bytes::Bytes;
use redis::Cmd;
use resilience_core::backend::{ArgSink, ReplyShape};
use resilience_core::{BackendError, Command};

/// redis-rs's command buffer, written by the core.
struct CmdArgs(Cmd);

impl ArgSink for CmdArgs {
    fn word(&mut self, word: &'static str) {
        self.0.arg(word);
    }

    fn text(&mut self, text: &str) {
        self.0.arg(text);
    }

    fn bytes(&mut self, bytes: &Bytes) {
        self.0.arg(bytes.as_ref());
    }

    fn int(&mut self, n: i64) {
        self.0.arg(n);
    }

    fn uint(&mut self, n: u64) {
        self.0.arg(n);
    }
}

/// Translates `command` into the redis-rs command to send and the shape of its reply.
///
/// Fails with `InvalidInput` only for a [`Command::Raw`] without arguments.
pub(crate) fn translate(command: &Command) -> Result<(Cmd, ReplyShape), BackendError> {
    // Sized up front (name, options, numbers and the payload): the common commands build
    // their `Cmd` with no reallocation.
    let mut cmd = CmdArgs(Cmd::with_capacity(8, 32 + command.payload_len()));
    command.write_args(&mut cmd)?;
    Ok((cmd.0, ReplyShape::of(command)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use resilience_core::{ErrorKind, SetOptions};

    /// The arguments as text.
    fn words(command: &Command) -> Vec<String> {
        let (cmd, _) = translate(command).unwrap();
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => "<cursor>".to_owned(),
            })
            .collect()
    }

    #[test]
    fn sends_what_the_core_spells_binary_values_unchanged() {
        let set = Command::Set {
            key: "k".into(),
            value: Bytes::from_static(b"\x00\xff"),
            options: SetOptions::default().with_expire_ms(1500),
        };
        let (cmd, _) = translate(&set).unwrap();
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            args,
            [
                b"SET".to_vec(),
                b"k".to_vec(),
                b"\x00\xff".to_vec(),
                b"PX".to_vec(),
                b"1500".to_vec()
            ]
        );
        let scan = Command::Scan {
            cursor: u64::MAX,
            pattern: None,
            count: None,
            type_name: None,
        };
        assert_eq!(words(&scan), ["SCAN", "18446744073709551615"]);
    }

    #[test]
    fn an_empty_raw_command_is_invalid_input() {
        let err = translate(&Command::Raw {
            args: vec![],
            keys: vec![],
            write: false,
            idempotent: true,
        })
        .err()
        .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
