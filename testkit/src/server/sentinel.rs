//! A local Redis Sentinel deployment: one master, one replica and three sentinels, each a
//! real process on a free port of `127.0.0.1`.
//!
//! [`SentinelDeployment::spawn`] starts the master, then the replica (`--replicaof`), then
//! three sentinels (`redis-server <conf> --sentinel`, quorum 2, `down-after-milliseconds`
//! 1000 and `failover-timeout` 2000, so a failover takes about two seconds), and waits,
//! each step with a deadline, until the replica is in sync and every sentinel sees the
//! master, its replica and the two other sentinels. Only then can a failover happen.
//!
//! [`kill_master`](SentinelDeployment::kill_master) SIGKILLs whichever node the sentinels
//! report as master, and [`wait_for_failover`](SentinelDeployment::wait_for_failover)
//! waits until they report another one that says it is a master. Dropping the deployment
//! kills every process and removes the directories.
//!
//! ```no_run
//! use testkit::server::SentinelDeployment;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut deployment = SentinelDeployment::spawn().await?;
//! let config = deployment.connection_config(); // sentinel mode, master "testkit-master"
//! let old = deployment.kill_master().await?;
//! let new = deployment.wait_for_failover(old, std::time::Duration::from_secs(10)).await?;
//! assert_ne!(old, new);
//! # let _ = config;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use resilience_core::{ConnectionConfig, SentinelConfig};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::error::SpawnError;
use super::resp::{RespConnection, RespReply};
use super::single::{
    DEFAULT_STARTUP_TIMEOUT, LOG_FILE, POLL_INTERVAL, PORT_ATTEMPTS, RedisServer, STDERR_FILE,
    free_port, is_ready, kill, log_tail, server_binary, spawn_process,
};

/// The master's name the sentinels monitor.
pub const MASTER_NAME: &str = "testkit-master";

/// How long the whole deployment may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Bound on each probe of a node or sentinel.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Sentinels' `down-after-milliseconds`: how long the master must be unreachable before a
/// sentinel thinks it is down.
pub(super) const DOWN_AFTER: Duration = Duration::from_millis(1000);

/// Sentinels' `failover-timeout`.
const FAILOVER_TIMEOUT: Duration = Duration::from_millis(2000);

/// One sentinel process.
#[derive(Debug)]
struct Sentinel {
    /// Killed when dropped (`kill_on_drop`).
    _process: Child,
    port: u16,
}

impl Sentinel {
    fn addr(&self) -> SocketAddr {
        local(self.port)
    }
}

/// A master, a replica and three sentinels on this machine, owned by a test.
#[derive(Debug)]
pub struct SentinelDeployment {
    // Field order matters: processes are killed before the directory is removed.
    sentinels: Vec<Sentinel>,
    nodes: Vec<RedisServer>,
    dir: TempDir,
}

