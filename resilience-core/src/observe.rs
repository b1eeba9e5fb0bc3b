//! What this crate reports, and under which names.
//!
//! Metrics go through the [`metrics`] facade: install any recorder (the examples use the
//! Prometheus exporter) and these appear; with none installed they cost next to nothing.
//! Labels never carry values, keys or passwords: only the client's name, the command's name,
//! outcomes, priorities and reasons.
//!
//! Tracing: each call runs in a `redis.call` span (fields `client`, `backend`, `command`),
//! breaker transitions are `warn`/`info` events, dead letters are `warn` events.

/// What a client reports about each call: the per-call metrics (the [`CALLS`] counter,
/// the [`CALL_DURATION`] histogram and the call counts of
/// [`ClientStats`](crate::ClientStats)) and the `redis.call` tracing span. Both are on by
/// default; a part turned off costs nothing on the call path (no clock read, no counter,
/// no span), and the counts it would have kept stay 0.
///
/// What is not per call is always reported: breaker transitions, retries, queue depth,
/// prioritized writes' outcomes, dead letters, and the failure and rejection counts of
/// `ClientStats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct Observability {
    /// The per-call metrics. Default on.
    pub call_metrics: bool,
    /// The `redis.call` span around each call. Default on.
    pub call_spans: bool,
}

impl Default for Observability {
    fn default() -> Self {
        Observability {
            call_metrics: true,
            call_spans: true,
        }
    }
}

impl Observability {
    /// Nothing per call: no call metrics, no call spans.
    pub const OFF: Observability = Observability {
        call_metrics: false,
        call_spans: false,
    };
}

/// Counter: calls by `client`, `command` and `outcome` (`ok`, an [`ErrorKind`](crate::ErrorKind)
/// name, or `circuit_open`).
pub const CALLS: &str = "resilience_calls_total";
/// Histogram: seconds per call that reached the backend, by `client`. Timed on the CPU's
/// time-stamp counter where it is invariant (through `quanta`), else the monotonic clock;
/// the first client built in a process calibrates that clock once (about a millisecond,
/// at most 200 ms).
pub const CALL_DURATION: &str = "resilience_call_duration_seconds";
/// Counter: retries made by `client`.
pub const RETRIES: &str = "resilience_retries_total";
/// Counter: prioritized writes by `client`, `priority` and `outcome` (stored, queued, dropped, failed).
pub const STORE_OUTCOMES: &str = "resilience_store_outcomes_total";
/// Gauge: recovery queue depth by `client` and `priority`.
pub const QUEUE_DEPTH: &str = "resilience_queue_depth";
/// Gauge: age in seconds of the oldest queued write, by `client`.
pub const QUEUE_OLDEST_AGE: &str = "resilience_queue_oldest_age_seconds";
/// Counter: writes accepted into the recovery queue, by `client` and `priority`.
pub const QUEUE_ENQUEUED: &str = "resilience_queue_enqueued_total";
/// Counter: queued writes replayed and applied, by `client`.
pub const QUEUE_COMPLETED: &str = "resilience_queue_completed_total";
/// Counter: queued writes given up, by `client` and `reason`.
pub const QUEUE_DEAD_LETTERED: &str = "resilience_queue_dead_lettered_total";
/// Counter: reads of a Redis Cluster under a replica [`ReadPolicy`](crate::ReadPolicy), by
/// `served_by`: `replica`, or `primary_fallback` when no replica of the shard could answer.
pub const REPLICA_READS: &str = "resilience_replica_reads_total";
/// Counter: breaker transitions by `breaker`, `from` and `to`.
pub const BREAKER_TRANSITIONS: &str = crate::breaker::METRIC_TRANSITIONS;
/// Gauge: breaker state by `breaker` (0 closed, 1 open, 2 half-open, 3 forced-open, 4 disabled).
pub const BREAKER_STATE: &str = crate::breaker::METRIC_STATE;

/// Registers descriptions of every metric above with the installed recorder, so exporters
/// can show help text. Call once after installing a recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(CALLS, "Calls by client, command and outcome");
    describe_histogram!(
        CALL_DURATION,
        Unit::Seconds,
        "Duration of calls that reached the backend"
    );
    describe_counter!(RETRIES, "Retries made");
    describe_counter!(STORE_OUTCOMES, "Prioritized writes by outcome");
    describe_gauge!(QUEUE_DEPTH, "Recovery queue depth by priority");
    describe_gauge!(
        QUEUE_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest queued write"
    );
    describe_counter!(QUEUE_ENQUEUED, "Writes accepted into the recovery queue");
    describe_counter!(QUEUE_COMPLETED, "Queued writes replayed and applied");
    describe_counter!(QUEUE_DEAD_LETTERED, "Queued writes given up, by reason");
    describe_counter!(BREAKER_TRANSITIONS, "Circuit breaker transitions");
    describe_counter!(
        REPLICA_READS,
        "Cluster reads by who served them: a replica, or the master as a fallback"
    );
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state (0 closed, 1 open, 2 half-open, 3 forced-open, 4 disabled)"
    );
}

