//! ACL users and passwords over a real server, written once and run for every backend.
//!
//! The promise: with ACL users, a wrong password is `Auth`, does not count toward the
//! breaker, and the password appears in no error, log line or Debug output (checked by
//! capturing the tracing output).
//!
//! The server's default user needs an admin password the client never gets, and user
//! [`ACL_USER`] is created with `ACL SETUSER alice on >S3cretPassw0rd ~* &* +@all`. Then:
//!
//! 1. **Right credentials**: the backend connects as `alice`, a [`ResilientClient`] over
//!    it writes and reads, and `ACL WHOAMI` says `alice`.
//! 2. **Wrong password at connect**, and an unknown user: `connect` fails with
//!    [`ErrorKind::Auth`].
//! 3. **A client holding a wrong password**: the connected client's password is made wrong
//!    (`ACL SETUSER alice resetpass >…` and `CLIENT KILL USER alice`), so every reconnect
//!    is refused. One call notices the lost connection; once the server logged the
//!    refused login (`ACL LOG`), every call must fail with `Auth`
//!    ([`AclOptions::auth_streak`] in a row) and the breaker must never open, however
//!    many fail. Then the password is restored and the same client must work again,
//!    without being recreated.
//! 4. **No secret anywhere**: none of the passwords (right, wrong, rotated, admin) appears
//!    in any error's `Display` or `Debug`, in the `Debug` of the configs and the client
//!    (a backend's own test checks its concrete type's `Debug` with [`shown_secret`]), nor in the process's log at `TRACE` ([`LogCapture`], which also takes the
//!    drivers' `log` records).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{
    CircuitState, Command, ConnectionConfig, ErrorKind, ResilientClient, SetOptions, Value,
};
use tokio::time::Instant;

use super::{BackendFuture, ScenarioFailure};
use crate::logs::LogCapture;
use crate::server::{RedisServer, RespConnection, RespReply};

/// The ACL user the scenario creates.
pub const ACL_USER: &str = "alice";
/// Its password.
pub const ACL_PASSWORD: &str = "S3cretPassw0rd";
/// A password the server never accepted.
pub const WRONG_PASSWORD: &str = "Wr0ngPassw0rd-7731";
/// The password `alice` gets while the client still holds [`ACL_PASSWORD`].
pub const ROTATED_PASSWORD: &str = "R0tatedPassw0rd-4410";
/// The default user's password (the client never gets it).
pub const ADMIN_PASSWORD: &str = "Adm1nPassw0rd-9052";

/// Every secret that must never be shown.
pub const SECRETS: [&str; 4] = [
    ACL_PASSWORD,
    WRONG_PASSWORD,
    ROTATED_PASSWORD,
    ADMIN_PASSWORD,
];

/// Knobs of [`acl_checks_with`].
#[derive(Clone, Debug)]
pub struct AclOptions {
    /// The backend's `socket_timeout` and `socket_connect_timeout` (default 300 ms).
    pub socket_timeout: Duration,
    /// How many `Auth` failures in a row the client holding a wrong password must reach
    /// (default 12: four times the breaker's threshold of 3).
    pub auth_streak: usize,
    /// Bound on each waiting step (default 5 s).
    pub step_deadline: Duration,
}

impl Default for AclOptions {
    fn default() -> Self {
        AclOptions {
            socket_timeout: Duration::from_millis(300),
            auth_streak: 12,
            step_deadline: Duration::from_secs(5),
        }
    }
}

/// One named check and its outcome.
#[derive(Clone, Debug)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// What [`acl_checks`] saw.
#[derive(Clone, Debug)]
pub struct AclReport {
    /// The backend's name.
    pub backend: &'static str,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Calls of the client holding a wrong password, by outcome kind, in order.
    pub wrong_password_calls: Vec<String>,
    /// The breaker's worst state while the client held a wrong password.
    pub breaker_opened: bool,
    /// How long after the password was restored the same client worked again.
    pub recovered_after: Option<Duration>,
    /// Bytes logged during the run (the capture is live when this is not zero).
    pub log_bytes: usize,
    /// The whole run.
    pub elapsed: Duration,
}

