//! Where and how to connect: one [`ConnectionConfig`] shared by every backend.
//!
//! Its guide is in the docs of its main type.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, ReadPolicy};

/// TLS settings (`rediss://`).
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`TlsConfig::default().with_…(…)`), or assign fields of a default value.
#[derive(Clone, Default, PartialEq, Eq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM file of the certificate authorities to trust; `None` uses the system roots.
    #[setters(strip_option, into)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS.
    #[setters(strip_option, into)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[setters(strip_option, into)]
    pub client_key_file: Option<PathBuf>,
    /// Skip certificate verification. Only for tests.
    pub insecure: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field(
                "client_key_file",
                &self.client_key_file.as_ref().map(|_| "<redacted>"),
            )
            .field("insecure", &self.insecure)
            .finish()
    }
}

mod sentinel_url;

/// Sentinel settings: which master to ask the sentinels for.
///
/// With `ConnectionConfig::sentinel` set, a backend asks the sentinels (in order, each
/// bounded by `socket_connect_timeout`) for the current address of `master_name`, connects
/// there with the config's `username`, `password`, `db` and `tls`, and asks again when the
/// master stops answering or turns read-only (a failover), without recreating the client.
/// The config's `host` and `port` are not used to connect in this mode.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`SentinelConfig::default().with_…(…)`), or assign fields of a default value.
#[derive(Clone, Default, PartialEq, Eq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct SentinelConfig {
    /// The master's name as the sentinels know it.
    #[setters(into)]
    pub master_name: String,
    /// Sentinel addresses.
    pub nodes: Vec<(String, u16)>,
    /// ACL user name for the sentinels themselves (not the data nodes).
    #[setters(strip_option, into)]
    pub username: Option<String>,
    /// Password for the sentinels themselves (`None`: the sentinels need none). Never
    /// printed by `Debug`.
    #[setters(strip_option, into)]
    pub password: Option<String>,
}

impl fmt::Debug for SentinelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelConfig")
            .field("master_name", &self.master_name)
            .field("nodes", &self.nodes)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Connection settings shared by all backends.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`ConnectionConfig::default().with_…(…)`), or assign fields of a default value.
