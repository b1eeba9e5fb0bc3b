//! What the unit tests beside the code need of a backend: a few keys in a map.
//!
//! The in-memory Redis is its own crate, which depends on this one, so unit tests here
//! cannot use it; integration tests (`tests/`) do.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{BackendError, Command, KvBackend, Value};

/// `GET`, `SET` (no options), `DEL`, `EXISTS` and `PING` over a map; any other command is
/// a server error, as an unknown command is on Redis.
#[derive(Debug, Default)]
pub(crate) struct MapBackend {
    keys: Mutex<HashMap<String, Bytes>>,
}

impl MapBackend {
    pub(crate) fn new() -> Self {
        MapBackend::default()
    }

    fn apply(&self, cmd: Command) -> Result<Value, BackendError> {
        let mut keys = self
            .keys
            .lock()
            .map_err(|_| BackendError::from_reply("ERR poisoned"))?;
        Ok(match cmd {
            Command::Ping => Value::Status("PONG".into()),
            Command::Get { key } => keys.get(&key).cloned().map_or(Value::Nil, Value::Bytes),
            Command::Set { key, value, .. } => {
                keys.insert(key, value);
                Value::Okay
            }
            Command::Del { keys: del } => {
                Value::Int(del.iter().filter(|k| keys.remove(*k).is_some()).count() as i64)
            }
            Command::Exists { keys: asked } => {
                Value::Int(asked.iter().filter(|k| keys.contains_key(*k)).count() as i64)
            }
            other => {
                return Err(BackendError::from_reply(&format!(
                    "ERR unknown command '{}'",
                    other.name()
                )));
            }
        })
    }
}

#[async_trait]
impl KvBackend for MapBackend {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        self.apply(cmd)
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        _atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        cmds.into_iter().map(|cmd| self.apply(cmd)).collect()
    }

    fn name(&self) -> &'static str {
        "map"
    }
}
