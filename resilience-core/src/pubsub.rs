//! Pub/Sub that survives outages.
//!
//! Its guide is in the docs of its main type, [`Subscriber`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{BackendError, KvBackend};

mod link;
pub use link::{MessageKind, PubSubLink, PubSubMessage, Subscription};

/// An outage of a [`Subscriber`]'s connection: messages published between
/// [`down_since`](Self::down_since) and [`resubscribed_at`](Self::resubscribed_at) may
/// have been lost.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Gap {
    /// When the connection was seen lost.
    pub down_since: SystemTime,
    /// When every subscription was in place again.
    pub resubscribed_at: SystemTime,
    /// The last reason a reconnect failed, or that the connection was lost.
    pub cause: String,
    /// How many reconnects failed before one held.
    pub failed_attempts: u32,
}

impl Gap {
    /// How long the subscriber was deaf.
    pub fn duration(&self) -> Duration {
        self.resubscribed_at
            .duration_since(self.down_since)
            .unwrap_or_default()
    }
}

/// What a [`Subscriber`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriberEvent {
    /// A message.
    Message(PubSubMessage),
    /// The connection was lost and is back, subscribed again: messages in between may be
    /// lost.
    Gap(Gap),
    /// The buffer was full: this many of the oldest messages were dropped.
    Dropped(u64),
}

/// Knobs of a [`Subscriber`].
#[derive(Clone, Debug, PartialEq, Eq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct SubscriberConfig {
    /// Messages held for the reader at most (see [`Subscriber`]: when full, the oldest go). Default 1024.
    pub buffer: usize,
    /// The first wait before reconnecting. Default 50 ms.
    pub reconnect_min: Duration,
    /// The longest wait between reconnects. Default 2 s.
    pub reconnect_max: Duration,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        SubscriberConfig {
            buffer: 1024,
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
        }
    }
}

/// The bounded buffer between the pump and the reader.
#[derive(Debug, Default)]
struct Buffer {
    events: VecDeque<SubscriberEvent>,
    /// Messages dropped since the reader last heard of it.
    dropped: u64,
    /// Messages in `events` (gaps are not counted against the bound).
    messages: usize,
}

#[derive(Debug)]
struct Shared {
    buffer: Mutex<Buffer>,
    ready: Notify,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, event: SubscriberEvent) {
        {
            let mut buffer = self.lock();
            if matches!(event, SubscriberEvent::Message(_)) {
                if buffer.messages >= self.capacity {
                    // Drop the oldest message (never a gap).
                    if let Some(at) = buffer
                        .events
                        .iter()
                        .position(|e| matches!(e, SubscriberEvent::Message(_)))
                    {
                        buffer.events.remove(at);
                        buffer.messages -= 1;
                        buffer.dropped += 1;
                    }
                }
                buffer.messages += 1;
            }
            buffer.events.push_back(event);
        }
        self.ready.notify_one();
    }

    /// Counts messages lost before they reached the buffer.
    fn report_dropped(&self, n: u64) {
        self.lock().dropped += n;
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<SubscriberEvent> {
        let mut buffer = self.lock();
        if buffer.dropped > 0 {
            return Some(SubscriberEvent::Dropped(std::mem::take(
                &mut buffer.dropped,
            )));
        }
        let event = buffer.events.pop_front()?;
        if matches!(event, SubscriberEvent::Message(_)) {
            buffer.messages -= 1;
        }
        Some(event)
    }
}

