//! Priority handling of `store_with_retry` and `submit`, on the paused clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::Rig;
use resilience_core::{
    CircuitState, Command, DeadLetterReason, Error, ErrorKind, Priority, QueueConfig,
    ResilientClient, SetOptions, StoreOutcome, TicketOutcome,
};
use tokio::time::Instant;

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(value.as_bytes()),
        options: SetOptions::default(),
    }
}

async fn store_state(
    client: ResilientClient,
    agent: String,
    state: HashMap<String, String>,
) -> Result<(), Error> {
    client.hmset(format!("agent:{agent}:state"), state).await
}

fn state(health: &str) -> HashMap<String, String> {
    HashMap::from([
        ("health".to_owned(), health.to_owned()),
        ("position".to_owned(), "10,20".to_owned()),
    ])
}

#[tokio::test(start_paused = true)]
async fn critical_retries_inline_then_returns_the_error() {
    let (rig, client) = Rig::client(|b| {
        b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(100))
    });
    rig.faults.set_outage(true);
    let started = Instant::now();
    let outcome = client
        .store_with_retry("a1", state("100"), store_state, Priority::Critical)
        .await;
    assert!(
        matches!(outcome, StoreOutcome::Failed(Error::Unavailable(_))),
        "{outcome:?}"
    );
    assert_eq!(rig.faults.calls(), 4, "one try and the default 3 retries");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1 + 2 + 4),
        "backoff 1 s, 2 s, 4 s"
    );
    assert_eq!(
        client.stats().queue.depth,
        0,
        "critical writes are never queued"
    );
    assert_eq!(client.stats().retries, 3);
}