///
/// It parses from `redis://` and `rediss://` URLs
/// (`redis://[[username]:password@]host[:port][/db][?socket_timeout=2.0&socket_connect_timeout=2.0]`;
/// `rediss://` also takes `ca_file=PATH`, `cert_file=PATH`, `key_file=PATH` and `insecure=true`;
/// both take `client_tracking=true` for the client-side cache)
/// and its `Debug` output never shows the password.
///
/// Sentinel deployments parse from `redis+sentinel://` URLs (see [`SentinelConfig`]):
/// `redis+sentinel://[[username]:password@]s1[:port][,s2[:port]...]/master_name[/db][?params]`.
/// The sentinels are listed in the host part (default port 26379), the master's name is the
/// first path segment, and the credentials and `db` are the master's (the data nodes').
/// Besides the `redis://` parameters it takes `sentinel_username` and `sentinel_password`,
/// the credentials of the sentinels themselves (none by default).
///
/// ## Redis Cluster
///
/// `cluster=` names more seed nodes and switches to cluster mode:
/// `redis://h1:p1?cluster=h2:p2,h3:p3` gives `cluster_nodes = [(h1, p1), (h2, p2), (h3, p3)]`
/// (the URL's own host first). `cluster=true` (or `1`) is cluster mode with the URL's host
/// as the only seed. IPv6 seeds are written `[::1]:7000`. A cluster has no databases but 0.
/// `read_from=prefer_replica` (or `replica`) lets replicas answer reads ([`ReadPolicy`]).
#[derive(Clone, PartialEq, Eq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Host name or address. Default `"localhost"`.
    #[setters(into)]
    pub host: String,
    /// Port. Default 6379.
    pub port: u16,
    /// Database number. Default 0.
    pub db: i64,
    /// ACL user name.
    #[setters(strip_option, into)]
    pub username: Option<String>,
    /// Password. Never printed by `Debug`.
    #[setters(strip_option, into)]
    pub password: Option<String>,
    /// Timeout for each command's reply. Default 2 s.
    pub socket_timeout: Duration,
    /// Timeout for each connect and reconnect. Default 2 s.
    pub socket_connect_timeout: Duration,
    /// TLS, when connecting with `rediss://`.
    #[setters(strip_option)]
    pub tls: Option<TlsConfig>,
    /// Cluster seed nodes; non-empty means cluster mode.
    pub cluster_nodes: Vec<(String, u16)>,
    /// Cluster mode: where to dial a node the cluster names, for deployments where the
    /// addresses the nodes announce are not reachable as such (NAT, port forwarding, a
    /// proxy per node). Each pair maps an announced `host:port` (as `CLUSTER SLOTS` and
    /// `MOVED` name it) to the `host:port` to connect to; seeds are looked up too. An
    /// address not in the map is dialed as announced. Default empty.
    pub cluster_address_map: Vec<(String, String)>,
    /// Sentinel mode.
    #[setters(strip_option)]
    pub sentinel: Option<SentinelConfig>,
    /// Connect with RESP3 and `CLIENT TRACKING` on, so a `ResilientClient` with a client
    /// cache ([`CacheConfig`](crate::CacheConfig)) gets the server's invalidations. Default `false` (RESP2,
    /// no tracking). URL: `client_tracking=true` (or `client_cache=true`).
    pub client_tracking: bool,
    /// Cluster mode: which node of a shard answers a read (see [`ReadPolicy`]).
    /// Default [`ReadPolicy::Primary`]. URL: `read_from=primary|prefer_replica|replica`.
    pub read_policy: ReadPolicy,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            host: "localhost".to_owned(),
            port: 6379,
            db: 0,
            username: None,
            password: None,
            socket_timeout: Duration::from_secs(2),
            socket_connect_timeout: Duration::from_secs(2),
            tls: None,
            cluster_nodes: Vec::new(),
            cluster_address_map: Vec::new(),
            sentinel: None,
            client_tracking: false,
            read_policy: ReadPolicy::Primary,
        }
    }
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("socket_timeout", &self.socket_timeout)
            .field("socket_connect_timeout", &self.socket_connect_timeout)
            .field("tls", &self.tls)
            .field("cluster_nodes", &self.cluster_nodes)
            .field("cluster_address_map", &self.cluster_address_map)
            .field("sentinel", &self.sentinel)
            .field("client_tracking", &self.client_tracking)
            .field("read_policy", &self.read_policy)
            .finish()
    }
}

impl ConnectionConfig {
    /// Parses a `redis://`, `rediss://` or `redis+sentinel://` URL (the forms are in the
    /// type's docs).
    ///
    /// Errors are [`Error::InvalidInput`] and never echo the password.
    pub fn from_url(input: &str) -> Result<Self, Error> {
        if let Some(rest) = sentinel_url::strip_scheme(input) {
            return sentinel_url::parse(rest);
        }
        Self::parse_url(input, None)
    }

