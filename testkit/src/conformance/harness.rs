//! The machinery every case shares: a running [`Case`] (its key prefix, the keys to clean
//! up, and expectation helpers that turn a mismatch into a [`ConformanceFailure`]) and
//! short builders for the commands the cases send.

use std::fmt;
use std::sync::Mutex;

use bytes::Bytes;
use resilience_core::{
    BackendError, Command, ErrorKind, KvBackend, Limit, ScoreBound, SetCondition, SetOptions,
    Value, ZaddOptions,
};

/// A failed expectation: which case, which command, what was expected and what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConformanceFailure {
    /// The case's name (its function name).
    pub case: &'static str,
    /// The command (or batch) that misbehaved, abbreviated.
    pub command: String,
    /// What real Redis returns.
    pub expected: String,
    /// What the backend returned.
    pub actual: String,
}

impl fmt::Display for ConformanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance case `{}` failed on {}: expected {}, got {}",
            self.case, self.command, self.expected, self.actual
        )
    }
}

impl std::error::Error for ConformanceFailure {}

pub(super) fn abbreviate(text: String) -> String {
    const MAX: usize = 300;
    if text.len() <= MAX {
        return text;
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} chars)", &text[..cut], text.len())
}

pub(super) fn describe(cmd: &Command) -> String {
    abbreviate(format!("{cmd:?}"))
}

pub(super) type CaseResult = Result<(), ConformanceFailure>;

/// One running case: the backend, the key prefix, and the keys to delete afterwards.
pub(super) struct Case<'a> {
    pub(super) backend: &'a dyn KvBackend,
    name: &'static str,
    pub(super) prefix: String,
    keys: Mutex<Vec<String>>,
}

impl<'a> Case<'a> {
    pub(super) fn new(backend: &'a dyn KvBackend, namespace: &str, name: &'static str) -> Self {
        Case {
            backend,
            name,
            prefix: format!("{{{namespace}}}:{name}:"),
            keys: Mutex::new(Vec::new()),
        }
    }

    /// A key under this case's prefix, remembered for cleanup.
    pub(super) fn key(&self, name: &str) -> String {
        let key = format!("{}{name}", self.prefix);
        if let Ok(mut keys) = self.keys.lock() {
            keys.push(key.clone());
        }
        key
    }

    pub(super) async fn cleanup(&self) {
        let keys = self.keys.lock().map(|k| k.clone()).unwrap_or_default();
        if !keys.is_empty() {
            // Best effort: a failed cleanup must not hide the case's own result.
            let _ = self.backend.execute(Command::Del { keys }).await;
        }
    }

    pub(super) fn fail(
        &self,
        command: String,
        expected: String,
        actual: String,
    ) -> ConformanceFailure {
        ConformanceFailure {
            case: self.name,
            command,
            expected: abbreviate(expected),
            actual: abbreviate(actual),
        }
    }

    /// Runs `cmd`, which must succeed; returns its reply.
    pub(super) async fn ok(&self, cmd: Command) -> Result<Value, ConformanceFailure> {
        let desc = describe(&cmd);
        self.backend
            .execute(cmd)
            .await
            .map_err(|e| self.fail(desc, "a reply".into(), format!("error {e}")))
    }

    /// Runs `cmd` and checks the reply equals `expected`.
    pub(super) async fn expect(&self, cmd: Command, expected: Value) -> CaseResult {
        let desc = describe(&cmd);
        match self.backend.execute(cmd).await {
            Ok(v) if v == expected => Ok(()),
            Ok(v) => Err(self.fail(desc, format!("{expected:?}"), format!("{v:?}"))),
            Err(e) => Err(self.fail(desc, format!("{expected:?}"), format!("error {e}"))),
        }
    }

    /// Runs `cmd` and checks it fails with `kind` and, when given, the Redis error `code`.
    pub(super) async fn expect_err(
        &self,
        cmd: Command,
        kind: ErrorKind,
        code: Option<&str>,
    ) -> Result<BackendError, ConformanceFailure> {
        let desc = describe(&cmd);
        let want = format!("a {kind} error with code {code:?}");
        match self.backend.execute(cmd).await {
            Err(e) if e.kind() == kind && (code.is_none() || e.code() == code) => Ok(e),
            Err(e) => Err(self.fail(
                desc,
                want,
                format!("{} error with code {:?}: {e}", e.kind(), e.code()),
            )),
            Ok(v) => Err(self.fail(desc, want, format!("{v:?}"))),
        }
    }

