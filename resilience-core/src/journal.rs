//! The durable recovery journal (feature `durable`): queued writes that survive a crash.
//!
//! Without a journal the recovery queue lives in memory: a process killed during an
//! outage loses what it had queued. With one, a queued data write is committed to an
//! embedded crash-safe store ([redb], fsync on commit) *before* `Queued` is returned, and
//! a client opened later on the same file replays whatever is still pending.
//!
//! ```no_run
//! # use backend_memory::InMemoryBackend;
//! # use resilience_core::{Command, Priority, ResilientClient, SetOptions};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ResilientClient::builder("agent_stm", InMemoryBackend::new())
//!     .journal("/var/lib/my-service/recovery.redb")
//!     .try_build()?; // opens the journal; pending writes start replaying
//! if let Some(stats) = client.journal_stats() {
//!     println!("recovered {} writes, {} corrupt", stats.recovered, stats.corrupt);
//! }
//! let outcome = client
//!     .submit(vec![Command::Set { key: "k".into(), value: "v".into(), options: SetOptions::default() }], Priority::Normal)
//!     .await;
//! // If Redis is down, `outcome` is `Queued` and the write is already on disk.
//! # let _ = outcome; Ok(()) }
//! ```
//!
//! # What is promised
//!
//! - **On disk before `Queued`.** [`submit`](crate::ResilientClient::submit) of a write
//!   that has to be queued appends a record and waits for its commit (redb
//!   [`Durability::Immediate`]: fsync) before returning
//!   [`StoreOutcome::Queued`](crate::StoreOutcome::Queued). Concurrent appends share one
//!   commit (group commit), so a burst of queued writes costs a few fsyncs, not one each.
//!   If the commit fails, the write is *not* queued: the caller gets
//!   [`StoreOutcome::Failed`](crate::StoreOutcome::Failed) with
//!   [`Error::StoreFailed`](crate::Error::StoreFailed) naming the journal error.
//! - **Replay on start.** [`ResilientClientBuilder::journal`](crate::ResilientClientBuilder::journal)
//!   then [`JournaledBuilder::try_build`](crate::JournaledBuilder::try_build) reads every pending record in issue order and
//!   queues it again with its priority and ordering keys (and the sources of the Lua
//!   scripts it runs, so a restarted Redis can load them). The replay worker starts at
//!   once when `try_build` runs inside a Tokio runtime, else on the client's first use.
//!   Nobody holds the tickets of these writes: they are counted in
//!   [`JournalStats::recovered`] and [`JournalStats::recovered_completed`], and one that is
//!   given up is told to the dead-letter listeners like any other.
//!   Issue order is the order of the records' sequence numbers: for a caller that awaits
//!   each `submit`, its call order; concurrent submits on the same key have no defined
//!   order between them, with or without a journal. A recovered write starts again with
//!   zero attempts and a fresh `max_age`.
//! - **Removal.** A write leaves the journal when it is applied or dead-lettered (evicted,
//!   too old, too many attempts, refused by the server). A write abandoned by
//!   [`shutdown`](crate::ResilientClient::shutdown) or by dropping the client stays in the
//!   journal: its ticket says [`Shutdown`](crate::DeadLetterReason::Shutdown) (this
//!   process did not apply it) and the next client on the journal replays it.
//! - **Corruption.** Each record carries a version byte and a CRC-32 of its body. A
//!   record that fails either check, or does not decode, is skipped with a `tracing` warning,
//!   counted in [`JournalStats::corrupt`] and the [`CORRUPT_RECORDS`] metric, and moved to a
//!   side table (`corrupt`) for inspection: opening never panics and never stops at a bad
//!   record. (redb itself is copy-on-write with checksummed commits: a commit torn by a
//!   crash is rolled back on open, so a torn *record* can only come from outside redb.)
//!
//! # Delivery: at least once
//!
//! A write applied by Redis just before a crash, whose removal was not yet committed, is
//! replayed by the next process: delivery is *at least once*. Exactly-once *effects* need
//! idempotent writes. `SET k v` is idempotent; a counter is not. The way to get both: run
//! the write as one idempotent Lua script that checks before it acts, e.g.
//!
//! ```lua
//! if redis.call('SETNX', KEYS[1], ARGV[1]) == 1 then redis.call('INCR', KEYS[2]) end
//! ```
//!
//! declared with [`Script::idempotent`](crate::Script::idempotent) and queued with
//! `submit(vec![script.command(keys, args)], priority)`: a replayed copy finds its key set
//! and does nothing.
//!
//! # What cannot be journaled
//!
//! [`store_with_retry`](crate::ResilientClient::store_with_retry) takes a closure, which
//! cannot be written to disk. With a journal configured, a `store_with_retry` that would
//! have to be queued returns `StoreOutcome::Failed(Error::InvalidInput(..))` instead of
//! being queued in memory only; use `submit` with data for writes that must survive.
//!
//! # Record format
//!
//! Table `pending`, key = a `u64` sequence number (issue order), value = one record:
//! `[version: u8 = 1][crc32 of body: u32 little-endian][body: JSON of JournalRecord]`.
//! [`decode_record`] and [`encode_record`] are public for tools and fuzzing.
//!
//! [redb]: https://docs.rs/redb

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::{Command, Priority};

