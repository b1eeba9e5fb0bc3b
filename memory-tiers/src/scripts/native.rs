//! Native twins of the Lua scripts in [`super::lua`], for [`InMemoryBackend`], which runs
//! no Lua. Each does exactly what its Lua source does, command for command, through
//! [`ScriptContext::call`], inside the backend's critical section (so it is as atomic as
//! the Lua script on Redis).
//!
//! [`InMemoryBackend`]: resilience_core::InMemoryBackend

use bytes::Bytes;
use resilience_core::{
    BackendError, Command, Limit, ScoreBound, ScriptContext, Value, ZaddOptions,
};

type R<T> = Result<T, BackendError>;

fn bad(msg: &str) -> BackendError {
    BackendError::from_reply(&format!("ERR {msg}"))
}

/// `ARGV[i]` (1-based, as in Lua) as text.
fn arg(args: &[Bytes], i: usize) -> R<&str> {
    args.get(i - 1)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(|| bad(&format!("missing or non-text ARGV[{i}]")))
}

fn num(args: &[Bytes], i: usize) -> R<f64> {
    arg(args, i)?
        .parse()
        .map_err(|_| bad(&format!("ARGV[{i}] is not a number")))
}

fn key(keys: &[String], i: usize) -> R<&String> {
    keys.get(i - 1)
        .ok_or_else(|| bad(&format!("missing KEYS[{i}]")))
}

fn int(v: Value) -> R<i64> {
    v.into_int().map_err(|e| bad(&e.to_string()))
}

fn members(v: Value) -> R<Vec<String>> {
    v.into_members().map_err(|e| bad(&e.to_string()))
}

fn bound(s: &str) -> R<ScoreBound> {
    match s {
        "-inf" => Ok(ScoreBound::NegInf),
        "+inf" | "inf" => Ok(ScoreBound::PosInf),
        _ => match s.strip_prefix('(') {
            Some(x) => x.parse().map(ScoreBound::Exclusive),
            None => s.parse().map(ScoreBound::Inclusive),
        }
        .map_err(|_| bad("min or max is not a float")),
    }
}

fn zadd(ctx: &mut ScriptContext<'_>, key: &str, score: f64, id: &str) -> R<()> {
    ctx.call(Command::Zadd {
        key: key.to_owned(),
        members: vec![(score, id.to_owned())],
        options: ZaddOptions::default(),
    })?;
    Ok(())
}

/// The prelude's `drop`: removes `id` from the four indexes.
fn drop_id(ctx: &mut ScriptContext<'_>, keys: &[String], id: &str) -> R<()> {
    for i in 1..=4 {
        ctx.call(Command::Zrem {
            key: key(keys, i)?.clone(),
            members: vec![id.to_owned()],
        })?;
    }
    Ok(())
}

fn exists(ctx: &mut ScriptContext<'_>, key: String) -> R<bool> {
    Ok(int(ctx.call(Command::Exists { keys: vec![key] })?)? > 0)
}

/// The prelude's `cleanup`.
fn cleanup(ctx: &mut ScriptContext<'_>, keys: &[String], args: &[Bytes]) -> R<()> {
    let prefix = arg(args, 1)?;
    let now = num(args, 2)?;
    let batch = num(args, 3)? as u64;
    let due = members(ctx.call(Command::Zrangebyscore {
        key: key(keys, 4)?.clone(),
        min: ScoreBound::NegInf,
        max: ScoreBound::Inclusive(now),
        rev: false,
        with_scores: false,
        limit: Some(Limit {
            offset: 0,
            count: batch,
        }),
    })?)?;
    for id in due {
        if !exists(ctx, format!("{prefix}{id}"))? {
            drop_id(ctx, keys, &id)?;
        }
    }
    Ok(())
}

