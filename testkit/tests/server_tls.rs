//! The TLS mode of the redis-server spawner: it serves TLS only, with generated
//! certificates, and survives a restart. Checked with `redis-cli --tls`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use testkit::server::{RedisServer, TlsClientAuth};
use tokio::process::Command;

/// Runs `redis-cli --tls PING` against `port`, trusting `ca`, with an optional client cert.
async fn tls_ping(port: u16, ca: &Path, client: Option<(&Path, &Path)>) -> Option<String> {
    let mut cli = Command::new("redis-cli");
    cli.args(["--tls", "-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .arg("--cacert")
        .arg(ca);
    if let Some((cert, key)) = client {
        cli.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = cli.arg("PING").output().await.expect("redis-cli runs");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

#[tokio::test]
async fn tls_server_serves_tls_only_with_generated_certificates() {
    let mut server = RedisServer::builder()
        .tls_generated()
        .spawn()
        .await
        .unwrap();
    let ca = server.ca_cert_path().unwrap().to_owned();
    assert_eq!(
        tls_ping(server.port(), &ca, None).await.as_deref(),
        Some("PONG")
    );
    // No plain-text listener on that port: a RESP PING gets no PONG.
    let plain = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        testkit::server::RespConnection::connect(server.addr()),
    )
    .await;
    if let Ok(Ok(mut conn)) = plain {
        let reply =
            tokio::time::timeout(std::time::Duration::from_secs(2), conn.command(&["PING"])).await;
        assert!(
            !matches!(reply, Ok(Ok(testkit::server::RespReply::Simple(ref s))) if s == "PONG"),
            "{reply:?}"
        );
    }

    let config = server.connection_config();
    let tls = config.tls.as_ref().expect("tls set");
    assert_eq!(tls.ca_file.as_deref(), Some(ca.as_path()));
    assert!(!tls.insecure);
    assert!(server.url().starts_with("rediss://127.0.0.1:"));
    assert_eq!(server.tls_url(), Some(server.url()));

    server.restart().await.unwrap();
    assert_eq!(
        tls_ping(server.port(), &ca, None).await.as_deref(),
        Some("PONG")
    );
}

#[tokio::test]
async fn mutual_tls_server_requires_the_client_certificate() {
    let server = RedisServer::builder()
        .tls_generated()
        .tls_auth_clients(TlsClientAuth::Yes)
        .spawn()
        .await
        .unwrap();
    let ca = server.ca_cert_path().unwrap();
    let client = server.client_cert_paths().unwrap();
    assert_eq!(
        tls_ping(server.port(), ca, Some(client)).await.as_deref(),
        Some("PONG")
    );
    assert_eq!(tls_ping(server.port(), ca, None).await, None);
}

#[tokio::test]
async fn plain_server_has_no_tls() {
    let server = RedisServer::spawn().await.unwrap();
    assert!(server.tls_files().is_none());
    assert!(server.ca_cert_path().is_none());
    assert!(server.tls_url().is_none());
    assert!(server.connection_config().tls.is_none());
    assert!(server.url().starts_with("redis://"));
}

#[tokio::test]
async fn given_files_and_optional_client_auth() {
    let dir = tempfile::tempdir().unwrap();
    let files = testkit::server::TlsFiles::generate(dir.path()).unwrap();
    let server = RedisServer::builder()
        .tls(files.clone())
        .tls_auth_clients(TlsClientAuth::Optional)
        .spawn()
        .await
        .unwrap();
    assert_eq!(server.tls_files(), Some(&files));
    assert_eq!(server.ca_cert_path(), Some(files.ca_cert.as_path()));
    // Optional: both with and without a client certificate.
    let client = server.client_cert_paths().unwrap();
    assert_eq!(
        tls_ping(server.port(), &files.ca_cert, Some(client))
            .await
            .as_deref(),
        Some("PONG")
    );
    assert_eq!(
        tls_ping(server.port(), &files.ca_cert, None)
            .await
            .as_deref(),
        Some("PONG")
    );
    // A CA that did not sign the server's certificate is refused by redis-cli too.
    let other = tempfile::tempdir().unwrap();
    let wrong = testkit::server::TlsFiles::generate(other.path()).unwrap();
    assert_eq!(tls_ping(server.port(), &wrong.ca_cert, None).await, None);
}