impl SentinelDeployment {
    /// Starts the deployment and waits until a failover could happen (see the module docs).
    ///
    /// # Errors
    ///
    /// `SpawnError` naming the step that failed (no binary, a port in use, a server
    /// that did not answer within its startup timeout, a command the server refused).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn spawn() -> Result<SentinelDeployment, SpawnError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        // No 5 s wait for more replicas before a full sync (the default diskless delay).
        let master = RedisServer::builder()
            .arg("repl-diskless-sync-delay", "0")
            .spawn()
            .await?;
        let replica = RedisServer::builder()
            .arg("repl-diskless-sync-delay", "0")
            .arg("replicaof", format!("127.0.0.1 {}", master.port()))
            .spawn()
            .await?;
        let dir = tempfile::Builder::new()
            .prefix("testkit-sentinels-")
            .tempdir()?;
        let mut deployment = SentinelDeployment {
            sentinels: Vec::new(),
            nodes: vec![master, replica],
            dir,
        };
        // In sync before the sentinels start, so their first look at the master already
        // lists the replica (the next one would be 10 s later).
        deployment.wait_until_ready(deadline, false).await?;
        for i in 0..3 {
            let sentinel_dir = deployment.dir.path().join(format!("sentinel-{i}"));
            std::fs::create_dir_all(&sentinel_dir)?;
            let sentinel = spawn_sentinel(&sentinel_dir, deployment.nodes[0].port()).await?;
            deployment.sentinels.push(sentinel);
        }
        deployment.wait_until_ready(deadline, true).await?;
        Ok(deployment)
    }

    /// The master's name the sentinels know ([`MASTER_NAME`]).
    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    /// The sentinels' addresses.
    pub fn sentinel_addrs(&self) -> Vec<SocketAddr> {
        self.sentinels.iter().map(Sentinel::addr).collect()
    }

    /// The data nodes (master and replica, in the order they were started; which one is
    /// the master changes with failovers).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Sentinel-mode connection settings: the three sentinels and [`MASTER_NAME`]; host
    /// and port are the first sentinel's (unused in sentinel mode), the rest default.
    pub fn connection_config(&self) -> ConnectionConfig {
        let nodes: Vec<(String, u16)> = self
            .sentinels
            .iter()
            .map(|s| ("127.0.0.1".to_owned(), s.port))
            .collect();
        ConnectionConfig::default()
            .with_host("127.0.0.1")
            .with_port(nodes.first().map(|n| n.1).unwrap_or_default())
            .with_sentinel(
                SentinelConfig::default()
                    .with_master_name(MASTER_NAME.to_owned())
                    .with_nodes(nodes),
            )
    }

    /// `redis+sentinel://` URL of this deployment (no credentials).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The master's address as the first sentinel that answers reports it.
    ///
    /// # Errors
    ///
    /// `SpawnError` naming the step that failed (no binary, a port in use, a server
    /// that did not answer within its startup timeout, a command the server refused).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn master_addr(&self) -> Result<SocketAddr, SpawnError> {
        let mut last = String::from("no sentinel is running");
        for sentinel in &self.sentinels {
            match master_addr_from(sentinel.addr()).await {
                Ok(addr) => return Ok(addr),
                Err(e) => last = e,
            }
        }
        Err(SpawnError::Sentinel(format!(
            "no sentinel reported the master: {last}"
        )))
    }

    /// SIGKILLs the node the sentinels report as master (like a crash) and returns its
    /// address. The sentinels notice after `down-after-milliseconds` (1 s) and promote the
    /// replica.
    ///
    /// # Errors
    ///
    /// `SpawnError` naming the step that failed (no binary, a port in use, a server
    /// that did not answer within its startup timeout, a command the server refused).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn kill_master(&mut self) -> Result<SocketAddr, SpawnError> {
        let addr = self.master_addr().await?;
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.addr() == addr)
            .ok_or_else(|| {
                SpawnError::Sentinel(format!("the reported master {addr} is not one of ours"))
            })?;
        node.stop().await?;
        Ok(addr)
    }

    /// Waits until every running sentinel reports a master other than `old` and that node
    /// answers `ROLE` with `master`; returns its address.
    ///
    /// # Errors
    ///
    /// `SpawnError` naming the step that failed (no binary, a port in use, a server
    /// that did not answer within its startup timeout, a command the server refused).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn wait_for_failover(
        &self,
        old: SocketAddr,
        timeout: Duration,
    ) -> Result<SocketAddr, SpawnError> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.agreed_new_master(old).await {
                Ok(addr) => return Ok(addr),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(SpawnError::Sentinel(format!(
                    "no failover from {old} within {timeout:?}: {last}"
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn agreed_new_master(&self, old: SocketAddr) -> Result<SocketAddr, String> {
        let mut agreed = None;
        for sentinel in &self.sentinels {
            let addr = master_addr_from(sentinel.addr()).await?;
            if addr == old {
                return Err(format!("sentinel {} still reports {old}", sentinel.addr()));
            }
            if agreed.is_some_and(|a| a != addr) {
                return Err("the sentinels disagree".to_owned());
            }
            agreed = Some(addr);
        }
        let addr = agreed.ok_or("no sentinel")?;
        match probe(addr, &["ROLE"]).await? {
            RespReply::Array(Some(items))
                if items.first() == Some(&RespReply::Bulk(Some(b"master".to_vec()))) =>
            {
                Ok(addr)
            }
            other => Err(format!("{addr} is not a master yet: {other:?}")),
        }
    }

    /// Waits until the replica is in sync and, with `sentinels`, every sentinel sees the
    /// master, one replica and the two other sentinels.
    async fn wait_until_ready(&self, deadline: Instant, sentinels: bool) -> Result<(), SpawnError> {
        let replica = self.nodes[1].addr();
        loop {
            let mut problem = None;
            match probe(replica, &["INFO", "replication"]).await {
                Ok(RespReply::Bulk(Some(info)))
                    if String::from_utf8_lossy(&info)
                        .lines()
                        .any(|l| l.trim() == "master_link_status:up") => {}
                other => problem = Some(format!("replica not in sync: {other:?}")),
            }
            for sentinel in self.sentinels.iter().filter(|_| sentinels) {
                if problem.is_some() {
                    break;
                }
                problem = sentinel_view_problem(sentinel.addr()).await.err();
            }
            let Some(problem) = problem else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                let logs: Vec<String> = (0..self.sentinels.len())
                    .map(|i| log_tail(&self.dir.path().join(format!("sentinel-{i}"))))
                    .collect();
                return Err(SpawnError::Sentinel(format!(
                    "deployment not ready after {READY_TIMEOUT:?}: {problem}; sentinel logs:\n{}",
                    logs.join("\n")
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// Sends one command on a fresh connection, both bounded by [`PROBE_TIMEOUT`].
async fn probe(addr: SocketAddr, args: &[&str]) -> Result<RespReply, String> {
    let run = async {
        let mut conn = RespConnection::connect(addr).await?;
        conn.command(args).await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(format!("{addr}: {e}")),
        Err(_) => Err(format!("{addr}: no answer within {PROBE_TIMEOUT:?}")),
    }
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME` asked of one sentinel.
async fn master_addr_from(sentinel: SocketAddr) -> Result<SocketAddr, String> {
    let reply = probe(
        sentinel,
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
    )
    .await?;
    let RespReply::Array(Some(items)) = &reply else {
        return Err(format!("sentinel {sentinel} answered {reply:?}"));
    };
    let text = |i: usize| match items.get(i) {
        Some(RespReply::Bulk(Some(b))) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    match (text(0), text(1).and_then(|p| p.parse::<u16>().ok())) {
        (Some(host), Some(port)) => format!("{host}:{port}")
            .parse()
            .map_err(|_| format!("sentinel {sentinel} answered {reply:?}")),
        _ => Err(format!("sentinel {sentinel} answered {reply:?}")),
    }
}

/// Why the sentinel at `addr` cannot take part in a failover yet, if it cannot.
async fn sentinel_view_problem(addr: SocketAddr) -> Result<(), String> {
    let reply = probe(addr, &["SENTINEL", "MASTER", MASTER_NAME]).await?;
    let RespReply::Array(Some(items)) = reply else {
        return Err(format!(
            "sentinel {addr}: SENTINEL MASTER answered {reply:?}"
        ));
    };
    let fields: HashMap<String, String> = items
        .chunks(2)
        .filter_map(|pair| match pair {
            [RespReply::Bulk(Some(k)), RespReply::Bulk(Some(v))] => Some((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )),
            _ => None,
        })
        .collect();
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("?");
    if field("flags") == "master"
        && field("num-slaves") == "1"
        && field("num-other-sentinels") == "2"
    {
        Ok(())
    } else {
        Err(format!(
            "sentinel {addr} sees flags={} num-slaves={} num-other-sentinels={}",
            field("flags"),
            field("num-slaves"),
            field("num-other-sentinels")
        ))
    }
}

/// Starts one sentinel watching the master on `master_port`, on a free port (another one
/// if that port was taken meanwhile), and waits until it answers `PING` as that process.
async fn spawn_sentinel(dir: &Path, master_port: u16) -> Result<Sentinel, SpawnError> {
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port()?;
        let conf = write_config(dir, port, master_port)?;
        std::fs::write(dir.join(LOG_FILE), b"")?;
        let stderr = std::fs::File::create(dir.join(STDERR_FILE))?;
        let stdout = stderr.try_clone()?;
        let mut cmd = Command::new(server_binary());
        cmd.arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = spawn_process(&mut cmd)?;
        let started = Instant::now();
        let deadline = started + DEFAULT_STARTUP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                let log = log_tail(dir);
                if log.contains("Address already in use") {
                    break;
                }
                return Err(SpawnError::Exited {
                    port,
                    status: status.to_string(),
                    log,
                });
            }
            if let Some(pid) = child.id()
                && let Ok(true) =
                    tokio::time::timeout(PROBE_TIMEOUT, is_ready(local(port), None, pid)).await
            {
                return Ok(Sentinel {
                    _process: child,
                    port,
                });
            }
            if Instant::now() >= deadline {
                kill(&mut child).await?;
                return Err(SpawnError::NotReady {
                    port,
                    waited: started.elapsed(),
                    log: log_tail(dir),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    Err(SpawnError::PortsTaken {
        attempts: PORT_ATTEMPTS,
    })
}

/// Writes the sentinel's configuration file (sentinels rewrite it, so it is theirs alone).
fn write_config(dir: &Path, port: u16, master_port: u16) -> std::io::Result<PathBuf> {
    let conf = dir.join("sentinel.conf");
    let text = format!(
        "port {port}\n\
         bind 127.0.0.1\n\
         daemonize no\n\
         dir {dir}\n\
         logfile {log}\n\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
         sentinel down-after-milliseconds {MASTER_NAME} {down}\n\
         sentinel failover-timeout {MASTER_NAME} {failover}\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        dir = dir.display(),
        log = dir.join(LOG_FILE).display(),
        down = DOWN_AFTER.as_millis(),
        failover = FAILOVER_TIMEOUT.as_millis(),
    );
    std::fs::write(&conf, text)?;
    Ok(conf)
}
