//! [`RedisServer`]: one `redis-server` process on a free port, in its own directory.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use resilience_core::{ConnectionConfig, TlsConfig};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::error::SpawnError;
use super::resp::{RespConnection, RespReply};
use super::tls::{self, TlsClientAuth, TlsFiles};

/// How long a server may take to answer `PING` after it was started, by default.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many fresh ports [`RedisServerBuilder::spawn`] tries when the one it picked was taken.
pub(super) const PORT_ATTEMPTS: u32 = 5;

/// Pause between two readiness checks.
pub(super) const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Settings for a [`RedisServer`]; build one with [`RedisServer::builder`].
#[derive(Clone, Debug)]
pub struct RedisServerBuilder {
    binary: OsString,
    appendfsync_always: bool,
    password: Option<String>,
    args: Vec<(String, String)>,
    startup_timeout: Duration,
    tls: Option<tls::TlsSource>,
    tls_auth_clients: TlsClientAuth,
    cpus: Vec<usize>,
    acl_users: Vec<AclUser>,
}

/// An ACL user a spawned server has from its start (and after every restart): its name,
/// its password, and its ACL rules as `ACL SETUSER` takes them (`~app:* -@all +@read`).
/// See [`RedisServerBuilder::acl_user`].
#[derive(Clone, Debug)]
pub struct AclUser {
    /// The user name.
    pub name: String,
    /// Its password.
    pub password: String,
    /// Its rules, space-separated.
    pub rules: String,
}

impl AclUser {
    /// The ACL file line for this user: enabled, with its password and rules.
    fn acl_line(&self) -> String {
        format!("user {} on >{} {}", self.name, self.password, self.rules)
    }
}

/// The environment variable naming the server executable every spawner of this module
/// runs: a path, or a name looked up on `PATH` (a Valkey `valkey-server` works too).
pub const SERVER_BINARY_ENV: &str = "TESTKIT_REDIS_SERVER";

/// The server executable to run: [`SERVER_BINARY_ENV`] when it is set and not empty,
/// else `redis-server` from `PATH`.
pub fn server_binary() -> OsString {
    std::env::var_os(SERVER_BINARY_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from("redis-server"))
}

impl Default for RedisServerBuilder {
    fn default() -> Self {
        RedisServerBuilder {
            binary: server_binary(),
            appendfsync_always: false,
            password: None,
            args: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            tls: None,
            tls_auth_clients: TlsClientAuth::No,
            cpus: Vec::new(),
            acl_users: Vec::new(),
        }
    }
}

impl RedisServerBuilder {
    /// With `true`, the server keeps an append-only file and fsyncs it on every write
    /// (`--appendonly yes --appendfsync always`), so every acknowledged write survives a
    /// SIGKILL and [`RedisServer::restart`]. Default `false`: no persistence at all.
    pub fn appendfsync_always(mut self, on: bool) -> Self {
        self.appendfsync_always = on;
        self
    }

    /// Requires clients to authenticate with this password (`--requirepass`).
    pub fn password(mut self, password: Option<String>) -> Self {
        self.password = password;
        self
    }

