//! Calls waiting on fred learn at once that the connection was lost.
//!
//! When the connection closes, fred fails the commands it had written, announces the
//! error, and queues a reconnect behind the commands already handed to it. The backend
//! refuses new calls from the moment it hears the announcement (`link_state`), but a
//! command handed to fred between the announcement and the backend hearing it lands in
//! fred's queue behind the reconnect, which loops while the server is down. Nothing wakes
//! that call until fred's own timeout (`socket_timeout`, 2 s by default), so under load a
//! dead server could keep every busy task waiting for seconds and the breaker would hear
//! nothing. How wide that window is depends on when the runtime schedules the task that
//! hears the announcement: microseconds usually, milliseconds on a loaded machine.
//!
//! [`PendingCalls`] closes it. Every call is wrapped in [`Watched`], which notes how many
//! losses the connection had when the call began; [`PendingCalls::lost`] counts one more
//! and wakes every waiting call. A woken call whose command has not answered ends at once
//! as fred's "canceled" error, which classifies as `Timeout`: the command may have been
//! written, and one still in fred's queue is sent after the reconnect, so "it may have
//! run" is the truth. An idempotent call is then retried by the core; the breaker counts
//! the failure when it happens, not seconds later.
//!
//! Waiting calls register their wakers in a fixed table of [`AtomicWaker`] slots, chosen
//! by a hash of the waker's task: no lock and no allocation per call, and a task that
//! calls again finds its own waker already in its slot, so registering costs two atomic
//! exchanges and no waker clone. Two tasks whose calls wait at once may share a slot; the
//! one whose waker was replaced is then not woken early and ends at fred's timeout, as
//! it would without this module.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use futures::task::AtomicWaker;

/// log2 of the number of waker slots (see the module docs).
const SLOT_BITS: u32 = 8;
/// Waker slots: tasks waiting at once beyond a few dozen start to share them.
pub(crate) const SLOTS: usize = 1 << SLOT_BITS;

/// What a watched call ends with when the connection is lost while it waits: classified
/// as `Timeout` (fred's `Canceled`, not its fail-fast message).
pub(crate) const LOST_WHILE_WAITING: &str = "the connection closed while the command waited \
     for its reply or in fred's queue; a queued command is sent after the reconnect";

/// The connection's loss count and the wakers of the calls waiting on it.
#[derive(Debug)]
pub(crate) struct PendingCalls {
    losses: AtomicU64,
    slots: Box<[AtomicWaker]>,
}

impl Default for PendingCalls {
    fn default() -> Self {
        PendingCalls {
            losses: AtomicU64::new(0),
            slots: (0..SLOTS).map(|_| AtomicWaker::new()).collect(),
        }
    }
}

/// The slot of a task's waker: a Fibonacci hash of its data pointer (the task's address
/// for tokio's wakers), so one task keeps one slot.
fn slot_of(waker: &Waker) -> usize {
    ((waker.data() as usize as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOT_BITS))
        as usize
}

impl PendingCalls {
    /// The connection was lost: every call waiting now ends as [`LOST_WHILE_WAITING`].
    pub(crate) fn lost(&self) {
        self.losses.fetch_add(1, Ordering::AcqRel);
        for slot in self.slots.iter() {
            slot.wake();
        }
    }

    /// `call`, ended early if the connection is lost while it waits.
    pub(crate) fn watch<F>(&self, call: F) -> Watched<'_, F> {
        Watched {
            call,
            pending: self,
            losses_at_start: self.losses.load(Ordering::Acquire),
        }
    }

    fn lost_since(&self, losses: u64) -> bool {
        self.losses.load(Ordering::Acquire) != losses
    }
}

pin_project_lite::pin_project! {
    /// A fred call that ends as [`LOST_WHILE_WAITING`] when the connection is lost before
    /// it answers (see the module docs).
    pub(crate) struct Watched<'a, F> {
        #[pin]
        call: F,
        pending: &'a PendingCalls,
        losses_at_start: u64,
    }
}

