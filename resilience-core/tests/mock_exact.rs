//! Exact call expectations with the mockall backend: what reaches the backend, and how often.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use resilience_core::{
    BackendError, CircuitState, Command, Error, ResilientClient, RetryPolicy, Value,
};
use testkit::mock::MockKvBackend;

fn is_get(cmd: &Command) -> bool {
    matches!(cmd, Command::Get { key } if key == "k")
}

#[tokio::test(start_paused = true)]
async fn after_the_reset_timeout_exactly_one_probe_reaches_the_backend() {
    let mut mock = MockKvBackend::new();
    mock.expect_name().return_const("mock");
    // Three failures open the breaker; after the reset timeout, of 100 concurrent callers
    // exactly one is admitted as the probe; it fails, and the breaker re-opens.
    mock.expect_execute()
        .withf(is_get)
        .times(4)
        .returning(|_| Err(BackendError::unavailable("connection refused")));
    // The health probe's PINGs fail too.
    mock.expect_execute()
        .withf(|cmd| matches!(cmd, Command::Ping))
        .returning(|_| Err(BackendError::unavailable("connection refused")));
    let client = ResilientClient::builder("mock", mock)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .circuit_reset_timeout(Duration::from_secs(30))
                .with_health_check_interval(Duration::from_secs(3600)),
        )
        .build()
        .expect("valid client settings");
    for _ in 0..3 {
        assert!(matches!(client.get("k").await, Err(Error::Unavailable(_))));
    }
    assert_eq!(client.circuit_state(), CircuitState::Open);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("k").await })
        })
        .collect();
    let mut reached = 0;
    let mut rejected = 0;
    for call in calls {
        match call.await.unwrap() {
            Err(Error::Unavailable(_)) => reached += 1,
            Err(Error::CircuitOpen { .. }) => rejected += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((reached, rejected), (1, 99));
    assert_eq!(
        client.circuit_state(),
        CircuitState::Open,
        "a failed probe re-opens"
    );
}

#[tokio::test(start_paused = true)]
async fn execute_with_retry_makes_exactly_one_plus_max_retries_attempts() {
    let mut mock = MockKvBackend::new();
    mock.expect_name().return_const("mock");
    mock.expect_execute().withf(is_get).times(3).returning(|_| {
        Err(BackendError::new(
            resilience_core::ErrorKind::Busy,
            "LOADING",
        ))
    });
    mock.expect_execute()
        .withf(|cmd| matches!(cmd, Command::Ping))
        .returning(|_| Ok(Value::Status("PONG".into())));
    let client = ResilientClient::builder("mock", mock)
        .breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(10))
        .build()
        .expect("valid client settings");
    let policy = RetryPolicy::default().with_max_retries(2);
    let result = client
        .execute_with_retry(Command::Get { key: "k".into() }, &policy)
        .await;
    assert!(matches!(result, Err(Error::Busy(_))), "{result:?}");
}
