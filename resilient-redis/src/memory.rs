//! Agent memory on the client (feature `memory-tiers`): everything of the `memory-tiers`
//! crate, and [`connect`], its tiers on one URL.

pub use memory_tiers::*;

use crate::BackendKind;

/// The client names the tiers' clients get from [`connect`]: the short-term tier's and
/// the intermediate tier's.
pub const CLIENT_NAMES: [&str; 2] = ["agent_stm", "agent_im"];

/// Connects to `url` (any form [`crate::connect`] takes, `memory://` included) and returns
/// the builder of a [`TieredMemory`] whose two tiers are [`ResilientClient`]s over that one
/// backend, named as [`CLIENT_NAMES`] says, with the default settings. Set the tiers'
/// configurations and a fallback on the builder, then build it.
///
/// [`ResilientClient`]: crate::ResilientClient
///
/// # Errors
///
/// As [`crate::connect`].
///
/// # Cancel safety
///
/// As [`crate::connect`].
pub async fn connect(url: &str) -> Result<TieredMemoryBuilder, crate::Error> {
    let [stm, im] = connect_clients(url, BackendKind::for_url(url)).await?;
    Ok(TieredMemory::builder(stm, im))
}

/// The two clients [`connect`] builds its tiers on, with an explicit backend kind: the
/// short-term tier's and the intermediate tier's, over one backend, named as
/// [`CLIENT_NAMES`] says. For a caller that keeps the clients (to watch their breakers, or
/// shut them down) and builds the tiers itself.
///
/// # Errors
///
/// As [`crate::connect_with`].
///
/// # Cancel safety
///
/// As [`crate::connect`].
pub async fn connect_clients(
    url: &str,
    kind: BackendKind,
) -> Result<[crate::ResilientClient; 2], crate::Error> {
    let backend = crate::connect_backend_url(url, kind).await?;
    let [stm, im] = CLIENT_NAMES
        .map(|name| crate::ResilientClient::builder_arc(name, std::sync::Arc::clone(&backend)));
    Ok([stm.build()?, im.build()?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tiers_connect_by_url() -> Result<(), Error> {
        let memory = connect("memory://").await?.build()?;
        let agent = memory.agent("agent-1")?;
        let receipt = agent
            .store(
                MemoryInput::new(1, serde_json::json!("hello")),
                crate::Priority::Normal,
            )
            .await?;
        assert!(receipt.outcome.is_stored());
        assert_eq!(agent.recent(10).await?.len(), 1);
        Ok(())
    }
}
