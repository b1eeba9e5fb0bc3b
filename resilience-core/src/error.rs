//! Errors, and the one classification every backend maps its driver's errors onto.
//!
//! Its guide is in the docs of its main type.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What kind of failure a backend saw, and (below) what each kind means to the breaker and
/// to retries.
///
/// A backend turns each driver error into a [`BackendError`] with an [`ErrorKind`]. The
/// kind alone decides what the core does with it, whatever the driver:
///
/// | kind | class | breaker | retry |
/// |---|---|---|---|
/// | `Unavailable` | `Outage` | counts | yes: the command never reached the server |
/// | `Timeout` | `Indeterminate` | counts | only if the command is idempotent: it may have run |
/// | `Busy` | `Outage` | counts | yes, after backoff |
/// | `Server` | `Refused` | does not count: the server is up | no |
/// | `Auth` | `Refused` | does not count | no |
/// | `InvalidInput` | `Refused` | does not count | no |
///
/// The class ([`ErrorKind::class`]) is what every part acts on; [`ErrorClass`](crate::ErrorClass)
/// has the whole table, errors of the client itself included.
///
/// A connection that breaks *while a command is in flight* (reset, broken pipe, EOF) is a
/// `Timeout`, not `Unavailable`: the server may have applied the command before the
/// connection broke, so retrying a non-idempotent one could apply it twice. (The original
/// design filed resets under "unavailable"; a test with a reset after an `INCR` was sent
/// showed the increment applied twice under retry.) `Unavailable` is kept for failures that
/// prove nothing was sent: refused connections, DNS failures, a client not yet connected.
///
/// [`Error`] is what callers of [`ResilientClient`](crate::ResilientClient) see. Error text
/// never contains a password: backends must not put credentials in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Connection refused, DNS failure, not connected: the command never reached the server.
    Unavailable,
    /// Connect or response timeout, or the connection broke with the command in flight
    /// (reset, broken pipe, EOF): the command may or may not have run.
    Timeout,
    /// The server is up but cannot serve now: LOADING, BUSY, TRYAGAIN, CLUSTERDOWN,
    /// MASTERDOWN, READONLY.
    Busy,
    /// The server refused the command: WRONGTYPE, ERR syntax, OOM, NOPERM, NOSCRIPT, script error.
    Server,
    /// Authentication failed: NOAUTH, WRONGPASS.
    Auth,
    /// The request itself is bad (bad key, bad agent id, value too large): nothing was sent.
    InvalidInput,
}

impl ErrorKind {
    /// Classifies a Redis error reply by its first word (`WRONGTYPE`, `LOADING`, …).
    ///
    /// Both driver backends call this for server replies so they agree exactly.
    pub fn from_reply_code(code: &str) -> ErrorKind {
        match code {
            "LOADING" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY"
            | "MOVED" | "ASK" => ErrorKind::Busy,
            "NOAUTH" | "WRONGPASS" => ErrorKind::Auth,
            _ => ErrorKind::Server,
        }
    }