    /// Adds a configuration directive, passed as `--name value` after the built-in ones
    /// (so it overrides them), e.g. `.arg("maxmemory", "10mb")`.
    pub fn arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.args.push((name.into(), value.into()));
        self
    }

    /// How long to wait for the server to answer `PING` (default [`DEFAULT_STARTUP_TIMEOUT`]).
    /// Also bounds each [`RedisServer::restart`].
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// The `redis-server` executable to run (default: [`server_binary`], i.e. the
    /// [`SERVER_BINARY_ENV`] variable or `redis-server` from `PATH`).
    pub fn binary(mut self, path: impl Into<OsString>) -> Self {
        self.binary = path.into();
        self
    }

    /// Serves TLS only (`--port 0 --tls-port P`) with a CA, a server certificate and a
    /// client certificate generated into the server's directory at spawn (see
    /// [`TlsFiles::generate`]; read them back with [`RedisServer::tls_files`]).
    pub fn tls_generated(mut self) -> Self {
        self.tls = Some(tls::TlsSource::Generated);
        self
    }

    /// Serves TLS only (`--port 0 --tls-port P`) with these certificate files.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(tls::TlsSource::Files(files));
        self
    }

    /// Whether a TLS server requires client certificates (`--tls-auth-clients`; default
    /// [`TlsClientAuth::No`]). Ignored without TLS.
    pub fn tls_auth_clients(mut self, auth: TlsClientAuth) -> Self {
        self.tls_auth_clients = auth;
        self
    }

    /// Runs the server, every thread of it, on these CPUs only (Linux; see
    /// [`crate::affinity`]), also after [`RedisServer::restart`]. Empty (the default) leaves
    /// it where the OS puts it. A benchmark uses this to keep its client off the server's
    /// core; spawning fails if the CPUs cannot be set.
    pub fn cpus(mut self, cpus: Vec<usize>) -> Self {
        self.cpus = cpus;
        self
    }

    /// Adds an ACL user. The server then loads its users from an ACL file in its directory
    /// (`aclfile`), so they exist from its start and after every
    /// [`restart`](RedisServer::restart); the default user keeps every right (and the
    /// [`password`](Self::password), if one is set), so the spawner's own checks still work.
    pub fn acl_user(mut self, user: AclUser) -> Self {
        self.acl_users.push(user);
        self
    }

    /// Starts the server on a free port and waits until it answers `PING`.
    ///
    /// # Errors
    ///
    /// `SpawnError` naming the step that failed (no binary, a port in use, a server
    /// that did not answer within its startup timeout, a command the server refused).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn spawn(self) -> Result<RedisServer, SpawnError> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-redis-")
            .tempdir()?;
        let tls_files = match &self.tls {
            None => None,
            Some(tls::TlsSource::Generated) => Some(TlsFiles::generate(dir.path())?),
            Some(tls::TlsSource::Files(files)) => Some(files.clone()),
        };
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match start(&self, tls_files.as_ref(), dir.path(), port).await {
                Ok(child) => {
                    return Ok(RedisServer {
                        child: Some(child),
                        port,
                        config: self,
                        tls_files,
                        dir,
                    });
                }
                Err(Failure::AddrInUse) => continue,
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
        Err(SpawnError::PortsTaken {
            attempts: PORT_ATTEMPTS,
        })
    }
}

/// A running (or stopped) `redis-server` owned by a test. Dropping it kills the process
/// and deletes its directory.
#[derive(Debug)]
pub struct RedisServer {
    // Field order matters: the process is killed before the directory is removed.
    child: Option<Child>,
    port: u16,
    config: RedisServerBuilder,
    tls_files: Option<TlsFiles>,
    dir: TempDir,
}

