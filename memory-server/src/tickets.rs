//! Queued writes' tickets, kept so a client can poll how each one ended.
//!
//! A write the recovery queue took comes back as `queued` with a ticket number. A task
//! per ticket waits for its end and records it; `GET /v1/tickets/{ticket}` reads it. The
//! records are bounded in number and forgotten a day after their last read, so a client
//! that never polls costs a bounded amount of memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use resilient_redis::{Ticket, TicketOutcome};

use crate::dto::TicketBody;

/// How many tickets are remembered at most (the oldest unread go first).
const MAX_TICKETS: u64 = 1_000_000;
/// How long a ticket is remembered after it was last read.
const TICKET_IDLE: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug)]
struct Record {
    namespace: Arc<str>,
    agent_id: String,
    memory_id: String,
    outcome: OnceLock<TicketOutcome>,
}

/// The server's tickets.
#[derive(Debug)]
pub(crate) struct Tickets {
    next: AtomicU64,
    records: moka::sync::Cache<u64, Arc<Record>>,
    pending: Arc<AtomicU64>,
}

impl Default for Tickets {
    fn default() -> Self {
        Tickets {
            next: AtomicU64::new(1),
            records: moka::sync::Cache::builder()
                .max_capacity(MAX_TICKETS)
                .time_to_idle(TICKET_IDLE)
                .build(),
            pending: Arc::default(),
        }
    }
}

impl Tickets {
    /// Remembers a queued write of `namespace`'s agent and returns its ticket number; its
    /// end is recorded when the queue reports it.
    pub(crate) fn track(
        &self,
        namespace: &Arc<str>,
        agent_id: &str,
        memory_id: String,
        ticket: Ticket,
    ) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let record = Arc::new(Record {
            namespace: Arc::clone(namespace),
            agent_id: agent_id.to_owned(),
            memory_id,
            outcome: OnceLock::new(),
        });
        self.records.insert(id, Arc::clone(&record));
        let pending = Arc::clone(&self.pending);
        pending.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let outcome = ticket.wait().await;
            if let TicketOutcome::DeadLettered { reason } = &outcome {
                tracing::warn!(
                    namespace = %record.namespace,
                    agent = %record.agent_id,
                    memory = %record.memory_id,
                    %reason,
                    "a queued memory write was given up"
                );
            }
            let _ = record.outcome.set(outcome);
            pending.fetch_sub(1, Ordering::Relaxed);
        });
        id
    }

    /// The ticket `id` as `namespace` may see it: `None` when unknown, forgotten, or
    /// another namespace's.
    pub(crate) fn get(&self, namespace: &str, id: u64) -> Option<TicketBody> {
        let record = self.records.get(&id)?;
        (*record.namespace == *namespace).then(|| {
            TicketBody::new(
                id,
                &record.agent_id,
                &record.memory_id,
                record.outcome.get(),
            )
        })
    }

    /// Tickets whose end is not known yet.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::TicketStatus;
    use resilient_redis::Command;
    use resilient_redis::Priority;
    use resilient_redis::StoreOutcome;

    #[tokio::test]
    async fn a_ticket_is_pending_until_its_write_ends_and_only_its_namespace_sees_it() {
        // A client whose breaker is forced open queues a normal write.
        let client =
            resilient_redis::ResilientClient::new("t", resilient_redis::InMemoryBackend::new());
        client.circuit_breaker().force_open();
        let StoreOutcome::Queued(ticket) = client
            .submit(vec![Command::Incr { key: "k".into() }], Priority::Normal)
            .await
        else {
            panic!("expected a queued write");
        };
        let tickets = Tickets::default();
        let ns: Arc<str> = Arc::from("tenant_a");
        let id = tickets.track(&ns, "agent-1", "01J".to_owned(), ticket);
        let body = tickets.get("tenant_a", id).expect("known");
        assert_eq!(body.status, TicketStatus::Pending);
        assert!(tickets.get("tenant_b", id).is_none());
        assert!(tickets.get("tenant_a", id + 1).is_none());

        client.circuit_breaker().reset();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let body = tickets.get("tenant_a", id).expect("known");
            if body.status == TicketStatus::Completed {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "never completed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(tickets.pending(), 0);
    }
}
