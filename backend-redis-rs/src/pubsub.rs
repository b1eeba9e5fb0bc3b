//! Pub/Sub links for [`resilience_core::Subscriber`]: a redis-rs `aio::PubSub` connection
//! of its own (a subscribed connection can run nothing else), subscribed, then read as a
//! stream of messages that ends when the connection is lost.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use redis::Client;
use redis::aio::PubSubStream;
use resilience_core::{BackendError, PubSubLink, PubSubMessage, Subscription};

use crate::classify_error;

/// A subscribed connection.
pub(crate) struct Link {
    messages: PubSubStream,
}

#[async_trait]
impl PubSubLink for Link {
    async fn next(&mut self) -> Option<PubSubMessage> {
        let message = self.messages.next().await?;
        let via_pattern = message.from_pattern();
        Some(PubSubMessage::new(
            Bytes::copy_from_slice(message.get_channel_name().as_bytes()),
            Bytes::copy_from_slice(message.get_payload_bytes()),
            via_pattern,
        ))
    }
}

/// Connects (within `connect_timeout`) and subscribes (each within `reply_timeout`).
pub(crate) async fn open(
    client: &Client,
    subscriptions: &[Subscription],
    connect_timeout: Duration,
    reply_timeout: Duration,
) -> Result<Link, BackendError> {
    let mut pubsub = match tokio::time::timeout(connect_timeout, client.get_async_pubsub()).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(e)) => return Err(classify_error(&e).at_connect()),
        Err(_) => {
            return Err(BackendError::unavailable(format!(
                "redis-rs: no Pub/Sub connection within {connect_timeout:?}"
            )));
        }
    };
    for subscription in subscriptions {
        let subscribed = match subscription {
            Subscription::Channel(channel) => {
                tokio::time::timeout(reply_timeout, pubsub.subscribe(channel)).await
            }
            Subscription::Pattern(pattern) => {
                tokio::time::timeout(reply_timeout, pubsub.psubscribe(pattern)).await
            }
            other => {
                return Err(BackendError::new(
                    resilience_core::ErrorKind::InvalidInput,
                    format!("redis-rs: unsupported subscription {other:?}"),
                ));
            }
        };
        match subscribed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(classify_error(&e)),
            Err(_) => {
                return Err(BackendError::timeout(format!(
                    "redis-rs: no reply to a subscribe within {reply_timeout:?}"
                )));
            }
        }
    }
    Ok(Link {
        messages: pubsub.into_on_message(),
    })
}
