//! Lua scripts with caching: sent by SHA1 (EVALSHA), loaded again when the server forgot.

use std::sync::Arc;

use bytes::Bytes;

use crate::{Command, Error, Value};

use super::ResilientClient;

/// The hex SHA1 of a script's source, lower case: what `SCRIPT LOAD` returns and `EVALSHA`
/// takes.
pub fn script_sha1(source: &str) -> String {
    sha1_smol::Sha1::from(source.as_bytes())
        .digest()
        .to_string()
}

/// A Lua script, identified by the SHA1 of its source.
///
/// [`ResilientClient::eval`] sends `EVALSHA`; when the server answers NOSCRIPT (first use,
/// or it restarted) the client loads the script and runs it again. That is safe even for
/// non-idempotent scripts: NOSCRIPT means nothing ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    source: Arc<str>,
    sha1: String,
    idempotent: bool,
}

impl Script {
    /// A script from its Lua source. Not idempotent unless [`Script::idempotent`] says so.
    pub fn new(source: impl Into<Arc<str>>) -> Self {
        let source: Arc<str> = source.into();
        let sha1 = script_sha1(&source);
        Script {
            source,
            sha1,
            idempotent: false,
        }
    }

    /// Declares that running the script twice leaves the same state as running it once, so
    /// a timed-out run may be retried and queued runs may share a replay round trip.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// The Lua source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The hex SHA1 of the source, as Redis computes it.
    pub fn sha1(&self) -> &str {
        &self.sha1
    }

    /// Whether the script was declared idempotent.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The `EVALSHA` command that runs this script. Register the script with the client
    /// ([`ResilientClient::register_script`]) before queueing such commands through
    /// [`submit`](ResilientClient::submit), so replays can reload it.
    pub fn command(&self, keys: Vec<String>, args: Vec<Bytes>) -> Command {
        Command::Evalsha {
            sha1: self.sha1.clone(),
            keys,
            args,
            idempotent: self.idempotent,
        }
    }
}

impl ResilientClient {
    /// Makes the client remember `script`'s source, so an `EVALSHA` of it (plain, in a
    /// pipeline, or replayed from the queue) survives a server that lost its script cache.
    pub fn register_script(&self, script: &Script) {
        self.inner.register_script(&script.sha1, &script.source);
    }

    /// Runs `script` with `keys` and `args` through the breaker (no retries). The reply
    /// follows Redis's Lua conversion rules.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a script error is `Server`. A `NOSCRIPT` is answered by
    /// loading the script and running it again, never returned.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn eval(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Bytes>,
    ) -> Result<Value, Error> {
        self.register_script(script);
        self.inner.call(script.command(keys, args)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_redis() {
        // redis-cli SCRIPT LOAD "return 1" -> e0e1f9fabfc9d4800c877a703b823ac0578ff8db
        assert_eq!(
            Script::new("return 1").sha1(),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }
}
