//! Unit tests of the breaker. Time logic runs on Tokio's paused clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::{Instant, advance};

use super::*;

const RESET: Duration = Duration::from_secs(300);
const MS: Duration = Duration::from_millis(1);

fn consecutive(threshold: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        policy: FailurePolicy::ConsecutiveFailures { threshold },
        ..CircuitBreakerConfig::default()
    }
}

fn fail(b: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("admitted").record_failure();
    }
}

fn succeed(b: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("admitted").record_success();
    }
}

type Seen = Arc<Mutex<Vec<(CircuitState, CircuitState, &'static str, u64)>>>;

fn watch_transitions(b: &CircuitBreaker) -> Seen {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    b.on_transition(move |t| {
        sink.lock()
            .unwrap()
            .push((t.from, t.to, t.reason, t.generation))
    });
    seen
}

fn pairs(seen: &Seen) -> Vec<(CircuitState, CircuitState)> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(f, t, _, _)| (*f, *t))
        .collect()
}

use CircuitState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};

#[test]
fn defaults_are_the_seeds() {
    let c = CircuitBreakerConfig::default();
    assert_eq!(
        c.policy,
        FailurePolicy::ConsecutiveFailures { threshold: 3 }
    );
    assert_eq!(c.reset_timeout, Duration::from_secs(300));
    assert_eq!(c.half_open_max_calls, 1);
    assert_eq!(c.slow_call_threshold, None);
    assert_eq!(c.health_check_interval, Duration::from_secs(1));
    let b = CircuitBreaker::new("seed", c);
    assert_eq!(b.name(), "seed");
    assert_eq!((b.state(), b.generation()), (Closed, 0));
}

#[test]
fn opens_after_exactly_threshold_consecutive_failures() {
    let b = CircuitBreaker::new("t", consecutive(3));
    fail(&b, 2);
    assert_eq!(b.state(), Closed, "2 of 3 failures must not open it");
    succeed(&b, 1);
    fail(&b, 2);
    assert_eq!(b.state(), Closed, "a success restarts the count");
    fail(&b, 1);
    assert_eq!(b.state(), Open, "the third failure in a row opens it");
    assert_eq!(b.generation(), 1);
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.state, Open);
    assert!(rejected.retry_after > Duration::from_secs(299));
}

#[test]
fn server_errors_never_open_it() {
    let b = CircuitBreaker::new("t", consecutive(3));
    for _ in 0..100 {
        b.try_acquire()
            .expect("still closed")
            .record_error(ErrorKind::Server);
    }
    for kind in [ErrorKind::Auth, ErrorKind::InvalidInput] {
        for _ in 0..10 {
            b.try_acquire().expect("still closed").record_error(kind);
        }
    }
    assert_eq!((b.state(), b.generation()), (Closed, 0));
    // A server error between counted failures is a success: it breaks the streak.
    for _ in 0..2 {
        b.try_acquire()
            .unwrap()
            .record_error(ErrorKind::Unavailable);
    }
    b.try_acquire().unwrap().record_error(ErrorKind::Server);
    b.try_acquire().unwrap().record_error(ErrorKind::Timeout);
    b.try_acquire().unwrap().record_error(ErrorKind::Busy);
    assert_eq!(b.state(), Closed);
    b.try_acquire()
        .unwrap()
        .record_error(ErrorKind::Unavailable);
    assert_eq!(b.state(), Open, "unavailable, timeout and busy count");
}

#[test]
fn ignored_outcomes_change_nothing_while_closed() {
    let b = CircuitBreaker::new("t", consecutive(3));
    fail(&b, 2);
    for _ in 0..10 {
        b.try_acquire().unwrap().record_ignored();
        drop(b.try_acquire().unwrap());
    }
    assert_eq!(b.state(), Closed);
    fail(&b, 1);
    assert_eq!(b.state(), Open, "ignored outcomes did not reset the streak");
}

#[tokio::test(start_paused = true)]
async fn stays_open_for_reset_timeout_then_admits_one_probe() {
    let b = CircuitBreaker::new("t", consecutive(3));
    fail(&b, 3);
    advance(RESET - MS).await;
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.state, Open);
    assert_eq!(rejected.retry_after, MS);
    assert_eq!(b.state(), Open);
    advance(MS).await;
    let probe = b.try_acquire().expect("the probe is admitted");
    assert_eq!(probe.state(), HalfOpen);
    assert_eq!(b.state(), HalfOpen);
    let second = b.try_acquire().unwrap_err();
    assert_eq!(second.state, HalfOpen);
    assert_eq!(second.retry_after, Duration::ZERO);
    probe.record_success();
    assert_eq!(b.state(), Closed);
    assert_eq!(b.generation(), 3);
    fail(&b, 2);
    assert_eq!(b.state(), Closed, "closing cleared the failure count");
}

