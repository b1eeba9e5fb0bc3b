//! The few commands whose wire form is not "name, then each field in order": each has a
//! writer and a reader here, named by its table entry (`custom: (write_x, read_x)`).
//!
//! - `ZRANGE`/`ZREVRANGE`, `ZRANGEBYSCORE`/`ZREVRANGEBYSCORE`, `ZRANGEBYLEX`/
//!   `ZREVRANGEBYLEX`: one variant for both directions, and the reverse forms take the
//!   upper bound first.
//! - `EVAL`, `EVALSHA`: the key count goes before the keys.
//! - `MSET`, `MSETNX`: keys and values interleave on the wire.
//! - `SCAN`: its options are separate fields.
//! - `RAW`: the arguments are the command.
//! - `PING`: with a message it is not the variant.
//! - `XREAD`, `XREADGROUP`: options, then `STREAMS`, the keys, and one id per key.
//! - `BLPOP`, `BRPOP`: the keys come before the timeout.

use bytes::Bytes;

use super::arg::{ArgReader, WireArg};
use super::options::{LexBound, Limit, ScoreBound};
use crate::wire::ArgSink;
use crate::{BackendError, Command, ErrorKind};

/// The writer was handed another command: a bug in the table.
fn not_mine(cmd: &Command, writer: &str) -> BackendError {
    BackendError::new(
        ErrorKind::InvalidInput,
        format!("{writer} cannot write {}", cmd.name()),
    )
}

pub(super) fn write_ping(_: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    sink.word("PING");
    Ok(())
}

/// `PING`, or with a message (which the variant does not hold) a raw `PING`.
pub(super) fn read_ping(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    if r.remaining() == 0 {
        return Ok(Command::Ping);
    }
    let mut args = vec![Bytes::from_static(b"PING")];
    args.extend_from_slice(r.rest());
    Ok(Command::Raw {
        args,
        keys: Vec::new(),
        write: false,
        idempotent: true,
    })
}

pub(super) fn write_zrange(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Zrange {
        key,
        start,
        stop,
        rev,
        with_scores,
    } = cmd
    else {
        return Err(not_mine(cmd, "write_zrange"));
    };
    // `ZREVRANGE` rather than `ZRANGE ... REV`: every server since Redis 5 takes it.
    sink.word(if *rev { "ZREVRANGE" } else { "ZRANGE" });
    sink.text(key);
    sink.int(*start);
    sink.int(*stop);
    if *with_scores {
        sink.word("WITHSCORES");
    }
    Ok(())
}

pub(super) fn read_zrange(r: &mut ArgReader<'_>, upper: &str) -> Result<Command, BackendError> {
    let key = r.text()?;
    let (start, stop) = (r.int()?, r.int()?);
    let with_scores = match r.peek_word().as_deref() {
        None => false,
        Some("WITHSCORES") if r.remaining() == 1 => true,
        // BYSCORE, BYLEX, REV, LIMIT: forms the variant does not hold.
        Some(_) => return Err(r.syntax()),
    };
    Ok(Command::Zrange {
        key,
        start,
        stop,
        rev: upper == "ZREVRANGE",
        with_scores,
    })
}

/// A range by bounds: `NAME key first second [WITHSCORES] [LIMIT o c]`, where the
/// reverse command (`names.1`) takes the upper bound first.
fn write_bounded_range<B: WireArg>(
    sink: &mut impl ArgSink,
    names: (&'static str, &'static str),
    key: &str,
    (min, max): (&B, &B),
    rev: bool,
    with_scores: bool,
    limit: &Option<Limit>,
) {
    let (name, first, second) = if rev {
        (names.1, max, min)
    } else {
        (names.0, min, max)
    };
    sink.word(name);
    sink.text(key);
    first.write(sink);
    second.write(sink);
    if with_scores {
        sink.word("WITHSCORES");
    }
    limit.write(sink);
}

/// Reads what [`write_bounded_range`] writes: `(key, min, max, rev)`, the bounds put back
/// in order.
fn read_bounded_range<B: WireArg>(
    r: &mut ArgReader<'_>,
    upper: &str,
    reverse_name: &str,
) -> Result<(String, B, B, bool), BackendError> {
    let key = r.text()?;
    let rev = upper == reverse_name;
    let (first, second) = (B::read(r)?, B::read(r)?);
    let (min, max) = if rev {
        (second, first)
    } else {
        (first, second)
    };
    Ok((key, min, max, rev))
}

