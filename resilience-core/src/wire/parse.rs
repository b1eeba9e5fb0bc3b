//! An argument list back into a [`Command`]: the inverse of
//! [`Command::write_args`](crate::Command::write_args), for the in-memory backend, which
//! receives argument lists from Lua scripts (`redis.call('ZADD', KEYS[1], 1, 'm')`) and
//! from [`Command::Raw`].
//!
//! Every form `write_args` writes parses back to the command it came from (a property test
//! below holds the two to each other), and so do the other spellings Redis takes for them:
//! names and options in any case, `ZADD` options in any order, `SET … EX`. A command
//! without a typed variant, or a form the variants cannot hold (`SET … KEEPTTL`,
//! `ZRANGE … BYSCORE`), is returned as [`Command::Raw`]: the in-memory backend answers the
//! few it knows and refuses the rest as an unknown command. Malformed arguments of a known
//! command get the error line Redis sends.

use bytes::Bytes;

use crate::{
    BackendError, Command, ErrorKind, Limit, ScoreBound, SetCondition, SetOptions, ZaddOptions,
};

fn err(line: &str) -> BackendError {
    BackendError::from_reply(line)
}

fn wrong_args(name: &str) -> BackendError {
    err(&format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ))
}

fn syntax() -> BackendError {
    err("ERR syntax error")
}

fn text(arg: &Bytes) -> Result<String, BackendError> {
    String::from_utf8(arg.to_vec()).map_err(|_| {
        BackendError::new(
            ErrorKind::InvalidInput,
            "the in-memory backend takes UTF-8 keys, fields and members only",
        )
    })
}

fn int(arg: &Bytes) -> Result<i64, BackendError> {
    crate::memory::parse_strict_i64(arg)
        .ok_or_else(|| err("ERR value is not an integer or out of range"))
}

fn float(arg: &Bytes) -> Result<f64, BackendError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(crate::value::parse_redis_double)
        .filter(|v| !v.is_nan())
        .ok_or_else(|| err("ERR value is not a valid float"))
}

fn bound(arg: &Bytes) -> Result<ScoreBound, BackendError> {
    let bad = || err("ERR min or max is not a float");
    let s = std::str::from_utf8(arg).map_err(|_| bad())?;
    let lower = s.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "-inf" => ScoreBound::NegInf,
        "+inf" | "inf" => ScoreBound::PosInf,
        _ => match s.strip_prefix('(') {
            Some(rest) => ScoreBound::Exclusive(
                crate::value::parse_redis_double(rest)
                    .filter(|v| !v.is_nan())
                    .ok_or_else(bad)?,
            ),
            None => ScoreBound::Inclusive(
                crate::value::parse_redis_double(s)
                    .filter(|v| !v.is_nan())
                    .ok_or_else(bad)?,
            ),
        },
    })
}

fn keys(args: &[Bytes]) -> Result<Vec<String>, BackendError> {
    args.iter().map(text).collect()
}

fn raw(args: &[Bytes]) -> Command {
    Command::Raw {
        args: args.to_vec(),
        keys: Vec::new(),
        write: true,
        idempotent: false,
    }
}

