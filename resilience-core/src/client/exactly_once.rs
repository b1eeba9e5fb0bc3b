//! Exactly once: a non-idempotent write, or a batch of them, applied once however often
//! it is sent, with a definite answer.
//!
//! The guide is on [`ExactlyOnceConfig`].

use std::time::Duration;

use bytes::Bytes;

use crate::wire::ArgSink;
use crate::{Command, Error, Value};

use super::ResilientClient;
use super::script::Script;

/// The record lifetime by default: a day.
pub const DEFAULT_RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

/// The exactly-once mode of a client
/// ([`ResilientClientBuilder::exactly_once`](crate::ResilientClientBuilder::exactly_once)),
/// and what [`ResilientClient::execute_once`] does.
///
/// A write whose reply was lost (a timeout, a dropped connection) may or may not have
/// run. For `SET` that does not matter, so it is retried; for `INCR`, `LPUSH` or `XADD *`
/// it does, so it is not, and the caller is left with `Timeout`: maybe. In this mode the
/// write carries a write id, and runs inside a script that, in one atomic step, applies it
/// and records its id and its reply under a record key next to the data:
///
/// ```text
/// record missing  ->  apply the commands, store msgpack(replies) at the record (PX ttl)
/// record present  ->  apply nothing, answer the recorded replies
/// ```
///
/// So the wrapped write is idempotent: the client retries it after a timeout like any
/// idempotent command, queues it during an outage, and a durable journal replays it after
/// a crash, each time with the same id. The first send that reaches the server applies
/// it; every later one gets the recorded reply, marked
/// [`applied_earlier`](Once::applied_earlier). `Timeout` is left only when the server
/// stays out of reach until the call gives up.
///
/// # What it promises
///
/// - Within the record's lifetime ([`ExactlyOnceConfig::record_ttl`], a day by default):
///   a retry that arrives after the record expired applies the write again.
/// - On one logical database: the record lives beside the data, in the same database,
///   and on a cluster in the same hash slot (the data key's hash tag, or the data key
///   itself as the tag: `counter` gets `counter{counter}:once:<id>`). Every key of one
///   call must share that slot, as for any script.
/// - A failover to a replica that had not received the write yet loses the record with
///   the write: the retry then applies it on the new master, once.
///
/// Each record is a key (the data key twice, when it has no hash tag, and the id) holding
/// the msgpack of the replies, with an expiry: about 250 bytes of server memory for an
/// `INCRBY` on a 35-byte key (`bench --scenario once`), for the record's lifetime. The
/// script costs the server about 1.6 times a plain `INCRBY`'s CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct ExactlyOnceConfig {
    /// How long a write's record (and so its protection against a second application)
    /// lasts. Default a day; at least a millisecond.
    pub record_ttl: Duration,
}

impl Default for ExactlyOnceConfig {
    fn default() -> Self {
        ExactlyOnceConfig {
            record_ttl: DEFAULT_RECORD_TTL,
        }
    }
}

/// A reply, and whether the write had been applied by an earlier send of the same write
/// id (this send applied nothing and returned the recorded reply).
#[derive(Clone, Debug, PartialEq)]
pub struct Once<T> {
    /// The write's reply, as when it was applied.
    pub value: T,
    /// `true` when an earlier send applied the write.
    pub applied_earlier: bool,
}

/// A write's unique id: a ULID, 26 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WriteId(String);