impl AclReport {
    /// Prints the report and panics, like `assert!`, with every failed check (see
    /// [`violations`](Self::violations)).
    pub fn print_and_assert(&self) {
        super::print_and_assert(self, &self.violations());
    }

    /// The checks that failed (empty when all held).
    pub fn violations(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect()
    }
}

impl fmt::Display for AclReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "acl checks backend={}", self.backend)?;
        for check in &self.checks {
            writeln!(
                f,
                "  [{}] {}: {}",
                if check.passed { "ok" } else { "FAILED" },
                check.name,
                check.detail
            )?;
        }
        write!(f, "  wrong-password calls, in order:")?;
        let mut runs: Vec<(&str, usize)> = Vec::new();
        for call in &self.wrong_password_calls {
            match runs.last_mut() {
                Some((kind, n)) if *kind == call.as_str() => *n += 1,
                _ => runs.push((call, 1)),
            }
        }
        for (kind, n) in runs {
            write!(f, " {kind} x{n};")?;
        }
        writeln!(f)?;
        write!(
            f,
            "  recovered after {:?}; log {} bytes; total {:?}",
            self.recovered_after, self.log_bytes, self.elapsed
        )
    }
}

/// [`acl_checks_with`] with the default [`AclOptions`].
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn acl_checks<F>(connect: F, logs: &LogCapture) -> Result<AclReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    acl_checks_with(AclOptions::default(), connect, logs).await
}

/// Whether `text` shows any of [`SECRETS`]; returns the first one shown.
pub fn shown_secret(text: &str) -> Option<&'static str> {
    SECRETS.iter().copied().find(|s| text.contains(s))
}

/// Collects checks, and every piece of text that must be free of secrets.
struct Checks {
    checks: Vec<Check>,
    texts: Vec<(String, String)>,
}

impl Checks {
    fn check(&mut self, name: &'static str, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            passed,
            detail: detail.into(),
        });
    }

    /// Keeps `Display` and `Debug` of `value` to scan for secrets at the end.
    fn shown<T: fmt::Display + fmt::Debug>(&mut self, what: &str, value: &T) {
        self.texts
            .push((what.to_owned(), format!("{value} / {value:?}")));
    }

    fn debug<T: fmt::Debug>(&mut self, what: &str, value: &T) {
        self.texts.push((what.to_owned(), format!("{value:?}")));
    }
}

