//! The OpenAPI document, derived from the handlers' annotations, so it cannot drift from
//! the routes. It is served at `/openapi.json` and checked in as `openapi.json` beside
//! the crate's manifest; a test fails when the two differ. Regenerate it with
//! `cargo run -p memory-server -- --print-openapi > memory-server/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::rest;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "memory-server",
        description = "Agent memory over REST: short-term and intermediate tiers on Redis that keep writing through an outage. Every route under /v1 takes `Authorization: Bearer <token>` when the server has tokens; each token sees its own namespace only."
    ),
    paths(
        rest::store,
        rest::store_batch,
        rest::list,
        rest::get_memory,
        rest::delete_memory,
        rest::adjust_importance,
        rest::count,
        rest::similar,
        rest::find,
        rest::search,
        rest::maintain,
        rest::forget,
        rest::ticket,
        rest::healthz,
        rest::readyz,
        rest::openapi,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "memories", description = "Store, read, change and delete an agent's memories"),
        (name = "search", description = "Similarity, filters and content search"),
        (name = "agents", description = "Maintenance and forgetting, per agent"),
        (name = "operations", description = "Health, readiness and this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, pretty-printed JSON with a final new line.
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
