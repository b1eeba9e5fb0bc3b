//! Commands sent as [`Command::Raw`]: a name the command table knows is read back into its
//! typed command (with the table's arity and error lines) and run as that; the few
//! server commands outside the table (`ECHO`, `PING message`, `DBSIZE`, `FLUSHDB`,
//! `FLUSHALL`) are answered here; anything else is Redis's `ERR unknown command`.

use bytes::Bytes;
use tokio::time::Instant;

use super::errors::{err, wrong_args};
use super::store::Keyspace;
use resilience_core::{BackendError, Command, Value};

/// A server command outside the table, with Redis's arity for it.
fn server_command(name: &[u8]) -> Option<i32> {
    Some(match name.to_ascii_uppercase().as_slice() {
        b"ECHO" => 2,
        b"PING" => -1,
        b"DBSIZE" => 1,
        b"FLUSHDB" | b"FLUSHALL" => -1,
        _ => return None,
    })
}

fn unknown(args: &[Bytes]) -> BackendError {
    let name = args
        .first()
        .map(|n| String::from_utf8_lossy(n))
        .unwrap_or_default();
    let mut line = format!("ERR unknown command '{name}', with args beginning with: ");
    for arg in args.iter().skip(1) {
        line.push_str(&format!("'{}' ", String::from_utf8_lossy(arg)));
    }
    err(&line)
}

/// What a raw command is: a typed command, or a server command outside the table.
enum Parsed {
    Typed(Command),
    Server,
}

/// Reads `args` the way Redis does before running (or queueing in `MULTI`) them: name and
/// arity, and for a typed command its arguments.
fn parse(args: &[Bytes]) -> Result<Parsed, BackendError> {
    let Some(name) = args.first() else {
        return Err(unknown(args));
    };
    match Command::from_args(args)? {
        Command::Raw { .. } => {
            let arity = server_command(name).ok_or_else(|| unknown(args))?;
            let n = args.len() as i32;
            if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
                return Err(wrong_args(&String::from_utf8_lossy(name)));
            }
            Ok(Parsed::Server)
        }
        typed => Ok(Parsed::Typed(typed)),
    }
}

/// Checks a raw command's name and arity the way Redis does before queueing it in `MULTI`.
/// Returns the error Redis would reply at queue time.
pub(crate) fn check_raw(args: &[Bytes]) -> Result<(), BackendError> {
    parse(args).map(|_| ())
}

/// What a raw command comes to: a typed command for the caller to apply, or the answer of
/// one only a server has (`PING msg`, `ECHO`, `DBSIZE`, `FLUSHDB`, `FLUSHALL`).
pub(crate) enum Raw {
    Apply(Command),
    Answered(Value),
}

pub(super) fn raw(ks: &mut Keyspace, args: &[Bytes], now: Instant) -> Result<Raw, BackendError> {
    let cmd = match parse(args)? {
        Parsed::Typed(cmd) => return Ok(Raw::Apply(cmd)),
        Parsed::Server => args[0].to_ascii_uppercase(),
    };
    let answer = match cmd.as_slice() {
        b"PING" => match args {
            [_] => Ok(Value::Status("PONG".to_owned())),
            [_, msg] => Ok(Value::Bytes(msg.clone())),
            _ => Err(wrong_args("ping")),
        },
        b"ECHO" => Ok(Value::Bytes(args[1].clone())),
        b"DBSIZE" => Ok(Value::Int(ks.live_len(now) as i64)),
        _ => {
            // FLUSHDB / FLUSHALL [ASYNC|SYNC]
            match args.get(1).map(|m| m.to_ascii_uppercase()) {
                None => {}
                Some(mode) if args.len() == 2 && (mode == b"ASYNC" || mode == b"SYNC") => {}
                Some(_) => return Err(err("ERR syntax error")),
            }
            ks.clear();
            Ok(Value::Okay)
        }
    };
    answer.map(Raw::Answered)
}
