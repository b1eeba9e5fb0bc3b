//! Pub/Sub through an outage: a [`Subscriber`] hears messages, the server is SIGKILLed
//! while a publisher keeps publishing, and after the restart the subscriber hears
//! messages again and has reported the outage as a gap.
//!
//! A publisher publishes numbered messages every few milliseconds through its own backend
//! (its failures during the outage are expected): `PUBLISH` on one channel and `SPUBLISH`
//! on one shard channel. The subscriber listens on the channel, on a pattern that matches
//! it and on the shard channel, so each number arrives three times, once per kind of
//! subscription. The promises checked:
//!
//! - before the kill, messages arrive on all three subscriptions;
//! - after the restart, messages published after the subscriber reported the gap arrive
//!   (it resubscribed);
//! - exactly one gap is reported per kill, from before the restart to after it;
//!
//! [`subscriber_follows_a_cluster_failover`] does the same on a Redis Cluster, killing
//! the master that owns the shard channel's slot (the subscriber is on it): the
//! subscriber must follow the replica promoted in its place.
//! - no message arrives twice through the same subscription, and none out of order.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use resilience_core::{
    Command, ConnectionConfig, Gap, MessageKind, Subscriber, SubscriberConfig, SubscriberEvent,
    Subscription,
};
use tokio::time::Instant;

use super::{BackendFuture, ScenarioFailure, print_and_assert};
use crate::server::{RedisCluster, RedisServer};

const CHANNEL: &str = "pubsub:events";
const PATTERN: &str = "pubsub:*";
const SHARD: &str = "{pubsub}:shard";

/// What [`subscriber_survives_a_kill`] saw.
#[derive(Clone, Debug)]
pub struct PubSubReport {
    /// The backend's name.
    pub backend: &'static str,
    /// Messages heard on the channel, through the pattern and on the shard channel before
    /// the kill.
    pub before: [u64; 3],
    /// The same after the gap.
    pub after: [u64; 3],
    /// The gaps reported.
    pub gaps: Vec<Gap>,
    /// When the server was killed, and (single server) when it answered again: the gap
    /// must end after that. On a cluster the subscriber moves to another master and need
    /// not wait for the failover.
    pub outage: (SystemTime, Option<SystemTime>),
    /// Messages heard twice, or out of order, on one subscription.
    pub disorder: Vec<String>,
    /// Steps that went wrong.
    pub problems: Vec<String>,
}

impl PubSubReport {
    /// The promises this run broke, one sentence each; empty when all held.
    pub fn violations(&self) -> Vec<String> {
        let mut v = self.problems.clone();
        if self.before.contains(&0) {
            v.push(format!(
                "before the kill: heard {:?} (channel, pattern, shard)",
                self.before
            ));
        }
        if self.after.contains(&0) {
            v.push(format!(
                "after the outage: heard {:?} (channel, pattern, shard): not resubscribed",
                self.after
            ));
        }
        match self.gaps.as_slice() {
            [gap] => {
                let (killed, back) = self.outage;
                let spans = gap.down_since >= killed
                    && gap.resubscribed_at >= gap.down_since
                    && back
                        .is_none_or(|back| gap.down_since <= back && gap.resubscribed_at >= back);
                if !spans {
                    v.push(format!(
                        "the gap {gap:?} does not span the outage (killed {killed:?}, back {back:?})"
                    ));
                }
            }
            gaps => v.push(format!(
                "{} gaps reported for one kill, the first: {:?}",
                gaps.len(),
                gaps.iter().take(2).collect::<Vec<_>>()
            )),
        }
        v.extend(self.disorder.iter().cloned());
        v
    }

    /// Prints the report and panics, like `assert!`, with every broken promise.
    pub fn print_and_assert(&self) {
        print_and_assert(self, &self.violations());
    }
}

impl fmt::Display for PubSubReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gap = self
            .gaps
            .first()
            .map(|g| format!("{:?} ({})", g.duration(), g.cause));
        writeln!(
            f,
            "pubsub backend={} heard before={:?} after={:?} gaps={} first gap={:?}",
            self.backend,
            self.before,
            self.after,
            self.gaps.len(),
            gap
        )
    }
}

/// Tallies one subscription's messages, checking they come in order and once.
#[derive(Default)]
struct Tally {
    last: Option<u64>,
    heard: u64,
}

impl Tally {
    fn hear(&mut self, n: u64, what: &str, disorder: &mut Vec<String>) {
        if self.last.is_some_and(|last| n <= last) {
            disorder.push(format!("{what}: message {n} after {:?}", self.last));
        }
        self.last = Some(n);
        self.heard += 1;
    }
}

/// Reads events until `until` says stop or `deadline` passes.
async fn listen(
    subscriber: &mut Subscriber,
    deadline: Duration,
    tallies: &mut [Tally; 3],
    gaps: &mut Vec<Gap>,
    disorder: &mut Vec<String>,
    mut until: impl FnMut(&[Tally; 3], &[Gap]) -> bool,
) -> bool {
    let end = Instant::now() + deadline;
    while !until(tallies, gaps) {
        let event = match tokio::time::timeout_at(end, subscriber.next()).await {
            Ok(Some(event)) => event,
            Ok(None) | Err(_) => return false,
        };
        match event {
            SubscriberEvent::Message(m) => {
                let n = std::str::from_utf8(&m.payload)
                    .ok()
                    .and_then(|s| s.parse().ok());
                match n {
                    Some(n) => {
                        let (which, what) = match m.kind {
                            MessageKind::Channel => (0, "channel"),
                            MessageKind::Pattern => (1, "pattern"),
                            MessageKind::Shard => (2, "shard"),
                        };
                        tallies[which].hear(n, what, disorder);
                    }
                    None => disorder.push(format!("unreadable message {:?}", m.payload)),
                }
            }
            SubscriberEvent::Gap(gap) => gaps.push(gap),
            SubscriberEvent::Dropped(n) => disorder.push(format!("{n} messages dropped")),
            other => disorder.push(format!("unexpected event {other:?}")),
        }
    }
    true
}