/// The prelude's `fetch`: the flat field list, or `None` (dropping the id) when gone.
fn fetch(
    ctx: &mut ScriptContext<'_>,
    keys: &[String],
    args: &[Bytes],
    id: &str,
    bump: bool,
) -> R<Option<Value>> {
    let entry = format!("{}{id}", arg(args, 1)?);
    if !bump {
        let pairs = ctx
            .call(Command::Hgetall { key: entry })?
            .into_pairs()
            .map_err(|e| bad(&e.to_string()))?;
        if pairs.is_empty() {
            drop_id(ctx, keys, id)?;
            return Ok(None);
        }
        return Ok(Some(flatten(pairs)));
    }
    if !exists(ctx, entry.clone())? {
        drop_id(ctx, keys, id)?;
        return Ok(None);
    }
    ctx.call(Command::Hincrby {
        key: entry.clone(),
        field: "r".to_owned(),
        delta: 1,
    })?;
    ctx.call(Command::Hset {
        key: entry.clone(),
        fields: vec![(
            "a".to_owned(),
            args.get(1).cloned().ok_or_else(|| bad("missing ARGV[2]"))?,
        )],
    })?;
    let pairs = ctx
        .call(Command::Hgetall { key: entry })?
        .into_pairs()
        .map_err(|e| bad(&e.to_string()))?;
    Ok(Some(flatten(pairs)))
}

/// The prelude's `peek`: the values of [`QUERY_FIELDS`] in order (nil when absent), or
/// `None` (dropping the id) when the entry is gone.
///
/// [`QUERY_FIELDS`]: super::lua::QUERY_FIELDS
fn peek(
    ctx: &mut ScriptContext<'_>,
    keys: &[String],
    args: &[Bytes],
    id: &str,
) -> R<Option<Value>> {
    let entry = format!("{}{id}", arg(args, 1)?);
    let pairs = ctx
        .call(Command::Hgetall { key: entry })?
        .into_pairs()
        .map_err(|e| bad(&e.to_string()))?;
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or(Value::Nil, |(_, v)| Value::Bytes(v.clone()))
    };
    if matches!(value(super::lua::QUERY_FIELDS[0]), Value::Nil) {
        drop_id(ctx, keys, id)?;
        return Ok(None);
    }
    Ok(Some(Value::Array(
        super::lua::QUERY_FIELDS.iter().map(|f| value(f)).collect(),
    )))
}

/// A hash's field/value pairs as the flat list `HGETALL` returns to Lua.
fn flatten(pairs: Vec<(String, Bytes)>) -> Value {
    let mut flat = Vec::with_capacity(pairs.len() * 2);
    for (k, v) in pairs {
        flat.push(Value::Bytes(Bytes::from(k)));
        flat.push(Value::Bytes(v));
    }
    Value::Array(flat)
}

/// Twin of [`super::lua::WRITE`].
pub(crate) fn write(ctx: &mut ScriptContext<'_>, keys: &[String], args: &[Bytes]) -> R<Value> {
    let now = num(args, 2)?;
    let ttl = num(args, 4)? as i64;
    let id = arg(args, 8)?.to_owned();
    let entry = format!("{}{id}", arg(args, 1)?);
    let rest = args.get(8..).unwrap_or_default();
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(bad("wrong number of arguments for 'hset' command"));
    }
    let mut fields = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks_exact(2) {
        let f = std::str::from_utf8(&pair[0]).map_err(|_| bad("non-text field"))?;
        fields.push((f.to_owned(), pair[1].clone()));
    }
    ctx.call(Command::Hset {
        key: entry.clone(),
        fields,
    })?;
    ctx.call(Command::Pexpire {
        key: entry,
        millis: ttl,
    })?;
    zadd(ctx, key(keys, 1)?, num(args, 5)?, &id)?;
    zadd(ctx, key(keys, 2)?, num(args, 6)?, &id)?;
    zadd(ctx, key(keys, 3)?, num(args, 7)?, &id)?;
    zadd(ctx, key(keys, 4)?, now + ttl as f64, &id)?;
    if int(ctx.call(Command::Pttl {
        key: key(keys, 1)?.clone(),
    })?)?
        < ttl
    {
        let keep = ttl + (ttl / 64).max(1000);
        for i in 1..=4 {
            ctx.call(Command::Pexpire {
                key: key(keys, i)?.clone(),
                millis: keep,
            })?;
        }
    }
    ctx.call(Command::Zcard {
        key: key(keys, 1)?.clone(),
    })
}

