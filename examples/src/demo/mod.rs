//! The agent demo: many agents write memory through an outage, and nothing is lost.
//!
//! This is the project's main job in one program. [`run`] starts `agents` agents that each
//! take `steps` paced steps; every step stores one memory through
//! [`memory_tiers`] with a priority drawn from a fixed mix, and some steps read memories
//! back (`get` of the last one, `recent(10)`). In the middle of the run the backend goes
//! away, on purpose:
//!
//! | backend | outage (`--outage`) | how |
//! |---|---|---|
//! | embedded in-memory (default) | `fault` (default), `none` | `testkit::faulty::FaultyBackend` fails every call |
//! | Redis (`--backend redis-rs\|fred`) | `blackhole` (default), `kill`, `none` | `blackhole`: a `testkit::proxy::FaultProxy` in front of the server stops answering; `kill`: the spawned `redis-server` is SIGKILLed, then restarted (its AOF, fsynced on every write, brings back what it acknowledged) |
//!
//! The priority mix (`--seed` makes the draws and the contents repeatable):
//!
//! | priority | share | during the outage |
//! |---|---|---|
//! | Critical | 10% | retried inline; if it still fails, the agent is told and stores it again once the breaker has closed |
//! | High | 30% | queued, replayed first when the breaker closes |
//! | Normal | 50% | queued, replayed after High |
//! | Low | 10% | dropped (and counted) |
//!
//! Writes the primary did not confirm are also written to a local fallback tier, so reads
//! keep answering during the outage.
//!
//! When the steps are done, each agent waits for every queued write's ticket (with a
//! deadline), the client is shut down, and then every memory that should exist (stored
//! directly, replayed from the queue, or stored again by its agent) is read back from the
//! primary tiers (STM or IM, not the fallback). What is missing is **lost**; the run
//! succeeds only when nothing is lost and nothing unexpected happened
//! ([`DemoReport::is_success`]).
//!
//! The [`DemoReport`] also holds the breaker's transitions with their times, the time
//! from the outage's end to the breaker closing, and a timeline sampled every 100 ms
//! that [`chart`] draws as an SVG (writes per second, breaker state, queue depth).
//!
//! With `--metrics-addr`, a Prometheus exporter serves the metrics the core emits (see
//! [`resilience_core::observe`]): `resilience_calls_total`,
//! `resilience_call_duration_seconds`, `resilience_retries_total`,
//! `resilience_store_outcomes_total`, `resilience_queue_depth`,
//! `resilience_queue_oldest_age_seconds`, `resilience_queue_enqueued_total`,
//! `resilience_queue_completed_total`, `resilience_queue_dead_lettered_total`,
//! `resilience_breaker_transitions_total` and `resilience_breaker_state`.
//!
//! ```no_run
//! use clap::Parser;
//! use examples::demo::{DemoArgs, run};
//!
//! # async fn demo() -> Result<(), examples::demo::DemoError> {
//! let args = DemoArgs::parse_from(["agent-demo", "--agents", "5", "--steps", "40"]);
//! let report = run(&args).await?;
//! assert_eq!(report.lost, 0);
//! # Ok(())
//! # }
//! ```

mod agent;
mod args;
pub mod chart;
mod error;
pub mod report;
mod setup;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use memory_tiers::TieredMemory;
use resilience_core::{Jitter, ResilientClient, RetryPolicy};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

pub use agent::PriorityCounts;
pub use args::{DemoArgs, OutageKind};
pub use chart::state_level;
pub use error::DemoError;
pub use report::{DemoReport, Sample, TransitionRecord};

use agent::{AgentOutcome, AgentPlan, Shared};

/// The resilient client tuned for a demo: threshold 3, health probe every
/// `--health-check-ms`, retries 50 ms doubling (3 at most, capped at 500 ms), a recovery
/// queue that holds every write of the run.
fn primary_client(
    args: &DemoArgs,
    backend: Arc<dyn resilience_core::KvBackend>,
) -> Result<ResilientClient, resilience_core::Error> {
    let capacity = args.agents.saturating_mul(args.steps).max(10_000);
    ResilientClient::builder_arc("agent_demo", backend)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .circuit_threshold(3)
                // The health probe closes the breaker; this is only the backstop.
                .circuit_reset_timeout(Duration::from_secs(30))
                .with_health_check_interval(Duration::from_millis(args.health_check_ms.max(10))),
        )
        .queue(resilience_core::QueueConfig::default().with_capacity(capacity))
        .retry_policy(
            RetryPolicy::default()
                .with_max_retries(3)
                .with_base_delay(Duration::from_millis(50))
                .with_backoff_factor(2.0)
                .with_max_delay(Duration::from_millis(500))
                .with_jitter(Jitter::Equal)
                .with_seed(args.seed),
        )
        .build()
}

