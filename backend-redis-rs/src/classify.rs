//! Classification of `redis::RedisError` into the core's `ErrorKind`s: see
//! [`classify_error`] for the table.

use redis::{ErrorKind as DriverKind, RedisError, ServerError};
use resilience_core::{BackendError, ErrorKind};

/// Maps a redis-rs error onto the core's classification.
///
/// The core decides about breakers and retries from the kind alone, so this table is the
/// whole contract between redis-rs and the resilience layer:
///
/// | redis-rs error | kind |
/// |---|---|
/// | a server error reply (also inside a pipeline or an aborted `MULTI`) | by its first word, via [`BackendError::from_reply`]: `WRONGTYPE`/`ERR`/`NOSCRIPT` → `Server`, `LOADING`/`BUSY`/`READONLY` → `Busy`, `NOAUTH`/`WRONGPASS` → `Auth` |
/// | `is_timeout()` (response or connect timeout) | `Timeout` |
/// | `ErrorKind::AuthenticationFailed` (handshake `AUTH` refused) | `Auth` |
/// | a TLS handshake failure (certificate not trusted, name mismatch, client certificate required or refused, TLS alert) | `Unavailable`, with a message starting `TLS handshake failed` (see below) |
/// | refused, DNS and any other I/O error that means no connection was made | `Unavailable` |
/// | reset, aborted, broken pipe, EOF, not connected, the connection task ending: the command may have run | `Timeout` (the backend itself reports a command that was never handed to a live connection as `Unavailable`: see the crate docs, "A dead server") |
/// | a garbled reply (`ErrorKind::Parse`) | `Timeout`: the command may have run, so only idempotent commands may be retried |
/// | `InvalidClientConfig`, `Client` | `InvalidInput`: nothing useful was sent |
/// | anything else (sentinel, cluster routing, an unexpected reply type) | `UnexpectedReturnType`, `RESP3NotSupported` → `Server`; sentinel, cluster and future kinds → `Unavailable` |
///
/// A TLS failure is `Unavailable`, not `Auth`: the server was never reached, so the breaker
/// must count it (an `Auth` would be recorded as a success, "the server answered", and keep
/// the breaker closed in front of a server nobody can talk to). Retrying does not help
/// until the certificates are fixed, but retries are bounded by the core's policy and the
/// breaker opens after its threshold. It fails at once (no timeout is waited for), and on
/// the first connect it is returned by `connect`.
///
/// Messages are built from the driver's error text, which never includes the password
/// (redis-rs reports "Password authentication failed" without echoing credentials).
///
/// Server error replies keep their code (`err.code() == Some("NOSCRIPT")`) and their full
/// line as the message, built exactly as every other backend builds them
/// ([`BackendError::from_reply`]). For a pipeline or transaction that failed on several
/// commands, the first failing command's error is reported.
///
/// The driver's error is kept as the result's [`source`](std::error::Error::source).
pub fn classify_error(e: &RedisError) -> BackendError {
    classify_kind(e).with_source(e.clone())
}

fn classify_kind(e: &RedisError) -> BackendError {
    if let Some(first) = e
        .clone()
        .into_server_errors()
        .and_then(|errors| errors.first().map(|(_, err)| err.clone()))
    {
        return from_server_error(&first);
    }
    if e.is_timeout() {
        return BackendError::timeout(format!("redis-rs: {e}"));
    }
    if is_tls_failure(e) {
        return BackendError::unavailable(format!(
            "redis-rs: TLS handshake failed (a certificate or TLS configuration problem: \
             check the CA file, the client certificate and the server's certificate): {e}"
        ));
    }
    match e.kind() {
        DriverKind::AuthenticationFailed => {
            BackendError::new(ErrorKind::Auth, format!("redis-rs: {e}"))
        }
        DriverKind::Io => classify_io(e),
        DriverKind::Parse => BackendError::timeout(format!(
            "redis-rs: garbled reply, the command may have run: {e}"
        )),
        DriverKind::InvalidClientConfig | DriverKind::Client => {
            BackendError::new(ErrorKind::InvalidInput, format!("redis-rs: {e}"))
        }
        // A server-kind error without a server reply inside: the driver built it itself
        // from a handshake reply (e.g. "Redis server refused to switch database").
        DriverKind::Server(_) | DriverKind::Extension => {
            let code = e.code().unwrap_or("ERR").to_owned();
            BackendError::new(ErrorKind::from_reply_code(&code), format!("{e}")).with_code(code)
        }
        DriverKind::UnexpectedReturnType | DriverKind::RESP3NotSupported => {
            BackendError::new(ErrorKind::Server, format!("redis-rs: {e}"))
        }
        _ => BackendError::unavailable(format!("redis-rs: {e}")),
    }
}

