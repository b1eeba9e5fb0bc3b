//! Request bodies and query strings, refused with the server's one error shape.
//!
//! axum's own extractors answer a bad body in plain text; these answer with an
//! [`ApiError`] that names the field (`memories[2].embedding[7]`), so every refusal a
//! client sees has the same JSON shape.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::problem::ApiError;

/// A JSON body of type `T`.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::body_too_large(state.max_body_bytes)
            } else {
                ApiError::malformed(None, rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, naming where it went wrong. The common case, a good body, is
/// parsed once without tracking paths; a refused one is parsed again to name the field.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => parse_json_tracked(bytes),
    }
}

fn parse_json_tracked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        let inner = e.into_inner();
        if inner.is_data() {
            let field = field.unwrap_or_else(|| "body".to_owned());
            ApiError::invalid_field(
                field,
                inner.to_string(),
                "send the documented type for this field (see /openapi.json)",
            )
        } else {
            ApiError::malformed(field, format!("the body is not valid JSON: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::malformed(None, format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// A query string of type `T`.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|rejection| {
                ApiError::invalid_field(
                    "query",
                    rejection.body_text(),
                    "send the documented query parameters (see /openapi.json)",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::StoreBatchRequest;

    #[test]
    fn a_refused_value_is_named_by_its_path() {
        let e = parse_json::<StoreBatchRequest>(
            br#"{"memories": [{"step": 1, "content": "a"}, {"step": 2, "content": "b", "embedding": [1.0, "x"]}]}"#,
        )
        .expect_err("a string in an embedding");
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e.detail().field.as_deref(),
            Some("memories[1].embedding[1]")
        );

        let e = parse_json::<StoreBatchRequest>(
            br#"{"memories": [{"step": 1, "content": "a", "embeding": []}]}"#,
        )
        .expect_err("a misspelt field");
        assert!(e.detail().message.contains("embeding"), "{:?}", e.detail());

        let e = parse_json::<StoreBatchRequest>(br#"{"memories": [{"step": 1, "content": NaN}]}"#)
            .expect_err("NaN is not JSON");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.detail().code, "malformed_json");
    }
}
