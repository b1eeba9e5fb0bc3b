//! Scenario `tiers`: the memory tiers (`memory-tiers`) on a real Redis server, per backend,
//! against the same memories written and read by hand with the raw driver
//! ([`super::hand_rolled`]) in the same run.
//!
//! Many agents, one task per agent (an agent's writes keep their order, so one agent alone
//! would serialise):
//!
//! 1. **store**: `AgentMemory::store` (Normal priority) of `tier_ops` memories over
//!    `tier_agents` agents (default 64 × 1000), memories per second; then the hand-rolled
//!    store of as many memories. The STM capacity is set above what is stored, so no
//!    STM -> IM move runs inside the measured stores.
//! 2. **recent20**: `AgentMemory::recent(20)` as many times as there were stores, on the
//!    same agents (each holds at least 20 memories); then the hand-rolled `recent(20)` as
//!    many times.
//! 3. **get**: `AgentMemory::get` by id (which counts the read: `retrieval_count` + 1, last
//!    access now) as many times as there were stores, over each agent's 20 most recent
//!    memories; then as many plain `GET`s of those same entries: the yardstick of a read by
//!    id (one single-key read; it costs this server what an `HGET` of one field does).
//! 4. **stm_to_im**: the same agents seen through tiers whose STM capacity is 1, so each
//!    `AgentMemory::maintain()` moves all but one of the agent's memories to IM; one task per
//!    agent; memories moved per second (the sum of `MaintainReport::moved` over the wall
//!    time of the pass). No baseline: a user without the tiers has no tiers to move between.
//!
//! Each line has its mode (`tiers` or `hand-rolled`), the client's CPU per operation and the
//! server's (`srv µs/op`, [`super::server_cpu`]): Redis runs commands on one thread, so
//! `1e6 / srv µs/op` bounds the rate whatever the client does. For store and recent20 a
//! third line, mode `tiers/hand-rolled`, has the throughput ratio as its value and the
//! client and server CPU ratios in its note; the store's server ratio has a line of its own
//! (`store_server`).
//!
//! Every agent's memories are cleared at the end (also after a failure).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memory_tiers::{
    AgentMemory, MemoryEntry, MemoryInput, MemoryMetadata, StmConfig, Tier, TieredMemory, Ulid,
};
use resilience_core::{ConnectionConfig, Priority, ResilientClient};

use super::hand_rolled::{HandKeys, HandRolled};
use super::load::{LoadResult, OpError, run_tasks};
use super::measurement::{Goal, Measurement};
use super::server_cpu::{per_op, server_cpu_time};
use super::{BackendChoice, BenchConfig, BenchError, connect_client};

/// The `scenario` field of this scenario.
pub const SCENARIO: &str = "tiers";

/// Target of `store`: memories per second.
pub const STORE_TARGET: f64 = 40_000.0;
/// Target of `recent(20)`: queries per second.
pub const RECENT_TARGET: f64 = 20_000.0;
/// Target of the STM -> IM transition rate: memories moved per second.
pub const TRANSITION_TARGET: f64 = 20_000.0;
/// Target of store's throughput, tiers over hand-rolled.
pub const STORE_RATIO_TARGET: f64 = 0.9;
/// Target of store's server CPU per memory, tiers over hand-rolled.
pub const STORE_SERVER_RATIO_TARGET: f64 = 1.2;
/// Target of recent(20)'s throughput, tiers over hand-rolled.
pub const RECENT_RATIO_TARGET: f64 = 0.8;
/// Target of recent(20)'s client CPU per query, in microseconds.
pub const RECENT_CPU_TARGET_US: f64 = 30.0;
/// Target of a counted read by id: server CPU per read over one plain single-key read's
/// (`GET`, which costs what an `HGET` of one field does).
pub const GET_SERVER_RATIO_TARGET: f64 = 2.0;

/// The mode of the tiers' lines.
const TIERS: &str = "tiers";
/// The mode of the baseline's lines.
const HAND: &str = "hand-rolled";
/// The mode of the ratio lines.
const RATIO: &str = "tiers/hand-rolled";

/// Runs the scenario for `backend` on `connection`; keys live under namespace `namespace`.
pub async fn run(
    config: &BenchConfig,
    backend: BackendChoice,
    connection: &ConnectionConfig,
    namespace: &str,
) -> Result<Vec<Measurement>, BenchError> {
    let connect = |message: String| BenchError::Connect {
        backend: backend.name(),
        message,
    };
    match backend {
        #[cfg(feature = "redis-rs")]
        BackendChoice::RedisRs => {
            let hand = super::targets::RawRedisRs::connect(connection)
                .await
                .map_err(|e| connect(e.0))?;
            run_with(config, backend, connection, namespace, hand).await
        }
        #[cfg(feature = "fred")]
        BackendChoice::Fred => {
            let kv = backend_fred::FredBackend::connect(connection)
                .await
                .map_err(|e| connect(e.to_string()))?;
            let hand = super::hand_rolled::FredHand(kv.client().clone());
            run_with(config, backend, connection, namespace, hand).await
        }
        #[allow(unreachable_patterns)]
        _ => Err(BenchError::NotBuilt(backend.name())),
    }
}

