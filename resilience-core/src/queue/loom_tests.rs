//! Model-checked per-key ordering of the recovery queue (loom), in every `cargo test`.
//!
//! Every queue operation runs under the queue's one mutex, so the queue is linearizable:
//! its behaviour under concurrency is fully described by the order in which whole
//! operations (`push`, `take_batch`, `complete`) take that lock. This model therefore puts
//! a loom switch point between operations and lets loom enumerate every such order (up to
//! its preemption bound) for two pushers and the draining worker; no loom shim is needed
//! inside the queue. Run alone with:
//!
//! ```text
//! cargo test -p resilience-core --lib loom
//! ```

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use loom::thread;

use super::*;

type Op = (&'static str, u32);
/// What the drainer applied, in order: (id, keys).
type Applied = StdMutex<Vec<(u64, Vec<String>)>>;

loom::lazy_static! {
    /// Touched between queue operations: each touch is a point where loom may switch
    /// threads.
    static ref STEPS: loom::sync::atomic::AtomicUsize = loom::sync::atomic::AtomicUsize::new(0);
}

/// Executions explored (for the assertion that loom really branched).
static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn step() {
    STEPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Replays one batch as the client's worker does: apply in order, then complete.
fn drain_once(q: &RecoveryQueue<Op>, applied: &Applied) -> usize {
    let batch = q.take_batch(|_| Batching::Shareable);
    let ids: Vec<u64> = batch.iter().map(|c| c.id).collect();
    for claimed in &batch {
        let keys = keys_of(*claimed.payload);
        applied.lock().unwrap().push((claimed.id, keys));
        step();
    }
    q.complete(&ids);
    ids.len()
}

fn keys_of(op: Op) -> Vec<String> {
    let k: &[&str] = match op {
        ("a", 0) => &["k"],
        ("a", 1) => &["k", "j"],
        ("b", 0) => &["j"],
        _ => &["k"],
    };
    k.iter().map(|s| s.to_string()).collect()
}

#[test]
fn loom_concurrent_pushes_and_a_drainer_keep_per_key_issue_order() {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(|| {
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let q = Arc::new(RecoveryQueue::<Op>::new(
            "loom",
            QueueConfig {
                batch_size: 2,
                ..QueueConfig::default()
            },
        ));
        let applied: Arc<Applied> = Arc::default();
        // Issue order per key is ticket-id order: ids are handed out under the lock.
        // Mixed priorities: a High write on `k` issued after a Normal one must still wait.
        let pusher = |name: &'static str, plan: [(Priority, u32); 2]| {
            let q = q.clone();
            thread::spawn(move || {
                let mut ids = Vec::new();
                for (priority, seq) in plan {
                    let t = q.push(priority, keys_of((name, seq)), (name, seq)).unwrap();
                    ids.push(t.id());
                    step();
                }
                ids
            })
        };
        let a = pusher("a", [(Priority::High, 0), (Priority::Normal, 1)]);
        let b = pusher("b", [(Priority::Normal, 0), (Priority::High, 1)]);
        for _ in 0..2 {
            drain_once(&q, &applied);
            step();
        }
        let (a_ids, b_ids) = (a.join().unwrap(), b.join().unwrap());
        while drain_once(&q, &applied) > 0 {}

        let applied = applied.lock().unwrap();
        let mut order: Vec<u64> = applied.iter().map(|(id, _)| *id).collect();
        // Everything applied exactly once.
        order.sort_unstable();
        let mut issued: Vec<u64> = a_ids.iter().chain(&b_ids).copied().collect();
        issued.sort_unstable();
        assert_eq!(order, issued, "{applied:?}");
        assert!(a_ids[0] < a_ids[1] && b_ids[0] < b_ids[1]);
        // Per key, applied in issue order.
        let mut last: HashMap<&str, u64> = HashMap::new();
        for (id, keys) in applied.iter() {
            for key in keys {
                if let Some(prev) = last.insert(key.as_str(), *id) {
                    assert!(
                        prev < *id,
                        "key {key}: op {id} applied after {prev}: {applied:?}"
                    );
                }
            }
        }
        let stats = q.stats();
        assert_eq!((stats.completed, stats.depth), (4, 0));
    });
    let explored = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        explored > 100,
        "loom explored only {explored} interleavings"
    );
    println!("loom explored {explored} interleavings of pushes and replay");
}