/// The record format version this build writes and reads.
pub const RECORD_VERSION: u8 = 1;

/// Bytes before a record's body: the version byte and the CRC-32.
const HEADER: usize = 5;

/// Counter of corrupt journal records skipped at open (label `client`).
pub const CORRUPT_RECORDS: &str = "resilience_journal_corrupt_records_total";

/// Most messages one group commit takes.
const MAX_GROUP: usize = 4096;

const PENDING: TableDefinition<u64, &[u8]> = TableDefinition::new("pending");
const CORRUPT: TableDefinition<u64, &[u8]> = TableDefinition::new("corrupt");

/// One journaled write: everything needed to queue it again after a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// Its priority (`Critical`, `High` or `Normal`).
    pub priority: Priority,
    /// Its ordering keys, as the queue had them.
    pub keys: Vec<String>,
    /// The commands (at least one).
    pub cmds: Vec<Command>,
    /// Whether the commands run as one `MULTI`/`EXEC`.
    pub atomic: bool,
    /// Sources of the Lua scripts its `EVALSHA` commands run, so a restarted server (with
    /// an empty script cache) can load them.
    #[serde(default)]
    pub scripts: Vec<String>,
}

/// Why a record could not be read. Every malformed input gives one of these, never a panic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Shorter than the header.
    #[error("record truncated: {len} bytes")]
    Truncated {
        /// Its length.
        len: usize,
    },
    /// Written by a format this build does not know.
    #[error("unknown record version {0}")]
    UnknownVersion(u8),
    /// The body does not match its checksum.
    #[error("record checksum mismatch")]
    Checksum,
    /// The body passed its checksum but is not a valid record.
    #[error("malformed record: {0}")]
    Malformed(String),
}

/// Why the journal could not be opened or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The store failed (open, read, commit: I/O, a locked file, a damaged database).
    #[error("journal storage: {0}")]
    Storage(String),
    /// A record could not be encoded.
    #[error("journal record encoding: {0}")]
    Encode(String),
    /// The journal's writer has stopped (the journal is closing).
    #[error("journal closed")]
    Closed,
    /// A client setting is invalid (the client's
    /// [`build`](crate::ResilientClientBuilder::build) would refuse it too); the journal
    /// was not opened.
    #[error("{0}")]
    Settings(String),
}

fn storage(e: impl std::fmt::Display) -> JournalError {
    JournalError::Storage(e.to_string())
}

