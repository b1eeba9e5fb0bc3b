//! Why fred is disconnected, when the reason is the credentials.
//!
//! While fred is disconnected, a command fails fast with "connection closed" whatever the
//! reason, which classifies as `Unavailable`: a breaker would count it. When the reason is
//! that the server refuses the credentials (a password changed on the server while the
//! client kept the old one), that is wrong twice over: the server is up and answering,
//! and the breaker must not open for an `Auth` problem. So the error-log task
//! (`connect::spawn_error_log`) tells [`AuthState`] about every connection error and every
//! successful reconnect, and the commands' `Unavailable` errors pass through
//! [`AuthState::explain`], which turns them into `Auth` while the last connection attempt
//! was refused for its credentials.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use resilience_core::{BackendError, ErrorKind};

/// Whether the last connection attempt was refused for its credentials (see the module
/// docs).
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    refused: AtomicBool,
    /// The refusal, as classified (its message is the server's, never the password).
    last: Mutex<Option<BackendError>>,
}

impl AuthState {
    /// A connection error (classified) from fred's connection task.
    pub(crate) fn connection_error(&self, error: &BackendError) {
        if error.kind() == ErrorKind::Auth {
            *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
            self.refused.store(true, Ordering::Release);
        } else {
            self.refused.store(false, Ordering::Release);
        }
    }

    /// fred (re)connected: the credentials work.
    pub(crate) fn connected(&self) {
        self.refused.store(false, Ordering::Release);
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
        let state = AuthState::default();
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
}
