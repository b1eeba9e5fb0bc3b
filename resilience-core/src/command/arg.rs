//! Fields as arguments: [`WireArg`], how one field of a command is written to the wire and
//! read back from an argument list, and [`IntoField`], what the typed client methods take
//! for each field type.
//!
//! The command table writes a command as its name followed by each field's [`WireArg::write`]
//! in declaration order, and reads one back by calling each field's [`WireArg::read`] on an
//! [`ArgReader`]. So the two directions of every command are derived from the same
//! declaration and cannot drift apart.

use bytes::Bytes;

use crate::value::format_score;
use crate::wire::ArgSink;
use crate::{BackendError, ErrorKind};

/// One field of a command, on the wire.
pub trait WireArg: Sized {
    /// Writes the field's arguments (none, for an option that is off).
    fn write(&self, sink: &mut impl ArgSink);
    /// Reads the field back from the arguments Redis would receive. Fails with the error
    /// line Redis sends for the same malformed arguments.
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError>;
}

/// A cursor over a command's arguments after its name, for [`WireArg::read`].
#[derive(Debug)]
pub struct ArgReader<'a> {
    args: &'a [Bytes],
    at: usize,
    /// The command's name in lower case, as Redis's error lines spell it.
    name: &'a str,
}

impl<'a> ArgReader<'a> {
    /// A reader over `args` (the arguments after the name) of the command `name` (lower case).
    pub fn new(name: &'a str, args: &'a [Bytes]) -> Self {
        ArgReader { args, at: 0, name }
    }

    /// How many arguments are left.
    pub fn remaining(&self) -> usize {
        self.args.len() - self.at
    }

    /// The next argument; `ERR syntax error` when there is none.
    pub fn arg(&mut self) -> Result<&'a Bytes, BackendError> {
        let arg = self.args.get(self.at).ok_or_else(|| self.syntax())?;
        self.at += 1;
        Ok(arg)
    }

    /// The rest of the arguments, consumed.
    pub fn rest(&mut self) -> &'a [Bytes] {
        let rest = &self.args[self.at..];
        self.at = self.args.len();
        rest
    }

    /// The next argument in upper case, if there is one and it is text; not consumed.
    pub fn peek_word(&self) -> Option<String> {
        let arg = self.args.get(self.at)?;
        std::str::from_utf8(arg).ok().map(str::to_ascii_uppercase)
    }

    /// Consumes the next argument.
    pub fn skip(&mut self) {
        self.at = (self.at + 1).min(self.args.len());
    }

    /// The next argument in upper case.
    pub fn word(&mut self) -> Result<String, BackendError> {
        Ok(String::from_utf8_lossy(self.arg()?).to_ascii_uppercase())
    }

    /// The next argument as UTF-8 text (keys, fields, members).
    pub fn text(&mut self) -> Result<String, BackendError> {
        let arg = self.arg()?;
        String::from_utf8(arg.to_vec()).map_err(|_| {
            BackendError::new(
                ErrorKind::InvalidInput,
                "typed commands take UTF-8 keys, fields and members only",
            )
        })
    }

    /// The next argument as an integer, read as strictly as Redis reads one.
    pub fn int(&mut self) -> Result<i64, BackendError> {
        let arg = self.arg()?;
        crate::value::parse_strict_int::<i64>(arg)
            .ok_or_else(|| self.error("ERR value is not an integer or out of range"))
    }

    /// The next argument as a float (`inf` and `-inf` included, NaN refused).
    pub fn float(&mut self) -> Result<f64, BackendError> {
        let arg = self.arg()?;
        std::str::from_utf8(arg)
            .ok()
            .and_then(crate::value::parse_redis_double)
            .filter(|v| !v.is_nan())
            .ok_or_else(|| self.error("ERR value is not a valid float"))
    }

    /// The error Redis replies with `line`.
    pub fn error(&self, line: &str) -> BackendError {
        BackendError::from_reply(line)
    }

    /// `ERR syntax error`.
    pub fn syntax(&self) -> BackendError {
        self.error("ERR syntax error")
    }

    /// `ERR wrong number of arguments for '<name>' command`.
    pub fn wrong_args(&self) -> BackendError {
        wrong_args(self.name)
    }
}

/// `ERR wrong number of arguments for '<name>' command`.
pub(crate) fn wrong_args(name: &str) -> BackendError {
    BackendError::from_reply(&format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ))
}

impl WireArg for String {
    fn write(&self, sink: &mut impl ArgSink) {
        sink.text(self);
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        r.text()
    }
}

/// Text in 16 bytes instead of 24, for the rarer commands' names and ids (a
/// [`Command`](crate::Command) is as large as its largest variant).
impl WireArg for Box<str> {
    fn write(&self, sink: &mut impl ArgSink) {
        sink.text(self);
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        r.text().map(String::into_boxed_str)
    }
}

impl WireArg for Bytes {
    fn write(&self, sink: &mut impl ArgSink) {
        sink.bytes(self);
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        r.arg().cloned()
    }
}

impl WireArg for i64 {
    fn write(&self, sink: &mut impl ArgSink) {
        sink.int(*self);
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        r.int()
    }
}

impl WireArg for u64 {
    fn write(&self, sink: &mut impl ArgSink) {
        sink.uint(*self);
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        let arg = r.arg()?;
        std::str::from_utf8(arg)
            .ok()
            .filter(|s| !s.starts_with('+'))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| r.error("ERR value is out of range, must be positive"))
    }
}

impl WireArg for f64 {
    fn write(&self, sink: &mut impl ArgSink) {
        sink.text(&format_score(*self));
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        r.float()
    }
}