/// Parses `args` (name first) into the [`Command`] Redis would run. See the module docs.
pub(crate) fn parse(args: &[Bytes]) -> Result<Command, BackendError> {
    let Some((name, rest)) = args.split_first() else {
        return Err(err("ERR unknown command ''"));
    };
    let upper = String::from_utf8_lossy(name).to_ascii_uppercase();
    let n = rest.len();
    let exactly = |want: usize| {
        if n == want {
            Ok(())
        } else {
            Err(wrong_args(&upper))
        }
    };
    let at_least = |want: usize| {
        if n >= want {
            Ok(())
        } else {
            Err(wrong_args(&upper))
        }
    };
    let key = || text(&rest[0]);
    Ok(match upper.as_str() {
        "PING" if n == 0 => Command::Ping,
        "GET" => {
            exactly(1)?;
            Command::Get { key: key()? }
        }
        "SET" => {
            at_least(2)?;
            match set_options(&rest[2..])? {
                Some(options) => Command::Set {
                    key: key()?,
                    value: rest[1].clone(),
                    options,
                },
                None => raw(args),
            }
        }
        "DEL" | "EXISTS" | "MGET" => {
            at_least(1)?;
            let keys = keys(rest)?;
            match upper.as_str() {
                "DEL" => Command::Del { keys },
                "EXISTS" => Command::Exists { keys },
                _ => Command::Mget { keys },
            }
        }
        "EXPIRE" | "PEXPIRE" if n == 2 => {
            let (key, amount) = (key()?, int(&rest[1])?);
            if upper == "EXPIRE" {
                Command::Expire {
                    key,
                    seconds: amount,
                }
            } else {
                Command::Pexpire {
                    key,
                    millis: amount,
                }
            }
        }
        "TTL" | "PTTL" | "HGETALL" | "ZCARD" => {
            exactly(1)?;
            let key = key()?;
            match upper.as_str() {
                "TTL" => Command::Ttl { key },
                "PTTL" => Command::Pttl { key },
                "HGETALL" => Command::Hgetall { key },
                _ => Command::Zcard { key },
            }
        }
        "INCRBY" => {
            exactly(2)?;
            Command::Incrby {
                key: key()?,
                delta: int(&rest[1])?,
            }
        }
        "HSET" => {
            if n < 3 || n.is_multiple_of(2) {
                return Err(wrong_args(&upper));
            }
            let fields = rest[1..]
                .chunks_exact(2)
                .map(|pair| Ok((text(&pair[0])?, pair[1].clone())))
                .collect::<Result<_, BackendError>>()?;
            Command::Hset {
                key: key()?,
                fields,
            }
        }
        "HGET" => {
            exactly(2)?;
            Command::Hget {
                key: key()?,
                field: text(&rest[1])?,
            }
        }
        "HDEL" => {
            at_least(2)?;
            Command::Hdel {
                key: key()?,
                fields: keys(&rest[1..])?,
            }
        }
        "HINCRBY" => {
            exactly(3)?;
            Command::Hincrby {
                key: key()?,
                field: text(&rest[1])?,
                delta: int(&rest[2])?,
            }
        }
        "HINCRBYFLOAT" => {
            exactly(3)?;
            Command::Hincrbyfloat {
                key: key()?,
                field: text(&rest[1])?,
                delta: float(&rest[2])?,
            }
        }
        "ZADD" => {
            at_least(3)?;
            zadd(key()?, &rest[1..])?
        }
        "ZRANGE" | "ZREVRANGE" => {
            let with_scores = match n {
                3 => false,
                4 if rest[3].eq_ignore_ascii_case(b"WITHSCORES") => true,
                // BYSCORE, BYLEX, REV, LIMIT: not a form the variant holds.
                4.. if upper == "ZRANGE" => return Ok(raw(args)),
                4 => return Err(syntax()),
                _ => return Err(wrong_args(&upper)),
            };
            Command::Zrange {
                key: key()?,
                start: int(&rest[1])?,
                stop: int(&rest[2])?,
                rev: upper == "ZREVRANGE",
                with_scores,
            }
        }
        "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" => {
            at_least(3)?;
            let rev = upper == "ZREVRANGEBYSCORE";
            let (first, second) = (bound(&rest[1])?, bound(&rest[2])?);
            let (min, max) = if rev {
                (second, first)
            } else {
                (first, second)
            };
            let (with_scores, limit) = range_options(&rest[3..])?;
            Command::Zrangebyscore {
                key: key()?,
                min,
                max,
                rev,
                with_scores,
                limit,
            }
        }
        "ZREM" => {
            at_least(2)?;
            Command::Zrem {
                key: key()?,
                members: keys(&rest[1..])?,
            }
        }
        "ZSCORE" => {
            exactly(2)?;
            Command::Zscore {
                key: key()?,
                member: text(&rest[1])?,
            }
        }
        "ZREMRANGEBYRANK" => {
            exactly(3)?;
            Command::Zremrangebyrank {
                key: key()?,
                start: int(&rest[1])?,
                stop: int(&rest[2])?,
            }
        }
        _ => raw(args),
    })
}