    /// A command line with `{name}` standing for this case's key `name`, read by the command
    /// table into its typed command (a line the table does not know is a failure: these
    /// lines test typed commands).
    pub(super) fn line(&self, line: &str) -> Result<Command, ConformanceFailure> {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(
                |word| match word.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    Some(name) => Bytes::from(self.key(name)),
                    None => Bytes::copy_from_slice(word.as_bytes()),
                },
            )
            .collect();
        match Command::from_args(&args) {
            Ok(Command::Raw { .. }) => Err(self.fail(
                line.to_owned(),
                "a command of the table".into(),
                "a raw command".into(),
            )),
            Ok(cmd) => Ok(cmd),
            Err(e) => Err(self.fail(line.to_owned(), "a command".into(), format!("{e}"))),
        }
    }

    /// Runs a [`line`](Self::line) and checks the reply equals `expected`.
    pub(super) async fn run(&self, line: &str, expected: Value) -> CaseResult {
        self.expect(self.line(line)?, expected).await
    }

    /// Runs a [`line`](Self::line) whose reply is an array in no particular order, and
    /// checks it holds `expected` in any order.
    pub(super) async fn run_unordered(&self, line: &str, expected: &[&str]) -> CaseResult {
        let reply = self.ok(self.line(line)?).await?;
        let mut got: Vec<Value> = match reply {
            Value::Array(items) => items,
            other => return Err(self.fail(line.into(), "an array".into(), format!("{other:?}"))),
        };
        let mut want: Vec<Value> = expected.iter().map(|s| b(s)).collect();
        let order = |v: &Value| format!("{v:?}");
        got.sort_by_key(order);
        want.sort_by_key(order);
        self.check(got == want, line, &format!("{want:?} in any order"), got)
    }

    /// Runs a [`line`](Self::line) and checks it fails with a server error whose line
    /// starts with `prefix`.
    pub(super) async fn run_err(&self, line: &str, prefix: &str) -> CaseResult {
        let cmd = self.line(line)?;
        match self.backend.execute(cmd).await {
            Err(e) if e.kind() == ErrorKind::Server && e.message().starts_with(prefix) => Ok(()),
            Err(e) => Err(self.fail(line.into(), format!("an error {prefix}…"), format!("{e}"))),
            Ok(v) => Err(self.fail(line.into(), format!("an error {prefix}…"), format!("{v:?}"))),
        }
    }

    /// Fails unless `cond`.
    pub(super) fn check(
        &self,
        cond: bool,
        command: &str,
        expected: &str,
        actual: impl fmt::Debug,
    ) -> CaseResult {
        if cond {
            Ok(())
        } else {
            Err(self.fail(
                command.to_owned(),
                expected.to_owned(),
                format!("{actual:?}"),
            ))
        }
    }

    /// Runs a batch, which must succeed, and checks the replies.
    pub(super) async fn expect_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
        expected: Vec<Value>,
    ) -> CaseResult {
        let desc = abbreviate(format!("batch(atomic={atomic}) {cmds:?}"));
        match self.backend.execute_batch(cmds, atomic).await {
            Ok(v) if v == expected => Ok(()),
            Ok(v) => Err(self.fail(desc, format!("{expected:?}"), format!("{v:?}"))),
            Err(e) => Err(self.fail(desc, format!("{expected:?}"), format!("error {e}"))),
        }
    }

    /// Runs a batch that must fail with a `Server` error.
    pub(super) async fn expect_batch_server_error(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> CaseResult {
        let desc = abbreviate(format!("batch(atomic={atomic}) {cmds:?}"));
        match self.backend.execute_batch(cmds, atomic).await {
            Err(e) if e.kind() == ErrorKind::Server => Ok(()),
            Err(e) => Err(self.fail(
                desc,
                "a server error".into(),
                format!("{} error: {e}", e.kind()),
            )),
            Ok(v) => Err(self.fail(desc, "a server error".into(), format!("{v:?}"))),
        }
    }
}

pub(super) fn b(s: &str) -> Value {
    Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
}

pub(super) fn set(key: &str, value: impl Into<Bytes>) -> Command {
    Command::Set {
        key: key.to_owned(),
        value: value.into(),
        options: SetOptions::default(),
    }
}

pub(super) fn set_with(
    key: &str,
    value: &'static str,
    expire_ms: Option<u64>,
    condition: Option<SetCondition>,
) -> Command {
    Command::Set {
        key: key.to_owned(),
        value: Bytes::from_static(value.as_bytes()),
        options: {
            let mut c = SetOptions::default();
            c.expire_ms = expire_ms.and_then(std::num::NonZeroU64::new);
            c.condition = condition;
            c
        },
    }
}

pub(super) fn get(key: &str) -> Command {
    Command::Get {
        key: key.to_owned(),
    }
}

pub(super) fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| (*k).to_owned()).collect()
}

pub(super) fn zadd(key: &str, members: &[(f64, &str)], options: ZaddOptions) -> Command {
    Command::Zadd {
        key: key.to_owned(),
        members: members.iter().map(|(s, m)| (*s, (*m).to_owned())).collect(),
        options,
    }
}

pub(super) fn zrange(key: &str, start: i64, stop: i64, rev: bool, with_scores: bool) -> Command {
    Command::Zrange {
        key: key.to_owned(),
        start,
        stop,
        rev,
        with_scores,
    }
}

pub(super) fn zbyscore(
    key: &str,
    min: ScoreBound,
    max: ScoreBound,
    rev: bool,
    with_scores: bool,
    limit: Option<(u64, u64)>,
) -> Command {
    Command::Zrangebyscore {
        key: key.to_owned(),
        min,
        max,
        rev,
        with_scores,
        limit: limit.map(|(offset, count)| Limit { offset, count }),
    }
}

pub(super) fn members(list: &[&str]) -> Value {
    Value::Array(list.iter().map(|m| b(m)).collect())
}

pub(super) fn scored(list: &[(&str, f64)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(m, s)| Value::Array(vec![b(m), Value::Double(*s)]))
            .collect(),
    )
}

/// A raw command that declares no key.
pub(super) fn raw(args: &[&str]) -> Command {
    raw_with_keys(args, Vec::new())
}

/// A raw command that declares `key` (so a cluster backend can route it).
pub(super) fn raw_on(args: &[&str], key: &str) -> Command {
    raw_with_keys(args, vec![key.to_owned()])
}

pub(super) fn raw_with_keys(args: &[&str], keys: Vec<String>) -> Command {
    Command::Raw {
        args: args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect(),
        keys,
        write: true,
        idempotent: false,
    }
}
