//! Crash test for the durable journal (feature `durable`).
//!
//! A child process (this test executable, re-run with `JOURNAL_CRASH_CHILD` set) queues
//! 10,000 writes while redis-server is down, says so on stdout, and is killed with SIGKILL.
//! The parent then restarts the server, opens a new client on the same journal, waits until
//! the journal is empty, and checks every write: all 10,000 keys hold their unique values,
//! and a counter incremented once per *distinct* write reads exactly 10,000.
//!
//! Delivery through the journal is at least once (a write applied just before a crash is
//! replayed), so each write is an idempotent Lua script: `SETNX k_i v_i` and, only if that
//! set the key, `INCR applied`. To prove a re-applied write is harmless, the parent applies
//! the first 100 writes itself before the replay, as if Redis had applied them just
//! before the crash: the counter must still end at 10,000, not 10,100.
//!
//! The second test does the same with 10,000 exactly-once `INCR`s of one counter (a
//! write that is not idempotent, made safe to replay by its write id), and kills the
//! child while it is replaying them into the restarted server: writes it applied before
//! the kill are replayed from the journal, recognised by their ids, and the counter
//! ends at exactly 10,000.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command as Process};

use backend_redis_rs::RedisRsBackend;
use bytes::Bytes;
use futures::StreamExt;
use resilience_core::{Command, ConnectionConfig, Priority, ResilientClient, Script, StoreOutcome};
use testkit::server::RedisServer;

const WRITES: usize = 10_000;
const CHILD_ENV: &str = "JOURNAL_CRASH_CHILD";
const COUNTER: &str = "applied";
const SCRIPT: &str = "if redis.call('SETNX', KEYS[1], ARGV[1]) == 1 then \
                      return redis.call('INCR', KEYS[2]) end return 0";

fn script() -> Script {
    Script::new(SCRIPT).idempotent(true)
}

fn key(i: usize) -> String {
    format!("crash:k{i}")
}

fn value(i: usize) -> String {
    format!("v{i}-{}", i.wrapping_mul(2_654_435_761) % 1_000_003)
}

fn write(i: usize) -> Command {
    script().command(
        vec![key(i), COUNTER.to_owned()],
        vec![Bytes::from(value(i))],
    )
}

type Lines = tokio::io::Lines<BufReader<ChildStdout>>;

/// Waits for a line holding `marker` (libtest may print `test name ... ` before it on the
/// same line); returns the line from the marker on.
async fn wait_line(lines: &mut Lines, marker: &str, limit: Duration) -> String {
    let found = tokio::time::timeout(limit, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            assert!(!line.contains("CHILD FAILED"), "{line}");
            if let Some(at) = line.find(marker) {
                return line[at..].to_owned();
            }
        }
        panic!("the child closed stdout before `{marker}`");
    })
    .await;
    found.unwrap_or_else(|_| panic!("no `{marker}` line from the child within {limit:?}"))
}

fn spawn_child(journal: &Path, url: &str) -> Child {
    spawn_child_named("journal_crash_child", journal, url)
}

