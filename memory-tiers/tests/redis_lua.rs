//! The memory-tiers suite against a real `redis-server` (spawned on a free port by
//! testkit, never 6379), so the Lua scripts themselves run, not their native twins.
//!
//! The Redis backends live in other crates and are not dependencies of this one, so this
//! file carries a minimal test-only `KvBackend` over testkit's raw RESP connection that
//! speaks the few commands the tiers and the suite use. When the real backends are
//! available, point `suite::MakeBackend` at them instead.
//!
//! Needs `redis-server` on the PATH (`apt-get install redis-server`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use memory_tiers::{MemoryInput, TieredMemory, connect_in_memory};
use resilience_core::{
    BackendError, Command, KvBackend, Priority, StoreOutcome, TicketOutcome, Value,
};
use serde_json::json;
use suite::MakeBackend;
use testkit::{RedisServer, RespConnection, RespReply};
use tokio::sync::Mutex;

/// A single-connection RESP2 backend for the commands the suite needs. Reconnects after a
/// connection error.
struct MiniResp {
    addr: std::net::SocketAddr,
    conn: Mutex<Option<RespConnection>>,
}

fn args_of(cmd: &Command) -> Result<Vec<Vec<u8>>, BackendError> {
    let s = |x: &str| x.as_bytes().to_vec();
    let mut a: Vec<Vec<u8>> = Vec::new();
    match cmd {
        Command::Ping => a.push(s("PING")),
        Command::Exists { keys } => {
            a.push(s("EXISTS"));
            a.extend(keys.iter().map(|k| s(k)));
        }
        Command::Del { keys } => {
            a.push(s("DEL"));
            a.extend(keys.iter().map(|k| s(k)));
        }
        Command::Pttl { key } => a.extend([s("PTTL"), s(key)]),
        Command::Zcard { key } => a.extend([s("ZCARD"), s(key)]),
        Command::Zscore { key, member } => a.extend([s("ZSCORE"), s(key), s(member)]),
        Command::Hget { key, field } => a.extend([s("HGET"), s(key), s(field)]),
        Command::Hset { key, fields } => {
            a.extend([s("HSET"), s(key)]);
            for (f, v) in fields {
                a.push(s(f));
                a.push(v.to_vec());
            }
        }
        Command::ScriptLoad { script } => a.extend([s("SCRIPT"), s("LOAD"), s(script)]),
        Command::Eval { script, keys, args } => {
            a.extend([s("EVAL"), s(script), s(&keys.len().to_string())]);
            a.extend(keys.iter().map(|k| s(k)));
            a.extend(args.iter().map(|x| x.to_vec()));
        }
        Command::Evalsha {
            sha1, keys, args, ..
        } => {
            a.extend([s("EVALSHA"), s(sha1), s(&keys.len().to_string())]);
            a.extend(keys.iter().map(|k| s(k)));
            a.extend(args.iter().map(|x| x.to_vec()));
        }
        other => {
            return Err(BackendError::from_reply(&format!(
                "ERR the test backend does not speak {}",
                other.name()
            )));
        }
    }
    Ok(a)
}

fn value_of(r: RespReply) -> Result<Value, BackendError> {
    Ok(match r {
        RespReply::Simple(s) if s == "OK" => Value::Okay,
        RespReply::Simple(s) => Value::Status(s),
        RespReply::Error(e) => return Err(BackendError::from_reply(&e)),
        RespReply::Int(i) => Value::Int(i),
        RespReply::Bulk(None) | RespReply::Array(None) => Value::Nil,
        RespReply::Bulk(Some(b)) => Value::Bytes(Bytes::from(b)),
        RespReply::Array(Some(items)) => {
            Value::Array(items.into_iter().map(value_of).collect::<Result<_, _>>()?)
        }
    })
}

fn canonical(cmd: &Command, v: Value) -> Value {
    match (cmd, v) {
        (Command::Zscore { .. }, Value::Bytes(b)) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Value::Nil, Value::Double),
        (_, v) => v,
    }
}

