//! Redis SIGKILLed while HTTP clients store: every write answered `stored` or `queued`
//! is in Redis once it is back, on both drivers. Nothing is lost, nothing answered
//! otherwise.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{config, start};
use testkit::server::RedisServer;
use tokio::sync::Mutex;

const WRITERS: usize = 8;

/// What a writer was told about one store.
#[derive(Debug)]
struct Answer {
    agent: String,
    memory_id: String,
    ticket: Option<u64>,
}

/// Waits until `count` reaches `at_least`, failing after `within`.
async fn wait_for(count: &AtomicU64, at_least: u64, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while count.load(Ordering::Relaxed) < at_least {
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {at_least} within {within:?}",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn kill_while_storing(backend: &str) {
    let mut redis = RedisServer::builder()
        .appendfsync_always(true)
        .spawn()
        .await
        .expect("redis-server");
    let mut c = config(&redis.url());
    c.backend = Some(backend.to_owned());
    let server = Arc::new(start(c).await);

    let answers = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let acked = Arc::new(AtomicU64::new(0));
    let queued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (server, answers, acked, queued, stop) = (
            Arc::clone(&server),
            Arc::clone(&answers),
            Arc::clone(&acked),
            Arc::clone(&queued),
            Arc::clone(&stop),
        );
        writers.push(tokio::spawn(async move {
            let mut step = 0u64;
            while !stop.load(Ordering::Relaxed) {
                step += 1;
                let body = json!({"step": step, "content": {"writer": w, "step": step}, "embedding": [1.0, 0.5, 0.25, step as f32]});
                let (status, receipt) = server.open(Method::POST, &format!("/v1/agents/writer-{w}/memories"), Some(&body)).await;
                assert!(
                    status == StatusCode::CREATED || status == StatusCode::ACCEPTED,
                    "writer {w} step {step}: {status} {receipt}"
                );
                if status == StatusCode::ACCEPTED {
                    assert_eq!(receipt["outcome"], "queued");
                    queued.fetch_add(1, Ordering::Relaxed);
                }
                answers.lock().await.push(Answer {
                    agent: format!("writer-{w}"),
                    memory_id: receipt["memory_id"].as_str().expect("id").to_owned(),
                    ticket: receipt["ticket"].as_u64(),
                });
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    wait_for(
        &acked,
        200,
        Duration::from_secs(30),
        "stores before the kill",
    )
    .await;
    redis.stop().await.expect("SIGKILL");
    let at_kill = acked.load(Ordering::Relaxed);
    wait_for(
        &queued,
        100,
        Duration::from_secs(30),
        "writes queued while Redis is down",
    )
    .await;
    redis.restart().await.expect("redis-server again");
    let at_restart = acked.load(Ordering::Relaxed);
    wait_for(
        &acked,
        at_restart + 200,
        Duration::from_secs(60),
        "stores after the restart",
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }

    let answers = std::mem::take(&mut *answers.lock().await);
    // Every queued write's ticket completes.
    let deadline = Instant::now() + Duration::from_secs(60);
    for ticket in answers.iter().filter_map(|a| a.ticket) {
        loop {
            let (status, body) = server
                .open(Method::GET, &format!("/v1/tickets/{ticket}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            match body["status"].as_str() {
                Some("completed") => break,
                Some("pending") => {
                    assert!(Instant::now() < deadline, "ticket {ticket} still pending");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => panic!("ticket {ticket}: {body}"),
            }
        }
    }
    // Every acknowledged memory is in Redis: read from its tier, not the fallback.
    for a in &answers {
        let (status, body) = server
            .open(
                Method::GET,
                &format!("/v1/agents/{}/memories/{}", a.agent, a.memory_id),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{} lost: {body}", a.memory_id);
        assert_eq!(body["source"], "stm", "{body}");
    }
    let mut stored = 0;
    for w in 0..WRITERS {
        let (_, count) = server
            .open(Method::GET, &format!("/v1/agents/writer-{w}/count"), None)
            .await;
        stored += count["total"].as_u64().expect("count");
    }
    assert_eq!(
        stored,
        answers.len() as u64,
        "exactly the acknowledged writes, once each"
    );
    let tickets = answers.iter().filter(|a| a.ticket.is_some()).count();
    println!(
        "memory-server outage backend={backend} acknowledged={} at_kill={at_kill} queued={tickets} lost=0",
        answers.len()
    );
    let server = Arc::into_inner(server).expect("the writers are done");
    let summary = server.stop().await;
    assert!(summary.drained, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_while_storing_loses_nothing_redis_rs() {
    kill_while_storing("redis-rs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_while_storing_loses_nothing_fred() {
    kill_while_storing("fred").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_the_queued_writes_redis_never_took() {
    let mut redis = RedisServer::spawn().await.expect("redis-server");
    let mut c = config(&redis.url());
    c.shutdown_drain_ms = 300;
    let server = start(c).await;
    redis.stop().await.expect("SIGKILL");
    // Store until the breaker has seen enough failures to open: readiness then says the
    // fallback is serving.
    let mut queued = 0;
    loop {
        let (status, receipt) = server
            .open(
                Method::POST,
                "/v1/agents/agent-1/memories",
                Some(&json!({"step": queued, "content": "kept?"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
        assert_eq!(receipt["in_fallback"], true, "{receipt}");
        queued += 1;
        let (status, health) = server.open(Method::GET, "/readyz", None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "ready while the breaker is closed or the fallback serves: {health}"
        );
        if health["status"] == "degraded" {
            break;
        }
        assert!(queued < 100, "the breaker never opened: {health}");
    }
    let summary = server.stop().await;
    assert!(!summary.drained);
    assert_eq!(summary.abandoned, queued, "{summary:?}");
}
