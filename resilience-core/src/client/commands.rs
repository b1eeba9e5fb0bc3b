//! The basic command methods and the extras agent code needs, each one call through
//! the breaker with a typed reply. None of them retries: use
//! [`execute_with_retry`](ResilientClient::execute_with_retry) or a prioritized write for that.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

use crate::retry::RetryPolicy;
use crate::{Command, Error, Limit, ScoreBound, SetOptions, Value, ZaddOptions};

use super::ResilientClient;

fn owned_keys<K: Into<String>>(keys: impl IntoIterator<Item = K>) -> Vec<String> {
    keys.into_iter().map(Into::into).collect()
}

impl ResilientClient {
    /// Runs `cmd`, retrying with `policy` while the error is retryable for it: a timed-out
    /// non-idempotent command (INCR, an unknown script) is never retried, since it may have
    /// been applied. Retries draw on the client's shared retry budget.
    ///
    /// # Errors
    ///
    /// The last attempt's error (as [`execute`](Self::execute)), once the policy or the
    /// retry decision stops, or `RetryBudgetExhausted` with it when the shared budget is spent.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the retries: an attempt in flight is abandoned as with
    /// [`execute`](Self::execute), and the earlier ones may have run only if they timed out.
    pub async fn execute_with_retry(
        &self,
        cmd: Command,
        policy: &RetryPolicy,
    ) -> Result<Value, Error> {
        let idempotent = cmd.is_idempotent();
        let inner = &self.inner;
        inner
            .with_retries(
                policy,
                |e| inner.retry_decision.may_retry(e, idempotent),
                || inner.call(cmd.clone()),
            )
            .await
    }