/// Runs the scenario (see the module docs). `logs` must be installed before the run.
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn acl_checks_with<F>(
    options: AclOptions,
    connect: F,
    logs: &LogCapture,
) -> Result<AclReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let started = Instant::now();
    let server = RedisServer::builder()
        .password(Some(ADMIN_PASSWORD.to_owned()))
        .spawn()
        .await?;
    let mut admin = admin_connection(&server).await?;
    admin_command(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            ACL_USER,
            "on",
            &format!(">{ACL_PASSWORD}"),
            "~*",
            "&*",
            "+@all",
        ],
    )
    .await?;
    let mut c = Checks {
        checks: Vec::new(),
        texts: Vec::new(),
    };
    let config = |username: &str, password: &str| {
        server
            .connection_config()
            .with_username(username.to_owned())
            .with_password(password.to_owned())
            .with_socket_timeout(options.socket_timeout)
            .with_socket_connect_timeout(options.socket_timeout)
    };
    let right = config(ACL_USER, ACL_PASSWORD);
    c.debug("ConnectionConfig", &right);

    // 1. Right credentials.
    let backend = connect(right.clone())
        .await
        .map_err(ScenarioFailure::Connect)?;
    let backend_name = backend.name();
    let client = ResilientClient::builder("acl", backend).build()?;
    c.debug("client", &client);
    let wrote = client.set("acl:key", "value", SetOptions::default()).await;
    let read = client.get("acl:key").await;
    c.check(
        "right password: write and read",
        matches!((&wrote, &read), (Ok(true), Ok(Some(v))) if v.as_ref() == b"value"),
        format!("SET {wrote:?}, GET {read:?}"),
    );
    let whoami = client.execute(raw(&["ACL", "WHOAMI"])).await;
    c.check(
        "right password: ACL WHOAMI is alice",
        matches!(&whoami, Ok(Value::Bytes(b)) if b.as_ref() == ACL_USER.as_bytes())
            || matches!(&whoami, Ok(Value::Status(s)) if s == ACL_USER),
        format!("{whoami:?}"),
    );

    // 2. Wrong credentials at connect.
    for (name, username, password) in [
        (
            "wrong password at connect is Auth",
            ACL_USER,
            WRONG_PASSWORD,
        ),
        ("unknown user at connect is Auth", "mallory", ACL_PASSWORD),
    ] {
        let wrong = config(username, password);
        c.debug("ConnectionConfig", &wrong);
        match connect(wrong).await {
            Err(e) => {
                c.check(name, e.kind() == ErrorKind::Auth, format!("{e}"));
                c.shown("connect error", &e);
            }
            Ok(backend) => {
                // A backend that connects lazily must fail its first call with Auth.
                let first = backend.execute(Command::Ping).await;
                c.check(
                    name,
                    matches!(&first, Err(e) if e.kind() == ErrorKind::Auth),
                    format!("connect succeeded; first PING: {first:?}"),
                );
                if let Err(e) = &first {
                    c.shown("first call error", e);
                }
            }
        }
    }

    // 3. The connected client's password becomes wrong.
    admin_command(&mut admin, &["ACL", "LOG", "RESET"]).await?;
    admin_command(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            ACL_USER,
            "resetpass",
            &format!(">{ROTATED_PASSWORD}"),
        ],
    )
    .await?;
    let killed = admin_command(&mut admin, &["CLIENT", "KILL", "USER", ACL_USER]).await?;
    c.check(
        "the client's connection was killed",
        matches!(killed, RespReply::Int(n) if n >= 1),
        format!("CLIENT KILL answered {killed:?}"),
    );
    let mut calls = Vec::new();
    let mut streak = 0;
    let mut breaker_opened = false;
    // One call notices the dead connection (a driver may only learn it then) and fails
    // as a lost connection, which the breaker rightly counts: nobody knows yet that the
    // password is the reason. Then the driver reconnects with the old password; once the
    // server has refused it (its ACL LOG says so), the client knows, and every call must
    // say `Auth`. So at most two counted failures: the breaker (threshold 3) never opens
    // because of the password, and the run does not depend on timing.
    let first = client
        .set("acl:key", "changed", SetOptions::default())
        .await;
    calls.push(match &first {
        Ok(_) => "Ok".to_owned(),
        Err(e) => {
            c.shown("call error", e);
            e.kind()
                .map_or_else(|| format!("{e}"), |k| format!("{k:?}"))
        }
    });
    let refused = wait_for_refused_login(&mut admin, options.step_deadline).await?;
    c.check(
        "the client reconnected with the old password and was refused (ACL LOG)",
        refused,
        format!("ACL LOG has an entry: {refused}"),
    );
    let deadline = Instant::now() + options.step_deadline;
    while streak < options.auth_streak && Instant::now() < deadline {
        let result = client
            .set("acl:key", "changed", SetOptions::default())
            .await;
        breaker_opened |= client.circuit_state() != CircuitState::Closed;
        match &result {
            Err(e) => {
                c.shown("call error", e);
                let kind = match e {
                    resilience_core::Error::CircuitOpen { .. } => "CircuitOpen".to_owned(),
                    other => other
                        .kind()
                        .map_or_else(|| format!("{other}"), |k| format!("{k:?}")),
                };
                streak = if e.kind() == Some(ErrorKind::Auth) {
                    streak + 1
                } else {
                    0
                };
                calls.push(kind);
            }
            Ok(_) => {
                streak = 0;
                calls.push("Ok".to_owned());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.check(
        "a client holding a wrong password gets Auth",
        streak >= options.auth_streak,
        format!(
            "{streak} Auth in a row at the end, after {} calls",
            calls.len()
        ),
    );
    c.check(
        "Auth failures never open the breaker",
        !breaker_opened && client.circuit_state() == CircuitState::Closed,
        format!(
            "breaker left Closed during the run: {breaker_opened}; now {:?}",
            client.circuit_state()
        ),
    );

    // The password is restored: the same client works again.
    admin_command(
        &mut admin,
        &["ACL", "SETUSER", ACL_USER, &format!(">{ACL_PASSWORD}")],
    )
    .await?;
    let restored = Instant::now();
    let deadline = restored + options.step_deadline;
    let mut recovered_after = None;
    let mut last = None;
    while Instant::now() < deadline {
        match client.set("acl:key", "again", SetOptions::default()).await {
            Ok(_) => {
                recovered_after = Some(restored.elapsed());
                break;
            }
            Err(e) => {
                c.shown("call error", &e);
                last = Some(e);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.check(
        "the same client works again once the password is right",
        recovered_after.is_some(),
        format!("after {recovered_after:?}; last error {last:?}"),
    );
    c.debug("client", &client);
    c.debug("stats", &client.stats());
    drop(client);

    // 4. No secret anywhere.
    let leaks: Vec<String> = c
        .texts
        .iter()
        .filter_map(|(what, text)| shown_secret(text).map(|s| format!("{what} shows {s:?}")))
        .collect();
    c.check(
        "no password in any error, config, backend or client Debug/Display",
        leaks.is_empty(),
        if leaks.is_empty() {
            format!("{} texts scanned", c.texts.len())
        } else {
            leaks.join("; ")
        },
    );
    let log = logs.contents();
    let log_leaks: Vec<&str> = log.lines().filter(|l| shown_secret(l).is_some()).collect();
    c.check(
        "no password in the TRACE log",
        log_leaks.is_empty(),
        if log_leaks.is_empty() {
            format!("{} lines scanned", log.lines().count())
        } else {
            format!("{} lines, first: {:?}", log_leaks.len(), log_leaks[0])
        },
    );
    c.check(
        "the log capture is live",
        !log.is_empty(),
        format!("{} bytes", log.len()),
    );

    Ok(AclReport {
        backend: backend_name,
        checks: c.checks,
        wrong_password_calls: calls,
        breaker_opened,
        recovered_after,
        log_bytes: log.len(),
        elapsed: started.elapsed(),
    })
}

/// Polls `ACL LOG` until it holds an entry (the log was reset before the password
/// changed, so an entry is a refused login), up to `within`.
async fn wait_for_refused_login(
    admin: &mut RespConnection,
    within: Duration,
) -> Result<bool, ScenarioFailure> {
    let deadline = Instant::now() + within;
    loop {
        if let RespReply::Array(Some(entries)) = admin_command(admin, &["ACL", "LOG"]).await?
            && !entries.is_empty()
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn raw(args: &[&str]) -> Command {
    Command::Raw {
        args: args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect(),
        keys: Vec::new(),
        write: false,
        idempotent: true,
    }
}

async fn admin_connection(server: &RedisServer) -> Result<RespConnection, ScenarioFailure> {
    let mut conn = RespConnection::connect(server.addr())
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("admin connection: {e}")))?;
    admin_command(&mut conn, &["AUTH", ADMIN_PASSWORD]).await?;
    Ok(conn)
}

/// One admin command; an error reply or I/O error fails the run. Error texts name only
/// the command, never its arguments (which hold passwords).
async fn admin_command(
    conn: &mut RespConnection,
    args: &[&str],
) -> Result<RespReply, ScenarioFailure> {
    let what = args.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    match tokio::time::timeout(Duration::from_secs(2), conn.command(args)).await {
        Ok(Ok(RespReply::Error(e))) => Err(ScenarioFailure::Setup(format!("{what}: {e}"))),
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(ScenarioFailure::Setup(format!("{what}: {e}"))),
        Err(_) => Err(ScenarioFailure::Setup(format!("{what}: no answer"))),
    }
}
