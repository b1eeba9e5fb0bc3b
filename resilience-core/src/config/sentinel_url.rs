//! `redis+sentinel://` URLs: the sentinels in the host part, the master's name in the path.
//!
//! `redis+sentinel://[[username]:password@]s1[:port][,s2[:port]...]/master_name[/db][?params]`
//!
//! The list of hosts is not a valid URL authority, so it is split off here; the rest
//! (credentials, `db`, timeouts) is parsed by the `redis://` parser, so both forms accept
//! the same parameters. Error messages never echo the credentials, nor the host part
//! (a password with an unescaped `/` would end up there).

use super::{ConnectionConfig, SentinelConfig};
use crate::Error;

/// The sentinels' port when a host has none.
pub(crate) const DEFAULT_SENTINEL_PORT: u16 = 26379;

const SCHEME: &str = "redis+sentinel://";

/// The URL without its `redis+sentinel://` scheme (any case), or `None` for other URLs.
pub(crate) fn strip_scheme(input: &str) -> Option<&str> {
    let trimmed = input.trim_start_matches(|c: char| c <= ' ');
    let head = trimmed.get(..SCHEME.len())?;
    head.eq_ignore_ascii_case(SCHEME)
        .then(|| &trimmed[SCHEME.len()..])
}

/// Parses what follows `redis+sentinel://`.
pub(crate) fn parse(rest: &str) -> Result<ConnectionConfig, Error> {
    let rest = rest.trim_end_matches(|c: char| c <= ' ');
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let mut nodes = Vec::new();
    let mut first_host = None;
    for (i, host) in hosts.split(',').enumerate() {
        let (name, port) = parse_host(host).ok_or_else(|| {
            Error::InvalidInput(format!(
                "sentinel URL: sentinel address number {} is not host[:port]",
                i + 1
            ))
        })?;
        if first_host.is_none() {
            first_host = Some(host);
        }
        nodes.push((name, port));
    }
    let first_host = first_host
        .ok_or_else(|| Error::InvalidInput("sentinel URL lists no sentinel".to_owned()))?;
    let (path, query) = match tail.find(['?', '#']) {
        Some(at) => tail.split_at(at),
        None => (tail, ""),
    };
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let master_name = segments
        .next()
        .map(super::percent_decode)
        .transpose()?
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            Error::InvalidInput(
                "sentinel URL has no master name: expected redis+sentinel://hosts/master_name"
                    .to_owned(),
            )
        })?;
    let db = segments.next().unwrap_or("");
    let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    let rebuilt = format!("redis://{userinfo}{first_host}/{db}{query}");
    ConnectionConfig::parse_url(
        &rebuilt,
        Some(SentinelConfig {
            master_name,
            nodes,
            ..SentinelConfig::default()
        }),
    )
    .map(|mut config| {
        // The `redis://` parser defaults the port to 6379; a sentinel's is 26379.
        if let Some(first) = config.sentinel.as_ref().and_then(|s| s.nodes.first()) {
            config.port = first.1;
        }
        config
    })
}

/// One `host[:port]` (IPv6 in brackets), checked by the URL parser.
fn parse_host(host: &str) -> Option<(String, u16)> {
    if host.is_empty() || host.contains(['@', '/', '?', '#', '\\']) {
        return None;
    }
    let url = url::Url::parse(&format!("redis://{host}")).ok()?;
    let name = url.host_str().filter(|h| !h.is_empty())?;
    let name = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Some((name, url.port().unwrap_or(DEFAULT_SENTINEL_PORT)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_sentinels_master_db_and_credentials() -> Result<(), Error> {
        let c = ConnectionConfig::from_url(
            "redis+sentinel://alice:s%40cret@10.0.0.1:26380,sentinel-b,[::1]:5000/mymaster/2\
             ?socket_timeout=0.5&sentinel_username=watch&sentinel_password=w%26pw",
        )?;
        let s = c.sentinel.clone().unwrap_or_default();
        assert_eq!(s.master_name, "mymaster");
        assert_eq!(
            s.nodes,
            vec![
                ("10.0.0.1".to_owned(), 26380),
                ("sentinel-b".to_owned(), DEFAULT_SENTINEL_PORT),
                ("::1".to_owned(), 5000),
            ]
        );
        assert_eq!(s.username.as_deref(), Some("watch"));
        assert_eq!(s.password.as_deref(), Some("w&pw"));
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("s@cret"));
        assert_eq!(c.db, 2);
        assert_eq!(c.socket_timeout, Duration::from_millis(500));
        assert_eq!((c.host.as_str(), c.port), ("10.0.0.1", 26380));
        assert!(!c.is_tls());
        Ok(())
    }

    #[test]
    fn minimal_form_and_case_insensitive_scheme() -> Result<(), Error> {
        let c = ConnectionConfig::from_url("REDIS+SENTINEL://127.0.0.1/m")?;
        let s = c.sentinel.clone().unwrap_or_default();
        assert_eq!(s.master_name, "m");
        assert_eq!(
            s.nodes,
            vec![("127.0.0.1".to_owned(), DEFAULT_SENTINEL_PORT)]
        );
        assert_eq!((s.username, s.password), (None, None));
        assert_eq!((c.db, c.username, c.password), (0, None, None));
        Ok(())
    }

    #[test]
    fn sentinel_parameters_need_a_sentinel_url() {
        assert!(matches!(
            ConnectionConfig::from_url("redis://localhost?sentinel_password=x"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn rejects_bad_sentinel_urls_without_echoing_secrets() {
        for bad in [
            "redis+sentinel://",
            "redis+sentinel://h1",
            "redis+sentinel://h1/",
            "redis+sentinel://h1,,h2/m",
            "redis+sentinel://h1:99999/m",
            "redis+sentinel://h1/m/notadb",
            "redis+sentinel://h1/m?bogus=1",
            "redis+sentinel://u:Zq/Xw@h1/m",
            "redis+sentinel://u:Zq9Xw@h1:x/m",
        ] {
            match ConnectionConfig::from_url(bad) {
                Err(Error::InvalidInput(msg)) => {
                    assert!(!msg.contains("Zq"), "{bad}: {msg}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_redacts_both_passwords() -> Result<(), Error> {
        let c = ConnectionConfig::from_url(
            "redis+sentinel://:datapw123@h1/m?sentinel_password=sentpw456",
        )?;
        let shown = format!("{c:?}");
        assert!(!shown.contains("datapw123"), "{shown}");
        assert!(!shown.contains("sentpw456"), "{shown}");
        assert!(shown.contains("master_name"));
        Ok(())
    }
}
