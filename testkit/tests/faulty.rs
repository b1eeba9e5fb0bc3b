//! FaultyBackend and MockKvBackend, on tokio's paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use resilience_core::{BackendError, Command, ErrorKind, KvBackend, SetOptions, Value};
use testkit::faulty::{DEFAULT_HANG_TIMEOUT, FaultyBackend};
use testkit::mock::MockKvBackend;
use tokio::time::Instant;

/// A tiny inner backend: records every command it applies; `INCRBY` keeps a counter,
/// `GET missing` fails with a server error, everything else answers OK.
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<Command>>,
    counter: Mutex<i64>,
}

impl Recorder {
    fn applied(&self) -> Vec<Command> {
        self.applied.lock().unwrap().clone()
    }

    fn apply(&self, cmd: Command) -> Result<Value, BackendError> {
        self.applied.lock().unwrap().push(cmd.clone());
        match cmd {
            Command::Incrby { delta, .. } => {
                let mut c = self.counter.lock().unwrap();
                *c += delta;
                Ok(Value::Int(*c))
            }
            Command::Get { key } if key == "missing" => Err(BackendError::from_reply(
                "WRONGTYPE Operation against a key",
            )),
            _ => Ok(Value::Okay),
        }
    }
}

#[async_trait]
impl KvBackend for Recorder {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        self.apply(cmd)
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        _atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        cmds.into_iter().map(|c| self.apply(c)).collect()
    }

    fn name(&self) -> &'static str {
        "recorder"
    }
}

fn get(key: &str) -> Command {
    Command::Get { key: key.into() }
}

fn set(key: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: Bytes::from_static(b"v"),
        options: SetOptions::default(),
    }
}

fn incr(key: &str) -> Command {
    Command::Incrby {
        key: key.into(),
        delta: 1,
    }
}

