//! Pub/Sub inside the process: the subscribers of an [`InMemoryBackend`](super::InMemoryBackend)
//! and `PUBLISH` / `SPUBLISH` to them.
//!
//! Each subscriber is a link with its subscriptions and an unbounded queue (the
//! [`Subscriber`](crate::Subscriber) above it bounds what it keeps). `PUBLISH` delivers to
//! every live link whose channel or pattern matches, once per matching subscription, and
//! counts the deliveries, as Redis does. A link never loses its connection: there is none.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::glob::glob_match;
use resilience_core::{MessageKind, PubSubLink, PubSubMessage, Subscription};

/// One subscriber's end in the hub.
#[derive(Debug)]
struct Listener {
    subscriptions: Vec<Subscription>,
    queue: mpsc::UnboundedSender<PubSubMessage>,
}

/// Every subscriber of one backend.
#[derive(Debug, Default)]
pub(crate) struct Channels {
    listeners: Vec<Listener>,
}

impl Channels {
    /// A new subscriber to `subscriptions`.
    pub(crate) fn subscribe(&mut self, subscriptions: &[Subscription]) -> MemoryLink {
        let (queue, receiver) = mpsc::unbounded_channel();
        self.listeners.push(Listener {
            subscriptions: subscriptions.to_vec(),
            queue,
        });
        MemoryLink { receiver }
    }

    /// `PUBLISH` (`shard`: `SPUBLISH`): delivers `message` and returns how many deliveries
    /// were made. Shard channels are their own namespace, as in Redis.
    pub(crate) fn publish(&mut self, channel: &str, message: &Bytes, shard: bool) -> i64 {
        self.listeners.retain(|l| !l.queue.is_closed());
        let mut delivered = 0;
        for listener in &self.listeners {
            for subscription in &listener.subscriptions {
                let kind = match subscription {
                    Subscription::Channel(c) if !shard && c == channel => MessageKind::Channel,
                    Subscription::Pattern(p)
                        if !shard && glob_match(p.as_bytes(), channel.as_bytes()) =>
                    {
                        MessageKind::Pattern
                    }
                    Subscription::Shard(c) if shard && c == channel => MessageKind::Shard,
                    _ => continue,
                };
                let sent = listener.queue.send(PubSubMessage::new(
                    Bytes::copy_from_slice(channel.as_bytes()),
                    message.clone(),
                    kind,
                ));
                if sent.is_ok() {
                    delivered += 1;
                }
            }
        }
        delivered
    }
}

/// A subscriber's link: its queue.
#[derive(Debug)]
pub(crate) struct MemoryLink {
    receiver: mpsc::UnboundedReceiver<PubSubMessage>,
}

#[async_trait]
impl PubSubLink for MemoryLink {
    async fn next(&mut self) -> Option<PubSubMessage> {
        self.receiver.recv().await
    }
}
