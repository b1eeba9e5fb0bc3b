//! Who may call: bearer tokens, each mapped to a namespace.
//!
//! Tokens come from `--tokens` / `MEMORY_SERVER_TOKENS` and `--tokens-file`, as
//! `token=namespace` entries separated by commas or new lines (`#` starts a comment). A
//! request names its token in `Authorization: Bearer <token>`; it is compared with every
//! configured token in constant time. Two tokens may share a namespace (and so its
//! memories); each has its own request rate. With no token configured, every request is
//! the one open tenant's, and the server listens on loopback only.

use std::sync::Arc;

use axum::http::HeaderValue;
use subtle::ConstantTimeEq;

use crate::problem::ApiError;
use crate::tenant::Tenant;

/// The shortest token accepted: 128 bits of base64 or hex, and then some.
pub const MIN_TOKEN_BYTES: usize = 24;

/// A configured token and the namespace it opens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// The secret.
    pub token: String,
    /// The key namespace its memories live under.
    pub namespace: String,
}

impl std::fmt::Debug for TokenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("TokenSpec")
            .field("token", &"<redacted>")
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Parses `token=namespace` entries separated by commas or new lines; `#` starts a
/// comment, blank entries are skipped.
///
/// # Errors
///
/// A message naming the entry (by number, never by its secret) that has no `=`, a token
/// shorter than [`MIN_TOKEN_BYTES`] or with spaces, or a namespace the tiers refuse.
pub fn parse_tokens(text: &str) -> Result<Vec<TokenSpec>, String> {
    let mut out = Vec::new();
    let entries = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for (i, entry) in entries.enumerate() {
        let n = i + 1;
        let Some((token, namespace)) = entry.split_once('=') else {
            return Err(format!("token entry {n} has no '=': write token=namespace"));
        };
        let (token, namespace) = (token.trim(), namespace.trim());
        if token.len() < MIN_TOKEN_BYTES || token.chars().any(char::is_whitespace) {
            return Err(format!(
                "token entry {n}: a token must be at least {MIN_TOKEN_BYTES} bytes without spaces (try `openssl rand -hex 24`)"
            ));
        }
        resilient_redis::memory::validate_namespace(namespace)
            .map_err(|e| format!("token entry {n}: namespace {namespace:?}: {e}"))?;
        out.push(TokenSpec {
            token: token.to_owned(),
            namespace: namespace.to_owned(),
        });
    }
    Ok(out)
}

/// The tenants requests resolve to.
#[derive(Debug)]
pub(crate) enum Tenants {
    /// No token configured: every request is this tenant's.
    Open(Arc<Tenant>),
    /// Each token's tenant.
    Tokens(Vec<(Box<[u8]>, Arc<Tenant>)>),
}

impl Tenants {
    /// The tenant a request's `Authorization` header names.
    pub(crate) fn resolve(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<&Arc<Tenant>, ApiError> {
        let tokens = match self {
            Tenants::Open(tenant) => return Ok(tenant),
            Tenants::Tokens(tokens) => tokens,
        };
        let Some(header) = authorization else {
            return Err(ApiError::unauthorized("no Authorization header"));
        };
        let presented = header.as_bytes().strip_prefix(b"Bearer ").ok_or_else(|| {
            ApiError::unauthorized("the Authorization header is not `Bearer <token>`")
        })?;
        // Every token is compared, so the time taken does not say which one came close.
        let mut found = None;
        for (token, tenant) in tokens {
            if bool::from(token.as_ref().ct_eq(presented)) {
                found = Some(tenant);
            }
        }
        found.ok_or_else(|| ApiError::unauthorized("the token is not one this server knows"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_from_commas_lines_and_comments() {
        let specs = parse_tokens(
            "# tenants\naaaaaaaaaaaaaaaaaaaaaaaa=team_a, bbbbbbbbbbbbbbbbbbbbbbbb=team_b\n\ncccccccccccccccccccccccc = team_a # shared\n",
        )
        .expect("parses");
        let pairs: Vec<_> = specs
            .iter()
            .map(|s| (s.token.as_str(), s.namespace.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("aaaaaaaaaaaaaaaaaaaaaaaa", "team_a"),
                ("bbbbbbbbbbbbbbbbbbbbbbbb", "team_b"),
                ("cccccccccccccccccccccccc", "team_a"),
            ]
        );
        assert!(
            !format!("{:?}", specs[0]).contains("aaaa"),
            "the secret is never printed"
        );
    }

    #[test]
    fn bad_entries_are_named_without_their_secret() {
        let short = parse_tokens("short=ns").expect_err("too short");
        assert!(
            short.contains("entry 1") && !short.contains("short="),
            "{short}"
        );
        let no_eq = parse_tokens("aaaaaaaaaaaaaaaaaaaaaaaa=ok,oops").expect_err("no =");
        assert!(no_eq.contains("entry 2"), "{no_eq}");
        let bad_ns = parse_tokens("aaaaaaaaaaaaaaaaaaaaaaaa=has{brace}").expect_err("namespace");
        assert!(bad_ns.contains("namespace"), "{bad_ns}");
    }
}