async fn run_with<H: HandRolled>(
    config: &BenchConfig,
    backend: BackendChoice,
    connection: &ConnectionConfig,
    namespace: &str,
    hand: H,
) -> Result<Vec<Measurement>, BenchError> {
    let client = connect_client(connection, backend, |b| b).await?;
    let agents = config.tier_agents.max(1);
    let per_agent = (config.tier_ops / agents as u64).max(20);
    let total = per_agent * agents as u64;
    let stm = StmConfig::default().with_capacity(per_agent as usize + 1_000);
    let ttl_ms = stm.ttl.as_millis() as u64;
    let tiers = TieredMemory::builder(client.clone(), client.clone())
        .namespace(namespace)
        .stm_config(stm)
        .build()
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let handles: Vec<AgentMemory> = (0..agents)
        .map(|a| tiers.agent(&format!("agent-{a}")))
        .collect::<Result<_, _>>()
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let by_hand: Vec<HandAgent<H>> = handles
        .iter()
        .map(|h| HandAgent {
            driver: hand.clone(),
            agent: h.agent_id().to_owned(),
            keys: HandKeys::new(namespace, h.agent_id()),
            ttl_ms,
        })
        .collect();
    let setup = Setup {
        backend,
        client: &client,
        agents,
        total,
    };
    let result = measure(&setup, namespace, &handles, &by_hand).await;
    let mut cleaned = Ok(());
    for agent in &handles {
        if let Err(e) = agent.clear().await {
            cleaned = Err(BenchError::load(backend, "clear", agents, e.to_string()));
        }
    }
    for agent in &by_hand {
        if let Err(e) = agent.driver.clear(&agent.keys).await {
            cleaned = Err(BenchError::load(backend, "clear", agents, e.0));
        }
    }
    let _ = client.shutdown(Duration::ZERO).await;
    let measurements = result?;
    cleaned.map(|()| measurements)
}

/// What every phase of one backend's run shares.
struct Setup<'a> {
    backend: BackendChoice,
    client: &'a ResilientClient,
    agents: usize,
    total: u64,
}

/// One agent of the baseline.
#[derive(Clone)]
struct HandAgent<H> {
    driver: H,
    agent: String,
    keys: HandKeys,
    ttl_ms: u64,
}

/// The content every measured memory carries, tiers and baseline alike.
fn content(i: u64) -> serde_json::Value {
    serde_json::json!({"observation": "the bench agent saw something", "step": i})
}

