//! One agent's run: paced steps, a write per step, some reads, then waiting for its queued
//! writes; and the read-back that counts what was lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use memory_tiers::{AgentMemory, Filter, MemoryInput, Source, TieredMemory, Ulid};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resilience_core::{
    CircuitState, DeadLetterReason, Error, Priority, ResilientClient, StoreOutcome, Ticket,
    TicketOutcome,
};
use tokio::time::Instant;

use crate::embedder::{DIMENSION, embed};

/// What happened to the writes of one priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PriorityCounts {
    /// Writes issued.
    pub issued: u64,
    /// Applied at once (Critical: possibly after inline retries).
    pub stored: u64,
    /// Queued for replay (their tickets say what became of them).
    pub queued: u64,
    /// Dropped (Low only).
    pub dropped: u64,
    /// Failed: the caller was told.
    pub failed: u64,
}

/// Counters shared by the agents, the sampler and the outage driver.
pub(super) struct Shared {
    /// Store calls that have returned.
    pub writes: AtomicU64,
    /// Whether the scripted outage is on.
    pub outage_on: AtomicBool,
}

/// What one agent does.
pub(super) struct AgentPlan {
    pub index: usize,
    pub steps: usize,
    pub step: Duration,
    pub seed: u64,
    pub start: Instant,
    pub drain: Duration,
}

impl AgentPlan {
    pub(super) fn agent_id(&self) -> String {
        format!("agent_{:03}", self.index)
    }
}

/// What one agent saw.
#[derive(Default)]
pub(super) struct AgentOutcome {
    pub agent_id: String,
    /// Per priority, in `Priority::ALL` order.
    pub by_priority: [PriorityCounts; 4],
    /// Queued writes whose ticket said Completed.
    pub completed: u64,
    /// Queued writes dead-lettered, by reason.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Queued writes whose ticket did not resolve before the deadline.
    pub unresolved: u64,
    /// Failed writes, by `priority: reason`.
    pub failures: BTreeMap<String, u64>,
    /// Failed Critical writes the agent stored again after the breaker closed.
    pub critical_restored: u64,
    /// Failed Critical writes the agent could not store again before the deadline.
    pub critical_abandoned: u64,
    /// Writes also copied to the fallback tier.
    pub in_fallback: u64,
    /// Reads that returned memories, those answered by the fallback, those that found
    /// nothing, and those that failed.
    pub reads: u64,
    pub reads_fallback: u64,
    pub reads_empty: u64,
    pub read_errors: u64,
    /// `similar` searches answered, those answered by the fallback, and those that failed.
    pub searches: u64,
    pub searches_fallback: u64,
    pub search_errors: u64,
    /// Memories that must be in STM or IM at the end.
    pub must_exist: Vec<Ulid>,
    /// Things that should not happen in a demo (invalid input, corrupt entries).
    pub unexpected: Vec<String>,
}

/// The result of reading everything back.
#[derive(Default)]
pub(super) struct Verified {
    pub expected: u64,
    pub lost: u64,
    pub lost_examples: Vec<String>,
}

/// 10% Critical, 30% High, 50% Normal, 10% Low.
fn draw_priority(rng: &mut SmallRng) -> Priority {
    match rng.random_range(0..100u32) {
        0..10 => Priority::Critical,
        10..40 => Priority::High,
        40..90 => Priority::Normal,
        _ => Priority::Low,
    }
}

fn importance(priority: Priority, rng: &mut SmallRng) -> f64 {
    let base = match priority {
        Priority::Critical => 0.9,
        Priority::High => 0.7,
        Priority::Normal => 0.45,
        Priority::Low => 0.1,
    };
    base + rng.random_range(0.0..0.1)
}

/// What agents see.
pub(super) const THINGS: [&str; 6] = ["door", "key", "enemy", "ally", "chest", "trap"];

/// A memory of `thing`, and what an agent asks `similar` to recall one.
pub(super) fn sighting(thing: &str) -> String {
    let article = if thing.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("saw {article} {thing}")
}

fn memory_input(agent: &str, step: usize, priority: Priority, rng: &mut SmallRng) -> MemoryInput {
    let x: i32 = rng.random_range(-100..100);
    let y: i32 = rng.random_range(-100..100);
    let thing = THINGS[rng.random_range(0..THINGS.len())];
    let observation = format!("{} at ({x}, {y})", sighting(thing));
    let embedding = embed(&observation, DIMENSION);
    let content = serde_json::json!({
        "agent": agent,
        "step": step,
        "observation": observation,
        "position": [x, y],
        "reward": rng.random_range(-1.0..1.0f64),
        "priority": priority.as_str(),
    });
    MemoryInput::new(step as u64, content)
        .embedding(embedding)
        .importance(importance(priority, rng))
        .memory_type(if priority == Priority::Critical {
            "decision"
        } else {
            "observation"
        })
}

