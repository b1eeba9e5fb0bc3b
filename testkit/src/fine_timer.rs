//! Sleeps to the tenth of a millisecond, for the proxy's sub-millisecond delays.
//!
//! Tokio's timer counts whole milliseconds and rounds every deadline up to the next one,
//! so a 0.5 ms delay lasts 1 to 2 ms, and a simulated round trip of 1 ms takes 3 or 4.
//! Here one thread waits for the earliest deadline on a condition variable (a futex wait,
//! precise to some tens of microseconds) and wakes the sleeper's future through a
//! channel: no spinning, no CPU spent while waiting.

use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use tokio::sync::oneshot;
use tokio::time::Instant;

/// Delays at least this long go to tokio's own timer: a millisecond of rounding is small
/// beside them.
const COARSE: Duration = Duration::from_millis(5);

/// The deadlines waited for, each with whom to wake.
struct Waits {
    pending: Mutex<Vec<(StdInstant, oneshot::Sender<()>)>>,
    changed: Condvar,
}

fn waits() -> &'static Waits {
    static WAITS: OnceLock<&'static Waits> = OnceLock::new();
    WAITS.get_or_init(|| {
        let waits: &'static Waits = Box::leak(Box::new(Waits {
            pending: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("testkit-fine-timer".to_owned())
            .spawn(move || wake_on_time(waits))
            .map(drop)
            .unwrap_or_else(|e| tracing::warn!(error = %e, "no fine timer thread"));
        waits
    })
}

/// The timer thread: sleeps until the earliest deadline (or a new one), wakes whoever
/// is due, forever.
fn wake_on_time(waits: &Waits) {
    let mut pending = waits.pending.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = StdInstant::now();
        let mut i = 0;
        while i < pending.len() {
            if pending[i].0 <= now {
                let (_, wake) = pending.swap_remove(i);
                let _ = wake.send(());
            } else {
                i += 1;
            }
        }
        pending = match pending.iter().map(|(at, _)| *at).min() {
            Some(next) => {
                waits
                    .changed
                    .wait_timeout(pending, next.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => waits
                .changed
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// Waits until `at`: to within some tens of microseconds below [`COARSE`] from now,
/// with tokio's timer beyond it.
pub(crate) async fn sleep_until(at: Instant) {
    let left = at.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return;
    }
    if left >= COARSE {
        return tokio::time::sleep_until(at).await;
    }
    let (wake, woken) = oneshot::channel();
    let waits = waits();
    waits
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((StdInstant::now() + left, wake));
    waits.changed.notify_one();
    // The sender is dropped only once sent: the thread never drops a pending wait.
    let _ = woken.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn half_a_millisecond_is_not_rounded_up_to_two() {
        let mut took = Vec::new();
        for _ in 0..21 {
            let started = Instant::now();
            sleep_until(started + Duration::from_micros(500)).await;
            took.push(started.elapsed());
        }
        took.sort();
        assert!(took[0] >= Duration::from_micros(500), "{took:?}");
        // Tokio's timer takes 1 to 2 ms for each; this takes 0.5 and a wake-up.
        assert!(took[10] < Duration::from_micros(900), "{took:?}");
    }
}
