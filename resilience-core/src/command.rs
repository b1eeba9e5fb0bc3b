//! Commands as data.
//!
//! Its guide is in the docs of its main type.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Options of `SET`.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`SetOptions::default().with_…(…)`), or assign fields of a default value.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, derive_setters::Setters,
)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct SetOptions {
    /// Expire after this many milliseconds (`PX`). `None` keeps no TTL.
    #[setters(strip_option)]
    pub expire_ms: Option<u64>,
    /// Only set when the key does not exist (`NX`) or only when it does (`XX`).
    #[setters(strip_option)]
    pub condition: Option<SetCondition>,
}

impl SetOptions {
    /// Options that set a TTL of `ttl` (rounded down to whole milliseconds, at least 1 ms).
    pub fn with_ttl(ttl: std::time::Duration) -> Self {
        SetOptions {
            expire_ms: Some((ttl.as_millis() as u64).max(1)),
            condition: None,
        }
    }
}

/// Existence condition of `SET` and `ZADD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCondition {
    /// `NX`: only when the key (or member) does not exist.
    IfNotExists,
    /// `XX`: only when the key (or member) exists.
    IfExists,
}

/// Options of `ZADD`.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`ZaddOptions::default().with_…(…)`), or assign fields of a default value.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, derive_setters::Setters,
)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct ZaddOptions {
    /// `NX` / `XX` on members.
    #[setters(strip_option)]
    pub condition: Option<SetCondition>,
    /// `GT` (`Some(true)`) or `LT` (`Some(false)`): only update when the new score is greater / less.
    #[setters(strip_option)]
    pub greater_than: Option<bool>,
    /// `CH`: reply counts changed members, not only added ones.
    pub changed: bool,
    /// `INCR`: add the score to the member's score (one member only). Not idempotent.
    pub incr: bool,
}

/// One end of a sorted-set score range (`ZRANGEBYSCORE`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ScoreBound {
    /// `-inf`
    NegInf,
    /// `+inf`
    PosInf,
    /// A closed bound: the score itself is included.
    Inclusive(f64),
    /// An open bound (`(score`): the score itself is excluded.
    Exclusive(f64),
}

impl ScoreBound {
    /// The bound as Redis spells it: `-inf`, `+inf`, `1.5` or `(1.5`.
    pub fn to_redis_arg(&self) -> String {
        match self {
            ScoreBound::NegInf => "-inf".to_owned(),
            ScoreBound::PosInf => "+inf".to_owned(),
            ScoreBound::Inclusive(v) => format_score(*v),
            ScoreBound::Exclusive(v) => format!("({}", format_score(*v)),
        }
    }
}

/// Formats a score the way Redis accepts it (`inf`, `-inf`, or the shortest exact decimal).
pub(crate) fn format_score(v: f64) -> String {
    if v == f64::INFINITY {
        "+inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-inf".to_owned()
    } else {
        // `{}` on f64 prints the shortest representation that round-trips.
        format!("{v}")
    }
}

/// `LIMIT offset count` of `ZRANGEBYSCORE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// Members to skip.
    pub offset: u64,
    /// Members to return at most.
    pub count: u64,
}

