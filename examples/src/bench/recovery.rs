//! Scenario `recovery`: how soon the client is back after the server returns.
//!
//! Per backend, on a private `redis-server` started for the scenario (it gets killed):
//!
//! 1. a light load runs throughout: `recovery_tasks` tasks (default 4), each doing one `GET`
//!    every millisecond through the resilient client (default settings: 3 failures open
//!    the breaker, the health probe pings every second while it is Open);
//! 2. the server is killed with SIGKILL (`RedisServer::stop`); the failures open the breaker;
//! 3. after `outage` (default 1 s) the server is restarted; the clock starts when it
//!    answers `PING` again (`RedisServer::restart` returns);
//! 4. measured: the time to the first successful `GET` of the load, and to the breaker
//!    being Closed again (target: within 1.5 s; the health check interval is 1 s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use resilience_core::{CircuitState, ResilientClient};

use super::measurement::{Goal, Measurement};
use super::{BackendChoice, BenchConfig, BenchError, connect_client};

/// The `scenario` field of this scenario.
pub const SCENARIO: &str = "recovery";

/// Target: the breaker is Closed within this many milliseconds of the server returning.
pub const CLOSED_TARGET_MS: f64 = 1_500.0;

/// Longest wait for any one step (breaker opening, closing).
const STEP_DEADLINE: Duration = Duration::from_secs(15);

fn failed(backend: BackendChoice, error: impl ToString) -> BenchError {
    BenchError::load(backend, "recovery", 0, error)
}

/// Waits until the client's breaker is in `state`, or `STEP_DEADLINE`.
async fn wait_state(client: &ResilientClient, state: CircuitState) -> bool {
    let mut rx = client.circuit_breaker().subscribe();
    tokio::time::timeout(STEP_DEADLINE, rx.wait_for(|s| *s == state))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Runs the scenario for `backend` on a private server of its own.
pub async fn run(
    config: &BenchConfig,
    backend: BackendChoice,
) -> Result<Vec<Measurement>, BenchError> {
    let mut server = config.spawn_server().await?;
    let client = connect_client(&server.connection_config(), backend, |b| b).await?;
    client
        .set("bench:recovery", "v", Default::default())
        .await?;

    let base = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    // Nanoseconds since `base` of the first success after the restart (0 = none yet).
    let first_success = Arc::new(AtomicU64::new(0));
    let tasks = config.recovery_tasks.max(1);
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (client, stop, restarted, first) = (
            client.clone(),
            Arc::clone(&stop),
            Arc::clone(&restarted),
            Arc::clone(&first_success),
        );
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let after_restart = restarted.load(Ordering::Acquire);
                if client.get("bench:recovery").await.is_ok() && after_restart {
                    let at = base.elapsed().as_nanos().max(1) as u64;
                    let _ = first.compare_exchange(0, at, Ordering::AcqRel, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    }

    let result = async {
        server.stop().await?;
        if !wait_state(&client, CircuitState::Open).await {
            return Err(failed(backend, "the breaker did not open after the kill"));
        }
        tokio::time::sleep(config.outage).await;
        server.restart().await?;
        let back = base.elapsed();
        restarted.store(true, Ordering::Release);
        if !wait_state(&client, CircuitState::Closed).await {
            return Err(failed(
                backend,
                "the breaker did not close after the restart",
            ));
        }
        let closed = base.elapsed();
        let deadline = Instant::now() + STEP_DEADLINE;
        while first_success.load(Ordering::Acquire) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let first = first_success.load(Ordering::Acquire);
        if first == 0 {
            return Err(failed(backend, "no call succeeded after the restart"));
        }
        let first = Duration::from_nanos(first);
        Ok((
            first.saturating_sub(back).as_secs_f64() * 1e3,
            closed.saturating_sub(back).as_secs_f64() * 1e3,
        ))
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    let _ = client.shutdown(Duration::ZERO).await;
    let (to_first, to_closed) = result?;
    let detail = format!(
        "SIGKILL, outage {} ms, {tasks} tasks x 1 GET/ms, health check {} ms",
        config.outage.as_millis(),
        client
            .circuit_breaker()
            .config()
            .health_check_interval
            .as_millis()
    );
    Ok(vec![
        Measurement::new(
            SCENARIO,
            backend.name(),
            "to_first_success",
            tasks,
            1,
            to_first,
            "ms",
        )
        .detail(detail.clone()),
        Measurement::new(
            SCENARIO,
            backend.name(),
            "to_closed",
            tasks,
            1,
            to_closed,
            "ms",
        )
        .goal(Goal::AtMost(CLOSED_TARGET_MS))
        .detail(detail),
    ])
}
