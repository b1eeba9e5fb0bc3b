//! Memory event listeners (in-memory backend): every kind of event arrives with its agent
//! and memory id; a listener that panics or blocks neither fails nor delays a write, and
//! the other listeners still get every event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memory_tiers::{
    MemoryEvent, MemoryEventKind, MemoryInput, StmConfig, TieredMemory, connect_in_memory,
};
use resilience_core::Priority;
use serde_json::json;

type Seen = Arc<Mutex<Vec<(MemoryEventKind, String, memory_tiers::Ulid)>>>;

fn recorder(seen: &Seen) -> impl Fn(&MemoryEvent) + Send + Sync + 'static {
    let seen = Arc::clone(seen);
    move |e: &MemoryEvent| {
        seen.lock()
            .unwrap()
            .push((e.kind, e.agent_id.to_string(), e.memory_id));
    }
}

/// Waits (up to 10 s of wall time: the listeners run on a thread of their own) until
/// `seen` holds an event matching `want`.
async fn wait_for(
    seen: &Seen,
    want: impl Fn(&(MemoryEventKind, String, memory_tiers::Ulid)) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if seen.lock().unwrap().iter().any(&want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_event_reaches_the_listeners() {
    let (client, _backend) = connect_in_memory("hooks");
    let seen: Seen = Arc::default();
    let mem = TieredMemory::builder(client.clone(), client)
        .stm_config(
            StmConfig::default()
                .with_capacity(2)
                .with_transition_slack(0),
        )
        .on_event(recorder(&seen))
        .build()
        .unwrap();
    let agent = mem.agent("a:1").unwrap();
    let mut ids = Vec::new();
    for step in 0..3u64 {
        let r = agent
            .store(
                MemoryInput::new(step, json!({"step": step})).importance(0.1 * (step + 1) as f64),
                Priority::Normal,
            )
            .await
            .unwrap();
        ids.push(r.memory_id);
    }
    for id in &ids {
        let id = *id;
        assert!(
            wait_for(&seen, |(k, a, m)| *k == MemoryEventKind::Stored
                && a == "a:1"
                && *m == id)
            .await,
            "no Stored for {id}"
        );
    }
    // Over capacity: the least important moved to IM.
    let moved = ids[0];
    assert!(
        wait_for(&seen, |(k, _, m)| *k == MemoryEventKind::MovedToIm
            && *m == moved)
        .await
    );
    assert!(agent.delete(ids[1]).await.unwrap());
    let deleted = ids[1];
    assert!(
        wait_for(&seen, |(k, _, m)| *k == MemoryEventKind::Deleted
            && *m == deleted)
        .await
    );
    // Clearing deletes the rest, each told.
    agent.clear().await.unwrap();
    for id in [ids[0], ids[2]] {
        assert!(
            wait_for(&seen, |(k, _, m)| *k == MemoryEventKind::Deleted
                && *m == id)
            .await,
            "no Deleted for {id} after clear"
        );
    }
    assert_eq!(mem.events_dropped(), 0);
}

#[tokio::test(start_paused = true)]
async fn expiry_seen_by_a_cleanup_is_an_event() {
    let (client, _backend) = connect_in_memory("hooks");
    let seen: Seen = Arc::default();
    let mem = TieredMemory::builder(client.clone(), client)
        .stm_config(StmConfig::default().with_ttl(Duration::from_secs(5)))
        .on_event(recorder(&seen))
        .build()
        .unwrap();
    let agent = mem.agent("a").unwrap();
    let r = agent
        .store(MemoryInput::new(1, json!(1)), Priority::Normal)
        .await
        .unwrap();
    // Past the entry's deadline (5 s), before its index's (the TTL plus 1 s of slack),
    // after which there would be nothing left to see.
    tokio::time::advance(Duration::from_millis(5_500)).await;
    let report = agent.maintain().await.unwrap();
    assert_eq!(report.expired_removed, 1);
    let id = r.memory_id;
    // Paused clock: poll the listeners' thread by yielding real time between checks.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = false;
    while Instant::now() < deadline && !found {
        found = seen
            .lock()
            .unwrap()
            .iter()
            .any(|(k, _, m)| *k == MemoryEventKind::Expired && *m == id);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(found, "no Expired event for {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_or_blocking_listener_neither_fails_nor_delays_writes() {
    let (client, _backend) = connect_in_memory("hooks");
    let seen: Seen = Arc::default();
    // The blocking listener waits on this channel until the test drops the sender.
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let mem = TieredMemory::builder(client.clone(), client)
        .on_event(|_| panic!("a listener that always panics"))
        .on_event(move |_| {
            // Blocks until the test lets go: every event waits behind it.
            if let Ok(gate) = gate.lock() {
                let _ = gate.recv();
            }
        })
        .on_event(recorder(&seen))
        .build()
        .unwrap();
    let agent = mem.agent("a").unwrap();
    // While the blocking listener holds the listeners' thread, writes still complete
    // (each well inside a generous bound; a write waiting on a listener would never end).
    let mut ids = Vec::new();
    for step in 0..20u64 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            agent.store(MemoryInput::new(step, json!(step)), Priority::Normal),
        )
        .await
        .expect("a write waited on a listener")
        .unwrap();
        assert!(r.outcome.is_stored());
        ids.push(r.memory_id);
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "the blocking listener holds the events back"
    );
    drop(release);
    for id in ids {
        assert!(
            wait_for(&seen, |(k, _, m)| *k == MemoryEventKind::Stored && *m == id).await,
            "the listener after a panicking one missed {id}"
        );
    }
    assert_eq!(mem.events_dropped(), 0);
}
