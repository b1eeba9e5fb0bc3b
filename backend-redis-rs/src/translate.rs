//! Translation of a [`Command`] into one `redis::Cmd`.
//!
//! Each [`Command`] variant maps to exactly one Redis command, spelled the way every Redis
//! version since 5.0 accepts it (so `ZRANGE … REV` is sent as `ZREVRANGE`). Nothing here
//! talks to the network: translation is pure and unit-tested on the packed bytes.
//!
//! Scores and float increments are formatted with
//! [`format_score`](resilience_core::command::format_score), so `inf` is spelled `+inf`
//! and every finite `f64` round-trips exactly.
//!
//! The reply of each command still has to be brought into its canonical shape; the
//! [`ReplyShape`] returned next to the `Cmd` tells [`crate::reply`] how.

use redis::Cmd;
use resilience_core::command::format_score;
use resilience_core::{BackendError, Command, ErrorKind, SetCondition};

/// How a raw driver reply must be reshaped into the canonical [`Value`](resilience_core::Value)
/// documented on the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplyShape {
    /// Passed through as decoded.
    AsIs,
    /// A flat field/value array becomes a `Map` (`HGETALL`).
    Map,
    /// A bulk string holding a number becomes a `Double` (`Nil` stays `Nil`).
    Double,
    /// A flat member/score array becomes an array of `[member, Double score]` pairs.
    ScoredMembers,
    /// `[cursor as bulk string, keys]` becomes `[Int cursor, keys]` (`SCAN`).
    Scan,
}

