//! Rank queries (`recent(n)`) without Lua: one `SORT_RO … BY nosort … GET` reads the
//! index and the entries' fields in one command, atomically.
//!
//! The query script ([`crate::scripts`]) moves every field of every entry through the Lua
//! interpreter, which is most of what a `recent(20)` costs the server: about twice what
//! `SORT_RO index BY nosort DESC LIMIT 0 n GET # GET <prefix>*->i … GET <prefix>*->a`
//! costs for the same reply (`scripts/probe-recent-layouts.sh`). `BY nosort` on a sorted
//! set walks it in its own order, so the result is exactly the script's `ZREVRANGE`.
//!
//! The script stays the reference and the fallback; this path answers only when it gives
//! the same answer:
//!
//! - In the same round trip, `ZRANGEBYSCORE expiry -inf now LIMIT 0 1` asks whether any
//!   index member is past its deadline. If one is, or if any listed entry is gone, the
//!   script runs instead: it removes expired members from the indexes (so they never
//!   accumulate) and answers without them.
//! - A server that refuses `SORT_RO … GET` (an ACL user without access to every key, Redis
//!   Cluster, where 7.0 refuses `GET` patterns, a server before 7.0, the in-memory backend)
//!   answers with an error reply; the tier then stops asking ([`SortReads`]) and
//!   uses the script from then on. Errors that say the server could not be reached are
//!   returned as the script's would be.
//! - An entry prefix containing `*` cannot be a `SORT` pattern (Redis substitutes the
//!   first `*`): such tiers always use the script.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use resilience_core::{Command, ErrorKind, Limit, ResilientClient, ScoreBound, Value};

use crate::error::{Error, Result};
use crate::scripts::QUERY_FIELDS;

/// Whether a tier may still serve rank queries with `SORT_RO`: set until the server
/// refuses it once.
#[derive(Debug)]
pub(crate) struct SortReads(AtomicBool);

impl Default for SortReads {
    fn default() -> Self {
        SortReads(AtomicBool::new(true))
    }
}

