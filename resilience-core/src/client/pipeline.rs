//! Pipelines (one round trip) and transactions (one round trip, `MULTI`/`EXEC`).

use crate::retry::RetryPolicy;
use crate::{Command, Error, Value};

use super::ResilientClient;

/// Commands sent together in one round trip, through the breaker, as one call.
///
/// A pipeline never reports a silent partial success: an error reply to any command fails
/// the whole call. A transaction ([`ResilientClient::transaction`]) also applies all or none
/// of its commands (up to Redis's own rule that a command failing *at run time* inside
/// `EXEC` does not undo the others).
#[derive(Debug)]
#[must_use = "a pipeline does nothing until executed"]
pub struct Pipeline {
    client: ResilientClient,
    commands: Vec<Command>,
    atomic: bool,
}

impl Pipeline {
    /// Adds a command.
    pub fn add_command(mut self, cmd: Command) -> Self {
        self.commands.push(cmd);
        self
    }

    /// Adds a command through a mutable reference (for loops).
    pub fn push(&mut self, cmd: Command) -> &mut Self {
        self.commands.push(cmd);
        self
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether no command is queued.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Whether this is a `MULTI`/`EXEC` transaction.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    /// Sends the commands; replies in command order. An empty pipeline sends nothing.
    ///
    /// # Errors
    ///
    /// As [`ResilientClient::execute`], for the batch as a whole (one error for the round trip).
    ///
    /// # Cancel safety
    ///
    /// As [`ResilientClient::execute`]; an atomic batch (`MULTI`/`EXEC`) runs entirely or not at
    /// all.
    pub async fn execute(self) -> Result<Vec<Value>, Error> {
        if self.commands.is_empty() {
            return Ok(Vec::new());
        }
        self.client
            .inner
            .call_batch(self.commands, self.atomic)
            .await
    }

    /// Sends the commands, retrying the whole batch with `policy` while the error is
    /// retryable for every command in it (a timeout is retried only if all are idempotent).
    ///
    /// # Errors
    ///
    /// The last attempt's error, once the policy or the retry decision stops, or
    /// `RetryBudgetExhausted` with it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the retries; an attempt in flight is abandoned as with
    /// [`ResilientClient::execute`].
    pub async fn execute_with_retry(self, policy: &RetryPolicy) -> Result<Vec<Value>, Error> {
        if self.commands.is_empty() {
            return Ok(Vec::new());
        }
        let idempotent = self.commands.iter().all(Command::is_idempotent);
        let inner = &self.client.inner;
        let (commands, atomic) = (&self.commands, self.atomic);
        inner
            .with_retries(
                policy,
                |e| inner.retry_decision.may_retry(e, idempotent),
                || inner.call_batch(commands.clone(), atomic),
            )
            .await
    }
}

impl ResilientClient {
    /// An empty pipeline: commands sent in one round trip, not atomically.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline {
            client: self.clone(),
            commands: Vec::new(),
            atomic: false,
        }
    }

    /// An empty transaction: commands sent in one round trip inside `MULTI`/`EXEC`.
    pub fn transaction(&self) -> Pipeline {
        Pipeline {
            client: self.clone(),
            commands: Vec::new(),
            atomic: true,
        }
    }
}
