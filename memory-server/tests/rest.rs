//! The REST API over real HTTP: every endpoint, its refusals, tenant isolation and rate
//! limits, on the embedded backend and on a real redis-server with each driver.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{DIM, Running, config, start};

const TOKEN_A: &str = "token-a-aaaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN_A2: &str = "token-a2-aaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN_B: &str = "token-b-bbbbbbbbbbbbbbbbbbbbbbbb";

fn ids(body: &Value) -> Vec<String> {
    body["memories"]
        .as_array()
        .expect("memories")
        .iter()
        .map(|m| m["memory_id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every endpoint once, with what it must answer.
async fn every_endpoint(server: &Running) {
    let agent = "/v1/agents/agent-1";
    // Store: one with an embedding, one embedded by the server, a batch.
    let (status, first) = server
        .open(
            Method::POST,
            &format!("{agent}/memories"),
            Some(&json!({
                "step": 1, "content": {"saw": "a red door", "room": "hall"}, "importance": 0.9,
                "memory_type": "observation", "embedding": [1.0, 0.0, 0.0, 0.0], "priority": "high"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["outcome"], "stored");
    let first_id = first["memory_id"].as_str().expect("id").to_owned();
    let (status, second) = server
        .open(
            Method::POST,
            &format!("{agent}/memories"),
            Some(&json!({
                "step": 2, "content": "the river was cold", "importance": 0.2, "embed": true
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let (status, batch) = server
        .open(Method::POST, &format!("{agent}/memories/batch"), Some(&json!({"memories": [
            {"step": 3, "content": {"did": "opened the door"}, "memory_type": "action", "embedding": [0.9, 0.1, 0.0, 0.0]},
            {"step": 4, "content": "a blue door", "embedding": [0.0, 1.0, 0.0, 0.0], "importance": 0.5},
        ]})))
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    let receipts = batch["receipts"].as_array().expect("receipts");
    assert_eq!(receipts.len(), 2);
    assert!(receipts.iter().all(|r| r["outcome"] == "stored"), "{batch}");
    let action_id = receipts[0]["memory_id"].as_str().expect("id").to_owned();

    // Read by id: counted as a retrieval.
    let (status, got) = server
        .open(Method::GET, &format!("{agent}/memories/{first_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["content"]["saw"], "a red door");
    assert_eq!(got["retrieval_count"], 1);
    assert_eq!(got["has_embedding"], true);
    assert_eq!(got["tier"], "stm");

    // Lists: recent, steps, times, importance.
    let (_, recent) = server
        .open(Method::GET, &format!("{agent}/memories?limit=3"), None)
        .await;
    assert_eq!(ids(&recent).len(), 3, "{recent}");
    let (_, steps) = server
        .open(
            Method::GET,
            &format!("{agent}/memories?from_step=2&to_step=3"),
            None,
        )
        .await;
    let step_numbers: Vec<u64> = steps["memories"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["step"].as_u64().expect("step"))
        .collect();
    assert_eq!(step_numbers, [2, 3]);
    let (_, times) = server
        .open(Method::GET, &format!("{agent}/memories?from_ms=0"), None)
        .await;
    assert_eq!(ids(&times).len(), 4);
    let (_, important) = server
        .open(
            Method::GET,
            &format!("{agent}/memories?min_importance=0.8"),
            None,
        )
        .await;
    assert_eq!(ids(&important), std::slice::from_ref(&first_id));
    let (_, count) = server
        .open(Method::GET, &format!("{agent}/count"), None)
        .await;
    assert_eq!(count["total"], 4, "{count}");

    // Similarity: by vector, by text, filtered, with weights.
    let (status, similar) = server
        .open(
            Method::POST,
            &format!("{agent}/similar"),
            Some(&json!({"embedding": [1.0, 0.0, 0.0, 0.0], "k": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{similar}");
    let top: Vec<&str> = similar["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["memory"]["memory_id"].as_str().expect("id"))
        .collect();
    assert_eq!(top, [first_id.as_str(), action_id.as_str()]);
    let (_, filtered) = server
        .open(
            Method::POST,
            &format!("{agent}/similar"),
            Some(&json!({
                "embedding": [1.0, 0.0, 0.0, 0.0], "k": 5, "filter": {"memory_type": "action"}
            })),
        )
        .await;
    assert_eq!(
        filtered["results"].as_array().expect("results").len(),
        1,
        "{filtered}"
    );
    let (status, by_text) = server
        .open(
            Method::POST,
            &format!("{agent}/similar"),
            Some(&json!({
                "text": "river cold", "k": 1, "weights": {"cosine": 0.0, "text": 1.0}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{by_text}");
    assert_eq!(
        by_text["results"][0]["memory"]["content"],
        "the river was cold"
    );

    // Filters and content search.
    let (status, found) = server
        .open(
            Method::POST,
            &format!("{agent}/find"),
            Some(&json!({"filter": {"attributes": {"room": "hall"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids(&found), std::slice::from_ref(&first_id));
    let (_, searched) = server
        .open(Method::GET, &format!("{agent}/search?text=DOOR"), None)
        .await;
    assert_eq!(ids(&searched).len(), 3, "{searched}");

    // Change, delete, maintain.
    let (status, adjusted) = server
        .open(
            Method::POST,
            &format!("{agent}/memories/{first_id}/importance"),
            Some(&json!({"delta": -0.5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{adjusted}");
    assert!((adjusted["importance"].as_f64().expect("importance") - 0.4).abs() < 1e-9);
    let (_, deleted) = server
        .open(
            Method::DELETE,
            &format!("{agent}/memories/{action_id}"),
            None,
        )
        .await;
    assert_eq!(deleted["deleted"], true);
    let (status, _) = server
        .open(Method::GET, &format!("{agent}/memories/{action_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, maintained) = server
        .open(Method::POST, &format!("{agent}/maintain"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{maintained}");
    assert_eq!(
        maintained["stm_count"].as_u64().expect("count")
            + maintained["im_count"].as_u64().expect("count"),
        3
    );

    // Forget: everything of the agent, with a receipt; another agent untouched.
    let (status, _) = server
        .open(
            Method::POST,
            "/v1/agents/agent-2/memories",
            Some(&json!({"step": 1, "content": "other"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, receipt) = server.open(Method::DELETE, agent, None).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["deleted"], 3, "{receipt}");
    let (_, count) = server
        .open(Method::GET, &format!("{agent}/count"), None)
        .await;
    assert_eq!(count["total"], 0);
    let (_, other) = server
        .open(Method::GET, "/v1/agents/agent-2/count", None)
        .await;
    assert_eq!(other["total"], 1);

    // Operations.
    let (status, health) = server.open(Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    let (status, ready) = server.open(Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    let (status, metrics) = server.open(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().expect("text").to_owned();
    assert!(
        metrics.contains("memory_server_requests_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_on_the_embedded_backend() {
    let server = start(config("memory://")).await;
    every_endpoint(&server).await;
    let summary = server.stop().await;
    assert!(summary.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_on_redis_with_each_driver() {
    let redis = testkit::server::RedisServer::spawn()
        .await
        .expect("redis-server");
    for backend in ["redis-rs", "fred"] {
        let mut c = config(&redis.url());
        c.backend = Some(backend.to_owned());
        c.namespace = format!("rest_{}", backend.replace('-', "_"));
        let server = start(c).await;
        every_endpoint(&server).await;
        assert!(server.stop().await.drained, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_the_checked_in_one() {
    let server = start(config("memory://")).await;
    let served = server
        .http
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    let checked_in = include_str!("../openapi.json");
    assert!(
        served == checked_in,
        "the served OpenAPI document differs from memory-server/openapi.json: regenerate it with `cargo run -p memory-server -- --print-openapi > memory-server/openapi.json`"
    );
    let doc: Value = serde_json::from_str(&served).expect("JSON");
    for path in [
        "/v1/agents/{agent_id}/memories",
        "/v1/agents/{agent_id}/similar",
        "/v1/agents/{agent_id}",
        "/v1/tickets/{ticket}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_named_4xx_and_stores_nothing() {
    let mut c = config("memory://");
    c.max_body_bytes = 4096;
    c.max_batch = 2;
    let server = start(c).await;
    let store = "/v1/agents/agent-1/memories";
    let raw = |body: &'static str| {
        let http = server.http.clone();
        let url = format!("{}{store}", server.base);
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("answers");
            let status = r.status();
            (status, r.json::<Value>().await.expect("JSON error"))
        }
    };
    let expect =
        |(status, body): (StatusCode, Value), want: StatusCode, code: &str, field: Option<&str>| {
            assert_eq!(status, want, "{body}");
            assert_eq!(body["error"]["code"], code, "{body}");
            assert_eq!(body["error"]["status"], want.as_u16());
            if let Some(f) = field {
                assert_eq!(body["error"]["field"], f, "{body}");
            }
            assert!(!body["error"]["hint"].as_str().expect("a hint").is_empty());
        };
    expect(
        raw("{\"step\": 1, \"content\": ").await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
        None,
    );
    expect(
        raw("{\"step\": 1, \"content\": \"x\", \"embedding\": [1, NaN, 0, 0]}").await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
        Some("embedding[1]"),
    );
    expect(
        raw("{\"step\": 1, \"content\": \"x\", \"embedding\": [1, 1e39, 0, 0]}").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("embedding[1]"),
    );
    expect(
        raw("{\"step\": 1, \"content\": \"x\", \"embedding\": [1, 0]}").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("embedding"),
    );
    expect(
        raw("{\"step\": \"one\", \"content\": \"x\"}").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("step"),
    );
    expect(
        raw("{\"step\": 1, \"content\": \"x\", \"embeding\": [1, 0, 0, 0]}").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        None,
    );
    expect(
        raw("{\"step\": 1, \"content\": \"x\", \"importance\": 2}").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("importance"),
    );
    expect(
        raw("{\"step\": 1, \"content\": \"x\", \"embed\": true, \"embedding\": [1, 0, 0, 0]}")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("embed"),
    );
    let big = format!("{{\"step\": 1, \"content\": \"{}\"}}", "x".repeat(5000));
    let r = server
        .http
        .post(format!("{}{store}", server.base))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("answers");
    expect(
        (r.status(), r.json().await.expect("JSON")),
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        None,
    );
    expect(
        server
            .open(
                Method::POST,
                "/v1/agents/bad%7Bid%7D/memories",
                Some(&json!({"step": 1, "content": "x"})),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("agent_id"),
    );
    expect(
        server
            .open(Method::GET, "/v1/agents/agent-1/memories/not-a-ulid", None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("memory_id"),
    );
    expect(
        server
            .open(
                Method::POST,
                "/v1/agents/agent-1/memories/batch",
                Some(&json!({"memories": [
                    {"step": 1, "content": "fine", "embedding": [1.0, 0.0, 0.0, 0.0]},
                    {"step": 2, "content": "bad", "embedding": [1.0]},
                ]})),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("memories[1].embedding"),
    );
    expect(
        server.open(Method::POST, "/v1/agents/agent-1/memories/batch", Some(&json!({"memories": [
            {"step": 1, "content": "a"}, {"step": 2, "content": "b"}, {"step": 3, "content": "c"},
        ]}))).await,
        StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("memories"),
    );
    expect(
        server
            .open(
                Method::GET,
                "/v1/agents/agent-1/memories?from_step=1&min_importance=0.5",
                None,
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("from_step"),
    );
    expect(
        server
            .open(Method::GET, "/v1/agents/agent-1/memories?limit=0", None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("limit"),
    );
    expect(
        server
            .open(
                Method::POST,
                "/v1/agents/agent-1/similar",
                Some(&json!({"k": 3})),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("embedding"),
    );
    expect(
        server
            .open(
                Method::POST,
                "/v1/agents/agent-1/similar",
                Some(&json!({"embedding": [1.0, 0.0, 0.0, 0.0], "weights": {"text": 1.0}})),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("text"),
    );
    // Nothing of all that was stored.
    let (_, count) = server
        .open(Method::GET, "/v1/agents/agent-1/count", None)
        .await;
    assert_eq!(count["total"], 0, "{count}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_own_memories() {
    let mut c = config("memory://");
    c.tokens = Some(format!(
        "{TOKEN_A}=team_a,{TOKEN_B}=team_b,{TOKEN_A2}=team_a"
    ));
    let server = start(c).await;
    let path = "/v1/agents/agent-1/memories";
    let body = json!({"step": 1, "content": "a's secret", "embedding": [1.0, 0.0, 0.0, 0.0]});

    let (status, e) = server.call(Method::POST, path, None, Some(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(e["error"]["code"], "unauthorized");
    let (status, _) = server
        .call(
            Method::POST,
            path,
            Some("token-x-xxxxxxxxxxxxxxxxxxxxxxxx"),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(
            Method::GET,
            "/v1/agents/agent-1/count",
            Some(&TOKEN_A[..TOKEN_A.len() - 1]),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a prefix of a token is no token"
    );

    let (status, stored) = server
        .call(Method::POST, path, Some(TOKEN_A), Some(&body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let id = stored["memory_id"].as_str().expect("id");

    // B: the same agent id, but nothing of A's.
    let (status, _) = server
        .call(Method::GET, &format!("{path}/{id}"), Some(TOKEN_B), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = server.call(Method::GET, path, Some(TOKEN_B), None).await;
    assert!(ids(&list).is_empty(), "{list}");
    let (_, similar) = server
        .call(
            Method::POST,
            "/v1/agents/agent-1/similar",
            Some(TOKEN_B),
            Some(&json!({"embedding": [1.0, 0.0, 0.0, 0.0]})),
        )
        .await;
    assert_eq!(similar["results"].as_array().expect("results").len(), 0);
    let (_, deleted) = server
        .call(Method::DELETE, &format!("{path}/{id}"), Some(TOKEN_B), None)
        .await;
    assert_eq!(deleted["deleted"], false);
    let (_, forgot) = server
        .call(Method::DELETE, "/v1/agents/agent-1", Some(TOKEN_B), None)
        .await;
    assert_eq!(forgot["deleted"], 0);

    // A's other token shares A's namespace; A's memory survived B's deletes.
    let (status, got) = server
        .call(Method::GET, &format!("{path}/{id}"), Some(TOKEN_A2), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["content"], "a's secret");
    // Health needs no token.
    let (status, _) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_has_its_own_request_rate() {
    let mut c = config("memory://");
    c.tokens = Some(format!("{TOKEN_A}=team_a,{TOKEN_B}=team_b"));
    c.requests_per_second = 2;
    let server = start(c).await;
    let path = "/v1/agents/agent-1/count";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, body) = server.call(Method::GET, path, Some(TOKEN_A), None).await;
        statuses.push(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let r = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let (status, _) = server.call(Method::GET, path, Some(TOKEN_B), None).await;
    assert_eq!(status, StatusCode::OK, "B's rate is its own");
    server.stop().await;
}

#[tokio::test]
async fn without_tokens_it_refuses_to_listen_beyond_loopback() {
    let mut c = config("memory://");
    c.listen = "0.0.0.0:0".parse().expect("address");
    let e = memory_server::MemoryServer::start(c)
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("loopback"), "{e}");
    let mut c = config("memory://");
    c.tokens = Some("short=team_a".to_owned());
    let e = memory_server::MemoryServer::start(c)
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("--tokens"), "{e}");
    let _ = (DIM, Duration::ZERO);
}
