//! The wire forms that the few irregular commands share, those whose wire form is not
//! "name, then each field in order". Each irregular entry of the table names a writer and
//! a reader (`custom: (write_x, read_x)`); they sit beside the table, since they take and
//! make its [`Command`](crate::Command) variants, and build on these pieces:
//!
//! - `ZRANGE`/`ZREVRANGE`, `ZRANGEBYSCORE`/`ZREVRANGEBYSCORE`, `ZRANGEBYLEX`/
//!   `ZREVRANGEBYLEX`: one variant for both directions, and the reverse forms take the
//!   upper bound first.
//! - `EVAL`, `EVALSHA`: the key count goes before the keys.
//! - `MSET`, `MSETNX`: keys and values interleave on the wire.
//! - `XREAD`, `XREADGROUP`: options, then `STREAMS`, the keys, and one id per key.
//! - `BLPOP`, `BRPOP`: the keys come before the timeout.

use bytes::Bytes;

use super::arg::{ArgReader, WireArg};
use super::options::Limit;
use crate::wire::ArgSink;
use crate::{BackendError, ErrorKind};

/// A range by bounds: `NAME key first second [WITHSCORES] [LIMIT o c]`, where the
/// reverse command (`names.1`) takes the upper bound first.
pub(super) fn write_bounded_range<B: WireArg>(
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
pub(super) fn read_bounded_range<B: WireArg>(
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

/// `[WITHSCORES] [LIMIT offset count]`, in either order.
pub(super) fn range_options(
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

pub(super) fn keys_then_args(sink: &mut impl ArgSink, keys: &[String], args: &[Bytes]) {
    sink.uint(keys.len() as u64);
    keys.iter().for_each(|k| sink.text(k));
    args.iter().for_each(|a| sink.bytes(a));
}

/// `numkeys key... arg...`.
pub(super) fn read_keys_then_args(
    r: &mut ArgReader<'_>,
) -> Result<(Vec<String>, Vec<Bytes>), BackendError> {
    let numkeys = r.int()?;
    let numkeys =
        usize::try_from(numkeys).map_err(|_| r.error("ERR Number of keys can't be negative"))?;
    if numkeys > r.remaining() {
        return Err(r.error("ERR Number of keys can't be greater than number of args"));
    }
    let keys = (0..numkeys).map(|_| r.text()).collect::<Result<_, _>>()?;
    Ok((keys, r.rest().to_vec()))
}

/// Keys and values interleaved.
pub(super) fn write_pairs(
    name: &'static str,
    sink: &mut impl ArgSink,
    keys: &[String],
    values: &[Bytes],
) -> Result<(), BackendError> {
    if keys.len() != values.len() {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            format!(
                "{} needs one value per key: {} keys, {} values",
                name,
                keys.len(),
                values.len()
            ),
        ));
    }
    sink.word(name);
    for (key, value) in keys.iter().zip(values) {
        sink.text(key);
        sink.bytes(value);
    }
    Ok(())
}

pub(super) fn read_pairs(r: &mut ArgReader<'_>) -> Result<(Vec<String>, Vec<Bytes>), BackendError> {
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

/// `[COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...`, the tail of both stream reads.
pub(super) struct StreamRead {
    pub(super) count: Option<super::options::Count>,
    pub(super) block_ms: Option<u64>,
    pub(super) no_ack: bool,
    pub(super) keys: Vec<String>,
    pub(super) ids: Vec<String>,
}

pub(super) fn write_stream_read(
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

pub(super) fn read_stream_read(
    r: &mut ArgReader<'_>,
    group: bool,
) -> Result<StreamRead, BackendError> {
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

/// `key... timeout`.
pub(super) fn write_blocking_pop(
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

pub(super) fn read_blocking_pop(r: &mut ArgReader<'_>) -> Result<(Vec<String>, f64), BackendError> {
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
