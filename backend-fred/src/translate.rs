//! Translation: a [`Command`] into the name and arguments fred sends, as the core spells it.
//!
//! The arguments come from [`Command::write_args`], the one spelling of every command in
//! `resilience-core`; this module only says how each kind of argument becomes a fred
//! value. Every command goes through fred's generic `custom` / `custom_raw` interface with
//! a [`CustomCommand`] named after the Redis command, so the bytes on the wire are exactly
//! the arguments the core wrote: no per-command fred helper reshapes them. Binary values
//! travel as [`FredValue::Bytes`] (a reference-counted clone, not a copy), protocol words
//! as static strings, integers as integers.

use bytes::Bytes;
use fred::types::{ClusterHash, CustomCommand, Value as FredValue};
use resilience_core::backend::ArgSink;
use resilience_core::{BackendError, Command, ErrorKind};

/// A command ready for fred: its name (one word) and its arguments.
#[derive(Debug)]
pub(crate) struct Wire {
    /// The command fred sends first.
    pub(crate) cmd: CustomCommand,
    /// The remaining arguments, in order.
    pub(crate) args: Vec<FredValue>,
}

fn custom(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::FirstKey, false)
}

/// `MULTI`, which opens a hand-built transaction inside one fred pipeline.
pub(crate) fn multi() -> Wire {
    Wire {
        cmd: custom("MULTI"),
        args: Vec::new(),
    }
}

/// `EXEC`, which closes it.
pub(crate) fn exec() -> Wire {
    Wire {
        cmd: custom("EXEC"),
        args: Vec::new(),
    }
}

/// fred's command and arguments, as the core writes them. The first argument is the
/// name: a static word, or (for a raw command) bytes that must be UTF-8.
#[derive(Default)]
struct FredArgs {
    name: Option<CustomCommand>,
    args: Vec<FredValue>,
    /// A raw command's name that fred cannot send.
    bad_name: Option<&'static str>,
}

impl ArgSink for FredArgs {
    fn word(&mut self, word: &'static str) {
        if self.name.is_none() {
            self.name = Some(custom(word));
        } else {
            self.args
                .push(FredValue::String(fred::util::static_str(word)));
        }
    }

    fn text(&mut self, text: &str) {
        self.args.push(FredValue::String(text.into()));
    }

    fn bytes(&mut self, bytes: &Bytes) {
        if self.name.is_some() {
            self.args.push(FredValue::Bytes(bytes.clone()));
            return;
        }
        match std::str::from_utf8(bytes) {
            Ok("") => self.bad_name = Some("a raw command with an empty name"),
            Ok(name) => {
                self.name = Some(CustomCommand::new(
                    name.to_owned(),
                    ClusterHash::FirstKey,
                    false,
                ));
            }
            Err(_) => self.bad_name = Some("a raw command whose name is not UTF-8"),
        }
    }

    fn int(&mut self, n: i64) {
        self.args.push(FredValue::Integer(n));
    }
}

/// Translates one command. `InvalidInput` only for a raw command without a usable name.
pub(crate) fn translate(cmd: &Command) -> Result<Wire, BackendError> {
    let mut out = FredArgs::default();
    cmd.write_args(&mut out)?;
    match (out.name, out.bad_name) {
        (Some(cmd), None) => Ok(Wire {
            cmd,
            args: out.args,
        }),
        (_, bad) => Err(BackendError::new(
            ErrorKind::InvalidInput,
            bad.unwrap_or("a command without a name"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use resilience_core::SetOptions;

    fn words(cmd: &Command) -> Vec<String> {
        let w = translate(cmd).unwrap();
        let mut out = vec![w.cmd.cmd.to_string()];
        for a in &w.args {
            out.push(match a {
                FredValue::String(s) => s.to_string(),
                FredValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                FredValue::Integer(i) => i.to_string(),
                other => format!("{other:?}"),
            });
        }
        out
    }

    #[test]
    fn sends_what_the_core_spells_values_as_bytes() {
        let set = Command::Set {
            key: "k".into(),
            value: Bytes::from_static(b"\x00\xff"),
            options: SetOptions::default().with_expire_ms(1500),
        };
        let w = translate(&set).unwrap();
        assert_eq!(w.cmd.cmd.to_string(), "SET");
        assert!(matches!(&w.args[1], FredValue::Bytes(b) if &b[..] == b"\x00\xff"));
        assert_eq!(words(&set), ["SET", "k", "\u{0}\u{fffd}", "PX", "1500"]);
        assert_eq!(
            words(&Command::ScriptLoad {
                script: "return 1".into()
            }),
            ["SCRIPT", "LOAD", "return 1"]
        );
    }

    #[test]
    fn raw_names_must_be_utf8_and_not_empty() {
        let raw = |args: Vec<&'static [u8]>| Command::Raw {
            args: args.into_iter().map(Bytes::from_static).collect(),
            keys: vec![],
            write: false,
            idempotent: true,
        };
        assert_eq!(words(&raw(vec![b"OBJECT", b"HELP"])), ["OBJECT", "HELP"]);
        for bad in [raw(vec![]), raw(vec![b""]), raw(vec![b"\xff"])] {
            let err = translate(&bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        }
    }
}