impl SortReads {
    pub(crate) fn enabled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn disable(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// One rank query for the fast path.
pub(crate) struct RankQuery<'a> {
    pub(crate) index_key: &'a str,
    pub(crate) expiry_key: &'a str,
    pub(crate) entry_prefix: &'a str,
    pub(crate) descending: bool,
    pub(crate) limit: usize,
    pub(crate) now_ms: u64,
}

/// The listed entries, each as its id and the values of [`QUERY_FIELDS`] in order: what
/// the query script returns, flattened.
pub(crate) type Rows = Vec<(Value, Vec<Value>)>;

/// Runs `q` with `SORT_RO`. `Ok(None)` means the script must answer (an entry is gone, a
/// member is due for cleanup, or the server refused `SORT_RO`, which also disables this
/// path for the tier).
pub(crate) async fn rank_query(
    client: &ResilientClient,
    switch: &SortReads,
    q: RankQuery<'_>,
) -> Result<Option<Rows>> {
    if !switch.enabled() || q.entry_prefix.contains('*') {
        return Ok(None);
    }
    let replies = client
        .pipeline()
        .add_command(sort_command(&q))
        .add_command(Command::Zrangebyscore {
            key: q.expiry_key.to_owned(),
            min: ScoreBound::NegInf,
            max: ScoreBound::Inclusive(q.now_ms as f64),
            rev: false,
            with_scores: false,
            limit: Some(Limit {
                offset: 0,
                count: 1,
            }),
        })
        .execute()
        .await;
    let mut replies = match replies {
        Ok(replies) => replies.into_iter(),
        Err(e) if refused(&e) => {
            tracing::debug!(error = %e, "SORT_RO refused; rank queries use the query script");
            switch.disable();
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let (Some(sorted), Some(due)) = (replies.next(), replies.next()) else {
        return Err(Error::Corrupt("SORT_RO pipeline: missing reply".to_owned()));
    };
    let due = due
        .into_array()
        .map_err(|e| Error::Corrupt(format!("expiry index reply: {e}")))?;
    if !due.is_empty() {
        return Ok(None);
    }
    rows(sorted)
}

/// An error reply from the server (not a failure to reach it): the command is refused.
fn refused(e: &resilience_core::Error) -> bool {
    matches!(e.kind(), Some(ErrorKind::Server))
}

/// `SORT_RO index BY nosort [DESC] LIMIT 0 n GET # GET <prefix>*-><field>...`.
fn sort_command(q: &RankQuery<'_>) -> Command {
    let mut args = Vec::with_capacity(8 + 2 * (1 + QUERY_FIELDS.len()));
    args.extend([
        Bytes::from_static(b"SORT_RO"),
        Bytes::copy_from_slice(q.index_key.as_bytes()),
        Bytes::from_static(b"BY"),
        Bytes::from_static(b"nosort"),
    ]);
    if q.descending {
        args.push(Bytes::from_static(b"DESC"));
    }
    args.extend([
        Bytes::from_static(b"LIMIT"),
        Bytes::from_static(b"0"),
        Bytes::from(q.limit.to_string()),
        Bytes::from_static(b"GET"),
        Bytes::from_static(b"#"),
    ]);
    for field in QUERY_FIELDS {
        args.push(Bytes::from_static(b"GET"));
        args.push(Bytes::from(format!("{}*->{field}", q.entry_prefix)));
    }
    Command::Raw {
        args,
        keys: vec![q.index_key.to_owned()],
        write: false,
        idempotent: true,
    }
}

/// Splits the flat `SORT` reply into rows; `None` when a listed entry is gone (its first
/// field, which every stored entry has, is nil).
fn rows(sorted: Value) -> Result<Option<Rows>> {
    let width = 1 + QUERY_FIELDS.len();
    let values = sorted
        .into_array()
        .map_err(|e| Error::Corrupt(format!("SORT_RO reply: {e}")))?;
    if values.len() % width != 0 {
        return Err(Error::Corrupt(format!(
            "SORT_RO reply has {} values, not a multiple of {width}",
            values.len()
        )));
    }
    let mut out = Vec::with_capacity(values.len() / width);
    let mut it = values.into_iter();
    while let Some(id) = it.next() {
        let fields: Vec<Value> = it.by_ref().take(QUERY_FIELDS.len()).collect();
        if matches!(fields.first(), None | Some(Value::Nil)) {
            return Ok(None);
        }
        out.push((id, fields));
    }
    Ok(Some(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn query(prefix: &str) -> RankQuery<'_> {
        RankQuery {
            index_key: "ns:stm:{a}:timeline",
            expiry_key: "ns:stm:{a}:expiry",
            entry_prefix: prefix,
            descending: true,
            limit: 20,
            now_ms: 1_000,
        }
    }

    #[test]
    fn the_command_reads_every_query_field_of_each_listed_entry() {
        let Command::Raw {
            args, keys, write, ..
        } = sort_command(&query("ns:stm:{a}:mem:"))
        else {
            panic!("not a raw command");
        };
        let words: Vec<&str> = args
            .iter()
            .map(|a| std::str::from_utf8(a).unwrap())
            .collect();
        assert_eq!(
            words,
            [
                "SORT_RO",
                "ns:stm:{a}:timeline",
                "BY",
                "nosort",
                "DESC",
                "LIMIT",
                "0",
                "20",
                "GET",
                "#",
                "GET",
                "ns:stm:{a}:mem:*->i",
                "GET",
                "ns:stm:{a}:mem:*->e",
                "GET",
                "ns:stm:{a}:mem:*->r",
                "GET",
                "ns:stm:{a}:mem:*->a",
            ]
        );
        assert_eq!(keys, ["ns:stm:{a}:timeline"]);
        assert!(!write);
    }

    fn row(id: &str, first: Value) -> Vec<Value> {
        let mut v = vec![Value::Bytes(Bytes::copy_from_slice(id.as_bytes())), first];
        v.extend((1..QUERY_FIELDS.len()).map(|_| Value::Nil));
        v
    }

    #[test]
    fn rows_split_the_flat_reply_per_entry() {
        let mut flat = row("A", Value::Bytes(Bytes::from_static(b"{}")));
        flat.extend(row("B", Value::Bytes(Bytes::from_static(b"{}"))));
        let rows = rows(Value::Array(flat)).unwrap().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].0, Value::Bytes(Bytes::from_static(b"B")));
        assert_eq!(rows[1].1.len(), QUERY_FIELDS.len());
    }

    #[test]
    fn a_gone_entry_hands_the_query_to_the_script() {
        let mut flat = row("A", Value::Bytes(Bytes::from_static(b"{}")));
        flat.extend(row("B", Value::Nil));
        assert!(rows(Value::Array(flat)).unwrap().is_none());
    }

    #[test]
    fn a_reply_of_the_wrong_width_is_corrupt() {
        let err = rows(Value::Array(vec![Value::Nil; 3])).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
    }

    #[tokio::test]
    async fn a_prefix_with_a_star_never_uses_sort() {
        let (client, _) = crate::connect_in_memory("sort_read_star");
        let switch = SortReads::default();
        let got = rank_query(&client, &switch, query("ns:stm:{a*}:mem:"))
            .await
            .unwrap();
        assert!(got.is_none());
        assert!(switch.enabled(), "not a refusal: the switch stays on");
        assert_eq!(client.stats().calls, 0, "nothing was sent");
    }

    #[tokio::test]
    async fn a_server_that_refuses_sort_ro_switches_the_tier_to_the_script() {
        let (client, _) = crate::connect_in_memory("sort_read_refused");
        let switch = SortReads::default();
        let got = rank_query(&client, &switch, query("ns:stm:{a}:mem:"))
            .await
            .unwrap();
        assert!(got.is_none());
        assert!(!switch.enabled());
        // Switched off: the next query goes to the script without sending anything.
        let calls = client.stats().calls;
        let again = rank_query(&client, &switch, query("ns:stm:{a}:mem:"))
            .await
            .unwrap();
        assert!(again.is_none());
        assert_eq!(client.stats().calls, calls);
    }
}