#[tokio::test(start_paused = true)]
async fn no_faults_forwards_everything_and_keeps_the_name() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    assert_eq!(backend.name(), "recorder");
    assert_eq!(backend.execute(set("a")).await, Ok(Value::Okay));
    assert_eq!(
        backend
            .execute_batch(vec![get("a"), incr("n")], false)
            .await,
        Ok(vec![Value::Okay, Value::Int(1)])
    );
    assert_eq!(backend.inner().applied().len(), 3);
    assert_eq!(
        (faults.calls(), faults.forwarded(), faults.failed()),
        (2, 2, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn fail_next_fails_exactly_n_calls_without_reaching_inner() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    faults.fail_next(2, ErrorKind::Busy);
    faults.fail_next(1, ErrorKind::Unavailable);
    assert_eq!(faults.pending_failures(), 3);

    let kinds: Vec<_> = [
        backend.execute(set("a")).await,
        backend.execute(set("b")).await,
        backend.execute(set("c")).await,
    ]
    .into_iter()
    .map(|r| r.unwrap_err().kind())
    .collect();
    assert_eq!(
        kinds,
        [ErrorKind::Busy, ErrorKind::Busy, ErrorKind::Unavailable]
    );
    assert!(backend.inner().applied().is_empty());

    assert_eq!(backend.execute(set("d")).await, Ok(Value::Okay));
    assert_eq!(backend.inner().applied(), vec![set("d")]);
    assert_eq!(
        (
            faults.calls(),
            faults.forwarded(),
            faults.failed(),
            faults.injected()
        ),
        (4, 1, 3, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_is_one_call() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    faults.fail_next(1, ErrorKind::Timeout);
    let err = backend
        .execute_batch(vec![set("a"), set("b")], true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(backend.inner().applied().is_empty());
    assert_eq!(
        backend.execute_batch(vec![set("a"), set("b")], true).await,
        Ok(vec![Value::Okay, Value::Okay])
    );
    assert_eq!((faults.calls(), faults.forwarded()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn outage_fails_unavailable_until_turned_off() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    faults.set_outage(true);
    assert!(faults.outage());
    for _ in 0..5 {
        let err = backend.execute(get("a")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }
    let err = backend
        .execute_batch(vec![get("a")], false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(backend.inner().applied().is_empty());

    faults.set_outage(false);
    assert_eq!(backend.execute(get("a")).await, Ok(Value::Okay));
    assert_eq!(
        (faults.calls(), faults.forwarded(), faults.failed()),
        (7, 1, 6)
    );
}

#[tokio::test(start_paused = true)]
async fn latency_delays_each_call_by_the_configured_amount() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    faults.set_latency(Duration::from_millis(250));

    let start = Instant::now();
    assert_eq!(backend.execute(get("a")).await, Ok(Value::Okay));
    assert_eq!(start.elapsed(), Duration::from_millis(250));

    // The call has not finished before the latency passed.
    let pending = tokio::time::timeout(Duration::from_millis(249), backend.execute(get("b"))).await;
    assert!(pending.is_err(), "finished before its latency");

    faults.set_latency(Duration::ZERO);
    let start = Instant::now();
    backend.execute(get("c")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn hang_waits_the_timeout_then_fails_timeout_without_reaching_inner() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    faults.set_hang(true);

    let start = Instant::now();
    let err = backend.execute(set("a")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed(), DEFAULT_HANG_TIMEOUT);

    faults.set_hang_timeout(Duration::from_millis(500));
    let start = Instant::now();
    let err = backend
        .execute_batch(vec![set("b")], false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    assert!(backend.inner().applied().is_empty());

    faults.set_hang(false);
    assert_eq!(backend.execute(set("c")).await, Ok(Value::Okay));
    assert_eq!(faults.forwarded(), 1);
}

#[tokio::test(start_paused = true)]
async fn apply_then_timeout_applies_the_command_but_reports_timeout() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    faults.apply_then_timeout_next(1);

    let err = backend.execute(incr("n")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    // It was applied: the counter moved.
    assert_eq!(backend.inner().applied(), vec![incr("n")]);
    assert_eq!(backend.execute(incr("n")).await, Ok(Value::Int(2)));
    assert_eq!(
        (
            faults.calls(),
            faults.forwarded(),
            faults.failed(),
            faults.injected()
        ),
        (2, 2, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn fail_when_matches_commands_and_batches() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    faults.fail_when(
        |cmd| cmd.keys().iter().any(|k| k.starts_with("bad:")),
        ErrorKind::Server,
    );

    assert_eq!(
        backend.execute(set("bad:1")).await.unwrap_err().kind(),
        ErrorKind::Server
    );
    assert_eq!(backend.execute(set("good")).await, Ok(Value::Okay));
    let err = backend
        .execute_batch(vec![set("good"), get("bad:2")], false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(backend.inner().applied(), vec![set("good")]);

    faults.clear();
    assert_eq!(backend.execute(set("bad:1")).await, Ok(Value::Okay));
}

#[tokio::test(start_paused = true)]
async fn inner_errors_pass_through_and_count_as_failed_not_injected() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    let err = backend.execute(get("missing")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.code(), Some("WRONGTYPE"));
    assert_eq!(
        (faults.failed(), faults.injected(), faults.forwarded()),
        (1, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn controllers_are_shared_and_clear_resets_faults_not_counters() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    let other = backend.controller();
    let cloned = faults.clone();
    other.set_outage(true);
    cloned.fail_next(3, ErrorKind::Busy);
    cloned.set_latency(Duration::from_secs(1));
    assert!(faults.outage());
    assert!(backend.execute(get("a")).await.is_err());

    faults.clear();
    assert!(!other.outage());
    assert_eq!(other.pending_failures(), 0);
    let start = Instant::now();
    assert_eq!(backend.execute(get("a")).await, Ok(Value::Okay));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(other.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn faults_apply_to_a_backend_owned_by_another_task() {
    let (backend, faults) = FaultyBackend::new(Recorder::default());
    let backend = std::sync::Arc::new(backend);
    faults.set_hang(true);
    let task = tokio::spawn({
        let backend = backend.clone();
        async move { backend.execute(get("a")).await }
    });
    // While hanging the call is still pending after almost the whole timeout.
    tokio::time::sleep(DEFAULT_HANG_TIMEOUT - Duration::from_millis(1)).await;
    assert!(!task.is_finished());
    let result = task.await.unwrap();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn mock_checks_an_exact_expectation() {
    let mut mock = MockKvBackend::new();
    mock.expect_execute()
        .times(1)
        .withf(|cmd| matches!(cmd, Command::Incrby { key, delta: 5 } if key == "hits"))
        .returning(|_| Ok(Value::Int(5)));
    mock.expect_execute_batch()
        .times(1)
        .withf(|cmds, atomic| *atomic && cmds.len() == 2)
        .returning(|cmds, _| Ok(vec![Value::Okay; cmds.len()]));
    mock.expect_name().return_const("mock");

    // The mock works behind FaultyBackend too.
    let (backend, faults) = FaultyBackend::new(mock);
    assert_eq!(backend.name(), "mock");
    let reply = backend
        .execute(Command::Incrby {
            key: "hits".into(),
            delta: 5,
        })
        .await;
    assert_eq!(reply, Ok(Value::Int(5)));
    assert_eq!(
        backend.execute_batch(vec![set("a"), set("b")], true).await,
        Ok(vec![Value::Okay, Value::Okay])
    );
    assert_eq!(faults.forwarded(), 2);
}

#[tokio::test]
#[should_panic(expected = "No matching expectation found")]
async fn mock_rejects_an_unexpected_command() {
    let mut mock = MockKvBackend::new();
    mock.expect_execute()
        .withf(|cmd| matches!(cmd, Command::Ping))
        .returning(|_| Ok(Value::Status("PONG".into())));
    let _ = mock.execute(get("a")).await;
}
