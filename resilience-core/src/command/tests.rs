//! The command table held to its promises: every example reads back and writes out as
//! itself, every write states its idempotency (listed here, so a change to a flag is a
//! change to this file too), and the other spellings Redis accepts read the same.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;

use super::*;
use crate::wire::ArgSink;

/// The arguments as written.
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

fn typed_examples() -> impl Iterator<Item = (&'static CommandSpec, Command)> {
    Command::SPECS
        .iter()
        .filter(|spec| spec.name != "RAW")
        .map(|spec| (spec, Command::from_args(&spec.example_args()).unwrap()))
}

#[test]
fn every_example_reads_back_to_its_entry_and_writes_out_as_itself() {
    assert_eq!(Command::SPECS.len() * 2, Command::VARIANTS);
    for (spec, cmd) in typed_examples() {
        assert_eq!(cmd.name(), spec.name, "{}", spec.example);
        assert_eq!(cmd.arity(), spec.arity, "{}", spec.example);
        assert_eq!(args_of(&cmd), spec.example_args(), "{}", spec.example);
        assert_eq!(Command::from_args(&args_of(&cmd)).unwrap(), cmd);
    }
}

#[test]
fn ordinals_are_dense_and_distinct_per_name() {
    let mut seen = std::collections::HashMap::new();
    let reversed = [
        "ZREVRANGE z 0 -1",
        "ZREVRANGEBYSCORE z +inf -inf",
        "ZREVRANGEBYLEX z + -",
    ];
    let commands = typed_examples().map(|(_, c)| c).chain(
        reversed
            .iter()
            .map(|l| Command::from_args(&words(l)).unwrap()),
    );
    for cmd in commands {
        assert!(cmd.ordinal() < Command::VARIANTS);
        if let Some(other) = seen.insert(cmd.ordinal(), cmd.name()) {
            assert_eq!(
                other,
                cmd.name(),
                "two names share ordinal {}",
                cmd.ordinal()
            );
        }
    }
}

/// Every command that writes, and whether a retry after a lost reply is safe. A new write
/// lands in this list or the test fails: its flag is a decision someone has to make.
#[test]
fn every_write_states_its_idempotency() {
    let expected: &[(&str, bool)] = &[
        ("SET", true),
        ("DEL", true),
        ("EXPIRE", true),
        ("PEXPIRE", true),
        ("INCRBY", false),
        ("HSET", true),
        ("HDEL", true),
        ("HINCRBY", false),
        ("HINCRBYFLOAT", false),
        ("ZADD", true),
        ("ZREM", true),
        ("ZREMRANGEBYRANK", false),
        ("EVAL", false),
        ("EVALSHA", false),
        ("GETEX", true),
        ("GETDEL", false),
        ("MSET", true),
        ("MSETNX", false),
        ("INCR", false),
        ("DECR", false),
        ("DECRBY", false),
        ("INCRBYFLOAT", false),
        ("APPEND", false),
        ("SETRANGE", true),
        ("UNLINK", true),
        ("PERSIST", true),
        ("EXPIREAT", true),
        ("COPY", true),
        ("HSETNX", true),
        ("LPUSH", false),
        ("RPUSH", false),
        ("LPOP", false),
        ("RPOP", false),
        ("LTRIM", true),
        ("LSET", true),
        ("LREM", true),
        ("LMOVE", false),
        ("SADD", true),
        ("SREM", true),
        ("SPOP", false),
        ("ZINCRBY", false),
        ("ZPOPMIN", false),
        ("ZPOPMAX", false),
        ("SETBIT", true),
        ("BITFIELD", true),
        ("PFADD", true),
        ("XADD", false),
        ("XTRIM", true),
        ("XDEL", true),
        ("XGROUP CREATE", false),
        ("XREADGROUP", false),
        ("XACK", true),
        ("XAUTOCLAIM", false),
        ("BLPOP", false),
        ("BRPOP", false),
        ("BLMOVE", false),
    ];
    let actual: Vec<(&str, bool)> = typed_examples()
        .filter(|(_, c)| c.is_write())
        .map(|(_, c)| (c.name(), c.is_idempotent()))
        .collect();
    assert_eq!(actual, expected);
    // The flags that depend on arguments.
    let flag = |line: &str| Command::from_args(&words(line)).unwrap().is_idempotent();
    assert!(!flag("SET k v GET"));
    assert!(!flag("ZADD z INCR 1 a"));
    assert!(!flag("LREM l 2 x"));
    assert!(!flag("BITFIELD k INCRBY u8 0 1"));
    // Not writes, but a retry delivers twice.
    assert!(!flag("PUBLISH ch m"));
    assert!(!flag("SPUBLISH ch m"));
}

#[test]
fn blocking_commands_say_how_long_they_block() {
    let block = |line: &str| Command::from_args(&words(line)).unwrap().blocks_for();
    use std::time::Duration;
    assert_eq!(block("BLPOP a b 1.5"), Some(Duration::from_millis(1500)));
    assert_eq!(block("BLMOVE a b LEFT RIGHT 0"), Some(Duration::ZERO));
    assert_eq!(
        block("XREAD BLOCK 250 STREAMS s $"),
        Some(Duration::from_millis(250))
    );
    assert_eq!(block("XREAD STREAMS s $"), None);
    assert_eq!(block("LPOP a"), None);
    let blpop = Command::from_args(&words("BLPOP a b 1.5")).unwrap();
    assert_eq!(blpop.keys(), ["a", "b"]);
}

