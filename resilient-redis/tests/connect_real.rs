//! `connect_with(name, url, kind, …)` reaches a real redis-server with every driver compiled in.
#![allow(clippy::unwrap_used)]

use resilient_redis::{BackendKind, SetOptions, connect_with};
use testkit::server::RedisServer;

#[tokio::test]
async fn every_compiled_driver_connects_by_url() {
    let server = RedisServer::spawn().await.unwrap();
    let drivers = BackendKind::compiled_drivers();
    for kind in &drivers {
        let client = connect_with("c", &server.url(), *kind, |b| b)
            .await
            .unwrap();
        assert_eq!(client.backend_name(), kind.as_str());
        let key = format!("connect:{kind}");
        assert!(
            client
                .set(key.as_str(), "v", SetOptions::default())
                .await
                .unwrap()
        );
        assert_eq!(
            client.get(key.as_str()).await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
    assert_eq!(
        drivers.len(),
        usize::from(cfg!(feature = "redis-rs")) + usize::from(cfg!(feature = "fred"))
    );
}
