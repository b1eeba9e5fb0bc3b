//! Scenario `server`: memory-server over HTTP against the memory tiers called in process,
//! in the same run.
//!
//! A private redis-server (pinned to the server CPU when the bench pins) holds both; the
//! memory-server, its HTTP clients and the library's callers share the bench's CPU, so
//! the ratio is what HTTP and JSON cost on top of the library. Lines, per backend
//! (`redis-rs`, `fred`, and the embedded `memory`):
//!
//! - **store** (modes `library`, `http`): `server_ops` stores without an embedding by
//!   `server_clients` concurrent callers, one agent each; over HTTP, one keep-alive
//!   connection per caller. Best of three alternating rounds.
//! - **store_ratio** (mode `http/library`): held to ≥ 0.5 on Redis.
//! - **similar10_p50**, **similar10_p99** (modes `library`, `http`): `similar(k=10)` over
//!   one agent's `recall_memories` memories of `recall_dimension`, `recall_queries` probes,
//!   the two paths taking turns on each probe.

use std::time::Instant;

use hdrhistogram::Histogram;
use memory_server::{MemoryServer, ServerConfig};
use memory_tiers::{Filter, MemoryInput, TieredMemory};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resilience_core::{Priority, ResilientClient};
use resilient_redis::BackendKind;
use serde_json::json;

use super::load::process_cpu_time;
use super::measurement::{Goal, Measurement};
use super::server_cpu::{per_op, server_cpu_time};
use super::{BenchConfig, BenchError};

/// The `scenario` field of this scenario.
pub const SCENARIO: &str = "server";
/// Target of the HTTP store rate over the library's, on Redis.
pub const STORE_RATIO_TARGET: f64 = 0.5;
/// Alternating rounds of each store mode; the best of each is reported.
const ROUNDS: usize = 3;
/// The namespace every memory of the run lives under.
const NAMESPACE: &str = "bench_server";

fn failed(backend: &'static str, what: &'static str, e: impl ToString) -> BenchError {
    BenchError::Load {
        backend,
        mode: what,
        concurrency: 1,
        error: e.to_string(),
    }
}

/// How a round stores.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `AgentMemory::store` in process.
    Library,
    /// One `POST /memories` per memory.
    Http,
    /// `POST /memories/batch` of [`BATCH`] memories.
    HttpBatch,
}

/// Memories per request in the batch mode.
const BATCH: u64 = 16;

/// One round's rate and costs.
#[derive(Clone, Copy)]
struct Rate {
    per_sec: f64,
    /// The whole process's CPU per store (server, HTTP clients and library callers).
    cpu_us: Option<f64>,
    /// The memory-server's own threads' CPU per store (HTTP rounds only).
    http_server_us: Option<f64>,
    /// Redis's CPU per store.
    server_us: Option<f64>,
}

/// The in-process server and the library's tiers, on one backend.
struct Setup {
    name: &'static str,
    base: String,
    http: reqwest::Client,
    library: TieredMemory,
    /// A client of the backend, to read the Redis server's CPU time (`None`: embedded).
    probe: Option<ResilientClient>,
    /// The memory-server's own runtime: its threads' CPU time is the server's cost.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The name of the memory-server runtime's threads.
const SERVER_THREADS: &str = "memsrv";

/// The CPU time of this process's threads named [`SERVER_THREADS`] (Linux: each task's
/// `schedstat`, in nanoseconds).
fn server_threads_cpu() -> Option<std::time::Duration> {
    let mut total = 0u64;
    let mut seen = false;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        let is_server = std::fs::read_to_string(path.join("comm"))
            .is_ok_and(|comm| comm.trim_end().starts_with(SERVER_THREADS));
        if !is_server {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        seen = true;
    }
    seen.then(|| std::time::Duration::from_nanos(total))
}

async fn setup(config: &BenchConfig, url: &str, kind: BackendKind) -> Result<Setup, BenchError> {
    let name = kind.as_str();
    let mut server_config = ServerConfig::for_url(url).map_err(|e| failed(name, "settings", e))?;
    server_config.backend = Some(name.to_owned());
    server_config.namespace = NAMESPACE.to_owned();
    server_config.embedding_dimension = config.recall_dimension;
    server_config.maintenance_secs = 0;
    server_config.max_body_bytes = 16 << 20;
    // The server runs on a runtime of its own, one thread, so its CPU time is its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .map_err(|e| failed(name, "server runtime", e))?;
    let base = runtime
        .spawn(async move {
            let server = MemoryServer::start(server_config)
                .await
                .map_err(|e| e.to_string())?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                if let Err(e) = server.serve(listener, std::future::pending()).await {
                    tracing::error!(error = %e, "the bench's memory-server stopped");
                }
            });
            Ok::<_, String>(format!("http://{addr}"))
        })
        .await
        .map_err(|e| failed(name, "start", e))?
        .map_err(|e| failed(name, "start", e))?;
    let [stm, im] = resilient_redis::memory::connect_clients(url, kind)
        .await
        .map_err(|e| failed(name, "connect", e))?;
    let probe = (kind != BackendKind::InMemory).then(|| stm.clone());
    let library = TieredMemory::builder(stm, im)
        .namespace(NAMESPACE)
        .embedding_dimension(config.recall_dimension)
        .build()
        .map_err(|e| failed(name, "tiers", e))?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(config.server_clients.max(1))
        .build()
        .map_err(|e| failed(name, "http client", e))?;
    Ok(Setup {
        name,
        base,
        http,
        library,
        probe,
        runtime: Some(runtime),
    })
}