/// Translates `command` into the Redis command to send and the shape of its reply.
///
/// Fails with [`ErrorKind::InvalidInput`] only for a [`Command::Raw`] without arguments:
/// every other variant is always representable.
pub(crate) fn translate(command: &Command) -> Result<(Cmd, ReplyShape), BackendError> {
    let mut shape = ReplyShape::AsIs;
    let cmd = match command {
        Command::Ping => redis::cmd("PING"),
        Command::Get { key } => {
            // Sized up front: the hot commands build their `Cmd` with no reallocation.
            let mut c = Cmd::with_capacity(2, 3 + key.len());
            c.arg("GET").arg(key);
            c
        }
        Command::Set {
            key,
            value,
            options,
        } => {
            let value = value.as_ref();
            let mut c = Cmd::with_capacity(6, 3 + key.len() + value.len() + 24);
            c.arg("SET").arg(key).arg(value);
            if let Some(ms) = options.expire_ms {
                c.arg("PX").arg(ms);
            }
            match options.condition {
                Some(SetCondition::IfNotExists) => {
                    c.arg("NX");
                }
                Some(SetCondition::IfExists) => {
                    c.arg("XX");
                }
                None => {}
            }
            c
        }
        Command::Del { keys } => key_list("DEL", keys),
        Command::Exists { keys } => key_list("EXISTS", keys),
        Command::Expire { key, seconds } => {
            let mut c = redis::cmd("EXPIRE");
            c.arg(key).arg(*seconds);
            c
        }
        Command::Pexpire { key, millis } => {
            let mut c = redis::cmd("PEXPIRE");
            c.arg(key).arg(*millis);
            c
        }
        Command::Ttl { key } => key_list("TTL", std::slice::from_ref(key)),
        Command::Pttl { key } => key_list("PTTL", std::slice::from_ref(key)),
        Command::Incrby { key, delta } => {
            let mut c = redis::cmd("INCRBY");
            c.arg(key).arg(*delta);
            c
        }
        Command::Mget { keys } => key_list("MGET", keys),
        Command::Hset { key, fields } => {
            let mut c = redis::cmd("HSET");
            c.arg(key);
            for (field, value) in fields {
                c.arg(field).arg(value.as_ref());
            }
            c
        }
        Command::Hget { key, field } => {
            let mut c = redis::cmd("HGET");
            c.arg(key).arg(field);
            c
        }
        Command::Hgetall { key } => {
            shape = ReplyShape::Map;
            key_list("HGETALL", std::slice::from_ref(key))
        }
        Command::Hdel { key, fields } => {
            let mut c = redis::cmd("HDEL");
            c.arg(key).arg(fields);
            c
        }
        Command::Hincrby { key, field, delta } => {
            let mut c = redis::cmd("HINCRBY");
            c.arg(key).arg(field).arg(*delta);
            c
        }
        Command::Hincrbyfloat { key, field, delta } => {
            shape = ReplyShape::Double;
            let mut c = redis::cmd("HINCRBYFLOAT");
            c.arg(key).arg(field).arg(format_score(*delta));
            c
        }
        Command::Zadd {
            key,
            members,
            options,
        } => {
            let mut c = redis::cmd("ZADD");
            c.arg(key);
            match options.condition {
                Some(SetCondition::IfNotExists) => {
                    c.arg("NX");
                }
                Some(SetCondition::IfExists) => {
                    c.arg("XX");
                }
                None => {}
            }
            match options.greater_than {
                Some(true) => {
                    c.arg("GT");
                }
                Some(false) => {
                    c.arg("LT");
                }
                None => {}
            }
            if options.changed {
                c.arg("CH");
            }
            if options.incr {
                c.arg("INCR");
                shape = ReplyShape::Double;
            }
            for (score, member) in members {
                c.arg(format_score(*score)).arg(member);
            }
            c
        }
        Command::Zrange {
            key,
            start,
            stop,
            rev,
            with_scores,
        } => {
            let mut c = redis::cmd(if *rev { "ZREVRANGE" } else { "ZRANGE" });
            c.arg(key).arg(*start).arg(*stop);
            if *with_scores {
                c.arg("WITHSCORES");
                shape = ReplyShape::ScoredMembers;
            }
            c
        }
        Command::Zrangebyscore {
            key,
            min,
            max,
            rev,
            with_scores,
            limit,
        } => {
            let mut c = if *rev {
                let mut c = redis::cmd("ZREVRANGEBYSCORE");
                c.arg(key).arg(max.to_redis_arg()).arg(min.to_redis_arg());
                c
            } else {
                let mut c = redis::cmd("ZRANGEBYSCORE");
                c.arg(key).arg(min.to_redis_arg()).arg(max.to_redis_arg());
                c
            };
            if *with_scores {
                c.arg("WITHSCORES");
                shape = ReplyShape::ScoredMembers;
            }
            if let Some(limit) = limit {
                c.arg("LIMIT").arg(limit.offset).arg(limit.count);
            }
            c
        }
        Command::Zrem { key, members } => {
            let mut c = redis::cmd("ZREM");
            c.arg(key).arg(members);
            c
        }
        Command::Zcard { key } => key_list("ZCARD", std::slice::from_ref(key)),
        Command::Zscore { key, member } => {
            shape = ReplyShape::Double;
            let mut c = redis::cmd("ZSCORE");
            c.arg(key).arg(member);
            c
        }
        Command::Zremrangebyrank { key, start, stop } => {
            let mut c = redis::cmd("ZREMRANGEBYRANK");
            c.arg(key).arg(*start).arg(*stop);
            c
        }
        Command::Eval { script, keys, args } => {
            let mut c = redis::cmd("EVAL");
            c.arg(script).arg(keys.len()).arg(keys);
            for a in args {
                c.arg(a.as_ref());
            }
            c
        }
        Command::Evalsha {
            sha1, keys, args, ..
        } => {
            let mut c = redis::cmd("EVALSHA");
            c.arg(sha1).arg(keys.len()).arg(keys);
            for a in args {
                c.arg(a.as_ref());
            }
            c
        }
        Command::ScriptLoad { script } => {
            let mut c = redis::cmd("SCRIPT");
            c.arg("LOAD").arg(script);
            c
        }
        Command::Scan {
            cursor,
            pattern,
            count,
        } => {
            shape = ReplyShape::Scan;
            let mut c = redis::cmd("SCAN");
            c.arg(*cursor);
            if let Some(pattern) = pattern {
                c.arg("MATCH").arg(pattern);
            }
            if let Some(count) = count {
                c.arg("COUNT").arg(*count);
            }
            c
        }
        Command::Raw { args, .. } => {
            let Some((name, rest)) = args.split_first() else {
                return Err(BackendError::new(
                    ErrorKind::InvalidInput,
                    "raw command without arguments",
                ));
            };
            let mut c = Cmd::new();
            c.arg(name.as_ref());
            for a in rest {
                c.arg(a.as_ref());
            }
            c
        }
    };
    Ok((cmd, shape))
}

