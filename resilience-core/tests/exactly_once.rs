//! Exactly-once writes on the in-memory backend (its Lua runs the recording script), with
//! faults injected, on the paused clock.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::Rig;
use resilience_core::{Command, ExactlyOnceConfig, Priority, StoreOutcome, TicketOutcome, Value};

fn incr(delta: i64) -> Command {
    Command::Incrby {
        key: "counter".to_owned(),
        delta,
    }
}

/// One exactly-once write first, so the script is loaded (a first send answered
/// NOSCRIPT applies nothing, and would not exercise the record).
async fn warmed(client: &resilience_core::ResilientClient) {
    client
        .execute_once(Command::Incrby {
            key: "warm-up".to_owned(),
            delta: 1,
        })
        .await
        .unwrap();
}

fn evalshas(rig: &Rig) -> usize {
    rig.applied()
        .iter()
        .filter(|(name, _)| name == "EVALSHA")
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_write_whose_reply_was_lost_is_answered_with_its_recorded_reply() {
    let (rig, client) = Rig::client(|b| b);
    warmed(&client).await;
    let before = evalshas(&rig);
    // The first send is applied, and its caller told Timeout.
    rig.faults.apply_then_timeout_next(1);
    let once = client.execute_once(incr(5)).await.unwrap();
    assert_eq!(once.value, Value::Int(5));
    assert!(once.applied_earlier, "the retry found the record");
    assert_eq!(rig.get("counter").await, Some(Bytes::from_static(b"5")));
    assert_eq!(evalshas(&rig) - before, 2, "sent twice, applied once");

    // A new call is a new write.
    let again = client.execute_once(incr(5)).await.unwrap();
    assert_eq!(again.value, Value::Int(10));
    assert!(!again.applied_earlier);
}

#[tokio::test(start_paused = true)]
async fn a_batch_is_applied_once_as_a_whole() {
    let (rig, client) = Rig::client(|b| b);
    warmed(&client).await;
    rig.faults.apply_then_timeout_next(1);
    let once = client
        .execute_batch_once(vec![
            incr(1),
            Command::Lpush {
                key: "{counter}:log".to_owned(),
                elements: vec![Bytes::from_static(b"x")],
            },
        ])
        .await
        .unwrap();
    assert_eq!(once.value, [Value::Int(1), Value::Int(1)]);
    assert!(once.applied_earlier);
    assert_eq!(rig.get("counter").await, Some(Bytes::from_static(b"1")));
}

#[tokio::test(start_paused = true)]
async fn a_high_incr_in_an_outage_is_queued_and_applied_once() {
    let (rig, client) = Rig::client(|b| b.exactly_once(Some(ExactlyOnceConfig::default())));
    rig.faults.set_outage(true);
    let outcome = client.submit(vec![incr(3)], Priority::High).await;
    let StoreOutcome::Queued(ticket) = outcome else {
        panic!("an exactly-once INCR is queued, not refused: {outcome:?}")
    };
    rig.faults.set_outage(false);
    assert_eq!(ticket.wait().await, TicketOutcome::Completed);
    assert_eq!(rig.get("counter").await, Some(Bytes::from_static(b"3")));

    // Stored at once, the reply is the write's own.
    let stored = client
        .submit_with_reply(vec![incr(4)], Priority::Normal)
        .await;
    assert!(stored.outcome.is_stored(), "{:?}", stored.outcome);
    assert_eq!(stored.reply, Some(Value::Int(7)));
}