/// Pub/Sub that survives outages.
///
/// Redis delivers a published message only to the connections subscribed at that moment:
/// a subscriber whose connection drops misses everything published until it has
/// reconnected *and* subscribed again, and a plain driver connection does not even
/// resubscribe. A [`Subscriber`] does both, and says so: after every reconnect it
/// subscribes to everything again, then reports the outage as a [`SubscriberEvent::Gap`]
/// (down from when to when), because messages published in that window may be lost.
///
/// # The parts
///
/// - A backend opens a [`PubSubLink`]: one connection, subscribed to a list of
///   [`Subscription`]s, that yields messages until it is lost
///   ([`KvBackend::open_pubsub`](crate::KvBackend::open_pubsub)). Backends do nothing
///   else: the reconnecting, resubscribing and reporting are here, once, for all of them.
/// - A [`Subscriber`] runs one task that pumps the link into a bounded buffer, and on a
///   lost link opens a new one (backing off from [`SubscriberConfig::reconnect_min`] to
///   [`SubscriberConfig::reconnect_max`]) until it succeeds.
///
/// # The buffer, and what happens when it is full
///
/// The buffer holds up to [`SubscriberConfig::buffer`] messages. The pump never waits for
/// the reader (a subscriber that stops reading makes Redis close its connection once its
/// output buffer limit is reached, which would lose messages anyway, and silently): when
/// the buffer is full the **oldest** message is dropped, and the next event the reader
/// gets is [`SubscriberEvent::Dropped`] with how many went. Gaps are never dropped.
///
/// ```
/// # async fn demo() -> Result<(), resilience_core::BackendError> {
/// use std::sync::Arc;
/// use backend_memory::InMemoryBackend;
/// use resilience_core::{Command, KvBackend, Subscriber, SubscriberConfig, SubscriberEvent, Subscription};
///
/// let backend = Arc::new(InMemoryBackend::new());
/// let mut sub = Subscriber::start(
///     backend.clone(),
///     vec![Subscription::Channel("news".into())],
///     SubscriberConfig::default(),
/// )
/// .await?;
/// backend
///     .execute(Command::Publish { channel: "news".into(), message: "hello".into() })
///     .await?;
/// match sub.next().await {
///     Some(SubscriberEvent::Message(m)) => assert_eq!(m.payload, "hello"),
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
///
/// Dropping it stops its task and closes its connection.
#[derive(Debug)]
pub struct Subscriber {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Subscriber {
    /// Subscribes to `subscriptions` on `backend`. Returns once the first connection is
    /// subscribed, so every message published after this returns is delivered (or a gap
    /// is reported); fails with the backend's error when that first connection cannot be
    /// made (`InvalidInput` for a backend without Pub/Sub, or an empty list).
    ///
    /// # Errors
    ///
    /// The first connection's failure, as above.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes closes the connection it was opening; nothing
    /// is subscribed.
    pub async fn start(
        backend: Arc<dyn KvBackend>,
        subscriptions: Vec<Subscription>,
        config: SubscriberConfig,
    ) -> Result<Subscriber, BackendError> {
        if subscriptions.is_empty() {
            return Err(BackendError::new(
                crate::ErrorKind::InvalidInput,
                "a subscriber needs at least one channel or pattern",
            ));
        }
        let link = backend.open_pubsub(&subscriptions).await?;
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer::default()),
            ready: Notify::new(),
            capacity: config.buffer.max(1),
        });
        let task = tokio::spawn(pump(
            backend,
            subscriptions,
            config,
            link,
            Arc::clone(&shared),
        ));
        Ok(Subscriber { shared, task })
    }

    /// The next event, waiting for one.
    ///
    /// # Errors
    ///
    /// None: a lost connection is an event (a gap), not an error; `None` once the subscriber
    /// is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an event is taken from the buffer only when the future completes, so one
    /// dropped before then loses nothing.
    pub async fn next(&mut self) -> Option<SubscriberEvent> {
        loop {
            // Registered before looking, so a push between the look and the wait wakes it.
            let notified = self.shared.ready.notified();
            if let Some(event) = self.shared.pop() {
                return Some(event);
            }
            if self.task.is_finished() {
                return None;
            }
            notified.await;
        }
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<SubscriberEvent> {
        self.shared.pop()
    }
}

/// Pumps the link into the buffer; on a lost link, reconnects and reports the gap.
async fn pump(
    backend: Arc<dyn KvBackend>,
    subscriptions: Vec<Subscription>,
    config: SubscriberConfig,
    mut link: Box<dyn PubSubLink>,
    shared: Arc<Shared>,
) {
    loop {
        while let Some(message) = link.next().await {
            let lost = link.take_lost();
            if lost > 0 {
                shared.report_dropped(lost);
            }
            shared.push(SubscriberEvent::Message(message));
        }
        drop(link);
        let down_since = SystemTime::now();
        let mut cause = "the connection was lost".to_owned();
        let mut failed_attempts = 0u32;
        let mut wait = config.reconnect_min;
        link = loop {
            match backend.open_pubsub(&subscriptions).await {
                Ok(link) => break link,
                Err(e) => {
                    cause = e.to_string();
                    failed_attempts = failed_attempts.saturating_add(1);
                    tracing::debug!(error = %e, "subscriber: reconnect failed");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(config.reconnect_max);
                }
            }
        };
        let gap = Gap {
            down_since,
            resubscribed_at: SystemTime::now(),
            cause,
            failed_attempts,
        };
        tracing::info!(?gap, "subscriber: resubscribed after an outage");
        shared.push(SubscriberEvent::Gap(gap));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn message(n: u32) -> SubscriberEvent {
        SubscriberEvent::Message(PubSubMessage::new("c", n.to_string(), MessageKind::Channel))
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_messages_and_says_how_many() {
        let shared = Shared {
            buffer: Mutex::new(Buffer::default()),
            ready: Notify::new(),
            capacity: 2,
        };
        shared.push(message(1));
        let gap = SubscriberEvent::Gap(Gap {
            down_since: SystemTime::UNIX_EPOCH,
            resubscribed_at: SystemTime::UNIX_EPOCH,
            cause: "test".into(),
            failed_attempts: 0,
        });
        shared.push(gap.clone());
        shared.push(message(2));
        shared.push(message(3));
        shared.push(message(4));
        assert_eq!(shared.pop(), Some(SubscriberEvent::Dropped(2)));
        assert_eq!(shared.pop(), Some(gap));
        assert_eq!(shared.pop(), Some(message(3)));
        assert_eq!(shared.pop(), Some(message(4)));
        assert_eq!(shared.pop(), None);
    }
}