    /// A stable lower-case name, used in metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Busy => "busy",
            ErrorKind::Server => "server",
            ErrorKind::Auth => "auth",
            ErrorKind::InvalidInput => "invalid_input",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure from a [`KvBackend`](crate::KvBackend).
///
/// Two errors are equal when their kind, code and message are: the driver's error kept as
/// [`source`](std::error::Error::source) is for reading, not comparing.
#[derive(Clone, Debug)]
pub struct BackendError {
    kind: ErrorKind,
    code: Option<String>,
    message: String,
    /// A `Timeout` because the connection was lost with the command in flight, not because
    /// a timer expired (see [`BackendError::lost_in_flight`]).
    lost_in_flight: bool,
    /// The driver's own error, when there was one.
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for BackendError {
    /// The driver's error itself (downcast it to the driver's type), when kept.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.code == other.code && self.message == other.message
    }
}

impl Eq for BackendError {}

impl BackendError {
    /// A new error of `kind`. The message must not contain secrets or values.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            code: None,
            message: message.into(),
            lost_in_flight: false,
            source: None,
        }
    }

    /// Keeps the driver's error as this error's [`source`](std::error::Error::source), so
    /// error reporters can show the whole chain.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// A server error reply, classified by its first word (see [`ErrorKind::from_reply_code`]).
    /// `reply` is the full error line, e.g. `"WRONGTYPE Operation against a key …"`.
    pub fn from_reply(reply: &str) -> Self {
        let code = reply.split_whitespace().next().unwrap_or("ERR");
        BackendError {
            kind: ErrorKind::from_reply_code(code),
            code: Some(code.to_owned()),
            message: reply.to_owned(),
            lost_in_flight: false,
            source: None,
        }
    }

    /// Sets the Redis error code (`"NOSCRIPT"`, `"WRONGTYPE"`).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The Redis error code, when the failure was an error reply.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the server answered that it does not know the script (EVALSHA).
    pub fn is_noscript(&self) -> bool {
        self.code.as_deref() == Some("NOSCRIPT")
    }

    /// Shorthand for an `Unavailable` error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Shorthand for a `Timeout` error: no answer within the time allowed.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// A `Timeout` of another cause: the command was written and the connection was lost
    /// (closed, reset) before its reply came. It may have run, exactly like a timeout, and
    /// is treated the same everywhere; only the advice given to people differs, since the
    /// server or the network failed and a longer timeout would not help.
    pub fn lost_in_flight(message: impl Into<String>) -> Self {
        BackendError {
            lost_in_flight: true,
            ..Self::new(ErrorKind::Timeout, message)
        }
    }

    /// This error as the failure of a connect: nothing of the caller's was sent yet, so a
    /// connection lost during the handshake is `Unavailable` (the server could not be
    /// reached), not a `Timeout` that "may have run". Other errors are returned as they
    /// are.
    pub fn at_connect(self) -> Self {
        if !self.lost_in_flight {
            return self;
        }
        // The driver's own words, when kept: the backend's message says "may have run".
        let cause = match &self.source {
            Some(source) => source.to_string(),
            None => self.message.clone(),
        };
        BackendError {
            kind: ErrorKind::Unavailable,
            lost_in_flight: false,
            message: format!("the connection closed during the handshake: {cause}"),
            ..self
        }
    }

    /// A permission refusal (`NOPERM`: an ACL user without the command, the key or the
    /// channel) with the refused command's name in front, since the server's text does not
    /// always say which command it refused; any other error is returned as it is.
    pub(crate) fn naming_command(self, command: &str) -> Self {
        if self.code.as_deref() != Some("NOPERM") {
            return self;
        }
        BackendError {
            message: format!("{command} refused by the server's ACL: {}", self.message),
            ..self
        }
    }

    /// Whether this is a [`lost_in_flight`](Self::lost_in_flight) `Timeout`.
    pub fn is_lost_in_flight(&self) -> bool {
        self.lost_in_flight
    }
}

/// Why a queued operation was given up.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// It was tried `max_attempts` times; the last error is attached.
    MaxAttempts {
        /// How many times it was tried.
        attempts: u32,
        /// The last failure's message.
        last_error: String,
    },
    /// It waited longer than `max_age`.
    MaxAge {
        /// How long it had waited.
        age: Duration,
    },
    /// A higher-priority operation needed its place in a full queue.
    Evicted,
    /// Replaying it hit an error retrying cannot fix (WRONGTYPE, NOAUTH, …).
    NonRetryable {
        /// The error's message.
        error: String,
    },
    /// The client shut down before it could be applied.
    Shutdown,
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadLetterReason::MaxAttempts {
                attempts,
                last_error,
            } => write!(f, "gave up after {attempts} attempts: {last_error}"),
            DeadLetterReason::MaxAge { age } => write!(f, "expired after waiting {age:?}"),
            DeadLetterReason::Evicted => f.write_str("evicted by a higher-priority operation"),
            DeadLetterReason::NonRetryable { error } => write!(f, "non-retryable error: {error}"),
            DeadLetterReason::Shutdown => f.write_str("client shut down before it was applied"),
        }
    }
}