/// `SET`'s options after the value; `None` for a form [`SetOptions`] cannot hold.
fn set_options(options: &[Bytes]) -> Result<Option<SetOptions>, BackendError> {
    let mut out = SetOptions::default();
    let mut it = options.iter();
    while let Some(word) = it.next() {
        let word = word.to_ascii_uppercase();
        match word.as_slice() {
            b"NX" | b"XX" if out.condition.is_none() => {
                out.condition = Some(if word == b"NX" {
                    SetCondition::IfNotExists
                } else {
                    SetCondition::IfExists
                });
            }
            b"EX" | b"PX" if out.expire_ms.is_none() => {
                let amount = it.next().ok_or_else(syntax)?;
                let amount = int(amount)?;
                let ms = if word == b"EX" {
                    amount.checked_mul(1000)
                } else {
                    Some(amount)
                };
                match ms {
                    Some(ms) if ms > 0 => out.expire_ms = Some(ms as u64),
                    _ => return Err(err("ERR invalid expire time in 'set' command")),
                }
            }
            b"NX" | b"XX" | b"EX" | b"PX" => return Err(syntax()),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member ...` after the key.
fn zadd(key: String, rest: &[Bytes]) -> Result<Command, BackendError> {
    let mut options = ZaddOptions::default();
    let mut at = 0;
    while let Some(word) = rest.get(at) {
        let word = word.to_ascii_uppercase();
        match word.as_slice() {
            b"NX" => options.condition = Some(SetCondition::IfNotExists),
            b"XX" => options.condition = Some(SetCondition::IfExists),
            b"GT" => options.greater_than = Some(true),
            b"LT" => options.greater_than = Some(false),
            b"CH" => options.changed = true,
            b"INCR" => options.incr = true,
            _ => break,
        }
        at += 1;
    }
    let pairs = &rest[at..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(syntax());
    }
    if options.incr && pairs.len() != 2 {
        return Err(err(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let members = pairs
        .chunks_exact(2)
        .map(|pair| Ok((float(&pair[0])?, text(&pair[1])?)))
        .collect::<Result<_, BackendError>>()?;
    Ok(Command::Zadd {
        key,
        members,
        options,
    })
}

/// `[WITHSCORES] [LIMIT offset count]`, in either order.
fn range_options(rest: &[Bytes]) -> Result<(bool, Option<Limit>), BackendError> {
    let (mut with_scores, mut limit) = (false, None);
    let mut it = rest.iter();
    while let Some(word) = it.next() {
        let word = word.to_ascii_uppercase();
        match word.as_slice() {
            b"WITHSCORES" => with_scores = true,
            b"LIMIT" => {
                let (Some(offset), Some(count)) = (it.next(), it.next()) else {
                    return Err(syntax());
                };
                let (offset, count) = (int(offset)?, int(count)?);
                // Redis: a negative offset returns nothing, a negative count everything.
                limit = Some(Limit {
                    offset: u64::try_from(offset).unwrap_or(u64::MAX),
                    count: u64::try_from(count).unwrap_or(u64::MAX),
                });
            }
            _ => return Err(syntax()),
        }
    }
    Ok((with_scores, limit))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::ArgSink;

    #[derive(Default)]
    struct Args(Vec<Bytes>);

    impl ArgSink for Args {
        fn word(&mut self, word: &'static str) {
            self.0.push(Bytes::from_static(word.as_bytes()));
        }
        fn text(&mut self, text: &str) {
            self.0.push(Bytes::copy_from_slice(text.as_bytes()));
        }
        fn bytes(&mut self, bytes: &Bytes) {
            self.0.push(bytes.clone());
        }
        fn int(&mut self, n: i64) {
            self.0.push(Bytes::from(n.to_string()));
        }
    }

    fn args_of(cmd: &Command) -> Vec<Bytes> {
        let mut sink = Args::default();
        cmd.write_args(&mut sink).unwrap();
        sink.0
    }

    fn words(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn other_spellings_parse_to_the_same_command() {
        let cases = [
            (
                "zadd k xx gt ch 1.5 m",
                Command::Zadd {
                    key: "k".into(),
                    members: vec![(1.5, "m".into())],
                    options: ZaddOptions {
                        condition: Some(SetCondition::IfExists),
                        greater_than: Some(true),
                        changed: true,
                        incr: false,
                    },
                },
            ),
            (
                "SET k v EX 2 NX",
                Command::Set {
                    key: "k".into(),
                    value: Bytes::from_static(b"v"),
                    options: SetOptions {
                        expire_ms: Some(2000),
                        condition: Some(SetCondition::IfNotExists),
                    },
                },
            ),
            (
                "ZREVRANGEBYSCORE k (5 -inf LIMIT 0 3 WITHSCORES",
                Command::Zrangebyscore {
                    key: "k".into(),
                    min: ScoreBound::NegInf,
                    max: ScoreBound::Exclusive(5.0),
                    rev: true,
                    with_scores: true,
                    limit: Some(Limit {
                        offset: 0,
                        count: 3,
                    }),
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(&words(line)).unwrap(), want, "{line}");
        }
    }

    #[test]
    fn forms_without_a_variant_stay_raw() {
        for line in [
            "SET k v KEEPTTL",
            "ZRANGE k 0 1 BYSCORE",
            "HMGET k a b",
            "BITFIELD k",
        ] {
            assert!(
                matches!(parse(&words(line)).unwrap(), Command::Raw { .. }),
                "{line}"
            );
        }
    }

    #[test]
    fn malformed_arguments_get_redis_errors() {
        for (line, want) in [
            ("GET", "wrong number of arguments for 'get'"),
            ("HSET k f", "wrong number of arguments for 'hset'"),
            ("ZADD k 1 a 2", "syntax error"),
            ("ZADD k 1", "wrong number of arguments for 'zadd'"),
            ("ZADD k x m", "not a valid float"),
            ("INCRBY k 1.5", "not an integer"),
            ("ZRANGEBYSCORE k a 1", "min or max is not a float"),
            ("ZADD k INCR 1 a 2 b", "single increment-element pair"),
        ] {
            let e = parse(&words(line)).unwrap_err();
            assert!(e.to_string().contains(want), "{line}: {e}");
        }
    }

    mod round_trip {
        //! Every command `write_args` writes parses back to itself.

        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            "[a-z:{}]{1,8}"
        }

        fn score() -> impl Strategy<Value = f64> {
            prop_oneof![any::<i32>().prop_map(f64::from), -1e6f64..1e6]
        }

        fn bound() -> impl Strategy<Value = ScoreBound> {
            prop_oneof![
                Just(ScoreBound::NegInf),
                Just(ScoreBound::PosInf),
                score().prop_map(ScoreBound::Inclusive),
                score().prop_map(ScoreBound::Exclusive),
            ]
        }

        fn command() -> impl Strategy<Value = Command> {
            let condition = prop::option::of(prop_oneof![
                Just(SetCondition::IfNotExists),
                Just(SetCondition::IfExists)
            ]);
            prop_oneof![
                name().prop_map(|key| Command::Get { key }),
                (
                    name(),
                    any::<Vec<u8>>(),
                    prop::option::of(1u64..1 << 40),
                    condition.clone()
                )
                    .prop_map(|(key, v, expire_ms, condition)| Command::Set {
                        key,
                        value: Bytes::from(v),
                        options: SetOptions {
                            expire_ms,
                            condition
                        },
                    }),
                prop::collection::vec(name(), 1..4).prop_map(|keys| Command::Del { keys }),
                (name(), any::<i64>()).prop_map(|(key, millis)| Command::Pexpire { key, millis }),
                name().prop_map(|key| Command::Pttl { key }),
                (
                    name(),
                    prop::collection::vec((name(), any::<Vec<u8>>()), 1..4)
                )
                    .prop_map(|(key, fields)| Command::Hset {
                        key,
                        fields: fields
                            .into_iter()
                            .map(|(f, v)| (f, Bytes::from(v)))
                            .collect(),
                    }),
                (name(), name(), any::<i64>()).prop_map(|(key, field, delta)| Command::Hincrby {
                    key,
                    field,
                    delta
                }),
                (
                    name(),
                    prop::collection::vec((score(), name()), 1..4),
                    condition,
                    prop::option::of(any::<bool>()),
                    any::<bool>()
                )
                    .prop_map(
                        |(key, members, condition, greater_than, changed)| {
                            Command::Zadd {
                                key,
                                members,
                                options: ZaddOptions {
                                    condition,
                                    greater_than,
                                    changed,
                                    incr: false,
                                },
                            }
                        }
                    ),
                (
                    name(),
                    any::<i32>(),
                    any::<i32>(),
                    any::<bool>(),
                    any::<bool>()
                )
                    .prop_map(|(key, start, stop, rev, with_scores)| {
                        Command::Zrange {
                            key,
                            start: start.into(),
                            stop: stop.into(),
                            rev,
                            with_scores,
                        }
                    }),
                (
                    name(),
                    bound(),
                    bound(),
                    any::<bool>(),
                    any::<bool>(),
                    prop::option::of((0u64..1000, 0u64..1000))
                )
                    .prop_map(|(key, min, max, rev, with_scores, limit)| {
                        Command::Zrangebyscore {
                            key,
                            min,
                            max,
                            rev,
                            with_scores,
                            limit: limit.map(|(offset, count)| Limit { offset, count }),
                        }
                    }),
                (name(), prop::collection::vec(name(), 1..4))
                    .prop_map(|(key, members)| Command::Zrem { key, members }),
                name().prop_map(|key| Command::Zcard { key }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn written_commands_parse_back(cmd in command()) {
                prop_assert_eq!(parse(&args_of(&cmd)).unwrap(), cmd);
            }
        }
    }
}