fn importance(i: u64) -> f64 {
    ((i % 10) as f64) / 10.0
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The entry the baseline stores for step `i`: what `AgentMemory::store` would build.
fn hand_entry(agent: &str, i: u64) -> MemoryEntry {
    let now = now_ms();
    MemoryEntry {
        memory_id: Ulid::from_parts(now, rand::random::<u128>()),
        agent_id: agent.to_owned(),
        step_number: i,
        timestamp: now,
        content: content(i),
        metadata: MemoryMetadata {
            creation_time: now,
            last_access_time: now,
            compression_level: 0,
            importance_score: importance(i),
            retrieval_count: 0,
            memory_type: "observation".to_owned(),
            current_tier: Tier::Stm,
        },
        embedding: None,
    }
}

/// A measured phase: its load result and the server's CPU per operation.
struct Phase {
    load: LoadResult,
    server_us: Option<f64>,
}

impl Phase {
    fn measurement(
        &self,
        setup: &Setup<'_>,
        metric: &'static str,
        mode: &'static str,
    ) -> Measurement {
        Measurement::new(
            SCENARIO,
            setup.backend.name(),
            metric,
            setup.agents,
            self.load.ops,
            self.load.ops_per_sec(),
            "ops/s",
        )
        .mode(mode)
        .latencies(self.load.quantile_us(0.5), self.load.quantile_us(0.99))
        .cpu(self.load.cpu_us_per_op())
        .server_cpu(self.server_us)
    }
}

/// Runs `op` `setup.total` times over `states`, reading the server's CPU around it.
async fn phase<S, F, Fut>(
    setup: &Setup<'_>,
    what: &'static str,
    states: Vec<S>,
    op: F,
) -> Result<Phase, BenchError>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), OpError>> + Send + 'static,
{
    let before = server_cpu_time(setup.client).await;
    let load = run_tasks(states, setup.total, op)
        .await
        .map_err(|OpError(e)| BenchError::load(setup.backend, what, setup.agents, e))?;
    let after = server_cpu_time(setup.client).await;
    let server_us = per_op(before, after, load.ops);
    Ok(Phase { load, server_us })
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn show(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"))
}

/// The `tiers/hand-rolled` line of one metric: the throughput ratio, held to `goal`, with
/// the client and server CPU ratios in its note.
fn ratio_line(
    setup: &Setup<'_>,
    metric: &'static str,
    tiers: &Phase,
    hand: &Phase,
    goal: f64,
) -> Measurement {
    let throughput = ratio(
        Some(tiers.load.ops_per_sec()),
        Some(hand.load.ops_per_sec()),
    )
    .unwrap_or(0.0);
    let cpu = ratio(tiers.load.cpu_us_per_op(), hand.load.cpu_us_per_op());
    let server = ratio(tiers.server_us, hand.server_us);
    Measurement::new(
        SCENARIO,
        setup.backend.name(),
        metric,
        setup.agents,
        tiers.load.ops,
        throughput,
        "x",
    )
    .mode(RATIO)
    .goal(Goal::AtLeast(goal))
    .detail(format!(
        "throughput ratio; client cpu ratio {}, server cpu ratio {}",
        show(cpu),
        show(server)
    ))
}

async fn measure<H: HandRolled>(
    setup: &Setup<'_>,
    namespace: &str,
    handles: &[AgentMemory],
    by_hand: &[HandAgent<H>],
) -> Result<Vec<Measurement>, BenchError> {
    let mut out = Vec::new();
    let (agents, total) = (setup.agents, setup.total);

    // 1. store: the baseline first, then the tiers.
    let hand_store = phase(
        setup,
        "store",
        by_hand.to_vec(),
        |a: HandAgent<H>, i| async move {
            let entry = hand_entry(&a.agent, i);
            a.driver.store(&a.keys, &entry, a.ttl_ms).await
        },
    )
    .await?;
    let tiers_store = phase(
        setup,
        "store",
        handles.to_vec(),
        |agent: AgentMemory, i| async move {
            let input = MemoryInput::new(i, content(i)).importance(importance(i));
            let receipt = agent
                .store(input, Priority::Normal)
                .await
                .map_err(|e| OpError(e.to_string()))?;
            if receipt.outcome.is_stored() {
                Ok(())
            } else {
                Err(OpError(format!("store not stored: {:?}", receipt.outcome)))
            }
        },
    )
    .await?;
    let detail = format!("{agents} agents x {} memories", total / agents as u64);
    out.push(
        tiers_store
            .measurement(setup, "store", TIERS)
            .goal(Goal::AtLeast(STORE_TARGET))
            .detail(detail.clone()),
    );
    out.push(hand_store.measurement(setup, "store", HAND).detail(detail));
    out.push(ratio_line(
        setup,
        "store",
        &tiers_store,
        &hand_store,
        STORE_RATIO_TARGET,
    ));
    if let Some(server) = ratio(tiers_store.server_us, hand_store.server_us) {
        out.push(
            Measurement::new(
                SCENARIO,
                setup.backend.name(),
                "store_server",
                agents,
                tiers_store.load.ops,
                server,
                "x",
            )
            .mode(RATIO)
            .goal(Goal::AtMost(STORE_SERVER_RATIO_TARGET))
            .detail("server cpu per memory ratio"),
        );
    }

    // 2. recent(20): the tiers first, then the baseline.
    let tiers_recent = phase(
        setup,
        "recent20",
        handles.to_vec(),
        |agent: AgentMemory, _i| async move {
            let got = agent.recent(20).await.map_err(|e| OpError(e.to_string()))?;
            expect_twenty(got.len())
        },
    )
    .await?;
    let hand_recent = phase(
        setup,
        "recent20",
        by_hand.to_vec(),
        |a: HandAgent<H>, _i| async move {
            let got = a.driver.recent(&a.keys, 20).await?;
            expect_twenty(got.len())
        },
    )
    .await?;
    out.push(
        tiers_recent
            .measurement(setup, "recent20", TIERS)
            .goal(Goal::AtLeast(RECENT_TARGET)),
    );
    out.push(hand_recent.measurement(setup, "recent20", HAND));
    out.push(ratio_line(
        setup,
        "recent20",
        &tiers_recent,
        &hand_recent,
        RECENT_RATIO_TARGET,
    ));
    if let Some(cpu) = tiers_recent.load.cpu_us_per_op() {
        out.push(
            Measurement::new(
                SCENARIO,
                setup.backend.name(),
                "recent20_cpu",
                agents,
                tiers_recent.load.ops,
                cpu,
                "us",
            )
            .mode(TIERS)
            .goal(Goal::AtMost(RECENT_CPU_TARGET_US))
            .detail("client cpu per recent(20)"),
        );
    }

    // 3. get by id, counted, against one plain GET of the same entries.
    let mut readers = Vec::with_capacity(handles.len());
    for agent in handles {
        let ids: Vec<Ulid> = agent
            .recent(20)
            .await
            .map_err(|e| BenchError::load(setup.backend, "get", agents, e.to_string()))?
            .into_iter()
            .map(|r| r.entry.memory_id)
            .collect();
        readers.push((agent.clone(), std::sync::Arc::new(ids)));
    }
    let tiers_get = phase(
        setup,
        "get",
        readers.clone(),
        |(agent, ids), i| async move {
            let id = ids[i as usize % ids.len()];
            match agent.get(id).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(OpError(format!("get({id}) found nothing"))),
                Err(e) => Err(OpError(e.to_string())),
            }
        },
    )
    .await?;
    let plain: Vec<(H, std::sync::Arc<Vec<String>>)> = readers
        .iter()
        .zip(by_hand)
        .map(|((agent, ids), hand)| {
            let keys = ids
                .iter()
                .map(|id| agent.stm().keys().entry(&id.to_string()))
                .collect();
            (hand.driver.clone(), std::sync::Arc::new(keys))
        })
        .collect();
    let hand_get = phase(setup, "get", plain, |(driver, keys), i| async move {
        let key = &keys[i as usize % keys.len()];
        if driver.get(key).await? {
            Ok(())
        } else {
            Err(OpError(format!("GET {key} found nothing")))
        }
    })
    .await?;
    out.push(tiers_get.measurement(setup, "get", TIERS));
    out.push(
        hand_get
            .measurement(setup, "get", HAND)
            .detail("one plain GET of the same entry"),
    );
    if let Some(server) = ratio(tiers_get.server_us, hand_get.server_us) {
        out.push(
            Measurement::new(
                SCENARIO,
                setup.backend.name(),
                "get_server",
                agents,
                tiers_get.load.ops,
                server,
                "x",
            )
            .mode(RATIO)
            .goal(Goal::AtMost(GET_SERVER_RATIO_TARGET))
            .detail("server cpu per counted read over one plain GET's"),
        );
    }

    // 4. STM -> IM
    out.push(transition(setup, namespace, handles).await?);
    Ok(out)
}