pub(super) fn write_zrangebyscore(
    cmd: &Command,
    sink: &mut impl ArgSink,
) -> Result<(), BackendError> {
    let Command::Zrangebyscore {
        key,
        min,
        max,
        rev,
        with_scores,
        limit,
    } = cmd
    else {
        return Err(not_mine(cmd, "write_zrangebyscore"));
    };
    write_bounded_range(
        sink,
        ("ZRANGEBYSCORE", "ZREVRANGEBYSCORE"),
        key,
        (min, max),
        *rev,
        *with_scores,
        limit,
    );
    Ok(())
}

/// `[WITHSCORES] [LIMIT offset count]`, in either order.
fn range_options(
    r: &mut ArgReader<'_>,
    scores: bool,
) -> Result<(bool, Option<Limit>), BackendError> {
    let (mut with_scores, mut limit) = (false, None);
    while let Some(word) = r.peek_word() {
        match word.as_str() {
            "WITHSCORES" if scores => {
                r.skip();
                with_scores = true;
            }
            "LIMIT" => limit = Option::<Limit>::read(r)?,
            _ => return Err(r.syntax()),
        }
    }
    Ok((with_scores, limit))
}

pub(super) fn read_zrangebyscore(
    r: &mut ArgReader<'_>,
    upper: &str,
) -> Result<Command, BackendError> {
    let (key, min, max, rev) = read_bounded_range::<ScoreBound>(r, upper, "ZREVRANGEBYSCORE")?;
    let (with_scores, limit) = range_options(r, true)?;
    Ok(Command::Zrangebyscore {
        key,
        min,
        max,
        rev,
        with_scores,
        limit,
    })
}

pub(super) fn write_zrangebylex(
    cmd: &Command,
    sink: &mut impl ArgSink,
) -> Result<(), BackendError> {
    let Command::Zrangebylex {
        key,
        min,
        max,
        rev,
        limit,
    } = cmd
    else {
        return Err(not_mine(cmd, "write_zrangebylex"));
    };
    write_bounded_range(
        sink,
        ("ZRANGEBYLEX", "ZREVRANGEBYLEX"),
        key,
        (min, max),
        *rev,
        false,
        limit,
    );
    Ok(())
}

pub(super) fn read_zrangebylex(
    r: &mut ArgReader<'_>,
    upper: &str,
) -> Result<Command, BackendError> {
    let (key, min, max, rev) = read_bounded_range::<LexBound>(r, upper, "ZREVRANGEBYLEX")?;
    let (_, limit) = range_options(r, false)?;
    Ok(Command::Zrangebylex {
        key,
        min,
        max,
        rev,
        limit,
    })
}

fn keys_then_args(sink: &mut impl ArgSink, keys: &[String], args: &[Bytes]) {
    sink.uint(keys.len() as u64);
    keys.iter().for_each(|k| sink.text(k));
    args.iter().for_each(|a| sink.bytes(a));
}

/// `numkeys key... arg...`.
fn read_keys_then_args(r: &mut ArgReader<'_>) -> Result<(Vec<String>, Vec<Bytes>), BackendError> {
    let numkeys = r.int()?;
    let numkeys =
        usize::try_from(numkeys).map_err(|_| r.error("ERR Number of keys can't be negative"))?;
    if numkeys > r.remaining() {
        return Err(r.error("ERR Number of keys can't be greater than number of args"));
    }
    let keys = (0..numkeys).map(|_| r.text()).collect::<Result<_, _>>()?;
    Ok((keys, r.rest().to_vec()))
}

pub(super) fn write_eval(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Eval { script, keys, args } = cmd else {
        return Err(not_mine(cmd, "write_eval"));
    };
    sink.word("EVAL");
    sink.text(script);
    keys_then_args(sink, keys, args);
    Ok(())
}

pub(super) fn read_eval(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    let script = r.text()?;
    let (keys, args) = read_keys_then_args(r)?;
    Ok(Command::Eval { script, keys, args })
}

pub(super) fn write_evalsha(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Evalsha {
        sha1, keys, args, ..
    } = cmd
    else {
        return Err(not_mine(cmd, "write_evalsha"));
    };
    sink.word("EVALSHA");
    sink.text(sha1);
    keys_then_args(sink, keys, args);
    Ok(())
}

