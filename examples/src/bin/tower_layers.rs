//! tower layers around the resilience layer, on the in-memory backend (no server):
//!
//! - **below** the client, a tower timeout on every command the backend runs: a command
//!   the backend holds too long fails as `Timeout`, which the breaker counts, so three in a
//!   row open it and later calls fail fast without reaching the backend;
//! - **above** the client, a concurrency limit: at most 8 commands in flight through it.
//!
//! `cargo run -p examples --bin tower_layers`

use std::time::Duration;

use backend_memory::InMemoryBackend;
use resilience_core::tower::{BackendService, ServiceBackend};
use resilience_core::{Command, ResilientClient, SetOptions, Value};
use tower::{Service, ServiceBuilder, ServiceExt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // A backend that stalls on keys starting with "slow", under a 100 ms tower timeout.
    let memory = BackendService::new(InMemoryBackend::new());
    let stalling = tower::service_fn(move |cmd: Command| {
        let mut memory = memory.clone();
        async move {
            if cmd.keys().iter().any(|k| k.starts_with("slow")) {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            memory.call(cmd).await
        }
    });
    let backend = ServiceBackend::new(
        ServiceBuilder::new()
            .timeout(Duration::from_millis(100))
            .service(stalling),
    )
    .named("in-memory behind a tower timeout");
    let client = ResilientClient::builder("tower-demo", backend)
        .breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(3))
        .build()?;

    let mut service = ServiceBuilder::new()
        .concurrency_limit(8)
        .service(client.clone());
    let set = |key: &str| Command::Set {
        key: key.to_owned(),
        value: "value".into(),
        options: SetOptions::default(),
    };
    let reply = service.ready().await?.call(set("fast")).await?;
    println!("SET fast                -> {reply:?}");
    for attempt in 1..=4 {
        match service.ready().await?.call(set("slow")).await {
            Ok(v) => println!("SET slow (attempt {attempt}) -> {v:?}"),
            Err(e) => println!("SET slow (attempt {attempt}) -> error: {e}"),
        }
    }
    println!("breaker after three timeouts: {:?}", client.circuit_state());
    let got = service
        .ready()
        .await?
        .call(Command::Get { key: "fast".into() })
        .await;
    match got {
        Ok(Value::Bytes(v)) => println!("GET fast                -> {v:?}"),
        other => println!("GET fast                -> {other:?} (the breaker is open)"),
    }
    Ok(())
}
