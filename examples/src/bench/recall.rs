//! Scenario `recall`: `AgentMemory::similar` on a real Redis server, per backend, against
//! the brute-force way (read every memory, decode it, score it) in the same run.
//!
//! One agent holds `recall_memories` memories (default 10,000) with embeddings of
//! dimension `recall_dimension` (default 384): a tenth in STM (f32), the rest in IM
//! (quantized, compression level 1). The vectors are clustered, as an agent's memories
//! are: 64 topics, each memory its topic's direction plus as much noise again, and each
//! query a fresh draw of a topic, so the best ten of a query are close calls among the
//! ~150 memories of its topic.
//!
//! Lines (mode `tiers` unless said):
//!
//! - **similar10**: `similar(query, 10, no filter)`, `recall_queries` queries one after
//!   another; p50 and p99 latency, client and server CPU per query. Held to p50 ≤ 5 ms.
//! - **similar10_hybrid**, **similar10_hybrid_ratio**: the same probes ranked by cosine
//!   plus BM25 of a two-word text (each memory's note is twelve words from a vocabulary
//!   of 2,000, frequent words more often), warm, each probe searched by cosine alone and
//!   then with the text, in turn; the hybrid p50, and its ratio to the cosine p50 of the
//!   same interleaved run. Held to ≤ 1.5.
//! - **similar10_per_core**: `1e6 / client CPU µs per query`: queries per second one client
//!   core sustains. Held to ≥ 200.
//! - **similar10_delayed** (with `recall_delay`): the same queries behind the fault proxy,
//!   which holds every chunk that long each way, with the local replica (mode `tiers`,
//!   held to p50 ≤ 2.5 ms at 0.5 ms each way) and without it (mode `whole-blocks`, each
//!   block read whole): the round trips and bytes of each design, off loopback.
//! - **similar10_cached**, **similar10_cached_bytes** (mode `tiers+cache`): the same
//!   queries through a client with a read cache (RESP3 tracking), on a second pass over
//!   the probes: a warm search reads its candidates' entries from the cache, so it costs
//!   the server only the blocks' deltas. With `recall_delay`, `similar10_delayed` has a
//!   `tiers+cache` line too, measured the same way.
//! - **vsim10**, **vsim_recall10**, **vsim_load**, **vsim_bytes_per_vector** (with
//!   `vsim_server`, a Redis 8 binary): the same vectors in a Redis 8 vector set on a
//!   server of their own, searched with `VSIM` (see the `vsim` module).
//! - **recall10**: recall@10 of `similar` against exact `f32` scoring of the original
//!   vectors (the fraction of the exact top ten it returned), averaged over the queries.
//!   Held to ≥ 0.95.
//! - **brute10** (mode `brute-force`): read all memories (`recent(n)`: one `MGET` per
//!   tier), decode each, score each embedding, keep the best ten; a tenth as many queries.
//! - **similar10_speedup** (mode `brute-force/tiers`): brute force's p50 over similar's.
//!   Held to ≥ 10.
//! - **im_embedding_bytes**: bytes an IM embedding takes in the vector block (its record
//!   less the 16-byte id and 3 bytes of framing), read from the block's length. Held to
//!   ≤ 400. Its note gives the server's `MEMORY USAGE` of the block per IM memory.
//!
//! The agent's memories are cleared at the end (also after a failure).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memory_tiers::{
    AgentMemory, Filter, ImConfig, MemoryInput, Scored, Scoring, StmConfig, TieredMemory, Ulid,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resilience_core::{CacheConfig, Command, ConnectionConfig, Priority, ResilientClient};
use testkit::proxy::{FaultProxy, ProxyMode};

use super::load::process_cpu_time;
use super::measurement::{Goal, Measurement};
use super::server_cpu::{per_op, server_cpu_time, server_output_bytes};
use super::{BackendChoice, BenchConfig, BenchError, connect_client};

/// The `scenario` field of this scenario.
pub const SCENARIO: &str = "recall";

/// Target of similar(k=10)'s median latency, in milliseconds.
pub const P50_TARGET_MS: f64 = 5.0;
/// Target of similar(k=10) queries per second per client core.
pub const PER_CORE_TARGET: f64 = 200.0;
/// Target of the hybrid (cosine + BM25) p50 over cosine alone's.
pub const HYBRID_RATIO_TARGET: f64 = 1.5;
/// Target of recall@10 against exact f32 scoring.
pub const RECALL_TARGET: f64 = 0.95;
/// Target of bytes per IM embedding.
pub const IM_BYTES_TARGET: f64 = 400.0;
/// Target of similar's speedup over brute force (p50 over p50).
pub const SPEEDUP_TARGET: f64 = 10.0;

