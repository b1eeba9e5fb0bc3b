//! tower layers above and below the resilience layer (feature `tower`): the client as a
//! `Service<Command>` under a concurrency limit and a timeout; a service with tower's
//! timeout and load-shed layers as the client's backend, whose failures the breaker and
//! retries classify like a driver's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backend_memory::InMemoryBackend;
use bytes::Bytes;
use resilience_core::tower::{BackendService, ServiceBackend, classify};
use resilience_core::{
    BackendError, CircuitState, Command, Error, ErrorKind, KvBackend, ResilientClient, SetOptions,
    Value,
};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.to_owned(),
        value: Bytes::from(value.to_owned()),
        options: SetOptions::default(),
    }
}

/// A backend that answers after `delay`, counting the calls that reached it.
fn slow(
    delay: Duration,
    calls: Arc<AtomicUsize>,
) -> impl Service<Command, Response = Value, Error = BackendError, Future = impl Send>
+ Clone
+ Send
+ Sync
+ 'static {
    service_fn(move |_cmd: Command| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Ok::<_, BackendError>(Value::Okay)
        }
    })
}

#[tokio::test]
async fn the_client_is_a_service_under_tower_layers() {
    let client = ResilientClient::builder("above", InMemoryBackend::new())
        .build()
        .expect("valid client settings");
    let mut service = ServiceBuilder::new()
        .concurrency_limit(4)
        .timeout(Duration::from_secs(5))
        .service(client.clone());
    let reply = service
        .ready()
        .await
        .unwrap()
        .call(set("k", "v"))
        .await
        .unwrap();
    assert_eq!(reply, Value::Okay);
    let got = service
        .ready()
        .await
        .unwrap()
        .call(Command::Get { key: "k".into() })
        .await
        .unwrap();
    assert_eq!(got, Value::Bytes(Bytes::from_static(b"v")));
    // The errors are the client's own, boxed by the layers: the kind survives.
    let e = service
        .ready()
        .await
        .unwrap()
        .call(Command::Del { keys: vec![] })
        .await
        .unwrap_err();
    let e = e.downcast::<Error>().expect("the client's error");
    assert_eq!(e.kind(), Some(ErrorKind::Server));
    assert_eq!(client.stats().calls, 3);
}

#[tokio::test(start_paused = true)]
async fn a_tower_timeout_below_the_client_is_a_timeout_the_breaker_counts() {
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = ServiceBackend::new(
        ServiceBuilder::new()
            .timeout(Duration::from_millis(100))
            .service(slow(Duration::from_secs(10), Arc::clone(&calls))),
    )
    .named("slow");
    assert_eq!(backend.name(), "slow");
    let client = ResilientClient::builder("below", backend)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .circuit_threshold(3)
                .circuit_reset_timeout(Duration::from_secs(60)),
        )
        .build()
        .expect("valid client settings");
    for _ in 0..3 {
        let e = client.execute(set("k", "v")).await.unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::Timeout), "{e}");
    }
    assert_eq!(client.circuit_state(), CircuitState::Open);
    let before = calls.load(Ordering::SeqCst);
    let e = client.execute(set("k", "v")).await.unwrap_err();
    assert!(matches!(e, Error::CircuitOpen { .. }), "{e}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "an open breaker sent nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shed_request_is_busy() {
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = ServiceBackend::new(
        ServiceBuilder::new()
            .load_shed()
            .concurrency_limit(1)
            .service(slow(Duration::from_millis(50), Arc::clone(&calls))),
    );
    let (first, second) = tokio::join!(backend.execute(set("a", "1")), async {
        tokio::task::yield_now().await;
        backend.execute(set("b", "2")).await
    });
    assert_eq!(first.unwrap(), Value::Okay);
    let e = second.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert!(e.message().contains("load-shed"), "{e}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_backend_behind_a_service_keeps_its_replies_and_refuses_transactions() {
    let memory = InMemoryBackend::new();
    let backend = ServiceBackend::new(BackendService::new(memory.clone()));
    let replies = backend
        .execute_batch(vec![set("a", "1"), Command::Get { key: "a".into() }], false)
        .await
        .unwrap();
    assert_eq!(
        replies,
        vec![Value::Okay, Value::Bytes(Bytes::from_static(b"1"))]
    );
    // A failing command fails the call, and the others still ran (as in a pipeline).
    let e = backend
        .execute_batch(vec![Command::Del { keys: vec![] }, set("b", "2")], false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(
        memory
            .execute(Command::Get { key: "b".into() })
            .await
            .unwrap(),
        Value::Bytes(Bytes::from_static(b"2"))
    );
    let e = backend
        .execute_batch(vec![set("c", "3")], true)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("MULTI"), "{e}");
    assert_eq!(
        memory
            .execute(Command::Get { key: "c".into() })
            .await
            .unwrap(),
        Value::Nil,
        "nothing of a refused transaction ran"
    );
}

#[test]
fn unknown_service_errors_are_unavailable() {
    let e = classify("connection pool exhausted".into());
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.message().contains("connection pool exhausted"));
    let passed = classify(Box::new(BackendError::new(ErrorKind::Auth, "denied")));
    assert_eq!(passed.kind(), ErrorKind::Auth);
}
