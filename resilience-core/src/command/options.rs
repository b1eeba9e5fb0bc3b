//! The option types commands carry: each knows how Redis spells it on the wire and how to
//! read it back ([`WireArg`]), so the command table can use it as a field.

use std::num::NonZeroU64;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::arg::{ArgReader, WireArg};
use crate::BackendError;
use crate::value::format_score;
use crate::wire::ArgSink;

/// Options of `SET`.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`SetOptions::default().with_…(…)`), or assign fields of a default value.
/// `EX`/`EXAT` are read as their millisecond forms `PX`/`PXAT`. Kept to 24 bytes: a
/// [`Command`](crate::Command) is as large as its largest variant, and `SET` is the
/// hottest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SetOptions {
    /// Expire after this many milliseconds (`PX`). `None` keeps no TTL.
    pub expire_ms: Option<NonZeroU64>,
    /// Only set when the key does not exist (`NX`) or only when it does (`XX`).
    pub condition: Option<SetCondition>,
    /// Expire at this Unix time in milliseconds (`PXAT`).
    #[serde(default)]
    pub expire_at_ms: Option<NonZeroU64>,
    /// Keep the key's current TTL (`KEEPTTL`) instead of clearing it.
    #[serde(default)]
    pub keep_ttl: bool,
    /// Reply with the old value (`GET`): `Bytes` or `Nil` instead of `Okay`.
    #[serde(default)]
    pub get: bool,
}