/// A Redis command the resilient client knows how to route, retry, queue and replay.
///
/// Reply shapes are canonical across backends (RESP2 and RESP3 differences are ironed out
/// by each backend):
///
/// A [`Command`] is a plain enum, not a closure: it knows its Redis name, the keys it
/// touches, whether it writes and whether applying it twice is the same as applying it
/// once. Because it is data it can be logged, counted, ordered per key, serialized into a
/// durable queue and replayed later by any [`KvBackend`](crate::KvBackend).
///
/// Every backend must return the canonical reply shape documented on each variant, so
/// callers see the same [`Value`](crate::Value) whatever the driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Command {
    /// `PING` -> `Status("PONG")`.
    Ping,
    /// `GET key` -> `Bytes` or `Nil`.
    Get {
        /// The key.
        key: String,
    },
    /// `SET key value [PX ms] [NX|XX]` -> `Okay`, or `Nil` when the condition was not met.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: Bytes,
        /// TTL and condition.
        options: SetOptions,
    },
    /// `DEL key...` -> `Int` (keys removed).
    Del {
        /// The keys.
        keys: Vec<String>,
    },
    /// `EXISTS key...` -> `Int` (how many of the keys exist, counting repeats).
    Exists {
        /// The keys.
        keys: Vec<String>,
    },
    /// `EXPIRE key seconds` -> `Int` (1 when set, 0 when the key does not exist).
    Expire {
        /// The key.
        key: String,
        /// Seconds from now; zero or negative deletes the key.
        seconds: i64,
    },
    /// `PEXPIRE key ms` -> `Int` (1 when set, 0 when the key does not exist).
    Pexpire {
        /// The key.
        key: String,
        /// Milliseconds from now; zero or negative deletes the key.
        millis: i64,
    },
    /// `TTL key` -> `Int` seconds; -1 when the key has no TTL, -2 when it does not exist.
    Ttl {
        /// The key.
        key: String,
    },
    /// `PTTL key` -> `Int` milliseconds; -1 no TTL, -2 missing.
    Pttl {
        /// The key.
        key: String,
    },
    /// `INCR key` / `INCRBY key delta` -> `Int` (the new value). Not idempotent.
    Incrby {
        /// The key.
        key: String,
        /// The increment.
        delta: i64,
    },
    /// `MGET key...` -> `Array` of `Bytes` or `Nil`, one per key.
    Mget {
        /// The keys.
        keys: Vec<String>,
    },
    /// `HSET key field value [field value ...]` (also `hmset`) -> `Int` (fields added).
    Hset {
        /// The key.
        key: String,
        /// Field/value pairs, in order.
        fields: Vec<(String, Bytes)>,
    },
    /// `HGET key field` -> `Bytes` or `Nil`.
    Hget {
        /// The key.
        key: String,
        /// The field.
        field: String,
    },
    /// `HGETALL key` -> `Map` of `Bytes` field to `Bytes` value (empty when missing).
    Hgetall {
        /// The key.
        key: String,
    },
    /// `HDEL key field...` -> `Int` (fields removed).
    Hdel {
        /// The key.
        key: String,
        /// The fields.
        fields: Vec<String>,
    },
    /// `HINCRBY key field delta` -> `Int` (the new value). Not idempotent.
    Hincrby {
        /// The key.
        key: String,
        /// The field.
        field: String,
        /// The increment.
        delta: i64,
    },
    /// `HINCRBYFLOAT key field delta` -> `Double` (the new value). Not idempotent.
    Hincrbyfloat {
        /// The key.
        key: String,
        /// The field.
        field: String,
        /// The increment.
        delta: f64,
    },
    /// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member...` -> `Int` (added, or changed
    /// with `CH`); with `INCR`, `Double` (the new score) or `Nil` when a condition blocked it.
    Zadd {
        /// The key.
        key: String,
        /// (score, member) pairs.
        members: Vec<(f64, String)>,
        /// Options.
        options: ZaddOptions,
    },
    /// `ZRANGE key start stop [REV] [WITHSCORES]` by rank -> `Array` of `Bytes` members, or
    /// with scores an `Array` of two-element `Array[Bytes member, Double score]`.
    Zrange {
        /// The key.
        key: String,
        /// First rank (negative counts from the end).
        start: i64,
        /// Last rank, inclusive (negative counts from the end).
        stop: i64,
        /// Highest score first.
        rev: bool,
        /// Return scores too.
        with_scores: bool,
    },
    /// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT o c]`, or `ZREVRANGEBYSCORE key max min`
    /// when `rev`. `min` is always the lower bound. Reply shape as [`Command::Zrange`].
    Zrangebyscore {
        /// The key.
        key: String,
        /// Lower bound.
        min: ScoreBound,
        /// Upper bound.
        max: ScoreBound,
        /// Highest score first.
        rev: bool,
        /// Return scores too.
        with_scores: bool,
        /// Offset and count.
        limit: Option<Limit>,
    },
    /// `ZREM key member...` -> `Int` (members removed).
    Zrem {
        /// The key.
        key: String,
        /// The members.
        members: Vec<String>,
    },
    /// `ZCARD key` -> `Int`.
    Zcard {
        /// The key.
        key: String,
    },
    /// `ZSCORE key member` -> `Double` or `Nil`.
    Zscore {
        /// The key.
        key: String,
        /// The member.
        member: String,
    },
    /// `ZREMRANGEBYRANK key start stop` -> `Int` (members removed).
    Zremrangebyrank {
        /// The key.
        key: String,
        /// First rank.
        start: i64,
        /// Last rank, inclusive.
        stop: i64,
    },
    /// `EVAL script numkeys key... arg...` -> the script's reply (Lua conversion rules).
    /// Not idempotent unless the caller says so through [`Command::Raw`].
    Eval {
        /// Lua source.
        script: String,
        /// Keys (`KEYS[]`).
        keys: Vec<String>,
        /// Arguments (`ARGV[]`).
        args: Vec<Bytes>,
    },
    /// `EVALSHA sha numkeys key... arg...`; a `Server` error with code `NOSCRIPT` when the
    /// server does not know the script.
    Evalsha {
        /// Hex SHA1 of the script.
        sha1: String,
        /// Keys (`KEYS[]`).
        keys: Vec<String>,
        /// Arguments (`ARGV[]`).
        args: Vec<Bytes>,
        /// Whether running the script twice equals running it once.
        idempotent: bool,
    },
    /// `SCRIPT LOAD script` -> `Bytes` (the hex SHA1).
    ScriptLoad {
        /// Lua source.
        script: String,
    },
    /// `SCAN cursor [MATCH pattern] [COUNT n]` -> `Array[Int next_cursor, Array of Bytes keys]`.
    Scan {
        /// Cursor; 0 starts a new iteration, a returned 0 ends it.
        cursor: u64,
        /// Glob pattern.
        pattern: Option<String>,
        /// Hint for how many keys to look at.
        count: Option<u64>,
    },
    /// Anything else: the arguments as sent (first is the command name). The caller declares
    /// the keys (for ordering and routing) and whether it writes and is idempotent; the reply
    /// is passed through as the driver decoded it.
    Raw {
        /// Command name and arguments.
        args: Vec<Bytes>,
        /// The keys it touches.
        keys: Vec<String>,
        /// Whether it changes data.
        write: bool,
        /// Whether applying it twice equals applying it once.
        idempotent: bool,
    },
}

