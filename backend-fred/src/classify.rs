//! Error classification: fred's [`Error`](fred::error::Error) to [`BackendError`].
//!
//! fred reports most server error replies as `ErrorKind::Unknown` (or `InvalidArgument`
//! for `WRONGTYPE`, `Auth` for `NOAUTH`, `Cluster` for `MOVED`), with the full reply line
//! in [`details()`](fred::error::Error::details). So the rule is:
//!
//! 0. a TLS failure (fred's `Tls` kind, or an `IO` error carrying a rustls error: a
//!    certificate not trusted or not valid for the name, a client certificate the server
//!    requires, any TLS alert) is [`ErrorKind::Unavailable`] with a message starting
//!    `TLS handshake failed`. Not `Auth`: the server was never reached, so the breaker
//!    must count it (an `Auth` is recorded as a success, "the server answered", and would
//!    keep the breaker closed in front of a server nobody can talk to). Retrying does not
//!    help until the certificates are fixed, but retries are bounded by the core's policy
//!    and the breaker opens after its threshold;
//! 1. a fred `Timeout` (command or connect timeout) is [`ErrorKind::Timeout`];
//! 2. a fred `Canceled` from its fail-fast check while disconnected (`Connection closed
//!    unexpectedly.`: the command was never written) is [`ErrorKind::Unavailable`]; any other
//!    `Canceled` is a lost-in-flight `Timeout`, because fred also cancels commands it had
//!    written: when a connection breaks it keeps its in-flight commands for a retry, and when
//!    the connection's task then ends it drops them, so their callers see `oneshot canceled`
//!    for a command that may have run (the fail-fast message is fred's only proof that
//!    nothing was written);
//! 3. a fred `IO` error is `Unavailable` when no connection was made (refused, DNS,
//!    unreachable), and `Timeout` otherwise: the OS said it timed out, or the connection
//!    broke (reset, broken pipe, EOF, closed) with the command possibly written, so it may
//!    have run and only idempotent commands may be retried;
//! 4. anything whose details start with an upper-case Redis error code (`ERR`, `WRONGTYPE`,
//!    `NOSCRIPT`, `LOADING`, …) is a server reply and goes through
//!    [`BackendError::from_reply`], so both driver backends classify replies identically;
//! 5. the rest by fred's kind: local misuse (`Config`, `Url`, `InvalidArgument`,
//!    `InvalidCommand`) is `InvalidInput`, a full local command buffer (`Backpressure`) is
//!    `Busy`, an unparseable reply is `Server`, and connection-level kinds are `Unavailable`.

use fred::error::{Error as FredError, ErrorKind as FredKind};
use resilience_core::{BackendError, ErrorKind};

/// Classifies a fred error into the core's [`ErrorKind`]s (see the module docs for the rules).
///
/// Server error replies keep their Redis code ([`BackendError::code`]), so `NOSCRIPT`
/// comes out with [`BackendError::is_noscript`] set. Messages are fred's details, which
/// never contain the configured password. fred's error is kept as the result's
/// [`source`](std::error::Error::source).
pub fn classify_error(e: &FredError) -> BackendError {
    classify_kind(e).with_source(e.clone())
}

/// What fred's fail-fast check answers a command it refused to write while disconnected.
const FAIL_FAST: &str = "Connection closed unexpectedly.";

