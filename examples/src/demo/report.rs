//! The demo's report: where every write went, what the breaker did, and what was lost.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use resilience_core::{CircuitState, Priority};

use super::agent::{AgentOutcome, PriorityCounts, Verified};
use super::args::{DemoArgs, OutageKind};
use super::setup::Window;

/// One breaker transition, timed from the start of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct TransitionRecord {
    /// When, since the start.
    pub at: Duration,
    /// The state left.
    pub from: CircuitState,
    /// The state entered.
    pub to: CircuitState,
    /// Why (the breaker's own words).
    pub reason: &'static str,
}

/// One point of the timeline, sampled every 100 ms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Since the start.
    pub t: Duration,
    /// Store calls returned so far.
    pub writes: u64,
    /// The breaker's state.
    pub state: CircuitState,
    /// Writes waiting in the recovery queue.
    pub queue_depth: usize,
    /// Whether the scripted outage was on.
    pub outage: bool,
}

/// Everything the demo measured. [`is_success`](Self::is_success) is what the exit code
/// reports.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// The backend's name (`memory`, `redis-rs`, `fred`).
    pub backend: String,
    /// The outage used.
    pub outage: OutageKind,
    /// Agents and steps per agent.
    pub agents: usize,
    /// Steps per agent.
    pub steps: usize,
    /// Per priority, in [`Priority::ALL`] order.
    pub by_priority: [PriorityCounts; 4],
    /// Writes issued (every step's store).
    pub issued: u64,
    /// Stored at once.
    pub stored_directly: u64,
    /// Queued for replay.
    pub queued: u64,
    /// Queued, then replayed and stored (their tickets said Completed).
    pub completed: u64,
    /// Dropped (Low priority during the outage).
    pub dropped: u64,
    /// Queued, then given up, by reason.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Failed writes (the caller was told), by `priority: reason`.
    pub failures: BTreeMap<String, u64>,
    /// Failed Critical writes their agent stored again after the breaker closed.
    pub critical_restored: u64,
    /// Failed Critical writes their agent could not store again before the deadline.
    pub critical_abandoned: u64,
    /// Queued writes whose ticket had not resolved at the deadline.
    pub unresolved: u64,
    /// Writes the primary did not confirm, copied to the fallback tier.
    pub in_fallback: u64,
    /// Reads that returned memories.
    pub reads: u64,
    /// Of those, reads answered (at least partly) by the fallback.
    pub reads_fallback: u64,
    /// Reads that found nothing (e.g. a dropped Low memory).
    pub reads_empty: u64,
    /// Reads that failed.
    pub read_errors: u64,
    /// `similar` searches during the run that answered.
    pub searches: u64,
    /// Of those, searches answered (at least partly) by the fallback.
    pub searches_fallback: u64,
    /// Searches during the run that failed.
    pub search_errors: u64,
    /// After the run: one `similar` query per thing the agents see, on the first agent.
    pub recall_queries: u64,
    /// Of those, queries whose best match is a sighting of that thing.
    pub recall_matched: u64,
    /// What each of those queries found.
    pub recall_examples: Vec<String>,
    /// Memories that should exist at the end (stored, completed, stored again).
    pub expected_present: u64,
    /// Of those, memories not found in STM or IM: must be 0.
    pub lost: u64,
    /// A few lost memories, with why.
    pub lost_examples: Vec<String>,
    /// Breaker transitions, in order.
    pub transitions: Vec<TransitionRecord>,
    /// The outage as applied: (began, ended), since the start.
    pub outage_window: Option<(Duration, Duration)>,
    /// From the outage's end to the breaker's first close after it.
    pub close_after_outage: Option<Duration>,
    /// The timeline, every 100 ms.
    pub samples: Vec<Sample>,
    /// The whole run, read-back included.
    pub elapsed: Duration,
    /// Anything that should not happen (invalid input, unresolved tickets, a task that
    /// failed): must be empty.
    pub unexpected: Vec<String>,
    /// Where the chart was written.
    pub chart_path: Option<PathBuf>,
    /// The Prometheus endpoint, with `--metrics-addr`.
    pub metrics_url: Option<String>,
}

