//! Scenario `open`: what a call costs when the breaker refuses it.
//!
//! Per backend: a resilient client connected to the server, its breaker forced open
//! (`CircuitBreaker::force_open`), then `open_concurrency` tasks (default 64) share
//! `open_ops` `GET`s, each of which must fail with `Error::CircuitOpen`. After a warm-up of
//! a tenth of the calls, the measured run reports the p99 latency of one rejected call
//! (target <= 10 µs), its p50, the rate and the CPU time per call. The breaker is reset
//! at the end.

use resilience_core::{ConnectionConfig, Error, ResilientClient};

use super::load::{OpError, run_tasks};
use super::measurement::{Goal, Measurement};
use super::{BackendChoice, BenchConfig, BenchError, connect_client};

/// The `scenario` field of this scenario.
pub const SCENARIO: &str = "open";

/// Target: p99 latency of a rejected call, in microseconds.
pub const P99_TARGET_US: f64 = 10.0;

async fn hammer(
    client: &ResilientClient,
    tasks: usize,
    ops: u64,
) -> Result<super::load::LoadResult, OpError> {
    run_tasks(
        vec![client.clone(); tasks],
        ops,
        |client: ResilientClient, _i| async move {
            match client.get("bench:open").await {
                Err(Error::CircuitOpen { .. }) => Ok(()),
                other => Err(OpError(format!("expected CircuitOpen, got {other:?}"))),
            }
        },
    )
    .await
}

/// Runs the scenario for `backend` on `connection`.
pub async fn run(
    config: &BenchConfig,
    backend: BackendChoice,
    connection: &ConnectionConfig,
) -> Result<Vec<Measurement>, BenchError> {
    let client = connect_client(connection, backend, |b| b).await?;
    client.ping().await?;
    client.circuit_breaker().force_open();
    let tasks = config.open_concurrency.max(1);
    let warmup = hammer(&client, tasks, (config.open_ops / 10).max(tasks as u64)).await;
    let result = match warmup {
        Ok(_) => hammer(&client, tasks, config.open_ops).await,
        Err(e) => Err(e),
    };
    client.circuit_breaker().reset();
    let _ = client.shutdown(std::time::Duration::ZERO).await;
    let r = result.map_err(|OpError(error)| BenchError::Load {
        backend: backend.name(),
        mode: "open",
        concurrency: tasks,
        error,
    })?;
    let p99 = r.quantile_us(0.99);
    Ok(vec![
        Measurement::new(
            SCENARIO,
            backend.name(),
            "rejected_call",
            tasks,
            r.ops,
            p99,
            "us",
        )
        .latencies(r.quantile_us(0.5), p99)
        .cpu(r.cpu_us_per_op())
        .goal(Goal::AtMost(P99_TARGET_US))
        .detail(format!(
            "value = p99; {:.0} rejected calls/s",
            r.ops_per_sec()
        )),
    ])
}
