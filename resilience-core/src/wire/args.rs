//! Commands as argument lists: [`Command::write_args`] and the [`ArgSink`] it writes to.

use bytes::Bytes;

use crate::command::format_score;
use crate::{BackendError, Command, ErrorKind, ScoreBound, SetCondition};

/// Where a command's arguments go: a driver's command buffer.
///
/// The four kinds of argument let each driver store each one its cheapest way: a driver
/// that copies arguments into one buffer copies them all alike, a driver that keeps owned
/// values can clone a [`Bytes`] (a reference count) instead of copying it, and can keep
/// protocol words and integers as the static strings and numbers they are.
pub trait ArgSink {
    /// A word the protocol defines: the command name (always the first argument written,
    /// except for [`Command::Raw`], whose name comes as [`bytes`](Self::bytes)) or an
    /// option such as `PX`, `WITHSCORES`, `LIMIT`.
    fn word(&mut self, word: &'static str);
    /// Text the caller gave: a key, field, member, pattern, script or formatted number.
    fn text(&mut self, text: &str);
    /// Binary data the caller gave: a value, a script argument, a raw argument.
    fn bytes(&mut self, bytes: &Bytes);
    /// An integer, sent in decimal.
    fn int(&mut self, n: i64);
    /// An unsigned integer, sent in decimal (a `SCAN` cursor can exceed `i64`).
    fn uint(&mut self, n: u64) {
        match i64::try_from(n) {
            Ok(n) => self.int(n),
            Err(_) => self.text(&n.to_string()),
        }
    }
    /// A score, as Redis spells it: `+inf`, `-inf`, or the shortest exact decimal.
    fn score(&mut self, score: f64) {
        self.text(&format_score(score));
    }
}

impl Command {
    /// Writes the command to `sink` as Redis receives it: the name, then every argument in
    /// order. This is the only place commands are spelled; every Redis backend sends what
    /// this writes.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] only for a [`Command::Raw`] without
    /// arguments (it has no name). Every other variant is always representable.
    pub fn write_args(&self, sink: &mut impl ArgSink) -> Result<(), BackendError> {
        match self {
            Command::Ping => sink.word("PING"),
            Command::Get { key } => key_command(sink, "GET", key),
            Command::Set {
                key,
                value,
                options,
            } => {
                sink.word("SET");
                sink.text(key);
                sink.bytes(value);
                if let Some(ms) = options.expire_ms {
                    sink.word("PX");
                    sink.uint(ms);
                }
                condition(sink, options.condition);
            }
            Command::Del { keys } => key_list(sink, "DEL", keys),
            Command::Exists { keys } => key_list(sink, "EXISTS", keys),
            Command::Expire { key, seconds } => {
                key_command(sink, "EXPIRE", key);
                sink.int(*seconds);
            }
            Command::Pexpire { key, millis } => {
                key_command(sink, "PEXPIRE", key);
                sink.int(*millis);
            }
            Command::Ttl { key } => key_command(sink, "TTL", key),
            Command::Pttl { key } => key_command(sink, "PTTL", key),
            Command::Incrby { key, delta } => {
                key_command(sink, "INCRBY", key);
                sink.int(*delta);
            }
            Command::Mget { keys } => key_list(sink, "MGET", keys),
            Command::Hset { key, fields } => {
                key_command(sink, "HSET", key);
                for (field, value) in fields {
                    sink.text(field);
                    sink.bytes(value);
                }
            }
            Command::Hget { key, field } => {
                key_command(sink, "HGET", key);
                sink.text(field);
            }
            Command::Hgetall { key } => key_command(sink, "HGETALL", key),
            Command::Hdel { key, fields } => {
                key_command(sink, "HDEL", key);
                fields.iter().for_each(|f| sink.text(f));
            }
            Command::Hincrby { key, field, delta } => {
                key_command(sink, "HINCRBY", key);
                sink.text(field);
                sink.int(*delta);
            }
            Command::Hincrbyfloat { key, field, delta } => {
                key_command(sink, "HINCRBYFLOAT", key);
                sink.text(field);
                sink.score(*delta);
            }
            Command::Zadd {
                key,
                members,
                options,
            } => {
                key_command(sink, "ZADD", key);
                condition(sink, options.condition);
                match options.greater_than {
                    Some(true) => sink.word("GT"),
                    Some(false) => sink.word("LT"),
                    None => {}
                }
                if options.changed {
                    sink.word("CH");
                }
                if options.incr {
                    sink.word("INCR");
                }
                for (score, member) in members {
                    sink.score(*score);
                    sink.text(member);
                }
            }
            Command::Zrange {
                key,
                start,
                stop,
                rev,
                with_scores,
            } => {
                // `ZREVRANGE` rather than `ZRANGE ... REV`: every server since Redis 5 takes it.
                key_command(sink, if *rev { "ZREVRANGE" } else { "ZRANGE" }, key);
                sink.int(*start);
                sink.int(*stop);
                if *with_scores {
                    sink.word("WITHSCORES");
                }
            }
            Command::Zrangebyscore {
                key,
                min,
                max,
                rev,
                with_scores,
                limit,
            } => {
                // The reverse command takes the upper bound first.
                let (name, first, second) = if *rev {
                    ("ZREVRANGEBYSCORE", max, min)
                } else {
                    ("ZRANGEBYSCORE", min, max)
                };
                key_command(sink, name, key);
                bound(sink, *first);
                bound(sink, *second);
                if *with_scores {
                    sink.word("WITHSCORES");
                }
                if let Some(limit) = limit {
                    sink.word("LIMIT");
                    sink.uint(limit.offset);
                    sink.uint(limit.count);
                }
            }
            Command::Zrem { key, members } => {
                key_command(sink, "ZREM", key);
                members.iter().for_each(|m| sink.text(m));
            }
            Command::Zcard { key } => key_command(sink, "ZCARD", key),
            Command::Zscore { key, member } => {
                key_command(sink, "ZSCORE", key);
                sink.text(member);
            }
            Command::Zremrangebyrank { key, start, stop } => {
                key_command(sink, "ZREMRANGEBYRANK", key);
                sink.int(*start);
                sink.int(*stop);
            }
            Command::Eval { script, keys, args } => {
                sink.word("EVAL");
                sink.text(script);
                keys_then_args(sink, keys, args);
            }
            Command::Evalsha {
                sha1, keys, args, ..
            } => {
                sink.word("EVALSHA");
                sink.text(sha1);
                keys_then_args(sink, keys, args);
            }
            Command::ScriptLoad { script } => {
                sink.word("SCRIPT");
                sink.word("LOAD");
                sink.text(script);
            }
            Command::Scan {
                cursor,
                pattern,
                count,
            } => {
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
            }
            Command::Raw { args, .. } => {
                if args.is_empty() {
                    return Err(BackendError::new(
                        ErrorKind::InvalidInput,
                        "a raw command needs at least its name: Command::Raw with empty args",
                    ));
                }
                args.iter().for_each(|a| sink.bytes(a));
            }
        }
        Ok(())
    }
}

fn key_command(sink: &mut impl ArgSink, name: &'static str, key: &str) {
    sink.word(name);
    sink.text(key);
}

fn key_list(sink: &mut impl ArgSink, name: &'static str, keys: &[String]) {
    sink.word(name);
    keys.iter().for_each(|k| sink.text(k));
}

fn keys_then_args(sink: &mut impl ArgSink, keys: &[String], args: &[Bytes]) {
    sink.uint(keys.len() as u64);
    keys.iter().for_each(|k| sink.text(k));
    args.iter().for_each(|a| sink.bytes(a));
}

fn condition(sink: &mut impl ArgSink, condition: Option<SetCondition>) {
    match condition {
        Some(SetCondition::IfNotExists) => sink.word("NX"),
        Some(SetCondition::IfExists) => sink.word("XX"),
        None => {}
    }
}

fn bound(sink: &mut impl ArgSink, bound: ScoreBound) {
    match bound {
        ScoreBound::NegInf => sink.word("-inf"),
        ScoreBound::PosInf => sink.word("+inf"),
        ScoreBound::Inclusive(v) => sink.score(v),
        ScoreBound::Exclusive(_) => sink.text(&bound.to_redis_arg()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Limit, SetOptions, ZaddOptions};

    /// The arguments as text, for readable assertions.
    #[derive(Default)]
    struct Words(Vec<String>);

    impl ArgSink for Words {
        fn word(&mut self, word: &'static str) {
            self.0.push(word.to_owned());
        }
        fn text(&mut self, text: &str) {
            self.0.push(text.to_owned());
        }
        fn bytes(&mut self, bytes: &Bytes) {
            self.0.push(String::from_utf8_lossy(bytes).into_owned());
        }
        fn int(&mut self, n: i64) {
            self.0.push(n.to_string());
        }
    }

    fn words(command: &Command) -> Vec<String> {
        let mut w = Words::default();
        command.write_args(&mut w).unwrap();
        w.0
    }

    #[test]
    fn set_with_ttl_and_condition() {
        let w = words(&Command::Set {
            key: "k".into(),
            value: Bytes::from_static(b"v"),
            options: SetOptions {
                expire_ms: Some(1500),
                condition: Some(SetCondition::IfNotExists),
            },
        });
        assert_eq!(w, ["SET", "k", "v", "PX", "1500", "NX"]);
        let w = words(&Command::Set {
            key: "k".into(),
            value: Bytes::from_static(b"v"),
            options: SetOptions {
                expire_ms: None,
                condition: Some(SetCondition::IfExists),
            },
        });
        assert_eq!(w, ["SET", "k", "v", "XX"]);
    }

    #[test]
    fn zadd_spells_every_option_in_redis_order() {
        let w = words(&Command::Zadd {
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
        let w = words(&Command::Zadd {
            key: "z".into(),
            members: vec![(1.5, "a".into()), (-2.0, "b".into())],
            options: ZaddOptions::default(),
        });
        assert_eq!(w, ["ZADD", "z", "1.5", "a", "-2", "b"]);
    }

    #[test]
    fn ranges_by_rank_and_score() {
        let w = words(&Command::Zrange {
            key: "z".into(),
            start: 0,
            stop: -1,
            rev: true,
            with_scores: true,
        });
        assert_eq!(w, ["ZREVRANGE", "z", "0", "-1", "WITHSCORES"]);
        let w = words(&Command::Zrangebyscore {
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
        let w = words(&Command::Zrangebyscore {
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
        let w = words(&Command::Evalsha {
            sha1: "abc".into(),
            keys: vec!["k1".into(), "k2".into()],
            args: vec![Bytes::from_static(b"a")],
            idempotent: false,
        });
        assert_eq!(w, ["EVALSHA", "abc", "2", "k1", "k2", "a"]);
        let w = words(&Command::Eval {
            script: "return 1".into(),
            keys: vec![],
            args: vec![],
        });
        assert_eq!(w, ["EVAL", "return 1", "0"]);
        let w = words(&Command::ScriptLoad {
            script: "return 1".into(),
        });
        assert_eq!(w, ["SCRIPT", "LOAD", "return 1"]);
    }

    #[test]
    fn hashes_and_multi_key_commands() {
        let w = words(&Command::Hset {
            key: "h".into(),
            fields: vec![
                ("a".into(), Bytes::from_static(b"1")),
                ("b".into(), Bytes::from_static(b"2")),
            ],
        });
        assert_eq!(w, ["HSET", "h", "a", "1", "b", "2"]);
        assert_eq!(
            words(&Command::Hincrbyfloat {
                key: "h".into(),
                field: "f".into(),
                delta: 0.1,
            }),
            ["HINCRBYFLOAT", "h", "f", "0.1"]
        );
        assert_eq!(
            words(&Command::Del {
                keys: vec!["a".into(), "b".into()],
            }),
            ["DEL", "a", "b"]
        );
        assert_eq!(
            words(&Command::Hdel {
                key: "h".into(),
                fields: vec!["a".into(), "b".into()],
            }),
            ["HDEL", "h", "a", "b"]
        );
    }

    #[test]
    fn scan_with_pattern_count_and_a_cursor_beyond_i64() {
        let w = words(&Command::Scan {
            cursor: 17,
            pattern: Some("ns:*".into()),
            count: Some(100),
        });
        assert_eq!(w, ["SCAN", "17", "MATCH", "ns:*", "COUNT", "100"]);
        let w = words(&Command::Scan {
            cursor: u64::MAX,
            pattern: None,
            count: None,
        });
        assert_eq!(w, ["SCAN", "18446744073709551615"]);
    }

    #[test]
    fn raw_passes_arguments_and_refuses_an_empty_one() {
        let w = words(&Command::Raw {
            args: vec![Bytes::from_static(b"OBJECT"), Bytes::from_static(b"HELP")],
            keys: vec![],
            write: false,
            idempotent: true,
        });
        assert_eq!(w, ["OBJECT", "HELP"]);
        let err = Command::Raw {
            args: vec![],
            keys: vec![],
            write: false,
            idempotent: true,
        }
        .write_args(&mut Words::default())
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn every_command_starts_with_the_name_it_reports() {
        let commands = [
            Command::Ping,
            Command::Get { key: "k".into() },
            Command::Ttl { key: "k".into() },
            Command::Zcard { key: "k".into() },
            Command::Mget {
                keys: vec!["k".into()],
            },
        ];
        for c in commands {
            assert_eq!(words(&c)[0], c.name());
        }
    }
}