async fn server_time(setup: &Setup) -> Option<std::time::Duration> {
    match &setup.probe {
        Some(client) => server_cpu_time(client).await,
        None => None,
    }
}

/// One round of `ops` stores by `clients` callers, in process or over HTTP.
async fn store_round(
    setup: &Setup,
    clients: usize,
    ops: u64,
    via: Via,
    round: usize,
) -> Result<Rate, BenchError> {
    let http = via != Via::Library;
    let per_client = (ops / clients as u64).max(1);
    let server_before = server_time(setup).await;
    let threads_before = server_threads_cpu();
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let agent_id = format!("{}-{round}-{c}", if http { "http" } else { "lib" });
        let name = setup.name;
        if http {
            let (client, url) = (
                setup.http.clone(),
                format!("{}/v1/agents/{agent_id}/memories", setup.base),
            );
            tasks.push(tokio::spawn(async move {
                let per_request = if via == Via::HttpBatch { BATCH } else { 1 };
                let url = if via == Via::HttpBatch { format!("{url}/batch") } else { url };
                let mut step = 0;
                while step < per_client {
                    let memories: Vec<_> = (step..(step + per_request).min(per_client))
                        .map(|s| json!({"step": s, "content": {"note": "the door was open", "step": s}}))
                        .collect();
                    step += memories.len() as u64;
                    let body = if via == Via::HttpBatch {
                        json!({"memories": memories})
                    } else {
                        memories.into_iter().next().unwrap_or_default()
                    };
                    let response = client.post(&url).json(&body).send().await.map_err(|e| failed(name, "http store", e))?;
                    let expected = if via == Via::HttpBatch { reqwest::StatusCode::OK } else { reqwest::StatusCode::CREATED };
                    if response.status() != expected {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        return Err(failed(name, "http store", format!("{status}: {text}")));
                    }
                }
                Ok(())
            }));
        } else {
            let agent = setup
                .library
                .agent(&agent_id)
                .map_err(|e| failed(name, "agent", e))?;
            tasks.push(tokio::spawn(async move {
                for step in 0..per_client {
                    let input =
                        MemoryInput::new(step, json!({"note": "the door was open", "step": step}));
                    let receipt = agent
                        .store(input, Priority::Normal)
                        .await
                        .map_err(|e| failed(name, "store", e))?;
                    if !receipt.outcome.is_stored() {
                        return Err(failed(name, "store", receipt.outcome.as_str()));
                    }
                }
                Ok(())
            }));
        }
    }
    for task in tasks {
        task.await
            .map_err(|e| failed(setup.name, "store task", e))??;
    }
    let done = per_client * clients as u64;
    let secs = started.elapsed().as_secs_f64();
    let cpu_us = match (cpu_before, process_cpu_time()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / done as f64),
        _ => None,
    };
    let http_server_us = match (http, threads_before, server_threads_cpu()) {
        (true, Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / done as f64),
        _ => None,
    };
    Ok(Rate {
        per_sec: done as f64 / secs.max(1e-9),
        cpu_us,
        http_server_us,
        server_us: per_op(server_before, server_time(setup).await, done),
    })
}

fn unit_vector(rng: &mut SmallRng, dimension: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dimension)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.into_iter().map(|x| x / norm).collect()
}