fn key_list(name: &str, keys: &[String]) -> Cmd {
    let mut c = redis::cmd(name);
    c.arg(keys);
    c
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use resilience_core::{Limit, ScoreBound, SetOptions, ZaddOptions};

    /// The arguments of `cmd` as text, for readable assertions.
    fn words(command: &Command) -> (Vec<String>, ReplyShape) {
        let (cmd, shape) = translate(command).unwrap();
        let args = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => "<cursor>".to_owned(),
            })
            .collect();
        (args, shape)
    }

    #[test]
    fn set_with_ttl_and_condition() {
        let (w, shape) = words(&Command::Set {
            key: "k".into(),
            value: Bytes::from_static(b"v"),
            options: SetOptions {
                expire_ms: Some(1500),
                condition: Some(SetCondition::IfNotExists),
            },
        });
        assert_eq!(w, ["SET", "k", "v", "PX", "1500", "NX"]);
        assert_eq!(shape, ReplyShape::AsIs);
        let (w, _) = words(&Command::Set {
            key: "k".into(),
            value: Bytes::from_static(b"\x00\xff"),
            options: SetOptions {
                expire_ms: None,
                condition: Some(SetCondition::IfExists),
            },
        });
        assert_eq!(w[3], "XX");
        assert_eq!(w.len(), 4);
    }

    #[test]
    fn zadd_spells_every_option_in_redis_order() {
        let (w, shape) = words(&Command::Zadd {
            key: "z".into(),
            members: vec![(f64::INFINITY, "a".into())],
            options: ZaddOptions {
                condition: Some(SetCondition::IfExists),
                greater_than: Some(false),
                changed: true,
                incr: true,
            },
        });
        assert_eq!(w, ["ZADD", "z", "XX", "LT", "CH", "INCR", "+inf", "a"]);
        assert_eq!(shape, ReplyShape::Double);
        let (w, shape) = words(&Command::Zadd {
            key: "z".into(),
            members: vec![(1.5, "a".into()), (-2.0, "b".into())],
            options: ZaddOptions::default(),
        });
        assert_eq!(w, ["ZADD", "z", "1.5", "a", "-2", "b"]);
        assert_eq!(shape, ReplyShape::AsIs);
    }

    #[test]
    fn ranges_by_rank_and_score() {
        let (w, shape) = words(&Command::Zrange {
            key: "z".into(),
            start: 0,
            stop: -1,
            rev: true,
            with_scores: true,
        });
        assert_eq!(w, ["ZREVRANGE", "z", "0", "-1", "WITHSCORES"]);
        assert_eq!(shape, ReplyShape::ScoredMembers);
        let (w, shape) = words(&Command::Zrangebyscore {
            key: "z".into(),
            min: ScoreBound::Exclusive(1.0),
            max: ScoreBound::PosInf,
            rev: true,
            with_scores: false,
            limit: Some(Limit {
                offset: 2,
                count: 3,
            }),
        });
        assert_eq!(
            w,
            ["ZREVRANGEBYSCORE", "z", "+inf", "(1", "LIMIT", "2", "3"]
        );
        assert_eq!(shape, ReplyShape::AsIs);
        let (w, _) = words(&Command::Zrangebyscore {
            key: "z".into(),
            min: ScoreBound::NegInf,
            max: ScoreBound::Inclusive(2.5),
            rev: false,
            with_scores: true,
            limit: None,
        });
        assert_eq!(w, ["ZRANGEBYSCORE", "z", "-inf", "2.5", "WITHSCORES"]);
    }

    #[test]
    fn scripts_carry_numkeys() {
        let (w, _) = words(&Command::Evalsha {
            sha1: "abc".into(),
            keys: vec!["k1".into(), "k2".into()],
            args: vec![Bytes::from_static(b"a")],
            idempotent: false,
        });
        assert_eq!(w, ["EVALSHA", "abc", "2", "k1", "k2", "a"]);
        let (w, _) = words(&Command::Eval {
            script: "return 1".into(),
            keys: vec![],
            args: vec![],
        });
        assert_eq!(w, ["EVAL", "return 1", "0"]);
        let (w, _) = words(&Command::ScriptLoad {
            script: "return 1".into(),
        });
        assert_eq!(w, ["SCRIPT", "LOAD", "return 1"]);
    }

    #[test]
    fn hashes_and_multi_key_commands() {
        let (w, _) = words(&Command::Hset {
            key: "h".into(),
            fields: vec![
                ("a".into(), Bytes::from_static(b"1")),
                ("b".into(), Bytes::from_static(b"2")),
            ],
        });
        assert_eq!(w, ["HSET", "h", "a", "1", "b", "2"]);
        let (w, shape) = words(&Command::Hgetall { key: "h".into() });
        assert_eq!(w, ["HGETALL", "h"]);
        assert_eq!(shape, ReplyShape::Map);
        let (w, shape) = words(&Command::Hincrbyfloat {
            key: "h".into(),
            field: "f".into(),
            delta: 0.1,
        });
        assert_eq!(w, ["HINCRBYFLOAT", "h", "f", "0.1"]);
        assert_eq!(shape, ReplyShape::Double);
        let (w, _) = words(&Command::Del {
            keys: vec!["a".into(), "b".into()],
        });
        assert_eq!(w, ["DEL", "a", "b"]);
        let (w, _) = words(&Command::Hdel {
            key: "h".into(),
            fields: vec!["a".into(), "b".into()],
        });
        assert_eq!(w, ["HDEL", "h", "a", "b"]);
    }

    #[test]
    fn scan_with_pattern_and_count() {
        let (w, shape) = words(&Command::Scan {
            cursor: 17,
            pattern: Some("ns:*".into()),
            count: Some(100),
        });
        assert_eq!(w, ["SCAN", "17", "MATCH", "ns:*", "COUNT", "100"]);
        assert_eq!(shape, ReplyShape::Scan);
    }

    #[test]
    fn raw_passes_arguments_and_rejects_empty() {
        let (w, _) = words(&Command::Raw {
            args: vec![Bytes::from_static(b"OBJECT"), Bytes::from_static(b"HELP")],
            keys: vec![],
            write: false,
            idempotent: true,
        });
        assert_eq!(w, ["OBJECT", "HELP"]);
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