fn classify_kind(e: &FredError) -> BackendError {
    let details = e.details();
    if matches!(e.kind(), FredKind::Tls) && details.contains("InvalidDnsName") {
        return BackendError::new(
            ErrorKind::InvalidInput,
            format!(
                "fred: TLS: the host is not a valid TLS server name ({details}): connect by the DNS name in the server's certificate"
            ),
        );
    }
    if matches!(e.kind(), FredKind::Tls) || (matches!(e.kind(), FredKind::IO) && is_tls(details)) {
        return BackendError::unavailable(format!(
            "fred: TLS handshake failed (a certificate or TLS configuration problem: check \
             the CA file, the client certificate and the server's certificate): {details}"
        ));
    }
    match e.kind() {
        FredKind::Timeout => return BackendError::timeout(format!("fred: {details}")),
        FredKind::Canceled if details == FAIL_FAST => {
            return BackendError::unavailable(format!("fred: {details}"));
        }
        FredKind::Canceled => {
            return BackendError::lost_in_flight(format!(
                "fred: canceled with the command possibly written, it may have run: {details}"
            ));
        }
        FredKind::IO => {
            let lower = details.to_ascii_lowercase();
            return if lower.contains("timedout") || lower.contains("timed out") {
                BackendError::timeout(format!("fred io: {details}"))
            } else if never_connected(&lower) {
                BackendError::unavailable(format!("fred io: {details}"))
            } else {
                // Reset, broken pipe, EOF, "Connection Closed": the connection broke with
                // the command possibly written, so it may have run.
                BackendError::lost_in_flight(format!(
                    "fred io: connection lost with the command in flight, it may have run: {details}"
                ))
            };
        }
        _ => {}
    }
    if looks_like_reply(details) {
        return BackendError::from_reply(details);
    }
    if details.starts_with("Too many failed write attempts") {
        // Written at least once before the connection failed: it may have run.
        return BackendError::timeout(format!("fred: {details}"));
    }
    let kind = match e.kind() {
        FredKind::Auth => ErrorKind::Auth,
        FredKind::Config | FredKind::Url | FredKind::InvalidArgument | FredKind::InvalidCommand => {
            ErrorKind::InvalidInput
        }
        FredKind::Backpressure => ErrorKind::Busy,
        FredKind::Parse => ErrorKind::Server,
        // Unknown without a reply code is fred's own plumbing ("Connection closed
        // unexpectedly", "Client is not initialized"):
        // the command did not get an answer from a healthy connection.
        _ => ErrorKind::Unavailable,
    };
    BackendError::new(kind, format!("fred {:?}: {details}", e.kind()))
}

/// Whether an I/O error's details hold a rustls error. fred keeps only the `Debug` text of
/// the `io::Error` (`Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }`),
/// so this matches rustls' variant names (and its `Display` wording, to be safe).
fn is_tls(details: &str) -> bool {
    [
        "InvalidCertificate",
        "AlertReceived",
        "PeerIncompatible",
        "PeerMisbehaved",
        "NoCertificatesPresented",
        "InvalidCertRevocationList",
        "invalid peer certificate",
        "received fatal alert",
    ]
    .iter()
    .any(|needle| details.contains(needle))
}

