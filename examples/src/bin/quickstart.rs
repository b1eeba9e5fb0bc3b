//! Quickstart: the basic usage examples (basic operations, priority-based
//! storage) in Rust, on the embedded in-memory backend, so it runs with no server.
//!
//! Then one scripted outage shows the priorities at work: a `Critical` write retried
//! inline, a `Normal` write queued and stored after recovery, a `Low` write dropped. Last,
//! an agent's memory (memory-tiers) recalls what it saw by similarity.
//!
//! Run: `cargo run -p examples --bin quickstart`

use std::collections::HashMap;
use std::time::Duration;

use backend_memory::InMemoryBackend;
use examples::embedder::{DIMENSION, embed};
use memory_tiers::{Filter, MemoryInput, TieredMemory};
use resilience_core::{
    Error, Jitter, Priority, ResilientClient, RetryPolicy, SetOptions, StoreOutcome, TicketOutcome,
};
use testkit::faulty::FaultyBackend;

/// `store_agent_state`: write an agent's state hash.
async fn store_agent_state(
    client: ResilientClient,
    agent_id: String,
    state_data: HashMap<String, String>,
) -> Result<(), Error> {
    client
        .hmset(format!("agent:{agent_id}:state"), state_data)
        .await
}

fn state(position: &str, health: &str) -> HashMap<String, String> {
    HashMap::from([
        ("position".to_owned(), position.to_owned()),
        ("health".to_owned(), health.to_owned()),
    ])
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The in-memory backend behind a fault injector, so we can cut "Redis" off on purpose.
    let (backend, faults) = FaultyBackend::new(InMemoryBackend::new());
    let client = ResilientClient::builder("agent_stm", backend)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .circuit_threshold(3)
                .circuit_reset_timeout(Duration::from_secs(300)),
        )
        // Short delays so the demo is quick; the defaults are 1 s doubling.
        .retry_policy(
            RetryPolicy::default()
                .with_base_delay(Duration::from_millis(100))
                .with_jitter(Jitter::None),
        )
        .build()?;

    println!("== 7.1 basic operations");
    client
        .set("agent:123:name", "Agent Smith", SetOptions::default())
        .await?;
    let name = client.get("agent:123:name").await?;
    println!(
        "get agent:123:name -> {:?}",
        name.as_deref().map(String::from_utf8_lossy)
    );
    client.hset("agent:123:state", "health", "100").await?;
    client.hset("agent:123:state", "position", "10,20").await?;
    let mut fields: Vec<(String, String)> = client
        .hgetall("agent:123:state")
        .await?
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    fields.sort();
    println!("hgetall agent:123:state -> {fields:?}");

    println!("\n== 7.2 priority-based storage, Redis healthy");
    let outcome = client
        .store_with_retry(
            "agent123",
            state("10,20", "100"),
            store_agent_state,
            Priority::Critical,
        )
        .await;
    println!("critical store -> {}", outcome.as_str());

    println!("\n== outage: Redis stops answering");
    faults.set_outage(true);

    // Critical: retried inline; Redis comes back during its retries.
    let healer = faults.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        healer.set_outage(false);
        println!("   (Redis is back)");
    });
    let outcome = client
        .store_with_retry(
            "agent123",
            state("11,20", "95"),
            store_agent_state,
            Priority::Critical,
        )
        .await;
    println!(
        "critical store during outage -> {} after {} retries",
        outcome.as_str(),
        client.stats().retries
    );

    faults.set_outage(true);
    let normal = client
        .store_with_retry(
            "agent456",
            state("3,4", "80"),
            store_agent_state,
            Priority::Normal,
        )
        .await;
    println!("normal store during outage -> {}", normal.as_str());
    let low = client
        .store_with_retry(
            "agent789",
            state("0,0", "1"),
            store_agent_state,
            Priority::Low,
        )
        .await;
    println!("low store during outage -> {}", low.as_str());
    println!(
        "breaker: {:?}, queue depth: {}",
        client.circuit_state(),
        client.stats().queue.depth
    );

    println!("\n== recovery");
    faults.set_outage(false);
    if let StoreOutcome::Queued(ticket) = normal {
        let fate = tokio::time::timeout(Duration::from_secs(10), ticket.wait()).await?;
        println!("queued normal write -> {fate:?}");
        if fate != TicketOutcome::Completed {
            return Err("the queued write was not stored".into());
        }
    }
    let health = client.hget("agent:agent456:state", "health").await?;
    println!(
        "agent456 health after replay -> {:?}",
        health.as_deref().map(String::from_utf8_lossy)
    );
    let low_present = client.exists(["agent:agent789:state"]).await?;
    println!("agent789 (low, dropped) present -> {}", low_present == 1);
    println!("\n== agent memory: recall by similarity");
    let memory = TieredMemory::builder(client.clone(), client.clone()).build()?;
    let agent = memory.agent("agent123")?;
    for (step, seen) in ["saw a red door", "found a rusty key", "heard an enemy"]
        .into_iter()
        .enumerate()
    {
        let input = MemoryInput::new(step as u64, serde_json::json!({ "observation": seen }))
            .embedding(embed(seen, DIMENSION));
        agent.store(input, Priority::Normal).await?;
    }
    let best = agent
        .similar(&embed("where was the key?", DIMENSION), 1, &Filter::new())
        .await?;
    for found in &best {
        println!(
            "similar(\"where was the key?\") -> {} (score {:.2})",
            found.memory.entry.content["observation"], found.score
        );
    }

    let stats = client.stats();
    println!(
        "\nstats: breaker {:?}, calls {}, rejected {}, retries {}, stored {}, queued {}, dropped {}, replayed {}",
        stats.circuit_state,
        stats.calls,
        stats.rejected,
        stats.retries,
        stats.stored,
        stats.queued,
        stats.dropped,
        stats.queue.completed
    );

    let report = client.shutdown(Duration::from_secs(1)).await;
    println!(
        "shutdown: drained {}, abandoned {}",
        report.drained, report.abandoned
    );
    Ok(())
}
