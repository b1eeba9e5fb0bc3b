//! Real redis-server processes: spawn, stop, restart on the same port, AOF durability.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use testkit::server::{RedisServer, RespConnection, RespReply, SpawnError};

fn bulk(s: &str) -> RespReply {
    RespReply::Bulk(Some(s.as_bytes().to_vec()))
}

fn ok() -> RespReply {
    RespReply::Simple("OK".into())
}

async fn ping(server: &RedisServer) -> std::io::Result<RespReply> {
    let mut conn = RespConnection::connect(server.addr()).await?;
    conn.command(&["PING"]).await
}

#[tokio::test]
async fn spawns_on_a_free_port_and_answers_ping() {
    let mut server = RedisServer::spawn().await.unwrap();
    assert_ne!(server.port(), 6379);
    assert_eq!(
        server.url(),
        format!("redis://127.0.0.1:{}/", server.port())
    );
    assert_eq!(server.addr().port(), server.port());
    assert!(server.is_running());
    assert!(server.pid().is_some());
    assert_eq!(
        ping(&server).await.unwrap(),
        RespReply::Simple("PONG".into())
    );
    let config = server.connection_config();
    assert_eq!(
        (config.host.as_str(), config.port),
        ("127.0.0.1", server.port())
    );
}

#[tokio::test]
async fn two_servers_get_different_ports() {
    let (a, b) = tokio::join!(RedisServer::spawn(), RedisServer::spawn());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.port(), b.port());
    let mut conn = RespConnection::connect(a.addr()).await.unwrap();
    assert_eq!(conn.command(&["SET", "k", "a"]).await.unwrap(), ok());
    let mut conn = RespConnection::connect(b.addr()).await.unwrap();
    assert_eq!(
        conn.command(&["GET", "k"]).await.unwrap(),
        RespReply::Bulk(None)
    );
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_reuses_the_port() {
    let mut server = RedisServer::spawn().await.unwrap();
    let port = server.port();
    // An open client connection leaves the port in TIME_WAIT / CLOSE_WAIT after the kill.
    let mut held = RespConnection::connect(server.addr()).await.unwrap();
    assert_eq!(
        held.command(&["PING"]).await.unwrap(),
        RespReply::Simple("PONG".into())
    );

    server.stop().await.unwrap();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    let err = RespConnection::connect(server.addr()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(
        held.command(&["PING"]).await.is_err(),
        "old connection survived a kill"
    );
    server.stop().await.unwrap(); // stopping twice is fine

    server.restart().await.unwrap();
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_eq!(
        ping(&server).await.unwrap(),
        RespReply::Simple("PONG".into())
    );

    // Restarting a running server kills and starts it again.
    let pid = server.pid();
    server.restart().await.unwrap();
    assert_ne!(server.pid(), pid);
    assert_eq!(
        ping(&server).await.unwrap(),
        RespReply::Simple("PONG".into())
    );
}

#[tokio::test]
async fn aof_data_survives_sigkill_and_restart() {
    let mut server = RedisServer::builder()
        .appendfsync_always(true)
        .spawn()
        .await
        .unwrap();
    let mut conn = RespConnection::connect(server.addr()).await.unwrap();
    assert_eq!(
        conn.command(&["SET", "durable", "yes"]).await.unwrap(),
        ok()
    );
    assert_eq!(
        conn.command(&["INCRBY", "n", "41"]).await.unwrap(),
        RespReply::Int(41)
    );
    drop(conn);

    server.stop().await.unwrap();
    server.restart().await.unwrap();

    let mut conn = RespConnection::connect(server.addr()).await.unwrap();
    assert_eq!(
        conn.command(&["GET", "durable"]).await.unwrap(),
        bulk("yes")
    );
    assert_eq!(
        conn.command(&["INCRBY", "n", "1"]).await.unwrap(),
        RespReply::Int(42)
    );
}

#[tokio::test]
async fn without_aof_a_restart_loses_data() {
    let mut server = RedisServer::spawn().await.unwrap();
    let mut conn = RespConnection::connect(server.addr()).await.unwrap();
    assert_eq!(conn.command(&["SET", "k", "v"]).await.unwrap(), ok());
    server.restart().await.unwrap();
    let mut conn = RespConnection::connect(server.addr()).await.unwrap();
    assert_eq!(
        conn.command(&["GET", "k"]).await.unwrap(),
        RespReply::Bulk(None)
    );
}

#[tokio::test]
async fn password_is_required_and_readiness_still_works() {
    let server = RedisServer::builder()
        .password(Some("s3cret".into()))
        .spawn()
        .await
        .unwrap();
    assert_eq!(server.password(), Some("s3cret"));
    assert_eq!(
        server.connection_config().password.as_deref(),
        Some("s3cret")
    );
    let mut conn = RespConnection::connect(server.addr()).await.unwrap();
    match conn.command(&["GET", "k"]).await.unwrap() {
        RespReply::Error(e) => assert!(e.starts_with("NOAUTH"), "{e}"),
        other => panic!("expected NOAUTH, got {other:?}"),
    }
    assert_eq!(conn.command(&["AUTH", "s3cret"]).await.unwrap(), ok());
    assert_eq!(
        conn.command(&["GET", "k"]).await.unwrap(),
        RespReply::Bulk(None)
    );
}

#[tokio::test]
async fn custom_args_are_passed_through() {
    let server = RedisServer::builder()
        .arg("maxmemory", "12mb")
        .spawn()
        .await
        .unwrap();
    let mut conn = RespConnection::connect(server.addr()).await.unwrap();
    let reply = conn.command(&["CONFIG", "GET", "maxmemory"]).await.unwrap();
    assert_eq!(
        reply,
        RespReply::Array(Some(vec![bulk("maxmemory"), bulk("12582912")]))
    );
}

#[tokio::test]
async fn a_bad_argument_is_a_typed_error_with_the_log() {
    let err = RedisServer::builder()
        .arg("no-such-directive", "1")
        .startup_timeout(Duration::from_secs(5))
        .spawn()
        .await
        .unwrap_err();
    match err {
        SpawnError::Exited { log, .. } => assert!(log.contains("no-such-directive"), "{log}"),
        other => panic!("expected Exited, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_binary_says_how_to_install_redis() {
    let err = RedisServer::builder()
        .binary("/nonexistent/redis-server")
        .spawn()
        .await
        .unwrap_err();
    assert!(matches!(err, SpawnError::NotFound));
    assert_eq!(
        err.to_string(),
        "redis-server not found: install it with `apt-get install -y redis-server`, or point TESTKIT_REDIS_SERVER at a redis-server or valkey-server binary"
    );
}

#[tokio::test]
async fn drop_kills_the_process() {
    let server = RedisServer::spawn().await.unwrap();
    let addr = server.addr();
    let dir = server.dir().to_owned();
    drop(server);
    // The kill is asynchronous: wait for the refusal with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match RespConnection::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ if tokio::time::Instant::now() > deadline => panic!("server still up after drop"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(!dir.exists(), "temp dir not removed");
}

/// A sentinel deployment comes up ready, reports its master, and fails over to the replica
/// when the master is SIGKILLed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_deployment_fails_over_after_a_kill() {
    use testkit::server::SentinelDeployment;
    let started = tokio::time::Instant::now();
    let mut deployment = SentinelDeployment::spawn().await.expect("deployment");
    let ready = started.elapsed();
    let master = deployment.master_addr().await.expect("master");
    assert_eq!(master, deployment.nodes()[0].addr());
    assert_eq!(deployment.sentinel_addrs().len(), 3);
    let config = deployment.connection_config();
    assert_eq!(
        config.sentinel.as_ref().map(|s| s.nodes.len()),
        Some(3),
        "{config:?}"
    );
    let parsed = resilience_core::ConnectionConfig::from_url(&deployment.url()).expect("url");
    assert_eq!(parsed.sentinel, config.sentinel);
    let killed_at = tokio::time::Instant::now();
    let old = deployment.kill_master().await.expect("kill");
    assert_eq!(old, master);
    let new = deployment
        .wait_for_failover(old, Duration::from_secs(15))
        .await
        .expect("failover");
    assert_eq!(new, deployment.nodes()[1].addr());
    println!(
        "sentinel deployment ready in {ready:?}, failover seen {:?} after the kill",
        killed_at.elapsed()
    );
}
