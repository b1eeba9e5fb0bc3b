//! What the backend knows about fred's connection: whether it has been seen closed (and
//! not yet re-established), and whether the last connection attempt was refused for its
//! credentials.
//!
//! fred's own fail-fast check looks at its client state, which stays `Connected` after the
//! connection closed until the reconnect loop's first attempt begins, one reconnect delay
//! (plus fred's jitter, up to 100 ms) later. A command handed to fred in that window waits
//! in fred's command queue behind the reconnect, which loops while the server is down, so
//! the call would end only at its `socket_timeout`, as a `Timeout` ("it may have run")
//! although it was never written. So the backend keeps its own account:
//!
//! - **Down.** The error-log task (`connect::spawn_error_log`) reports every connection
//!   error fred broadcasts: a connection closed by the server, reset or unresponsive (fred
//!   first fails the commands that were written on it, then broadcasts), or a reconnect
//!   attempt that failed. From then until fred reports a successful reconnect, every call
//!   fails at once with `Unavailable` and is never handed to fred: it was not sent.
//! - **Refused credentials.** While fred is disconnected, a command fails fast with
//!   "connection closed" whatever the reason, which classifies as `Unavailable`: a breaker
//!   would count it. When the reason is that the server refuses the credentials (a password
//!   changed on the server while the client kept the old one), that is wrong twice over:
//!   the server is up and answering, and the breaker must not open for an `Auth` problem.
//!   So [`LinkState::explain`] turns those `Unavailable` errors into `Auth` while the last
//!   connection attempt was refused for its credentials.
//!
//! One window remains: a command handed to fred between the connection closing and the
//! error-log task hearing of it. It cannot be refused, because it was already handed over;
//! instead, when the task hears of the loss, it ends every call still waiting on fred as
//! `Timeout` at once (`link_watch`), rather than at fred's timeout seconds later.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use resilience_core::{BackendError, ErrorKind};

use crate::link_watch::PendingCalls;

/// The backend's account of fred's connection (see the module docs).
#[derive(Debug)]
pub(crate) struct LinkState {
    /// Seen closed, not yet reconnected.
    down: AtomicBool,
    /// When `down` was last set, in microseconds since `epoch`.
    down_since_us: AtomicU64,
    epoch: Instant,
    /// The last connection attempt was refused for its credentials.
    refused: AtomicBool,
    /// The refusal, as classified (its message is the server's, never the password).
    last: Mutex<Option<BackendError>>,
    /// The calls waiting on fred, ended when the connection is lost (see `link_watch`).
    pub(crate) pending: PendingCalls,
}

impl Default for LinkState {
    fn default() -> Self {
        LinkState {
            down: AtomicBool::new(false),
            down_since_us: AtomicU64::new(0),
            epoch: Instant::now(),
            refused: AtomicBool::new(false),
            last: Mutex::new(None),
            pending: PendingCalls::default(),
        }
    }
}

impl LinkState {
    /// A connection error (classified) from fred's connection task: the connection is
    /// down until [`connected`](Self::connected).
    pub(crate) fn connection_error(&self, error: &BackendError) {
        if error.kind() == ErrorKind::Auth {
            *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
            self.refused.store(true, Ordering::Release);
        } else {
            self.refused.store(false, Ordering::Release);
        }
        if !self.down.swap(true, Ordering::AcqRel) {
            let since = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.down_since_us.store(since, Ordering::Release);
            self.pending.lost();
        }
    }

    /// fred (re)connected: the connection is up and the credentials work.
    pub(crate) fn connected(&self) {
        self.refused.store(false, Ordering::Release);
        self.down.store(false, Ordering::Release);
    }

    /// `Some(error)` while the connection is down: the call must not be handed to fred.
    /// The error is `Unavailable` (or `Auth`, see [`explain`](Self::explain)) and says the
    /// command was not sent. One relaxed load when the connection is up.
    #[inline]
    pub(crate) fn refuse_while_down(&self, server: &str) -> Option<BackendError> {
        if !self.down.load(Ordering::Acquire) {
            return None;
        }
        let since = Duration::from_micros(self.down_since_us.load(Ordering::Acquire));
        let ago = self.epoch.elapsed().saturating_sub(since);
        Some(self.explain(BackendError::unavailable(format!(
            "fred: not sent: the connection to {server} closed {ago:.1?} ago and is being re-established"
        ))))
    }

    /// A command's classified error: `Unavailable` becomes `Auth` while the credentials
    /// are being refused; anything else is returned as is.
    #[inline]
    pub(crate) fn explain(&self, error: BackendError) -> BackendError {
        if error.kind() != ErrorKind::Unavailable || !self.refused.load(Ordering::Acquire) {
            return error;
        }
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let (refusal, code) = match last.as_ref() {
            Some(e) => (
                e.message().to_owned(),
                e.code().unwrap_or("WRONGPASS").to_owned(),
            ),
            None => (String::new(), "WRONGPASS".to_owned()),
        };
        BackendError::new(
            ErrorKind::Auth,
            format!("fred: not connected: the server refuses the credentials ({refusal})"),
        )
        .with_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_is_auth_only_while_credentials_are_refused() {
        let state = LinkState::default();
        let down = || BackendError::unavailable("fred: Connection closed unexpectedly");
        assert_eq!(state.explain(down()).kind(), ErrorKind::Unavailable);
        state.connection_error(&BackendError::from_reply(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ));
        let explained = state.explain(down());
        assert_eq!(explained.kind(), ErrorKind::Auth);
        assert!(explained.message().contains("WRONGPASS"), "{explained}");
        // Other kinds pass through.
        assert_eq!(
            state.explain(BackendError::timeout("no reply")).kind(),
            ErrorKind::Timeout
        );
        state.connected();
        assert_eq!(state.explain(down()).kind(), ErrorKind::Unavailable);
        state.connection_error(&BackendError::from_reply("WRONGPASS x"));
        state.connection_error(&BackendError::unavailable("refused"));
        assert_eq!(state.explain(down()).kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn calls_are_refused_from_a_connection_error_until_the_reconnect() {
        let state = LinkState::default();
        assert!(state.refuse_while_down("s:1").is_none());
        state.connection_error(&BackendError::timeout("fred io: Connection closed."));
        let refused = state.refuse_while_down("s:1").expect("down after an error");
        assert_eq!(refused.kind(), ErrorKind::Unavailable);
        assert!(refused.message().contains("not sent"), "{refused}");
        assert!(refused.message().contains("s:1"), "{refused}");
        // Reconnect attempts that fail keep it down.
        state.connection_error(&BackendError::unavailable("refused"));
        assert!(state.refuse_while_down("s:1").is_some());
        state.connected();
        assert!(state.refuse_while_down("s:1").is_none());
        // Refused credentials: still down, and said as `Auth`.
        state.connection_error(&BackendError::from_reply("WRONGPASS x"));
        assert_eq!(
            state.refuse_while_down("s:1").map(|e| e.kind()),
            Some(ErrorKind::Auth)
        );
    }
}
