//! Every command the tiers send declares every key it touches: each operation runs on an
//! in-memory backend wrapped by a checker that refuses any command naming a key of the
//! tiers' namespace outside its declared keys (a raw command's key position, an argument,
//! a script's `ARGV`). Scripts themselves are held to their `KEYS` by the in-memory Lua
//! engine, which refuses a `redis.call` on any other key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backend_memory::InMemoryBackend;
use bytes::Bytes;
use memory_tiers::{MemoryInput, StmConfig, TieredMemory};
use resilience_core::{BackendError, Command, KvBackend, Priority, ResilientClient, Value};
use serde_json::json;

const NS: &str = "declared";

/// An in-memory backend that records each command's name and refuses one that names a
/// key of [`NS`] it did not declare.
#[derive(Clone, Default)]
struct KeyChecker {
    inner: InMemoryBackend,
    seen: Arc<Mutex<Vec<String>>>,
}

/// The arguments of `cmd` that are not declared keys but look like keys of [`NS`].
fn undeclared(cmd: &Command) -> Vec<String> {
    let declared = cmd.keys();
    let args: Vec<Bytes> = match cmd {
        Command::Raw { args, .. } => args[1..].to_vec(),
        Command::Evalsha { args, .. } | Command::Eval { args, .. } => args.clone(),
        // Typed commands carry their keys in their key fields, by construction.
        _ => Vec::new(),
    };
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .filter(|a| a.starts_with(&format!("{NS}:")) && !declared.contains(a))
        .collect()
}

impl KeyChecker {
    fn check(&self, cmd: &Command) -> Result<(), BackendError> {
        let name = match cmd {
            Command::Raw { args, .. } => String::from_utf8_lossy(&args[0]).into_owned(),
            other => other.name().to_owned(),
        };
        self.seen.lock().unwrap().push(name);
        let bad = undeclared(cmd);
        if bad.is_empty() {
            Ok(())
        } else {
            Err(BackendError::new(
                resilience_core::ErrorKind::InvalidInput,
                format!("{} touches undeclared keys {bad:?}", cmd.name()),
            ))
        }
    }
}

#[async_trait]
impl KvBackend for KeyChecker {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        self.check(&cmd)?;
        self.inner.execute(cmd).await
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        for cmd in &cmds {
            self.check(cmd)?;
        }
        self.inner.execute_batch(cmds, atomic).await
    }

    fn name(&self) -> &'static str {
        "key-checker"
    }
}

#[test]
fn the_checker_catches_a_key_smuggled_past_the_declared_ones() {
    let key = format!("{NS}:{{stm:a}}:mem:X");
    let smuggled = Command::Raw {
        args: vec!["GET".into(), Bytes::from(key.clone())],
        keys: Vec::new(),
        write: false,
        idempotent: true,
    };
    assert_eq!(undeclared(&smuggled), vec![key.clone()]);
    let in_argv = Command::Evalsha {
        sha1: "0".repeat(40),
        keys: Vec::new(),
        args: vec![Bytes::from(key.clone())],
        idempotent: true,
    };
    assert_eq!(undeclared(&in_argv), vec![key.clone()]);
    let declared = Command::Raw {
        args: vec!["GET".into(), Bytes::from(key.clone())],
        keys: vec![key],
        write: false,
        idempotent: true,
    };
    assert!(undeclared(&declared).is_empty());
}

#[tokio::test]
async fn every_operation_declares_every_key_it_touches() {
    let backend = KeyChecker::default();
    let client = ResilientClient::builder("checked", backend.clone())
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .with_health_check_interval(Duration::from_secs(3600)),
        )
        .build()
        .expect("valid client settings");
    let fallback = ResilientClient::builder("fallback", KeyChecker::default())
        .build()
        .expect("valid client settings");
    let mem = TieredMemory::builder(client.clone(), client)
        .namespace(NS)
        .stm_config(
            StmConfig::default()
                .with_capacity(4)
                .with_transition_slack(1),
        )
        .fallback(fallback)
        .build()
        .unwrap();
    let agent = mem.agent("a:b").unwrap();
    let mut ids = Vec::new();
    for step in 0..8u64 {
        let r = agent
            .store(
                MemoryInput::new(step, json!({"step": step})).importance(0.1 * step as f64),
                Priority::Normal,
            )
            .await
            .unwrap();
        assert!(r.outcome.is_stored());
        ids.push(r.memory_id);
    }
    agent.get(ids[7]).await.unwrap().expect("stored");
    assert!(
        agent
            .get(memory_tiers::Ulid::generate())
            .await
            .unwrap()
            .is_none()
    );
    agent.recent(5).await.unwrap();
    agent.by_step_range(1, 6, 10).await.unwrap();
    agent.by_time_range(0, u64::MAX, 10).await.unwrap();
    agent.by_importance(0.2, 0.6, 10).await.unwrap();
    agent.adjust_importance(ids[7], 0.05).await.unwrap();
    agent.count().await.unwrap();
    agent.delete(ids[6]).await.unwrap();
    agent.maintain().await.unwrap();
    agent.clear().await.unwrap();

    let seen = backend.seen.lock().unwrap().clone();
    for name in [
        "SET",
        "ZADD",
        "PEXPIRE",
        "BITFIELD",
        "GET",
        "ZRANGEBYLEX",
        "ZREVRANGEBYLEX",
        "MGET",
        "ZLEXCOUNT",
        "EVALSHA",
        "DEL",
        "ZREM",
    ] {
        assert!(
            seen.iter().any(|s| s == name),
            "no {name} was checked: {seen:?}"
        );
    }
}