impl<T, F> Future for Watched<'_, F>
where
    F: Future<Output = Result<T, fred::error::Error>>,
{
    type Output = Result<T, fred::error::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(reply) = this.call.poll(cx) {
            return Poll::Ready(reply);
        }
        let pending = *this.pending;
        let lost = || {
            Poll::Ready(Err(fred::error::Error::new(
                fred::error::ErrorKind::Canceled,
                LOST_WHILE_WAITING,
            )))
        };
        if pending.lost_since(*this.losses_at_start) {
            return lost();
        }
        pending.slots[slot_of(cx.waker())].register(cx.waker());
        // A loss counted between the check above and the registration woke the slot
        // before this waker was in it: look again.
        if pending.lost_since(*this.losses_at_start) {
            return lost();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::classify_error;
    use resilience_core::ErrorKind;

    #[tokio::test]
    async fn a_waiting_call_ends_as_a_timeout_when_the_connection_is_lost() {
        let pending = PendingCalls::default();
        let never = std::future::pending::<Result<(), fred::error::Error>>();
        let mut call = std::pin::pin!(pending.watch(never));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(call.as_mut().poll(&mut cx).is_pending());
        pending.lost();
        let Poll::Ready(Err(e)) = call.as_mut().poll(&mut cx) else {
            panic!("the call did not end when the connection was lost");
        };
        let classified = classify_error(&e);
        assert_eq!(classified.kind(), ErrorKind::Timeout, "{classified}");
        assert!(
            classified.to_string().contains("fred's queue"),
            "{classified}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_loss_wakes_the_waiting_task() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        use std::time::Duration;

        let pending = Arc::new(PendingCalls::default());
        let started = Arc::new(AtomicBool::new(false));
        let waiting = {
            let (pending, started) = (Arc::clone(&pending), Arc::clone(&started));
            tokio::spawn(async move {
                started.store(true, Ordering::Release);
                pending
                    .watch(std::future::pending::<Result<(), fred::error::Error>>())
                    .await
            })
        };
        // Once the task has been polled its waker is in a slot; from then on only a wake
        // can poll it again.
        while !started.load(Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
        pending.lost();
        let ended = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the loss woke the waiting task")
            .expect("the task ran");
        assert!(ended.is_err());
    }

    #[tokio::test]
    async fn a_call_that_answers_is_not_touched_and_a_later_call_sees_only_later_losses() {
        let pending = PendingCalls::default();
        pending.lost();
        // Begun after the loss: the loss is not its.
        let answered = pending
            .watch(async { Ok::<_, fred::error::Error>(7) })
            .await;
        assert_eq!(answered.ok(), Some(7));
    }

    #[test]
    fn one_task_keeps_one_slot_and_tasks_spread_over_the_slots() {
        use std::sync::Arc;
        use std::task::Wake;

        struct Task;
        impl Wake for Task {
            fn wake(self: Arc<Self>) {}
        }
        let tasks: Vec<Waker> = (0..64).map(|_| Waker::from(Arc::new(Task))).collect();
        assert_eq!(slot_of(&tasks[0]), slot_of(&tasks[0].clone()));
        let used: std::collections::HashSet<usize> = tasks.iter().map(slot_of).collect();
        assert!(used.iter().all(|s| *s < SLOTS));
        assert!(used.len() >= 48, "64 tasks in {} slots", used.len());
    }

    #[test]
    fn more_waiting_calls_than_slots_share_them_without_failing() {
        let pending = PendingCalls::default();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut calls: Vec<_> = (0..SLOTS + 3)
            .map(|_| {
                Box::pin(pending.watch(std::future::pending::<Result<(), fred::error::Error>>()))
            })
            .collect();
        for call in &mut calls {
            assert!(call.as_mut().poll(&mut cx).is_pending());
        }
        pending.lost();
        // Every call sees the loss when polled, woken or not.
        for call in &mut calls {
            assert!(matches!(call.as_mut().poll(&mut cx), Poll::Ready(Err(_))));
        }
    }
}
