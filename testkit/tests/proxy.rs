//! FaultProxy against a real redis-server, with raw RESP over TCP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use testkit::proxy::{FaultProxy, ProxyMode};
use testkit::server::{RedisServer, RespConnection, RespReply};
use tokio::time::{Instant, timeout};

/// How long "no answer" is waited for.
const SILENCE: Duration = Duration::from_millis(300);
/// Upper bound for things that must happen (generous: the machine is shared).
const DEADLINE: Duration = Duration::from_secs(5);

fn pong() -> RespReply {
    RespReply::Simple("PONG".into())
}

async fn setup() -> (RedisServer, FaultProxy) {
    let server = RedisServer::spawn().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    (server, proxy)
}

async fn connect(proxy: &FaultProxy) -> RespConnection {
    RespConnection::connect(proxy.addr()).await.unwrap()
}

async fn ping(conn: &mut RespConnection) -> std::io::Result<RespReply> {
    timeout(DEADLINE, conn.command(&["PING"]))
        .await
        .expect("no reply within the deadline")
}

/// Waits until `cond` holds, failing the test after `DEADLINE`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn pass_forwards_commands_and_counts_connections() {
    let (server, proxy) = setup().await;
    assert_eq!(proxy.mode(), ProxyMode::Pass);
    assert_eq!(proxy.upstream(), server.addr());
    assert_eq!(
        proxy.url(),
        format!("redis://127.0.0.1:{}/", proxy.addr().port())
    );
    assert_ne!(proxy.addr(), server.addr());

    let mut conn = connect(&proxy).await;
    assert_eq!(ping(&mut conn).await.unwrap(), pong());
    let big = "x".repeat(200_000);
    assert_eq!(
        conn.command(&["SET", "big", &big]).await.unwrap(),
        RespReply::Simple("OK".into())
    );
    assert_eq!(
        conn.command(&["GET", "big"]).await.unwrap(),
        RespReply::Bulk(Some(big.into_bytes()))
    );
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.accepted(), 1);

    // A clean close is passed on and the connection is forgotten.
    assert_eq!(
        conn.command(&["QUIT"]).await.unwrap(),
        RespReply::Simple("OK".into())
    );
    drop(conn);
    eventually("the connection to close", || proxy.connections() == 0).await;
}

#[tokio::test]
async fn blackhole_accepts_but_never_answers_until_it_passes_again() {
    let (_server, proxy) = setup().await;
    let mut old = connect(&proxy).await;
    assert_eq!(ping(&mut old).await.unwrap(), pong());

    proxy.set_mode(ProxyMode::Blackhole);
    // Existing connection: silence.
    old.send(&["PING"]).await.unwrap();
    assert!(
        timeout(SILENCE, old.read_reply()).await.is_err(),
        "answered in blackhole"
    );
    // New connection: the TCP connect succeeds, then silence.
    let mut new = connect(&proxy).await;
    new.send(&["PING"]).await.unwrap();
    assert!(
        timeout(SILENCE, new.read_reply()).await.is_err(),
        "answered in blackhole"
    );
    assert_eq!(proxy.connections(), 2);

    // The partition heals: the held requests are delivered and answered.
    proxy.set_mode(ProxyMode::Pass);
    let reply = timeout(DEADLINE, old.read_reply()).await.unwrap().unwrap();
    assert_eq!(reply, pong());
    let reply = timeout(DEADLINE, new.read_reply()).await.unwrap().unwrap();
    assert_eq!(reply, pong());
}

#[tokio::test]
async fn reset_mode_resets_open_and_new_connections_then_pass_works_again() {
    let (_server, proxy) = setup().await;
    let mut old = connect(&proxy).await;
    assert_eq!(ping(&mut old).await.unwrap(), pong());

    proxy.set_mode(ProxyMode::Reset);
    eventually("the open connection to be reset", || {
        proxy.connections() == 0
    })
    .await;
    let err = ping(&mut old).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::BrokenPipe
        ),
        "{err:?}"
    );

    // A new connection is accepted and reset at once.
    match RespConnection::connect(proxy.addr()).await {
        Ok(mut conn) => assert!(ping(&mut conn).await.is_err(), "reset mode answered"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }

    proxy.set_mode(ProxyMode::Pass);
    let mut fresh = connect(&proxy).await;
    assert_eq!(ping(&mut fresh).await.unwrap(), pong());
}