/// The text of [`Error::Timeout`]: the advice depends on why there was no answer.
fn timeout_text(e: &BackendError) -> String {
    if e.is_lost_in_flight() {
        format!(
            "Redis connection lost before the reply ({}): the command may have run and is not resent; the server or the network failed (not a slow server), so check that the server at the configured address is running and reachable",
            e.message()
        )
    } else {
        format!(
            "Redis did not answer in time ({}): the command may have run; if the server is slow rather than down, raise the timeout (socket_timeout, or the layer's that expired)",
            e.message()
        )
    }
}

/// Every error a [`ResilientClient`](crate::ResilientClient) call can return.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be reached.
    #[error(
        "Redis unreachable ({}): check that the server at the configured address is running and reachable; prioritized writes queue and replay once it answers",
        .0.message()
    )]
    Unavailable(BackendError),
    /// The server did not answer in time, or the connection was lost before it answered
    /// ([`BackendError::is_lost_in_flight`]): the command may have run.
    #[error("{}", timeout_text(.0))]
    Timeout(BackendError),
    /// The server is up but busy (LOADING, BUSY, READONLY, …).
    #[error(
        "Redis is busy ({}): it is loading data, running a long script, failing over or redirecting; retry later",
        .0.message()
    )]
    Busy(BackendError),
    /// The server refused the command (WRONGTYPE, syntax, OOM, script error, …).
    #[error("Redis refused the command: {}", .0.message())]
    Server(BackendError),
    /// Authentication failed.
    #[error(
        "Redis authentication failed ({}): check the username and password (in the URL or ConnectionConfig) and the user's ACL rules",
        .0.message()
    )]
    Auth(BackendError),
    /// The request is invalid; nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The circuit breaker is open: the call was not attempted.
    #[error(
        "circuit open for client {client}: Redis failed repeatedly, so calls fail fast without reaching it for {retry_after:?} or until a health probe answers; prioritized writes queue meanwhile"
    )]
    CircuitOpen {
        /// The client's name.
        client: String,
        /// How long until the breaker next admits a probe (zero when the health probe decides).
        retry_after: Duration,
    },
    /// The recovery queue is full and nothing of lower priority could be evicted.
    #[error(
        "recovery queue full for client {client}: this write was not accepted; raise QueueConfig::capacity, or send it at a higher priority (a full queue evicts lower priorities first)"
    )]
    QueueFull {
        /// The client's name.
        client: String,
    },
    /// The shared retry budget is spent; the last error is attached.
    #[error(
        "retry budget exhausted (retries are limited to a share of all calls, see RetryBudget, so an outage does not multiply the load): last error: {0}"
    )]
    RetryBudgetExhausted(BackendError),
    /// The client is shutting down and takes no new work.
    #[error("client is shut down and takes no new work: build a new client")]
    Shutdown,
    /// The server's reply did not have the shape the command promises.
    #[error(
        "unexpected reply: expected {expected}, got {got} (the backend or the server does not speak this command as Redis 7 does)"
    )]
    UnexpectedReply {
        /// What the command promises.
        expected: &'static str,
        /// What arrived (the variant, never the data).
        got: &'static str,
    },
    /// A `store_with_retry` store function reported failure without an error of its own.
    #[error("store function reported failure: {0}")]
    StoreFailed(String),
}