impl DemoReport {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn assemble(
        args: &DemoArgs,
        outage: OutageKind,
        outcomes: &[AgentOutcome],
        verified: Verified,
        transitions: Vec<TransitionRecord>,
        window: Window,
        samples: Vec<Sample>,
        elapsed: Duration,
    ) -> DemoReport {
        let mut by_priority = [PriorityCounts::default(); 4];
        let mut dead_lettered = BTreeMap::new();
        let mut failures = BTreeMap::new();
        let mut unexpected = Vec::new();
        let sum = |f: fn(&AgentOutcome) -> u64| outcomes.iter().map(f).sum::<u64>();
        for o in outcomes {
            for (total, c) in by_priority.iter_mut().zip(o.by_priority.iter()) {
                total.issued += c.issued;
                total.stored += c.stored;
                total.queued += c.queued;
                total.dropped += c.dropped;
                total.failed += c.failed;
            }
            for (k, v) in &o.dead_lettered {
                *dead_lettered.entry(k.clone()).or_insert(0) += v;
            }
            for (k, v) in &o.failures {
                *failures.entry(k.clone()).or_insert(0) += v;
            }
            unexpected.extend(o.unexpected.iter().cloned());
        }
        let unresolved = sum(|o| o.unresolved);
        if unresolved > 0 {
            unexpected.push(format!(
                "{unresolved} queued writes had no outcome after the drain deadline"
            ));
        }
        let critical_abandoned = sum(|o| o.critical_abandoned);
        if critical_abandoned > 0 {
            unexpected.push(format!(
                "{critical_abandoned} failed Critical writes could not be stored again before the deadline"
            ));
        }
        let total = |f: fn(&PriorityCounts) -> u64| by_priority.iter().map(f).sum::<u64>();
        let close_after_outage = window.and_then(|(_, ended)| {
            transitions
                .iter()
                .find(|t| t.to == CircuitState::Closed && t.at >= ended)
                .map(|t| t.at - ended)
        });
        DemoReport {
            backend: args.backend.as_str().to_owned(),
            outage,
            agents: args.agents,
            steps: args.steps,
            by_priority,
            issued: total(|c| c.issued),
            stored_directly: total(|c| c.stored),
            queued: total(|c| c.queued),
            completed: sum(|o| o.completed),
            dropped: total(|c| c.dropped),
            dead_lettered,
            failures,
            critical_restored: sum(|o| o.critical_restored),
            critical_abandoned,
            unresolved,
            in_fallback: sum(|o| o.in_fallback),
            reads: sum(|o| o.reads),
            reads_fallback: sum(|o| o.reads_fallback),
            reads_empty: sum(|o| o.reads_empty),
            read_errors: sum(|o| o.read_errors),
            searches: sum(|o| o.searches),
            searches_fallback: sum(|o| o.searches_fallback),
            search_errors: sum(|o| o.search_errors),
            recall_queries: 0,
            recall_matched: 0,
            recall_examples: Vec::new(),
            expected_present: verified.expected,
            lost: verified.lost,
            lost_examples: verified.lost_examples,
            transitions,
            outage_window: window,
            close_after_outage,
            samples,
            elapsed,
            unexpected,
            chart_path: None,
            metrics_url: None,
        }
    }