#[tokio::test]
async fn reset_all_resets_once_and_stays_in_pass() {
    let (_server, proxy) = setup().await;
    let mut a = connect(&proxy).await;
    let mut b = connect(&proxy).await;
    assert_eq!(ping(&mut a).await.unwrap(), pong());
    assert_eq!(ping(&mut b).await.unwrap(), pong());

    proxy.reset_all();
    assert_eq!(proxy.mode(), ProxyMode::Pass);
    eventually("both connections to be reset", || proxy.connections() == 0).await;
    assert!(ping(&mut a).await.is_err());
    assert!(ping(&mut b).await.is_err());

    let mut c = connect(&proxy).await;
    assert_eq!(ping(&mut c).await.unwrap(), pong());
    assert_eq!(ping(&mut c).await.unwrap(), pong());
    assert_eq!(proxy.connections(), 1);
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let (_server, proxy) = setup().await;
    let mut conn = connect(&proxy).await;
    assert_eq!(ping(&mut conn).await.unwrap(), pong());

    let delay = Duration::from_millis(60);
    proxy.set_mode(ProxyMode::Latency(delay));
    let start = Instant::now();
    assert_eq!(ping(&mut conn).await.unwrap(), pong());
    // One chunk each way, each delayed.
    assert!(start.elapsed() >= delay * 2, "{:?}", start.elapsed());

    let mut new = connect(&proxy).await;
    let start = Instant::now();
    assert_eq!(ping(&mut new).await.unwrap(), pong());
    assert!(start.elapsed() >= delay * 2, "{:?}", start.elapsed());
}

#[tokio::test]
async fn upstream_down_closes_the_client_connection() {
    let (mut server, proxy) = setup().await;
    server.stop().await.unwrap();
    let mut conn = connect(&proxy).await;
    assert!(ping(&mut conn).await.is_err());

    server.restart().await.unwrap();
    let mut conn = connect(&proxy).await;
    assert_eq!(ping(&mut conn).await.unwrap(), pong());
}

#[tokio::test]
async fn drop_stops_listening_and_closes_connections() {
    let (_server, proxy) = setup().await;
    let addr = proxy.addr();
    let mut conn = connect(&proxy).await;
    assert_eq!(ping(&mut conn).await.unwrap(), pong());

    drop(proxy);
    assert!(
        ping(&mut conn).await.is_err(),
        "connection survived the proxy"
    );
    let deadline = Instant::now() + DEADLINE;
    loop {
        match RespConnection::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "proxy still listening after drop"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

#[tokio::test]
async fn traffic_tells_a_request_held_by_the_proxy_from_one_forwarded() {
    let (_server, proxy) = setup().await;
    let mut conn = connect(&proxy).await;
    assert_eq!(ping(&mut conn).await.unwrap(), pong());
    // "*1\r\n$4\r\nPING\r\n" is 14 bytes, "+PONG\r\n" 7, each way in full.
    let after_ping = proxy.traffic();
    assert_eq!(after_ping.requests_read, 14);
    assert_eq!(after_ping.requests_forwarded, 14);
    assert_eq!(after_ping.replies_read, 7);
    assert_eq!(after_ping.replies_forwarded, 7);

    proxy.set_mode(ProxyMode::Latency(Duration::from_secs(1)));
    let sent = tokio::spawn(async move {
        let reply = conn.command(&["PING"]).await;
        (conn, reply)
    });
    // Read, and held for the latency: the server has not seen it.
    let held = proxy
        .wait_for_traffic(DEADLINE, |t| t.requests_read == 28)
        .await
        .expect("the second PING was read");
    assert_eq!(held.requests_forwarded, 14);
    // Then forwarded, and answered.
    let answered = proxy
        .wait_for_traffic(DEADLINE, |t| t.replies_forwarded == 14)
        .await
        .expect("the second PING was answered");
    assert_eq!(answered.requests_forwarded, 28);
    let (_conn, reply) = sent.await.unwrap();
    assert_eq!(reply.unwrap(), pong());
    // A condition never met ends at the deadline with None.
    assert_eq!(
        proxy
            .wait_for_traffic(Duration::from_millis(50), |t| t.requests_read > 1_000)
            .await,
        None
    );
}
