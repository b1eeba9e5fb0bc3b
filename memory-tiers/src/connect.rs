//! The embedded default: [`connect_in_memory`].
//!
//! Connecting to a Redis server by URL, with the driver a build's features choose, is the
//! `resilient-redis` crate's job (`resilient_redis::memory::connect`); this crate takes
//! the clients it is given.

use backend_memory::InMemoryBackend;
use resilience_core::ResilientClient;

/// An [`InMemoryBackend`] (which runs the tiers' Lua scripts itself), and a
/// [`ResilientClient`] named `name` over it (default settings). No server needed: use it
/// for examples, tests, and as the local fallback tier.
pub fn connect_in_memory(name: &str) -> (ResilientClient, InMemoryBackend) {
    let backend = InMemoryBackend::new();
    let client = ResilientClient::new(name, backend.clone());
    (client, backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_memory_needs_no_server() -> Result<(), resilience_core::Error> {
        let (client, _backend) = connect_in_memory("t");
        assert_eq!(client.backend_name(), "memory");
        client.ping().await
    }
}