/// Whether an I/O error says no connection was made at all (so nothing was sent).
fn never_connected(lower: &str) -> bool {
    [
        "refused",
        "lookup",
        "dns",
        "not found",
        "unreachable",
        "addrnotavailable",
        "address not available",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// Whether `details` starts like a Redis error reply: an upper-case code word (`ERR`,
/// `WRONGTYPE`, `NOSCRIPT`, `BUSY`, …) followed by a space or the end.
fn looks_like_reply(details: &str) -> bool {
    let code = details.split(' ').next().unwrap_or("");
    code.len() >= 2
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && code.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: FredKind, details: &'static str) -> FredError {
        FredError::new(kind, details)
    }

    #[test]
    fn the_drivers_error_is_kept_as_the_source() {
        let timeout = e(FredKind::Timeout, "Request timed out.");
        let classified = classify_error(&timeout);
        let source = std::error::Error::source(&classified).expect("a source");
        let driver = source.downcast_ref::<FredError>().expect("the fred error");
        assert_eq!(driver, &timeout);
    }

    #[test]
    fn tls_failures_are_unavailable_and_say_so() {
        for err in [
            e(
                FredKind::IO,
                "Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }",
            ),
            e(
                FredKind::IO,
                "Custom { kind: InvalidData, error: AlertReceived(CertificateRequired) }",
            ),
            e(FredKind::Tls, "General(\"handshake\")"),
        ] {
            let classified = classify_error(&err);
            assert_eq!(classified.kind(), ErrorKind::Unavailable, "{err:?}");
            let text = classified.to_string();
            assert!(text.contains("TLS handshake failed"), "{text}");
            assert!(text.contains("certificate"), "{text}");
        }
        let name = classify_error(&e(FredKind::Tls, "InvalidDnsNameError"));
        assert_eq!(name.kind(), ErrorKind::InvalidInput, "{name}");
        // A reset is still a reset.
        let reset = classify_error(&e(FredKind::IO, "Kind(ConnectionReset)"));
        assert_eq!(reset.kind(), ErrorKind::Timeout);
        assert!(!reset.to_string().contains("TLS"));
    }

    #[test]
    fn classification_table() {
        use ErrorKind::*;
        let table: Vec<(FredError, ErrorKind, Option<&str>)> = vec![
            (e(FredKind::Timeout, "Request timed out."), Timeout, None),
            (
                e(FredKind::Canceled, "Connection closed unexpectedly."),
                Unavailable,
                None,
            ),
            // A written command dropped with fred's retry buffer: it may have run.
            (e(FredKind::Canceled, "oneshot canceled"), Timeout, None),
            (e(FredKind::Canceled, "Canceled."), Timeout, None),
            (
                e(
                    FredKind::IO,
                    "Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" }",
                ),
                Unavailable,
                None,
            ),
            (e(FredKind::IO, "Kind(ConnectionReset)"), Timeout, None),
            (e(FredKind::IO, "Kind(BrokenPipe)"), Timeout, None),
            (e(FredKind::IO, "Connection Closed"), Timeout, None),
            (
                e(FredKind::Unknown, "Too many failed write attempts."),
                Timeout,
                None,
            ),
            (
                e(FredKind::IO, "failed to lookup address information"),
                Unavailable,
                None,
            ),
            (e(FredKind::IO, "Kind(TimedOut)"), Timeout, None),
            (
                e(
                    FredKind::InvalidArgument,
                    "WRONGTYPE Operation against a key",
                ),
                Server,
                Some("WRONGTYPE"),
            ),
            (
                e(FredKind::Unknown, "NOSCRIPT No matching script."),
                Server,
                Some("NOSCRIPT"),
            ),
            (
                e(FredKind::Unknown, "ERR syntax error"),
                Server,
                Some("ERR"),
            ),
            (
                e(FredKind::Unknown, "OOM command not allowed"),
                Server,
                Some("OOM"),
            ),
            (
                e(FredKind::Unknown, "LOADING Redis is loading"),
                Busy,
                Some("LOADING"),
            ),
            (
                e(FredKind::Unknown, "BUSY Redis is busy running a script"),
                Busy,
                Some("BUSY"),
            ),
            (
                e(FredKind::Unknown, "READONLY You can't write"),
                Busy,
                Some("READONLY"),
            ),
            (
                e(FredKind::Unknown, "MASTERDOWN Link with MASTER is down"),
                Busy,
                Some("MASTERDOWN"),
            ),
            (
                e(FredKind::Unknown, "TRYAGAIN Multiple keys"),
                Busy,
                Some("TRYAGAIN"),
            ),
            (
                e(FredKind::Cluster, "CLUSTERDOWN The cluster is down"),
                Busy,
                Some("CLUSTERDOWN"),
            ),
            (
                e(FredKind::Auth, "NOAUTH Authentication required."),
                Auth,
                Some("NOAUTH"),
            ),
            (
                e(FredKind::Auth, "WRONGPASS invalid username-password pair"),
                Auth,
                Some("WRONGPASS"),
            ),
            (e(FredKind::Auth, "Invalid password."), Auth, None),
            (
                e(FredKind::Unknown, "Client is not initialized."),
                Unavailable,
                None,
            ),
            (e(FredKind::Protocol, "Invalid frame."), Unavailable, None),
            (e(FredKind::Backpressure, "Max in-flight."), Busy, None),
            (e(FredKind::Config, "Invalid database."), InvalidInput, None),
            (
                e(FredKind::InvalidArgument, "Invalid argument."),
                InvalidInput,
                None,
            ),
            (e(FredKind::Parse, "Invalid integer string."), Server, None),
        ];
        for (err, kind, code) in table {
            let got = classify_error(&err);
            assert_eq!(got.kind(), kind, "{err:?}");
            assert_eq!(got.code(), code, "{err:?}");
        }
    }

    #[test]
    fn noscript_is_recognised() {
        let got = classify_error(&e(FredKind::Unknown, "NOSCRIPT No matching script."));
        assert!(got.is_noscript());
        assert!(!got.kind().class().counts_for_breaker());
    }

    #[test]
    fn reply_code_detection() {
        assert!(looks_like_reply("ERR x"));
        assert!(looks_like_reply("WRONGTYPE"));
        assert!(!looks_like_reply("Connection closed unexpectedly."));
        assert!(!looks_like_reply("E"));
        assert!(!looks_like_reply(""));
    }
}
