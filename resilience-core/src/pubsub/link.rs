//! What a backend hands a [`Subscriber`](crate::Subscriber)(super::Subscriber): one subscribed connection
//! ([`PubSubLink`]) and the messages it delivers.

use async_trait::async_trait;
use bytes::Bytes;

/// What to subscribe to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subscription {
    /// `SUBSCRIBE channel`: messages `PUBLISH`ed to it.
    Channel(String),
    /// `PSUBSCRIBE pattern`: messages `PUBLISH`ed to every channel the glob pattern matches.
    Pattern(String),
    /// `SSUBSCRIBE channel` (Redis 7): a shard channel, whose messages come from
    /// `SPUBLISH` and, on a cluster, live on the master that owns the channel's hash slot.
    /// The shard channels of one [`Subscriber`](crate::Subscriber) must share a slot (give them one hash tag).
    Shard(String),
}

/// Which kind of subscription a message came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A [`Subscription::Channel`].
    Channel,
    /// A [`Subscription::Pattern`].
    Pattern,
    /// A [`Subscription::Shard`].
    Shard,
}

/// One published message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PubSubMessage {
    /// The channel it was published to.
    pub channel: Bytes,
    /// The message.
    pub payload: Bytes,
    /// The kind of subscription it came through.
    pub kind: MessageKind,
}

impl PubSubMessage {
    /// A message on `channel`.
    pub fn new(channel: impl Into<Bytes>, payload: impl Into<Bytes>, kind: MessageKind) -> Self {
        PubSubMessage {
            channel: channel.into(),
            payload: payload.into(),
            kind,
        }
    }
}

/// One subscribed connection, as a backend opens it.
#[async_trait]
pub trait PubSubLink: Send {
    /// The next message; `None` once the connection is lost (it never comes back: the
    /// [`Subscriber`](crate::Subscriber) opens a new link).
    async fn next(&mut self) -> Option<PubSubMessage>;

    /// Messages the link received but could not keep (a driver queue that overflowed)
    /// since the last call; the [`Subscriber`](crate::Subscriber) reports them as
    /// [`SubscriberEvent::Dropped`](crate::SubscriberEvent::Dropped). Zero by default.
    fn take_lost(&mut self) -> u64 {
        0
    }
}