impl WriteId {
    /// A fresh id.
    pub fn new() -> WriteId {
        WriteId(ulid::Ulid::generate().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for WriteId {
    fn default() -> Self {
        WriteId::new()
    }
}

/// The script: applies the commands once per record, and answers the recorded replies
/// after that.
///
/// `KEYS[1]`: the record; `KEYS[2..]`: the commands' keys (declared for the cluster and
/// the ACL, used by the commands themselves). `ARGV[1]`: the record's lifetime in ms;
/// `ARGV[2]`: the number of commands; then each command as its argument count and its
/// arguments. Answers `{applied_earlier (0|1), {reply…}}`.
const SOURCE: &str = r#"
local recorded = redis.call('GET', KEYS[1])
if recorded then
  return {1, cmsgpack.unpack(recorded)}
end
local replies, at = {}, 3
for i = 1, tonumber(ARGV[2]) do
  local argc = tonumber(ARGV[at])
  replies[i] = redis.call(unpack(ARGV, at + 1, at + argc))
  at = at + 1 + argc
end
redis.call('SET', KEYS[1], cmsgpack.pack(replies), 'PX', ARGV[1])
return {0, replies}
"#;

/// The exactly-once script (idempotent: that is its point).
pub(crate) fn script() -> Script {
    Script::new(SOURCE).idempotent(true)
}

/// The record key of write `id` whose first key is `key`: in `key`'s hash slot, and
/// starting with `key` (so a user limited to a key prefix may write it) where the key's
/// shape allows.
///
/// # Errors
///
/// `InvalidInput` for a key with a `}` but no hash tag: no tag can hold it whole.
pub(crate) fn record_key(key: &str, id: &WriteId) -> Result<String, Error> {
    match crate::cluster::hash_tag(key.as_bytes()) {
        Some(_) => Ok(format!("{key}:once:{}", id.as_str())),
        // `key{key}…`: the first braces hold the whole key, so the slot is the key's.
        None if !key.contains(['{', '}']) => Ok(format!("{key}{{{key}}}:once:{}", id.as_str())),
        // An opening brace that makes no tag: the key as the tag, at the front.
        None if !key.contains('}') => Ok(format!("{{{key}}}:once:{}", id.as_str())),
        None => Err(Error::InvalidInput(format!(
            "key {key:?} has a closing brace but no hash tag, so no exactly-once record can \
             share its slot: give it a hash tag ({{tag}}rest)"
        ))),
    }
}

/// `cmds` as one exactly-once script call under write `id`.
///
/// # Errors
///
/// `InvalidInput` for an empty batch, a command without keys (the record needs a slot),
/// a blocking command or a script (neither can run inside a script).
pub(crate) fn wrap(
    cmds: &[Command],
    id: &WriteId,
    config: &ExactlyOnceConfig,
) -> Result<Command, Error> {
    let first = cmds.iter().flat_map(Command::keys).next().ok_or_else(|| {
        Error::InvalidInput(
            "an exactly-once write needs a command with a key: its record lives in that key's slot"
                .to_owned(),
        )
    })?;
    let mut keys = vec![record_key(first, id)?];
    let mut args = vec![
        Bytes::from(config.record_ttl.as_millis().max(1).to_string()),
        Bytes::from(cmds.len().to_string()),
    ];
    for cmd in cmds {
        if cmd.blocks_for().is_some()
            || matches!(
                cmd,
                Command::Eval { .. } | Command::Evalsha { .. } | Command::ScriptLoad { .. }
            )
        {
            return Err(Error::InvalidInput(format!(
                "{} cannot be made exactly-once: it cannot run inside a script",
                cmd.name()
            )));
        }
        for key in cmd.keys() {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        let mut words = ArgList(Vec::new());
        cmd.write_args(&mut words).map_err(Error::from)?;
        args.push(Bytes::from(words.0.len().to_string()));
        args.extend(words.0);
    }
    Ok(Command::Evalsha {
        sha1: script().sha1().to_owned(),
        keys,
        args,
        idempotent: true,
    })
}

impl ResilientClient {
    /// Runs a write exactly once (see [`ExactlyOnceConfig`]): under a fresh write id,
    /// retried with that same id after a timeout or a lost connection by the client's
    /// retry policy, the first send that reaches the server applying it and any later
    /// one answering its recorded reply ([`Once::applied_earlier`]).
    ///
    /// # Errors
    ///
    /// As [`execute_with_retry`](Self::execute_with_retry); `Timeout` only when the
    /// server did not answer any send before the retries ran out. `InvalidInput` for a
    /// command without keys, a blocking command or a script.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the write applied once or not at all; sending the same
    /// command again is a new write (a new id).
    pub async fn execute_once(&self, cmd: Command) -> Result<Once<Value>, Error> {
        let once = self.execute_batch_once(vec![cmd]).await?;
        let mut values = once.value;
        match values.pop() {
            Some(value) if values.is_empty() => Ok(Once {
                value,
                applied_earlier: once.applied_earlier,
            }),
            _ => Err(Error::Server(crate::BackendError::new(
                crate::ErrorKind::Server,
                "unexpected exactly-once reply: not one reply",
            ))),
        }
    }

    /// [`execute_once`](Self::execute_once) for a batch: every command applied once, as
    /// one atomic step (a script), under one write id. Every key must share one hash slot
    /// on a cluster.
    ///
    /// # Errors
    ///
    /// As [`execute_once`](Self::execute_once); `InvalidInput` for an empty batch.
    ///
    /// # Cancel safety
    ///
    /// As [`execute_once`](Self::execute_once).
    pub async fn execute_batch_once(&self, cmds: Vec<Command>) -> Result<Once<Vec<Value>>, Error> {
        let config = self.inner.exactly_once.unwrap_or_default();
        let wrapped = wrap(&cmds, &WriteId::new(), &config)?;
        let reply = self
            .execute_with_retry(wrapped, self.retry_policy())
            .await?;
        unwrap(reply, cmds.len())
    }
}

/// A command's arguments as the script passes them on.
struct ArgList(Vec<Bytes>);

impl ArgSink for ArgList {
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

/// The script's answer, `{applied_earlier, {reply…}}`, as the replies of `count`
/// commands.
pub(crate) fn unwrap(reply: Value, count: usize) -> Result<Once<Vec<Value>>, Error> {
    let bad = |what: String| {
        Error::Server(crate::BackendError::new(
            crate::ErrorKind::Server,
            format!("unexpected exactly-once reply: {what}"),
        ))
    };
    let Value::Array(mut parts) = reply else {
        return Err(bad(format!("{reply:?}")));
    };
    let (Some(replies), Some(flag), true) = (parts.pop(), parts.pop(), parts.is_empty()) else {
        return Err(bad("not two parts".to_owned()));
    };
    let applied_earlier = match flag {
        Value::Int(0) => false,
        Value::Int(1) => true,
        other => return Err(bad(format!("flag {other:?}"))),
    };
    let values = match replies {
        Value::Array(values) => values,
        // An empty Lua table reads as an empty array or, through msgpack, a map.
        Value::Map(pairs) if pairs.is_empty() => Vec::new(),
        other => return Err(bad(format!("replies {other:?}"))),
    };
    if values.len() != count {
        return Err(bad(format!(
            "{} replies for {count} commands",
            values.len()
        )));
    }
    Ok(Once {
        value: values,
        applied_earlier,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::hash_slot;

    #[test]
    fn a_record_shares_its_keys_slot_and_prefix() {
        let id = WriteId::new();
        for key in ["counter", "app:{agent-7}:count", "{tag}rest", "a{b"] {
            let record = record_key(key, &id).unwrap();
            assert_eq!(
                hash_slot(record.as_bytes()),
                hash_slot(key.as_bytes()),
                "{key} -> {record}"
            );
            assert!(record.ends_with(id.as_str()));
        }
        assert!(
            record_key("app:counter", &id)
                .unwrap()
                .starts_with("app:counter")
        );
        assert!(
            record_key("app:{a}:x", &id)
                .unwrap()
                .starts_with("app:{a}:x")
        );
        for key in ["x{}y", "a}b"] {
            assert!(matches!(record_key(key, &id), Err(Error::InvalidInput(_))));
        }
    }

    #[test]
    fn a_batch_becomes_one_idempotent_script_call() {
        let id = WriteId::new();
        let cmds = vec![
            Command::Incrby {
                key: "{a}n".into(),
                delta: 2,
            },
            Command::Lpush {
                key: "{a}l".into(),
                elements: vec![Bytes::from_static(b"x")],
            },
        ];
        let wrapped = wrap(&cmds, &id, &ExactlyOnceConfig::default()).unwrap();
        assert!(wrapped.is_idempotent());
        let Command::Evalsha { keys, args, .. } = &wrapped else {
            panic!("{wrapped:?}")
        };
        assert_eq!(keys[1..], ["{a}n".to_owned(), "{a}l".to_owned()]);
        let words: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        assert_eq!(
            words,
            [
                &b"86400000"[..],
                b"2",
                b"3",
                b"INCRBY",
                b"{a}n",
                b"2",
                b"3",
                b"LPUSH",
                b"{a}l",
                b"x"
            ]
        );
    }

    #[test]
    fn writes_a_script_cannot_hold_are_refused() {
        let id = WriteId::new();
        let config = ExactlyOnceConfig::default();
        assert!(matches!(
            wrap(&[Command::Ping], &id, &config),
            Err(Error::InvalidInput(_))
        ));
        let blpop = Command::from_args(
            &Command::SPECS
                .iter()
                .find(|s| s.name == "BLPOP")
                .unwrap()
                .example_args(),
        )
        .unwrap();
        assert!(matches!(
            wrap(&[blpop], &id, &config),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn replies_unwrap_with_their_flag() {
        let reply = Value::Array(vec![Value::Int(1), Value::Array(vec![Value::Int(7)])]);
        assert_eq!(
            unwrap(reply, 1).unwrap(),
            Once {
                value: vec![Value::Int(7)],
                applied_earlier: true
            }
        );
        assert!(unwrap(Value::Okay, 1).is_err());
        let two = Value::Array(vec![Value::Int(0), Value::Array(vec![Value::Int(7)])]);
        assert!(unwrap(two, 2).is_err());
    }
}