async fn concurrent_probes(limit: u32, callers: usize) -> usize {
    let b = Arc::new(CircuitBreaker::new(
        "race",
        CircuitBreakerConfig {
            reset_timeout: Duration::ZERO,
            half_open_max_calls: limit,
            ..consecutive(1)
        },
    ));
    fail(&b, 1);
    assert_eq!(b.state(), Open);
    let start = Arc::new(tokio::sync::Barrier::new(callers));
    let tried = Arc::new(tokio::sync::Barrier::new(callers));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (b, start, tried) = (b.clone(), start.clone(), tried.clone());
            tokio::spawn(async move {
                start.wait().await;
                let permit = b.try_acquire();
                let admitted = permit.is_ok();
                // Hold the permit until everyone has tried.
                tried.wait().await;
                drop(permit);
                admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(b.state(), HalfOpen);
    assert_eq!(b.generation(), 2, "exactly one Open -> HalfOpen transition");
    assert!(b.try_acquire().is_ok(), "dropped permits freed their slots");
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_limit_one_with_100_concurrent_callers() {
    assert_eq!(concurrent_probes(1, 100).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_limit_three_with_100_concurrent_callers() {
    assert_eq!(concurrent_probes(3, 100).await, 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_for_another_reset_timeout() {
    let b = CircuitBreaker::new("t", consecutive(3));
    fail(&b, 3);
    advance(RESET).await;
    let probe = b.try_acquire().unwrap();
    probe.record_failure();
    assert_eq!((b.state(), b.generation()), (Open, 3));
    assert_eq!(b.try_acquire().unwrap_err().retry_after, RESET);
    advance(RESET - MS).await;
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!((rejected.state, rejected.retry_after), (Open, MS));
    advance(MS).await;
    assert_eq!(b.try_acquire().unwrap().state(), HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_gets_a_server_error_closes_it() {
    let b = CircuitBreaker::new("t", consecutive(1));
    fail(&b, 1);
    advance(RESET).await;
    b.try_acquire().unwrap().record_error(ErrorKind::Server);
    assert_eq!(b.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn health_probe_closes_it_within_a_second_of_recovery() {
    let b = Arc::new(CircuitBreaker::new("hp", consecutive(3)));
    let seen = watch_transitions(&b);
    let up = Arc::new(AtomicBool::new(false));
    let probes = Arc::new(AtomicUsize::new(0));
    let handle = {
        let (up, probes) = (up.clone(), probes.clone());
        b.spawn_health_probe(move || {
            probes.fetch_add(1, Ordering::SeqCst);
            let answer = up.load(Ordering::SeqCst);
            async move { answer }
        })
    };
    // Closed: the probe task sleeps on the watch channel and never pings.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(probes.load(Ordering::SeqCst), 0, "no pings while closed");

    fail(&b, 3);
    // Down for a while: pings fail, it stays open.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(b.state(), Open);
    assert_eq!(probes.load(Ordering::SeqCst), 3);

    up.store(true, Ordering::SeqCst);
    let recovered_at = Instant::now();
    let mut states = b.subscribe();
    tokio::time::timeout(Duration::from_secs(2), states.wait_for(|s| *s == Closed))
        .await
        .expect("closed within 2 s")
        .unwrap();
    let took = recovered_at.elapsed();
    assert!(took <= Duration::from_secs(1), "took {took:?}");
    assert!(took < RESET);
    let log = seen.lock().unwrap().clone();
    assert_eq!(
        log.iter()
            .map(|(f, t, r, _)| (*f, *t, *r))
            .collect::<Vec<_>>(),
        vec![
            (Closed, Open, "failure threshold reached"),
            (Open, HalfOpen, "health probe"),
            (HalfOpen, Closed, "health probe succeeded"),
        ]
    );
    assert_eq!(log.iter().map(|e| e.3).collect::<Vec<_>>(), vec![1, 2, 3]);

    // Forced open is left alone, even with the backend up.
    b.force_open();
    let pings = probes.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(b.state(), ForcedOpen);
    assert_eq!(probes.load(Ordering::SeqCst), pings);

    // The task ends when the breaker is dropped.
    drop(b);
    tokio::time::timeout(Duration::from_secs(1), handle)
        .await
        .expect("probe task ended with the breaker")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn health_probe_task_ends_when_breaker_dropped_while_open() {
    let b = Arc::new(CircuitBreaker::new("hp", consecutive(1)));
    let handle = b.spawn_health_probe(|| async { false });
    fail(&b, 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(b);
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("probe task ended with the breaker")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_panicking_health_probe_counts_as_down() {
    let b = Arc::new(CircuitBreaker::new("hp", consecutive(1)));
    let handle = b.spawn_health_probe(|| async { panic!("probe exploded") });
    fail(&b, 1);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(b.state(), Open);
    assert!(!handle.is_finished(), "the task survived the panics");
    handle.abort();
}

#[tokio::test(start_paused = true)]
async fn a_result_from_an_older_generation_changes_nothing() {
    let b = CircuitBreaker::new("t", consecutive(3));
    let slow_success = b.try_acquire().unwrap(); // generation 0, Closed
    let slow_failure = b.try_acquire().unwrap();
    fail(&b, 3);
    advance(RESET).await;
    let probe = b.try_acquire().unwrap(); // generation 2, HalfOpen
    assert_eq!((b.state(), b.generation()), (HalfOpen, 2));
    slow_success.record_success();
    assert_eq!(b.state(), HalfOpen, "a stale success must not close it");
    slow_failure.record_failure();
    assert_eq!(
        (b.state(), b.generation()),
        (HalfOpen, 2),
        "a stale failure must not re-open it"
    );
    // A stale probe result is ignored too.
    b.force_open();
    b.reset();
    probe.record_failure();
    assert_eq!(b.state(), Closed);
    fail(&b, 2);
    assert_eq!(b.state(), Closed, "the stale failure was not counted");
}

#[tokio::test(start_paused = true)]
async fn a_stale_closed_failure_does_not_count_in_a_later_closed_period() {
    let b = CircuitBreaker::new("t", consecutive(3));
    let stale = b.try_acquire().unwrap(); // Closed, generation 0
    fail(&b, 3);
    advance(RESET).await;
    b.try_acquire().unwrap().record_success(); // Closed again, generation 3
    assert_eq!((b.state(), b.generation()), (Closed, 3));
    fail(&b, 1);
    stale.record_failure();
    fail(&b, 1);
    assert_eq!(
        b.state(),
        Closed,
        "only 2 failures belong to this Closed period"
    );
    fail(&b, 1);
    assert_eq!(b.state(), Open);
}

fn rate(window: RateWindow, min_calls: u32, failure_rate: f64) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        policy: FailurePolicy::FailureRate {
            window,
            min_calls,
            failure_rate,
        },
        ..CircuitBreakerConfig::default()
    }
}

#[test]
fn failure_rate_count_window_slides() {
    let b = CircuitBreaker::new("rate", rate(RateWindow::Count(4), 4, 0.75));
    for _ in 0..2 {
        fail(&b, 1);
        succeed(&b, 1);
    }
    assert_eq!(b.state(), Closed, "2 of 4 is below 0.75");
    succeed(&b, 4);
    fail(&b, 2);
    assert_eq!(
        b.state(),
        Closed,
        "the old failures slid out of the window: 2 of 4"
    );
    fail(&b, 1);
    assert_eq!(b.state(), Open, "3 of the last 4 failed");
}

#[test]
fn failure_rate_waits_for_min_calls() {
    let b = CircuitBreaker::new("rate", rate(RateWindow::Count(10), 5, 0.5));
    fail(&b, 4);
    assert_eq!(b.state(), Closed, "4 calls < min_calls 5");
    fail(&b, 1);
    assert_eq!(b.state(), Open);

    // The call that reaches min_calls decides, even when it is a success.
    let b = CircuitBreaker::new("rate", rate(RateWindow::Count(10), 5, 0.5));
    fail(&b, 4);
    succeed(&b, 1);
    assert_eq!(b.state(), Open, "4 of 5 failed");

    // Successes alone never open it, even with a rate of 0.
    let b = CircuitBreaker::new("rate", rate(RateWindow::Count(10), 1, 0.0));
    succeed(&b, 50);
    assert_eq!(b.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_time_window_forgets_old_calls() {
    let b = CircuitBreaker::new(
        "rate",
        rate(RateWindow::Time(Duration::from_secs(10)), 4, 0.5),
    );
    fail(&b, 3);
    assert_eq!(b.state(), Closed, "3 calls < min_calls");
    advance(Duration::from_secs(11)).await;
    succeed(&b, 1);
    fail(&b, 2);
    assert_eq!(
        b.state(),
        Closed,
        "the failures of 11 s ago are out of the window"
    );
    advance(Duration::from_secs(4)).await;
    fail(&b, 1);
    assert_eq!(b.state(), Open, "3 of 4 calls in the last 10 s failed");
}

#[tokio::test(start_paused = true)]
async fn time_window_below_the_rate_stays_closed() {
    let b = CircuitBreaker::new(
        "rate",
        rate(RateWindow::Time(Duration::from_secs(10)), 4, 0.5),
    );
    for _ in 0..100 {
        succeed(&b, 2);
        fail(&b, 1);
        advance(Duration::from_millis(300)).await;
    }
    assert_eq!(b.state(), Closed, "a third of calls failing is below 0.5");
}

#[tokio::test(start_paused = true)]
async fn slow_calls_count_as_failures() {
    let b = CircuitBreaker::new(
        "slow",
        CircuitBreakerConfig {
            slow_call_threshold: Some(Duration::from_millis(100)),
            ..consecutive(2)
        },
    );
    for _ in 0..5 {
        let p = b.try_acquire().unwrap();
        advance(Duration::from_millis(100)).await;
        p.record_success();
    }
    assert_eq!(b.state(), Closed, "at the threshold is not slow");
    let p = b.try_acquire().unwrap();
    advance(Duration::from_millis(150)).await;
    p.record_success();
    assert_eq!(b.state(), Closed, "one slow call of two");
    let p = b.try_acquire().unwrap();
    advance(Duration::from_millis(150)).await;
    p.record_error(ErrorKind::Server);
    assert_eq!(b.state(), Open, "two slow calls in a row");

    // A slow probe re-opens it.
    advance(RESET).await;
    let probe = b.try_acquire().unwrap();
    advance(Duration::from_millis(150)).await;
    probe.record_success();
    assert_eq!(b.state(), Open);
}

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_everything_until_reset() {
    let b = CircuitBreaker::new("t", consecutive(3));
    let seen = watch_transitions(&b);
    b.force_open();
    assert_eq!(b.state(), ForcedOpen);
    advance(RESET * 10).await;
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.state, ForcedOpen);
    assert_eq!(rejected.retry_after, Duration::ZERO);
    b.force_open();
    assert_eq!(b.generation(), 1, "forcing it again is not a transition");
    b.reset();
    assert_eq!(b.state(), Closed);
    succeed(&b, 1);
    assert_eq!(
        pairs(&seen),
        vec![(Closed, ForcedOpen), (ForcedOpen, Closed)]
    );
}

#[test]
fn disabled_admits_everything_and_records_nothing() {
    let b = CircuitBreaker::new("t", consecutive(1));
    b.disable();
    assert_eq!(b.state(), Disabled);
    for _ in 0..100 {
        let p = b.try_acquire().expect("disabled admits");
        assert_eq!(p.state(), Disabled);
        p.record_failure();
    }
    assert_eq!((b.state(), b.generation()), (Disabled, 1));
    b.reset();
    assert_eq!(b.state(), Closed);
    fail(&b, 1);
    assert_eq!(b.state(), Open, "recording resumes after reset");
    b.disable();
    assert!(b.try_acquire().is_ok(), "disable also leaves Open");
}

#[test]
fn reset_while_closed_clears_the_counters() {
    let b = CircuitBreaker::new("t", consecutive(3));
    fail(&b, 2);
    b.reset();
    assert_eq!(b.generation(), 0, "no transition");
    fail(&b, 2);
    assert_eq!(b.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_permit_releases_the_half_open_slot() {
    let b = CircuitBreaker::new("t", consecutive(1));
    fail(&b, 1);
    advance(RESET).await;
    let probe = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err(), "the only slot is taken");
    drop(probe); // e.g. the caller's future was cancelled
    assert_eq!(b.state(), HalfOpen, "a dropped permit decides nothing");
    let probe = b.try_acquire().expect("the slot was released");
    probe.record_ignored();
    assert_eq!(b.state(), HalfOpen);
    let probe = b.try_acquire().expect("record_ignored released it too");
    probe.record_success();
    assert_eq!(b.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn listeners_see_every_transition_with_from_and_to() {
    let b = CircuitBreaker::new("lst", consecutive(2));
    let seen = watch_transitions(&b);
    let names = Arc::new(Mutex::new(Vec::new()));
    let sink = names.clone();
    b.on_transition(move |t| sink.lock().unwrap().push(t.breaker.to_string()));
    let mut states = b.subscribe();
    assert_eq!(*states.borrow_and_update(), Closed);

    fail(&b, 2);
    assert!(states.has_changed().unwrap());
    assert_eq!(*states.borrow_and_update(), Open);
    advance(RESET).await;
    b.try_acquire().unwrap().record_failure();
    advance(RESET).await;
    b.try_acquire().unwrap().record_success();
    b.force_open();
    b.disable();
    b.reset();
    assert_eq!(*states.borrow_and_update(), Closed);

    let log = seen.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            (Closed, Open, "failure threshold reached", 1),
            (Open, HalfOpen, "reset timeout elapsed", 2),
            (HalfOpen, Open, "probe failed", 3),
            (Open, HalfOpen, "reset timeout elapsed", 4),
            (HalfOpen, Closed, "probe succeeded", 5),
            (Closed, ForcedOpen, "forced open", 6),
            (ForcedOpen, Disabled, "disabled", 7),
            (Disabled, Closed, "reset", 8),
        ]
    );
    assert_eq!(b.generation(), 8);
    assert_eq!(names.lock().unwrap().len(), 8);
    assert!(names.lock().unwrap().iter().all(|n| n == "lst"));
}

#[test]
fn a_listener_may_call_back_into_the_breaker() {
    let b = Arc::new(CircuitBreaker::new("re", consecutive(1)));
    let seen = watch_transitions(&b);
    let weak = Arc::downgrade(&b);
    b.on_transition(move |t| {
        if t.to == Open
            && let Some(b) = weak.upgrade()
        {
            // Re-enters the breaker from inside a listener: must not deadlock.
            assert_eq!(b.state(), Open);
            b.force_open();
            b.on_transition(|_| {});
        }
    });
    fail(&b, 1);
    assert_eq!(b.state(), ForcedOpen);
    assert_eq!(
        pairs(&seen),
        vec![(Closed, Open), (Open, ForcedOpen)],
        "the nested transition is delivered after the first, in order"
    );
}

#[test]
fn a_panicking_listener_does_not_break_the_breaker() {
    let b = CircuitBreaker::new("p", consecutive(1));
    b.on_transition(|_| panic!("listener bug"));
    let seen = watch_transitions(&b);
    fail(&b, 1);
    assert_eq!(b.state(), Open);
    b.reset();
    b.force_open();
    assert_eq!(b.state(), ForcedOpen);
    assert_eq!(
        pairs(&seen),
        vec![(Closed, Open), (Open, Closed), (Closed, ForcedOpen)]
    );
}

#[test]
fn out_of_range_config_is_clamped_not_rejected() {
    let b = CircuitBreaker::new(
        "clamp",
        CircuitBreakerConfig {
            policy: FailurePolicy::FailureRate {
                window: RateWindow::Count(0),
                min_calls: 0,
                failure_rate: f64::NAN,
            },
            half_open_max_calls: 0,
            health_check_interval: Duration::ZERO,
            ..CircuitBreakerConfig::default()
        },
    );
    assert_eq!(
        b.config().policy,
        FailurePolicy::FailureRate {
            window: RateWindow::Count(1),
            min_calls: 1,
            failure_rate: 1.0
        }
    );
    assert_eq!(b.config().half_open_max_calls, 1);
    assert!(!b.config().health_check_interval.is_zero());
    fail(&b, 1);
    assert_eq!(b.state(), Open);
    let b = CircuitBreaker::new("zero", consecutive(0));
    fail(&b, 1);
    assert_eq!(b.state(), Open, "a threshold of 0 acts as 1");
}

mod recorder {
    //! A minimal `metrics` recorder that logs what it is told.
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder,
        SharedString, Unit,
    };

    #[derive(Default, Clone)]
    pub(super) struct Log(pub Arc<Mutex<Vec<String>>>);

    struct Handle(String, Log);

    impl CounterFn for Handle {
        fn increment(&self, value: u64) {
            self.1
                .0
                .lock()
                .unwrap()
                .push(format!("{} +{value}", self.0));
        }
        fn absolute(&self, value: u64) {
            self.1
                .0
                .lock()
                .unwrap()
                .push(format!("{} ={value}", self.0));
        }
    }

    impl GaugeFn for Handle {
        fn increment(&self, value: f64) {
            self.1
                .0
                .lock()
                .unwrap()
                .push(format!("{} +{value}", self.0));
        }
        fn decrement(&self, value: f64) {
            self.1
                .0
                .lock()
                .unwrap()
                .push(format!("{} -{value}", self.0));
        }
        fn set(&self, value: f64) {
            self.1
                .0
                .lock()
                .unwrap()
                .push(format!("{} ={value}", self.0));
        }
    }

    fn describe(key: &Key) -> String {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Recorder for Log {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(Arc::new(Handle(describe(key), self.clone())))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(Arc::new(Handle(describe(key), self.clone())))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }
}

#[test]
fn transitions_are_counted_and_the_state_gauge_follows() {
    let log = recorder::Log::default();
    metrics::with_local_recorder(&log, || {
        let b = CircuitBreaker::new("m", consecutive(1));
        fail(&b, 1);
        b.force_open();
        b.disable();
        b.reset();
        for _ in 0..10 {
            succeed(&b, 1);
        }
    });
    let log = log.0.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            "resilience_breaker_state{breaker=m} =0",
            "resilience_breaker_transitions_total{breaker=m,from=closed,to=open} +1",
            "resilience_breaker_state{breaker=m} =1",
            "resilience_breaker_transitions_total{breaker=m,from=open,to=forced_open} +1",
            "resilience_breaker_state{breaker=m} =3",
            "resilience_breaker_transitions_total{breaker=m,from=forced_open,to=disabled} +1",
            "resilience_breaker_state{breaker=m} =4",
            "resilience_breaker_transitions_total{breaker=m,from=disabled,to=closed} +1",
            "resilience_breaker_state{breaker=m} =0",
        ],
        "and nothing on the success path"
    );
}

#[test]
fn breaker_and_permit_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CircuitBreaker>();
    assert_send_sync::<Permit<'static>>();
    assert_send_sync::<Transition>();
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Ok,
    Counted,
    NotCounted,
    Ignored,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Ok),
        Just(Op::Counted),
        Just(Op::NotCounted),
        Just(Op::Ignored)
    ]
}

proptest! {
    /// Against a model: a Closed breaker opens exactly when `threshold` counted failures
    /// have come in a row (successes and non-counting errors break the run, ignored
    /// outcomes do not), and then rejects.
    #[test]
    fn consecutive_policy_matches_the_model(threshold in 1u32..6, ops in proptest::collection::vec(op(), 0..60)) {
        let b = CircuitBreaker::new("model", consecutive(threshold));
        let mut run = 0u32;
        let mut open = false;
        for op in ops {
            match b.try_acquire() {
                Ok(p) => {
                    prop_assert!(!open);
                    match op {
                        Op::Ok => { p.record_success(); run = 0; }
                        Op::NotCounted => { p.record_error(ErrorKind::Server); run = 0; }
                        Op::Counted => { p.record_error(ErrorKind::Timeout); run += 1; }
                        Op::Ignored => p.record_ignored(),
                    }
                    open = run >= threshold;
                }
                Err(r) => { prop_assert!(open); prop_assert_eq!(r.state, Open); }
            }
            prop_assert_eq!(b.state() == Open, open);
        }
    }

    /// A count window opens exactly when the model of its last N outcomes says so.
    #[test]
    fn count_window_matches_the_model(
        n in 1u32..12, min_calls in 1u32..12, pct in 0u32..=100,
        ops in proptest::collection::vec(any::<bool>(), 0..80),
    ) {
        let failure_rate = f64::from(pct) / 100.0;
        let b = CircuitBreaker::new("model", rate(RateWindow::Count(n), min_calls, failure_rate));
        let min_calls = min_calls.min(n) as usize;
        let mut window: std::collections::VecDeque<bool> = Default::default();
        for failed in ops {
            let Ok(p) = b.try_acquire() else { break };
            if failed { p.record_failure() } else { p.record_success() }
            window.push_back(failed);
            if window.len() > n as usize { window.pop_front(); }
            let fails = window.iter().filter(|f| **f).count();
            let expect_open = fails > 0
                && window.len() >= min_calls
                && fails as f64 / window.len() as f64 >= failure_rate;
            prop_assert_eq!(b.state() == Open, expect_open, "window {:?}", window);
            if expect_open { break; }
        }
    }
}

#[test]
fn rejected_is_an_error_that_says_when() {
    let b = CircuitBreaker::new("t", consecutive(1));
    fail(&b, 1);
    let rejected = b.try_acquire().unwrap_err();
    let text = rejected.to_string();
    assert!(
        text.starts_with("circuit breaker open; retry after"),
        "{text}"
    );
    let _: &dyn std::error::Error = &rejected;
}
