//! The one answer to "is this an outage?": [`ErrorClass`].
//!
//! Its guide is in the docs of its main type.

use crate::{Error, ErrorKind};

/// What a failure says about Redis, and so what every part of the client does with it.
///
/// Each [`Error`] has exactly one class ([`Error::class`]), and each part asks the class,
/// never the error itself: the breaker ([`counts_for_breaker`](Self::counts_for_breaker)),
/// the retry loop and the recovery queue's replay ([`may_retry`](Self::may_retry)), the
/// cache serving a stale value, the priority handling queueing a write and the memory
/// tiers falling back to their local tier ([`is_outage`](Self::is_outage)).
///
/// | error | class | breaker | retry | replay of a queued write | cached read | write by priority, memory-tiers fallback |
/// |---|---|---|---|---|---|---|
/// | `Unavailable` | `Outage` | counts | yes | kept, tried again | served `Stale` | queued / falls back |
/// | `Busy` | `Outage` | counts | yes | kept, tried again | served `Stale` | queued / falls back |
/// | `StoreFailed` | `Outage` | — | yes | kept, tried again | — | queued |
/// | `Timeout` | `Indeterminate` | counts | idempotent only | idempotent: kept; else dead-lettered | served `Stale` | queued / falls back |
/// | `CircuitOpen` | `HeldBack` | — (not attempted) | yes | kept, waits for the breaker | served `Stale` | queued / falls back |
/// | `QueueFull` | `HeldBack` | — | yes | — | — | falls back |
/// | `RetryBudgetExhausted(e)` | `e`'s | — | as `e` | as `e` | as `e` | as `e` |
/// | `Server`, `Auth`, `InvalidInput`, `UnexpectedReply` | `Refused` | does not count | no | dead-lettered | the error | the error |
/// | `Shutdown` | `Closed` | — | no | dead-lettered | the error | the error |
///
/// "—" means the part never sees that error. The table is checked row by row by a test
/// beside this type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Redis could not be reached or could not serve now, and nothing ran: a later attempt
    /// may succeed, and repeating the command is safe.
    Outage,
    /// Redis did not answer (a timeout, or the connection lost with the command in
    /// flight): an outage, but the command may have run, so only an idempotent one is
    /// repeated.
    Indeterminate,
    /// This client held the call back without sending it (its breaker is open, or its
    /// recovery queue is full): Redis is down as far as the client knows, and nothing ran.
    HeldBack,
    /// Redis, or the request itself, refused the command: repeating it, queueing it or
    /// falling back cannot fix that.
    Refused,
    /// The client is shut down and takes no new work.
    Closed,
}

impl ErrorClass {
    /// Whether Redis is down or unreachable as far as this failure tells: a cached value
    /// may be served as stale, a prioritized write queued, the memory tiers' fallback used.
    pub const fn is_outage(self) -> bool {
        matches!(
            self,
            ErrorClass::Outage | ErrorClass::Indeterminate | ErrorClass::HeldBack
        )
    }

    /// Whether a command that failed this way may be sent again: never after a refusal,
    /// and after an indeterminate failure only if the command is idempotent (the first
    /// attempt may have been applied).
    pub const fn may_retry(self, idempotent: bool) -> bool {
        match self {
            ErrorClass::Outage | ErrorClass::HeldBack => true,
            ErrorClass::Indeterminate => idempotent,
            ErrorClass::Refused | ErrorClass::Closed => false,
        }
    }

    /// Whether a failed attempt says the server is unhealthy, so the circuit breaker counts
    /// it. Only attempts that reached for the server are recorded at all.
    pub const fn counts_for_breaker(self) -> bool {
        matches!(self, ErrorClass::Outage | ErrorClass::Indeterminate)
    }
}

impl ErrorKind {
    /// The class of a backend failure of this kind.
    pub const fn class(self) -> ErrorClass {
        match self {
            ErrorKind::Unavailable | ErrorKind::Busy => ErrorClass::Outage,
            ErrorKind::Timeout => ErrorClass::Indeterminate,
            ErrorKind::Server | ErrorKind::Auth | ErrorKind::InvalidInput => ErrorClass::Refused,
        }
    }
}

