//! Translation: [`Command`] to the name and arguments fred sends.
//!
//! Every command goes through fred's generic `custom` / `custom_raw` interface with a
//! [`CustomCommand`] named after the Redis command, so the bytes on the wire are exactly the
//! arguments written here, for every variant alike: no per-command fred helper reshapes
//! them. Binary values travel as [`FredValue::Bytes`], text as [`FredValue::String`],
//! scores as Redis spells them ([`format_score`]).

use bytes::Bytes;
use fred::types::{ClusterHash, CustomCommand, Value as FredValue};
use resilience_core::command::format_score;
use resilience_core::{Command, SetCondition};

/// A command ready for fred: its name (one word) and its arguments.
#[derive(Debug)]
pub(crate) struct Wire {
    /// The command fred sends first.
    pub(crate) cmd: CustomCommand,
    /// The remaining arguments, in order.
    pub(crate) args: Vec<FredValue>,
}

fn s(v: impl Into<String>) -> FredValue {
    FredValue::String(v.into().into())
}

fn st(v: &'static str) -> FredValue {
    FredValue::String(fred::util::static_str(v))
}

fn b(v: Bytes) -> FredValue {
    FredValue::Bytes(v)
}

fn int(v: i64) -> FredValue {
    FredValue::Integer(v)
}

fn custom(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::FirstKey, false)
}

