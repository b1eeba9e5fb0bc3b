//! Retries through the client: only what is safe, only within the budget.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Rig, exact_policy};
use resilience_core::{Command, Error, ErrorKind, RetryBudget, SetOptions};

#[tokio::test(start_paused = true)]
async fn a_timed_out_non_idempotent_command_is_not_retried() {
    let (rig, client) = Rig::client(|b| b);
    rig.faults.apply_then_timeout_next(1);
    let result = client
        .execute_with_retry(
            Command::Incrby {
                key: "counter".into(),
                delta: 1,
            },
            &exact_policy(),
        )
        .await;
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    assert_eq!(rig.faults.forwarded(), 1);
    assert_eq!(
        rig.get("counter").await.as_deref(),
        Some(&b"1"[..]),
        "applied exactly once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_idempotent_command_is_retried() {
    let (rig, client) = Rig::client(|b| b);
    rig.faults.apply_then_timeout_next(1);
    let cmd = Command::Set {
        key: "k".into(),
        value: Bytes::from_static(b"v"),
        options: SetOptions::default(),
    };
    client
        .execute_with_retry(cmd, &exact_policy())
        .await
        .unwrap();
    assert_eq!(rig.faults.forwarded(), 2);
}

#[tokio::test(start_paused = true)]
async fn unavailable_is_retried_even_for_non_idempotent_commands() {
    let (rig, client) = Rig::client(|b| b);
    rig.faults.fail_next(2, ErrorKind::Unavailable);
    let n = client
        .execute_with_retry(
            Command::Incrby {
                key: "counter".into(),
                delta: 1,
            },
            &exact_policy(),
        )
        .await
        .unwrap();
    assert_eq!(n, resilience_core::Value::Int(1));
    assert_eq!(rig.faults.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_retries_beyond_its_share() {
    let (rig, client) =
        Rig::client(|b| b.retry_budget(RetryBudget::new(Duration::from_secs(10), 0, 0.0)));
    rig.faults.set_outage(true);
    let result = client
        .execute_with_retry(Command::Get { key: "k".into() }, &exact_policy())
        .await;
    assert!(
        matches!(result, Err(Error::RetryBudgetExhausted(_))),
        "{result:?}"
    );
    assert_eq!(rig.faults.calls(), 1, "no retry without budget");
}

#[tokio::test(start_paused = true)]
async fn plain_calls_do_not_retry() {
    let (rig, client) = Rig::client(|b| b);
    rig.faults.fail_next(1, ErrorKind::Unavailable);
    assert!(matches!(client.get("k").await, Err(Error::Unavailable(_))));
    assert_eq!(rig.faults.calls(), 1);
    assert_eq!(client.get("k").await.unwrap(), None);
}
