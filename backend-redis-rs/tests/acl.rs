//! ACL users over `RedisRsBackend`: right and wrong passwords, `Auth` never opening the
//! breaker, and no password in any error, `Debug` output or log line (the whole process's
//! `tracing` and `log` output is captured at TRACE). The scenario lives in
//! `testkit::scenarios::acl` (shared with the fred backend).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use backend_redis_rs::RedisRsBackend;
use resilience_core::{ConnectionConfig, KvBackend};
use testkit::logs::LogCapture;
use testkit::scenarios::BackendFuture;
use testkit::scenarios::acl::{self, shown_secret};

fn connect(config: ConnectionConfig) -> BackendFuture {
    Box::pin(async move {
        let backend = RedisRsBackend::connect(&config).await?;
        assert_eq!(shown_secret(&format!("{backend:?}")), None, "{backend:?}");
        Ok(Arc::new(backend) as Arc<dyn KvBackend>)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_passwords_are_auth_never_trip_the_breaker_and_never_show() {
    let logs = LogCapture::install().expect("the only subscriber of this test binary");
    let report = acl::acl_checks(connect, logs)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)");
    report.print_and_assert();
    // The capture holds this backend's own log lines (it renews the connection after a
    // refused handshake), not only the core's.
    assert!(
        logs.contents().contains("redis-rs"),
        "backend logs not captured"
    );
}

#[tokio::test]
async fn debug_output_never_shows_the_password() {
    let password = "pw-Debug-4711";
    let server = testkit::server::RedisServer::builder()
        .password(Some(password.into()))
        .spawn()
        .await
        .expect("redis-server must be installed (apt-get install redis-server)");
    let backend = RedisRsBackend::connect(&server.connection_config())
        .await
        .expect("connects with the right password");
    let shown = format!("{backend:?}");
    assert!(!shown.contains(password), "{shown}");
}
