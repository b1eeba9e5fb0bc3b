//! Sentinel mode: find the master through the sentinels, and follow it after a failover.
//!
//! redis-rs' own sentinel client resolves the master once and then keeps talking to that
//! address forever (upstream issue #1438), so this module does the following itself:
//!
//! - **Resolving.** [`Sentinels::master`] asks each sentinel in turn
//!   `SENTINEL GET-MASTER-ADDR-BY-NAME <name>`, each on a fresh connection bounded by
//!   `socket_connect_timeout` (connect and answer), and takes the first address given.
//!   Sentinels get the sentinel credentials of [`SentinelConfig`], never the data nodes'.
//! - **Following.** [`Follower`] is a background task per backend. A call that fails in a
//!   way a failover would cause (`Unavailable`, `Timeout`, or a `READONLY` / `MASTERDOWN`
//!   reply from a demoted master) reports it ([`Follower::suspect`]); the task then asks
//!   the sentinels every [`POLL`] for as long as calls keep failing (and at most
//!   [`POLL_FOR`] after the last reported failure). When they name another master, the
//!   connector switches every later call to a fresh connection there. A successful call
//!   ends the polling.
//!
//! Calls never wait for the sentinels: each keeps its one `socket_timeout` deadline and
//! fails like any call to an unreachable server until the switch is made. So during a
//! failover the breaker sees the outage as usual, and the first call after the switch
//! (or the breaker's health probe) reaches the new master.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::Client;
use resilience_core::{BackendError, ConnectionConfig, ErrorKind, SentinelConfig};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::classify::classify_error;
use crate::connect::client_for;

/// Pause between two rounds of questions to the sentinels while calls fail.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// How long after the last reported failure the follower keeps asking the sentinels.
pub(crate) const POLL_FOR: Duration = Duration::from_secs(5);

/// The sentinels of one master, and how to reach them.
pub(crate) struct Sentinels {
    master_name: String,
    /// One client per sentinel, in the configured order.
    nodes: Vec<(String, Client)>,
    timeout: Duration,
}

