//! Redis Cluster mode: fred's clustered client, and routing by the core's notion of a
//! command's keys.
//!
//! fred follows `MOVED` by itself (re-reading the slot map). A redirect uses one of the
//! command's *redirections* (per-command `max_redirections`, raised from 0 to
//! [`MAX_REDIRECTIONS`] in cluster mode) **and** one more write *attempt*: fred writes the
//! command again to the new owner and fails it with "Too many failed write attempts" when
//! none is left. With the single-server setting of one attempt, `MOVED` would never be
//! followed, so in cluster mode each command gets [`CLUSTER_ATTEMPTS`] (2) attempts;
//! `max_command_attempts = 1` stays in the connection settings. The price is the same as
//! with redis-rs' cluster connection: a command in flight when its connection drops may
//! be re-sent once, so a write the server applied just before the drop can be applied
//! twice. Everything else (timeouts, `fail_fast`, the reconnect policy) is configured as
//! for one server (see the `connect` module).
//!
//! ## Known limit: `ASK` is not followed
//!
//! While a slot migrates, its old owner answers `ASK` for keys it no longer holds. fred
//! 10's `ASKING` step fails here ("Max attempts reached", whatever the attempts: its reply
//! is read outside the connection's reader task) and leaves that connection's replies out
//! of step, so such a command fails with `Unavailable` and later ones on the connection
//! may time out until it is rebuilt. It only happens during a live resharding, for keys of the migrating
//! slot; once the slot has moved, `MOVED` is followed. The redis-rs backend follows both.
//!
//! ## Known limit: a lost node pauses the whole client
//!
//! fred 10 reconnects a cluster client as a whole: losing one node's connection starts a
//! full re-sync (`CLUSTER SLOTS`, then connect to every master), and until it succeeds the
//! client is not `Connected`, so every command fails fast with `Unavailable`, whatever its
//! slot. While a dead master is still listed as the owner of its slots (until its replica
//! is promoted, about `cluster-node-timeout` plus a second), the re-sync keeps failing, so
//! commands for healthy shards fail too during that window. Per-shard breakers
//! ([`ShardedClient`](resilience_core::ShardedClient)) still keep the dead shard's calls
//! from waiting, and service on every shard returns when the re-sync succeeds. The
//! redis-rs backend does not have this limit.
//!
//! Routing: fred hashes the first string argument of a custom command by default, which is
//! wrong for `EVALSHA` (the SHA1 comes first), `EVAL` and raw commands. So in cluster mode
//! every command with keys is sent with `ClusterHash::Custom(slot of its first key)`
//! (the core's [`hash_slot`]); keyless commands go to any node. A batch is one fred
//! pipeline; in it, keyless commands (`MULTI`, `EXEC`, `SCRIPT LOAD`) use the slot of the
//! batch's first keyed command, so a `MULTI`/`EXEC` transaction on hash-tagged keys, with
//! its script loads, runs on that slot's master. A single `SCRIPT LOAD` is sent to every
//! master (`script_load_cluster`), since a later `EVALSHA` may run on any of them.

use fred::prelude::{Server, ServerConfig};
use fred::types::ClusterHash;
use fred::types::config::ClusterDiscoveryPolicy;
use resilience_core::cluster::hash_slot;
use resilience_core::{BackendError, Command, ConnectionConfig, ErrorKind};

use crate::translate::Wire;

/// Write attempts per command in cluster mode: the command, and its resend after a `MOVED`.
pub(crate) const CLUSTER_ATTEMPTS: u32 = 2;

/// `MOVED` / `ASK` redirects one command may follow in cluster mode.
pub(crate) const MAX_REDIRECTIONS: u32 = 3;

/// fred's server configuration for the cluster seeds in `cfg`.
pub(crate) fn server_config(cfg: &ConnectionConfig) -> Result<ServerConfig, BackendError> {
    if cfg.db != 0 {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            "a Redis Cluster has only database 0",
        ));
    }
    Ok(ServerConfig::Clustered {
        hosts: cfg
            .cluster_nodes
            .iter()
            .map(|(host, port)| Server::new(host.clone(), *port))
            .collect(),
        policy: ClusterDiscoveryPolicy::default(),
    })
}