impl RedisServer {
    /// Settings for a new server: no persistence, no password, no extra arguments.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// Starts a server with the default settings (see [`RedisServer::builder`]).
    ///
    /// # Errors
    ///
    /// `SpawnError` naming the step that failed (no binary, a port in use, a server
    /// that did not answer within its startup timeout, a command the server refused).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn spawn() -> Result<RedisServer, SpawnError> {
        Self::builder().spawn().await
    }

    /// The TCP port; it stays the same across [`restart`](Self::restart)s.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many times the server has run `command` (lower case, as `INFO commandstats`
    /// names it: `get`, `set`) since it started; 0 when it never ran it. Asked over an
    /// admin connection of its own (the default user), so it works whatever user the
    /// clients under test connect as.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NotReady`] when the server did not answer `INFO commandstats`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future only drops its admin connection.
    pub async fn command_calls(&self, command: &str) -> Result<u64, SpawnError> {
        super::cluster::command_calls_on(self.port, command)
            .await
            .map_err(|log| SpawnError::NotReady {
                port: self.port,
                waited: Duration::ZERO,
                log,
            })
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// `redis://127.0.0.1:port/` (`rediss://` for a TLS server). It holds no password
    /// and no certificate paths: see [`password`](Self::password) and
    /// [`connection_config`](Self::connection_config).
    pub fn url(&self) -> String {
        let scheme = if self.tls_files.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// `rediss://127.0.0.1:port/`, for a TLS server (`None` otherwise). A config parsed
    /// from it trusts the system roots only: set `tls.ca_file` to
    /// [`ca_cert_path`](Self::ca_cert_path) to reach this server.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_files
            .as_ref()
            .map(|_| format!("rediss://127.0.0.1:{}/", self.port))
    }

    /// The certificate files of a TLS server (`None` without TLS).
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls_files.as_ref()
    }

    /// The CA certificate that signed a TLS server's certificate (`None` without TLS).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.tls_files.as_ref().map(|f| f.ca_cert.as_path())
    }

    /// A client certificate and its key, signed by the server's CA, for mutual TLS
    /// (`None` without TLS or when the [`TlsFiles`] have none).
    pub fn client_cert_paths(&self) -> Option<(&Path, &Path)> {
        let files = self.tls_files.as_ref()?;
        Some((files.client_cert.as_deref()?, files.client_key.as_deref()?))
    }

    /// The password set with [`RedisServerBuilder::password`], if any.
    pub fn password(&self) -> Option<&str> {
        self.config.password.as_deref()
    }

    /// Connection settings for this server (host, port and password; the rest default).
    /// For a TLS server, `tls` trusts exactly the server's CA and carries the client
    /// certificate when there is one (so it also passes `tls-auth-clients yes`).
    pub fn connection_config(&self) -> ConnectionConfig {
        let mut config = ConnectionConfig::default()
            .with_host("127.0.0.1")
            .with_port(self.port);
        config.password = self.config.password.clone();
        config.tls = self.tls_files.as_ref().map(|files| {
            let mut tls = TlsConfig::default().with_ca_file(files.ca_cert.clone());
            tls.client_cert_file = files.client_cert.clone();
            tls.client_key_file = files.client_key.clone();
            tls
        });
        config
    }

    /// The server's working directory (where its AOF and log live).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// The process id, while a process is started (`None` after [`stop`](Self::stop)).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether the process is alive (it may have been killed from outside).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the process with SIGKILL, like a crash, and waits until it has exited. Data
    /// not yet in the AOF is lost. Stopping a stopped server does nothing.
    ///
    /// # Errors
    ///
    /// `SpawnError` naming the step that failed (no binary, a port in use, a server
    /// that did not answer within its startup timeout, a command the server refused).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn stop(&mut self) -> Result<(), SpawnError> {
        if let Some(mut child) = self.child.take() {
            kill(&mut child).await?;
        }
        Ok(())
    }

    /// Starts the server again on the same port and in the same directory (so an AOF is
    /// replayed) and waits until it answers `PING`. A server still running is stopped
    /// first. While the port cannot be bound yet, starting is retried until the startup
    /// timeout.
    ///
    /// # Errors
    ///
    /// `SpawnError` naming the step that failed (no binary, a port in use, a server
    /// that did not answer within its startup timeout, a command the server refused).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn restart(&mut self) -> Result<(), SpawnError> {
        self.stop().await?;
        let deadline = Instant::now() + self.config.startup_timeout;
        loop {
            match start(
                &self.config,
                self.tls_files.as_ref(),
                self.dir.path(),
                self.port,
            )
            .await
            {
                Ok(child) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(Failure::AddrInUse) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(Failure::AddrInUse) => {
                    return Err(SpawnError::NotReady {
                        port: self.port,
                        waited: self.config.startup_timeout,
                        log: format!("port still in use; {}", log_tail(self.dir.path())),
                    });
                }
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
    }
}

pub(super) const LOG_FILE: &str = "redis.log";
pub(super) const ACL_FILE: &str = "users.acl";
pub(super) const STDERR_FILE: &str = "output.log";

pub(super) enum Failure {
    AddrInUse,
    Fatal(SpawnError),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Fatal(SpawnError::Io(e))
    }
}

/// A port the kernel considers free right now. Another process can take it before the
/// caller binds it: a caller that binds later must retry with a fresh one when it is taken
/// (as [`RedisServer::spawn`] does).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Starts `cmd` (a `redis-server`); a missing binary is [`SpawnError::NotFound`], which
/// says how to install it.
pub(super) fn spawn_process(cmd: &mut Command) -> Result<Child, SpawnError> {
    cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SpawnError::NotFound,
        _ => SpawnError::Io(e),
    })
}

pub(super) async fn kill(child: &mut Child) -> std::io::Result<()> {
    match child.start_kill() {
        Ok(()) => {}
        // Already exited and reaped: nothing to kill.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {}
        Err(e) => return Err(e),
    }
    child.wait().await.map(|_| ())
}