#[tokio::test(start_paused = true)]
async fn critical_succeeds_once_redis_answers_within_its_retries() {
    let (rig, client) = Rig::client(|b| b);
    rig.faults.fail_next(2, ErrorKind::Unavailable);
    let outcome = client
        .store_with_retry("a1", state("90"), store_state, Priority::Critical)
        .await;
    assert!(outcome.is_stored(), "{outcome:?}");
    assert_eq!(
        client
            .hget("agent:a1:state", "health")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"90"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn high_and_normal_queue_and_complete_after_recovery() {
    let (rig, client) = Rig::client(|b| b);
    rig.faults.set_outage(true);
    let high = client
        .store_with_retry("a1", state("50"), store_state, Priority::High)
        .await;
    let normal = client.submit(vec![set("k", "v")], Priority::Normal).await;
    let (StoreOutcome::Queued(high), StoreOutcome::Queued(normal)) = (high, normal) else {
        panic!("both should be queued");
    };
    assert_eq!(client.stats().queue.depth_by_priority, [0, 1, 1]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    rig.faults.set_outage(false);
    assert_eq!(high.wait().await, TicketOutcome::Completed);
    assert_eq!(normal.wait().await, TicketOutcome::Completed);
    assert_eq!(rig.get("k").await.as_deref(), Some(&b"v"[..]));
    assert_eq!(
        client
            .hget("agent:a1:state", "health")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"50"[..])
    );
    assert_eq!(client.stats().queue.depth, 0);
}

#[tokio::test(start_paused = true)]
async fn high_is_replayed_before_normal() {
    let (rig, client) = Rig::client(|b| {
        b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(1))
    });
    rig.faults.set_outage(true);
    let mut tickets = Vec::new();
    for (key, priority) in [
        ("n1", Priority::Normal),
        ("h1", Priority::High),
        ("n2", Priority::Normal),
        ("h2", Priority::High),
    ] {
        match client.submit(vec![set(key, "x")], priority).await {
            StoreOutcome::Queued(t) => tickets.push(t),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_ne!(client.circuit_state(), CircuitState::Closed);
    rig.faults.set_outage(false);
    for t in tickets {
        assert_eq!(t.wait().await, TicketOutcome::Completed);
    }
    let order: Vec<String> = rig
        .applied()
        .into_iter()
        .filter(|(c, _)| c == "SET")
        .map(|(_, k)| k)
        .collect();
    assert_eq!(order, vec!["h1", "h2", "n1", "n2"]);
}

#[tokio::test(start_paused = true)]
async fn low_is_dropped_and_counted() {
    let (rig, client) = Rig::client(|b| b);
    rig.faults.set_outage(true);
    let outcome = client.submit(vec![set("k", "v")], Priority::Low).await;
    assert!(matches!(outcome, StoreOutcome::Dropped), "{outcome:?}");
    assert_eq!(client.stats().dropped, 1);
    assert_eq!(client.stats().queue.depth, 0);
    rig.faults.set_outage(false);
    assert!(
        client
            .submit(vec![set("k", "v")], Priority::Low)
            .await
            .is_stored()
    );
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_error_fails_at_once_and_is_never_queued() {
    let (rig, client) = Rig::client(|b| b);
    client
        .set("agent:a1:state", "a string", SetOptions::default())
        .await
        .unwrap();
    for priority in [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ] {
        let calls = rig.faults.calls();
        let outcome = client
            .store_with_retry("a1", state("1"), store_state, priority)
            .await;
        match outcome {
            StoreOutcome::Failed(Error::Server(e)) => assert_eq!(e.code(), Some("WRONGTYPE")),
            other => panic!("{priority}: {other:?}"),
        }
        assert_eq!(
            rig.faults.calls(),
            calls + 1,
            "{priority}: tried exactly once"
        );
    }
    assert_eq!(client.stats().queue.enqueued, 0);
    assert_eq!(
        client.circuit_state(),
        CircuitState::Closed,
        "WRONGTYPE is not an outage"
    );
}

#[tokio::test(start_paused = true)]
async fn a_store_function_reporting_false_is_queued_not_given_up() {
    let (_rig, client) = Rig::client(|b| b);
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = attempts.clone();
    let outcome = client
        .store_with_retry(
            "a1",
            (),
            move |_c, _a, _s| {
                let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if n == 0 {
                        Err(Error::StoreFailed("disk says no".into()))
                    } else {
                        Ok(())
                    }
                }
            },
            Priority::Normal,
        )
        .await;
    let StoreOutcome::Queued(ticket) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(ticket.wait().await, TicketOutcome::Completed);
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn writes_queue_behind_older_queued_writes_on_the_same_key() {
    let (rig, client) = Rig::client(|b| {
        b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(1))
    });
    rig.faults.set_outage(true);
    let StoreOutcome::Queued(old) = client.submit(vec![set("k", "old")], Priority::Normal).await
    else {
        panic!("expected queued");
    };
    rig.faults.set_outage(false);
    // Redis is back, but the breaker is still open: the new write must not overtake.
    let new = client.submit(vec![set("k", "new")], Priority::High).await;
    let StoreOutcome::Queued(new) = new else {
        panic!("{new:?}")
    };
    assert_eq!(old.wait().await, TicketOutcome::Completed);
    assert_eq!(new.wait().await, TicketOutcome::Completed);
    assert_eq!(rig.get("k").await.as_deref(), Some(&b"new"[..]));
    // Critical waits for older queued writes on its key, then applies on top of them.
    rig.faults.set_outage(true);
    let StoreOutcome::Queued(older) = client
        .submit(vec![set("k", "older")], Priority::Normal)
        .await
    else {
        panic!("expected queued");
    };
    let faults = rig.faults.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        faults.set_outage(false);
    });
    let critical = client
        .submit(vec![set("k", "critical")], Priority::Critical)
        .await;
    assert!(critical.is_stored(), "{critical:?}");
    assert_eq!(older.wait().await, TicketOutcome::Completed);
    assert_eq!(rig.get("k").await.as_deref(), Some(&b"critical"[..]));
}

#[tokio::test(start_paused = true)]
async fn queued_writes_dead_letter_after_max_attempts_with_the_reason() {
    let (rig, client) = Rig::client(|b| {
        b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(1000))
            .queue(QueueConfig::default().with_max_attempts(3))
    });
    let letters = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = letters.clone();
    client.on_dead_letter(move |d| sink.lock().unwrap().push(d.clone()));
    rig.faults.set_outage(true);
    let StoreOutcome::Queued(ticket) = client.submit(vec![set("k", "v")], Priority::High).await
    else {
        panic!("expected queued");
    };
    match ticket.wait().await {
        TicketOutcome::DeadLettered {
            reason: DeadLetterReason::MaxAttempts { attempts, .. },
        } => assert_eq!(attempts, 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(letters.lock().unwrap().len(), 1);
    assert_eq!(client.stats().queue.dead_lettered, 1);
}

#[tokio::test(start_paused = true)]
async fn queued_writes_dead_letter_after_max_age_even_while_the_breaker_is_open() {
    let (rig, client) = Rig::client(|b| {
        b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(1))
            .queue(QueueConfig::default().with_max_age(Duration::from_secs(60)))
    });
    rig.faults.set_outage(true);
    let StoreOutcome::Queued(ticket) = client.submit(vec![set("k", "v")], Priority::Normal).await
    else {
        panic!("expected queued");
    };
    let started = Instant::now();
    match ticket.wait().await {
        TicketOutcome::DeadLettered {
            reason: DeadLetterReason::MaxAge { age },
        } => assert!(age >= Duration::from_secs(60)),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() <= Duration::from_secs(61),
        "woken by the age deadline, not a poll"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_what_it_can_and_reports_the_rest() {
    let (rig, client) = Rig::client(|b| {
        b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(1))
    });
    rig.faults.set_outage(true);
    let mut tickets = Vec::new();
    for i in 0..3 {
        let StoreOutcome::Queued(t) = client
            .submit(vec![set(&format!("k{i}"), "v")], Priority::Normal)
            .await
        else {
            panic!("expected queued");
        };
        tickets.push(t);
    }
    let report = client.shutdown(Duration::from_secs(2)).await;
    assert!(!report.drained);
    assert_eq!(report.abandoned, 3);
    for t in tickets {
        assert_eq!(
            t.wait().await,
            TicketOutcome::DeadLettered {
                reason: DeadLetterReason::Shutdown
            }
        );
    }
    assert!(matches!(
        client.submit(vec![set("k", "v")], Priority::High).await,
        StoreOutcome::Failed(Error::Shutdown)
    ));
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_queue_to_drain() {
    let (rig, client) = Rig::client(|b| {
        b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(1))
    });
    rig.faults.set_outage(true);
    let StoreOutcome::Queued(t) = client.submit(vec![set("k", "v")], Priority::Normal).await else {
        panic!("expected queued");
    };
    rig.faults.set_outage(false);
    let report = client.shutdown(Duration::from_secs(30)).await;
    assert!(report.drained);
    assert_eq!(report.abandoned, 0);
    assert_eq!(t.wait().await, TicketOutcome::Completed);
    assert_eq!(rig.get("k").await.as_deref(), Some(&b"v"[..]));
}

#[tokio::test(start_paused = true)]
async fn submit_with_reply_returns_the_reply_only_when_stored_now() {
    let (rig, client) = Rig::client(|b| {
        b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(100))
    });
    let incr = || Command::Incrby {
        key: "counter".to_owned(),
        delta: 5,
    };
    let stored = client
        .submit_with_reply(vec![incr()], Priority::Normal)
        .await;
    assert!(stored.outcome.is_stored(), "{:?}", stored.outcome);
    assert_eq!(stored.reply.unwrap().into_int().unwrap(), 5);

    let batch = client
        .submit_with_reply(vec![incr(), incr()], Priority::High)
        .await;
    assert!(batch.outcome.is_stored(), "{:?}", batch.outcome);
    let replies = batch.reply.unwrap().into_array().unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1].clone().into_int().unwrap(), 15);

    rig.faults.set_outage(true);
    let queued = client
        .submit_with_reply(vec![incr()], Priority::Normal)
        .await;
    assert!(
        matches!(queued.outcome, StoreOutcome::Queued(_)),
        "{:?}",
        queued.outcome
    );
    assert!(queued.reply.is_none(), "a queued write has no reply yet");
}