/// Outcome slots of [`CallMetrics`]: `ok`, each [`ErrorKind`](crate::ErrorKind), `circuit_open`.
const OUTCOMES: [&str; 8] = [
    "ok",
    "unavailable",
    "timeout",
    "busy",
    "server",
    "auth",
    "invalid_input",
    "circuit_open",
];

fn outcome_slot(outcome: Result<(), Option<crate::ErrorKind>>) -> usize {
    use crate::ErrorKind;
    match outcome {
        Ok(()) => 0,
        Err(Some(ErrorKind::Unavailable)) => 1,
        Err(Some(ErrorKind::Timeout)) => 2,
        Err(Some(ErrorKind::Busy)) => 3,
        Err(Some(ErrorKind::Server)) => 4,
        Err(Some(ErrorKind::Auth)) => 5,
        Err(Some(ErrorKind::InvalidInput)) => 6,
        Err(None) => 7,
    }
}

/// Per-client metric handles, registered on first use and reused, so recording a call is an
/// atomic add on an existing handle rather than a key lookup and label allocation.
///
/// Handles bind to the recorder installed when they are first used: install the recorder
/// before the first call.
pub(crate) struct CallMetrics {
    client: std::sync::Arc<str>,
    calls: Box<[std::sync::OnceLock<metrics::Counter>]>,
    duration: std::sync::OnceLock<metrics::Histogram>,
    /// Times the calls [`record_duration`](Self::record_duration) records.
    clock: quanta::Clock,
    retries: std::sync::OnceLock<metrics::Counter>,
    /// By priority rank and outcome ([`store_outcome_slot`]).
    store_outcomes: [std::sync::OnceLock<metrics::Counter>; 16],
}

/// The slot of a prioritized write's outcome in [`CallMetrics`].
fn store_outcome_slot(outcome: &crate::StoreOutcome) -> usize {
    match outcome {
        crate::StoreOutcome::Stored => 0,
        crate::StoreOutcome::Queued(_) => 1,
        crate::StoreOutcome::Dropped => 2,
        crate::StoreOutcome::Failed(_) => 3,
    }
}

impl CallMetrics {
    pub(crate) fn new(client: std::sync::Arc<str>) -> Self {
        let slots = crate::Command::VARIANTS * OUTCOMES.len();
        CallMetrics {
            client,
            calls: (0..slots).map(|_| std::sync::OnceLock::new()).collect(),
            duration: std::sync::OnceLock::new(),
            clock: quanta::Clock::new(),
            retries: std::sync::OnceLock::new(),
            store_outcomes: Default::default(),
        }
    }

    /// Counts one call of the command with `ordinal`/`name` and its outcome
    /// (`Err(None)` = rejected by the open circuit).
    pub(crate) fn record(
        &self,
        ordinal: usize,
        name: &'static str,
        outcome: Result<(), Option<crate::ErrorKind>>,
    ) {
        let slot = outcome_slot(outcome);
        let index = ordinal * OUTCOMES.len() + slot;
        if let Some(cell) = self.calls.get(index) {
            cell.get_or_init(|| {
                metrics::counter!(CALLS, "client" => client_label(&self.client), "command" => name, "outcome" => OUTCOMES[slot])
            })
            .increment(1);
        }
    }

    /// Retries made by this client.
    pub(crate) fn retries(&self) -> &metrics::Counter {
        self.retries
            .get_or_init(|| metrics::counter!(RETRIES, "client" => client_label(&self.client)))
    }

    /// Prioritized writes (`submit`, `store_with_retry`), by priority and outcome.
    pub(crate) fn store_outcome(
        &self,
        priority: crate::Priority,
        outcome: &crate::StoreOutcome,
    ) -> &metrics::Counter {
        let slot = priority.rank() * 4 + store_outcome_slot(outcome);
        self.store_outcomes[slot].get_or_init(|| {
            metrics::counter!(STORE_OUTCOMES, "client" => client_label(&self.client), "priority" => priority.as_str(), "outcome" => outcome.as_str())
        })
    }