/// Encodes a record: version byte, CRC-32 of the body, JSON body.
pub fn encode_record(record: &JournalRecord) -> Result<Vec<u8>, JournalError> {
    let body = serde_json::to_vec(record).map_err(|e| JournalError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a record, checking its version, checksum and contents (at least one command,
/// a queueable priority). Allocates no more than in proportion to `bytes`.
pub fn decode_record(bytes: &[u8]) -> Result<JournalRecord, RecordError> {
    let (header, body) = match bytes.split_at_checked(HEADER) {
        Some(parts) => parts,
        None => return Err(RecordError::Truncated { len: bytes.len() }),
    };
    if header[0] != RECORD_VERSION {
        return Err(RecordError::UnknownVersion(header[0]));
    }
    let crc = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    if crc32fast::hash(body) != crc {
        return Err(RecordError::Checksum);
    }
    let record: JournalRecord =
        serde_json::from_slice(body).map_err(|e| RecordError::Malformed(e.to_string()))?;
    if record.cmds.is_empty() {
        return Err(RecordError::Malformed("no commands".to_owned()));
    }
    if record.priority == Priority::Low {
        return Err(RecordError::Malformed(
            "Low writes are never queued".to_owned(),
        ));
    }
    Ok(record)
}

/// A snapshot of the journal's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// The journal file.
    pub path: PathBuf,
    /// Records on disk now (committed appends minus committed removals).
    pub pending: u64,
    /// Records read back and queued again when the journal was opened.
    pub recovered: u64,
    /// Of those, how many have since been applied.
    pub recovered_completed: u64,
    /// Records found corrupt when the journal was opened (skipped, moved aside).
    pub corrupt: u64,
    /// Recovered records the queue could not take (it was full); they stay on disk for
    /// the next start.
    pub not_loaded: u64,
    /// Records appended by this process.
    pub appended: u64,
    /// Records removed by this process (applied or dead-lettered).
    pub removed: u64,
    /// Commits made (each one fsync); appends per commit shows the group-commit factor.
    pub commits: u64,
    /// Commits that failed.
    pub commit_errors: u64,
}

#[derive(Default)]
struct Counters {
    pending: AtomicU64,
    recovered: AtomicU64,
    recovered_completed: AtomicU64,
    corrupt: AtomicU64,
    not_loaded: AtomicU64,
    appended: AtomicU64,
    removed: AtomicU64,
    commits: AtomicU64,
    commit_errors: AtomicU64,
}

enum Msg {
    Append {
        seq: u64,
        bytes: Vec<u8>,
        done: oneshot::Sender<Result<(), JournalError>>,
    },
    Remove(u64),
    Flush(oneshot::Sender<()>),
}

/// An open journal: a redb file and the thread that commits to it.
///
/// Owned by the client that opened it; closed when the client drops: the writer commits
/// what it was sent and is joined (a short blocking wait), and the file is unlocked, so a
/// new client can open it at once.
pub struct Journal {
    path: PathBuf,
    next_seq: AtomicU64,
    /// Sequence numbers up to this one were recovered at open.
    recovered_max: u64,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads what is pending, in issue order.
    /// Corrupt records are reported and moved aside, not returned.
    pub(crate) fn open(
        path: &Path,
        client: &str,
    ) -> Result<(Journal, Vec<(u64, JournalRecord)>), JournalError> {
        let db = Database::create(path).map_err(storage)?;
        let counters = Arc::new(Counters::default());
        let mut records = Vec::new();
        let mut last_seq = 0;
        let txn = db.begin_write().map_err(storage)?;
        {
            let mut pending = txn.open_table(PENDING).map_err(storage)?;
            let mut corrupt_table = txn.open_table(CORRUPT).map_err(storage)?;
            let mut corrupt: Vec<(u64, Vec<u8>, RecordError)> = Vec::new();
            for row in pending.iter().map_err(storage)? {
                let (key, value) = row.map_err(storage)?;
                let (seq, bytes) = (key.value(), value.value());
                last_seq = last_seq.max(seq);
                match decode_record(bytes) {
                    Ok(record) => records.push((seq, record)),
                    Err(e) => corrupt.push((seq, bytes.to_vec(), e)),
                }
            }
            for (seq, bytes, error) in &corrupt {
                tracing::warn!(client, seq, len = bytes.len(), %error, path = %path.display(), "corrupt journal record skipped (moved to the `corrupt` table)");
                corrupt_table
                    .insert(*seq, bytes.as_slice())
                    .map_err(storage)?;
                pending.remove(*seq).map_err(storage)?;
            }
            if !corrupt.is_empty() {
                metrics::counter!(CORRUPT_RECORDS, "client" => client.to_owned())
                    .increment(corrupt.len() as u64);
            }
            counters
                .corrupt
                .store(corrupt.len() as u64, Ordering::Relaxed);
            counters
                .pending
                .store(pending.len().map_err(storage)?, Ordering::Relaxed);
            if let Some(last) = corrupt_table.last().map_err(storage)? {
                last_seq = last_seq.max(last.0.value());
            }
        }
        txn.commit().map_err(storage)?;
        counters
            .recovered
            .store(records.len() as u64, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let writer_counters = Arc::clone(&counters);
        let writer = std::thread::Builder::new()
            .name("resilience-journal".to_owned())
            .spawn(move || write_loop(&db, &rx, &writer_counters))
            .map_err(storage)?;
        if !records.is_empty() {
            tracing::info!(client, recovered = records.len(), path = %path.display(), "journal: pending writes recovered");
        }
        Ok((
            Journal {
                path: path.to_owned(),
                next_seq: AtomicU64::new(last_seq + 1),
                recovered_max: last_seq,
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                counters,
            },
            records,
        ))
    }

    fn send(&self, msg: Msg) -> Result<(), JournalError> {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        match tx.as_ref() {
            Some(tx) => tx.send(msg).map_err(|_| JournalError::Closed),
            None => Err(JournalError::Closed),
        }
    }

    /// Appends `record` and waits until its commit is durable; returns its sequence number.
    pub(crate) async fn append(&self, record: &JournalRecord) -> Result<u64, JournalError> {
        let bytes = encode_record(record)?;
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (done, rx) = oneshot::channel();
        self.send(Msg::Append { seq, bytes, done })?;
        rx.await.map_err(|_| JournalError::Closed)??;
        Ok(seq)
    }

    /// Removes the record `seq` (applied, or given up). Committed in the background.
    pub(crate) fn remove(&self, seq: u64, completed: bool) {
        if completed && seq <= self.recovered_max {
            self.counters
                .recovered_completed
                .fetch_add(1, Ordering::Relaxed);
        }
        if self.send(Msg::Remove(seq)).is_err() {
            tracing::debug!(seq, "journal closed; record stays for the next start");
        }
    }

    /// Waits until everything sent to the journal before this call is committed (or failed).
    ///
    /// # Errors
    ///
    /// None: a record the journal cannot write is counted in its stats and logged.
    ///
    /// # Cancel safety
    ///
    /// The journal's writer flushes whether or not this future is awaited to the end; dropping
    /// it only stops the wait.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> JournalStats {
        let c = &self.counters;
        JournalStats {
            path: self.path.clone(),
            pending: c.pending.load(Ordering::Relaxed),
            recovered: c.recovered.load(Ordering::Relaxed),
            recovered_completed: c.recovered_completed.load(Ordering::Relaxed),
            corrupt: c.corrupt.load(Ordering::Relaxed),
            not_loaded: c.not_loaded.load(Ordering::Relaxed),
            appended: c.appended.load(Ordering::Relaxed),
            removed: c.removed.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            commit_errors: c.commit_errors.load(Ordering::Relaxed),
        }
    }

    /// Counts a recovered record the queue could not take.
    pub(crate) fn count_not_loaded(&self) {
        self.counters.not_loaded.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it commits what it has; joining it
        // releases the file lock, so a new client can open the journal right away.
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "journal writer thread panicked");
        }
    }
}