impl MiniResp {
    async fn round_trip(&self, cmds: &[Command]) -> Result<Vec<RespReply>, BackendError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let c = RespConnection::connect(self.addr)
                .await
                .map_err(|e| BackendError::unavailable(e.to_string()))?;
            *guard = Some(c);
        }
        let conn = guard.as_mut().expect("connected above");
        let mut out = Vec::with_capacity(cmds.len());
        let mut result = Ok(());
        for cmd in cmds {
            if let Err(e) = conn.send(&args_of(cmd)?).await {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            for _ in cmds {
                match conn.read_reply().await {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        match result {
            Ok(()) => Ok(out),
            Err(e) => {
                *guard = None;
                Err(BackendError::unavailable(e.to_string()))
            }
        }
    }
}

#[async_trait]
impl KvBackend for MiniResp {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        let mut replies = self.round_trip(std::slice::from_ref(&cmd)).await?;
        let r = replies
            .pop()
            .ok_or_else(|| BackendError::unavailable("no reply"))?;
        Ok(canonical(&cmd, value_of(r)?))
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        assert!(!atomic, "the suite sends no transactions");
        let replies = self.round_trip(&cmds).await?;
        let mut out = Vec::with_capacity(replies.len());
        let mut first_error = None;
        for (cmd, r) in cmds.iter().zip(replies) {
            match value_of(r) {
                Ok(v) => out.push(canonical(cmd, v)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn name(&self) -> &'static str {
        "test-resp"
    }
}

fn on(server: &RedisServer) -> MakeBackend {
    let addr = server.addr();
    Arc::new(move || {
        Arc::new(MiniResp {
            addr,
            conn: Mutex::new(None),
        }) as Arc<dyn KvBackend>
    })
}

async fn server() -> RedisServer {
    RedisServer::spawn()
        .await
        .expect("redis-server must be installed (apt-get install redis-server)")
}

macro_rules! on_redis {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let server = server().await;
            suite::$name(&on(&server)).await;
        }
    )*};
}

on_redis!(
    store_read_query_delete,
    importance_stays_in_unit_interval,
    every_key_has_a_ttl_and_reads_keep_it,
    concurrent_readers_count_exactly,
    overflow_moves_to_im_without_loss,
    failed_and_interrupted_moves,
    compression_levels_round_trip,
    invalid_input_and_key_isolation,
    cut_off_writes_are_all_or_nothing,
    outage_queues_writes_and_fallback_serves_reads,
);

/// A real server stopped: Normal writes queue and are readable from the fallback; after
/// the restart (which also lost the script cache) every queued write lands.
#[tokio::test]
async fn stopped_server_queues_then_replays() {
    let mut server = server().await;
    let backend = on(&server)();
    let c = suite::client("stm", backend);
    let (fb, _) = connect_in_memory("fallback");
    let mem = TieredMemory::builder(c.clone(), c.clone())
        .fallback(fb)
        .build()
        .unwrap();
    let agent = mem.agent("stopped").unwrap();
    assert!(
        agent
            .store(MemoryInput::new(0, json!(0)), Priority::Normal)
            .await
            .unwrap()
            .outcome
            .is_stored()
    );
    server.stop().await.unwrap();
    let mut tickets = Vec::new();
    for step in 1..=3 {
        let r = agent
            .store(MemoryInput::new(step, json!(step)), Priority::Normal)
            .await
            .unwrap();
        assert!(r.in_fallback);
        match r.outcome {
            StoreOutcome::Queued(t) => tickets.push(t),
            other => panic!("expected Queued, got {other:?}"),
        }
    }
    let recent = agent.recent(10).await.unwrap();
    assert_eq!(recent.len(), 3);
    assert!(
        recent
            .iter()
            .all(|r| r.source == memory_tiers::Source::Fallback)
    );
    server.restart().await.unwrap();
    for t in tickets {
        let outcome = tokio::time::timeout(Duration::from_secs(30), t.wait())
            .await
            .expect("replayed in time");
        assert_eq!(outcome, TicketOutcome::Completed);
    }
    // The restarted server lost the entry written before the stop (no persistence), and
    // holds the three replayed ones.
    let recent = agent.recent(10).await.unwrap();
    let steps: Vec<u64> = recent.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(steps, vec![3, 2, 1]);
    assert!(recent.iter().all(|r| r.source == memory_tiers::Source::Stm));
}

/// Each Lua script and its native twin give the same replies for the same calls.
#[tokio::test]
async fn lua_and_native_twins_agree() {
    let server = server().await;
    let redis = suite::client("redis", on(&server)());
    let (memory, _) = connect_in_memory("memory");
    let mut seen = Vec::new();
    for c in [redis, memory] {
        let mem = TieredMemory::builder(c.clone(), c.clone())
            .stm_config(suite::small_stm(4, 1))
            .build()
            .unwrap();
        let agent = mem.agent("twin").unwrap();
        let mut log = Vec::new();
        let mut ids = Vec::new();
        for step in 0..7u64 {
            let r = agent
                .store(
                    MemoryInput::new(
                        step,
                        json!({"s": step, "f": 0.123456, "raw_observation": 1}),
                    )
                    .importance((step as f64 * 0.37) % 1.0)
                    .timestamp(1_000 + step),
                    Priority::Normal,
                )
                .await
                .unwrap();
            ids.push(r.memory_id);
        }
        let strip = |v: Vec<memory_tiers::Retrieved>| {
            v.into_iter()
                .map(|r| {
                    (
                        r.entry.step_number,
                        r.entry.content,
                        r.entry.metadata.importance_score,
                        r.entry.metadata.retrieval_count,
                        format!("{:?}", r.source),
                    )
                })
                .collect::<Vec<_>>()
        };
        log.push(format!("{:?}", agent.count().await.unwrap()));
        log.push(format!("{:?}", strip(agent.recent(10).await.unwrap())));
        log.push(format!(
            "{:?}",
            strip(agent.by_step_range(2, 5, 10).await.unwrap())
        ));
        log.push(format!(
            "{:?}",
            strip(agent.by_time_range(1_001, 1_004, 2).await.unwrap())
        ));
        log.push(format!(
            "{:?}",
            strip(agent.by_importance(0.2, 0.8, 10).await.unwrap())
        ));
        for id in &ids {
            let r = agent
                .get(*id)
                .await
                .unwrap()
                .map(|r| (r.entry.metadata.retrieval_count, format!("{:?}", r.source)));
            log.push(format!("{r:?}"));
            log.push(format!(
                "{:?}",
                agent.adjust_importance(*id, 0.5).await.unwrap()
            ));
        }
        log.push(format!("{:?}", agent.delete(ids[6]).await.unwrap()));
        log.push(format!("{:?}", agent.maintain().await.unwrap()));
        log.push(format!("{:?}", agent.clear().await.unwrap()));
        log.push(format!("{:?}", agent.count().await.unwrap()));
        seen.push(log);
    }
    assert_eq!(seen[0], seen[1]);
}