const TIERS: &str = "tiers";
/// Mode of the delayed line without the local replica.
const WHOLE_BLOCKS: &str = "whole-blocks";
/// Mode of the lines whose client keeps a read cache (RESP3 tracking), so a warm search
/// reads its entries from the cache.
const TIERS_CACHED: &str = "tiers+cache";
/// Target of similar(k=10)'s median latency behind the delayed proxy, in milliseconds.
pub const DELAYED_P50_TARGET_MS: f64 = 2.5;
const BRUTE: &str = "brute-force";
/// Topics of the generated memories.
const TOPICS: usize = 64;
/// Bytes of a vector record besides the embedding: its id and framing.
const RECORD_OVERHEAD: f64 = 19.0;

/// A failed step of the (one-client) run.
fn load_error(backend: BackendChoice, what: &'static str, error: impl ToString) -> BenchError {
    BenchError::load(backend, what, 1, error)
}

/// Clustered unit vectors: a topic's direction plus noise of the same size.
struct Vectors {
    rng: SmallRng,
    topics: Vec<Vec<f32>>,
    dimension: usize,
}

impl Vectors {
    fn new(dimension: usize) -> Self {
        let mut rng = SmallRng::seed_from_u64(0x5eed);
        let topics = (0..TOPICS).map(|_| gaussian(&mut rng, dimension)).collect();
        Vectors {
            rng,
            topics,
            dimension,
        }
    }

    fn draw(&mut self) -> Vec<f32> {
        let topic = self.rng.random_range(0..TOPICS);
        let noise = gaussian(&mut self.rng, self.dimension);
        let v: Vec<f32> = self.topics[topic]
            .iter()
            .zip(noise)
            .map(|(t, n)| t + n)
            .collect();
        unit(v)
    }
}

