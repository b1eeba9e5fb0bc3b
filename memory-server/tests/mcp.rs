//! The MCP tools through rmcp's own client: over streamable HTTP (with bearer tokens, so
//! tenants stay apart) and over stdio (the binary spawned as a desktop host would).

mod support;

use std::collections::BTreeSet;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};
use support::{config, start};

const TOKEN_A: &str = "token-a-aaaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN_B: &str = "token-b-bbbbbbbbbbbbbbbbbbbbbbbb";
const TOOLS: [&str; 5] = [
    "forget_agent",
    "get_memory",
    "recent_memories",
    "search_memories",
    "store_memory",
];

type Client = RunningService<RoleClient, ClientConfig>;

async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments are an object");
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .expect("the call is answered")
}

fn content(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .expect("structured content")
}

/// Lists the tools and calls each, as one agent.
async fn every_tool(client: &Client) {
    let tools = client.list_all_tools().await.expect("tools");
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, BTreeSet::from(TOOLS));
    for tool in &tools {
        assert!(
            tool.description.as_ref().is_some_and(|d| d.len() > 20),
            "{} is described",
            tool.name
        );
        let schema = serde_json::to_value(&tool.input_schema).expect("schema");
        let agent = &schema["properties"]["agent_id"];
        assert!(
            agent["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{}: agent_id is described in {schema}",
            tool.name
        );
    }

    let stored = call(
        client,
        "store_memory",
        json!({"agent_id": "agent-1", "content": "the red door was locked", "importance": 0.8}),
    )
    .await;
    assert_eq!(stored.is_error, Some(false), "{stored:?}");
    assert_eq!(content(&stored)["outcome"], "stored");
    let id = content(&stored)["memory_id"]
        .as_str()
        .expect("id")
        .to_owned();
    call(
        client,
        "store_memory",
        json!({"agent_id": "agent-1", "content": {"saw": "a cold river"}, "step": 2}),
    )
    .await;

    let got = call(
        client,
        "get_memory",
        json!({"agent_id": "agent-1", "memory_id": id}),
    )
    .await;
    assert_eq!(
        content(&got)["content"],
        "the red door was locked",
        "{got:?}"
    );
    let recent = call(
        client,
        "recent_memories",
        json!({"agent_id": "agent-1", "limit": 5}),
    )
    .await;
    assert_eq!(
        content(&recent)["memories"].as_array().expect("list").len(),
        2
    );
    let found = call(
        client,
        "search_memories",
        json!({"agent_id": "agent-1", "query": "red door", "k": 1, "text_weight": 0.5}),
    )
    .await;
    assert_eq!(
        content(&found)["results"][0]["memory"]["memory_id"],
        id.as_str(),
        "{found:?}"
    );

    // A refused call is a tool error with the REST error body.
    let refused = call(
        client,
        "store_memory",
        json!({"agent_id": "bad{id}", "content": "x"}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert_eq!(
        content(&refused)["error"]["field"],
        "agent_id",
        "{refused:?}"
    );

    let forgot = call(client, "forget_agent", json!({"agent_id": "agent-1"})).await;
    assert_eq!(content(&forgot)["deleted"], 2, "{forgot:?}");
    let recent = call(client, "recent_memories", json!({"agent_id": "agent-1"})).await;
    assert_eq!(
        content(&recent)["memories"].as_array().expect("list").len(),
        0
    );
}

async fn http_client(base: &str, token: Option<&str>) -> Result<Client, String> {
    let mut transport_config = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"));
    if let Some(t) = token {
        transport_config = transport_config.auth_header(t);
    }
    ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(transport_config))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_over_streamable_http_with_tenants_apart() {
    let mut c = config("memory://");
    c.tokens = Some(format!("{TOKEN_A}=team_a,{TOKEN_B}=team_b"));
    // Wide enough for the hashing embedder to tell "red door" from "cold river".
    c.embedding_dimension = 64;
    let server = start(c).await;

    let a = http_client(&server.base, Some(TOKEN_A))
        .await
        .expect("A connects");
    every_tool(&a).await;

    // B cannot read what A stores under the same agent id.
    let stored = call(
        &a,
        "store_memory",
        json!({"agent_id": "agent-9", "content": "a's"}),
    )
    .await;
    let id = content(&stored)["memory_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let b = http_client(&server.base, Some(TOKEN_B))
        .await
        .expect("B connects");
    let got = call(
        &b,
        "get_memory",
        json!({"agent_id": "agent-9", "memory_id": id}),
    )
    .await;
    assert_eq!(got.is_error, Some(true));
    assert_eq!(content(&got)["error"]["code"], "not_found");
    assert!(
        http_client(&server.base, None).await.is_err(),
        "no token, no session"
    );

    let _ = a.cancel().await;
    let _ = b.cancel().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_over_stdio() {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_memory-server"));
    command
        .args([
            "--mcp-stdio",
            "--embedding-dimension",
            "64",
            "--maintenance-secs",
            "0",
        ])
        .env("RUST_LOG", "warn");
    let transport = TokioChildProcess::new(command).expect("the server spawns");
    let client = ClientConfig::default()
        .serve(transport)
        .await
        .expect("the MCP handshake");
    every_tool(&client).await;
    let _ = client.cancel().await;
}