/// Whether `e` is a rustls error (the TLS handshake or a TLS alert), found by type in the
/// error's source chain, or by rustls' own wording when the type is hidden behind an
/// `Arc<dyn Error>`.
fn is_tls_failure(e: &RedisError) -> bool {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(mut err) = source {
        // redis-rs keeps its inner error as an `Arc<dyn Error>`: look inside it.
        if let Some(shared) = err.downcast_ref::<Shared>() {
            err = shared.as_ref();
        }
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        source = err.source();
    }
    if !e.is_io_error() {
        return false;
    }
    let text = e.to_string();
    [
        "invalid peer certificate",
        "received fatal alert",
        "peer is incompatible",
        "peer misbehaved",
        "invalid certificate",
        "no certificates presented",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// An I/O failure: `Unavailable` when the command cannot have reached the server (no
/// connection could be made), `Timeout` when the connection broke while the command may
/// have been in flight (reset, aborted, broken pipe, EOF, or the connection task ending):
/// the server may have applied it, so only an idempotent command may be tried again.
fn classify_io(e: &RedisError) -> BackendError {
    if !e.is_connection_refusal() && e.is_connection_dropped() {
        BackendError::lost_in_flight(format!(
            "redis-rs: connection lost with the command in flight, it may have run: {e}"
        ))
    } else {
        BackendError::unavailable(format!("redis-rs: {e}"))
    }
}

/// A server error reply, rebuilt as the line the server sent (`"NOSCRIPT No matching …"`),
/// classified by the core.
pub(crate) fn from_server_error(err: &ServerError) -> BackendError {
    let line = match err.details() {
        Some(details) if !details.is_empty() => format!("{} {}", err.code(), details),
        _ => err.code().to_owned(),
    };
    BackendError::from_reply(&line)
}

/// Whether the error is (or holds) an error reply from the server, i.e. the server answered.
pub(crate) fn is_server_reply(e: &RedisError) -> bool {
    e.clone().into_server_errors().is_some()
}

/// Whether the failed call left the connection manager in a state it will not leave by
/// itself, so the backend must swap in a fresh one.
///
/// `ConnectionManager` reconnects on its own after I/O errors (refused, reset, EOF), but
/// not after a response timeout (the wedged socket would stay in use) nor after a
/// handshake that failed without an I/O error (an `AUTH` or `SELECT` refusal would be
/// returned to every later call forever).
pub(crate) fn needs_fresh_connection(e: &RedisError) -> bool {
    if e.is_timeout() {
        return true;
    }
    if e.is_io_error() {
        return false;
    }
    matches!(
        e.kind(),
        DriverKind::AuthenticationFailed | DriverKind::Parse
    ) || (matches!(e.kind(), DriverKind::Server(_) | DriverKind::Extension) && !is_server_reply(e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io;

    fn reply_error(line: &str) -> RedisError {
        redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
            .unwrap()
            .extract_error()
            .unwrap_err()
    }

    fn io_error(kind: io::ErrorKind) -> RedisError {
        RedisError::from(io::Error::from(kind))
    }

    #[test]
    fn tls_failures_are_unavailable_and_say_so() {
        let errors = [
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName),
            // Found by type, whatever its wording.
            rustls::Error::General("something else".to_owned()),
        ];
        for tls in errors {
            let e = RedisError::from(io::Error::new(io::ErrorKind::InvalidData, tls.clone()));
            let classified = classify_error(&e);
            assert_eq!(classified.kind(), ErrorKind::Unavailable, "{tls:?}");
            let text = classified.to_string();
            assert!(text.contains("TLS handshake failed"), "{text}");
            assert!(text.contains("certificate"), "{text}");
        }
        // A plain refusal is not mistaken for TLS.
        let refused = classify_error(&io_error(io::ErrorKind::ConnectionRefused));
        assert!(!refused.to_string().contains("TLS"), "{refused}");
    }

    #[test]
    fn server_replies_are_classified_by_their_first_word() {
        let table: &[(&str, ErrorKind, &str)] = &[
            (
                "WRONGTYPE Operation against a key holding the wrong kind of value",
                ErrorKind::Server,
                "WRONGTYPE",
            ),
            ("ERR syntax error", ErrorKind::Server, "ERR"),
            (
                "NOSCRIPT No matching script. Please use EVAL.",
                ErrorKind::Server,
                "NOSCRIPT",
            ),
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                ErrorKind::Server,
                "OOM",
            ),
            (
                "NOPERM this user has no permissions",
                ErrorKind::Server,
                "NOPERM",
            ),
            (
                "LOADING Redis is loading the dataset in memory",
                ErrorKind::Busy,
                "LOADING",
            ),
            (
                "BUSY Redis is busy running a script",
                ErrorKind::Busy,
                "BUSY",
            ),
            (
                "TRYAGAIN Multiple keys request",
                ErrorKind::Busy,
                "TRYAGAIN",
            ),
            (
                "CLUSTERDOWN The cluster is down",
                ErrorKind::Busy,
                "CLUSTERDOWN",
            ),
            (
                "MASTERDOWN Link with MASTER is down",
                ErrorKind::Busy,
                "MASTERDOWN",
            ),
            (
                "READONLY You can't write against a read only replica.",
                ErrorKind::Busy,
                "READONLY",
            ),
            ("NOAUTH Authentication required.", ErrorKind::Auth, "NOAUTH"),
            (
                "WRONGPASS invalid username-password pair",
                ErrorKind::Auth,
                "WRONGPASS",
            ),
            (
                "EXECABORT Transaction discarded",
                ErrorKind::Server,
                "EXECABORT",
            ),
        ];
        for (line, kind, code) in table {
            let got = classify_error(&reply_error(line));
            assert_eq!(got.kind(), *kind, "{line}");
            assert_eq!(got.code(), Some(*code), "{line}");
            assert_eq!(got.message(), *line, "the full line is kept");
            assert_eq!(
                got,
                BackendError::from_reply(line),
                "same as the core builds it"
            );
        }
        assert!(classify_error(&reply_error("NOSCRIPT No matching script")).is_noscript());
    }

    #[test]
    fn io_errors_before_sending_are_unavailable_and_lost_connections_are_timeouts() {
        let table: &[(io::ErrorKind, ErrorKind)] = &[
            (io::ErrorKind::ConnectionRefused, ErrorKind::Unavailable),
            (io::ErrorKind::ConnectionReset, ErrorKind::Timeout),
            (io::ErrorKind::ConnectionAborted, ErrorKind::Timeout),
            (io::ErrorKind::BrokenPipe, ErrorKind::Timeout),
            (io::ErrorKind::UnexpectedEof, ErrorKind::Timeout),
            (io::ErrorKind::NotConnected, ErrorKind::Timeout),
            (io::ErrorKind::AddrNotAvailable, ErrorKind::Unavailable),
            (io::ErrorKind::Other, ErrorKind::Unavailable),
            (io::ErrorKind::TimedOut, ErrorKind::Timeout),
            (io::ErrorKind::WouldBlock, ErrorKind::Timeout),
        ];
        for (io_kind, kind) in table {
            let got = classify_error(&io_error(*io_kind));
            assert_eq!(got.kind(), *kind, "{io_kind:?}");
            assert_eq!(got.code(), None);
        }
        // DNS failures surface as I/O errors with a custom message.
        let dns = RedisError::from(io::Error::other("failed to lookup address information"));
        assert_eq!(classify_error(&dns).kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn the_drivers_error_is_kept_as_the_source() {
        let refused = io_error(io::ErrorKind::ConnectionRefused);
        let classified = classify_error(&refused);
        let source = std::error::Error::source(&classified).expect("a source");
        let driver = source
            .downcast_ref::<RedisError>()
            .expect("the redis-rs error");
        assert_eq!(driver.to_string(), refused.to_string());
    }

    #[test]
    fn driver_side_errors() {
        let auth: RedisError = (
            DriverKind::AuthenticationFailed,
            "Password authentication failed",
        )
            .into();
        assert_eq!(classify_error(&auth).kind(), ErrorKind::Auth);
        let client: RedisError = (DriverKind::Client, "empty command").into();
        assert_eq!(classify_error(&client).kind(), ErrorKind::InvalidInput);
        let config: RedisError = (DriverKind::InvalidClientConfig, "bad url").into();
        assert_eq!(classify_error(&config).kind(), ErrorKind::InvalidInput);
        let parse: RedisError = (DriverKind::Parse, "bad reply").into();
        assert_eq!(classify_error(&parse).kind(), ErrorKind::Timeout);
        let select: RedisError = (
            DriverKind::Server(redis::ServerErrorKind::ResponseError),
            "Redis server refused to switch database",
        )
            .into();
        let got = classify_error(&select);
        assert_eq!(got.kind(), ErrorKind::Server);
        assert_eq!(got.code(), Some("ERR"));
        let unexpected: RedisError = (DriverKind::UnexpectedReturnType, "nope").into();
        assert_eq!(classify_error(&unexpected).kind(), ErrorKind::Server);
        let extension = redis::make_extension_error("CUSTOMERR".into(), Some("x".into()));
        let got = classify_error(&extension);
        assert_eq!(
            (got.kind(), got.code()),
            (ErrorKind::Server, Some("CUSTOMERR"))
        );
    }

    #[test]
    fn which_failures_need_a_fresh_connection() {
        assert!(needs_fresh_connection(&io_error(io::ErrorKind::TimedOut)));
        assert!(!needs_fresh_connection(&io_error(
            io::ErrorKind::ConnectionRefused
        )));
        assert!(!needs_fresh_connection(&io_error(
            io::ErrorKind::BrokenPipe
        )));
        assert!(!needs_fresh_connection(&reply_error("WRONGTYPE x")));
        assert!(is_server_reply(&reply_error("WRONGTYPE x")));
        assert!(!is_server_reply(&io_error(io::ErrorKind::TimedOut)));
        let auth: RedisError = (DriverKind::AuthenticationFailed, "failed").into();
        assert!(needs_fresh_connection(&auth));
        let select: RedisError = (
            DriverKind::Server(redis::ServerErrorKind::ResponseError),
            "Redis server refused to switch database",
        )
            .into();
        assert!(needs_fresh_connection(&select));
    }
}