/// A vector of standard normal draws (Box-Muller), scaled to length 1.
fn gaussian(rng: &mut SmallRng, dimension: usize) -> Vec<f32> {
    let v = (0..dimension)
        .map(|_| {
            let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    unit(v)
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The ids of the `k` best of `scored`, best first, ties by id.
fn top_k(mut scored: Vec<(f32, Ulid)>, k: usize) -> Vec<Ulid> {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

/// Runs the scenario for `backend` on `connection`; keys live under namespace `namespace`.
pub async fn run(
    config: &BenchConfig,
    backend: BackendChoice,
    connection: &ConnectionConfig,
    namespace: &str,
) -> Result<Vec<Measurement>, BenchError> {
    let client = connect_client(connection, backend, |b| b).await?;
    let memories = config.recall_memories.max(20);
    let loader = TieredMemory::builder(client.clone(), client.clone())
        .namespace(namespace)
        .embedding_dimension(config.recall_dimension)
        .stm_config(StmConfig::default().with_capacity(memories as usize + 1))
        .build()
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let agent = loader
        .agent("recaller")
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let measured = measure(config, backend, connection, &client, namespace, &agent).await;
    if let Err(e) = agent.clear().await {
        tracing::warn!(error = %e, "could not clear the recall agent");
    }
    measured
}

/// One pass of `similar(probe, 10)` over every probe, one after another.
struct QueryRun {
    /// Nanoseconds per query.
    latencies: Histogram<u64>,
    answers: Vec<Vec<Scored>>,
    /// Client CPU µs per query.
    cpu_us: Option<f64>,
    /// Server CPU µs per query.
    server_us: Option<f64>,
    /// Bytes the server sent per query.
    bytes: Option<f64>,
}

impl QueryRun {
    /// Runs `similar_scored` for each probe, with `scoring(i)` for the `i`th.
    async fn of(
        backend: BackendChoice,
        client: &ResilientClient,
        agent: &AgentMemory,
        probes: &[Vec<f32>],
        scoring: impl Fn(usize) -> Scoring,
    ) -> Result<QueryRun, BenchError> {
        let none = Filter::new();
        let queries = probes.len().max(1) as u64;
        let mut latencies =
            Histogram::<u64>::new(3).map_err(|e| load_error(backend, "histogram", e))?;
        let mut answers = Vec::with_capacity(probes.len());
        let server_before = server_cpu_time(client).await;
        let sent_before = server_output_bytes(client).await;
        let cpu_before = process_cpu_time();
        for (i, probe) in probes.iter().enumerate() {
            let scoring = scoring(i);
            let started = Instant::now();
            let found = agent
                .similar_scored(probe, 10, &none, &scoring)
                .await
                .map_err(|e| load_error(backend, "similar", e))?;
            let _ = latencies.record(started.elapsed().as_nanos() as u64);
            answers.push(found);
        }
        let cpu_us = match (cpu_before, process_cpu_time()) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / queries as f64),
            _ => None,
        };
        let server_after = server_cpu_time(client).await;
        let sent_after = server_output_bytes(client).await;
        Ok(QueryRun {
            latencies,
            answers,
            cpu_us,
            server_us: per_op(server_before, server_after, queries),
            bytes: match (sent_before, sent_after) {
                (Some(before), Some(after)) => {
                    Some(after.saturating_sub(before) as f64 / queries as f64)
                }
                _ => None,
            },
        })
    }
}

/// Words in each memory's note.
const NOTE_WORDS: usize = 12;
/// Words in a hybrid query's text.
const QUERY_WORDS: usize = 2;
/// Distinct words the notes draw from.
const VOCABULARY: u32 = 2_000;
/// The text term's weight in the hybrid queries (cosine's is 1).
const TEXT_WEIGHT: f32 = 0.3;

/// Notes of words drawn from a vocabulary of [`VOCABULARY`], the frequent more often
/// (the square of a uniform draw), as in text.
struct Words {
    rng: SmallRng,
}

impl Words {
    fn new() -> Self {
        Words {
            rng: SmallRng::seed_from_u64(0x7e47),
        }
    }

    fn draw(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| {
                let u: f64 = self.rng.random();
                format!("w{}", (u * u * f64::from(VOCABULARY)) as u32)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Lines `similar10_hybrid` and `similar10_hybrid_ratio`: each probe searched twice in
/// turn, by cosine alone and with a text term (BM25 of two words, weight
/// [`TEXT_WEIGHT`]), warm, so both see the same machine at the same moments; the hybrid
/// p50, and its ratio to the cosine p50 of the same interleaved run.
async fn hybrid(
    backend: BackendChoice,
    agent: &AgentMemory,
    probes: &[Vec<f32>],
    words: &mut Words,
) -> Result<Vec<Measurement>, BenchError> {
    let none = Filter::new();
    let texts: Vec<String> = probes.iter().map(|_| words.draw(QUERY_WORDS)).collect();
    let cosine = Scoring::cosine();
    let with_text = |i: usize| Scoring::cosine().with_text(texts[i].clone(), TEXT_WEIGHT);
    // One query first: the postings block is read whole once, then kept.
    agent
        .similar_scored(&probes[0], 10, &none, &with_text(0))
        .await
        .map_err(|e| load_error(backend, "similar_scored", e))?;
    let histogram = || Histogram::<u64>::new(3).map_err(|e| load_error(backend, "histogram", e));
    let (mut plain, mut hybrid) = (histogram()?, histogram()?);
    let mut hybrid_cpu = Duration::ZERO;
    for (i, probe) in probes.iter().enumerate() {
        for (scoring, latencies) in [(cosine.clone(), &mut plain), (with_text(i), &mut hybrid)] {
            let is_hybrid = scoring != cosine;
            let cpu_before = process_cpu_time();
            let started = Instant::now();
            agent
                .similar_scored(probe, 10, &none, &scoring)
                .await
                .map_err(|e| load_error(backend, "similar_scored", e))?;
            let _ = latencies.record(started.elapsed().as_nanos() as u64);
            if is_hybrid && let (Some(b), Some(a)) = (cpu_before, process_cpu_time()) {
                hybrid_cpu += a.saturating_sub(b);
            }
        }
    }
    let queries = probes.len().max(1) as u64;
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    let (hybrid_p50, plain_p50) = (us(&hybrid, 0.5), us(&plain, 0.5));
    Ok(vec![
        Measurement::new(
            SCENARIO,
            backend.name(),
            "similar10_hybrid",
            1,
            queries,
            hybrid_p50 / 1e3,
            "ms",
        )
        .mode(TIERS)
        .latencies(hybrid_p50, us(&hybrid, 0.99))
        .cpu(Some(hybrid_cpu.as_secs_f64() * 1e6 / queries as f64))
        .detail(format!(
            "cosine + {TEXT_WEIGHT} x BM25 of {QUERY_WORDS} words; notes of {NOTE_WORDS} words from {VOCABULARY}"
        )),
        Measurement::new(
            SCENARIO,
            backend.name(),
            "similar10_hybrid_ratio",
            1,
            queries,
            hybrid_p50 / plain_p50.max(f64::MIN_POSITIVE),
            "x",
        )
        .mode(TIERS)
        .goal(Goal::AtMost(HYBRID_RATIO_TARGET))
        .detail(format!(
            "hybrid p50 over cosine p50 ({:.2} ms), queries interleaved",
            plain_p50 / 1e3
        )),
    ])
}

/// The mean recall@10 of `answers` against `exact`.
pub(super) fn mean_recall(answers: &[Vec<Ulid>], exact: &[Vec<Ulid>]) -> f64 {
    let sum: f64 = answers
        .iter()
        .zip(exact)
        .map(|(found, exact)| {
            let hits = found.iter().filter(|id| exact.contains(id)).count();
            hits as f64 / exact.len().max(1) as f64
        })
        .sum();
    sum / answers.len().max(1) as f64
}

/// The tiers the searches run on, over `client`: STM holding a tenth of the memories (one
/// `maintain` moves the rest to IM), IM at its defaults; `replica_bytes` is the local
/// replica's budget (`None`: the default).
fn search_tiers(
    config: &BenchConfig,
    client: &ResilientClient,
    namespace: &str,
    replica_bytes: Option<u64>,
) -> Result<TieredMemory, BenchError> {
    let stm_capacity = (config.recall_memories.max(20) / 10).max(1) as usize;
    let mut builder = TieredMemory::builder(client.clone(), client.clone())
        .namespace(namespace)
        .embedding_dimension(config.recall_dimension)
        .stm_config(
            StmConfig::default()
                .with_capacity(stm_capacity)
                .with_transition_slack(0),
        )
        .im_config(ImConfig::default());
    if let Some(bytes) = replica_bytes {
        builder = builder.vector_replica_bytes(bytes);
    }
    builder
        .build()
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))
}

/// A client for `connection` with a read cache kept honest by RESP3 tracking.
async fn cached_client(
    connection: &ConnectionConfig,
    backend: BackendChoice,
) -> Result<ResilientClient, BenchError> {
    let tracked = connection.clone().with_client_tracking(true);
    connect_client(&tracked, backend, |b| {
        b.client_cache(CacheConfig::default())
    })
    .await
}

/// Lines `similar10_cached` and `similar10_cached_bytes`: the same queries through a
/// client with a read cache, measured on a second pass over the probes (the first fills
/// the cache), as an agent recalling around the same topics does.
async fn cached(
    config: &BenchConfig,
    backend: BackendChoice,
    connection: &ConnectionConfig,
    namespace: &str,
    probes: &[Vec<f32>],
) -> Result<Vec<Measurement>, BenchError> {
    let client = cached_client(connection, backend).await?;
    let tiers = search_tiers(config, &client, namespace, None)?;
    let agent = tiers
        .agent("recaller")
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let fill = QueryRun::of(backend, &client, &agent, probes, |_| Scoring::cosine()).await?;
    let run = QueryRun::of(backend, &client, &agent, probes, |_| Scoring::cosine()).await?;
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    let queries = probes.len() as u64;
    let mut out = vec![
        Measurement::new(
            SCENARIO,
            backend.name(),
            "similar10_cached",
            1,
            queries,
            us(&run.latencies, 0.5) / 1e3,
            "ms",
        )
        .mode(TIERS_CACHED)
        .latencies(us(&run.latencies, 0.5), us(&run.latencies, 0.99))
        .cpu(run.cpu_us)
        .server_cpu(run.server_us)
        .detail(format!(
            "second pass over the probes; the first (filling the cache): p50 {:.2} ms, server {:.0} µs per query",
            us(&fill.latencies, 0.5) / 1e3,
            fill.server_us.unwrap_or(f64::NAN)
        )),
    ];
    if let Some(bytes) = run.bytes {
        out.push(
            Measurement::new(
                SCENARIO,
                backend.name(),
                "similar10_cached_bytes",
                1,
                queries,
                bytes,
                "bytes",
            )
            .mode(TIERS_CACHED)
            .detail("received per query, second pass (the server's total_net_output_bytes)"),
        );
    }
    Ok(out)
}

/// `similar` behind the fault proxy adding `delay` each way, with the local replica (mode
/// `tiers`) and without it (mode `whole-blocks`, every block read whole as before the
/// replica): where each design's round trips and bytes show.
async fn delayed(
    config: &BenchConfig,
    backend: BackendChoice,
    connection: &ConnectionConfig,
    namespace: &str,
    delay: Duration,
    probes: &[Vec<f32>],
) -> Result<Vec<Measurement>, BenchError> {
    let upstream = tokio::net::lookup_host((connection.host.as_str(), connection.port))
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| load_error(backend, "proxy", "the server's address does not resolve"))?;
    let proxy = FaultProxy::start(upstream)
        .await
        .map_err(|e| load_error(backend, "proxy", e))?;
    proxy.set_mode(ProxyMode::Latency(delay));
    let through = connection
        .clone()
        .with_host(proxy.addr().ip().to_string())
        .with_port(proxy.addr().port());
    let client = connect_client(&through, backend, |b| b).await?;
    let cached = cached_client(&through, backend).await?;
    // What one round trip through the proxy costs, for the lines' notes.
    let mut ping = Histogram::<u64>::new(3).map_err(|e| load_error(backend, "histogram", e))?;
    for _ in 0..100 {
        let started = Instant::now();
        client
            .ping()
            .await
            .map_err(|e| load_error(backend, "PING", e))?;
        let _ = ping.record(started.elapsed().as_nanos() as u64);
    }
    let ping_ms = ping.value_at_quantile(0.5) as f64 / 1e6;
    let mut out = Vec::new();
    for (mode, replica_bytes, client) in [
        (TIERS, None, &client),
        (WHOLE_BLOCKS, Some(0), &client),
        (TIERS_CACHED, None, &cached),
    ] {
        let tiers = search_tiers(config, client, namespace, replica_bytes)?;
        let agent = tiers
            .agent("recaller")
            .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
        // One query first: connection warm, replica filled; with the cache, one pass over
        // every probe, so the measured pass finds its entries cached.
        let warm_up = if mode == TIERS_CACHED {
            probes
        } else {
            &probes[..1]
        };
        for probe in warm_up {
            agent
                .similar(probe, 10, &Filter::new())
                .await
                .map_err(|e| load_error(backend, "similar", e))?;
        }
        let run = QueryRun::of(backend, client, &agent, probes, |_| Scoring::cosine()).await?;
        let us = |q: f64| run.latencies.value_at_quantile(q) as f64 / 1e3;
        let mut line = Measurement::new(
            SCENARIO,
            backend.name(),
            "similar10_delayed",
            1,
            probes.len() as u64,
            us(0.5) / 1e3,
            "ms",
        )
        .mode(mode)
        .latencies(us(0.5), us(0.99))
        .cpu(run.cpu_us)
        .server_cpu(run.server_us)
        .detail(format!(
            "behind the fault proxy, {:.2} ms each way (PING p50 {ping_ms:.2} ms); {:.0} bytes received per query",
            delay.as_secs_f64() * 1e3,
            run.bytes.unwrap_or(f64::NAN)
        ));
        if mode != WHOLE_BLOCKS {
            line = line.goal(Goal::AtMost(DELAYED_P50_TARGET_MS));
        }
        out.push(line);
    }
    Ok(out)
}

async fn measure(
    config: &BenchConfig,
    backend: BackendChoice,
    connection: &ConnectionConfig,
    client: &ResilientClient,
    namespace: &str,
    loader: &AgentMemory,
) -> Result<Vec<Measurement>, BenchError> {
    let memories = config.recall_memories.max(20);
    let dimension = config.recall_dimension;
    let mut vectors = Vectors::new(dimension);
    let mut words = Words::new();
    let mut originals: Vec<(Ulid, Vec<f32>)> = Vec::with_capacity(memories as usize);
    for step in 0..memories {
        let v = vectors.draw();
        let input = MemoryInput::new(
            step,
            serde_json::json!({"step": step, "note": words.draw(NOTE_WORDS)}),
        )
        .embedding(v.clone());
        let receipt = loader
            .store(input, Priority::High)
            .await
            .map_err(|e| load_error(backend, "store", e))?;
        if !receipt.outcome.is_stored() {
            return Err(load_error(
                backend,
                "store",
                format!("{:?}", receipt.outcome),
            ));
        }
        originals.push((receipt.memory_id, v));
    }
    // The same agent through tiers whose STM holds a tenth: one pass moves the rest to IM.
    let tiers = search_tiers(config, client, namespace, None)?;
    let agent = tiers
        .agent(loader.agent_id())
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let report = agent
        .maintain()
        .await
        .map_err(|e| load_error(backend, "maintain", e))?;
    let layout = format!(
        "{} memories: {} STM, {} IM, dimension {dimension}",
        memories, report.stm_count, report.im_count
    );

    let queries = config.recall_queries.max(1);
    let probes: Vec<Vec<f32>> = (0..queries).map(|_| vectors.draw()).collect();
    let none = Filter::new();
    // One query first: connections warm, scripts loaded.
    agent
        .similar(&probes[0], 10, &none)
        .await
        .map_err(|e| load_error(backend, "similar", e))?;

    // The exact answers, computed before the clock starts.
    let exact: Vec<Vec<Ulid>> = probes
        .iter()
        .map(|probe| {
            top_k(
                originals
                    .iter()
                    .map(|(id, v)| (dot(probe, v), *id))
                    .collect(),
                10,
            )
        })
        .collect();
    let run = QueryRun::of(backend, client, &agent, &probes, |_| Scoring::cosine()).await?;
    let answers: Vec<Vec<Ulid>> = run
        .answers
        .iter()
        .map(|found| found.iter().map(|s| s.memory.entry.memory_id).collect())
        .collect();
    let recall = mean_recall(&answers, &exact);
    let (cpu_us, latencies) = (run.cpu_us, &run.latencies);
    let us = |q: f64| latencies.value_at_quantile(q) as f64 / 1e3;
    let similar_p50_ms = us(0.5) / 1e3;
    let blocks_bytes = tiers.vector_replica_bytes();
    let mut hybrid = hybrid(backend, &agent, &probes, &mut words).await?;
    // What the text indexes add to the replica of this agent's blocks.
    let replica_note = format!(
        "; local replica {blocks_bytes} bytes of blocks, {} with postings and text indexes",
        tiers.vector_replica_bytes()
    );
    if let Some(line) = hybrid.first_mut() {
        let note = line.detail.take().unwrap_or_default();
        line.detail = Some(format!("{note}{replica_note}"));
    }
    let mut out = vec![
        Measurement::new(
            SCENARIO,
            backend.name(),
            "similar10",
            1,
            queries as u64,
            similar_p50_ms,
            "ms",
        )
        .mode(TIERS)
        .latencies(us(0.5), us(0.99))
        .cpu(cpu_us)
        .server_cpu(run.server_us)
        .goal(Goal::AtMost(P50_TARGET_MS))
        .detail(layout.clone()),
    ];
    if let Some(bytes) = run.bytes {
        out.push(
            Measurement::new(
                SCENARIO,
                backend.name(),
                "similar10_bytes",
                1,
                queries as u64,
                bytes,
                "bytes",
            )
            .mode(TIERS)
            .detail("received per query (the server's total_net_output_bytes)"),
        );
    }
    if let Some(cpu) = cpu_us {
        out.push(
            Measurement::new(
                SCENARIO,
                backend.name(),
                "similar10_per_core",
                1,
                queries as u64,
                1e6 / cpu,
                "ops/s",
            )
            .mode(TIERS)
            .cpu(Some(cpu))
            .goal(Goal::AtLeast(PER_CORE_TARGET))
            .detail("1e6 / client CPU µs per query"),
        );
    }
    out.push(
        Measurement::new(
            SCENARIO,
            backend.name(),
            "recall10",
            1,
            queries as u64,
            recall,
            "x",
        )
        .mode(TIERS)
        .goal(Goal::AtLeast(RECALL_TARGET))
        .detail("against exact f32 scoring of the original vectors; IM quantized"),
    );

    out.extend(hybrid);
    out.extend(cached(config, backend, connection, namespace, &probes).await?);
    if let Some(delay) = config.recall_delay {
        out.extend(delayed(config, backend, connection, namespace, delay, &probes).await?);
    }
    if let Some(binary) = &config.vsim_server {
        out.extend(super::vsim::run(config, backend, binary, &originals, &probes, &exact).await?);
    }

    // Brute force, as AgentMemory's STM search works: every memory read and decoded.
    let brute_queries = (queries / 10).max(1);
    let mut brute = Histogram::<u64>::new(3).map_err(|e| load_error(backend, "histogram", e))?;
    let cpu_before = process_cpu_time();
    for probe in probes.iter().take(brute_queries) {
        let started = Instant::now();
        let all = agent
            .recent(memories as usize)
            .await
            .map_err(|e| load_error(backend, "recent", e))?;
        let scored = all
            .iter()
            .filter_map(|r| {
                let e = r.entry.embedding.as_ref()?;
                Some((dot(probe, e) / dot(e, e).sqrt(), r.entry.memory_id))
            })
            .collect();
        std::hint::black_box(top_k(scored, 10));
        let _ = brute.record(started.elapsed().as_nanos() as u64);
    }
    let brute_cpu = match (cpu_before, process_cpu_time()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / brute_queries as f64),
        _ => None,
    };
    let brute_p50_ms = brute.value_at_quantile(0.5) as f64 / 1e6;
    out.push(
        Measurement::new(
            SCENARIO,
            backend.name(),
            "brute10",
            1,
            brute_queries as u64,
            brute_p50_ms,
            "ms",
        )
        .mode(BRUTE)
        .latencies(
            brute.value_at_quantile(0.5) as f64 / 1e3,
            brute.value_at_quantile(0.99) as f64 / 1e3,
        )
        .cpu(brute_cpu)
        .detail("recent(all) + decode + score every embedding"),
    );
    out.push(
        Measurement::new(
            SCENARIO,
            backend.name(),
            "similar10_speedup",
            1,
            brute_queries as u64,
            brute_p50_ms / similar_p50_ms.max(f64::MIN_POSITIVE),
            "x",
        )
        .mode("brute-force/tiers")
        .goal(Goal::AtLeast(SPEEDUP_TARGET))
        .detail("p50 over p50"),
    );

    // What an IM embedding costs in its tier's vector block.
    let block = agent.im().keys().vectors.clone();
    let len = client
        .execute(Command::Raw {
            args: vec!["STRLEN".into(), block.clone().into()],
            keys: vec![block.clone()],
            write: false,
            idempotent: true,
        })
        .await
        .and_then(|v| v.into_int())
        .map_err(|e| load_error(backend, "STRLEN", e))?;
    let usage = client
        .execute(Command::Raw {
            args: vec!["MEMORY".into(), "USAGE".into(), block.clone().into()],
            keys: vec![block],
            write: false,
            idempotent: true,
        })
        .await
        .and_then(|v| v.into_int())
        .ok();
    let im = report.im_count.max(1) as f64;
    let per_record = (len.max(0) as f64 - 10.0) / im;
    let note = match usage {
        Some(bytes) => format!(
            "record {per_record:.0} bytes with id and framing; server MEMORY USAGE {:.0} bytes per IM memory",
            bytes as f64 / im
        ),
        None => format!("record {per_record:.0} bytes with id and framing"),
    };
    out.push(
        Measurement::new(
            SCENARIO,
            backend.name(),
            "im_embedding_bytes",
            1,
            report.im_count,
            per_record - RECORD_OVERHEAD,
            "bytes",
        )
        .mode(TIERS)
        .goal(Goal::AtMost(IM_BYTES_TARGET))
        .detail(note),
    );
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_and_clustered() {
        let mut v = Vectors::new(64);
        let a = v.draw();
        assert!((dot(&a, &a) - 1.0).abs() < 1e-4);
        // Same topic: about 0.5; different topics: about 0.
        let topic = unit(v.topics[0].clone());
        let near = unit(
            v.topics[0]
                .iter()
                .zip(gaussian(&mut v.rng, 64))
                .map(|(t, n)| t + n)
                .collect(),
        );
        assert!(dot(&topic, &near) > 0.5, "{}", dot(&topic, &near));
        assert!(dot(&v.topics[0], &v.topics[1]).abs() < 0.5);
    }

    #[test]
    fn top_k_breaks_ties_by_id() {
        let (a, b, c) = (Ulid::from(1u128), Ulid::from(2u128), Ulid::from(3u128));
        assert_eq!(top_k(vec![(0.5, c), (0.5, a), (0.9, b)], 2), [b, a]);
    }
}
