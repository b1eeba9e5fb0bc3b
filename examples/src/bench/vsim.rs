//! The `VSIM` baseline of scenario `recall`: the same vectors in a Redis 8 vector set.
//!
//! Redis 8 keeps an HNSW graph on the server (`VADD` / `VSIM`, int8-quantized by
//! default), the other way to answer "the ten memories closest to this one". Given a
//! Redis 8 `redis-server` binary (`--vsim-server`, or `BENCH_VSIM_SERVER`), this starts
//! it on the server CPU, loads every vector of the recall run into one vector set with
//! sequential `VADD`s (`FP32` blobs, the memory id as the element), and runs the same
//! queries with `VSIM … COUNT 10`. Lines, mode `vsim`:
//!
//! - **vsim_load**: vectors added per second, one `VADD` after another from one client.
//! - **vsim10**: p50 (and p99) of one `VSIM`, client and server CPU per query.
//! - **vsim_recall10**: recall@10 against exact `f32` scoring, as `recall10`.
//! - **vsim_bytes_per_vector**: the server's `used_memory` growth over the load, per
//!   vector.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use hdrhistogram::Histogram;
use memory_tiers::Ulid;
use resilience_core::{Command, ResilientClient, Value};

use super::load::process_cpu_time;
use super::measurement::Measurement;
use super::recall::{SCENARIO, mean_recall};
use super::server_cpu::{per_op, server_cpu_time, server_used_memory};
use super::{BackendChoice, BenchConfig, BenchError, connect_client};

/// The mode of every line of the baseline.
const MODE: &str = "vsim";
/// The vector set's key.
const KEY: &str = "bench-vsim";

fn failed(backend: BackendChoice, what: &'static str, error: impl ToString) -> BenchError {
    BenchError::load(backend, what, 1, error)
}

/// `v` as the little-endian `f32` blob `FP32` takes.
fn blob(v: &[f32]) -> Bytes {
    Bytes::from(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
}

fn vadd(v: &[f32], id: Ulid) -> Command {
    Command::Raw {
        args: vec![
            Bytes::from_static(b"VADD"),
            Bytes::from_static(KEY.as_bytes()),
            Bytes::from_static(b"FP32"),
            blob(v),
            Bytes::from(id.to_string()),
        ],
        keys: vec![KEY.to_owned()],
        write: true,
        idempotent: true,
    }
}

fn vsim(probe: &[f32]) -> Command {
    Command::Raw {
        args: vec![
            Bytes::from_static(b"VSIM"),
            Bytes::from_static(KEY.as_bytes()),
            Bytes::from_static(b"FP32"),
            blob(probe),
            Bytes::from_static(b"COUNT"),
            Bytes::from_static(b"10"),
        ],
        keys: vec![KEY.to_owned()],
        write: false,
        idempotent: true,
    }
}

/// The memory ids of a `VSIM` reply.
fn ids(reply: Value) -> Result<Vec<Ulid>, String> {
    let Value::Array(items) = reply else {
        return Err(format!("VSIM answered {reply:?}"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Bytes(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| Ulid::from_string(s).ok())
                .ok_or_else(|| format!("VSIM element {b:?} is no memory id")),
            other => Err(format!("VSIM element {other:?}")),
        })
        .collect()
}

/// Runs the baseline (see the module docs) on a server started from `binary`.
pub async fn run(
    config: &BenchConfig,
    backend: BackendChoice,
    binary: &Path,
    originals: &[(Ulid, Vec<f32>)],
    probes: &[Vec<f32>],
    exact: &[Vec<Ulid>],
) -> Result<Vec<Measurement>, BenchError> {
    let mut builder = testkit::server::RedisServer::builder().binary(binary);
    if let Some(split) = &config.pinning {
        builder = builder.cpus(vec![split.server]);
    }
    let server = builder.spawn().await?;
    let client = connect_client(&server.connection_config(), backend, |b| b).await?;
    let measured = measure(backend, &client, originals, probes, exact).await;
    drop(server);
    measured
}

async fn measure(
    backend: BackendChoice,
    client: &ResilientClient,
    originals: &[(Ulid, Vec<f32>)],
    probes: &[Vec<f32>],
    exact: &[Vec<Ulid>],
) -> Result<Vec<Measurement>, BenchError> {
    let vectors = originals.len() as u64;
    let memory_before = server_used_memory(client).await;
    let started = Instant::now();
    for (id, v) in originals {
        client
            .execute(vadd(v, *id))
            .await
            .map_err(|e| failed(backend, "VADD", e))?;
    }
    let load_secs = started.elapsed().as_secs_f64();
    let memory_after = server_used_memory(client).await;
    // One query first: connection warm.
    client
        .execute(vsim(&probes[0]))
        .await
        .map_err(|e| failed(backend, "VSIM", e))?;

    let queries = probes.len().max(1) as u64;
    let mut latencies = Histogram::<u64>::new(3).map_err(|e| failed(backend, "histogram", e))?;
    let mut answers = Vec::with_capacity(probes.len());
    let server_before = server_cpu_time(client).await;
    let cpu_before = process_cpu_time();
    for probe in probes {
        let started = Instant::now();
        let reply = client
            .execute(vsim(probe))
            .await
            .map_err(|e| failed(backend, "VSIM", e))?;
        let _ = latencies.record(started.elapsed().as_nanos() as u64);
        answers.push(ids(reply).map_err(|e| failed(backend, "VSIM", e))?);
    }
    let cpu_us = match (cpu_before, process_cpu_time()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / queries as f64),
        _ => None,
    };
    let server_us = per_op(server_before, server_cpu_time(client).await, queries);
    let us = |q: f64| latencies.value_at_quantile(q) as f64 / 1e3;
    let line = |name: &'static str, ops: u64, value: f64, unit: &'static str| {
        Measurement::new(SCENARIO, backend.name(), name, 1, ops, value, unit).mode(MODE)
    };
    let mut out = vec![
        line(
            "vsim_load",
            vectors,
            vectors as f64 / load_secs.max(1e-9),
            "ops/s",
        )
        .detail("sequential VADD FP32, one client, default quantization (int8)"),
        line("vsim10", queries, us(0.5) / 1e3, "ms")
            .latencies(us(0.5), us(0.99))
            .cpu(cpu_us)
            .server_cpu(server_us)
            .detail("VSIM FP32 … COUNT 10, one query after another"),
        line("vsim_recall10", queries, mean_recall(&answers, exact), "x")
            .detail("against exact f32 scoring of the original vectors"),
    ];
    if let (Some(before), Some(after)) = (memory_before, memory_after) {
        out.push(
            line(
                "vsim_bytes_per_vector",
                vectors,
                after.saturating_sub(before) as f64 / vectors.max(1) as f64,
                "bytes",
            )
            .detail("the server's used_memory growth over the load"),
        );
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_little_endian_f32() {
        assert_eq!(&blob(&[1.0, -2.0])[..], &[0, 0, 128, 63, 0, 0, 0, 192]);
    }

    #[test]
    fn replies_become_memory_ids() {
        let id = Ulid::from_parts(1_700_000_000_000, 42);
        let reply = Value::Array(vec![Value::Bytes(Bytes::from(id.to_string()))]);
        assert_eq!(ids(reply).unwrap(), [id]);
        assert!(ids(Value::Okay).is_err());
        assert!(ids(Value::Array(vec![Value::Bytes(Bytes::from("x"))])).is_err());
    }
}