    /// `PING`: whether the server answers.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn ping(&self) -> Result<(), Error> {
        self.execute(Command::Ping).await.map(|_| ())
    }

    /// `GET key`.
    ///
    /// With a client cache, a trusted cached value may answer (never a stale one).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn get(&self, key: impl Into<String>) -> Result<Option<Bytes>, Error> {
        #[cfg(feature = "cache")]
        if let Some(cache) = &self.inner.cache {
            // Boxed: keeps the cache's larger future out of the uncached `get`'s size.
            return Box::pin(self.get_via_cache(cache, key.into())).await;
        }
        self.execute(Command::Get { key: key.into() })
            .await?
            .into_opt_bytes()
    }

    /// `SET key value` with options; `false` when an `NX`/`XX` condition was not met.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn set(
        &self,
        key: impl Into<String>,
        value: impl Into<Bytes>,
        options: SetOptions,
    ) -> Result<bool, Error> {
        self.execute(Command::Set {
            key: key.into(),
            value: value.into(),
            options,
        })
        .await?
        .into_set_result()
    }

    /// `DEL key...`: how many keys were removed.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn delete<K: Into<String>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<i64, Error> {
        self.execute(Command::Del {
            keys: owned_keys(keys),
        })
        .await?
        .into_int()
    }

    /// `EXISTS key...`: how many of the keys exist.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn exists<K: Into<String>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<i64, Error> {
        self.execute(Command::Exists {
            keys: owned_keys(keys),
        })
        .await?
        .into_int()
    }

    /// Sets a TTL (`EXPIRE`, or `PEXPIRE` for sub-second precision); `false` when the key
    /// does not exist.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn expire(&self, key: impl Into<String>, ttl: Duration) -> Result<bool, Error> {
        let key = key.into();
        let cmd = if ttl.subsec_nanos() == 0 {
            Command::Expire {
                key,
                seconds: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
                condition: None,
            }
        } else {
            Command::Pexpire {
                key,
                millis: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
                condition: None,
            }
        };
        Ok(self.execute(cmd).await?.into_int()? == 1)
    }

    /// `TTL key` in seconds: -1 without a TTL, -2 when missing.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn ttl(&self, key: impl Into<String>) -> Result<i64, Error> {
        self.execute(Command::Ttl { key: key.into() })
            .await?
            .into_int()
    }

    /// `INCRBY key delta`: the new value. Not idempotent.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn incrby(&self, key: impl Into<String>, delta: i64) -> Result<i64, Error> {
        self.execute(Command::Incrby {
            key: key.into(),
            delta,
        })
        .await?
        .into_int()
    }

    /// `MGET key...`: one optional value per key.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn mget<K: Into<String>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>, Error> {
        self.execute(Command::Mget {
            keys: owned_keys(keys),
        })
        .await?
        .into_array()?
        .into_iter()
        .map(Value::into_opt_bytes)
        .collect()
    }

    /// `HSET key field value`: 1 when the field is new.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn hset(
        &self,
        key: impl Into<String>,
        field: impl Into<String>,
        value: impl Into<Bytes>,
    ) -> Result<i64, Error> {
        self.execute(Command::Hset {
            key: key.into(),
            fields: vec![(field.into(), value.into())],
        })
        .await?
        .into_int()
    }

    /// `hmset(name, mapping)`: `HSET key field value [field value ...]`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn hmset<F: Into<String>, V: Into<Bytes>>(
        &self,
        key: impl Into<String>,
        mapping: impl IntoIterator<Item = (F, V)>,
    ) -> Result<(), Error> {
        let fields: Vec<(String, Bytes)> = mapping
            .into_iter()
            .map(|(f, v)| (f.into(), v.into()))
            .collect();
        if fields.is_empty() {
            return Err(Error::InvalidInput(
                "hmset needs at least one field".to_owned(),
            ));
        }
        self.execute(Command::Hset {
            key: key.into(),
            fields,
        })
        .await?
        .into_int()
        .map(|_| ())
    }

    /// `HGET key field`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn hget(
        &self,
        key: impl Into<String>,
        field: impl Into<String>,
    ) -> Result<Option<Bytes>, Error> {
        self.execute(Command::Hget {
            key: key.into(),
            field: field.into(),
        })
        .await?
        .into_opt_bytes()
    }

    /// `HGETALL key` (empty when the key does not exist).
    ///
    /// With a client cache, a trusted cached value may answer (never a stale one).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn hgetall(&self, key: impl Into<String>) -> Result<HashMap<String, Bytes>, Error> {
        #[cfg(feature = "cache")]
        if let Some(cache) = &self.inner.cache {
            return Box::pin(self.hgetall_via_cache(cache, key.into())).await;
        }
        Ok(self
            .execute(Command::Hgetall { key: key.into() })
            .await?
            .into_pairs()?
            .into_iter()
            .collect())
    }

    /// `HDEL key field...`: how many fields were removed.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn hdel<F: Into<String>>(
        &self,
        key: impl Into<String>,
        fields: impl IntoIterator<Item = F>,
    ) -> Result<i64, Error> {
        self.execute(Command::Hdel {
            key: key.into(),
            fields: owned_keys(fields),
        })
        .await?
        .into_int()
    }

    /// `HINCRBY key field delta`: the new value. Not idempotent.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn hincrby(
        &self,
        key: impl Into<String>,
        field: impl Into<String>,
        delta: i64,
    ) -> Result<i64, Error> {
        self.execute(Command::Hincrby {
            key: key.into(),
            field: field.into(),
            delta,
        })
        .await?
        .into_int()
    }

    /// `HINCRBYFLOAT key field delta`: the new value. Not idempotent.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn hincrbyfloat(
        &self,
        key: impl Into<String>,
        field: impl Into<String>,
        delta: f64,
    ) -> Result<f64, Error> {
        self.execute(Command::Hincrbyfloat {
            key: key.into(),
            field: field.into(),
            delta,
        })
        .await?
        .into_double()
    }

    /// `ZADD key [options] score member...`: members added (or changed, with `CH`).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zadd<M: Into<String>>(
        &self,
        key: impl Into<String>,
        members: impl IntoIterator<Item = (f64, M)>,
        options: ZaddOptions,
    ) -> Result<i64, Error> {
        let members: Vec<(f64, String)> = members.into_iter().map(|(s, m)| (s, m.into())).collect();
        self.execute(Command::Zadd {
            key: key.into(),
            members,
            options,
        })
        .await?
        .into_int()
    }

    /// `ZRANGE key start stop`: members by rank, lowest score first.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zrange(
        &self,
        key: impl Into<String>,
        start: i64,
        stop: i64,
    ) -> Result<Vec<String>, Error> {
        self.execute(Command::Zrange {
            key: key.into(),
            start,
            stop,
            rev: false,
            with_scores: false,
        })
        .await?
        .into_members()
    }

    /// `ZRANGE key start stop REV`: members by rank, highest score first.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zrevrange(
        &self,
        key: impl Into<String>,
        start: i64,
        stop: i64,
    ) -> Result<Vec<String>, Error> {
        self.execute(Command::Zrange {
            key: key.into(),
            start,
            stop,
            rev: true,
            with_scores: false,
        })
        .await?
        .into_members()
    }

    /// `ZRANGE key start stop WITHSCORES`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zrange_withscores(
        &self,
        key: impl Into<String>,
        start: i64,
        stop: i64,
    ) -> Result<Vec<(String, f64)>, Error> {
        self.execute(Command::Zrange {
            key: key.into(),
            start,
            stop,
            rev: false,
            with_scores: true,
        })
        .await?
        .into_scored_members()
    }

    /// `ZRANGEBYSCORE key min max [LIMIT offset count]`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zrangebyscore(
        &self,
        key: impl Into<String>,
        min: ScoreBound,
        max: ScoreBound,
        limit: Option<Limit>,
    ) -> Result<Vec<String>, Error> {
        self.execute(Command::Zrangebyscore {
            key: key.into(),
            min,
            max,
            rev: false,
            with_scores: false,
            limit,
        })
        .await?
        .into_members()
    }

    /// `ZREVRANGEBYSCORE key max min [LIMIT offset count]`: highest score first.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zrevrangebyscore(
        &self,
        key: impl Into<String>,
        min: ScoreBound,
        max: ScoreBound,
        limit: Option<Limit>,
    ) -> Result<Vec<String>, Error> {
        self.execute(Command::Zrangebyscore {
            key: key.into(),
            min,
            max,
            rev: true,
            with_scores: false,
            limit,
        })
        .await?
        .into_members()
    }

    /// `ZREM key member...`: how many were removed.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zrem<M: Into<String>>(
        &self,
        key: impl Into<String>,
        members: impl IntoIterator<Item = M>,
    ) -> Result<i64, Error> {
        self.execute(Command::Zrem {
            key: key.into(),
            members: owned_keys(members),
        })
        .await?
        .into_int()
    }

    /// `ZCARD key`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zcard(&self, key: impl Into<String>) -> Result<i64, Error> {
        self.execute(Command::Zcard { key: key.into() })
            .await?
            .into_int()
    }

    /// `ZSCORE key member`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zscore(
        &self,
        key: impl Into<String>,
        member: impl Into<String>,
    ) -> Result<Option<f64>, Error> {
        self.execute(Command::Zscore {
            key: key.into(),
            member: member.into(),
        })
        .await?
        .into_opt_double()
    }

    /// `ZREMRANGEBYRANK key start stop`: how many were removed.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn zremrangebyrank(
        &self,
        key: impl Into<String>,
        start: i64,
        stop: i64,
    ) -> Result<i64, Error> {
        self.execute(Command::Zremrangebyrank {
            key: key.into(),
            start,
            stop,
        })
        .await?
        .into_int()
    }

    /// One `SCAN` step: the next cursor (0 when done) and the keys of this step.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute).
    pub async fn scan(
        &self,
        cursor: u64,
        pattern: Option<&str>,
        count: Option<u64>,
    ) -> Result<(u64, Vec<String>), Error> {
        let reply = self
            .execute(Command::Scan {
                cursor,
                pattern: pattern.map(str::to_owned),
                count,
                type_name: None,
            })
            .await?
            .into_array()?;
        let mut parts = reply.into_iter();
        match (parts.next(), parts.next()) {
            (Some(next), Some(keys)) => {
                let next = u64::try_from(next.into_int()?).map_err(|_| Error::UnexpectedReply {
                    expected: "non-negative cursor",
                    got: "negative integer",
                })?;
                Ok((next, keys.into_members()?))
            }
            _ => Err(Error::UnexpectedReply {
                expected: "[cursor, keys]",
                got: "short array",
            }),
        }
    }
}
