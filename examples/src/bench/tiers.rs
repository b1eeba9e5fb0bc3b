//! Scenario `tiers`: the memory tiers (`memory-tiers`) on a real Redis server, per backend.
//!
//! Three numbers, each from many agents with one task per agent (an agent's writes keep
//! their order, so one agent alone would serialise):
//!
//! 1. **store**: `AgentMemory::store` (Normal priority) of `tier_ops` memories over
//!    `tier_agents` agents (default 64 × 1000), memories per second. The STM capacity is set
//!    above what is stored, so no STM -> IM move runs inside the measured stores.
//! 2. **recent20**: `AgentMemory::recent(20)` as many times as there were stores, on the
//!    same agents (each holds at least 20 memories), queries per second.
//! 3. **stm_to_im**: the same agents seen through tiers whose STM capacity is 1, so each
//!    `AgentMemory::maintain()` moves all but one of the agent's memories to IM; one task per
//!    agent; memories moved per second (the sum of `MaintainReport::moved` over the wall
//!    time of the pass).
//!
//! Each also reports the server's CPU per operation (`srv µs/op`, [`super::server_cpu`]):
//! the server runs the tiers' scripts on one thread, so `1e6 / srv µs/op` bounds the rate
//! whatever the client does.
//!
//! Every agent's memories are cleared at the end (also after a failure).

use std::time::Instant;

use memory_tiers::{AgentMemory, MemoryInput, StmConfig, TieredMemory};
use resilience_core::{ConnectionConfig, Priority, ResilientClient};

use super::load::{OpError, run_tasks};
use super::measurement::{Goal, Measurement};
use super::server_cpu::{per_op, server_cpu_time};
use super::{BackendChoice, BenchConfig, BenchError, connect_client};

/// The `scenario` field of this scenario.
pub const SCENARIO: &str = "tiers";

/// Target of `store`: memories per second.
pub const STORE_TARGET: f64 = 50_000.0;
/// Target of `recent(20)`: queries per second.
pub const RECENT_TARGET: f64 = 30_000.0;
/// Target of the STM -> IM transition rate: memories moved per second.
pub const TRANSITION_TARGET: f64 = 20_000.0;

/// Runs the scenario for `backend` on `connection`; keys live under namespace `namespace`.
pub async fn run(
    config: &BenchConfig,
    backend: BackendChoice,
    connection: &ConnectionConfig,
    namespace: &str,
) -> Result<Vec<Measurement>, BenchError> {
    let client = connect_client(connection, backend, |b| b).await?;
    let agents = config.tier_agents.max(1);
    let per_agent = (config.tier_ops / agents as u64).max(20);
    let total = per_agent * agents as u64;
    let tiers = TieredMemory::builder(client.clone(), client.clone())
        .namespace(namespace)
        .stm_config(StmConfig {
            capacity: per_agent as usize + 1_000,
            ..StmConfig::default()
        })
        .build()
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let handles: Vec<AgentMemory> = (0..agents)
        .map(|a| tiers.agent(&format!("agent-{a}")))
        .collect::<Result<_, _>>()
        .map_err(|e| BenchError::InvalidConfig(e.to_string()))?;
    let result = measure(backend, &client, namespace, &handles, agents, total).await;
    let mut cleaned = Ok(());
    for agent in &handles {
        if let Err(e) = agent.clear().await {
            cleaned = Err(load_error(backend, "clear", agents, e.to_string()));
        }
    }
    let _ = client.shutdown(std::time::Duration::ZERO).await;
    let measurements = result?;
    cleaned.map(|()| measurements)
}

fn load_error(
    backend: BackendChoice,
    what: &'static str,
    concurrency: usize,
    error: String,
) -> BenchError {
    BenchError::Load {
        backend: backend.name(),
        mode: what,
        concurrency,
        error,
    }
}

async fn measure(
    backend: BackendChoice,
    client: &ResilientClient,
    namespace: &str,
    handles: &[AgentMemory],
    agents: usize,
    total: u64,
) -> Result<Vec<Measurement>, BenchError> {
    let mut out = Vec::new();
    let name = backend.name();

    // 1. store
    let server_before = server_cpu_time(client).await;
    let stored = run_tasks(
        handles.to_vec(),
        total,
        |agent: AgentMemory, i| async move {
            let input = MemoryInput::new(
                i,
                serde_json::json!({"observation": "the bench agent saw something", "step": i}),
            )
            .importance(((i % 10) as f64) / 10.0);
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
    .await
    .map_err(|OpError(e)| load_error(backend, "store", agents, e))?;
    let server_after = server_cpu_time(client).await;
    out.push(
        Measurement::new(
            SCENARIO,
            name,
            "store",
            agents,
            stored.ops,
            stored.ops_per_sec(),
            "ops/s",
        )
        .latencies(stored.quantile_us(0.5), stored.quantile_us(0.99))
        .cpu(stored.cpu_us_per_op())
        .server_cpu(per_op(server_before, server_after, stored.ops))
        .goal(Goal::AtLeast(STORE_TARGET))
        .detail(format!(
            "{agents} agents x {} memories",
            total / agents as u64
        )),
    );

    // 2. recent(20)
    let server_before = server_cpu_time(client).await;
    let recent = run_tasks(
        handles.to_vec(),
        total,
        |agent: AgentMemory, _i| async move {
            let got = agent.recent(20).await.map_err(|e| OpError(e.to_string()))?;
            if got.len() == 20 {
                Ok(())
            } else {
                Err(OpError(format!(
                    "recent(20) returned {} memories",
                    got.len()
                )))
            }
        },
    )
    .await
    .map_err(|OpError(e)| load_error(backend, "recent20", agents, e))?;
    let server_after = server_cpu_time(client).await;
    out.push(
        Measurement::new(
            SCENARIO,
            name,
            "recent20",
            agents,
            recent.ops,
            recent.ops_per_sec(),
            "ops/s",
        )
        .latencies(recent.quantile_us(0.5), recent.quantile_us(0.99))
        .cpu(recent.cpu_us_per_op())
        .server_cpu(per_op(server_before, server_after, recent.ops))
        .goal(Goal::AtLeast(RECENT_TARGET)),
    );

    // 3. STM -> IM: the same keys seen through tiers with an STM capacity of 1.
    let small = TieredMemory::builder(client.clone(), client.clone())
        .namespace(namespace)
        .stm_config(StmConfig {
            capacity: 1,
            ..StmConfig::default()
        })
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
            Ok(Err(e)) => return Err(load_error(backend, "maintain", agents, e.to_string())),
            Err(e) => return Err(load_error(backend, "maintain", agents, e.to_string())),
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
    let expected = total - agents as u64;
    if moved != expected {
        return Err(load_error(
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
    out.push(
        Measurement::new(SCENARIO, name, "stm_to_im", agents, moved, rate, "ops/s")
            .cpu(cpu)
            .server_cpu(per_op(server_before, server_after, moved))
            .goal(Goal::AtLeast(TRANSITION_TARGET))
            .detail(format!("{agents} concurrent maintain() passes")),
    );
    Ok(out)
}