fn keys_then_args(keys: Vec<String>, args: Vec<Bytes>) -> Vec<FredValue> {
    let mut out = Vec::with_capacity(1 + keys.len() + args.len());
    out.push(int(keys.len() as i64));
    out.extend(keys.into_iter().map(s));
    out.extend(args.into_iter().map(b));
    out
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

/// Translates one command. `Err` only for a `Raw` command without a usable name.
pub(crate) fn translate(cmd: Command) -> Result<Wire, &'static str> {
    let (name, args): (&'static str, Vec<FredValue>) = match cmd {
        Command::Ping => ("PING", Vec::new()),
        Command::Get { key } => ("GET", vec![s(key)]),
        Command::Set {
            key,
            value,
            options,
        } => {
            let mut args = vec![s(key), b(value)];
            if let Some(ms) = options.expire_ms {
                args.push(st("PX"));
                args.push(int(ms.min(i64::MAX as u64) as i64));
            }
            match options.condition {
                Some(SetCondition::IfNotExists) => args.push(st("NX")),
                Some(SetCondition::IfExists) => args.push(st("XX")),
                None => {}
            }
            ("SET", args)
        }
        Command::Del { keys } => ("DEL", keys.into_iter().map(s).collect()),
        Command::Exists { keys } => ("EXISTS", keys.into_iter().map(s).collect()),
        Command::Expire { key, seconds } => ("EXPIRE", vec![s(key), int(seconds)]),
        Command::Pexpire { key, millis } => ("PEXPIRE", vec![s(key), int(millis)]),
        Command::Ttl { key } => ("TTL", vec![s(key)]),
        Command::Pttl { key } => ("PTTL", vec![s(key)]),
        Command::Incrby { key, delta } => ("INCRBY", vec![s(key), int(delta)]),
        Command::Mget { keys } => ("MGET", keys.into_iter().map(s).collect()),
        Command::Hset { key, fields } => {
            let mut args = Vec::with_capacity(1 + 2 * fields.len());
            args.push(s(key));
            for (f, v) in fields {
                args.push(s(f));
                args.push(b(v));
            }
            ("HSET", args)
        }
        Command::Hget { key, field } => ("HGET", vec![s(key), s(field)]),
        Command::Hgetall { key } => ("HGETALL", vec![s(key)]),
        Command::Hdel { key, fields } => {
            let mut args = Vec::with_capacity(1 + fields.len());
            args.push(s(key));
            args.extend(fields.into_iter().map(s));
            ("HDEL", args)
        }
        Command::Hincrby { key, field, delta } => ("HINCRBY", vec![s(key), s(field), int(delta)]),
        Command::Hincrbyfloat { key, field, delta } => (
            "HINCRBYFLOAT",
            vec![s(key), s(field), s(format_score(delta))],
        ),
        Command::Zadd {
            key,
            members,
            options,
        } => {
            let mut args = Vec::with_capacity(5 + 2 * members.len());
            args.push(s(key));
            match options.condition {
                Some(SetCondition::IfNotExists) => args.push(st("NX")),
                Some(SetCondition::IfExists) => args.push(st("XX")),
                None => {}
            }
            match options.greater_than {
                Some(true) => args.push(st("GT")),
                Some(false) => args.push(st("LT")),
                None => {}
            }
            if options.changed {
                args.push(st("CH"));
            }
            if options.incr {
                args.push(st("INCR"));
            }
            for (score, member) in members {
                args.push(s(format_score(score)));
                args.push(s(member));
            }
            ("ZADD", args)
        }
        Command::Zrange {
            key,
            start,
            stop,
            rev,
            with_scores,
        } => {
            let mut args = vec![s(key), int(start), int(stop)];
            if rev {
                args.push(st("REV"));
            }
            if with_scores {
                args.push(st("WITHSCORES"));
            }
            ("ZRANGE", args)
        }
        Command::Zrangebyscore {
            key,
            min,
            max,
            rev,
            with_scores,
            limit,
        } => {
            let (first, second) = if rev { (max, min) } else { (min, max) };
            let mut args = vec![s(key), s(first.to_redis_arg()), s(second.to_redis_arg())];
            if with_scores {
                args.push(st("WITHSCORES"));
            }
            if let Some(l) = limit {
                args.push(st("LIMIT"));
                args.push(int(l.offset.min(i64::MAX as u64) as i64));
                args.push(int(l.count.min(i64::MAX as u64) as i64));
            }
            (
                if rev {
                    "ZREVRANGEBYSCORE"
                } else {
                    "ZRANGEBYSCORE"
                },
                args,
            )
        }
        Command::Zrem { key, members } => {
            let mut args = Vec::with_capacity(1 + members.len());
            args.push(s(key));
            args.extend(members.into_iter().map(s));
            ("ZREM", args)
        }
        Command::Zcard { key } => ("ZCARD", vec![s(key)]),
        Command::Zscore { key, member } => ("ZSCORE", vec![s(key), s(member)]),
        Command::Zremrangebyrank { key, start, stop } => {
            ("ZREMRANGEBYRANK", vec![s(key), int(start), int(stop)])
        }
        Command::Eval { script, keys, args } => {
            let mut out = vec![s(script)];
            out.extend(keys_then_args(keys, args));
            ("EVAL", out)
        }
        Command::Evalsha {
            sha1, keys, args, ..
        } => {
            let mut out = vec![s(sha1)];
            out.extend(keys_then_args(keys, args));
            ("EVALSHA", out)
        }
        Command::ScriptLoad { script } => ("SCRIPT", vec![st("LOAD"), s(script)]),
        Command::Scan {
            cursor,
            pattern,
            count,
        } => {
            let mut args = vec![s(cursor.to_string())];
            if let Some(p) = pattern {
                args.push(st("MATCH"));
                args.push(s(p));
            }
            if let Some(c) = count {
                args.push(st("COUNT"));
                args.push(int(c.min(i64::MAX as u64) as i64));
            }
            ("SCAN", args)
        }
        Command::Raw { args, .. } => {
            let mut it = args.into_iter();
            let first = it.next().ok_or("raw command without a name")?;
            let name = std::str::from_utf8(&first)
                .map_err(|_| "raw command name is not UTF-8")?
                .to_owned();
            if name.is_empty() {
                return Err("raw command with an empty name");
            }
            return Ok(Wire {
                cmd: CustomCommand::new(name, ClusterHash::FirstKey, false),
                args: it.map(b).collect(),
            });
        }
    };
    Ok(Wire {
        cmd: custom(name),
        args,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use resilience_core::{Limit, ScoreBound, SetOptions, ZaddOptions};

    fn words(w: &Wire) -> Vec<String> {
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

    fn t(cmd: Command) -> Vec<String> {
        words(&translate(cmd).unwrap())
    }

    #[test]
    fn set_with_options() {
        assert_eq!(
            t(Command::Set {
                key: "k".into(),
                value: Bytes::from_static(b"v"),
                options: SetOptions {
                    expire_ms: Some(1500),
                    condition: Some(SetCondition::IfNotExists)
                }
            }),
            ["SET", "k", "v", "PX", "1500", "NX"]
        );
    }

    #[test]
    fn zadd_flags_in_redis_order() {
        assert_eq!(
            t(Command::Zadd {
                key: "z".into(),
                members: vec![(1.5, "a".into()), (f64::INFINITY, "b".into())],
                options: ZaddOptions {
                    condition: Some(SetCondition::IfExists),
                    greater_than: Some(true),
                    changed: true,
                    incr: false
                }
            }),
            ["ZADD", "z", "XX", "GT", "CH", "1.5", "a", "+inf", "b"]
        );
    }

    #[test]
    fn zrangebyscore_rev_swaps_bounds() {
        assert_eq!(
            t(Command::Zrangebyscore {
                key: "z".into(),
                min: ScoreBound::Exclusive(1.0),
                max: ScoreBound::PosInf,
                rev: true,
                with_scores: true,
                limit: Some(Limit {
                    offset: 0,
                    count: 10
                })
            }),
            [
                "ZREVRANGEBYSCORE",
                "z",
                "+inf",
                "(1",
                "WITHSCORES",
                "LIMIT",
                "0",
                "10"
            ]
        );
    }

    #[test]
    fn scripts_and_scan() {
        assert_eq!(
            t(Command::Evalsha {
                sha1: "abc".into(),
                keys: vec!["k1".into(), "k2".into()],
                args: vec![Bytes::from_static(b"x")],
                idempotent: false
            }),
            ["EVALSHA", "abc", "2", "k1", "k2", "x"]
        );
        assert_eq!(
            t(Command::ScriptLoad {
                script: "return 1".into()
            }),
            ["SCRIPT", "LOAD", "return 1"]
        );
        assert_eq!(
            t(Command::Scan {
                cursor: 7,
                pattern: Some("a*".into()),
                count: Some(100)
            }),
            ["SCAN", "7", "MATCH", "a*", "COUNT", "100"]
        );
    }

    #[test]
    fn raw_passes_arguments_through() {
        assert_eq!(
            t(Command::Raw {
                args: vec![
                    Bytes::from_static(b"LPUSH"),
                    Bytes::from_static(b"l"),
                    Bytes::from_static(b"1")
                ],
                keys: vec!["l".into()],
                write: true,
                idempotent: false
            }),
            ["LPUSH", "l", "1"]
        );
        assert!(
            translate(Command::Raw {
                args: vec![],
                keys: vec![],
                write: false,
                idempotent: true
            })
            .is_err()
        );
    }
}