/// Starts one process on `port` and waits until it is ready.
pub(super) async fn start(
    config: &RedisServerBuilder,
    tls: Option<&TlsFiles>,
    dir: &Path,
    port: u16,
) -> Result<Child, Failure> {
    // Truncate the logs so an old "Address already in use" is not misread.
    std::fs::write(dir.join(LOG_FILE), b"")?;
    let stderr = std::fs::File::create(dir.join(STDERR_FILE))?;
    let stdout = stderr.try_clone()?;
    let mut cmd = Command::new(&config.binary);
    match tls {
        None => {
            cmd.arg("--port").arg(port.to_string());
        }
        Some(files) => {
            cmd.args(["--port", "0", "--tls-port"])
                .arg(port.to_string())
                .arg("--tls-cert-file")
                .arg(&files.server_cert)
                .arg("--tls-key-file")
                .arg(&files.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&files.ca_cert)
                .arg("--tls-auth-clients")
                .arg(config.tls_auth_clients.as_redis_arg());
        }
    }
    cmd.args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join(LOG_FILE));
    if config.appendfsync_always {
        cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        cmd.args(["--appendonly", "no"]);
    }
    if config.acl_users.is_empty() {
        if let Some(password) = &config.password {
            cmd.arg("--requirepass").arg(password);
        }
    } else {
        // With an ACL file the default user is one of its lines, password included.
        let default_user = match &config.password {
            Some(password) => format!("user default on >{password} ~* &* +@all"),
            None => "user default on nopass ~* &* +@all".to_owned(),
        };
        let mut acl = default_user;
        for user in &config.acl_users {
            acl.push('\n');
            acl.push_str(&user.acl_line());
        }
        acl.push('\n');
        let path = dir.join(ACL_FILE);
        std::fs::write(&path, acl)?;
        cmd.arg("--aclfile").arg(path);
    }
    for (name, value) in &config.args {
        cmd.arg(format!("--{name}")).arg(value);
    }
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true);
    let mut child = spawn_process(&mut cmd).map_err(Failure::Fatal)?;

    let started = Instant::now();
    let deadline = started + config.startup_timeout;
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    loop {
        if let Some(status) = child.try_wait()? {
            let log = log_tail(dir);
            if log.contains("Address already in use") {
                return Err(Failure::AddrInUse);
            }
            return Err(Failure::Fatal(SpawnError::Exited {
                port,
                status: status.to_string(),
                log,
            }));
        }
        if let Some(pid) = child.id() {
            let ready = match tls {
                None => {
                    let probe = is_ready(addr, config.password.as_deref(), pid);
                    tokio::time::timeout(Duration::from_secs(1), probe).await
                }
                Some(files) => {
                    let probe = is_ready_tls(port, files, config.password.as_deref(), pid);
                    tokio::time::timeout(Duration::from_secs(2), probe).await
                }
            };
            if let Ok(true) = ready {
                if !config.cpus.is_empty() {
                    // After PING: every thread the server starts at startup exists by now.
                    if let Err(e) = crate::affinity::pin_process(pid, &config.cpus) {
                        kill(&mut child).await?;
                        return Err(Failure::Fatal(SpawnError::Io(e)));
                    }
                }
                return Ok(child);
            }
        }
        if Instant::now() >= deadline {
            kill(&mut child).await?;
            return Err(Failure::Fatal(SpawnError::NotReady {
                port,
                waited: started.elapsed(),
                log: log_tail(dir),
            }));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whether the server on `addr` answers `PING` and is the process `pid`.
pub(super) async fn is_ready(addr: SocketAddr, password: Option<&str>, pid: u32) -> bool {
    let Ok(mut conn) = RespConnection::connect(addr).await else {
        return false;
    };
    if let Some(password) = password {
        match conn.command(&["AUTH", password]).await {
            Ok(RespReply::Simple(ok)) if ok == "OK" => {}
            _ => return false,
        }
    }
    match conn.command(&["PING"]).await {
        Ok(RespReply::Simple(pong)) if pong == "PONG" => {}
        _ => return false,
    }
    match conn.command(&["INFO", "server"]).await {
        Ok(RespReply::Bulk(Some(info))) => String::from_utf8_lossy(&info)
            .lines()
            .any(|line| line.trim() == format!("process_id:{pid}")),
        _ => false,
    }
}

/// Whether the TLS server on `127.0.0.1:port` answers `INFO server` (so it also answers
/// `PING`) over TLS and is the process `pid`, asked with `redis-cli --tls`.
pub(super) async fn is_ready_tls(
    port: u16,
    files: &TlsFiles,
    password: Option<&str>,
    pid: u32,
) -> bool {
    let mut cli = Command::new("redis-cli");
    cli.args(["--tls", "-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .arg("--cacert")
        .arg(&files.ca_cert);
    if let (Some(cert), Some(key)) = (&files.client_cert, &files.client_key) {
        cli.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    if let Some(password) = password {
        // Through the environment, so it is not visible in the process list.
        cli.env("REDISCLI_AUTH", password);
    }
    cli.args(["INFO", "server"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match cli.output().await {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|line| line.trim() == format!("process_id:{pid}")),
        _ => false,
    }
}

/// The last lines of the server's log and stderr, for error messages.
pub(super) fn log_tail(dir: &Path) -> String {
    let mut out = String::new();
    for file in [LOG_FILE, STDERR_FILE] {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(20);
            for line in &lines[from..] {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}
