//! The `Subscriber` on the in-memory backend: channels and patterns, `PUBLISH` counting
//! deliveries, the bounded buffer's overflow policy, and a dropped subscriber leaving.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use backend_memory::InMemoryBackend;
use bytes::Bytes;
use resilience_core::{
    Command, KvBackend, MessageKind, Subscriber, SubscriberConfig, SubscriberEvent, Subscription,
    Value,
};

fn publish(channel: &str, message: &str) -> Command {
    Command::Publish {
        channel: channel.into(),
        message: Bytes::copy_from_slice(message.as_bytes()),
    }
}

fn message(event: Option<SubscriberEvent>) -> (String, String, MessageKind) {
    match event {
        Some(SubscriberEvent::Message(m)) => (
            String::from_utf8(m.channel.to_vec()).unwrap(),
            String::from_utf8(m.payload.to_vec()).unwrap(),
            m.kind,
        ),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn channels_and_patterns_each_deliver_and_publish_counts_them() {
    let backend = Arc::new(InMemoryBackend::new());
    let mut sub = Subscriber::start(
        backend.clone(),
        vec![
            Subscription::Channel("news".into()),
            Subscription::Pattern("n*".into()),
        ],
        SubscriberConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        backend.execute(publish("news", "one")).await.unwrap(),
        Value::Int(2)
    );
    assert_eq!(
        backend.execute(publish("other", "x")).await.unwrap(),
        Value::Int(0)
    );
    assert_eq!(
        backend.execute(publish("nope", "two")).await.unwrap(),
        Value::Int(1)
    );
    use MessageKind::{Channel, Pattern, Shard};
    assert_eq!(
        message(sub.next().await),
        ("news".into(), "one".into(), Channel)
    );
    assert_eq!(
        message(sub.next().await),
        ("news".into(), "one".into(), Pattern)
    );
    assert_eq!(
        message(sub.next().await),
        ("nope".into(), "two".into(), Pattern)
    );
    // Shard channels are their own namespace: SPUBLISH reaches SSUBSCRIBE only.
    let mut shard = Subscriber::start(
        backend.clone(),
        vec![Subscription::Shard("news".into())],
        SubscriberConfig::default(),
    )
    .await
    .unwrap();
    let spublish = Command::Spublish {
        channel: "news".into(),
        message: Bytes::from_static(b"three"),
    };
    assert_eq!(backend.execute(spublish).await.unwrap(), Value::Int(1));
    assert_eq!(
        message(shard.next().await),
        ("news".into(), "three".into(), Shard)
    );
    assert!(sub.try_next().is_none());
    drop(sub);
    tokio::task::yield_now().await;
    assert_eq!(
        backend.execute(publish("news", "gone")).await.unwrap(),
        Value::Int(0),
        "a dropped subscriber no longer counts"
    );
}

#[tokio::test]
async fn a_full_buffer_drops_the_oldest_and_reports_the_count() {
    let backend = Arc::new(InMemoryBackend::new());
    let mut sub = Subscriber::start(
        backend.clone(),
        vec![Subscription::Channel("c".into())],
        SubscriberConfig::default().with_buffer(3),
    )
    .await
    .unwrap();
    for n in 1..=5 {
        backend.execute(publish("c", &n.to_string())).await.unwrap();
    }
    // Let the pump move all five into the buffer.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut events = Vec::new();
    while events.len() < 4 && tokio::time::Instant::now() < deadline {
        let wait = std::time::Duration::from_millis(50);
        if let Ok(Some(event)) = tokio::time::timeout(wait, sub.next()).await {
            events.push(event);
        }
    }
    assert_eq!(events[0], SubscriberEvent::Dropped(2), "{events:?}");
    let payloads: Vec<String> = events[1..]
        .iter()
        .map(|e| message(Some(e.clone())).1)
        .collect();
    assert_eq!(payloads, ["3", "4", "5"]);
}

#[tokio::test]
async fn an_empty_subscription_list_is_refused() {
    let backend = Arc::new(InMemoryBackend::new());
    let e = Subscriber::start(backend, vec![], SubscriberConfig::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), resilience_core::ErrorKind::InvalidInput);
}