/// Stores `memories` memories with the same seeded vectors over HTTP batches, or (for the
/// embedded backend, whose store the library's tiers do not share) through the library.
async fn load(
    config: &BenchConfig,
    setup: &Setup,
    agent_id: &str,
    http: bool,
) -> Result<(), BenchError> {
    let name = setup.name;
    let mut rng = SmallRng::seed_from_u64(7);
    let memories = config.recall_memories.max(20);
    let url = format!("{}/v1/agents/{agent_id}", setup.base);
    let agent = setup
        .library
        .agent(agent_id)
        .map_err(|e| failed(name, "agent", e))?;
    let mut step = 0u64;
    while step < memories {
        let vectors: Vec<(u64, Vec<f32>)> = (step..(step + 256).min(memories))
            .map(|s| (s, unit_vector(&mut rng, config.recall_dimension)))
            .collect();
        step += vectors.len() as u64;
        if http {
            let batch: Vec<_> = vectors
                .into_iter()
                .map(|(s, v)| json!({"step": s, "content": {"n": s}, "embedding": v}))
                .collect();
            let response = setup
                .http
                .post(format!("{url}/memories/batch"))
                .json(&json!({"memories": batch}))
                .send()
                .await
                .map_err(|e| failed(name, "load", e))?;
            let body: serde_json::Value =
                response.json().await.map_err(|e| failed(name, "load", e))?;
            let receipts = body["receipts"].as_array().map_or(&[][..], Vec::as_slice);
            if let Some(bad) = receipts.iter().find(|r| r["outcome"] != "stored") {
                return Err(failed(name, "load", bad));
            }
        } else {
            for (s, v) in vectors {
                let receipt = agent
                    .store(
                        MemoryInput::new(s, json!({"n": s})).embedding(v),
                        Priority::Normal,
                    )
                    .await
                    .map_err(|e| failed(name, "load", e))?;
                if !receipt.outcome.is_stored() {
                    return Err(failed(name, "load", receipt.outcome.as_str()));
                }
            }
        }
    }
    if http {
        setup
            .http
            .post(format!("{url}/maintain"))
            .send()
            .await
            .map_err(|e| failed(name, "maintain", e))?;
    } else {
        agent
            .maintain()
            .await
            .map_err(|e| failed(name, "maintain", e))?;
    }
    Ok(())
}

/// Loads one agent, then times `similar(k=10)` in process and over HTTP, in turns.
async fn search(
    config: &BenchConfig,
    setup: &Setup,
    embedded: bool,
) -> Result<[Histogram<u64>; 2], BenchError> {
    let name = setup.name;
    let agent_id = "searched";
    let url = format!("{}/v1/agents/{agent_id}", setup.base);
    load(config, setup, agent_id, true).await?;
    if embedded {
        load(config, setup, agent_id, false).await?;
    }
    let mut rng = SmallRng::seed_from_u64(11);
    let agent = setup
        .library
        .agent(agent_id)
        .map_err(|e| failed(name, "agent", e))?;
    let probes: Vec<Vec<f32>> = (0..config.recall_queries.max(1))
        .map(|_| unit_vector(&mut rng, config.recall_dimension))
        .collect();
    let histogram = || Histogram::<u64>::new(3).map_err(|e| failed(name, "histogram", e));
    let (mut library, mut http) = (histogram()?, histogram()?);
    let none = Filter::new();
    // One untimed pass warms both replicas.
    for timed in [false, true] {
        for probe in &probes {
            let started = Instant::now();
            let found = agent
                .similar(probe, 10, &none)
                .await
                .map_err(|e| failed(name, "similar", e))?;
            let lib_ns = started.elapsed().as_nanos() as u64;
            let started = Instant::now();
            let response = setup
                .http
                .post(format!("{url}/similar"))
                .json(&json!({"embedding": probe, "k": 10}))
                .send()
                .await
                .map_err(|e| failed(name, "http similar", e))?;
            let body: serde_json::Value = response
                .json()
                .await
                .map_err(|e| failed(name, "http similar", e))?;
            let http_ns = started.elapsed().as_nanos() as u64;
            let answered = body["results"].as_array().map_or(0, Vec::len);
            if answered != found.len() {
                return Err(failed(
                    name,
                    "http similar",
                    format!("{answered} results over HTTP, {} in process", found.len()),
                ));
            }
            if timed {
                library
                    .record(lib_ns.max(1))
                    .map_err(|e| failed(name, "histogram", e))?;
                http.record(http_ns.max(1))
                    .map_err(|e| failed(name, "histogram", e))?;
            }
        }
    }
    Ok([library, http])
}