fn spawn_child_named(name: &str, journal: &Path, url: &str) -> Child {
    Process::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("JOURNAL_CRASH_PATH", journal)
        .env("JOURNAL_CRASH_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn connect(url: &str) -> RedisRsBackend {
    let config = ConnectionConfig::from_url(url).unwrap();
    RedisRsBackend::connect(&config).await.unwrap()
}

/// The child's half. Does nothing unless run by the parent (`JOURNAL_CRASH_CHILD` set): it
/// is the entry point of the child process, not a test of its own.
#[test]
fn journal_crash_child() {
    run_as_child(child());
}

/// Runs `half` on a runtime of its own when this process is the parent's child
/// (`JOURNAL_CRASH_CHILD` set); does nothing otherwise.
fn run_as_child(half: impl std::future::Future<Output = ()>) {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(half);
}

async fn child() {
    let path = PathBuf::from(std::env::var_os("JOURNAL_CRASH_PATH").unwrap());
    let url = std::env::var("JOURNAL_CRASH_URL").unwrap();
    let client = ResilientClient::builder("crash-child", connect(&url).await)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .circuit_threshold(1)
                .with_health_check_interval(Duration::from_millis(100)),
        )
        .queue(resilience_core::QueueConfig::default().with_capacity(2 * WRITES))
        .journal(&path)
        .try_build()
        .unwrap();
    client.register_script(&script());
    println!("READY");
    std::io::stdout().flush().unwrap();
    // The parent stops the server, then says GO.
    tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()))
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    let outcomes: Vec<StoreOutcome> = futures::stream::iter(0..WRITES)
        .map(|i| {
            let client = client.clone();
            async move { client.submit(vec![write(i)], Priority::Normal).await }
        })
        .buffer_unordered(1024)
        .collect()
        .await;
    let queued = outcomes
        .iter()
        .filter(|o| matches!(o, StoreOutcome::Queued(_)))
        .count();
    if queued != WRITES {
        let other = outcomes
            .iter()
            .find(|o| !matches!(o, StoreOutcome::Queued(_)));
        println!("CHILD FAILED: {queued} queued; e.g. {other:?}");
        std::io::stdout().flush().unwrap();
        return;
    }
    let stats = client.journal_stats().unwrap();
    println!(
        "QUEUED {queued} in {:?}, {} commits",
        started.elapsed(),
        stats.commits
    );
    std::io::stdout().flush().unwrap();
    // Wait to be killed (SIGKILL): nothing after this line runs in a passing test.
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_queued_writes_survive_sigkill_and_apply_exactly_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("queue.redb");
    let mut server = RedisServer::builder()
        .appendfsync_always(true)
        .spawn()
        .await
        .unwrap();
    let url = server.url();

    let mut child = spawn_child(&journal, &url);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    wait_line(&mut lines, "READY", Duration::from_secs(30)).await;
    server.stop().await.unwrap();
    let queueing = Instant::now();
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(b"GO\n").await.unwrap();
    stdin.flush().await.unwrap();
    let queued_line = wait_line(&mut lines, "QUEUED", Duration::from_secs(60)).await;
    let queue_time = queueing.elapsed();
    println!("child queued {WRITES} writes; parent saw it after {queue_time:?}");
    assert!(
        queued_line.starts_with(&format!("QUEUED {WRITES} ")),
        "{queued_line}"
    );
    child.start_kill().unwrap(); // SIGKILL
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal(), Some(9), "the child died of SIGKILL");

    server.restart().await.unwrap();
    // As if Redis had applied the first 100 just before the crash: the journal still has
    // them, so they are applied again; the script makes that a no-op.
    let direct = ResilientClient::builder("direct", connect(&url).await)
        .build()
        .expect("valid client settings");
    for i in 0..100 {
        direct
            .eval(
                &script(),
                vec![key(i), COUNTER.to_owned()],
                vec![Bytes::from(value(i))],
            )
            .await
            .unwrap();
    }

    let replaying = Instant::now();
    let client = ResilientClient::builder("crash-parent", connect(&url).await)
        .queue(resilience_core::QueueConfig::default().with_capacity(2 * WRITES))
        .journal(&journal)
        .try_build()
        .unwrap();
    let recovered = client.recovered();
    assert_eq!(recovered, WRITES as u64);
    assert_eq!(client.journal_stats().unwrap().corrupt, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        client.journal().unwrap().flush().await;
        let stats = client.journal_stats().unwrap();
        if stats.pending == 0 && client.stats().queue.depth == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "journal not drained in time: {stats:?} / {:?}",
            client.stats().queue
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replay_time = replaying.elapsed();
    let stats = client.journal_stats().unwrap();
    assert_eq!(stats.recovered_completed, WRITES as u64);
    assert_eq!(client.stats().queue.dead_lettered, 0);

    // Every write present with its own value; the counter proves none applied twice.
    let mut present = 0;
    for chunk in (0..WRITES).collect::<Vec<_>>().chunks(1000) {
        let keys: Vec<String> = chunk.iter().map(|i| key(*i)).collect();
        let values = client.mget(&keys).await.unwrap();
        for (i, v) in chunk.iter().zip(values) {
            assert_eq!(v.as_deref(), Some(value(*i).as_bytes()), "key {}", key(*i));
            present += 1;
        }
    }
    let counter = client.get(COUNTER).await.unwrap();
    assert_eq!(present, WRITES);
    assert_eq!(counter.as_deref(), Some(WRITES.to_string().as_bytes()));
    println!(
        "journal crash test: child {queued_line}; SIGKILLed; recovered {recovered}, \
         applied {present} (100 of them twice on purpose), counter {}, replay {replay_time:?}, \
         total {:?}",
        String::from_utf8_lossy(&counter.unwrap_or_default()),
        started.elapsed()
    );
}

/// The exactly-once counter of the second test.
const ONCE_COUNTER: &str = "crash:once";

