//! Pub/Sub links for [`resilience_core::Subscriber`]: a RESP3 connection of its own (a
//! subscribed connection can run nothing else), subscribed, whose pushes are read until
//! the connection is lost.
//!
//! RESP3 because shard channels need it here: redis-rs subscribes to channels and
//! patterns on any connection, but `SSUBSCRIBE` only as a command whose confirmation
//! arrives as a RESP3 push. Messages of every kind then arrive as pushes on one channel,
//! and so does the connection's end (`Disconnection`).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{Client, PushInfo, PushKind};
use resilience_core::{BackendError, MessageKind, PubSubLink, PubSubMessage, Subscription};
use tokio::sync::mpsc;

use crate::classify_error;

/// A subscribed connection and its pushes.
pub(crate) struct Link {
    /// Kept open: dropping it closes the connection.
    _connection: MultiplexedConnection,
    pushes: mpsc::UnboundedReceiver<PushInfo>,
}

fn bytes(value: redis::Value) -> Bytes {
    match value {
        redis::Value::BulkString(b) => Bytes::from(b),
        redis::Value::SimpleString(s) => Bytes::from(s),
        _ => Bytes::new(),
    }
}

#[async_trait]
impl PubSubLink for Link {
    async fn next(&mut self) -> Option<PubSubMessage> {
        loop {
            let push = self.pushes.recv().await?;
            let mut data = push.data.into_iter();
            let (kind, channel, payload) = match push.kind {
                PushKind::Message => (MessageKind::Channel, data.next()?, data.next()?),
                PushKind::SMessage => (MessageKind::Shard, data.next()?, data.next()?),
                PushKind::PMessage => {
                    let _pattern = data.next()?;
                    (MessageKind::Pattern, data.next()?, data.next()?)
                }
                PushKind::Disconnection => return None,
                // Subscription confirmations and anything else.
                _ => continue,
            };
            return Some(PubSubMessage::new(bytes(channel), bytes(payload), kind));
        }
    }
}

/// Connects (within `connect_timeout`) and subscribes (each within `reply_timeout`).
pub(crate) async fn open(
    client: &Client,
    subscriptions: &[Subscription],
    connect_timeout: Duration,
    reply_timeout: Duration,
) -> Result<Link, BackendError> {
    let info = client.get_connection_info().clone();
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let client = Client::open(info.set_redis_settings(resp3)).map_err(|e| classify_error(&e))?;
    let (sender, pushes) = mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(reply_timeout))
        .set_push_sender(sender);
    let mut connection = match tokio::time::timeout(
        connect_timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(Ok(connection)) => connection,
        Ok(Err(e)) => return Err(classify_error(&e).at_connect()),
        Err(_) => {
            return Err(BackendError::unavailable(format!(
                "redis-rs: no Pub/Sub connection within {connect_timeout:?}"
            )));
        }
    };
    for subscription in subscriptions {
        let subscribed = match subscription {
            Subscription::Channel(channel) => connection.subscribe(channel).await,
            Subscription::Pattern(pattern) => connection.psubscribe(pattern).await,
            // Its confirmation is a push redis-rs takes as the command's reply.
            Subscription::Shard(channel) => connection
                .send_packed_command(redis::cmd("SSUBSCRIBE").arg(channel))
                .await
                .map(drop),
            other => {
                return Err(BackendError::new(
                    resilience_core::ErrorKind::InvalidInput,
                    format!("redis-rs: unsupported subscription {other:?}"),
                ));
            }
        };
        subscribed.map_err(|e| classify_error(&e))?;
    }
    Ok(Link {
        _connection: connection,
        pushes,
    })
}
