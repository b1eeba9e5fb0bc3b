//! Scenario `once`: what an exactly-once write costs, against the same write sent plainly.
//!
//! `once_ops` sequential `INCRBY`s over 64 counters, plainly (mode `plain`), then through
//! [`ResilientClient::execute_once`] (mode `exactly-once`: the write inside the recording
//! script, under a fresh write id), one client, one call at a time. Lines:
//!
//! - **incr** (both modes): calls per second, client and server CPU per call.
//! - **incr_server** (mode `exactly-once/plain`): the server's CPU per exactly-once call
//!   over a plain one's. Held to ≤ 2.
//! - **record_bytes** (mode `exactly-once`): the server's `used_memory` growth per
//!   exactly-once call: what one record costs while it lives.

use std::time::{Duration, Instant};

use resilience_core::{Command, ConnectionConfig, ExactlyOnceConfig, ResilientClient};

use super::load::process_cpu_time;
use super::measurement::{Goal, Measurement};
use super::server_cpu::{per_op, server_cpu_time, server_used_memory};
use super::{BackendChoice, BenchConfig, BenchError, connect_client};

/// The `scenario` field of this scenario.
pub const SCENARIO: &str = "once";
/// Target of the server's CPU per exactly-once `INCRBY` over a plain one's.
pub const SERVER_RATIO_TARGET: f64 = 2.0;
/// How long the bench's records live: long enough to be measured, gone soon after.
const RECORD_TTL: Duration = Duration::from_secs(120);

fn incr(n: u64, prefix: &str) -> Command {
    Command::Incrby {
        key: format!("{prefix}{}", n % 64),
        delta: 1,
    }
}

/// What one mode's pass measured.
struct Pass {
    per_sec: f64,
    cpu_us: Option<f64>,
    server_us: Option<f64>,
    memory: Option<u64>,
}

async fn pass(
    client: &ResilientClient,
    backend: BackendChoice,
    ops: u64,
    prefix: &str,
    once: bool,
) -> Result<Pass, BenchError> {
    let failed = |e: resilience_core::Error| BenchError::load(backend, "once", 1, e);
    let memory_before = server_used_memory(client).await;
    let server_before = server_cpu_time(client).await;
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    for n in 0..ops {
        if once {
            client.execute_once(incr(n, prefix)).await.map_err(failed)?;
        } else {
            client.execute(incr(n, prefix)).await.map_err(failed)?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_us = match (cpu_before, process_cpu_time()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / ops as f64),
        _ => None,
    };
    let server_us = per_op(server_before, server_cpu_time(client).await, ops);
    let memory = match (memory_before, server_used_memory(client).await) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    Ok(Pass {
        per_sec: ops as f64 / secs.max(1e-9),
        cpu_us,
        server_us,
        memory,
    })
}

/// Runs the scenario for `backend` on `connection`.
pub async fn run(
    config: &BenchConfig,
    backend: BackendChoice,
    connection: &ConnectionConfig,
    run_id: &str,
) -> Result<Vec<Measurement>, BenchError> {
    let client = connect_client(connection, backend, |b| {
        b.exactly_once(Some(
            ExactlyOnceConfig::default().with_record_ttl(RECORD_TTL),
        ))
    })
    .await?;
    let ops = config.once_ops.max(1);
    let prefix = format!("bench-once:{run_id}:{}:", backend.name());
    // Script loaded, connection warm.
    client
        .execute_once(incr(0, &prefix))
        .await
        .map_err(|e| BenchError::load(backend, "once", 1, e))?;
    let plain = pass(&client, backend, ops, &prefix, false).await?;
    let once = pass(&client, backend, ops, &prefix, true).await?;
    let line = |metric: &'static str, mode: &'static str, value: f64, unit: &'static str| {
        Measurement::new(SCENARIO, backend.name(), metric, 1, ops, value, unit).mode(mode)
    };
    let mut out = vec![
        line("incr", "plain", plain.per_sec, "ops/s")
            .cpu(plain.cpu_us)
            .server_cpu(plain.server_us),
        line("incr", "exactly-once", once.per_sec, "ops/s")
            .cpu(once.cpu_us)
            .server_cpu(once.server_us),
    ];
    if let (Some(o), Some(p)) = (once.server_us, plain.server_us) {
        out.push(
            line("incr_server", "exactly-once/plain", o / p.max(1e-9), "x")
                .goal(Goal::AtMost(SERVER_RATIO_TARGET))
                .detail("server CPU per call, same run"),
        );
    }
    if let Some(bytes) = once.memory {
        out.push(
            line(
                "record_bytes",
                "exactly-once",
                bytes as f64 / ops as f64,
                "bytes",
            )
            .detail("the server's used_memory growth per exactly-once call (one record each)"),
        );
    }
    Ok(out)
}