/// A short reason for a failed write.
fn reason(e: &Error) -> &'static str {
    match e {
        Error::CircuitOpen { .. } => "circuit open",
        Error::Timeout(_) => "timeout",
        Error::Unavailable(_) => "unavailable",
        Error::Busy(_) => "busy",
        Error::QueueFull { .. } => "queue full",
        Error::RetryBudgetExhausted(_) => "retry budget exhausted",
        Error::Shutdown => "shut down",
        Error::Server(_) => "server error",
        Error::Auth(_) => "auth",
        Error::InvalidInput(_) => "invalid input",
        Error::UnexpectedReply { .. } => "unexpected reply",
        Error::StoreFailed(_) => "store failed",
        _ => "other",
    }
}

fn dead_letter_reason(r: &DeadLetterReason) -> String {
    match r {
        DeadLetterReason::MaxAttempts { last_error, .. } => format!("max attempts ({last_error})"),
        DeadLetterReason::MaxAge { .. } => "max age".to_owned(),
        DeadLetterReason::Evicted => "evicted".to_owned(),
        DeadLetterReason::NonRetryable { error } => format!("non-retryable ({error})"),
        other => format!("{other:?}"),
    }
}

impl AgentOutcome {
    fn counts(&mut self, p: Priority) -> &mut PriorityCounts {
        &mut self.by_priority[p.rank()]
    }

    async fn read(&mut self, memory: &AgentMemory, step: usize, last: Option<Ulid>) {
        if step.is_multiple_of(3)
            && let Some(id) = last
        {
            match memory.get(id).await {
                Ok(Some(r)) => {
                    self.reads += 1;
                    if r.source == Source::Fallback {
                        self.reads_fallback += 1;
                    }
                }
                Ok(None) => self.reads_empty += 1,
                Err(_) => self.read_errors += 1,
            }
        }
        if step.is_multiple_of(7) {
            let query = embed(&sighting(THINGS[step % THINGS.len()]), DIMENSION);
            match memory.similar(&query, 3, &Filter::new()).await {
                Ok(found) => {
                    self.searches += 1;
                    if found.iter().any(|s| s.memory.source == Source::Fallback) {
                        self.searches_fallback += 1;
                    }
                }
                Err(_) => self.search_errors += 1,
            }
        }
        if step.is_multiple_of(5) {
            match memory.recent(10).await {
                Ok(found) if found.is_empty() => self.reads_empty += 1,
                Ok(found) => {
                    self.reads += 1;
                    if found.iter().any(|r| r.source == Source::Fallback) {
                        self.reads_fallback += 1;
                    }
                }
                Err(_) => self.read_errors += 1,
            }
        }
    }
}