    /// The start of a call, for [`record_duration`](Self::record_duration).
    ///
    /// A raw reading of the client's latency clock: the time-stamp counter where the CPU
    /// keeps it invariant (a few instructions, no system call), else the monotonic clock.
    /// A call is timed twice, so this is a cost of every call: `std::time::Instant` spent
    /// about 115 instructions on the two readings and their subtraction.
    #[inline]
    pub(crate) fn start(&self) -> CallStart {
        CallStart(self.clock.raw())
    }

    /// Records how long a call that reached the backend took, since `start`.
    pub(crate) fn record_duration(&self, start: CallStart) {
        let nanos = self.clock.delta_as_nanos(start.0, self.clock.raw());
        self.duration
            .get_or_init(
                || metrics::histogram!(CALL_DURATION, "client" => client_label(&self.client)),
            )
            .record(nanos as f64 * 1e-9);
    }
}

/// When a call started, on its client's latency clock ([`CallMetrics::start`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallStart(u64);

/// The recovery queue's metric handles, registered on first use and reused, like
/// [`CallMetrics`]: recording a queue event builds no label.
pub(crate) struct QueueMetrics {
    client: std::sync::Arc<str>,
    /// By [`Priority::rank`](crate::Priority::rank).
    enqueued: [std::sync::OnceLock<metrics::Counter>; 4],
    completed: std::sync::OnceLock<metrics::Counter>,
    oldest_age: std::sync::OnceLock<metrics::Gauge>,
    /// By [`Priority::rank`](crate::Priority::rank).
    depth: [std::sync::OnceLock<metrics::Gauge>; 4],
    /// By [`dead_letter_slot`].
    dead_lettered: [std::sync::OnceLock<metrics::Counter>; 5],
}

fn client_label(client: &std::sync::Arc<str>) -> metrics::SharedString {
    metrics::SharedString::from(std::sync::Arc::clone(client))
}

/// The label and slot of a dead-letter reason.
fn dead_letter_slot(reason: &crate::DeadLetterReason) -> (usize, &'static str) {
    use crate::DeadLetterReason;
    match reason {
        DeadLetterReason::MaxAttempts { .. } => (0, "max_attempts"),
        DeadLetterReason::MaxAge { .. } => (1, "max_age"),
        DeadLetterReason::Evicted => (2, "evicted"),
        DeadLetterReason::NonRetryable { .. } => (3, "non_retryable"),
        DeadLetterReason::Shutdown => (4, "shutdown"),
    }
}

impl QueueMetrics {
    pub(crate) fn new(client: std::sync::Arc<str>) -> Self {
        QueueMetrics {
            client,
            enqueued: Default::default(),
            completed: std::sync::OnceLock::new(),
            oldest_age: std::sync::OnceLock::new(),
            depth: Default::default(),
            dead_lettered: Default::default(),
        }
    }

    /// Writes accepted, by priority.
    pub(crate) fn enqueued(&self, priority: crate::Priority) -> &metrics::Counter {
        self.enqueued[priority.rank()].get_or_init(|| {
            metrics::counter!(QUEUE_ENQUEUED, "client" => client_label(&self.client), "priority" => priority.as_str())
        })
    }

    /// Queued writes applied.
    pub(crate) fn completed(&self) -> &metrics::Counter {
        self.completed.get_or_init(
            || metrics::counter!(QUEUE_COMPLETED, "client" => client_label(&self.client)),
        )
    }

    /// Age of the oldest queued write.
    pub(crate) fn oldest_age(&self) -> &metrics::Gauge {
        self.oldest_age.get_or_init(
            || metrics::gauge!(QUEUE_OLDEST_AGE, "client" => client_label(&self.client)),
        )
    }

    /// Queue depth, by priority.
    pub(crate) fn depth(&self, priority: crate::Priority) -> &metrics::Gauge {
        self.depth[priority.rank()].get_or_init(|| {
            metrics::gauge!(QUEUE_DEPTH, "client" => client_label(&self.client), "priority" => priority.as_str())
        })
    }

    /// Writes given up, by reason.
    pub(crate) fn dead_lettered(&self, reason: &crate::DeadLetterReason) -> &metrics::Counter {
        let (slot, label) = dead_letter_slot(reason);
        self.dead_lettered[slot].get_or_init(|| {
            metrics::counter!(QUEUE_DEAD_LETTERED, "client" => client_label(&self.client), "reason" => label)
        })
    }
}
