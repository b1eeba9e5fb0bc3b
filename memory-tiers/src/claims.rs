//! Background jobs that must not run twice at once: an agent's STM -> IM move after a
//! write, a vector block's compaction.
//!
//! Writes that find a tier over capacity, or a block mostly dead, each start the job.
//! Under concurrent writes to one agent, that is many copies of the same job at once,
//! each reading and rewriting the same megabytes, queued on the same connection until
//! calls time out. A [`Claims`] set lets the first writer run the job and the others go
//! on: the job they would have run is running.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

/// The jobs running now, by name.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    running: Mutex<BTreeSet<String>>,
}

impl Claims {
    /// Claims the job `name`, or `None` when it is running already. The claim ends when
    /// the returned guard drops, so a cancelled job frees it.
    pub(crate) fn claim(&self, name: &str) -> Option<Claim<'_>> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.insert(name.to_owned()).then(|| Claim {
            claims: self,
            name: name.to_owned(),
        })
    }
}

/// A claimed job, until dropped ([`Claims::claim`]).
#[derive(Debug)]
pub(crate) struct Claim<'a> {
    claims: &'a Claims,
    name: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.claims
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_per_job_at_a_time_and_a_dropped_claim_frees_it() {
        let claims = Claims::default();
        let first = claims.claim("a");
        assert!(first.is_some());
        assert!(claims.claim("a").is_none(), "the same job waits");
        assert!(claims.claim("b").is_some(), "another job runs alongside");
        drop(first);
        assert!(
            claims.claim("a").is_some(),
            "the claim ended with its guard"
        );
    }
}