    /// Parses a `redis://` or `rediss://` URL; with `sentinel`, the result is in sentinel
    /// mode and the sentinel credential parameters are accepted.
    fn parse_url(input: &str, sentinel: Option<SentinelConfig>) -> Result<Self, Error> {
        let url = url::Url::parse(input)
            .map_err(|e| Error::InvalidInput(format!("not a redis URL: {e}")))?;
        let tls = match url.scheme() {
            "redis" => None,
            "rediss" => Some(TlsConfig::default()),
            other => {
                return Err(Error::InvalidInput(format!(
                    "unsupported URL scheme {other:?}: expected redis:// or rediss://"
                )));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::InvalidInput("redis URL has no host".to_owned()))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut config = ConnectionConfig {
            host,
            port: url.port().unwrap_or(6379),
            tls,
            sentinel,
            ..ConnectionConfig::default()
        };
        if !url.username().is_empty() {
            config.username = Some(percent_decode(url.username())?);
        }
        if let Some(password) = url.password() {
            config.password = Some(percent_decode(password)?);
        }
        let path = url.path().trim_matches('/');
        if !path.is_empty() {
            config.db = path
                .parse::<i64>()
                .ok()
                .filter(|db| *db >= 0)
                .ok_or_else(|| {
                    Error::InvalidInput(format!("database must be a whole number, got {path:?}"))
                })?;
        }
        let mut cluster = false;
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "socket_timeout" | "timeout" => {
                    config.socket_timeout = parse_seconds(&name, &value)?
                }
                "socket_connect_timeout" | "connect_timeout" => {
                    config.socket_connect_timeout = parse_seconds(&name, &value)?
                }
                "db" => {
                    config.db =
                        value
                            .parse::<i64>()
                            .ok()
                            .filter(|db| *db >= 0)
                            .ok_or_else(|| {
                                Error::InvalidInput(format!(
                                    "db must be a whole number, got {value:?}"
                                ))
                            })?
                }
                "client_tracking" | "client_cache" => {
                    config.client_tracking = match value.as_ref() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(Error::InvalidInput(format!(
                                "{name} must be true or false, got {value:?}"
                            )));
                        }
                    }
                }
                "read_from" => {
                    config.read_policy = ReadPolicy::parse(&value).ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "read_from must be primary, prefer_replica or replica, got {value:?}"
                        ))
                    })?
                }
                "cluster" => {
                    cluster = true;
                    parse_cluster_nodes(&value, &mut config.cluster_nodes)?;
                }
                "insecure" | "ca_file" | "cert_file" | "key_file" => {
                    let Some(tls) = config.tls.as_mut() else {
                        return Err(Error::InvalidInput(format!(
                            "URL parameter {name:?} needs a rediss:// URL"
                        )));
                    };
                    match name.as_ref() {
                        "insecure" => tls.insecure = value == "true" || value == "1",
                        "ca_file" => tls.ca_file = Some(PathBuf::from(value.as_ref())),
                        "cert_file" => tls.client_cert_file = Some(PathBuf::from(value.as_ref())),
                        _ => tls.client_key_file = Some(PathBuf::from(value.as_ref())),
                    }
                }
                "sentinel_username" | "sentinel_password" if config.sentinel.is_some() => {
                    if let Some(sentinel) = config.sentinel.as_mut() {
                        let value = Some(value.into_owned()).filter(|v| !v.is_empty());
                        if name == "sentinel_username" {
                            sentinel.username = value;
                        } else {
                            sentinel.password = value;
                        }
                    }
                }
                other => {
                    return Err(Error::InvalidInput(format!(
                        "unknown redis URL parameter {other:?}"
                    )));
                }
            }
        }
        if cluster {
            let own = (config.host.clone(), config.port);
            config.cluster_nodes.retain(|node| *node != own);
            config.cluster_nodes.insert(0, own);
            if config.db != 0 {
                return Err(Error::InvalidInput(
                    "a Redis Cluster has only database 0".to_owned(),
                ));
            }
        }
        Ok(config)
    }

    /// Whether this is a Redis Cluster configuration (`cluster_nodes` is not empty).
    pub fn is_cluster(&self) -> bool {
        !self.cluster_nodes.is_empty()
    }

    /// `host:port` of the single server (not cluster or sentinel).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether TLS is on.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// Adds the seeds of a `cluster=` parameter (`h:p,h:p`; `true` or `1` adds none) to
/// `nodes`. The URL's own host is added by the caller.
fn parse_cluster_nodes(value: &str, nodes: &mut Vec<(String, u16)>) -> Result<(), Error> {
    let bad = |what: &str| {
        Error::InvalidInput(format!(
            "cluster= takes host:port[,host:port...] or true, got {what:?}"
        ))
    };
    if value == "true" || value == "1" {
        return Ok(());
    }
    let mut added = 0;
    for item in value.split(',').filter(|s| !s.is_empty()) {
        let (host, port) = item.rsplit_once(':').ok_or_else(|| bad(item))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(item))?;
        if host.is_empty() || host.contains(['/', '?', '#', '@', '[', ']']) {
            return Err(bad(item));
        }
        if !nodes.iter().any(|(h, p)| h == host && *p == port) {
            nodes.push((host.to_owned(), port));
        }
        added += 1;
    }
    if added == 0 {
        return Err(bad(value));
    }
    Ok(())
}