/// The writer thread: takes every message waiting, commits them in one transaction
/// (fsync), then answers the appends.
fn write_loop(db: &Database, rx: &mpsc::Receiver<Msg>, counters: &Counters) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(msg) => group.push(msg),
                Err(_) => break,
            }
        }
        let needs_commit = group.iter().any(|m| !matches!(m, Msg::Flush(_)));
        let result = if needs_commit {
            commit(db, &group, counters)
        } else {
            Ok(())
        };
        match &result {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                counters.commit_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "journal commit failed");
            }
        }
        for msg in group {
            match msg {
                Msg::Append { done, .. } => {
                    let _ = done.send(result.clone());
                }
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
                Msg::Remove(_) => {}
            }
        }
    }
}

fn commit(db: &Database, group: &[Msg], counters: &Counters) -> Result<(), JournalError> {
    let mut txn = db.begin_write().map_err(storage)?;
    txn.set_durability(Durability::Immediate);
    let (mut added, mut removed) = (0u64, 0u64);
    {
        let mut table = txn.open_table(PENDING).map_err(storage)?;
        for msg in group {
            match msg {
                Msg::Append { seq, bytes, .. } => {
                    if table
                        .insert(*seq, bytes.as_slice())
                        .map_err(storage)?
                        .is_none()
                    {
                        added += 1;
                    }
                }
                Msg::Remove(seq) => {
                    if table.remove(*seq).map_err(storage)?.is_some() {
                        removed += 1;
                    }
                }
                Msg::Flush(_) => {}
            }
        }
    }
    txn.commit().map_err(storage)?;
    counters.appended.fetch_add(added, Ordering::Relaxed);
    counters.removed.fetch_add(removed, Ordering::Relaxed);
    counters.pending.fetch_add(added, Ordering::Relaxed);
    counters.pending.fetch_sub(removed, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::SetOptions;

    fn record(n: u32) -> JournalRecord {
        JournalRecord {
            priority: Priority::Normal,
            keys: vec![format!("k{n}")],
            cmds: vec![Command::Set {
                key: format!("k{n}"),
                value: format!("v{n}").into(),
                options: SetOptions::default(),
            }],
            atomic: false,
            scripts: vec![],
        }
    }

    #[test]
    fn records_round_trip_and_damage_is_detected() {
        let bytes = encode_record(&record(1)).unwrap();
        assert_eq!(decode_record(&bytes).unwrap(), record(1));
        assert_eq!(
            decode_record(&bytes[..3]),
            Err(RecordError::Truncated { len: 3 })
        );
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        assert_eq!(decode_record(&flipped), Err(RecordError::Checksum));
        let mut version = bytes.clone();
        version[0] = 9;
        assert_eq!(decode_record(&version), Err(RecordError::UnknownVersion(9)));
        // A valid checksum over a body that is not a record.
        let body = b"{\"nope\":1}";
        let mut forged = vec![RECORD_VERSION];
        forged.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        forged.extend_from_slice(body);
        assert!(matches!(
            decode_record(&forged),
            Err(RecordError::Malformed(_))
        ));
        let mut empty = record(2);
        empty.cmds.clear();
        assert!(matches!(
            decode_record(&encode_record(&empty).unwrap()),
            Err(RecordError::Malformed(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_record(&bytes);
            let mut framed = vec![RECORD_VERSION];
            framed.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
            framed.extend_from_slice(&bytes);
            let _ = decode_record(&framed);
        }

        #[test]
        fn any_changed_byte_is_detected(n in 0u32..1000, at in 0usize..10_000, xor in 1u8..=255) {
            let mut bytes = encode_record(&record(n)).unwrap();
            let at = at % bytes.len();
            bytes[at] ^= xor;
            proptest::prop_assert!(decode_record(&bytes).is_err());
        }
    }

    #[tokio::test]
    async fn appends_survive_reopen_in_order_and_removals_stick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        {
            let (journal, recovered) = Journal::open(&path, "t").unwrap();
            assert!(recovered.is_empty());
            let mut seqs = Vec::new();
            for n in 0..5 {
                seqs.push(journal.append(&record(n)).await.unwrap());
            }
            assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            journal.remove(seqs[1], true);
            journal.flush().await;
            let stats = journal.stats();
            assert_eq!((stats.appended, stats.removed, stats.pending), (5, 1, 4));
        }
        let (journal, recovered) = Journal::open(&path, "t").unwrap();
        let got: Vec<JournalRecord> = recovered.into_iter().map(|(_, r)| r).collect();
        assert_eq!(got, vec![record(0), record(2), record(3), record(4)]);
        assert_eq!(journal.stats().recovered, 4);
        // New appends continue after the recovered ones.
        let seq = journal.append(&record(9)).await.unwrap();
        assert!(seq > 5, "sequence numbers never go back: {seq}");
    }

    #[tokio::test]
    async fn concurrent_appends_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(&dir.path().join("j.redb"), "t").unwrap();
        let journal = Arc::new(journal);
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let j = Arc::clone(&journal);
                tokio::spawn(async move { j.append(&record(n)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let stats = journal.stats();
        assert_eq!(stats.appended, 200);
        assert!(
            stats.commits < 200,
            "group commit: {} commits",
            stats.commits
        );
    }

    #[test]
    fn corrupt_records_are_skipped_reported_and_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(PENDING).unwrap();
                t.insert(1, encode_record(&record(1)).unwrap().as_slice())
                    .unwrap();
                t.insert(2, &b"\x01garbage bytes"[..]).unwrap();
                t.insert(3, &b""[..]).unwrap();
                let mut torn = encode_record(&record(4)).unwrap();
                torn.truncate(torn.len() / 2);
                t.insert(4, torn.as_slice()).unwrap();
                t.insert(5, encode_record(&record(5)).unwrap().as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let (journal, recovered) = Journal::open(&path, "t").unwrap();
        assert_eq!(
            recovered.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1, 5]
        );
        let stats = journal.stats();
        assert_eq!((stats.corrupt, stats.recovered, stats.pending), (3, 2, 2));
        drop(journal);
        // Moved aside: a second open finds no corruption, and keeps the good records.
        let (journal, recovered) = Journal::open(&path, "t").unwrap();
        assert_eq!(recovered.len(), 2);
        assert_eq!(journal.stats().corrupt, 0);
        // New sequence numbers skip the corrupt ones too.
        assert_eq!(journal.next_seq.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_second_open_of_the_same_file_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        let (_journal, _) = Journal::open(&path, "t").unwrap();
        assert!(matches!(
            Journal::open(&path, "t"),
            Err(JournalError::Storage(_))
        ));
    }
}
