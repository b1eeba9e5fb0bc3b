//! The command table: one entry per command, and everything about the command in it.
//!
//! # An entry
//!
//! ```text
//! /// `LPUSH key element...` -> `Int`: the list's length after the push. Not idempotent.
//! Lpush {
//!     name: "LPUSH", arity: -3, write: true, idempotent: false, reply: Int,
//!     example: "LPUSH k a b", method: lpush -> i64,
//! } [key key: String, arg elements: Vec<Bytes>]
//! ```
//!
//! - `name` (and `+ "SUB"` for a subcommand) and `arity` are Redis's own: `COMMAND INFO`
//!   on a real server must agree with them, and with the keys and the write flag (a test
//!   checks every entry's `example` against a live server).
//! - `write` and `idempotent` are expressions over the fields, so `ZADD … INCR` can differ
//!   from `ZADD`. There is no default: every entry states both.
//! - `reply` is the canonical [`Reply`] shape every backend returns.
//! - The fields, in wire order: `key` is the command's one key, `keys` its keys (a list,
//!   or `[source, destination]`), `arg` anything else. Each field's type writes and reads
//!   itself ([`WireArg`](super::arg::WireArg)), so the entry needs no code of its own;
//!   the few irregular commands name a `custom` pair of functions instead (in
//!   `irregular.rs`).
//! - `method` generates the typed [`ResilientClient`](crate::ResilientClient) method,
//!   with the entry's docs. Entries without one have a hand-written method (a read cache,
//!   a `Duration` TTL) or none.
//!
//! # Idempotent
//!
//! A command is idempotent when a retry after a lost reply is safe: applying it twice
//! leaves the same data as applying it once, **and** nothing the first reply carried is
//! lost. So `SADD` is idempotent (a retry replies 0 instead of 1, but the set is the same),
//! while `INCR`, `LPUSH`, `APPEND` and `ZINCRBY` are not (a retry applies twice), and
//! neither are `GETDEL`, `SET … GET` and the pops (a retry succeeds, but the value the
//! first attempt removed or replaced is gone). Relative expiry (`EXPIRE`, `SET … PX`)
//! re-arms from "now", which a retry a moment later only nudges: idempotent, as redis-py
//! and the original Python client treat it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::arg::{ArgReader, WireArg};
use super::irregular::*;
use super::options::*;
use super::spec::CommandSpec;
use crate::ErrorKind;
use crate::wire::{ArgSink, Reply};
use crate::{BackendError, Value};