/// The slot a command must run on: its first key's.
pub(crate) fn slot_of(cmd: &Command) -> Option<u16> {
    cmd.keys().first().map(|k| hash_slot(k.as_bytes()))
}

/// The slot of a batch: the first keyed command's.
pub(crate) fn batch_slot(cmds: &[Command]) -> Option<u16> {
    cmds.iter().find_map(slot_of)
}

/// Sends `wire` to `slot` (when there is one).
pub(crate) fn route(wire: &mut Wire, slot: Option<u16>) {
    if let Some(slot) = slot {
        wire.cmd.cluster_hash = ClusterHash::Custom(slot);
    }
}

/// `SCRIPT LOAD` on the master of every shard (one slot of each, from fred's cached slot
/// map), all at once. The reply is the first master's (the SHA1); any failure fails it.
pub(crate) async fn script_load_everywhere(
    client: &fred::prelude::Client,
    commands: &fred::clients::WithOptions<fred::prelude::Client>,
    script: String,
) -> Result<resilience_core::Value, BackendError> {
    use fred::interfaces::{ClientLike, ClusterInterface};
    let state = client.cached_cluster_state().ok_or_else(|| {
        BackendError::new(ErrorKind::Unavailable, "fred has no cluster slot map yet")
    })?;
    let mut slots: Vec<u16> = Vec::new();
    let mut seen: Vec<&fred::prelude::Server> = Vec::new();
    for range in state.slots() {
        if !seen.contains(&&range.primary) {
            seen.push(&range.primary);
            slots.push(range.start);
        }
    }
    let loads = slots.into_iter().map(|slot| {
        let wire = crate::translate::translate(Command::ScriptLoad {
            script: script.clone(),
        })
        .map_err(|msg| BackendError::new(ErrorKind::InvalidInput, msg));
        async move {
            let mut wire = wire?;
            route(&mut wire, Some(slot));
            let frame = commands
                .custom_raw::<fred::types::Value>(wire.cmd, wire.args)
                .await
                .map_err(|e| crate::classify_error(&e))?;
            crate::reply::frame_to_value(frame)
        }
    });
    let mut replies = futures::future::try_join_all(loads).await?;
    if replies.is_empty() {
        return Err(BackendError::new(
            ErrorKind::Unavailable,
            "fred's cluster slot map names no master",
        ));
    }
    Ok(replies.swap_remove(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;

    #[test]
    fn evalsha_is_routed_by_its_first_key_not_its_sha() {
        let cmd = Command::Evalsha {
            sha1: "e0e1f9fabfc9d4800c877a703b823ac0578ff8db".into(),
            keys: vec!["{agent-1}:a".into(), "{agent-1}:b".into()],
            args: vec![Bytes::from_static(b"x")],
            idempotent: true,
        };
        let slot = slot_of(&cmd);
        assert_eq!(slot, Some(hash_slot(b"agent-1")));
        let mut wire = crate::translate::translate(cmd).unwrap();
        route(&mut wire, slot);
        assert_eq!(
            wire.cmd.cluster_hash,
            ClusterHash::Custom(hash_slot(b"agent-1"))
        );
        assert_eq!(
            batch_slot(&[Command::Ping, Command::Get { key: "foo".into() }]),
            Some(12182)
        );
        assert_eq!(batch_slot(&[Command::Ping]), None);
    }

    #[test]
    fn cluster_seeds_become_a_clustered_config() {
        let cfg =
            ConnectionConfig::from_url("redis://127.0.0.1:7000?cluster=127.0.0.1:7001").unwrap();
        match server_config(&cfg).unwrap() {
            ServerConfig::Clustered { hosts, .. } => assert_eq!(hosts.len(), 2),
            other => panic!("{other:?}"),
        }
    }
}
