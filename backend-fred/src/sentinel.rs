//! Sentinel mode: fred's own sentinel support, configured from the shared
//! [`SentinelConfig`].
//!
//! fred resolves the master through the sentinels on every connect *and every reconnect*
//! (`SENTINEL GET-MASTER-ADDR-BY-NAME` on the first sentinel that accepts a connection,
//! then `ROLE` on the node it names, which must say `master`). So when the master dies,
//! fred's reconnect loop (20 ms to 200 ms apart, forever: see `connect`) keeps asking the
//! sentinels, and connects to the new master as soon as they name it; the client is never
//! recreated. Each attempt is bounded by `socket_connect_timeout` (connect) and
//! `socket_timeout` (fred's internal commands).
//!
//! A master demoted without its connections being closed answers writes with `READONLY`
//! (or `MASTERDOWN`): those replies make fred drop the connection and reconnect through
//! the sentinels (fred feature `custom-reconnect-errors`, `reconnect_errors`). The call
//! that got the reply fails; fred never re-sends it (`max_command_attempts = 1`).
//!
//! Sentinels get the sentinel credentials of [`SentinelConfig`] (fred feature
//! `sentinel-auth`), the master the config's `username` and `password`.

use fred::prelude::{Server, ServerConfig};
use fred::types::config::ReconnectError;
use resilience_core::{BackendError, ErrorKind, SentinelConfig};

/// fred's server configuration for `sentinel`.
pub(crate) fn server_config(sentinel: &SentinelConfig) -> Result<ServerConfig, BackendError> {
    if sentinel.master_name.is_empty() || sentinel.nodes.is_empty() {
        return Err(BackendError::new(
            ErrorKind::InvalidInput,
            "sentinel mode needs a master name and at least one sentinel address: set the SentinelConfig's master_name (the name the sentinels monitor) and nodes (each sentinel's host and port)",
        ));
    }
    Ok(ServerConfig::Sentinel {
        hosts: sentinel
            .nodes
            .iter()
            .map(|(host, port)| Server::new(host.clone(), *port))
            .collect(),
        service_name: sentinel.master_name.clone(),
        username: sentinel.username.clone(),
        password: sentinel.password.clone(),
    })
}

/// Error replies that make fred reconnect (through the sentinels) in sentinel mode: a
/// demoted master's. None for a single server, where reconnecting would not help.
pub(crate) fn reconnect_errors(sentinel: bool) -> Vec<ReconnectError> {
    if sentinel {
        vec![ReconnectError::ReadOnly, ReconnectError::MasterDown]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sentinel_config_maps_to_fred_with_sentinel_credentials() {
        let config = SentinelConfig::default()
            .with_master_name("mymaster")
            .with_nodes(vec![("s1".into(), 26379), ("s2".into(), 26380)])
            .with_username("watcher")
            .with_password("sentinel-pw");
        match server_config(&config).unwrap() {
            ServerConfig::Sentinel {
                hosts,
                service_name,
                username,
                password,
            } => {
                assert_eq!(service_name, "mymaster");
                assert_eq!(hosts.len(), 2);
                assert_eq!(hosts[1].port, 26380);
                assert_eq!(username.as_deref(), Some("watcher"));
                assert_eq!(password.as_deref(), Some("sentinel-pw"));
            }
            other => panic!("{other:?}"),
        }
        assert!(server_config(&SentinelConfig::default()).is_err());
        assert_eq!(reconnect_errors(true).len(), 2);
        assert!(reconnect_errors(false).is_empty());
    }
}