/// Runs one agent: its steps, then its failed Critical writes again, then its tickets.
pub(super) async fn run_agent(
    plan: AgentPlan,
    memory: AgentMemory,
    client: ResilientClient,
    shared: Arc<Shared>,
) -> AgentOutcome {
    let agent_id = plan.agent_id();
    let mut rng = SmallRng::seed_from_u64(
        plan.seed ^ (plan.index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut out = AgentOutcome {
        agent_id: agent_id.clone(),
        ..AgentOutcome::default()
    };
    let mut tickets: Vec<(Ulid, Ticket)> = Vec::new();
    let mut retry_critical: Vec<MemoryInput> = Vec::new();
    let mut last: Option<Ulid> = None;

    for step in 0..plan.steps {
        tokio::time::sleep_until(plan.start + plan.step * step as u32).await;
        let priority = draw_priority(&mut rng);
        let input = memory_input(&agent_id, step, priority, &mut rng);
        out.counts(priority).issued += 1;
        let keep = (priority == Priority::Critical).then(|| input.clone());
        let receipt = memory.store(input, priority).await;
        shared.writes.fetch_add(1, Ordering::Relaxed);
        match receipt {
            Ok(receipt) => {
                last = Some(receipt.memory_id);
                if receipt.in_fallback {
                    out.in_fallback += 1;
                }
                match receipt.outcome {
                    StoreOutcome::Stored => {
                        out.counts(priority).stored += 1;
                        out.must_exist.push(receipt.memory_id);
                    }
                    StoreOutcome::Queued(ticket) => {
                        out.counts(priority).queued += 1;
                        tickets.push((receipt.memory_id, ticket));
                    }
                    StoreOutcome::Dropped => out.counts(priority).dropped += 1,
                    StoreOutcome::Failed(e) => {
                        out.counts(priority).failed += 1;
                        *out.failures
                            .entry(format!("{priority}: {}", reason(&e)))
                            .or_default() += 1;
                        if let Some(input) = keep {
                            retry_critical.push(input);
                        }
                    }
                }
            }
            Err(e) => out.unexpected.push(format!("{agent_id} step {step}: {e}")),
        }
        // Failed Critical writes: the agent was told, and stores them again once the
        // breaker has closed.
        if !retry_critical.is_empty() && client.circuit_state() == CircuitState::Closed {
            let pending = std::mem::take(&mut retry_critical);
            for input in pending {
                restore_critical(&memory, input, &mut out, &mut retry_critical).await;
            }
        }
        out.read(&memory, step, last).await;
    }

    let deadline = Instant::now() + plan.drain;
    // What is still to store again, once the breaker closes (or until the deadline).
    let mut closed = client.circuit_breaker().subscribe();
    while !retry_critical.is_empty() {
        let wait = closed.wait_for(|s| *s == CircuitState::Closed);
        if tokio::time::timeout_at(deadline, wait).await.is_err() {
            break;
        }
        let pending = std::mem::take(&mut retry_critical);
        for input in pending {
            restore_critical(&memory, input, &mut out, &mut retry_critical).await;
        }
        if !retry_critical.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    out.critical_abandoned = retry_critical.len() as u64;

    for (id, ticket) in tickets {
        match tokio::time::timeout_at(deadline, ticket.wait()).await {
            Ok(TicketOutcome::Completed) => {
                out.completed += 1;
                out.must_exist.push(id);
            }
            Ok(TicketOutcome::DeadLettered { reason }) => {
                *out.dead_lettered
                    .entry(dead_letter_reason(&reason))
                    .or_default() += 1;
            }
            Err(_) => out.unresolved += 1,
        }
    }
    out
}

async fn restore_critical(
    memory: &AgentMemory,
    input: MemoryInput,
    out: &mut AgentOutcome,
    again: &mut Vec<MemoryInput>,
) {
    match memory.store(input.clone(), Priority::Critical).await {
        Ok(receipt) => match receipt.outcome {
            StoreOutcome::Stored => {
                out.critical_restored += 1;
                out.must_exist.push(receipt.memory_id);
            }
            _ => again.push(input),
        },
        Err(e) => out.unexpected.push(format!(
            "{}: storing a Critical memory again: {e}",
            out.agent_id
        )),
    }
}

/// What `similar` recalled once the run was over.
#[derive(Default)]
pub(super) struct Recalled {
    /// Queries made: one per thing, for the first agent.
    pub queries: u64,
    /// Queries whose best match is a sighting of the thing asked for.
    pub matched: u64,
    /// One line per query: what was asked, the best match, its score and tier.
    pub examples: Vec<String>,
    /// Queries that failed.
    pub errors: Vec<String>,
}

/// Asks the first agent's memory, for each thing, which memory is most like seeing it.
pub(super) async fn recall(tiers: &TieredMemory, outcomes: &[AgentOutcome]) -> Recalled {
    let mut out = Recalled::default();
    let Some(first) = outcomes.iter().map(|o| &o.agent_id).min() else {
        return out;
    };
    let Ok(memory) = tiers.agent(first) else {
        return out;
    };
    for thing in THINGS {
        let asked = sighting(thing);
        out.queries += 1;
        match memory
            .similar(&embed(&asked, DIMENSION), 3, &Filter::new())
            .await
        {
            Ok(found) => {
                let Some(best) = found.first() else {
                    out.examples.push(format!("{first}: {asked:?} -> nothing"));
                    continue;
                };
                let seen = best.memory.entry.content["observation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if seen.starts_with(&asked) {
                    out.matched += 1;
                }
                out.examples.push(format!(
                    "{first}: {asked:?} -> {seen:?} ({:.2}, {:?})",
                    best.score, best.memory.source
                ));
            }
            Err(e) => out
                .errors
                .push(format!("{first}: similar({asked:?}) failed: {e}")),
        }
    }
    out
}

/// Reads back every memory that must exist, from STM or IM (a copy only in the fallback
/// does not count): one task per agent.
pub(super) async fn verify_all(tiers: &TieredMemory, outcomes: &[AgentOutcome]) -> Verified {
    let mut set = tokio::task::JoinSet::new();
    for outcome in outcomes {
        let Ok(memory) = tiers.agent(&outcome.agent_id) else {
            continue;
        };
        let ids = outcome.must_exist.clone();
        set.spawn(async move {
            let mut v = Verified::default();
            for id in ids {
                v.expected += 1;
                let why = match memory.get(id).await {
                    Ok(Some(r)) if matches!(r.source, Source::Stm | Source::Im) => continue,
                    Ok(Some(_)) => "only in the fallback".to_owned(),
                    Ok(None) => "not found".to_owned(),
                    Err(e) => format!("read failed: {e}"),
                };
                v.lost += 1;
                if v.lost_examples.len() < 5 {
                    v.lost_examples
                        .push(format!("{} {id}: {why}", memory.agent_id()));
                }
            }
            v
        });
    }
    let mut total = Verified::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(v) => {
                total.expected += v.expected;
                total.lost += v.lost;
                total.lost_examples.extend(v.lost_examples);
            }
            // A read-back that did not finish proves nothing: count it as a loss.
            Err(e) => {
                total.lost += 1;
                total
                    .lost_examples
                    .push(format!("a read-back task failed: {e}"));
            }
        }
    }
    total
}
