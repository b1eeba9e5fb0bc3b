//! Property tests of the recovery queue through the client: random interleavings of
//! writes, outages and recoveries, on the paused clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::Rig;
use proptest::prelude::*;
use resilience_core::{
    Command, DeadLetterReason, Priority, QueueConfig, SetOptions, StoreOutcome, TicketOutcome,
};

#[derive(Clone, Debug)]
enum Step {
    Write { key: u8, priority: Priority },
    Outage(bool),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..4, prop_oneof![Just(Priority::Critical), Just(Priority::High), Just(Priority::Normal), Just(Priority::Low)])
            .prop_map(|(key, priority)| Step::Write { key, priority }),
        1 => any::<bool>().prop_map(Step::Outage),
        1 => (0u64..3000).prop_map(Step::Wait),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

fn set(key: &str, value: String) -> Command {
    Command::Set {
        key: key.to_owned(),
        value: Bytes::from(value),
        options: SetOptions::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// After recovery every key holds the value of the last write to it that was stored or
    /// queued, and every ticket resolves `Completed`.
    #[test]
    fn after_recovery_every_key_holds_its_last_accepted_write(steps in proptest::collection::vec(step(), 1..60)) {
        runtime().block_on(async {
            let (rig, client) = Rig::client(|b| b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(2)));
            let mut expected: HashMap<String, String> = HashMap::new();
            let mut tickets = Vec::new();
            for (i, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Write { key, priority } => {
                        let key = format!("k{key}");
                        let value = format!("v{i}");
                        match client.submit(vec![set(&key, value.clone())], priority).await {
                            StoreOutcome::Stored => { expected.insert(key, value); }
                            StoreOutcome::Queued(t) => { expected.insert(key, value); tickets.push(t); }
                            StoreOutcome::Dropped => prop_assert_eq!(priority, Priority::Low),
                            StoreOutcome::Failed(e) => prop_assert!(priority == Priority::Critical, "{priority}: {e}"),
                        }
                    }
                    Step::Outage(on) => rig.faults.set_outage(on),
                    Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                }
            }
            rig.faults.set_outage(false);
            for t in tickets {
                prop_assert_eq!(t.wait().await, TicketOutcome::Completed);
            }
            for (key, value) in &expected {
                let stored = rig.get(key).await;
                prop_assert_eq!(stored.as_deref(), Some(value.as_bytes()), "key {}", key);
            }
            prop_assert_eq!(client.stats().queue.depth, 0);
            Ok(())
        })?;
    }

    /// With a small queue and a long outage: the queue never holds more than its capacity,
    /// every accepted ticket resolves (completed after recovery, or evicted by a higher
    /// priority), and refusals are `QueueFull`.
    #[test]
    fn capacity_and_eviction_hold(priorities in proptest::collection::vec(prop_oneof![Just(Priority::High), Just(Priority::Normal)], 1..80), capacity in 1usize..10) {
        runtime().block_on(async {
            let (rig, client) = Rig::client(|b| b.breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(1)).queue(QueueConfig::default().with_capacity(capacity)));
            rig.faults.set_outage(true);
            let mut tickets = Vec::new();
            let mut refused = 0;
            for (i, priority) in priorities.iter().enumerate() {
                match client.submit(vec![set(&format!("k{i}"), "v".into())], *priority).await {
                    StoreOutcome::Queued(t) => tickets.push((*priority, t)),
                    StoreOutcome::Failed(resilience_core::Error::QueueFull { .. }) => refused += 1,
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
                prop_assert!(client.stats().queue.depth <= capacity);
            }
            rig.faults.set_outage(false);
            let (mut completed, mut evicted) = (0, 0);
            for (priority, t) in tickets {
                match t.wait().await {
                    TicketOutcome::Completed => completed += 1,
                    TicketOutcome::DeadLettered { reason: DeadLetterReason::Evicted } => {
                        prop_assert_eq!(priority, Priority::Normal, "only lower priorities are evicted");
                        evicted += 1;
                    }
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            prop_assert!(completed <= capacity);
            prop_assert_eq!(completed + evicted + refused, priorities.len());
            prop_assert_eq!(client.stats().queue.evicted as usize, evicted);
            Ok(())
        })?;
    }
}