/// An optional trailing count (`LPOP key [count]`, `SPOP key [count]`).
impl WireArg for Option<u64> {
    fn write(&self, sink: &mut impl ArgSink) {
        if let Some(n) = self {
            sink.uint(*n);
        }
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        if r.remaining() == 0 {
            return Ok(None);
        }
        let n = r.int()?;
        u64::try_from(n)
            .map(Some)
            .map_err(|_| r.error("ERR value is out of range, must be positive"))
    }
}

/// An optional trailing signed count (`SRANDMEMBER key [count]`: negative allows repeats).
impl WireArg for Option<i64> {
    fn write(&self, sink: &mut impl ArgSink) {
        if let Some(n) = self {
            sink.int(*n);
        }
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        if r.remaining() == 0 {
            return Ok(None);
        }
        r.int().map(Some)
    }
}

/// Every remaining argument as text (keys, fields, members).
impl WireArg for Vec<String> {
    fn write(&self, sink: &mut impl ArgSink) {
        self.iter().for_each(|s| sink.text(s));
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        let mut out = Vec::with_capacity(r.remaining());
        while r.remaining() > 0 {
            out.push(r.text()?);
        }
        Ok(out)
    }
}

/// Every remaining argument as binary data (values, elements).
impl WireArg for Vec<Bytes> {
    fn write(&self, sink: &mut impl ArgSink) {
        self.iter().for_each(|b| sink.bytes(b));
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        Ok(r.rest().to_vec())
    }
}

/// Two keys (`LMOVE source destination`, `COPY source destination`).
impl WireArg for [String; 2] {
    fn write(&self, sink: &mut impl ArgSink) {
        self.iter().for_each(|s| sink.text(s));
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        Ok([r.text()?, r.text()?])
    }
}

/// Field/value pairs (`HSET`): an odd count is a wrong number of arguments.
impl WireArg for Vec<(String, Bytes)> {
    fn write(&self, sink: &mut impl ArgSink) {
        for (field, value) in self {
            sink.text(field);
            sink.bytes(value);
        }
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        if !r.remaining().is_multiple_of(2) {
            return Err(r.wrong_args());
        }
        let mut out = Vec::with_capacity(r.remaining() / 2);
        while r.remaining() > 0 {
            out.push((r.text()?, r.arg()?.clone()));
        }
        Ok(out)
    }
}

/// Score/member pairs (`ZADD`): none, or an odd count, is a syntax error.
impl WireArg for Vec<(f64, String)> {
    fn write(&self, sink: &mut impl ArgSink) {
        for (score, member) in self {
            sink.score(*score);
            sink.text(member);
        }
    }
    fn read(r: &mut ArgReader<'_>) -> Result<Self, BackendError> {
        if r.remaining() == 0 || !r.remaining().is_multiple_of(2) {
            return Err(r.syntax());
        }
        let mut out = Vec::with_capacity(r.remaining() / 2);
        while r.remaining() > 0 {
            out.push((r.float()?, r.text()?));
        }
        Ok(out)
    }
}

/// What a typed [`ResilientClient`](crate::ResilientClient) method takes for a field of
/// type `T`: the type itself, or what converts into it (`&str` for a key, any iterable of
/// strings for a key list, any integer type for a count).
pub trait IntoField<T> {
    /// The field's value.
    fn into_field(self) -> T;
}

impl<S: Into<String>> IntoField<String> for S {
    fn into_field(self) -> String {
        self.into()
    }
}

impl<S: Into<String>> IntoField<Box<str>> for S {
    fn into_field(self) -> Box<str> {
        self.into().into_boxed_str()
    }
}

impl<B: Into<Bytes>> IntoField<Bytes> for B {
    fn into_field(self) -> Bytes {
        self.into()
    }
}

impl<I> IntoField<Vec<String>> for I
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    fn into_field(self) -> Vec<String> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<I> IntoField<Vec<Bytes>> for I
where
    I: IntoIterator,
    I::Item: Into<Bytes>,
{
    fn into_field(self) -> Vec<Bytes> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<I, F, V> IntoField<Vec<(String, Bytes)>> for I
where
    I: IntoIterator<Item = (F, V)>,
    F: Into<String>,
    V: Into<Bytes>,
{
    fn into_field(self) -> Vec<(String, Bytes)> {
        self.into_iter()
            .map(|(f, v)| (f.into(), v.into()))
            .collect()
    }
}

impl<I, M> IntoField<Vec<(f64, String)>> for I
where
    I: IntoIterator<Item = (f64, M)>,
    M: Into<String>,
{
    fn into_field(self) -> Vec<(f64, String)> {
        self.into_iter().map(|(s, m)| (s, m.into())).collect()
    }
}

impl<A: Into<String>, B: Into<String>> IntoField<[String; 2]> for (A, B) {
    fn into_field(self) -> [String; 2] {
        [self.0.into(), self.1.into()]
    }
}

macro_rules! into_field_from {
    ($target:ty: $($source:ty),*) => {
        $(impl IntoField<$target> for $source {
            fn into_field(self) -> $target {
                <$target>::from(self)
            }
        })*
    };
}

into_field_from!(i64: i64, i32, i16, i8, u32, u16, u8);
into_field_from!(u64: u64, u32, u16, u8);
into_field_from!(f64: f64, f32, i32, u32);

/// Fields a caller passes as the type itself.
macro_rules! into_field_as_is {
    ($($t:ty),*) => {
        $(impl $crate::command::IntoField<$t> for $t {
            fn into_field(self) -> $t {
                self
            }
        })*
    };
}
pub(super) use into_field_as_is;

into_field_as_is!(Option<u64>, Option<i64>, u32);