    /// Queued writes given up, all reasons together.
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered.values().sum()
    }

    /// Failed writes, all reasons together.
    pub fn failed_total(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Whether the breaker opened during the run.
    pub fn breaker_opened(&self) -> bool {
        self.transitions.iter().any(|t| t.to == CircuitState::Open)
    }

    /// Whether the breaker closed again after it last opened (and is closed at the end).
    pub fn breaker_closed_after_opening(&self) -> bool {
        let last_open = self
            .transitions
            .iter()
            .rposition(|t| t.to == CircuitState::Open);
        match last_open {
            Some(i) => self.transitions[i..]
                .iter()
                .any(|t| t.to == CircuitState::Closed),
            None => false,
        }
    }

    /// The run's verdict: nothing lost, nothing unexpected.
    pub fn is_success(&self) -> bool {
        self.lost == 0 && self.unexpected.is_empty()
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "agent-demo: {} agents x {} steps on {} (outage: {}), {}",
            self.agents,
            self.steps,
            self.backend,
            self.outage.as_str(),
            secs(self.elapsed)
        )?;
        writeln!(f)?;
        writeln!(f, "writes")?;
        writeln!(f, "  issued                      {:>7}", self.issued)?;
        writeln!(
            f,
            "  stored directly             {:>7}",
            self.stored_directly
        )?;
        writeln!(f, "  queued                      {:>7}", self.queued)?;
        writeln!(f, "    then stored (Completed)   {:>7}", self.completed)?;
        writeln!(
            f,
            "    dead-lettered             {:>7}",
            self.dead_lettered_total()
        )?;
        for (reason, n) in &self.dead_lettered {
            writeln!(f, "      {reason}: {n}")?;
        }
        if self.unresolved > 0 {
            writeln!(f, "    unresolved at deadline    {:>7}", self.unresolved)?;
        }
        writeln!(f, "  dropped (Low)               {:>7}", self.dropped)?;
        writeln!(
            f,
            "  failed (caller told)        {:>7}",
            self.failed_total()
        )?;
        for (reason, n) in &self.failures {
            writeln!(f, "      {reason}: {n}")?;
        }
        writeln!(
            f,
            "    Critical stored again     {:>7}",
            self.critical_restored
        )?;
        writeln!(f, "  copied to the fallback      {:>7}", self.in_fallback)?;
        writeln!(f)?;
        writeln!(f, "  by priority   issued  stored  queued  dropped  failed")?;
        for (p, c) in Priority::ALL.iter().zip(self.by_priority.iter()) {
            writeln!(
                f,
                "  {:<10} {:>9} {:>7} {:>7} {:>8} {:>7}",
                p.as_str(),
                c.issued,
                c.stored,
                c.queued,
                c.dropped,
                c.failed
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "reads: {} answered ({} from the fallback during the outage), {} empty, {} failed",
            self.reads, self.reads_fallback, self.reads_empty, self.read_errors
        )?;
        writeln!(
            f,
            "searches (similar): {} answered ({} from the fallback during the outage), {} failed",
            self.searches, self.searches_fallback, self.search_errors
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "recall: best match is the thing asked for in {} of {} queries",
            self.recall_matched, self.recall_queries
        )?;
        for line in &self.recall_examples {
            writeln!(f, "  {line}")?;
        }
        writeln!(f)?;
        writeln!(f, "breaker")?;
        if let Some((began, ended)) = self.outage_window {
            writeln!(f, "  outage            {} .. {}", secs(began), secs(ended))?;
        }
        if self.transitions.is_empty() {
            writeln!(f, "  no transitions")?;
        }
        for t in &self.transitions {
            writeln!(
                f,
                "  {:>9}  {} -> {} ({})",
                secs(t.at),
                t.from.as_str(),
                t.to.as_str(),
                t.reason
            )?;
        }
        match self.close_after_outage {
            Some(d) => writeln!(f, "  closed {} after the outage ended", secs(d))?,
            None if self.outage_window.is_some() => {
                writeln!(f, "  did not close after the outage ended")?
            }
            None => {}
        }
        writeln!(f)?;
        writeln!(
            f,
            "read back: {} memories should exist, {} found in STM/IM",
            self.expected_present,
            self.expected_present - self.lost.min(self.expected_present)
        )?;
        writeln!(f, "LOST: {}", self.lost)?;
        for example in &self.lost_examples {
            writeln!(f, "  {example}")?;
        }
        for u in &self.unexpected {
            writeln!(f, "unexpected: {u}")?;
        }
        if let Some(path) = &self.chart_path {
            writeln!(f, "chart: {}", path.display())?;
        }
        if let Some(url) = &self.metrics_url {
            writeln!(f, "metrics: {url}")?;
        }
        write!(
            f,
            "{}",
            if self.is_success() {
                "OK: every write is accounted for, nothing lost"
            } else {
                "FAILED"
            }
        )
    }
}
