//! [`ScriptContext`]: what a native script runs its commands through.

use resilience_core::{BackendError, Command, Value};
use tokio::time::Instant;

use super::exec;
use super::store::Keyspace;

/// What a native script sees: the keyspace, inside the backend's critical section.
pub struct ScriptContext<'a> {
    keys: &'a mut Keyspace,
    now: Instant,
}

impl std::fmt::Debug for ScriptContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptContext").finish_non_exhaustive()
    }
}

impl<'a> ScriptContext<'a> {
    pub(crate) fn new(keys: &'a mut Keyspace, now: Instant) -> Self {
        ScriptContext { keys, now }
    }

    /// Runs `cmd` at once, atomically with the rest of the script (`redis.call`). Returns
    /// the command's canonical reply or its error. Scripting commands (`EVAL`, `EVALSHA`,
    /// `SCRIPT LOAD`) are refused, as Redis refuses them inside a script.
    pub fn call(&mut self, cmd: Command) -> Result<Value, BackendError> {
        match cmd {
            Command::Eval { .. } | Command::Evalsha { .. } | Command::ScriptLoad { .. } => Err(
                BackendError::from_reply("ERR This Redis command is not allowed from script"),
            ),
            other => exec::apply(self.keys, other, self.now),
        }
    }
}