/// Twin of [`super::lua::GET`].
pub(crate) fn get(ctx: &mut ScriptContext<'_>, keys: &[String], args: &[Bytes]) -> R<Value> {
    let id = arg(args, 4)?.to_owned();
    let bump = arg(args, 5)? == "1";
    Ok(fetch(ctx, keys, args, &id, bump)?.unwrap_or(Value::Nil))
}

/// Twin of [`super::lua::QUERY`].
pub(crate) fn query(ctx: &mut ScriptContext<'_>, keys: &[String], args: &[Bytes]) -> R<Value> {
    cleanup(ctx, keys, args)?;
    let index = num(args, 4)? as usize;
    let key = key(keys, index)?.clone();
    let rev = arg(args, 8)? == "1";
    let off = num(args, 9)? as i64;
    let cnt = num(args, 10)? as i64;
    let ids = if arg(args, 5)? == "rank" {
        members(ctx.call(Command::Zrange {
            key,
            start: off,
            stop: off + cnt - 1,
            rev,
            with_scores: false,
        })?)?
    } else {
        members(ctx.call(Command::Zrangebyscore {
            key,
            min: bound(arg(args, 6)?)?,
            max: bound(arg(args, 7)?)?,
            rev,
            with_scores: false,
            limit: Some(Limit {
                offset: off.max(0) as u64,
                count: cnt.max(0) as u64,
            }),
        })?)?
    };
    let mut out = Vec::new();
    for id in ids {
        if let Some(h) = peek(ctx, keys, args, &id)? {
            out.push(Value::Bytes(Bytes::from(id)));
            out.push(h);
        }
    }
    Ok(Value::Array(out))
}

/// Twin of [`super::lua::COUNT`].
pub(crate) fn count(ctx: &mut ScriptContext<'_>, keys: &[String], args: &[Bytes]) -> R<Value> {
    cleanup(ctx, keys, args)?;
    ctx.call(Command::Zcard {
        key: key(keys, 1)?.clone(),
    })
}

/// Twin of [`super::lua::DELETE`].
pub(crate) fn delete(ctx: &mut ScriptContext<'_>, keys: &[String], args: &[Bytes]) -> R<Value> {
    let prefix = arg(args, 1)?.to_owned();
    let mut n = 0;
    for i in 4..=args.len() {
        let id = arg(args, i)?.to_owned();
        n += int(ctx.call(Command::Del {
            keys: vec![format!("{prefix}{id}")],
        })?)?;
        drop_id(ctx, keys, &id)?;
    }
    Ok(Value::Int(n))
}

/// Twin of [`super::lua::CLEAR`].
pub(crate) fn clear(ctx: &mut ScriptContext<'_>, keys: &[String], args: &[Bytes]) -> R<Value> {
    let prefix = arg(args, 1)?.to_owned();
    let ids = members(ctx.call(Command::Zrange {
        key: key(keys, 1)?.clone(),
        start: 0,
        stop: -1,
        rev: false,
        with_scores: false,
    })?)?;
    for id in &ids {
        ctx.call(Command::Del {
            keys: vec![format!("{prefix}{id}")],
        })?;
    }
    ctx.call(Command::Del {
        keys: keys.iter().take(4).cloned().collect(),
    })?;
    Ok(Value::Int(ids.len() as i64))
}

/// Twin of [`super::lua::IMPORTANCE`].
pub(crate) fn importance(ctx: &mut ScriptContext<'_>, keys: &[String], args: &[Bytes]) -> R<Value> {
    let id = arg(args, 4)?.to_owned();
    let entry = format!("{}{id}", arg(args, 1)?);
    if !exists(ctx, entry.clone())? {
        drop_id(ctx, keys, &id)?;
        return Ok(Value::Nil);
    }
    let old = ctx
        .call(Command::Hget {
            key: entry.clone(),
            field: "i".to_owned(),
        })?
        .into_opt_bytes()
        .map_err(|e| bad(&e.to_string()))?
        .and_then(|b| {
            std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    let v = (old + num(args, 5)?).clamp(0.0, 1.0);
    let s = format!("{v}");
    ctx.call(Command::Hset {
        key: entry,
        fields: vec![("i".to_owned(), Bytes::from(s.clone()))],
    })?;
    zadd(ctx, key(keys, 3)?, v, &id)?;
    Ok(Value::Bytes(Bytes::from(s)))
}