pub(super) fn read_evalsha(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    let sha1 = r.text()?;
    let (keys, args) = read_keys_then_args(r)?;
    Ok(Command::Evalsha {
        sha1,
        keys,
        args,
        idempotent: false,
    })
}

pub(super) fn write_scan(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Scan {
        cursor,
        pattern,
        count,
        type_name,
    } = cmd
    else {
        return Err(not_mine(cmd, "write_scan"));
    };
    sink.word("SCAN");
    sink.uint(*cursor);
    if let Some(pattern) = pattern {
        sink.word("MATCH");
        sink.text(pattern);
    }
    if let Some(count) = count {
        sink.word("COUNT");
        sink.uint(*count);
    }
    if let Some(type_name) = type_name {
        sink.word("TYPE");
        sink.text(type_name);
    }
    Ok(())
}

pub(super) fn read_scan(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    let cursor = u64::read(r).map_err(|_| r.error("ERR invalid cursor"))?;
    let options = super::options::ScanOptions::read_with_type(r)?;
    Ok(Command::Scan {
        cursor,
        pattern: options.0.pattern,
        count: options.0.count,
        type_name: options.1,
    })
}

/// Keys and values interleaved.
fn write_pairs(
    cmd: &Command,
    sink: &mut impl ArgSink,
    keys: &[String],
    values: &[Bytes],
) -> Result<(), BackendError> {
    if keys.len() != values.len() {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            format!(
                "{} needs one value per key: {} keys, {} values",
                cmd.name(),
                keys.len(),
                values.len()
            ),
        ));
    }
    sink.word(cmd.name());
    for (key, value) in keys.iter().zip(values) {
        sink.text(key);
        sink.bytes(value);
    }
    Ok(())
}

fn read_pairs(r: &mut ArgReader<'_>) -> Result<(Vec<String>, Vec<Bytes>), BackendError> {
    if !r.remaining().is_multiple_of(2) {
        return Err(r.wrong_args());
    }
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    while r.remaining() > 0 {
        keys.push(r.text()?);
        values.push(r.arg()?.clone());
    }
    Ok((keys, values))
}

pub(super) fn write_mset(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Mset { keys, values } = cmd else {
        return Err(not_mine(cmd, "write_mset"));
    };
    write_pairs(cmd, sink, keys, values)
}

pub(super) fn read_mset(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    let (keys, values) = read_pairs(r)?;
    Ok(Command::Mset { keys, values })
}

pub(super) fn write_msetnx(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Msetnx { keys, values } = cmd else {
        return Err(not_mine(cmd, "write_msetnx"));
    };
    write_pairs(cmd, sink, keys, values)
}

pub(super) fn read_msetnx(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    let (keys, values) = read_pairs(r)?;
    Ok(Command::Msetnx { keys, values })
}

pub(super) fn write_raw(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Raw { args, .. } = cmd else {
        return Err(not_mine(cmd, "write_raw"));
    };
    if args.is_empty() {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            "a raw command needs at least its name: Command::Raw with empty args",
        ));
    }
    args.iter().for_each(|a| sink.bytes(a));
    Ok(())
}

/// No Redis command is named `RAW`: one sent by that name is unknown, as Redis says.
pub(super) fn read_raw(r: &mut ArgReader<'_>, upper: &str) -> Result<Command, BackendError> {
    Err(r.error(&format!(
        "ERR unknown command '{upper}', with args beginning with: "
    )))
}

/// `[COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...`, the tail of both stream reads.
struct StreamRead {
    count: Option<super::options::Count>,
    block_ms: Option<u64>,
    no_ack: bool,
    keys: Vec<String>,
    ids: Vec<String>,
}

fn write_stream_read(
    sink: &mut impl ArgSink,
    count: &Option<super::options::Count>,
    block_ms: &Option<u64>,
    no_ack: bool,
    keys: &[String],
    ids: &[String],
) -> Result<(), BackendError> {
    if keys.len() != ids.len() || keys.is_empty() {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            format!(
                "a stream read needs one id per stream: {} streams, {} ids",
                keys.len(),
                ids.len()
            ),
        ));
    }
    count.write(sink);
    if let Some(ms) = block_ms {
        sink.word("BLOCK");
        sink.uint(*ms);
    }
    if no_ack {
        sink.word("NOACK");
    }
    sink.word("STREAMS");
    keys.iter().for_each(|k| sink.text(k));
    ids.iter().for_each(|id| sink.text(id));
    Ok(())
}

