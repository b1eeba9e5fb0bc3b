//! [`ReadPolicy`]: which node of a shard answers a read, per client and per call.
//!
//! A Redis Cluster shard is a master and its replicas. Writes always go to the master;
//! a read may go to a replica, which takes load off the master at the price of
//! replication lag (a replica can answer with a value a moment older than the master's).
//!
//! The client's policy is [`ConnectionConfig::read_policy`](crate::ConnectionConfig::read_policy)
//! (URL parameter `read_from=primary|prefer_replica|replica`); one call, or every call of
//! a block of code, can override it with [`ReadPolicy::scope`].
//!
//! Only commands that read keys and change nothing
//! ([`Command::is_read_only`](crate::Command::is_read_only)) may go to a replica, alone or
//! as a pipeline of such commands; a transaction (`MULTI`/`EXEC`) always goes to the master.

use std::future::Future;

tokio::task_local! {
    /// The policy [`ReadPolicy::scope`] set for the calls of the future it runs.
    static CALL_POLICY: ReadPolicy;
}

/// Which node of a shard answers a read.
///
/// | policy | a read goes to | no replica reachable |
/// |---|---|---|
/// | `Primary` (default) | the master | — |
/// | `PreferReplica` | a replica, spread round-robin | the master (counted as a fallback) |
/// | `Replica` | a replica, spread round-robin | fails with `Unavailable` |
///
/// A replica that fails a call (not reachable, or no reply in time) is left out for a
/// second and the slot map is read again, so reads move to the other replicas, or to the
/// master, at once; a failover that promotes a replica makes it the master on the next
/// slot map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadPolicy {
    /// Every command goes to the shard's master.
    #[default]
    Primary,
    /// Reads go to a replica; to the master when none is reachable.
    PreferReplica,
    /// Reads go to a replica only; `Unavailable` when none is reachable.
    Replica,
}

impl ReadPolicy {
    /// Parses the URL form: `primary`, `prefer_replica` or `replica` (`master` and
    /// `replica_preferred` are accepted too).
    pub fn parse(text: &str) -> Option<ReadPolicy> {
        match text {
            "primary" | "master" => Some(ReadPolicy::Primary),
            "prefer_replica" | "replica_preferred" => Some(ReadPolicy::PreferReplica),
            "replica" => Some(ReadPolicy::Replica),
            _ => None,
        }
    }

    /// The URL form (`primary`, `prefer_replica`, `replica`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReadPolicy::Primary => "primary",
            ReadPolicy::PreferReplica => "prefer_replica",
            ReadPolicy::Replica => "replica",
        }
    }

    /// Runs `work` with this policy instead of the client's for every call it makes (on
    /// this task): the per-call override.
    ///
    /// ```no_run
    /// # use resilience_core::{ReadPolicy, ResilientClient};
    /// # async fn demo(client: &ResilientClient) -> Result<(), resilience_core::Error> {
    /// // This one read may be answered by a replica, whatever the client's policy.
    /// let value = ReadPolicy::PreferReplica.scope(client.get("user:1")).await?;
    /// # let _ = value; Ok(()) }
    /// ```
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CALL_POLICY.scope(self, work).await
    }

    /// The policy a [`scope`](Self::scope) around the current task set, if any.
    #[inline]
    pub(crate) fn of_this_call() -> Option<ReadPolicy> {
        CALL_POLICY.try_with(|policy| *policy).ok()
    }
}

impl std::fmt::Display for ReadPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints() {
        for policy in [
            ReadPolicy::Primary,
            ReadPolicy::PreferReplica,
            ReadPolicy::Replica,
        ] {
            assert_eq!(ReadPolicy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(ReadPolicy::parse("nearest"), None);
    }

    #[tokio::test]
    async fn a_scope_overrides_only_inside_it() {
        assert_eq!(ReadPolicy::of_this_call(), None);
        let inside = ReadPolicy::Replica
            .scope(async { ReadPolicy::of_this_call() })
            .await;
        assert_eq!(inside, Some(ReadPolicy::Replica));
        assert_eq!(ReadPolicy::of_this_call(), None);
    }
}
