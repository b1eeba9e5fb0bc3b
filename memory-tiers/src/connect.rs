//! Ready-made clients for examples and tests.

use resilience_core::{InMemoryBackend, ResilientClient};

use crate::scripts::register_natives;

/// An [`InMemoryBackend`] with the tiers' native scripts registered, and a
/// [`ResilientClient`] named `name` over it (default settings). No server needed: use it
/// for examples, tests, and as the local fallback tier.
pub fn connect_in_memory(name: &str) -> (ResilientClient, InMemoryBackend) {
    let backend = InMemoryBackend::new();
    register_natives(&backend);
    let client = ResilientClient::builder(name, backend.clone()).build();
    (client, backend)
}