/// The child of the exactly-once test: queues [`WRITES`] exactly-once `INCR`s while the
/// server is down, then replays them when it comes back, until it is killed.
#[test]
fn journal_crash_once_child() {
    run_as_child(once_child());
}

async fn once_child() {
    let path = PathBuf::from(std::env::var_os("JOURNAL_CRASH_PATH").unwrap());
    let url = std::env::var("JOURNAL_CRASH_URL").unwrap();
    let client = ResilientClient::builder("crash-once-child", connect(&url).await)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .circuit_threshold(1)
                .with_health_check_interval(Duration::from_millis(100)),
        )
        .queue(
            resilience_core::QueueConfig::default()
                .with_capacity(2 * WRITES)
                .with_batch_size(64),
        )
        .exactly_once(Some(resilience_core::ExactlyOnceConfig::default()))
        .journal(&path)
        .try_build()
        .unwrap();
    println!("READY");
    std::io::stdout().flush().unwrap();
    tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()))
        .await
        .unwrap()
        .unwrap();
    let outcomes: Vec<StoreOutcome> = futures::stream::iter(0..WRITES)
        .map(|_| {
            let client = client.clone();
            async move {
                let incr = Command::Incrby {
                    key: ONCE_COUNTER.to_owned(),
                    delta: 1,
                };
                client.submit(vec![incr], Priority::High).await
            }
        })
        .buffer_unordered(1024)
        .collect()
        .await;
    let queued = outcomes
        .iter()
        .filter(|o| matches!(o, StoreOutcome::Queued(_)))
        .count();
    if queued != WRITES {
        let other = outcomes
            .iter()
            .find(|o| !matches!(o, StoreOutcome::Queued(_)));
        println!("CHILD FAILED: {queued} queued; e.g. {other:?}");
        std::io::stdout().flush().unwrap();
        return;
    }
    println!("QUEUED {queued}");
    std::io::stdout().flush().unwrap();
    // Replays once the server is back, until SIGKILL.
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_exactly_once_incrs_survive_sigkill_mid_replay_and_count_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("queue.redb");
    let mut server = RedisServer::builder()
        .appendfsync_always(true)
        .spawn()
        .await
        .unwrap();
    let url = server.url();
    let mut child = spawn_child_named("journal_crash_once_child", &journal, &url);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    wait_line(&mut lines, "READY", Duration::from_secs(30)).await;
    server.stop().await.unwrap();
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(b"GO\n").await.unwrap();
    stdin.flush().await.unwrap();
    let queued_line = wait_line(&mut lines, "QUEUED", Duration::from_secs(60)).await;
    assert_eq!(queued_line, format!("QUEUED {WRITES}"));

    // The server is back: the child replays. Kill it part-way, once some writes landed.
    server.restart().await.unwrap();
    let direct = ResilientClient::builder("direct", connect(&url).await)
        .build()
        .expect("valid client settings");
    let deadline = Instant::now() + Duration::from_secs(60);
    let landed_before_kill = loop {
        let landed = direct
            .get(ONCE_COUNTER)
            .await
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8_lossy(&v).parse::<usize>().ok())
            .unwrap_or(0);
        if landed >= WRITES / 10 {
            break landed;
        }
        assert!(
            Instant::now() < deadline,
            "the child replayed nothing in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.start_kill().unwrap(); // SIGKILL, mid-replay
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal(), Some(9), "the child died of SIGKILL");
    assert!(
        landed_before_kill < WRITES,
        "the kill came after the replay ended"
    );

    let client = ResilientClient::builder("crash-once-parent", connect(&url).await)
        .queue(resilience_core::QueueConfig::default().with_capacity(2 * WRITES))
        .exactly_once(Some(resilience_core::ExactlyOnceConfig::default()))
        .journal(&journal)
        .try_build()
        .unwrap();
    let recovered = client.recovered();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        client.journal().unwrap().flush().await;
        let stats = client.journal_stats().unwrap();
        if stats.pending == 0 && client.stats().queue.depth == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "journal not drained in time: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.stats().queue.dead_lettered, 0);
    let counter = client.get(ONCE_COUNTER).await.unwrap();
    println!(
        "exactly-once journal crash: {landed_before_kill} applied before the SIGKILL, \
         {recovered} recovered from the journal, counter {}",
        String::from_utf8_lossy(counter.as_deref().unwrap_or_default())
    );
    assert_eq!(counter.as_deref(), Some(WRITES.to_string().as_bytes()));
}
