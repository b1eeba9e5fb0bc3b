//! Pub/Sub links for [`resilience_core::Subscriber`]: a fred client of its own (a
//! subscribed connection can run nothing else), subscribed, then read until the
//! connection is lost.
//!
//! fred would reconnect that client by itself, but a plain client does not subscribe
//! again, so a link ends at the first connection error or reconnect: the `Subscriber`
//! opens a new one, subscribes and reports the gap. Messages already received are handed
//! out before the end is.

use async_trait::async_trait;
use bytes::Bytes;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::prelude::Client;
use fred::types::{Message, MessageKind as FredKind, Value as FredValue};
use resilience_core::{
    BackendError, ConnectionConfig, ErrorKind, MessageKind, PubSubLink, PubSubMessage, Subscription,
};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{classify_error, connect};

/// A subscribed client.
pub(crate) struct Link {
    client: Client,
    task: fred::types::ConnectHandle,
    messages: broadcast::Receiver<Message>,
    errors: broadcast::Receiver<(fred::error::Error, Option<fred::types::config::Server>)>,
    reconnects: broadcast::Receiver<fred::types::config::Server>,
    /// Messages fred's queue overflowed with, not yet reported.
    lost: u64,
}

impl Drop for Link {
    fn drop(&mut self) {
        // Closes the connection and stops fred's reconnecting.
        self.task.abort();
    }
}

fn payload(value: FredValue) -> Bytes {
    match value {
        FredValue::Bytes(b) => b,
        FredValue::String(s) => s.into_inner(),
        other => Bytes::copy_from_slice(other.as_bytes().unwrap_or_default()),
    }
}

#[async_trait]
impl PubSubLink for Link {
    async fn next(&mut self) -> Option<PubSubMessage> {
        loop {
            tokio::select! {
                // Messages already received go first.
                biased;
                message = self.messages.recv() => match message {
                    Ok(message) => {
                        let kind = match message.kind {
                            FredKind::Message => MessageKind::Channel,
                            FredKind::PMessage => MessageKind::Pattern,
                            FredKind::SMessage => MessageKind::Shard,
                        };
                        return Some(PubSubMessage::new(
                            message.channel.into_inner(),
                            payload(message.value),
                            kind,
                        ));
                    }
                    Err(RecvError::Lagged(n)) => self.lost += n,
                    Err(RecvError::Closed) => return None,
                },
                _ = self.errors.recv() => return None,
                _ = self.reconnects.recv() => return None,
            }
        }
    }

    fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }
}

/// Connects a client of its own and subscribes it.
pub(crate) async fn open(
    config: &ConnectionConfig,
    subscriptions: &[Subscription],
) -> Result<Link, BackendError> {
    let client = connect::build_subscriber(config)?;
    // Listening before connecting: nothing between the subscribe and the reader is lost.
    let messages = client.message_rx();
    let errors = client.error_rx();
    let reconnects = client.reconnect_rx();
    let task = connect::init(&client, config).await?;
    let mut link = Link {
        client,
        task,
        messages,
        errors,
        reconnects,
        lost: 0,
    };
    let options = connect::command_options(config);
    let commands = link.client.with_options(&options);
    for subscription in subscriptions {
        let subscribed = match subscription {
            Subscription::Channel(channel) => commands.subscribe(channel.as_str()).await,
            Subscription::Pattern(pattern) => commands.psubscribe(pattern.as_str()).await,
            Subscription::Shard(channel) => commands.ssubscribe(channel.as_str()).await,
            other => {
                return Err(BackendError::new(
                    ErrorKind::InvalidInput,
                    format!("fred: unsupported subscription {other:?}"),
                ));
            }
        };
        subscribed.map_err(|e| classify_error(&e))?;
    }
    // The first connect was announced as a reconnect: listen for losses from here on, and
    // check nothing was lost before that.
    link.errors = link.errors.resubscribe();
    link.reconnects = link.reconnects.resubscribe();
    if !link.client.is_connected() {
        return Err(BackendError::unavailable(
            "fred: the Pub/Sub connection closed while subscribing",
        ));
    }
    Ok(link)
}