/// Where the scenario runs, and how its outage happens.
enum Deployment {
    /// One server, SIGKILLed and restarted 300 ms later.
    Single(Box<RedisServer>),
    /// A cluster whose first master (the one a subscriber is on) is SIGKILLed; its
    /// replica takes over.
    Cluster(Box<RedisCluster>),
}

impl Deployment {
    fn config(&self) -> ConnectionConfig {
        match self {
            Deployment::Single(server) => server.connection_config(),
            Deployment::Cluster(cluster) => cluster.connection_config(),
        }
    }

    /// Causes the outage; returns when it began and, for a single server, when the
    /// server answered again.
    async fn outage(&mut self) -> Result<(SystemTime, Option<SystemTime>), ScenarioFailure> {
        let killed = SystemTime::now();
        match self {
            Deployment::Single(server) => {
                server.stop().await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
                server.restart().await?;
                Ok((killed, Some(SystemTime::now())))
            }
            Deployment::Cluster(cluster) => {
                let failed = |e: crate::server::ClusterError| ScenarioFailure::Setup(e.to_string());
                let slot = resilience_core::hash_slot(SHARD.as_bytes());
                let port = cluster.kill_master_owning(slot).await.map_err(failed)?;
                cluster
                    .wait_for_new_master(slot, port, Duration::from_secs(20))
                    .await
                    .map_err(failed)?;
                Ok((killed, None))
            }
        }
    }
}

/// See the [module docs](self): one server, SIGKILLed and restarted.
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn subscriber_survives_a_kill<F>(connect: F) -> Result<PubSubReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = RedisServer::spawn().await?;
    run(Deployment::Single(Box::new(server)), connect).await
}

/// The same on a Redis Cluster (3 masters, 3 replicas): the master the subscriber is on
/// is SIGKILLed; the subscriber moves to another master, reports the gap, and hears the
/// messages published after the failover.
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn subscriber_follows_a_cluster_failover<F>(
    connect: F,
) -> Result<PubSubReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let cluster = RedisCluster::spawn()
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("cluster: {e}")))?;
    run(Deployment::Cluster(Box::new(cluster)), connect).await
}

async fn run<F>(mut deployment: Deployment, connect: F) -> Result<PubSubReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let config = deployment.config();
    let backend = connect(config.clone())
        .await
        .map_err(ScenarioFailure::Connect)?;
    let backend_name = backend.name();
    let mut subscriber = Subscriber::start(
        backend,
        vec![
            Subscription::Channel(CHANNEL.into()),
            Subscription::Pattern(PATTERN.into()),
            Subscription::Shard(SHARD.into()),
        ],
        // Room for everything published while the scenario waits for a failover.
        SubscriberConfig::default().with_buffer(1 << 16),
    )
    .await
    .map_err(ScenarioFailure::Connect)?;
    let publisher = connect(config).await.map_err(ScenarioFailure::Connect)?;
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let publishing = {
        let (stop, published) = (Arc::clone(&stop), Arc::clone(&published));
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let message = Bytes::from(n.to_string());
                let publish = Command::Publish {
                    channel: CHANNEL.into(),
                    message: message.clone(),
                };
                let spublish = Command::Spublish {
                    channel: SHARD.into(),
                    message,
                };
                for cmd in [publish, spublish] {
                    if publisher.execute(cmd).await.is_ok() {
                        published.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut problems = Vec::new();
    let mut disorder = Vec::new();
    let mut gaps = Vec::new();
    let mut tallies = [Tally::default(), Tally::default(), Tally::default()];
    if !listen(
        &mut subscriber,
        Duration::from_secs(5),
        &mut tallies,
        &mut gaps,
        &mut disorder,
        |t, _| t.iter().all(|t| t.heard >= 20),
    )
    .await
    {
        problems.push("fewer than 20 messages per subscription before the kill".to_owned());
    }
    let before = tallies.each_ref().map(|t| t.heard);
    let outage = deployment.outage().await?;
    // Carry the order check across the gap.
    let mut after_tallies = tallies.each_ref().map(|t| Tally {
        last: t.last,
        heard: 0,
    });
    if !listen(
        &mut subscriber,
        Duration::from_secs(20),
        &mut after_tallies,
        &mut gaps,
        &mut disorder,
        |t, g| !g.is_empty() && t.iter().all(|t| t.heard >= 20),
    )
    .await
    {
        problems.push(format!(
            "after the outage, within 20 s: {} gap(s), heard {:?}",
            gaps.len(),
            after_tallies.each_ref().map(|t| t.heard)
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = publishing.await;
    Ok(PubSubReport {
        backend: backend_name,
        before,
        after: after_tallies.each_ref().map(|t| t.heard),
        gaps,
        outage,
        disorder,
        problems,
    })
}
