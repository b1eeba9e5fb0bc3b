//! What a refused or failed request is answered with: its status, a stable code, the
//! field at fault, what went wrong and what to do about it.
//!
//! Every error the server sends, over REST or MCP, is one [`ApiError`], so a client reads
//! one shape: `{"error": {"status", "code", "field", "message", "hint"}}`. Input is
//! checked before anything is stored: a refused request stores nothing.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resilient_redis::ErrorClass;
use resilient_redis::memory::Error as MemoryError;
use serde::Serialize;
use utoipa::ToSchema;

/// A refused or failed request.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    status: StatusCode,
    // Boxed: errors are rare, results are everywhere.
    detail: Box<ErrorDetail>,
    retry_after: Option<Duration>,
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error: stable enough to branch on (`code`), plain enough to show (`message`,
/// `hint`).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated for clients that only see the body (MCP).
    pub status: u16,
    /// A stable, machine-readable name: `invalid_field`, `malformed_json`,
    /// `body_too_large`, `unauthorized`, `not_found`, `rate_limited`, `contended`,
    /// `unavailable`, `dropped`, `redis_refused`, `corrupt`, `internal`.
    pub code: String,
    /// The request field at fault (`embedding`, `memories[3].content`, `agent_id`, ...),
    /// when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl ApiError {
    fn new(
        status: StatusCode,
        code: &str,
        field: Option<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            detail: Box::new(ErrorDetail {
                status: status.as_u16(),
                code: code.to_owned(),
                field,
                message: message.into(),
                hint: hint.into(),
            }),
            retry_after: None,
        }
    }

    /// A field whose value is refused (422): the field's path, why, and what is accepted.
    pub fn invalid_field(
        field: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field.into()),
            message,
            hint,
        )
    }

    /// A body or query that does not parse (400), at `field` when the parser says where.
    pub fn malformed(field: Option<String>, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            field,
            message,
            "send a JSON body of the documented shape (see /openapi.json); numbers must be finite",
        )
    }

    /// A body over the configured limit (413).
    pub fn body_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            None,
            format!("the request body is over the server's limit of {limit} bytes"),
            "send less per request (split a batch), or raise --max-body-bytes",
        )
    }

    /// A missing, unknown or malformed bearer token (401).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Some("authorization".to_owned()),
            message,
            "send `Authorization: Bearer <token>` with a token the server was configured with",
        )
    }

    /// Nothing by that id for this tenant (404); another tenant's is nothing too.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            None,
            what,
            "check the id; memories expire with their tier's TTL",
        )
    }

    /// The token's request rate is spent (429); retry after `retry_after`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            None,
            "this token's request rate is spent",
            format!(
                "retry after {} ms, or ask for a higher --requests-per-second",
                retry_after.as_millis()
            ),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// A `low`-priority write Redis could not take, dropped rather than queued (503).
    pub fn dropped() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "dropped",
            Some("priority".to_owned()),
            "Redis is unreachable and the write had priority low: it was dropped, nothing is stored",
            "send it again, or with priority normal or higher to have it queued through an outage",
        )
    }

    /// A failure of the server itself (500).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            None,
            message,
            "report it with the server's log",
        )
    }

    /// The error a detail describes (a batch item's, raised for a single write).
    pub(crate) fn from_detail(detail: ErrorDetail) -> Self {
        ApiError {
            status: StatusCode::from_u16(detail.status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            retry_after: (detail.status == 503).then_some(Duration::from_secs(1)),
            detail: Box::new(detail),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body's detail.
    pub fn detail(&self) -> &ErrorDetail {
        &self.detail
    }

    /// Sets the field at fault, when the error came from below without one.
    pub(crate) fn at(mut self, field: impl Into<String>) -> Self {
        if self.detail.field.is_none() {
            self.detail.field = Some(field.into());
        }
        self
    }
}

impl From<MemoryError> for ApiError {
    fn from(e: MemoryError) -> Self {
        let message = e.to_string();
        match e {
            MemoryError::InvalidInput(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                None,
                message,
                "correct the value the message names; nothing was stored",
            ),
            MemoryError::Contended(_) => ApiError::new(
                StatusCode::CONFLICT,
                "contended",
                None,
                message,
                "retry the request",
            ),
            MemoryError::Corrupt(_) | MemoryError::UnsupportedSchema { .. } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt",
                None,
                message,
                "the stored entry cannot be read by this build; delete it",
            ),
            MemoryError::Redis(e) => ApiError::from(e),
            _ => ApiError::internal(message),
        }
    }
}

impl From<resilient_redis::Error> for ApiError {
    fn from(e: resilient_redis::Error) -> Self {
        let class = e.class();
        let message = e.to_string();
        match class {
            ErrorClass::Outage | ErrorClass::Indeterminate | ErrorClass::HeldBack => {
                let mut out = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    None,
                    message,
                    "Redis is unreachable; retry later (reads are answered from the fallback where it holds the memory)",
                );
                out.retry_after = Some(Duration::from_secs(1));
                out
            }
            ErrorClass::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                None,
                message,
                "the server is shutting down; send it to another instance",
            ),
            _ => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "redis_refused",
                None,
                message,
                "Redis refused the command: check the server's user rights and memory limits",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(ErrorBody {
                error: *self.detail,
            }),
        )
            .into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_field_names_itself() {
        let e = ApiError::invalid_field("embedding", "3 values, 4 expected", "send 4");
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.detail().field.as_deref(), Some("embedding"));
        let json = serde_json::to_value(ErrorBody {
            error: e.detail().clone(),
        })
        .expect("serializes");
        assert_eq!(json["error"]["code"], "invalid_field");
        assert_eq!(json["error"]["status"], 422);
    }

    #[test]
    fn an_outage_is_503_with_retry_after() {
        let e = ApiError::from(resilient_redis::Error::Unavailable(
            resilient_redis::BackendError::unavailable("connection refused"),
        ));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let response = e.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