impl Command {
    /// The Redis command name, upper case (`"GET"`, `"ZRANGEBYSCORE"`, or the raw command's
    /// first argument as `"RAW"` when it is not valid UTF-8).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ping => "PING",
            Command::Get { .. } => "GET",
            Command::Set { .. } => "SET",
            Command::Del { .. } => "DEL",
            Command::Exists { .. } => "EXISTS",
            Command::Expire { .. } => "EXPIRE",
            Command::Pexpire { .. } => "PEXPIRE",
            Command::Ttl { .. } => "TTL",
            Command::Pttl { .. } => "PTTL",
            Command::Incrby { .. } => "INCRBY",
            Command::Mget { .. } => "MGET",
            Command::Hset { .. } => "HSET",
            Command::Hget { .. } => "HGET",
            Command::Hgetall { .. } => "HGETALL",
            Command::Hdel { .. } => "HDEL",
            Command::Hincrby { .. } => "HINCRBY",
            Command::Hincrbyfloat { .. } => "HINCRBYFLOAT",
            Command::Zadd { .. } => "ZADD",
            Command::Zrange { .. } => "ZRANGE",
            Command::Zrangebyscore { rev: false, .. } => "ZRANGEBYSCORE",
            Command::Zrangebyscore { rev: true, .. } => "ZREVRANGEBYSCORE",
            Command::Zrem { .. } => "ZREM",
            Command::Zcard { .. } => "ZCARD",
            Command::Zscore { .. } => "ZSCORE",
            Command::Zremrangebyrank { .. } => "ZREMRANGEBYRANK",
            Command::Eval { .. } => "EVAL",
            Command::Evalsha { .. } => "EVALSHA",
            Command::ScriptLoad { .. } => "SCRIPT LOAD",
            Command::Scan { .. } => "SCAN",
            Command::Raw { .. } => "RAW",
        }
    }

    /// A dense index of the variant (0 up to [`Command::VARIANTS`]), for per-command tables.
    pub fn ordinal(&self) -> usize {
        match self {
            Command::Ping => 0,
            Command::Get { .. } => 1,
            Command::Set { .. } => 2,
            Command::Del { .. } => 3,
            Command::Exists { .. } => 4,
            Command::Expire { .. } => 5,
            Command::Pexpire { .. } => 6,
            Command::Ttl { .. } => 7,
            Command::Pttl { .. } => 8,
            Command::Incrby { .. } => 9,
            Command::Mget { .. } => 10,
            Command::Hset { .. } => 11,
            Command::Hget { .. } => 12,
            Command::Hgetall { .. } => 13,
            Command::Hdel { .. } => 14,
            Command::Hincrby { .. } => 15,
            Command::Hincrbyfloat { .. } => 16,
            Command::Zadd { .. } => 17,
            Command::Zrange { .. } => 18,
            Command::Zrangebyscore { rev: false, .. } => 19,
            Command::Zrangebyscore { rev: true, .. } => 20,
            Command::Zrem { .. } => 21,
            Command::Zcard { .. } => 22,
            Command::Zscore { .. } => 23,
            Command::Zremrangebyrank { .. } => 24,
            Command::Eval { .. } => 25,
            Command::Evalsha { .. } => 26,
            Command::ScriptLoad { .. } => 27,
            Command::Scan { .. } => 28,
            Command::Raw { .. } => 29,
        }
    }

    /// How many distinct [`Command::ordinal`] values there are.
    pub const VARIANTS: usize = 30;

    /// The keys this command touches, in argument order (empty for `PING`, `SCAN`,
    /// `SCRIPT LOAD`). Used for per-key ordering in the recovery queue and cluster routing.
    pub fn keys(&self) -> &[String] {
        match self {
            Command::Ping | Command::ScriptLoad { .. } | Command::Scan { .. } => &[],
            Command::Get { key }
            | Command::Set { key, .. }
            | Command::Expire { key, .. }
            | Command::Pexpire { key, .. }
            | Command::Ttl { key }
            | Command::Pttl { key }
            | Command::Incrby { key, .. }
            | Command::Hset { key, .. }
            | Command::Hget { key, .. }
            | Command::Hgetall { key }
            | Command::Hdel { key, .. }
            | Command::Hincrby { key, .. }
            | Command::Hincrbyfloat { key, .. }
            | Command::Zadd { key, .. }
            | Command::Zrange { key, .. }
            | Command::Zrangebyscore { key, .. }
            | Command::Zrem { key, .. }
            | Command::Zcard { key }
            | Command::Zscore { key, .. }
            | Command::Zremrangebyrank { key, .. } => std::slice::from_ref(key),
            Command::Del { keys }
            | Command::Exists { keys }
            | Command::Mget { keys }
            | Command::Eval { keys, .. }
            | Command::Evalsha { keys, .. }
            | Command::Raw { keys, .. } => keys,
        }
    }

    /// Whether the command may change data on the server.
    pub fn is_write(&self) -> bool {
        match self {
            Command::Ping
            | Command::Get { .. }
            | Command::Exists { .. }
            | Command::Ttl { .. }
            | Command::Pttl { .. }
            | Command::Mget { .. }
            | Command::Hget { .. }
            | Command::Hgetall { .. }
            | Command::Zrange { .. }
            | Command::Zrangebyscore { .. }
            | Command::Zcard { .. }
            | Command::Zscore { .. }
            | Command::Scan { .. }
            | Command::ScriptLoad { .. } => false,
            Command::Set { .. }
            | Command::Del { .. }
            | Command::Expire { .. }
            | Command::Pexpire { .. }
            | Command::Incrby { .. }
            | Command::Hset { .. }
            | Command::Hdel { .. }
            | Command::Hincrby { .. }
            | Command::Hincrbyfloat { .. }
            | Command::Zadd { .. }
            | Command::Zrem { .. }
            | Command::Zremrangebyrank { .. }
            | Command::Eval { .. }
            | Command::Evalsha { .. } => true,
            Command::Raw { write, .. } => *write,
        }
    }

    /// Whether applying the command twice leaves the same state as applying it once, so a
    /// call that timed out (and may or may not have run) can be retried safely.
    pub fn is_idempotent(&self) -> bool {
        match self {
            Command::Incrby { .. }
            | Command::Hincrby { .. }
            | Command::Hincrbyfloat { .. }
            | Command::Eval { .. } => false,
            // Relative expiry re-arms from "now", which a retry a moment later only nudges:
            // treated as idempotent, as redis-py and the original Python client do.
            Command::Zadd { options, .. } => !options.incr,
            Command::Zremrangebyrank { .. } => false,
            Command::Evalsha { idempotent, .. } | Command::Raw { idempotent, .. } => *idempotent,
            _ => true,
        }
    }

    /// Approximate payload size in bytes (keys and values), for metrics and limits.
    pub fn payload_len(&self) -> usize {
        let keys: usize = self.keys().iter().map(String::len).sum();
        let values: usize = match self {
            Command::Set { value, .. } => value.len(),
            Command::Hset { fields, .. } => fields.iter().map(|(f, v)| f.len() + v.len()).sum(),
            Command::Eval { script, args, .. } => {
                script.len() + args.iter().map(Bytes::len).sum::<usize>()
            }
            Command::Evalsha { args, .. } => args.iter().map(Bytes::len).sum(),
            Command::Raw { args, .. } => args.iter().map(Bytes::len).sum(),
            Command::Zadd { members, .. } => members.iter().map(|(_, m)| m.len() + 8).sum(),
            _ => 0,
        };
        keys + values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(format_score(f64::INFINITY), "+inf");
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
}
