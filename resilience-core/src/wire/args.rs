//! Commands as argument lists: the [`ArgSink`] that
//! [`Command::write_args`](crate::Command::write_args) writes to.

use bytes::Bytes;

use crate::value::format_score;

/// Where a command's arguments go: a driver's command buffer.
///
/// The four kinds of argument let each driver store each one its cheapest way: a driver
/// that copies arguments into one buffer copies them all alike, a driver that keeps owned
/// values can clone a [`Bytes`] (a reference count) instead of copying it, and can keep
/// protocol words and integers as the static strings and numbers they are.
pub trait ArgSink {
    /// A word the protocol defines: the command name (always the first argument written,
    /// except for [`Command::Raw`](crate::Command::Raw), whose name comes as [`bytes`](Self::bytes)) or an
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Command, ErrorKind, Limit, ScoreBound, SetCondition, SetOptions, ZaddOptions};

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
                expire_ms: std::num::NonZeroU64::new(1500),
                condition: Some(SetCondition::IfNotExists),
                ..SetOptions::default()
            },
        });
        assert_eq!(w, ["SET", "k", "v", "PX", "1500", "NX"]);
        let w = words(&Command::Set {
            key: "k".into(),
            value: Bytes::from_static(b"v"),
            options: SetOptions {
                expire_ms: None,
                condition: Some(SetCondition::IfExists),
                ..SetOptions::default()
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
            type_name: None,
        });
        assert_eq!(w, ["SCAN", "17", "MATCH", "ns:*", "COUNT", "100"]);
        let w = words(&Command::Scan {
            cursor: u64::MAX,
            pattern: None,
            count: None,
            type_name: None,
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