impl Sentinels {
    /// Clients for the sentinels of `config.sentinel` (sentinel credentials, database 0,
    /// the config's TLS settings).
    pub(crate) fn new(
        config: &ConnectionConfig,
        sentinel: &SentinelConfig,
    ) -> Result<Self, BackendError> {
        if sentinel.master_name.is_empty() || sentinel.nodes.is_empty() {
            return Err(BackendError::new(
                ErrorKind::InvalidInput,
                "sentinel mode needs a master name and at least one sentinel address: set the SentinelConfig's master_name (the name the sentinels monitor) and nodes (each sentinel's host and port)",
            ));
        }
        let nodes = sentinel
            .nodes
            .iter()
            .map(|(host, port)| {
                let node = {
                    let mut c = config.clone();
                    c.host = host.clone();
                    c.port = *port;
                    c.db = 0;
                    c.username = sentinel.username.clone();
                    c.password = sentinel.password.clone();
                    c.sentinel = None;
                    c
                };
                Ok((node.address(), client_for(&node)?))
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        Ok(Sentinels {
            master_name: sentinel.master_name.clone(),
            nodes,
            timeout: config.socket_connect_timeout,
        })
    }

    /// The master's address, from the first sentinel that knows it.
    ///
    /// Fails with `Auth` when a sentinel refused the sentinel credentials and none gave an
    /// address, else with `Unavailable` naming the last sentinel's problem.
    pub(crate) async fn master(&self) -> Result<(String, u16), BackendError> {
        let mut auth_refused = None;
        let mut last = None;
        for (address, client) in &self.nodes {
            match self.ask(client).await {
                Ok(Some(master)) => return Ok(master),
                Ok(None) => {
                    last = Some(format!(
                        "sentinel {address} does not know a master named {:?}",
                        self.master_name
                    ));
                }
                Err(e) if e.kind() == ErrorKind::Auth => {
                    auth_refused = Some(format!("sentinel {address}: {e}"));
                }
                Err(e) => last = Some(format!("sentinel {address}: {e}")),
            }
        }
        if let Some(refused) = auth_refused {
            return Err(BackendError::new(ErrorKind::Auth, refused));
        }
        Err(BackendError::unavailable(format!(
            "redis-rs: no sentinel gave the address of master {:?} ({}); check that the sentinels are reachable and monitor a master of that name",
            self.master_name,
            last.unwrap_or_default()
        )))
    }

    async fn ask(&self, client: &Client) -> Result<Option<(String, u16)>, BackendError> {
        let question = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.master_name)
                .query_async::<Option<(String, u16)>>(&mut conn)
                .await
        };
        match tokio::time::timeout(self.timeout, question).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(classify_error(&e)),
            Err(_) => Err(BackendError::timeout(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

/// The client for the master at `host:port`: the config's credentials, `db` and TLS.
pub(crate) fn master_client(
    config: &ConnectionConfig,
    (host, port): &(String, u16),
) -> Result<Client, BackendError> {
    client_for(&{
        let mut c = config.clone();
        c.host = host.clone();
        c.port = *port;
        c.sentinel = None;
        c
    })
}

/// Whether a failed call may mean the master moved: it could not be reached, did not
/// answer, or answered as a replica.
pub(crate) fn may_mean_failover(error: &BackendError) -> bool {
    matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
        || matches!(error.code(), Some("READONLY" | "MASTERDOWN"))
}

/// What the calls and the follower task share.
struct Shared {
    /// A call failed in a way a failover causes, and no call succeeded since.
    suspect: AtomicBool,
    /// When the last failure was reported, in milliseconds since `epoch`.
    last_report_ms: AtomicU64,
    epoch: Instant,
    wake: Notify,
}

/// Follows the master through failovers: see the module docs. Dropping it stops its task.
pub(crate) struct Follower {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the follower installs a new master's client.
pub(crate) trait SwitchTarget: Send + Sync + 'static {
    /// Makes every later call use `client`.
    fn switch_to(&self, client: Client);
}

impl Follower {
    /// Starts the follower task. `current` is the master the backend connected to;
    /// `target` is where a new master's client goes (held weakly: the task ends with the
    /// backend).
    pub(crate) fn spawn<T: SwitchTarget>(
        sentinels: Sentinels,
        config: ConnectionConfig,
        current: (String, u16),
        target: Weak<T>,
    ) -> Follower {
        let shared = Arc::new(Shared {
            suspect: AtomicBool::new(false),
            last_report_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            wake: Notify::new(),
        });
        let task = tokio::spawn(follow(
            Arc::clone(&shared),
            sentinels,
            config,
            current,
            target,
        ));
        Follower { shared, task }
    }

    /// A call failed with `error`: if a failover could explain it, make the follower ask
    /// the sentinels.
    pub(crate) fn suspect(&self, error: &BackendError) {
        if !may_mean_failover(error) {
            return;
        }
        let now = self.shared.epoch.elapsed().as_millis() as u64;
        self.shared.last_report_ms.store(now, Ordering::Relaxed);
        if !self.shared.suspect.swap(true, Ordering::AcqRel) {
            self.shared.wake.notify_one();
        }
    }

    /// A call succeeded: the current master works, stop asking the sentinels.
    #[inline]
    pub(crate) fn healthy(&self) {
        // A plain load first: on the hot path the flag is clear.
        if self.shared.suspect.load(Ordering::Relaxed) {
            self.shared.suspect.store(false, Ordering::Relaxed);
        }
    }
}

async fn follow<T: SwitchTarget>(
    shared: Arc<Shared>,
    sentinels: Sentinels,
    config: ConnectionConfig,
    mut current: (String, u16),
    target: Weak<T>,
) {
    loop {
        if !shared.suspect.load(Ordering::Acquire) {
            shared.wake.notified().await;
            continue;
        }
        let since_report = shared.epoch.elapsed().saturating_sub(Duration::from_millis(
            shared.last_report_ms.load(Ordering::Relaxed),
        ));
        if since_report > POLL_FOR {
            // Nobody called for a while: wait for the next failure.
            shared.suspect.store(false, Ordering::Release);
            continue;
        }
        let round = Instant::now();
        match sentinels.master().await {
            Ok(master) => {
                if current != master {
                    let Some(target) = target.upgrade() else {
                        return;
                    };
                    match master_client(&config, &master) {
                        Ok(client) => {
                            target.switch_to(client);
                            tracing::info!(
                                backend = "redis-rs",
                                master = %format!("{}:{}", master.0, master.1),
                                "sentinel reported a new master; switched to it"
                            );
                            current = master;
                            // The next calls will tell whether the new master works.
                            shared.suspect.store(false, Ordering::Release);
                        }
                        Err(e) => {
                            tracing::warn!(backend = "redis-rs", error = %e, "cannot build a client for the new master");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(backend = "redis-rs", error = %e, "asking the sentinels failed");
            }
        }
        if target.strong_count() == 0 {
            return;
        }
        tokio::time::sleep_until(round + POLL).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn which_failures_make_the_follower_ask() {
        assert!(may_mean_failover(&BackendError::unavailable("refused")));
        assert!(may_mean_failover(&BackendError::timeout("no reply")));
        assert!(may_mean_failover(&BackendError::from_reply(
            "READONLY You can't write against a read only replica."
        )));
        assert!(may_mean_failover(&BackendError::from_reply(
            "MASTERDOWN Link with MASTER is down"
        )));
        assert!(!may_mean_failover(&BackendError::from_reply(
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        )));
        assert!(!may_mean_failover(&BackendError::from_reply(
            "WRONGPASS invalid username-password pair"
        )));
    }

    #[test]
    fn sentinels_get_sentinel_credentials_and_db_zero() {
        let config = ConnectionConfig::default()
            .with_db(3)
            .with_username("app")
            .with_password("data-pw");
        let sentinel = SentinelConfig::default()
            .with_master_name("m")
            .with_nodes(vec![("s1".into(), 26379), ("s2".into(), 26380)])
            .with_password("sentinel-pw");
        let sentinels = Sentinels::new(&config, &sentinel).unwrap();
        assert_eq!(sentinels.nodes.len(), 2);
        let info = sentinels.nodes[1].1.get_connection_info();
        assert_eq!(info.redis_settings().db(), 0);
        assert_eq!(info.redis_settings().username(), None);
        assert_eq!(info.redis_settings().password(), Some("sentinel-pw"));
        assert_eq!(sentinels.nodes[1].0, "s2:26380");
        let master = master_client(&config, &("10.0.0.9".into(), 7000)).unwrap();
        let info = master.get_connection_info();
        assert_eq!(info.redis_settings().db(), 3);
        assert_eq!(info.redis_settings().password(), Some("data-pw"));
        assert_eq!(
            info.addr(),
            &redis::ConnectionAddr::Tcp("10.0.0.9".into(), 7000)
        );
    }

    #[test]
    fn a_sentinel_config_without_name_or_nodes_is_invalid_input() {
        let config = ConnectionConfig::default();
        for sentinel in [
            SentinelConfig::default()
                .with_master_name(String::new())
                .with_nodes(vec![("s".into(), 1)]),
            SentinelConfig::default().with_master_name("m"),
        ] {
            let err = Sentinels::new(&config, &sentinel).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
    }

    #[tokio::test]
    async fn no_reachable_sentinel_is_unavailable() {
        let config =
            ConnectionConfig::default().with_socket_connect_timeout(Duration::from_millis(200));
        let sentinel = SentinelConfig::default()
            .with_master_name("m")
            .with_nodes(vec![("127.0.0.1".into(), 1)]);
        let err = Sentinels::new(&config, &sentinel)
            .unwrap()
            .master()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    }
}