impl Error {
    /// The class of this error: what it says about Redis, and what each part of the client
    /// does with it (the table on [`ErrorClass`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Unavailable(e)
            | Error::Timeout(e)
            | Error::Busy(e)
            | Error::Server(e)
            | Error::Auth(e)
            | Error::RetryBudgetExhausted(e) => e.kind().class(),
            Error::InvalidInput(_) | Error::UnexpectedReply { .. } => ErrorClass::Refused,
            Error::CircuitOpen { .. } | Error::QueueFull { .. } => ErrorClass::HeldBack,
            Error::StoreFailed(_) => ErrorClass::Outage,
            Error::Shutdown => ErrorClass::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::BackendError;

    /// One error of every variant (and, inside `RetryBudgetExhausted`, of two kinds).
    fn one_of_each() -> Vec<(&'static str, Error)> {
        let backend = |kind| BackendError::new(kind, "x");
        vec![
            (
                "Unavailable",
                Error::Unavailable(backend(ErrorKind::Unavailable)),
            ),
            ("Busy", Error::Busy(backend(ErrorKind::Busy))),
            ("StoreFailed", Error::StoreFailed("x".into())),
            ("Timeout", Error::Timeout(backend(ErrorKind::Timeout))),
            (
                "CircuitOpen",
                Error::CircuitOpen {
                    client: "c".into(),
                    retry_after: Duration::ZERO,
                },
            ),
            ("QueueFull", Error::QueueFull { client: "c".into() }),
            (
                "RetryBudgetExhausted(Timeout)",
                Error::RetryBudgetExhausted(backend(ErrorKind::Timeout)),
            ),
            (
                "RetryBudgetExhausted(Unavailable)",
                Error::RetryBudgetExhausted(backend(ErrorKind::Unavailable)),
            ),
            ("Server", Error::Server(backend(ErrorKind::Server))),
            ("Auth", Error::Auth(backend(ErrorKind::Auth))),
            ("InvalidInput", Error::InvalidInput("x".into())),
            (
                "UnexpectedReply",
                Error::UnexpectedReply {
                    expected: "a",
                    got: "b",
                },
            ),
            ("Shutdown", Error::Shutdown),
        ]
    }

    #[test]
    fn every_row_of_the_table_holds() {
        use ErrorClass::*;
        // error, class, breaker counts, retry (idempotent, not), outage.
        let table: &[(&str, ErrorClass, bool, bool, bool, bool)] = &[
            ("Unavailable", Outage, true, true, true, true),
            ("Busy", Outage, true, true, true, true),
            ("StoreFailed", Outage, true, true, true, true),
            ("Timeout", Indeterminate, true, true, false, true),
            ("CircuitOpen", HeldBack, false, true, true, true),
            ("QueueFull", HeldBack, false, true, true, true),
            (
                "RetryBudgetExhausted(Timeout)",
                Indeterminate,
                true,
                true,
                false,
                true,
            ),
            (
                "RetryBudgetExhausted(Unavailable)",
                Outage,
                true,
                true,
                true,
                true,
            ),
            ("Server", Refused, false, false, false, false),
            ("Auth", Refused, false, false, false, false),
            ("InvalidInput", Refused, false, false, false, false),
            ("UnexpectedReply", Refused, false, false, false, false),
            ("Shutdown", Closed, false, false, false, false),
        ];
        let errors = one_of_each();
        assert_eq!(errors.len(), table.len());
        for ((name, error), &(row, class, counts, idempotent, other, outage)) in
            errors.iter().zip(table)
        {
            assert_eq!(*name, row);
            let got = error.class();
            assert_eq!(got, class, "{name}");
            assert_eq!(got.counts_for_breaker(), counts, "{name}");
            assert_eq!(got.may_retry(true), idempotent, "{name}");
            assert_eq!(got.may_retry(false), other, "{name}");
            assert_eq!(got.is_outage(), outage, "{name}");
            if let Some(kind) = error.kind() {
                assert_eq!(kind.class(), got, "{name}: the kind and the error agree");
            }
        }
    }

    #[test]
    fn the_breaker_counts_exactly_the_kinds_of_a_failed_attempt() {
        for kind in [
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Busy,
            ErrorKind::Server,
            ErrorKind::Auth,
            ErrorKind::InvalidInput,
        ] {
            let expected = !matches!(
                kind,
                ErrorKind::Server | ErrorKind::Auth | ErrorKind::InvalidInput
            );
            assert_eq!(kind.class().counts_for_breaker(), expected, "{kind}");
        }
    }
}