async fn measure(
    config: &BenchConfig,
    url: &str,
    kind: BackendKind,
) -> Result<Vec<Measurement>, BenchError> {
    let setup = setup(config, url, kind).await?;
    let clients = config.server_clients.max(1);
    let ops = config.server_ops.max(clients as u64);
    // Warm: connections open, scripts loaded.
    for via in [Via::Library, Via::Http, Via::HttpBatch] {
        store_round(&setup, clients, clients as u64, via, 99).await?;
    }
    let mut best: [Option<Rate>; 3] = [None; 3];
    let vias = [Via::Library, Via::Http, Via::HttpBatch];
    for round in 0..ROUNDS {
        for (slot, via) in best.iter_mut().zip(vias) {
            let rate = store_round(&setup, clients, ops, via, round).await?;
            if slot.is_none_or(|b| rate.per_sec > b.per_sec) {
                *slot = Some(rate);
            }
        }
    }
    let name = setup.name;
    let mut out = Vec::new();
    if let [Some(lib), Some(http), Some(batch)] = best {
        for (mode, rate) in [("library", lib), ("http", http), ("http-batch16", batch)] {
            out.push(
                Measurement::new(SCENARIO, name, "store", clients, ops, rate.per_sec, "ops/s")
                    .mode(mode)
                    .cpu(rate.cpu_us)
                    .server_cpu(rate.server_us)
                    .detail(format!("best of {ROUNDS} alternating rounds; CPU is the bench process's (server, clients and library)")),
            );
        }
        out.push(
            Measurement::new(SCENARIO, name, "store_ratio", clients, ops, http.per_sec / lib.per_sec.max(1e-9), "x")
                .mode("http/library")
                .detail("HTTP stores per second over the library's, same run, the HTTP clients on the server's CPU"),
        );
        if let (Some(server_us), Some(lib_us)) = (http.http_server_us, lib.cpu_us) {
            out.push(
                Measurement::new(SCENARIO, name, "store_server_cpu", clients, ops, server_us, "us")
                    .mode("http")
                    .detail("the memory-server's own CPU per HTTP store (its runtime's thread), clients excluded"),
            );
            let bound = Measurement::new(SCENARIO, name, "store_bound_ratio", clients, ops, lib_us / server_us.max(1e-9), "x")
                .mode("http/library")
                .detail("library CPU per store over the server's per HTTP store: the rate ratio with the HTTP clients on a CPU of their own");
            out.push(if kind == BackendKind::InMemory {
                bound
            } else {
                bound.goal(Goal::AtLeast(STORE_RATIO_TARGET))
            });
        }
    }
    let [library, http] = search(config, &setup, kind == BackendKind::InMemory).await?;
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    let queries = library.len();
    for (mode, h) in [("library", &library), ("http", &http)] {
        for (metric, q) in [("similar10_p50", 0.5), ("similar10_p99", 0.99)] {
            out.push(
                Measurement::new(SCENARIO, name, metric, 1, queries, us(h, q), "us")
                    .mode(mode)
                    .detail(format!(
                        "{} memories of {} dimensions, k=10, the two paths in turns",
                        config.recall_memories.max(20),
                        config.recall_dimension
                    )),
            );
        }
    }
    if let Ok(agent) = setup.library.agent("searched")
        && let Err(e) = agent.clear().await
    {
        tracing::warn!(error = %e, "could not clear the searched agent");
    }
    drop(setup);
    Ok(out)
}

/// Runs the scenario: each built driver against a private redis-server, then the
/// embedded backend.
pub async fn run(
    config: &BenchConfig,
    backends: &[super::BackendChoice],
) -> Result<Vec<Measurement>, BenchError> {
    // The server of `--url`, or a private one (pinned when the bench pins).
    let (server, url) = match &config.url {
        Some(url) => (None, url.clone()),
        None => {
            let server = config.spawn_server().await?;
            let url = server.url();
            (Some(server), url)
        }
    };
    let mut out = Vec::new();
    for &backend in backends {
        let ms = measure(config, &url, backend.into()).await?;
        super::progress(config, &ms);
        out.extend(ms);
    }
    let ms = measure(config, "memory://", BackendKind::InMemory).await?;
    super::progress(config, &ms);
    out.extend(ms);
    drop(server);
    Ok(out)
}