fn install_metrics(addr: SocketAddr) -> Result<String, DemoError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| DemoError::Metrics(e.to_string()))?;
    resilience_core::observe::describe_metrics();
    Ok(format!("http://{addr}/metrics"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn progress_bar(args: &DemoArgs) -> ProgressBar {
    if args.no_progress {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new((args.agents * args.steps) as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {elapsed:>4} {wide_bar:.cyan/blue} {pos}/{len} writes, {msg}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// Runs the demo and returns its report (the chart is written to `args.chart`).
///
/// Errors are setup failures (bad flags, no `redis-server`, cannot connect, cannot write
/// the chart); losing writes is reported in the [`DemoReport`], not as an error.
pub async fn run(args: &DemoArgs) -> Result<DemoReport, DemoError> {
    args.validate()?;
    let outage_kind = args.outage_kind();
    let metrics_url = match args.metrics_addr {
        Some(addr) => Some(install_metrics(addr)?),
        None => None,
    };

    let (backend, outage, namespace) = setup::primary_backend(args, outage_kind).await?;
    let client = primary_client(args, backend)?;
    let (fallback, _) = memory_tiers::connect_in_memory("agent_demo_fallback");
    let tiers = TieredMemory::builder(client.clone(), client.clone())
        .fallback(fallback)
        .namespace(namespace)
        .build()?;

    let start = Instant::now();
    let transitions: Arc<Mutex<Vec<TransitionRecord>>> = Arc::default();
    {
        let transitions = Arc::clone(&transitions);
        client.circuit_breaker().on_transition(move |t| {
            lock(&transitions).push(TransitionRecord {
                at: t.at.saturating_duration_since(start),
                from: t.from,
                to: t.to,
                reason: t.reason,
            });
        });
    }

    let shared = Arc::new(Shared {
        writes: AtomicU64::new(0),
        outage_on: AtomicBool::new(false),
    });
    let pb = progress_bar(args);

    // The timeline: a sample every 100 ms until told to stop.
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let sampler = {
        let client = client.clone();
        let shared = Arc::clone(&shared);
        let pb = pb.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.changed() => {}
                }
                let stats = client.stats();
                let sample = Sample {
                    t: start.elapsed(),
                    writes: shared.writes.load(Ordering::Relaxed),
                    state: stats.circuit_state,
                    queue_depth: stats.queue.depth,
                    outage: shared.outage_on.load(Ordering::Relaxed),
                };
                pb.set_position(sample.writes);
                pb.set_message(format!(
                    "breaker {}, queue {}{}",
                    sample.state.as_str(),
                    sample.queue_depth,
                    if sample.outage { ", OUTAGE" } else { "" }
                ));
                samples.push(sample);
                if *stop_rx.borrow() {
                    return samples;
                }
            }
        })
    };

    // The scripted outage.
    let paced = args.paced_duration();
    let outage_task = {
        let shared = Arc::clone(&shared);
        let from = start + paced.mul_f64(args.outage_from);
        let to = start + paced.mul_f64(args.outage_to);
        tokio::spawn(setup::drive_outage(outage, from, to, start, shared))
    };

    // The agents.
    let drain = Duration::from_secs(args.drain_timeout_secs);
    let mut agents = tokio::task::JoinSet::new();
    for index in 0..args.agents {
        let plan = AgentPlan {
            index,
            steps: args.steps,
            step: Duration::from_millis(args.step_ms),
            seed: args.seed,
            start,
            drain,
        };
        let memory = tiers.agent(&plan.agent_id())?;
        let shared = Arc::clone(&shared);
        let client = client.clone();
        agents.spawn(agent::run_agent(plan, memory, client, shared));
    }
    let mut outcomes: Vec<AgentOutcome> = Vec::with_capacity(args.agents);
    let mut unexpected = Vec::new();
    while let Some(joined) = agents.join_next().await {
        match joined {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => unexpected.push(format!("an agent task failed: {e}")),
        }
    }

    let (outage, window, outage_error) = match outage_task.await {
        Ok(r) => r,
        Err(e) => {
            unexpected.push(format!("the outage task failed: {e}"));
            (None, None, None)
        }
    };
    if let Some(e) = outage_error {
        unexpected.push(e);
    }

    let shutdown = client.shutdown(Duration::from_secs(5)).await;
    let _ = stop_tx.send(true);
    let samples = sampler.await.unwrap_or_default();
    pb.finish_and_clear();

    // Read back every memory that should exist, from the primary tiers.
    let verify = agent::verify_all(&tiers, &outcomes).await;
    // And ask what the agents remember, by similarity.
    let recalled = agent::recall(&tiers, &outcomes).await;
    let elapsed = start.elapsed();

    let transitions = lock(&transitions).clone();
    let mut report = DemoReport::assemble(
        args,
        outage_kind,
        &outcomes,
        verify,
        transitions,
        window,
        samples,
        elapsed,
    );
    report.unexpected.extend(unexpected);
    report.unexpected.extend(recalled.errors);
    report.recall_queries = recalled.queries;
    report.recall_matched = recalled.matched;
    report.recall_examples = recalled.examples;
    if !shutdown.drained || shutdown.abandoned > 0 {
        report.unexpected.push(format!(
            "shutdown: drained {}, abandoned {}",
            shutdown.drained, shutdown.abandoned
        ));
    }
    report.metrics_url = metrics_url;

    // Clean up what the demo wrote to a server it did not spawn.
    if args.url.is_some() {
        for outcome in &outcomes {
            if let Ok(memory) = tiers.agent(&outcome.agent_id) {
                let _ = memory.clear().await;
            }
        }
    }
    drop(outage);

    chart::draw(&args.chart, &report)?;
    report.chart_path = Some(args.chart.clone());
    Ok(report)
}
