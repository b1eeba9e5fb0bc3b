//! Helpers shared by the client integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backend_memory::InMemoryBackend;
use resilience_core::{
    BackendError, Command, Jitter, KvBackend, ResilientClient, ResilientClientBuilder, RetryPolicy,
    Value,
};
use testkit::faulty::{FaultController, FaultyBackend};

/// Logs every command that reaches the wrapped backend, batches flattened, in order.
#[derive(Clone)]
pub(crate) struct Recorder<B> {
    inner: B,
    pub log: Arc<Mutex<Vec<Command>>>,
}

impl<B> Recorder<B> {
    pub(crate) fn new(inner: B) -> Self {
        Recorder {
            inner,
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

#[async_trait]
impl<B: KvBackend> KvBackend for Recorder<B> {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        self.log.lock().unwrap().push(cmd.clone());
        self.inner.execute(cmd).await
    }
    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        self.log.lock().unwrap().extend(cmds.iter().cloned());
        self.inner.execute_batch(cmds, atomic).await
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// Retries without jitter, so waits are exact on the paused clock.
pub(crate) fn exact_policy() -> RetryPolicy {
    RetryPolicy::default().with_jitter(Jitter::None)
}

/// A store on `memory` behind scripted faults; `memory` stays readable directly.
pub(crate) struct Rig {
    pub memory: InMemoryBackend,
    pub faults: FaultController,
    pub log: Arc<Mutex<Vec<Command>>>,
}

impl Rig {
    pub(crate) fn new() -> (Rig, FaultyBackend<Recorder<InMemoryBackend>>) {
        let memory = InMemoryBackend::new();
        let recorder = Recorder::new(memory.clone());
        let log = Arc::clone(&recorder.log);
        let (backend, faults) = FaultyBackend::new(recorder);
        (
            Rig {
                memory,
                faults,
                log,
            },
            backend,
        )
    }

    pub(crate) fn client(
        f: impl FnOnce(ResilientClientBuilder) -> ResilientClientBuilder,
    ) -> (Rig, ResilientClient) {
        let (rig, backend) = Rig::new();
        let builder = ResilientClient::builder("test", backend).retry_policy(exact_policy());
        (rig, f(builder).build().expect("valid client settings"))
    }

    /// A value straight from the store, bypassing faults.
    pub(crate) async fn get(&self, key: &str) -> Option<bytes::Bytes> {
        self.memory
            .execute(Command::Get {
                key: key.to_owned(),
            })
            .await
            .unwrap()
            .into_opt_bytes()
            .unwrap()
    }

    /// Commands that reached the store, as (name, first key).
    pub(crate) fn applied(&self) -> Vec<(String, String)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c.name().to_owned(),
                    c.keys().first().cloned().unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Waits (on whatever clock runs) until `cond` holds, failing after `limit`.
pub(crate) async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