fn expect_twenty(n: usize) -> Result<(), OpError> {
    if n == 20 {
        Ok(())
    } else {
        Err(OpError(format!("recent(20) returned {n} memories")))
    }
}

/// The STM -> IM rate: the same keys seen through tiers with an STM capacity of 1.
async fn transition(
    setup: &Setup<'_>,
    namespace: &str,
    handles: &[AgentMemory],
) -> Result<Measurement, BenchError> {
    let (backend, client, agents) = (setup.backend, setup.client, setup.agents);
    let small = TieredMemory::builder(client.clone(), client.clone())
        .namespace(namespace)
        .stm_config(StmConfig::default().with_capacity(1))
        .build()
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let overfull: Vec<AgentMemory> = handles
        .iter()
        .map(|h| small.agent(h.agent_id()))
        .collect::<Result<_, _>>()
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let server_before = server_cpu_time(client).await;
    let cpu_before = super::load::process_cpu_time();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for agent in overfull {
        set.spawn(async move { agent.maintain().await.map(|r| r.moved) });
    }
    let mut moved = 0u64;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(n)) => moved += n,
            Ok(Err(e)) => return Err(BenchError::load(backend, "maintain", agents, e.to_string())),
            Err(e) => return Err(BenchError::load(backend, "maintain", agents, e.to_string())),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let server_after = server_cpu_time(client).await;
    let cpu = match (cpu_before, super::load::process_cpu_time()) {
        (Some(b), Some(a)) if moved > 0 => {
            Some(a.saturating_sub(b).as_secs_f64() * 1e6 / moved as f64)
        }
        _ => None,
    };
    let expected = setup.total - agents as u64;
    if moved != expected {
        return Err(BenchError::load(
            backend,
            "maintain",
            agents,
            format!("moved {moved} memories, expected {expected}"),
        ));
    }
    let rate = if elapsed > 0.0 {
        moved as f64 / elapsed
    } else {
        0.0
    };
    Ok(Measurement::new(
        SCENARIO,
        backend.name(),
        "stm_to_im",
        agents,
        moved,
        rate,
        "ops/s",
    )
    .mode(TIERS)
    .cpu(cpu)
    .server_cpu(per_op(server_before, server_after, moved))
    .goal(Goal::AtLeast(TRANSITION_TARGET))
    .detail(format!("{agents} concurrent maintain() passes")))
}
