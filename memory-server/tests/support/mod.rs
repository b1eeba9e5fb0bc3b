//! A memory-server started in the test's process on a free port, and an HTTP client for it.

#![allow(dead_code)] // Each test file uses its own part.

use std::time::Duration;

use memory_server::{MemoryServer, ServerConfig, ShutdownSummary};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The embedding width the tests use.
pub(crate) const DIM: usize = 4;

/// A server serving on a free loopback port until [`Running::stop`].
pub(crate) struct Running {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) server: MemoryServer,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<ShutdownSummary, memory_server::StartError>>>,
}

/// The settings tests start from: `url`, width [`DIM`], no background maintenance.
pub(crate) fn config(url: &str) -> ServerConfig {
    let mut config = ServerConfig::for_url(url).expect("the default settings");
    config.embedding_dimension = DIM;
    config.maintenance_secs = 0;
    config.shutdown_drain_ms = 5_000;
    config
}

/// Starts a server with `config` on a free port.
pub(crate) async fn start(config: ServerConfig) -> Running {
    let server = MemoryServer::start(config).await.expect("server starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound");
    let (tx, rx) = oneshot::channel::<()>();
    let task = {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .serve(listener, async move {
                    let _ = rx.await;
                })
                .await
        })
    };
    Running {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        server,
        stop: Some(tx),
        task: Some(task),
    }
}

impl Running {
    /// Sends `method path` with `token` and a JSON `body`; the status and JSON answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// `call` without a token.
    pub(crate) async fn open(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, None, body).await
    }

    /// Stops serving and drains; what the drain reported.
    pub(crate) async fn stop(mut self) -> ShutdownSummary {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("running");
        task.await.expect("the server task").expect("served")
    }
}