impl SetOptions {
    /// Options that set a TTL of `ttl` (rounded down to whole milliseconds, at least 1 ms).
    pub fn with_ttl(ttl: std::time::Duration) -> Self {
        SetOptions::default().with_expire_ms(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
    }

    /// `PX ms` (0 counts as 1 ms: Redis refuses a zero TTL).
    pub fn with_expire_ms(mut self, ms: u64) -> Self {
        self.expire_ms = NonZeroU64::new(ms.max(1));
        self
    }

    /// `PXAT unix_ms` (0 counts as 1: any time in the past deletes the key).
    pub fn with_expire_at_ms(mut self, unix_ms: u64) -> Self {
        self.expire_at_ms = NonZeroU64::new(unix_ms.max(1));
        self
    }

    /// `NX` or `XX`.
    pub fn with_condition(mut self, condition: SetCondition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// `KEEPTTL`.
    pub fn with_keep_ttl(mut self, keep: bool) -> Self {
        self.keep_ttl = keep;
        self
    }

    /// `GET`.
    pub fn with_get(mut self, get: bool) -> Self {
        self.get = get;
        self
    }
}

impl WireArg for SetOptions {
    fn write(&self, sink: &mut impl ArgSink) {
        if let Some(ms) = self.expire_ms {
            sink.word("PX");
            sink.uint(ms.get());
        }
        if let Some(at) = self.expire_at_ms {
            sink.word("PXAT");
            sink.uint(at.get());
        }
        if self.keep_ttl {
            sink.word("KEEPTTL");
        }
        self.condition.write(sink);
        if self.get {
            sink.word("GET");
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        let mut out = SetOptions::default();
        let mut expiries = 0;
        while let Some(word) = r.peek_word() {
            match word.as_str() {
                "NX" | "XX" if out.condition.is_none() => {
                    out.condition = SetCondition::read_word(&word);
                }
                "GET" if !out.get => out.get = true,
                "KEEPTTL" if !out.keep_ttl => out.keep_ttl = true,
                "EX" | "PX" | "EXAT" | "PXAT" => {
                    r.skip();
                    let amount = r.int()?;
                    let ms = match word.as_str() {
                        "EX" | "EXAT" => amount.checked_mul(1000),
                        _ => Some(amount),
                    }
                    .and_then(|ms| NonZeroU64::new(u64::try_from(ms).ok()?))
                    .ok_or_else(|| r.error("ERR invalid expire time in 'set' command"))?;
                    if word.ends_with("AT") {
                        out.expire_at_ms = Some(ms);
                    } else {
                        out.expire_ms = Some(ms);
                    }
                    expiries += 1;
                    continue;
                }
                _ => return Err(r.syntax()),
            }
            r.skip();
        }
        if expiries > 1 || (expiries == 1 && out.keep_ttl) {
            return Err(r.syntax());
        }
        Ok(out)
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

impl SetCondition {
    fn read_word(word: &str) -> Option<SetCondition> {
        match word {
            "NX" => Some(SetCondition::IfNotExists),
            "XX" => Some(SetCondition::IfExists),
            _ => None,
        }
    }
}

impl WireArg for Option<SetCondition> {
    fn write(&self, sink: &mut impl ArgSink) {
        match self {
            Some(SetCondition::IfNotExists) => sink.word("NX"),
            Some(SetCondition::IfExists) => sink.word("XX"),
            None => {}
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        let found = r.peek_word().and_then(|w| SetCondition::read_word(&w));
        if found.is_some() {
            r.skip();
        }
        Ok(found)
    }
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

impl WireArg for ZaddOptions {
    fn write(&self, sink: &mut impl ArgSink) {
        self.condition.write(sink);
        match self.greater_than {
            Some(true) => sink.word("GT"),
            Some(false) => sink.word("LT"),
            None => {}
        }
        if self.changed {
            sink.word("CH");
        }
        if self.incr {
            sink.word("INCR");
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        // Options come in any order, before the first score.
        let mut options = ZaddOptions::default();
        while let Some(word) = r.peek_word() {
            match word.as_str() {
                "NX" | "XX" => options.condition = SetCondition::read_word(&word),
                "GT" => options.greater_than = Some(true),
                "LT" => options.greater_than = Some(false),
                "CH" => options.changed = true,
                "INCR" => options.incr = true,
                _ => break,
            }
            r.skip();
        }
        Ok(options)
    }
}

/// One end of a sorted-set score range (`ZRANGEBYSCORE`, `ZCOUNT`).
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

impl WireArg for ScoreBound {
    fn write(&self, sink: &mut impl ArgSink) {
        match self {
            ScoreBound::NegInf => sink.word("-inf"),
            ScoreBound::PosInf => sink.word("+inf"),
            ScoreBound::Inclusive(v) => sink.score(*v),
            ScoreBound::Exclusive(_) => sink.text(&self.to_redis_arg()),
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        let arg = r.arg()?;
        let bad = || r.error("ERR min or max is not a float");
        let s = std::str::from_utf8(arg).map_err(|_| bad())?;
        let number = |s: &str| {
            crate::value::parse_redis_double(s)
                .filter(|v| !v.is_nan())
                .ok_or_else(bad)
        };
        Ok(match s.to_ascii_lowercase().as_str() {
            "-inf" => ScoreBound::NegInf,
            "+inf" | "inf" => ScoreBound::PosInf,
            _ => match s.strip_prefix('(') {
                Some(rest) => ScoreBound::Exclusive(number(rest)?),
                None => ScoreBound::Inclusive(number(s)?),
            },
        })
    }
}

/// One end of a sorted-set range by member (`ZRANGEBYLEX`, `ZLEXCOUNT`): members sharing
/// one score, ordered bytewise. Kept as Redis spells it (`-`, `+`, `[member`, `(member`),
/// in 16 bytes; [`end`](Self::end) reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LexBound(Box<str>);

/// What a [`LexBound`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexEnd<'a> {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[member`: the member itself included.
    Inclusive(&'a str),
    /// `(member`: the member itself excluded.
    Exclusive(&'a str),
}

impl LexBound {
    /// `-`: below every member.
    pub fn min() -> LexBound {
        LexBound("-".into())
    }

    /// `+`: above every member.
    pub fn max() -> LexBound {
        LexBound("+".into())
    }

    /// `[member`: the member itself included.
    pub fn inclusive(member: &str) -> LexBound {
        LexBound(format!("[{member}").into_boxed_str())
    }

    /// `(member`: the member itself excluded.
    pub fn exclusive(member: &str) -> LexBound {
        LexBound(format!("({member}").into_boxed_str())
    }

    /// Reads a bound as Redis spells it (`-`, `+`, `[member`, `(member`); `None` for
    /// anything else.
    pub fn from_redis_arg(arg: &str) -> Option<LexBound> {
        match arg.as_bytes().first()? {
            b'-' | b'+' if arg.len() == 1 => Some(LexBound(arg.into())),
            b'[' | b'(' => Some(LexBound(arg.into())),
            _ => None,
        }
    }

    /// The bound as Redis spells it.
    pub fn as_redis_arg(&self) -> &str {
        &self.0
    }

    /// What the bound says.
    pub fn end(&self) -> LexEnd<'_> {
        match self.0.as_bytes().first() {
            Some(b'[') => LexEnd::Inclusive(&self.0[1..]),
            Some(b'(') => LexEnd::Exclusive(&self.0[1..]),
            Some(b'+') => LexEnd::Max,
            _ => LexEnd::Min,
        }
    }
}

impl WireArg for LexBound {
    fn write(&self, sink: &mut impl ArgSink) {
        sink.text(&self.0);
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        let arg = r.text()?;
        LexBound::from_redis_arg(&arg)
            .ok_or_else(|| r.error("ERR min or max not valid string range item"))
    }
}

/// `LIMIT offset count` of the range commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// Members to skip.
    pub offset: u64,
    /// Members to return at most.
    pub count: u64,
}

impl WireArg for Option<Limit> {
    fn write(&self, sink: &mut impl ArgSink) {
        if let Some(limit) = self {
            sink.word("LIMIT");
            sink.uint(limit.offset);
            sink.uint(limit.count);
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        if r.peek_word().as_deref() != Some("LIMIT") {
            return Ok(None);
        }
        r.skip();
        let (offset, count) = (r.int()?, r.int()?);
        // Redis: a negative offset returns nothing, a negative count everything.
        Ok(Some(Limit {
            offset: u64::try_from(offset).unwrap_or(u64::MAX),
            count: u64::try_from(count).unwrap_or(u64::MAX),
        }))
    }
}

/// The condition of `EXPIRE`, `PEXPIRE` and `EXPIREAT` (Redis 7): set the deadline only
/// when it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpireCondition {
    /// `NX`: only when the key has no TTL.
    NoTtl,
    /// `XX`: only when the key has a TTL.
    HasTtl,
    /// `GT`: only when the new deadline is later (no TTL counts as infinite).
    Later,
    /// `LT`: only when the new deadline is sooner.
    Sooner,
}

impl WireArg for Option<ExpireCondition> {
    fn write(&self, sink: &mut impl ArgSink) {
        match self {
            Some(ExpireCondition::NoTtl) => sink.word("NX"),
            Some(ExpireCondition::HasTtl) => sink.word("XX"),
            Some(ExpireCondition::Later) => sink.word("GT"),
            Some(ExpireCondition::Sooner) => sink.word("LT"),
            None => {}
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        let Some(word) = r.peek_word() else {
            return Ok(None);
        };
        let condition = match word.as_str() {
            "NX" => ExpireCondition::NoTtl,
            "XX" => ExpireCondition::HasTtl,
            "GT" => ExpireCondition::Later,
            "LT" => ExpireCondition::Sooner,
            _ => return Err(r.error(&format!("ERR Unsupported option {word}"))),
        };
        r.skip();
        Ok(Some(condition))
    }
}

/// What `GETEX` does to the key's TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GetExpiry {
    /// `PX ms`: expire this many milliseconds from now.
    AfterMs(u64),
    /// `PXAT ms`: expire at this Unix time in milliseconds.
    AtUnixMs(u64),
    /// `PERSIST`: remove the TTL.
    Persist,
}

impl WireArg for Option<GetExpiry> {
    fn write(&self, sink: &mut impl ArgSink) {
        match self {
            Some(GetExpiry::AfterMs(ms)) => {
                sink.word("PX");
                sink.uint(*ms);
            }
            Some(GetExpiry::AtUnixMs(ms)) => {
                sink.word("PXAT");
                sink.uint(*ms);
            }
            Some(GetExpiry::Persist) => sink.word("PERSIST"),
            None => {}
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        let Some(word) = r.peek_word() else {
            return Ok(None);
        };
        r.skip();
        if word == "PERSIST" {
            return Ok(Some(GetExpiry::Persist));
        }
        let scale = match word.as_str() {
            "EX" | "EXAT" => 1000,
            "PX" | "PXAT" => 1,
            _ => return Err(r.syntax()),
        };
        let ms = r
            .int()?
            .checked_mul(scale)
            .filter(|ms| *ms > 0)
            .ok_or_else(|| r.error("ERR invalid expire time in 'getex' command"))?;
        Ok(Some(if word.ends_with("AT") {
            GetExpiry::AtUnixMs(ms as u64)
        } else {
            GetExpiry::AfterMs(ms as u64)
        }))
    }
}

/// `MATCH pattern` and `COUNT n` of the `SCAN` family.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, derive_setters::Setters)]
#[setters(prefix = "with_", strip_option)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Glob pattern the returned names must match.
    pub pattern: Option<String>,
    /// Hint for how many entries to look at per call.
    pub count: Option<u64>,
}

impl WireArg for ScanOptions {
    fn write(&self, sink: &mut impl ArgSink) {
        if let Some(pattern) = &self.pattern {
            sink.word("MATCH");
            sink.text(pattern);
        }
        if let Some(count) = self.count {
            sink.word("COUNT");
            sink.uint(count);
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        match ScanOptions::read_with_type(r)? {
            (options, None) => Ok(options),
            (_, Some(_)) => Err(r.syntax()),
        }
    }
}

impl ScanOptions {
    /// `MATCH`, `COUNT` and (for `SCAN`) `TYPE`, in any order.
    pub(crate) fn read_with_type(
        r: &mut ArgReader<'_>,
    ) -> Result<(ScanOptions, Option<String>), BackendError> {
        let mut out = ScanOptions::default();
        let mut type_name = None;
        while let Some(word) = r.peek_word() {
            r.skip();
            match word.as_str() {
                "MATCH" => out.pattern = Some(r.text()?),
                "COUNT" => {
                    let n = r.int()?;
                    if n < 1 {
                        return Err(r.syntax());
                    }
                    out.count = Some(n as u64);
                }
                "TYPE" => type_name = Some(r.text()?),
                _ => return Err(r.syntax()),
            }
        }
        Ok((out, type_name))
    }
}

/// Which end of a list (`LMOVE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListEnd {
    /// `LEFT`: the head.
    Left,
    /// `RIGHT`: the tail.
    Right,
}

impl WireArg for ListEnd {
    fn write(&self, sink: &mut impl ArgSink) {
        sink.word(match self {
            ListEnd::Left => "LEFT",
            ListEnd::Right => "RIGHT",
        });
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        match r.word()?.as_str() {
            "LEFT" => Ok(ListEnd::Left),
            "RIGHT" => Ok(ListEnd::Right),
            _ => Err(r.syntax()),
        }
    }
}

/// `REPLACE` of `COPY`: overwrite an existing destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replace(pub bool);

impl WireArg for Replace {
    fn write(&self, sink: &mut impl ArgSink) {
        if self.0 {
            sink.word("REPLACE");
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        match r.peek_word().as_deref() {
            Some("REPLACE") => {
                r.skip();
                Ok(Replace(true))
            }
            Some(_) => Err(r.syntax()),
            None => Ok(Replace(false)),
        }
    }
}

/// `start end` of `BITCOUNT`, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte (negative counts from the end).
    pub start: i64,
    /// Last byte, inclusive (negative counts from the end).
    pub end: i64,
}

impl WireArg for Option<ByteRange> {
    fn write(&self, sink: &mut impl ArgSink) {
        if let Some(range) = self {
            sink.int(range.start);
            sink.int(range.end);
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        if r.remaining() == 0 {
            return Ok(None);
        }
        let (start, end) = (r.int()?, r.int()?);
        if r.remaining() > 0 {
            return Err(r.syntax());
        }
        Ok(Some(ByteRange { start, end }))
    }
}

/// Whether a `BITFIELD` argument list increments (`INCRBY`), which makes it unsafe to
/// apply twice.
pub(crate) fn bitfield_increments(args: &[Bytes]) -> bool {
    args.iter().any(|a| a.eq_ignore_ascii_case(b"INCRBY"))
}

/// `COUNT n` of the stream reads (`XRANGE`, `XREAD`, `XAUTOCLAIM`). 32 bits, which keeps
/// those commands small; a larger count is read as `u32::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count(pub u32);

impl WireArg for Option<Count> {
    fn write(&self, sink: &mut impl ArgSink) {
        if let Some(Count(n)) = self {
            sink.word("COUNT");
            sink.uint(u64::from(*n));
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        if r.peek_word().as_deref() != Some("COUNT") {
            return Ok(None);
        }
        r.skip();
        let n = r.int()?;
        Ok(Some(Count(u32::try_from(n.max(0)).unwrap_or(u32::MAX))))
    }
}

/// How `XADD` and `XTRIM` trim a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrimTo {
    /// `MAXLEN n`: keep the newest `n` entries.
    MaxLen(u64),
    /// `MINID id`: drop entries with a smaller id.
    MinId(String),
}

/// A stream trim: the threshold, and whether it may be approximate (`~`, which lets the
/// server trim whole nodes only: cheaper, keeps at least what was asked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTrim {
    /// What to keep.
    pub to: TrimTo,
    /// `~` instead of `=`.
    pub approximate: bool,
}

impl StreamTrim {
    fn write_to(&self, sink: &mut impl ArgSink) {
        match &self.to {
            TrimTo::MaxLen(n) => {
                sink.word("MAXLEN");
                sink.word(if self.approximate { "~" } else { "=" });
                sink.uint(*n);
            }
            TrimTo::MinId(id) => {
                sink.word("MINID");
                sink.word(if self.approximate { "~" } else { "=" });
                sink.text(id);
            }
        }
    }

    /// Reads `MAXLEN|MINID [=|~] threshold` when the next word starts one.
    fn read_from(r: &mut ArgReader<'_>) -> Result<Option<StreamTrim>, BackendError> {
        let strategy = match r.peek_word().as_deref() {
            Some(w @ ("MAXLEN" | "MINID")) => w.to_owned(),
            _ => return Ok(None),
        };
        r.skip();
        let approximate = match r.peek_word().as_deref() {
            Some("~") => {
                r.skip();
                true
            }
            Some("=") => {
                r.skip();
                false
            }
            _ => false,
        };
        let to = if strategy == "MAXLEN" {
            let n = r.int()?;
            TrimTo::MaxLen(
                u64::try_from(n).map_err(|_| r.error("ERR The MAXLEN argument must be >= 0."))?,
            )
        } else {
            TrimTo::MinId(r.text()?)
        };
        Ok(Some(StreamTrim { to, approximate }))
    }
}

impl WireArg for StreamTrim {
    fn write(&self, sink: &mut impl ArgSink) {
        self.write_to(sink);
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        StreamTrim::read_from(r)?.ok_or_else(|| r.syntax())
    }
}

/// Options of `XADD`, before the id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct XaddOptions {
    /// `NOMKSTREAM`: do not create a missing stream (the reply is then `Nil`).
    pub no_mkstream: bool,
    /// Trim the stream in the same call (boxed: it is rare, and keeps `XADD` small).
    #[setters(strip_option)]
    pub trim: Option<Box<StreamTrim>>,
}

impl WireArg for XaddOptions {
    fn write(&self, sink: &mut impl ArgSink) {
        if self.no_mkstream {
            sink.word("NOMKSTREAM");
        }
        if let Some(trim) = &self.trim {
            trim.write_to(sink);
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        let mut out = XaddOptions::default();
        loop {
            if r.peek_word().as_deref() == Some("NOMKSTREAM") {
                r.skip();
                out.no_mkstream = true;
            } else if let Some(trim) = StreamTrim::read_from(r)? {
                out.trim = Some(Box::new(trim));
            } else {
                return Ok(out);
            }
        }
    }
}

/// `MKSTREAM` of `XGROUP CREATE`: create the stream when missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkStream(pub bool);

impl WireArg for MkStream {
    fn write(&self, sink: &mut impl ArgSink) {
        if self.0 {
            sink.word("MKSTREAM");
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        match r.peek_word().as_deref() {
            Some("MKSTREAM") => {
                r.skip();
                Ok(MkStream(true))
            }
            Some(_) => Err(r.syntax()),
            None => Ok(MkStream(false)),
        }
    }
}

/// `COUNT n` of `XAUTOCLAIM`, always sent (Redis's default, 100, when read without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XautoclaimCount(pub u32);

impl Default for XautoclaimCount {
    fn default() -> Self {
        XautoclaimCount(100)
    }
}

impl WireArg for XautoclaimCount {
    fn write(&self, sink: &mut impl ArgSink) {
        sink.word("COUNT");
        sink.uint(u64::from(self.0));
    }

    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        match Option::<Count>::read(r)? {
            Some(Count(n)) => Ok(XautoclaimCount(n)),
            None => Ok(XautoclaimCount::default()),
        }
    }
}

/// `XREADGROUP`'s arguments besides the streams: the group and consumer, the options, and
/// one id per stream (`>` for entries never delivered to the group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupRead {
    /// The group.
    pub group: String,
    /// This consumer's name.
    pub consumer: String,
    /// `COUNT n`.
    pub count: Option<Count>,
    /// `BLOCK ms`.
    pub block_ms: Option<u64>,
    /// `NOACK`: do not keep the entries pending.
    pub no_ack: bool,
    /// One id per stream.
    pub ids: Vec<String>,
}

impl GroupRead {
    /// Reads new entries (`>` for each of `streams` streams) as `consumer` of `group`.
    pub fn new_entries(
        group: impl Into<String>,
        consumer: impl Into<String>,
        streams: usize,
    ) -> Self {
        GroupRead {
            group: group.into(),
            consumer: consumer.into(),
            count: None,
            block_ms: None,
            no_ack: false,
            ids: vec![">".to_owned(); streams],
        }
    }
}

super::arg::into_field_as_is!(
    SetOptions,
    ZaddOptions,
    ScoreBound,
    LexBound,
    Option<Limit>,
    Option<ExpireCondition>,
    Option<GetExpiry>,
    Option<ByteRange>,
    ScanOptions,
    ListEnd,
    Replace,
    Option<Count>,
    StreamTrim,
    XaddOptions,
    MkStream,
    XautoclaimCount
);