fn percent_decode(s: &str) -> Result<String, Error> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| Error::InvalidInput("URL credentials are not valid UTF-8".to_owned()))
}

fn parse_seconds(name: &str, value: &str) -> Result<Duration, Error> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "{name} must be a positive number of seconds under a day, got {value:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_are_the_seeds() {
        let c = ConnectionConfig::default();
        assert_eq!((c.host.as_str(), c.port, c.db), ("localhost", 6379, 0));
        assert_eq!(c.socket_timeout, Duration::from_secs(2));
        assert_eq!(c.socket_connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn parses_full_url() -> Result<(), Error> {
        let c = ConnectionConfig::from_url(
            "redis://alice:s%40cret@redis.example.com:6380/3?socket_timeout=0.5",
        )?;
        assert_eq!(c.host, "redis.example.com");
        assert_eq!(c.port, 6380);
        assert_eq!(c.db, 3);
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("s@cret"));
        assert_eq!(c.socket_timeout, Duration::from_millis(500));
        assert!(!c.is_tls());
        Ok(())
    }

    #[test]
    fn parses_password_only_and_tls() -> Result<(), Error> {
        let c = ConnectionConfig::from_url("rediss://:pw@127.0.0.1")?;
        assert_eq!(c.username, None);
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert!(c.is_tls());
        assert_eq!(c.port, 6379);
        let c = ConnectionConfig::from_url("redis://[::1]:7000")?;
        assert_eq!(c.host, "::1");
        assert_eq!(c.address(), "[::1]:7000");
        Ok(())
    }

    #[test]
    fn tls_files_come_from_rediss_parameters() -> Result<(), Error> {
        let c = ConnectionConfig::from_url(
            "rediss://localhost:6380?ca_file=/tmp/ca.pem&cert_file=/tmp/c.pem&key_file=/tmp/k.pem",
        )?;
        let tls = c.tls.unwrap_or_default();
        assert_eq!(tls.ca_file, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(tls.client_cert_file, Some(PathBuf::from("/tmp/c.pem")));
        assert_eq!(tls.client_key_file, Some(PathBuf::from("/tmp/k.pem")));
        assert!(!tls.insecure);
        assert!(matches!(
            ConnectionConfig::from_url("redis://localhost?ca_file=/tmp/ca.pem"),
            Err(Error::InvalidInput(_))
        ));
        Ok(())
    }

    #[test]
    fn read_from_sets_the_read_policy() -> Result<(), Error> {
        assert_eq!(
            ConnectionConfig::from_url("redis://h")?.read_policy,
            ReadPolicy::Primary
        );
        assert_eq!(
            ConnectionConfig::from_url("redis://h?cluster=h2:7001&read_from=prefer_replica")?
                .read_policy,
            ReadPolicy::PreferReplica
        );
        assert!(matches!(
            ConnectionConfig::from_url("redis://h?read_from=nearest"),
            Err(Error::InvalidInput(_))
        ));
        Ok(())
    }

    #[test]
    fn client_tracking_is_off_unless_asked() -> Result<(), Error> {
        assert!(!ConnectionConfig::from_url("redis://h")?.client_tracking);
        assert!(ConnectionConfig::from_url("redis://h?client_tracking=true")?.client_tracking);
        assert!(ConnectionConfig::from_url("rediss://h?client_cache=1")?.client_tracking);
        assert!(!ConnectionConfig::from_url("redis://h?client_tracking=false")?.client_tracking);
        assert!(matches!(
            ConnectionConfig::from_url("redis://h?client_tracking=maybe"),
            Err(Error::InvalidInput(_))
        ));
        Ok(())
    }

    #[test]
    fn rejects_bad_urls_with_typed_errors() {
        for bad in [
            "http://localhost",
            "redis://",
            "redis://host/notanumber",
            "redis://host/-1",
            "redis://host?socket_timeout=-1",
            "redis://host?bogus=1",
            "not a url",
        ] {
            assert!(
                matches!(ConnectionConfig::from_url(bad), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn cluster_seeds_come_from_the_cluster_parameter() -> Result<(), Error> {
        let c = ConnectionConfig::from_url(
            "redis://:pw@10.0.0.1:7000?cluster=10.0.0.2:7001,[::1]:7002,10.0.0.1:7000&socket_timeout=0.5",
        )?;
        assert!(c.is_cluster());
        assert_eq!(
            c.cluster_nodes,
            vec![
                ("10.0.0.1".to_owned(), 7000),
                ("10.0.0.2".to_owned(), 7001),
                ("::1".to_owned(), 7002),
            ]
        );
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(c.socket_timeout, Duration::from_millis(500));
        let c = ConnectionConfig::from_url("redis://h:7000?cluster=true")?;
        assert_eq!(c.cluster_nodes, vec![("h".to_owned(), 7000)]);
        assert!(!ConnectionConfig::from_url("redis://h:7000")?.is_cluster());
        for bad in [
            "redis://h?cluster=",
            "redis://h?cluster=nohost",
            "redis://h?cluster=h2:0",
            "redis://h?cluster=h2:99999",
            "redis://h?cluster=:7000",
            "redis://h/2?cluster=true",
        ] {
            assert!(
                matches!(ConnectionConfig::from_url(bad), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn debug_redacts_the_password() -> Result<(), Error> {
        let c = ConnectionConfig::from_url("redis://user:hunter2@localhost")?;
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
        Ok(())
    }

    /// What every successfully parsed URL must satisfy (shared with the `url_config` fuzz
    /// target's properties).
    fn check_parsed(input: &str, c: &ConnectionConfig) -> Result<(), TestCaseError> {
        prop_assert!(c.db >= 0);
        prop_assert!(!c.host.is_empty());
        for t in [c.socket_timeout, c.socket_connect_timeout] {
            prop_assert!(
                t > Duration::ZERO && t < Duration::from_secs(86_400),
                "{:?}",
                t
            );
        }
        // The URL standard drops tabs and newlines anywhere and C0 controls and spaces at
        // the ends, and schemes are case-insensitive.
        let scheme: String = input
            .trim_start_matches(|ch: char| ch <= ' ')
            .chars()
            .filter(|ch| !matches!(ch, '\t' | '\n' | '\r'))
            .take(7)
            .collect();
        prop_assert_eq!(c.is_tls(), scheme.eq_ignore_ascii_case("rediss:"));
        let _ = c.address();
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn arbitrary_input_never_panics(
            input in prop_oneof![
                ".{0,80}",
                "(redis|rediss|REDIS|http)://[a-z0-9:@\\[\\]%./?=&_-]{0,60}",
                "redis\\+sentinel://[a-z0-9:@,\\[\\]%./?=&_-]{0,60}",
                "rediss?://h(:[0-9]{0,6})?(/[0-9a-z-]{0,4})?\\?(socket_timeout|connect_timeout|db|insecure|ca_file|x)=[0-9eE.+-]{0,8}",
            ]
        ) {
            if let Ok(c) = ConnectionConfig::from_url(&input) {
                check_parsed(&input, &c)?;
            }
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_never_echoes_the_password(
            user in "[a-z]{0,8}", pw in "[a-zA-Z0-9]{6,16}", host in "[a-z]{1,12}",
            port in 1u16.., db in 0i64..16, junk in ".{0,40}"
        ) {
            let url = format!("redis://{user}:{pw}@{host}:{port}/{db}");
            let c = ConnectionConfig::from_url(&url);
            prop_assert!(c.is_ok());
            if let Ok(c) = c {
                prop_assert_eq!(c.port, port);
                prop_assert_eq!(c.db, db);
                let shown = format!("{c:?}");
                prop_assert!(!shown.contains(&pw));
            }
            if let Err(e) = ConnectionConfig::from_url(&format!("redis://{user}:{pw}@{junk}")) {
                prop_assert!(!e.to_string().contains(&pw));
            }
        }
    }
}
