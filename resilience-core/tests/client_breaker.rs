//! The breaker as the client uses it: fail fast while open, health probe recovery.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Rig;
use resilience_core::{CircuitState, Error, ErrorKind, SetOptions};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn opens_after_threshold_and_fails_fast_without_calling_the_backend() {
    let (rig, client) = Rig::client(|b| b);
    rig.faults.set_outage(true);
    for _ in 0..3 {
        assert!(matches!(client.get("k").await, Err(Error::Unavailable(_))));
    }
    assert_eq!(client.circuit_state(), CircuitState::Open);
    let calls = rig.faults.calls();
    for _ in 0..100 {
        assert!(matches!(
            client.get("k").await,
            Err(Error::CircuitOpen { .. })
        ));
    }
    assert_eq!(
        rig.faults.calls(),
        calls,
        "rejected calls never reach the backend"
    );
    assert_eq!(client.stats().rejected, 100);
}

#[tokio::test(start_paused = true)]
async fn server_errors_never_open_the_breaker() {
    let (_rig, client) = Rig::client(|b| b);
    client
        .set("s", "string", SetOptions::default())
        .await
        .unwrap();
    for _ in 0..20 {
        assert!(matches!(client.hget("s", "f").await, Err(Error::Server(_))));
    }
    assert_eq!(client.circuit_state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_health_probe_closes_the_breaker_about_a_second_after_recovery() {
    let (rig, client) = Rig::client(|b| {
        b.breaker(
            resilience_core::CircuitBreakerConfig::default()
                .circuit_reset_timeout(Duration::from_secs(300)),
        )
    });
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let sink = transitions.clone();
    client
        .circuit_breaker()
        .on_transition(move |t| sink.lock().unwrap().push((t.from, t.to)));
    rig.faults.set_outage(true);
    for _ in 0..3 {
        let _ = client.get("k").await;
    }
    assert_eq!(client.circuit_state(), CircuitState::Open);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        client.circuit_state(),
        CircuitState::Open,
        "still down: stays open"
    );
    rig.faults.set_outage(false);
    let recovered = Instant::now();
    common::eventually(Duration::from_secs(2), || {
        client.circuit_state() == CircuitState::Closed
    })
    .await;
    assert!(
        recovered.elapsed() <= Duration::from_millis(1100),
        "closed {:?} after recovery",
        recovered.elapsed()
    );
    assert!(client.get("k").await.is_ok());
    let seen = transitions.lock().unwrap().clone();
    assert_eq!(
        seen.first(),
        Some(&(CircuitState::Closed, CircuitState::Open))
    );
    assert_eq!(
        seen.last(),
        Some(&(CircuitState::HalfOpen, CircuitState::Closed))
    );
}

#[tokio::test(start_paused = true)]
async fn auth_errors_do_not_count_but_busy_does() {
    let (rig, client) = Rig::client(|b| b);
    rig.faults.fail_next(5, ErrorKind::Auth);
    for _ in 0..5 {
        assert!(matches!(client.get("k").await, Err(Error::Auth(_))));
    }
    assert_eq!(client.circuit_state(), CircuitState::Closed);
    rig.faults.fail_next(3, ErrorKind::Busy);
    for _ in 0..3 {
        assert!(matches!(client.get("k").await, Err(Error::Busy(_))));
    }
    assert_eq!(client.circuit_state(), CircuitState::Open);
}