#[test]
fn other_spellings_read_the_same() {
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
                options: SetOptions::default()
                    .with_expire_ms(2000)
                    .with_condition(SetCondition::IfNotExists),
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
        (
            "getex k ex 2",
            Command::Getex {
                key: "k".into(),
                expiry: Some(GetExpiry::AfterMs(2000)),
            },
        ),
    ];
    for (line, want) in cases {
        assert_eq!(Command::from_args(&words(line)).unwrap(), want, "{line}");
    }
    assert!(matches!(
        Command::from_args(&words("PING hello")).unwrap(),
        Command::Raw { .. }
    ));
    assert!(matches!(
        Command::from_args(&words("OBJECT ENCODING k")).unwrap(),
        Command::Raw { .. }
    ));
}

#[test]
fn malformed_arguments_get_redis_errors() {
    for (line, want) in [
        ("GET", "wrong number of arguments for 'get'"),
        ("GET a b", "wrong number of arguments for 'get'"),
        ("HSET k f", "wrong number of arguments for 'hset'"),
        ("HSET k f v g", "wrong number of arguments for 'hset'"),
        ("ZADD k 1 a 2", "syntax error"),
        ("ZADD k 1", "wrong number of arguments for 'zadd'"),
        ("ZADD k x m", "not a valid float"),
        ("INCRBY k 1.5", "not an integer"),
        ("ZRANGEBYSCORE k a 1", "min or max is not a float"),
        ("ZRANGE k 0 1 BYSCORE", "syntax error"),
        ("SET k v EX 1 PX 2", "syntax error"),
        ("SET k v EX 0", "invalid expire time in 'set'"),
        ("EXPIRE k 1 YY", "Unsupported option YY"),
        ("LMOVE a b UP DOWN", "syntax error"),
        ("ZRANGEBYLEX z a b", "not valid string range item"),
        ("EVAL s 2 k", "greater than number of args"),
        ("SCRIPT LOAD", "wrong number of arguments for 'script|load'"),
        ("RAW x", "unknown command 'RAW'"),
    ] {
        let e = Command::from_args(&words(line)).unwrap_err();
        assert!(e.to_string().contains(want), "{line}: {e}");
    }
    let mset = Command::Mset {
        keys: vec!["a".into(), "b".into()],
        values: vec![Bytes::from_static(b"1")],
    };
    let e = mset.write_args(&mut Args::default()).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
}

#[test]
fn keys_come_from_the_key_fields() {
    let keys = |line: &str| Command::from_args(&words(line)).unwrap().keys().to_vec();
    assert_eq!(keys("LMOVE a b LEFT RIGHT"), ["a", "b"]);
    assert_eq!(keys("MSET a 1 b 2"), ["a", "b"]);
    assert_eq!(keys("EVAL s 2 a b x"), ["a", "b"]);
    assert!(keys("PUBLISH ch m").is_empty());
    assert!(keys("SCAN 0").is_empty());
}

#[test]
fn incr_like_commands_are_not_idempotent() {
    let incr = Command::Incrby {
        key: "k".into(),
        delta: 1,
    };
    assert!(!incr.is_idempotent());
    assert!(incr.is_write());
    let zadd_incr = Command::Zadd {
        key: "z".into(),
        members: vec![(1.0, "m".into())],
        options: ZaddOptions {
            incr: true,
            ..Default::default()
        },
    };
    assert!(!zadd_incr.is_idempotent());
    let zadd = Command::Zadd {
        key: "z".into(),
        members: vec![(1.0, "m".into())],
        options: ZaddOptions::default(),
    };
    assert!(zadd.is_idempotent());
    assert!(
        !Command::Eval {
            script: "return 1".into(),
            keys: vec![],
            args: vec![]
        }
        .is_idempotent()
    );
}

#[test]
fn set_and_reads_are_idempotent_and_reads_do_not_write() {
    let set = Command::Set {
        key: "k".into(),
        value: Bytes::from_static(b"v"),
        options: SetOptions::default(),
    };
    assert!(set.is_idempotent() && set.is_write());
    let get = Command::Get { key: "k".into() };
    assert!(get.is_idempotent() && !get.is_write());
    assert_eq!(get.keys(), ["k".to_owned()]);
}

#[test]
fn score_bounds_are_spelled_like_redis() {
    assert_eq!(ScoreBound::NegInf.to_redis_arg(), "-inf");
    assert_eq!(ScoreBound::Exclusive(1.5).to_redis_arg(), "(1.5");
    assert_eq!(ScoreBound::Inclusive(2.0).to_redis_arg(), "2");
    assert_eq!(crate::value::format_score(f64::INFINITY), "+inf");
}

#[test]
fn commands_round_trip_through_serde() {
    let cmd = Command::Hset {
        key: "h".into(),
        fields: vec![("f".into(), Bytes::from_static(b"\x00\xff"))],
    };
    let json = serde_json::to_string(&cmd).expect("serialize");
    let back: Command = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, cmd);
}