impl Error {
    /// The backend classification of this error, when it came from a backend.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Unavailable(e)
            | Error::Timeout(e)
            | Error::Busy(e)
            | Error::Server(e)
            | Error::Auth(e)
            | Error::RetryBudgetExhausted(e) => Some(e.kind()),
            Error::InvalidInput(_) => Some(ErrorKind::InvalidInput),
            _ => None,
        }
    }

    /// The backend error inside, when there is one.
    pub fn backend_error(&self) -> Option<&BackendError> {
        match self {
            Error::Unavailable(e)
            | Error::Timeout(e)
            | Error::Busy(e)
            | Error::Server(e)
            | Error::Auth(e)
            | Error::RetryBudgetExhausted(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        match e.kind() {
            ErrorKind::Unavailable => Error::Unavailable(e),
            ErrorKind::Timeout => Error::Timeout(e),
            ErrorKind::Busy => Error::Busy(e),
            ErrorKind::Server => Error::Server(e),
            ErrorKind::Auth => Error::Auth(e),
            ErrorKind::InvalidInput => Error::InvalidInput(e.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified_by_their_code() {
        for (reply, kind) in [
            ("WRONGTYPE Operation against a key", ErrorKind::Server),
            ("NOSCRIPT No matching script", ErrorKind::Server),
            ("LOADING Redis is loading", ErrorKind::Busy),
            ("BUSY Redis is busy running a script", ErrorKind::Busy),
            (
                "READONLY You can't write against a read only replica",
                ErrorKind::Busy,
            ),
            ("CLUSTERDOWN The cluster is down", ErrorKind::Busy),
            ("MASTERDOWN Link with MASTER is down", ErrorKind::Busy),
            ("TRYAGAIN Multiple keys request", ErrorKind::Busy),
            ("NOAUTH Authentication required", ErrorKind::Auth),
            ("WRONGPASS invalid username-password pair", ErrorKind::Auth),
            ("OOM command not allowed", ErrorKind::Server),
            ("NOPERM this user has no permissions", ErrorKind::Server),
            ("ERR syntax error", ErrorKind::Server),
        ] {
            assert_eq!(BackendError::from_reply(reply).kind(), kind, "{reply}");
        }
        assert!(BackendError::from_reply("NOSCRIPT No matching script").is_noscript());
    }

    #[test]
    fn public_error_keeps_the_kind() {
        let e: Error = BackendError::timeout("read timed out").into();
        assert!(matches!(e, Error::Timeout(_)));
        assert_eq!(e.kind(), Some(ErrorKind::Timeout));
        assert!(e.class().is_outage());
        let e: Error = BackendError::from_reply("WRONGTYPE x").into();
        assert!(!e.class().is_outage());
    }

    #[test]
    fn a_connection_lost_in_flight_is_a_timeout_with_its_own_advice() {
        let lost: Error = BackendError::lost_in_flight("connection reset").into();
        assert!(matches!(lost, Error::Timeout(_)));
        assert_eq!(lost.kind(), Some(ErrorKind::Timeout));
        let text = lost.to_string();
        assert!(text.contains("connection lost"), "{text}");
        assert!(text.contains("may have run"), "{text}");
        assert!(!text.contains("raise the timeout"), "{text}");
        let slow = Error::from(BackendError::timeout("no reply within 2s")).to_string();
        assert!(slow.contains("raise the timeout"), "{slow}");
        assert!(!BackendError::timeout("x").is_lost_in_flight());
        // A permission refusal says which command it refused.
        let refused =
            BackendError::from_reply("NOPERM no permissions to access a key").naming_command("GET");
        assert!(refused.message().starts_with("GET refused"), "{refused}");
        assert_eq!(refused.code(), Some("NOPERM"));
        let other = BackendError::from_reply("WRONGTYPE x").naming_command("GET");
        assert_eq!(other.message(), "WRONGTYPE x");
        // At connect, nothing of the caller's ran.
        let at_connect = BackendError::lost_in_flight("reset").at_connect();
        assert_eq!(at_connect.kind(), ErrorKind::Unavailable);
        assert!(at_connect.message().contains("handshake"), "{at_connect}");
        assert_eq!(
            BackendError::timeout("slow").at_connect().kind(),
            ErrorKind::Timeout
        );
    }
}