fn read_stream_read(r: &mut ArgReader<'_>, group: bool) -> Result<StreamRead, BackendError> {
    let (mut count, mut block_ms, mut no_ack) = (None, None, false);
    loop {
        match r.peek_word().as_deref() {
            Some("COUNT") => count = Option::<super::options::Count>::read(r)?,
            Some("BLOCK") => {
                r.skip();
                let ms = r.int()?;
                block_ms = Some(u64::try_from(ms).map_err(|_| r.error("ERR timeout is negative"))?);
            }
            Some("NOACK") if group => {
                r.skip();
                no_ack = true;
            }
            Some("STREAMS") => {
                r.skip();
                break;
            }
            _ => return Err(r.syntax()),
        }
    }
    let rest = r.rest();
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(r.error(
            "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.",
        ));
    }
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let (keys, ids) = rest.split_at(rest.len() / 2);
    Ok(StreamRead {
        count,
        block_ms,
        no_ack,
        keys: keys.iter().map(text).collect(),
        ids: ids.iter().map(text).collect(),
    })
}

pub(super) fn write_xread(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Xread {
        count,
        block_ms,
        keys,
        ids,
    } = cmd
    else {
        return Err(not_mine(cmd, "write_xread"));
    };
    sink.word("XREAD");
    write_stream_read(sink, count, block_ms, false, keys, ids)
}

pub(super) fn read_xread(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    let read = read_stream_read(r, false)?;
    Ok(Command::Xread {
        count: read.count,
        block_ms: read.block_ms,
        keys: read.keys,
        ids: read.ids,
    })
}

pub(super) fn write_xreadgroup(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Xreadgroup { keys, read } = cmd else {
        return Err(not_mine(cmd, "write_xreadgroup"));
    };
    sink.word("XREADGROUP");
    sink.word("GROUP");
    sink.text(&read.group);
    sink.text(&read.consumer);
    write_stream_read(
        sink,
        &read.count,
        &read.block_ms,
        read.no_ack,
        keys,
        &read.ids,
    )
}

pub(super) fn read_xreadgroup(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    if r.word()? != "GROUP" {
        return Err(r.syntax());
    }
    let (group, consumer) = (r.text()?, r.text()?);
    let read = read_stream_read(r, true)?;
    Ok(Command::Xreadgroup {
        keys: read.keys,
        read: Box::new(super::options::GroupRead {
            group,
            consumer,
            count: read.count,
            block_ms: read.block_ms,
            no_ack: read.no_ack,
            ids: read.ids,
        }),
    })
}

/// `key... timeout`.
fn write_blocking_pop(
    sink: &mut impl ArgSink,
    name: &'static str,
    keys: &[String],
    timeout_secs: f64,
) -> Result<(), BackendError> {
    sink.word(name);
    keys.iter().for_each(|k| sink.text(k));
    timeout_secs.write(sink);
    Ok(())
}

fn read_blocking_pop(r: &mut ArgReader<'_>) -> Result<(Vec<String>, f64), BackendError> {
    let n = r.remaining().saturating_sub(1);
    let keys = (0..n).map(|_| r.text()).collect::<Result<_, _>>()?;
    let timeout = r
        .float()
        .map_err(|_| r.error("ERR timeout is not a float or out of range"))?;
    if timeout < 0.0 {
        return Err(r.error("ERR timeout is negative"));
    }
    Ok((keys, timeout))
}

pub(super) fn write_blpop(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Blpop { keys, timeout_secs } = cmd else {
        return Err(not_mine(cmd, "write_blpop"));
    };
    write_blocking_pop(sink, "BLPOP", keys, *timeout_secs)
}

pub(super) fn read_blpop(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    let (keys, timeout_secs) = read_blocking_pop(r)?;
    Ok(Command::Blpop { keys, timeout_secs })
}

pub(super) fn write_brpop(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Brpop { keys, timeout_secs } = cmd else {
        return Err(not_mine(cmd, "write_brpop"));
    };
    write_blocking_pop(sink, "BRPOP", keys, *timeout_secs)
}

pub(super) fn read_brpop(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    let (keys, timeout_secs) = read_blocking_pop(r)?;
    Ok(Command::Brpop { keys, timeout_secs })
}