command_table! {
    // ---- Connection and keys -------------------------------------------------------

    /// `PING` -> `Status("PONG")`. (`PING message`, which echoes, reads back as a
    /// [`Command::Raw`].)
    Ping {
        name: "PING", arity: -1, write: false, idempotent: true, reply: Pong,
        example: "PING",
        custom: (write_ping, read_ping),
    }

    /// `GET key` -> `Bytes` or `Nil`.
    Get {
        name: "GET", arity: 2, write: false, idempotent: true, reply: BulkOrNil,
        example: "GET k",
    } [key key: String]

    /// `SET key value [PX ms | PXAT ms | KEEPTTL] [NX|XX] [GET]` -> `Okay`, or `Nil` when
    /// the condition was not met; with `GET`, the old value (`Bytes` or `Nil`). Not
    /// idempotent with `GET` (a retry would return the value the first attempt wrote).
    Set {
        name: "SET", arity: -3, write: true, idempotent: !options.get,
        reply: if options.get { BulkOrNil } else { SetOk },
        example: "SET k v PX 1000 NX",
    } [key key: String, arg value: Bytes, arg options: SetOptions]

    /// `DEL key...` -> `Int` (keys removed).
    Del {
        name: "DEL", arity: -2, write: true, idempotent: true, reply: Int,
        example: "DEL k1 k2",
    } [keys keys: Vec<String>]

    /// `EXISTS key...` -> `Int` (how many of the keys exist, counting repeats).
    Exists {
        name: "EXISTS", arity: -2, write: false, idempotent: true, reply: Int,
        example: "EXISTS k1 k2",
    } [keys keys: Vec<String>]

    /// `EXPIRE key seconds [NX|XX|GT|LT]` -> `Int` (1 when set, 0 when the key does not
    /// exist or the condition refused). Zero or negative seconds delete the key.
    Expire {
        name: "EXPIRE", arity: -3, write: true, idempotent: true, reply: Int,
        example: "EXPIRE k 10 NX",
    } [key key: String, arg seconds: i64, #[serde(default)] arg condition: Option<ExpireCondition>]

    /// `PEXPIRE key ms [NX|XX|GT|LT]` -> `Int` (1 when set, 0 when the key does not exist
    /// or the condition refused). Zero or negative milliseconds delete the key.
    Pexpire {
        name: "PEXPIRE", arity: -3, write: true, idempotent: true, reply: Int,
        example: "PEXPIRE k 1500 GT",
    } [key key: String, arg millis: i64, #[serde(default)] arg condition: Option<ExpireCondition>]

    /// `TTL key` -> `Int` seconds; -1 when the key has no TTL, -2 when it does not exist.
    Ttl {
        name: "TTL", arity: 2, write: false, idempotent: true, reply: Int,
        example: "TTL k",
    } [key key: String]

    /// `PTTL key` -> `Int` milliseconds; -1 no TTL, -2 missing.
    Pttl {
        name: "PTTL", arity: 2, write: false, idempotent: true, reply: Int,
        example: "PTTL k",
    } [key key: String]

    /// `INCRBY key delta` -> `Int` (the new value). Not idempotent.
    Incrby {
        name: "INCRBY", arity: 3, write: true, idempotent: false, reply: Int,
        example: "INCRBY k 5",
    } [key key: String, arg delta: i64]

    /// `MGET key...` -> `Array` of `Bytes` or `Nil`, one per key.
    Mget {
        name: "MGET", arity: -2, write: false, idempotent: true, reply: Array,
        example: "MGET k1 k2",
    } [keys keys: Vec<String>]

    // ---- Hashes ---------------------------------------------------------------------

    /// `HSET key field value [field value ...]` -> `Int` (fields added).
    Hset {
        name: "HSET", arity: -4, write: true, idempotent: true, reply: Int,
        example: "HSET h f1 v1 f2 v2",
    } [key key: String, arg fields: Vec<(String, Bytes)>]

    /// `HGET key field` -> `Bytes` or `Nil`.
    Hget {
        name: "HGET", arity: 3, write: false, idempotent: true, reply: BulkOrNil,
        example: "HGET h f",
    } [key key: String, arg field: String]

    /// `HGETALL key` -> `Map` of `Bytes` field to `Bytes` value (empty when missing).
    Hgetall {
        name: "HGETALL", arity: 2, write: false, idempotent: true, reply: Map,
        example: "HGETALL h",
    } [key key: String]

    /// `HDEL key field...` -> `Int` (fields removed).
    Hdel {
        name: "HDEL", arity: -3, write: true, idempotent: true, reply: Int,
        example: "HDEL h f1 f2",
    } [key key: String, arg fields: Vec<String>]

    /// `HINCRBY key field delta` -> `Int` (the new value). Not idempotent.
    Hincrby {
        name: "HINCRBY", arity: 4, write: true, idempotent: false, reply: Int,
        example: "HINCRBY h f 2",
    } [key key: String, arg field: String, arg delta: i64]

    /// `HINCRBYFLOAT key field delta` -> `Double` (the new value). Not idempotent.
    Hincrbyfloat {
        name: "HINCRBYFLOAT", arity: 4, write: true, idempotent: false, reply: Double,
        example: "HINCRBYFLOAT h f 0.5",
    } [key key: String, arg field: String, arg delta: f64]

    // ---- Sorted sets ----------------------------------------------------------------

    /// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member...` -> `Int` (added, or changed
    /// with `CH`); with `INCR`, `Double` (the new score) or `Nil` when a condition blocked
    /// it, and not idempotent.
    Zadd {
        name: "ZADD", arity: -4, write: true, idempotent: !options.incr,
        reply: if options.incr { OptDouble } else { Int },
        example: "ZADD z NX 1 a 2 b",
    } [key key: String, arg options: ZaddOptions, arg members: Vec<(f64, String)>]

    /// `ZRANGE key start stop [WITHSCORES]` by rank, or `ZREVRANGE` when `rev` -> `Array`
    /// of `Bytes` members, or with scores an `Array` of `Array[Bytes member, Double score]`.
    Zrange {
        name: "ZRANGE", arity: -4, write: false, idempotent: true,
        reply: if *with_scores { ScoredMembers } else { Members },
        example: "ZRANGE z 0 -1 WITHSCORES",
        aliases: ["ZREVRANGE"],
        display: if *rev { "ZREVRANGE" } else { "ZRANGE" },
        custom: (write_zrange, read_zrange),
    } [
        key key: String,
        /// First rank (negative counts from the end).
        arg start: i64,
        /// Last rank, inclusive (negative counts from the end).
        arg stop: i64,
        /// Highest score first.
        arg rev: bool,
        /// Return scores too.
        arg with_scores: bool,
    ]

    /// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT o c]`, or `ZREVRANGEBYSCORE key max
    /// min` when `rev`. `min` is always the lower bound. Reply shape as [`Command::Zrange`].
    Zrangebyscore {
        name: "ZRANGEBYSCORE", arity: -4, write: false, idempotent: true,
        reply: if *with_scores { ScoredMembers } else { Members },
        example: "ZRANGEBYSCORE z -inf (5 WITHSCORES LIMIT 0 10",
        aliases: ["ZREVRANGEBYSCORE"],
        display: if *rev { "ZREVRANGEBYSCORE" } else { "ZRANGEBYSCORE" },
        custom: (write_zrangebyscore, read_zrangebyscore),
    } [
        key key: String,
        /// Lower bound.
        arg min: ScoreBound,
        /// Upper bound.
        arg max: ScoreBound,
        /// Highest score first.
        arg rev: bool,
        /// Return scores too.
        arg with_scores: bool,
        /// Offset and count.
        arg limit: Option<Limit>,
    ]

    /// `ZREM key member...` -> `Int` (members removed).
    Zrem {
        name: "ZREM", arity: -3, write: true, idempotent: true, reply: Int,
        example: "ZREM z a b",
    } [key key: String, arg members: Vec<String>]

    /// `ZCARD key` -> `Int`.
    Zcard {
        name: "ZCARD", arity: 2, write: false, idempotent: true, reply: Int,
        example: "ZCARD z",
    } [key key: String]

    /// `ZSCORE key member` -> `Double` or `Nil`.
    Zscore {
        name: "ZSCORE", arity: 3, write: false, idempotent: true, reply: OptDouble,
        example: "ZSCORE z a",
    } [key key: String, arg member: String]

    /// `ZREMRANGEBYRANK key start stop` -> `Int` (members removed). Not idempotent: a
    /// retry removes the members that moved into the range.
    Zremrangebyrank {
        name: "ZREMRANGEBYRANK", arity: 4, write: true, idempotent: false, reply: Int,
        example: "ZREMRANGEBYRANK z 0 1",
    } [key key: String, arg start: i64, arg stop: i64]

    // ---- Scripts and iteration ------------------------------------------------------

    /// `EVAL script numkeys key... arg...` -> the script's reply (Lua conversion rules).
    /// Not idempotent unless the caller says so through [`Command::Evalsha`].
    Eval {
        name: "EVAL", arity: -3, write: true, idempotent: false, reply: Passthrough,
        example: "EVAL script 1 k a",
        custom: (write_eval, read_eval),
    } [
        /// Lua source.
        arg script: String,
        /// Keys (`KEYS[]`).
        keys keys: Vec<String>,
        /// Arguments (`ARGV[]`).
        arg args: Vec<Bytes>,
    ]

    /// `EVALSHA sha numkeys key... arg...`; a `Server` error with code `NOSCRIPT` when the
    /// server does not know the script.
    Evalsha {
        name: "EVALSHA", arity: -3, write: true, idempotent: *idempotent, reply: Passthrough,
        example: "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff831 1 k",
        custom: (write_evalsha, read_evalsha),
    } [
        /// Hex SHA1 of the script.
        arg sha1: String,
        /// Keys (`KEYS[]`).
        keys keys: Vec<String>,
        /// Arguments (`ARGV[]`).
        arg args: Vec<Bytes>,
        /// Whether running the script twice equals running it once.
        arg idempotent: bool,
    ]

    /// `SCRIPT LOAD script` -> `Bytes` (the hex SHA1).
    ScriptLoad {
        name: "SCRIPT" + "LOAD", arity: 3, write: false, idempotent: true, reply: Sha,
        example: "SCRIPT LOAD script",
    } [arg script: String]

    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]` ->
    /// `Array[Int next_cursor, Array of Bytes keys]`.
    Scan {
        name: "SCAN", arity: -2, write: false, idempotent: true, reply: Scan,
        example: "SCAN 0 MATCH k* COUNT 10 TYPE string",
        custom: (write_scan, read_scan),
    } [
        /// Cursor; 0 starts a new iteration, a returned 0 ends it.
        arg cursor: u64,
        /// Glob pattern.
        arg pattern: Option<String>,
        /// Hint for how many keys to look at.
        arg count: Option<u64>,
        /// Only keys of this type (`string`, `list`, `hash`, ...).
        #[serde(default)]
        arg type_name: Option<String>,
    ]

    /// Anything else: the arguments as sent (first is the command name). The caller
    /// declares the keys (for ordering and routing) and whether it writes and is
    /// idempotent; the reply is passed through as the driver decoded it.
    Raw {
        name: "RAW", arity: -1, write: *write, idempotent: *idempotent, reply: Raw,
        example: "ECHO hello",
        custom: (write_raw, read_raw),
    } [
        /// Command name and arguments.
        arg args: Vec<Bytes>,
        /// The keys it touches.
        keys keys: Vec<String>,
        /// Whether it changes data.
        arg write: bool,
        /// Whether applying it twice equals applying it once.
        arg idempotent: bool,
    ]

    // ---- Strings --------------------------------------------------------------------

    /// `GETEX key [PX ms | PXAT ms | PERSIST]` -> `Bytes` or `Nil`, changing the TTL.
    Getex {
        name: "GETEX", arity: -2, write: true, idempotent: true, reply: BulkOrNil,
        example: "GETEX k PX 100", method: getex -> Option<Bytes>,
    } [key key: String, arg expiry: Option<GetExpiry>]

    /// `GETDEL key` -> `Bytes` or `Nil`, deleting the key. Not idempotent: a retry after
    /// a lost reply finds the key gone, and the value with it.
    Getdel {
        name: "GETDEL", arity: 2, write: true, idempotent: false, reply: BulkOrNil,
        example: "GETDEL k", method: getdel -> Option<Bytes>,
    } [key key: String]

    /// `MSET key value [key value ...]` -> `Okay`. `values` pairs with `keys` in order.
    Mset {
        name: "MSET", arity: -3, write: true, idempotent: true, reply: Okay,
        example: "MSET k1 v1 k2 v2",
        custom: (write_mset, read_mset),
    } [
        keys keys: Vec<String>,
        /// One value per key.
        arg values: Vec<Bytes>,
    ]

    /// `MSETNX key value [key value ...]` -> `Int` (1 when all were set, 0 when any key
    /// existed and nothing was set). Not idempotent: a retry would answer 0 for the
    /// caller's own write.
    Msetnx {
        name: "MSETNX", arity: -3, write: true, idempotent: false, reply: Int,
        example: "MSETNX k1 v1 k2 v2",
        custom: (write_msetnx, read_msetnx),
    } [
        keys keys: Vec<String>,
        /// One value per key.
        arg values: Vec<Bytes>,
    ]

    /// `INCR key` -> `Int` (the new value). Not idempotent.
    Incr {
        name: "INCR", arity: 2, write: true, idempotent: false, reply: Int,
        example: "INCR k", method: incr -> i64,
    } [key key: String]

    /// `DECR key` -> `Int` (the new value). Not idempotent.
    Decr {
        name: "DECR", arity: 2, write: true, idempotent: false, reply: Int,
        example: "DECR k", method: decr -> i64,
    } [key key: String]

    /// `DECRBY key delta` -> `Int` (the new value). Not idempotent.
    Decrby {
        name: "DECRBY", arity: 3, write: true, idempotent: false, reply: Int,
        example: "DECRBY k 3", method: decrby -> i64,
    } [key key: String, arg delta: i64]

    /// `INCRBYFLOAT key delta` -> `Double` (the new value). Not idempotent.
    Incrbyfloat {
        name: "INCRBYFLOAT", arity: 3, write: true, idempotent: false, reply: Double,
        example: "INCRBYFLOAT k 0.5", method: incrbyfloat -> f64,
    } [key key: String, arg delta: f64]

    /// `APPEND key value` -> `Int` (the new length). Not idempotent.
    Append {
        name: "APPEND", arity: 3, write: true, idempotent: false, reply: Int,
        example: "APPEND k v", method: append -> i64,
    } [key key: String, arg value: Bytes]

    /// `STRLEN key` -> `Int` (0 when missing).
    Strlen {
        name: "STRLEN", arity: 2, write: false, idempotent: true, reply: Int,
        example: "STRLEN k", method: strlen -> i64,
    } [key key: String]

    /// `GETRANGE key start end` -> `Bytes` (inclusive byte range; negative counts from the
    /// end; empty when missing).
    Getrange {
        name: "GETRANGE", arity: 4, write: false, idempotent: true, reply: BulkOrNil,
        example: "GETRANGE k 0 -1", method: getrange -> Bytes,
    } [key key: String, arg start: i64, arg end: i64]

    /// `SETRANGE key offset value` -> `Int` (the new length), padding with zero bytes.
    Setrange {
        name: "SETRANGE", arity: 4, write: true, idempotent: true, reply: Int,
        example: "SETRANGE k 2 v", method: setrange -> i64,
    } [key key: String, arg offset: u64, arg value: Bytes]

    // ---- Keys -----------------------------------------------------------------------

    /// `UNLINK key...` -> `Int` (keys removed; the memory is freed in the background).
    Unlink {
        name: "UNLINK", arity: -2, write: true, idempotent: true, reply: Int,
        example: "UNLINK k1 k2", method: unlink -> i64,
    } [keys keys: Vec<String>]

    /// `PERSIST key` -> `Int` (1 when a TTL was removed).
    Persist {
        name: "PERSIST", arity: 2, write: true, idempotent: true, reply: Int,
        example: "PERSIST k", method: persist -> bool,
    } [key key: String]

    /// `EXPIREAT key unix_seconds [NX|XX|GT|LT]` -> `Int` (1 when set). A time in the past
    /// deletes the key.
    Expireat {
        name: "EXPIREAT", arity: -3, write: true, idempotent: true, reply: Int,
        example: "EXPIREAT k 4102444800 XX", method: expireat -> bool,
    } [key key: String, arg unix_seconds: i64, arg condition: Option<ExpireCondition>]

    /// `TYPE key` -> `Status` (`string`, `list`, `set`, `zset`, `hash`, `stream`, or
    /// `none` when missing).
    Type {
        name: "TYPE", arity: 2, write: false, idempotent: true, reply: Status,
        example: "TYPE k", method: key_type -> String,
    } [key key: String]

    /// `COPY source destination [REPLACE]` -> `Int` (1 when copied).
    Copy {
        name: "COPY", arity: -3, write: true, idempotent: true, reply: Int,
        example: "COPY k1 k2 REPLACE", method: copy -> bool,
    } [
        /// Source, then destination.
        keys keys: [String; 2],
        arg replace: Replace,
    ]

    // ---- More hashes ----------------------------------------------------------------

    /// `HSETNX key field value` -> `Int` (1 when the field was set).
    Hsetnx {
        name: "HSETNX", arity: 4, write: true, idempotent: true, reply: Int,
        example: "HSETNX h f v", method: hsetnx -> bool,
    } [key key: String, arg field: String, arg value: Bytes]

    /// `HMGET key field...` -> `Array` of `Bytes` or `Nil`, one per field.
    Hmget {
        name: "HMGET", arity: -3, write: false, idempotent: true, reply: Array,
        example: "HMGET h f1 f2", method: hmget -> Vec<Option<Bytes>>,
    } [key key: String, arg fields: Vec<String>]

    /// `HEXISTS key field` -> `Int` (1 when the field exists).
    Hexists {
        name: "HEXISTS", arity: 3, write: false, idempotent: true, reply: Int,
        example: "HEXISTS h f", method: hexists -> bool,
    } [key key: String, arg field: String]

    /// `HLEN key` -> `Int`.
    Hlen {
        name: "HLEN", arity: 2, write: false, idempotent: true, reply: Int,
        example: "HLEN h", method: hlen -> i64,
    } [key key: String]

    /// `HKEYS key` -> `Array` of `Bytes` fields.
    Hkeys {
        name: "HKEYS", arity: 2, write: false, idempotent: true, reply: Members,
        example: "HKEYS h", method: hkeys -> Vec<String>,
    } [key key: String]

    /// `HVALS key` -> `Array` of `Bytes` values.
    Hvals {
        name: "HVALS", arity: 2, write: false, idempotent: true, reply: Members,
        example: "HVALS h", method: hvals -> Vec<Bytes>,
    } [key key: String]

    /// `HSCAN key cursor [MATCH pattern] [COUNT n]` -> `Array[Int next_cursor, Array]`,
    /// the array flat: field, value, field, value.
    Hscan {
        name: "HSCAN", arity: -3, write: false, idempotent: true, reply: Scan,
        example: "HSCAN h 0 MATCH f* COUNT 10", method: hscan -> (u64, Vec<Bytes>),
    } [key key: String, arg cursor: u64, arg options: ScanOptions]

    // ---- Lists ----------------------------------------------------------------------

    /// `LPUSH key element...` -> `Int` (the list's length after). Not idempotent.
    Lpush {
        name: "LPUSH", arity: -3, write: true, idempotent: false, reply: Int,
        example: "LPUSH l a b", method: lpush -> i64,
    } [key key: String, arg elements: Vec<Bytes>]

    /// `RPUSH key element...` -> `Int` (the list's length after). Not idempotent.
    Rpush {
        name: "RPUSH", arity: -3, write: true, idempotent: false, reply: Int,
        example: "RPUSH l a b", method: rpush -> i64,
    } [key key: String, arg elements: Vec<Bytes>]

    /// `LPOP key [count]` -> `Bytes` or `Nil`; with a count, an `Array` (empty when
    /// missing). Not idempotent.
    Lpop {
        name: "LPOP", arity: -2, write: true, idempotent: false,
        reply: if count.is_some() { Members } else { BulkOrNil },
        example: "LPOP l 2", method: lpop -> Vec<Bytes>,
    } [key key: String, arg count: Option<u64>]

    /// `RPOP key [count]` -> as [`Command::Lpop`], from the tail. Not idempotent.
    Rpop {
        name: "RPOP", arity: -2, write: true, idempotent: false,
        reply: if count.is_some() { Members } else { BulkOrNil },
        example: "RPOP l 2", method: rpop -> Vec<Bytes>,
    } [key key: String, arg count: Option<u64>]

    /// `LRANGE key start stop` -> `Array` of `Bytes` (inclusive; negative counts from the
    /// end).
    Lrange {
        name: "LRANGE", arity: 4, write: false, idempotent: true, reply: Members,
        example: "LRANGE l 0 -1", method: lrange -> Vec<Bytes>,
    } [key key: String, arg start: i64, arg stop: i64]

    /// `LLEN key` -> `Int`.
    Llen {
        name: "LLEN", arity: 2, write: false, idempotent: true, reply: Int,
        example: "LLEN l", method: llen -> i64,
    } [key key: String]

    /// `LTRIM key start stop` -> `Okay`, keeping only the range.
    Ltrim {
        name: "LTRIM", arity: 4, write: true, idempotent: true, reply: Okay,
        example: "LTRIM l 0 99", method: ltrim -> (),
    } [key key: String, arg start: i64, arg stop: i64]

    /// `LINDEX key index` -> `Bytes` or `Nil`.
    Lindex {
        name: "LINDEX", arity: 3, write: false, idempotent: true, reply: BulkOrNil,
        example: "LINDEX l -1", method: lindex -> Option<Bytes>,
    } [key key: String, arg index: i64]

    /// `LSET key index element` -> `Okay`; an error for a missing key or an index out of
    /// range.
    Lset {
        name: "LSET", arity: 4, write: true, idempotent: true, reply: Okay,
        example: "LSET l 0 x", method: lset -> (),
    } [key key: String, arg index: i64, arg element: Bytes]

    /// `LREM key count element` -> `Int` (removed): `count` > 0 from the head, < 0 from
    /// the tail, 0 all. Idempotent only with `count` 0 (a retry would remove more).
    Lrem {
        name: "LREM", arity: 4, write: true, idempotent: *count == 0, reply: Int,
        example: "LREM l 0 x", method: lrem -> i64,
    } [key key: String, arg count: i64, arg element: Bytes]

    /// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT` -> `Bytes` (the element moved) or
    /// `Nil`. Not idempotent.
    Lmove {
        name: "LMOVE", arity: 5, write: true, idempotent: false, reply: BulkOrNil,
        example: "LMOVE l1 l2 LEFT RIGHT", method: lmove -> Option<Bytes>,
    } [
        /// Source, then destination.
        keys keys: [String; 2],
        /// The end to pop from.
        arg from: ListEnd,
        /// The end to push to.
        arg to: ListEnd,
    ]

    // ---- Sets -----------------------------------------------------------------------

    /// `SADD key member...` -> `Int` (members added).
    Sadd {
        name: "SADD", arity: -3, write: true, idempotent: true, reply: Int,
        example: "SADD s a b", method: sadd -> i64,
    } [key key: String, arg members: Vec<Bytes>]

    /// `SREM key member...` -> `Int` (members removed).
    Srem {
        name: "SREM", arity: -3, write: true, idempotent: true, reply: Int,
        example: "SREM s a b", method: srem -> i64,
    } [key key: String, arg members: Vec<Bytes>]

    /// `SMEMBERS key` -> `Array` of `Bytes`, in no particular order.
    Smembers {
        name: "SMEMBERS", arity: 2, write: false, idempotent: true, reply: Members,
        example: "SMEMBERS s", method: smembers -> Vec<Bytes>,
    } [key key: String]

    /// `SISMEMBER key member` -> `Int` (1 when a member).
    Sismember {
        name: "SISMEMBER", arity: 3, write: false, idempotent: true, reply: Int,
        example: "SISMEMBER s a", method: sismember -> bool,
    } [key key: String, arg member: Bytes]

    /// `SMISMEMBER key member...` -> `Array` of `Int` (1 or 0 per member).
    Smismember {
        name: "SMISMEMBER", arity: -3, write: false, idempotent: true, reply: Array,
        example: "SMISMEMBER s a b", method: smismember -> Vec<bool>,
    } [key key: String, arg members: Vec<Bytes>]

    /// `SCARD key` -> `Int`.
    Scard {
        name: "SCARD", arity: 2, write: false, idempotent: true, reply: Int,
        example: "SCARD s", method: scard -> i64,
    } [key key: String]

    /// `SPOP key [count]` -> `Bytes` or `Nil`; with a count, an `Array`. Not idempotent.
    Spop {
        name: "SPOP", arity: -2, write: true, idempotent: false,
        reply: if count.is_some() { Members } else { BulkOrNil },
        example: "SPOP s 2", method: spop -> Vec<Bytes>,
    } [key key: String, arg count: Option<u64>]

    /// `SRANDMEMBER key [count]` -> `Bytes` or `Nil`; with a count, an `Array` (distinct
    /// members for a positive count, possibly repeated for a negative one).
    Srandmember {
        name: "SRANDMEMBER", arity: -2, write: false, idempotent: true,
        reply: if count.is_some() { Members } else { BulkOrNil },
        example: "SRANDMEMBER s -3", method: srandmember -> Vec<Bytes>,
    } [key key: String, arg count: Option<i64>]

    /// `SSCAN key cursor [MATCH pattern] [COUNT n]` -> `Array[Int next_cursor, Array of
    /// Bytes members]`.
    Sscan {
        name: "SSCAN", arity: -3, write: false, idempotent: true, reply: Scan,
        example: "SSCAN s 0 COUNT 10", method: sscan -> (u64, Vec<Bytes>),
    } [key key: String, arg cursor: u64, arg options: ScanOptions]

    /// `SINTER key...` -> `Array` of `Bytes`: members in every set.
    Sinter {
        name: "SINTER", arity: -2, write: false, idempotent: true, reply: Members,
        example: "SINTER s1 s2", method: sinter -> Vec<Bytes>,
    } [keys keys: Vec<String>]

    /// `SUNION key...` -> `Array` of `Bytes`: members in any set.
    Sunion {
        name: "SUNION", arity: -2, write: false, idempotent: true, reply: Members,
        example: "SUNION s1 s2", method: sunion -> Vec<Bytes>,
    } [keys keys: Vec<String>]

    /// `SDIFF key...` -> `Array` of `Bytes`: members of the first set in no other.
    Sdiff {
        name: "SDIFF", arity: -2, write: false, idempotent: true, reply: Members,
        example: "SDIFF s1 s2", method: sdiff -> Vec<Bytes>,
    } [keys keys: Vec<String>]

    // ---- More sorted sets -----------------------------------------------------------

    /// `ZINCRBY key increment member` -> `Double` (the new score). Not idempotent.
    Zincrby {
        name: "ZINCRBY", arity: 4, write: true, idempotent: false, reply: Double,
        example: "ZINCRBY z 1.5 a", method: zincrby -> f64,
    } [key key: String, arg increment: f64, arg member: String]

    /// `ZCOUNT key min max` -> `Int` (members with a score in range).
    Zcount {
        name: "ZCOUNT", arity: 4, write: false, idempotent: true, reply: Int,
        example: "ZCOUNT z (1 +inf", method: zcount -> i64,
    } [key key: String, arg min: ScoreBound, arg max: ScoreBound]

    /// `ZRANK key member` -> `Int` (rank from the lowest score) or `Nil`.
    Zrank {
        name: "ZRANK", arity: 3, write: false, idempotent: true, reply: OptInt,
        example: "ZRANK z a", method: zrank -> Option<i64>,
    } [key key: String, arg member: String]

    /// `ZMSCORE key member...` -> `Array` of `Double` or `Nil`, one per member.
    Zmscore {
        name: "ZMSCORE", arity: -3, write: false, idempotent: true, reply: OptDoubles,
        example: "ZMSCORE z a b", method: zmscore -> Vec<Option<f64>>,
    } [key key: String, arg members: Vec<String>]

    /// `ZPOPMIN key [count]` -> `Array` of `Array[Bytes member, Double score]`, lowest
    /// first. Not idempotent.
    Zpopmin {
        name: "ZPOPMIN", arity: -2, write: true, idempotent: false, reply: ScoredMembers,
        example: "ZPOPMIN z 2", method: zpopmin -> Vec<(String, f64)>,
    } [key key: String, arg count: Option<u64>]

    /// `ZPOPMAX key [count]` -> as [`Command::Zpopmin`], highest first. Not idempotent.
    Zpopmax {
        name: "ZPOPMAX", arity: -2, write: true, idempotent: false, reply: ScoredMembers,
        example: "ZPOPMAX z 2", method: zpopmax -> Vec<(String, f64)>,
    } [key key: String, arg count: Option<u64>]

    /// `ZRANGEBYLEX key min max [LIMIT o c]`, or `ZREVRANGEBYLEX key max min` when `rev`
    /// -> `Array` of `Bytes` members. `min` is always the lower bound.
    Zrangebylex {
        name: "ZRANGEBYLEX", arity: -4, write: false, idempotent: true, reply: Members,
        example: "ZRANGEBYLEX z [a (c LIMIT 0 10",
        aliases: ["ZREVRANGEBYLEX"],
        display: if *rev { "ZREVRANGEBYLEX" } else { "ZRANGEBYLEX" },
        custom: (write_zrangebylex, read_zrangebylex),
    } [
        key key: String,
        /// Lower bound.
        arg min: LexBound,
        /// Upper bound.
        arg max: LexBound,
        /// Highest member first.
        arg rev: bool,
        /// Offset and count.
        arg limit: Option<Limit>,
    ]

    /// `ZLEXCOUNT key min max` -> `Int` (members in the range by member).
    Zlexcount {
        name: "ZLEXCOUNT", arity: 4, write: false, idempotent: true, reply: Int,
        example: "ZLEXCOUNT z - +", method: zlexcount -> i64,
    } [key key: String, arg min: LexBound, arg max: LexBound]

    /// `ZSCAN key cursor [MATCH pattern] [COUNT n]` -> `Array[Int next_cursor, Array]`,
    /// the array flat: member, score, member, score.
    Zscan {
        name: "ZSCAN", arity: -3, write: false, idempotent: true, reply: Scan,
        example: "ZSCAN z 0 MATCH a*", method: zscan -> (u64, Vec<Bytes>),
    } [key key: String, arg cursor: u64, arg options: ScanOptions]

    // ---- Bits -----------------------------------------------------------------------

    /// `SETBIT key offset 0|1` -> `Int` (the bit's old value).
    Setbit {
        name: "SETBIT", arity: 4, write: true, idempotent: true, reply: Int,
        example: "SETBIT k 7 1", method: setbit -> i64,
    } [key key: String, arg offset: u64, arg bit: i64]

    /// `GETBIT key offset` -> `Int` (0 or 1).
    Getbit {
        name: "GETBIT", arity: 3, write: false, idempotent: true, reply: Int,
        example: "GETBIT k 7", method: getbit -> i64,
    } [key key: String, arg offset: u64]

    /// `BITCOUNT key [start end]` -> `Int` (set bits, in the byte range when given).
    Bitcount {
        name: "BITCOUNT", arity: -2, write: false, idempotent: true, reply: Int,
        example: "BITCOUNT k 0 -1", method: bitcount -> i64,
    } [key key: String, arg range: Option<ByteRange>]

    /// `BITFIELD key [GET|SET|INCRBY|OVERFLOW ...]` -> `Array` of `Int` or `Nil`, one per
    /// `GET`, `SET` and `INCRBY`. Idempotent unless it increments.
    Bitfield {
        name: "BITFIELD", arity: -2, write: true, idempotent: !bitfield_increments(args),
        reply: Array,
        example: "BITFIELD k SET u8 0 200 GET u8 0", method: bitfield -> Vec<Option<i64>>,
    } [
        key key: String,
        /// The subcommands and their arguments, as Redis takes them.
        arg args: Vec<Bytes>,
    ]

    // ---- Pub/Sub --------------------------------------------------------------------

    /// `PUBLISH channel message` -> `Int` (subscribers that received it). Not idempotent:
    /// a retry delivers the message twice.
    Publish {
        name: "PUBLISH", arity: 3, write: false, idempotent: false, reply: Int,
        example: "PUBLISH ch hello", method: publish -> i64,
    } [
        /// The channel (not a key: channels live outside the keyspace).
        arg channel: String,
        /// The message.
        arg message: Bytes,
    ]

    /// `SPUBLISH shard-channel message` (Redis 7) -> `Int` (subscribers that received it).
    /// The channel is routed like a key: on a cluster it lives on the master owning its
    /// slot. Not idempotent: a retry delivers the message twice.
    Spublish {
        name: "SPUBLISH", arity: 3, write: false, idempotent: false, reply: Int,
        example: "SPUBLISH ch hello", method: spublish -> i64,
    } [
        /// The shard channel (routed by its hash slot, like a key).
        key channel: String,
        /// The message.
        arg message: Bytes,
    ]

    // ---- HyperLogLog ----------------------------------------------------------------

    /// `PFADD key element...` -> `Int` (1 when the estimate changed).
    Pfadd {
        name: "PFADD", arity: -2, write: true, idempotent: true, reply: Int,
        example: "PFADD h a b", method: pfadd -> bool,
    } [key key: String, arg elements: Vec<Bytes>]

    /// `PFCOUNT key...` -> `Int`: the estimated number of distinct elements (of the union,
    /// for several keys).
    Pfcount {
        name: "PFCOUNT", arity: -2, write: false, idempotent: true, reply: Int,
        example: "PFCOUNT h1 h2", method: pfcount -> i64,
    } [keys keys: Vec<String>]

    // ---- Streams --------------------------------------------------------------------

    /// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold] id|* field value...` ->
    /// `Bytes` (the new entry's id), or `Nil` with `NOMKSTREAM` and no stream. Not
    /// idempotent: with `*` a retry adds a second entry; with an explicit id a retry fails
    /// as a duplicate though the first attempt stored it.
    Xadd {
        name: "XADD", arity: -5, write: true, idempotent: false, reply: BulkOrNil,
        example: "XADD s MAXLEN ~ 100 * f v", method: xadd -> Option<Bytes>,
    } [
        key key: String,
        arg options: XaddOptions,
        /// `*` for an id the server picks, or `ms-seq`.
        arg id: Box<str>,
        /// The entry's field/value pairs.
        arg fields: Vec<(String, Bytes)>,
    ]

    /// `XRANGE key start end [COUNT n]` -> `Array` of `Array[Bytes id, Array of Bytes
    /// field, value, ...]`, oldest first. `-` and `+` are the ends; `(id` excludes.
    Xrange {
        name: "XRANGE", arity: -4, write: false, idempotent: true, reply: Array,
        example: "XRANGE s - + COUNT 10", method: xrange -> Value,
    } [key key: String, arg start: String, arg end: String, arg count: Option<Count>]

    /// `XREVRANGE key end start [COUNT n]` -> as [`Command::Xrange`], newest first.
    Xrevrange {
        name: "XREVRANGE", arity: -4, write: false, idempotent: true, reply: Array,
        example: "XREVRANGE s + - COUNT 10", method: xrevrange -> Value,
    } [key key: String, arg end: String, arg start: String, arg count: Option<Count>]

    /// `XLEN key` -> `Int`.
    Xlen {
        name: "XLEN", arity: 2, write: false, idempotent: true, reply: Int,
        example: "XLEN s", method: xlen -> i64,
    } [key key: String]

    /// `XTRIM key MAXLEN|MINID [=|~] threshold` -> `Int` (entries removed).
    Xtrim {
        name: "XTRIM", arity: -4, write: true, idempotent: true, reply: Int,
        example: "XTRIM s MAXLEN = 100", method: xtrim -> i64,
    } [key key: String, arg trim: StreamTrim]

    /// `XDEL key id...` -> `Int` (entries removed).
    Xdel {
        name: "XDEL", arity: -3, write: true, idempotent: true, reply: Int,
        example: "XDEL s 1-1 1-2", method: xdel -> i64,
    } [key key: String, arg ids: Vec<String>]

    /// `XREAD [COUNT n] [BLOCK ms] STREAMS key... id...` -> `Map` of `Bytes` stream key to
    /// entries (as [`Command::Xrange`]), empty when nothing is newer. `$` is the stream's
    /// last id. With `BLOCK`, the server holds the reply up to `ms` (0: forever).
    Xread {
        name: "XREAD", arity: -4, write: false, idempotent: true, reply: KeyedMap,
        example: "XREAD COUNT 10 STREAMS s1 s2 0-0 0-0",
        blocking: block_ms.map(std::time::Duration::from_millis),
        custom: (write_xread, read_xread),
    } [
        /// `COUNT n`: at most this many entries per stream.
        arg count: Option<Count>,
        /// `BLOCK ms`: wait this long for new entries.
        arg block_ms: Option<u64>,
        /// The streams.
        keys keys: Vec<String>,
        /// One id per stream: entries after it are returned.
        arg ids: Vec<String>,
    ]

    /// `XGROUP CREATE key group id|$ [MKSTREAM]` -> `Okay`. Not idempotent: a retry fails
    /// with `BUSYGROUP` though the first attempt created the group.
    XgroupCreate {
        name: "XGROUP" + "CREATE", arity: -5, write: true, idempotent: false, reply: Okay,
        example: "XGROUP CREATE s g $ MKSTREAM", method: xgroup_create -> (),
    } [
        key key: String,
        /// The group.
        arg group: String,
        /// Where the group starts reading: an id, or `$` for new entries only.
        arg id: String,
        arg mkstream: MkStream,
    ]

    /// `XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...`
    /// -> as [`Command::Xread`]; `>` reads entries never delivered to the group. Not
    /// idempotent: a retry delivers the next entries, and the first ones wait in the
    /// pending list.
    Xreadgroup {
        name: "XREADGROUP", arity: -7, write: true, idempotent: false, reply: KeyedMap,
        example: "XREADGROUP GROUP g c COUNT 10 STREAMS s >",
        blocking: read.block_ms.map(std::time::Duration::from_millis),
        custom: (write_xreadgroup, read_xreadgroup),
    } [
        /// The streams.
        keys keys: Vec<String>,
        /// The group, the consumer, the options and one id per stream (boxed: rare, and
        /// it keeps every `Command` small).
        arg read: Box<GroupRead>,
    ]

    /// `XACK key group id...` -> `Int` (entries acknowledged).
    Xack {
        name: "XACK", arity: -4, write: true, idempotent: true, reply: Int,
        example: "XACK s g 1-1", method: xack -> i64,
    } [key key: String, arg group: String, arg ids: Vec<String>]

    /// `XPENDING key group` -> `Array[Int count, Bytes lowest id, Bytes highest id,
    /// Array of Array[Bytes consumer, Bytes count]]` (the summary form).
    Xpending {
        name: "XPENDING", arity: -3, write: false, idempotent: true, reply: Array,
        example: "XPENDING s g", method: xpending -> Value,
    } [key key: String, arg group: String]

    /// `XAUTOCLAIM key group consumer min-idle-ms start [COUNT n]` -> `Array[Bytes next
    /// start, Array of entries, Array of deleted ids]`. Not idempotent: a retry claims the
    /// next entries.
    Xautoclaim {
        name: "XAUTOCLAIM", arity: -6, write: true, idempotent: false, reply: Array,
        example: "XAUTOCLAIM s g c 60000 0-0 COUNT 10", method: xautoclaim -> Value,
    } [
        key key: String,
        /// The group.
        arg group: Box<str>,
        /// The consumer that takes the entries.
        arg consumer: Box<str>,
        /// Only entries idle at least this long.
        arg min_idle_ms: u64,
        /// Where to start scanning the pending list (`0-0` at first).
        arg start: Box<str>,
        /// `COUNT n` (sent always; Redis's default is 100).
        arg count: XautoclaimCount,
    ]

    // ---- Blocking pops --------------------------------------------------------------

    /// `BLPOP key... timeout` -> `Array[Bytes key, Bytes element]`, or an empty `Array`
    /// when `timeout_secs` passed first (0: wait forever). Not idempotent.
    Blpop {
        name: "BLPOP", arity: -3, write: true, idempotent: false, reply: Members,
        example: "BLPOP l1 l2 1.5",
        blocking: Some(std::time::Duration::from_secs_f64(timeout_secs.max(0.0))),
        custom: (write_blpop, read_blpop),
        method: blpop -> Vec<Bytes>,
    } [keys keys: Vec<String>, arg timeout_secs: f64]

    /// `BRPOP key... timeout` -> as [`Command::Blpop`], from the tail. Not idempotent.
    Brpop {
        name: "BRPOP", arity: -3, write: true, idempotent: false, reply: Members,
        example: "BRPOP l1 l2 1.5",
        blocking: Some(std::time::Duration::from_secs_f64(timeout_secs.max(0.0))),
        custom: (write_brpop, read_brpop),
        method: brpop -> Vec<Bytes>,
    } [keys keys: Vec<String>, arg timeout_secs: f64]

    /// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout` -> `Bytes` (the element
    /// moved), or `Nil` when `timeout_secs` passed first. Not idempotent.
    Blmove {
        name: "BLMOVE", arity: 6, write: true, idempotent: false, reply: BulkOrNil,
        example: "BLMOVE l1 l2 LEFT RIGHT 1.5",
        blocking: Some(std::time::Duration::from_secs_f64(timeout_secs.max(0.0))),
        method: blmove -> Option<Bytes>,
    } [
        /// Source, then destination.
        keys keys: [String; 2],
        /// The end to pop from.
        arg from: ListEnd,
        /// The end to push to.
        arg to: ListEnd,
        /// Seconds to wait for an element; 0 waits forever.
        arg timeout_secs: f64,
    ]
}

// The irregular entries' writers and readers (`custom: (write_x, read_x)` above), with the
// wire forms they share in `irregular.rs`.
//
// - `PING`: with a message it is not the variant.
// - `SCAN`: its options are separate fields.
// - `RAW`: the arguments are the command.

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

pub(super) fn write_mset(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Mset { keys, values } = cmd else {
        return Err(not_mine(cmd, "write_mset"));
    };
    write_pairs(cmd.name(), sink, keys, values)
}

pub(super) fn read_mset(r: &mut ArgReader<'_>, _: &str) -> Result<Command, BackendError> {
    let (keys, values) = read_pairs(r)?;
    Ok(Command::Mset { keys, values })
}

pub(super) fn write_msetnx(cmd: &Command, sink: &mut impl ArgSink) -> Result<(), BackendError> {
    let Command::Msetnx { keys, values } = cmd else {
        return Err(not_mine(cmd, "write_msetnx"));
    };
    write_pairs(cmd.name(), sink, keys, values)
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
