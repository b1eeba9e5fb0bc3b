//! The key schema, and the validation that keeps it unambiguous.
//!
//! Its guide is in the docs of its main type.

use crate::error::{Error, Result};

/// The longest agent id accepted, in bytes.
pub const MAX_AGENT_ID_BYTES: usize = 256;

/// Checks an agent id: non-empty, at most [`MAX_AGENT_ID_BYTES`] bytes, no `{` `}` and no
/// control characters. Anything else is [`Error::InvalidInput`].
pub fn validate_agent_id(agent_id: &str) -> Result<()> {
    if agent_id.is_empty() {
        return Err(Error::InvalidInput("agent id is empty".to_owned()));
    }
    if agent_id.len() > MAX_AGENT_ID_BYTES {
        return Err(Error::InvalidInput(format!(
            "agent id is {} bytes, over the limit of {MAX_AGENT_ID_BYTES}",
            agent_id.len()
        )));
    }
    if let Some(c) = agent_id
        .chars()
        .find(|c| matches!(c, '{' | '}') || c.is_control())
    {
        return Err(Error::InvalidInput(format!(
            "agent id contains a forbidden character {c:?} (braces and control characters are not allowed)"
        )));
    }
    Ok(())
}

/// Checks a key namespace: non-empty, at most 64 bytes, ASCII letters, digits, `_`, `-`,
/// `.` and `:` only (so it can hold no hash tag).
pub fn validate_namespace(ns: &str) -> Result<()> {
    let ok = !ns.is_empty()
        && ns.len() <= 64
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "namespace {ns:?} must be 1..=64 bytes of [A-Za-z0-9_.:-]"
        )))
    }
}

/// One dimension of an agent's index: the first byte of its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Index {
    /// Memory ids by timestamp.
    Timeline,
    /// Memory ids by step number.
    Steps,
    /// Memory ids by importance.
    Importance,
    /// Memory ids by expiry deadline.
    Expiry,
}

impl Index {
    /// The byte its members start with.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Index::Timeline => b't',
            Index::Steps => b's',
            Index::Importance => b'i',
            Index::Expiry => b'x',
        }
    }
}

/// The keys of one agent in one tier.
///
/// An agent has two keys per tier, and one more per memory. Each agent's keys in one tier
/// share one Redis Cluster hash tag, `{<tier>:<agent_id>}`, so every command and script of
/// an operation runs on one slot, while an agent's two tiers may live on different shards:
///
/// ```text
/// <ns>:{<tier>:<agent_id>}:mem:<memory_id>   string: one entry (see the codec module)
/// <ns>:{<tier>:<agent_id>}:index             sorted set, every score 0: the agent's indexes
/// <ns>:{<tier>:<agent_id>}:vectors           string: the embeddings, packed for search
/// <ns>:{<tier>:<agent_id>}:postings          string: their words, packed for text scoring
/// ```
///
/// The index holds four members per entry, each a one-letter dimension, a fixed-width
/// lowercase hex value and the memory id, so that byte order is value order and one
/// `ZRANGEBYLEX` answers a range query on any dimension:
///
/// ```text
/// t<timestamp><id>                             by timestamp (Unix ms)
/// s<step><id>                                  by step number
/// i<importance><id>                            by importance (the f64's bits: order-preserving in [0, 1])
/// x<deadline><timestamp><step><importance><id> by expiry deadline (Unix ms), carrying
///                                              the other three so cleanup needs no entry
/// ```
///
/// `<tier>` is `stm` or `im`. Agent ids may not contain `{`, `}` or control characters, so
/// the agent part is exactly what lies between `{<tier>:` and the next `}`: two distinct
/// valid (tier, agent id) pairs can never produce the same key or hash tag, and no id can
/// move the hash tag. `:` is allowed in agent ids for that reason. Memory ids are ULIDs (26 Crockford base-32
/// characters), which contain no separator either.
///
/// Every key a command touches is one of these, passed as a key (`KEYS[]` or the command's
/// key position), never built inside a script: so Cluster, ACL key patterns and proxies
/// see every key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentKeys {
    /// Prefix of entry keys; an entry's key is this followed by its memory id.
    pub entry_prefix: String,
    /// The sorted set of index members (timeline, steps, importance and expiry).
    pub index: String,
    /// The string of packed embeddings that similarity searches read.
    pub vectors: String,
    /// The string of packed words (terms and counts) of the memories with an embedding,
    /// which similarity searches with a text term read.
    pub postings: String,
}

impl AgentKeys {
    /// The keys for `agent_id` in `tier` (`"stm"` or `"im"`) under namespace `ns`. The
    /// agent id must already be valid ([`validate_agent_id`]).
    pub(crate) fn new(ns: &str, tier: &str, agent_id: &str) -> Self {
        let base = format!("{ns}:{{{tier}:{agent_id}}}:");
        AgentKeys {
            entry_prefix: format!("{base}mem:"),
            index: format!("{base}index"),
            vectors: format!("{base}vectors"),
            postings: format!("{base}postings"),
        }
    }

    /// The key of one entry.
    pub fn entry(&self, memory_id: &str) -> String {
        let mut key = String::with_capacity(self.entry_prefix.len() + memory_id.len());
        key.push_str(&self.entry_prefix);
        key.push_str(memory_id);
        key
    }

    /// Every key this agent can have, with `ids`' entries: for tests and tooling.
    pub fn all_with(&self, ids: &[String]) -> Vec<String> {
        let mut keys = vec![
            self.index.clone(),
            self.vectors.clone(),
            self.postings.clone(),
        ];
        keys.extend(ids.iter().map(|id| self.entry(id)));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ids_are_refused() {
        for bad in ["", "a{b", "a}b", "tab\there", "nul\0", &"x".repeat(257)] {
            assert!(
                matches!(validate_agent_id(bad), Err(Error::InvalidInput(_))),
                "{bad:?}"
            );
        }
        for good in ["a", "agent-1", "ns:agent:7", "ünïcødé", &"x".repeat(256)] {
            assert!(validate_agent_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn keys_carry_the_tier_and_agent_as_hash_tag() {
        let k = AgentKeys::new("mem", "stm", "a:b");
        assert_eq!(k.index, "mem:{stm:a:b}:index");
        assert_eq!(k.vectors, "mem:{stm:a:b}:vectors");
        assert_eq!(
            k.entry("01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            "mem:{stm:a:b}:mem:01ARZ3NDEKTSV4RRFFQ69G5FAV"
        );
        assert_eq!(
            AgentKeys::new("mem", "im", "a:b").index,
            "mem:{im:a:b}:index"
        );
    }

    #[test]
    fn namespaces_cannot_hold_braces() {
        assert!(validate_namespace("agent_memory").is_ok());
        assert!(validate_namespace("{x}").is_err());
        assert!(validate_namespace("").is_err());
    }
}

#[cfg(test)]
mod proptests {
    //! Arbitrary agent ids and namespaces never panic validation, and every valid pair
    //! builds keys whose hash tag is exactly the tier and the agent id. The `fuzz/` crate's
    //! `agent_keys` target checks the same with coverage guidance.

    use super::*;
    use proptest::prelude::*;

    /// The text between the first `{` and the next `}`: what Redis Cluster hashes.
    fn hash_tag(key: &str) -> Option<&str> {
        let open = key.find('{')?;
        let close = key[open + 1..].find('}')?;
        Some(&key[open + 1..open + 1 + close])
    }

    fn check(ns: &str, id: &str) -> std::result::Result<(), TestCaseError> {
        let valid_id = validate_agent_id(id).is_ok();
        prop_assert_eq!(
            valid_id,
            !id.is_empty()
                && id.len() <= MAX_AGENT_ID_BYTES
                && !id.chars().any(|c| c == '{' || c == '}' || c.is_control())
        );
        if !(valid_id && validate_namespace(ns).is_ok()) {
            return Ok(());
        }
        for tier in ["stm", "im"] {
            let keys = AgentKeys::new(ns, tier, id);
            let entry = keys.entry("01ARZ3NDEKTSV4RRFFQ69G5FAV");
            let tag = format!("{tier}:{id}");
            for key in [&keys.index, &entry] {
                prop_assert_eq!(hash_tag(key), Some(tag.as_str()), "{}", key);
                let prefix = format!("{ns}:{{{tier}:");
                prop_assert!(key.starts_with(&prefix), "{}", key);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_ids_never_panic_and_valid_ones_tag_exactly(
            ns in prop_oneof![Just("agent_memory".to_owned()), ".{0,70}"],
            id in prop_oneof![".{0,300}", "[a-z:{}\\-]{0,12}", "\\PC{250,260}"],
        ) {
            check(&ns, &id)?;
        }

        #[test]
        fn distinct_valid_ids_never_share_a_key(a in "[a-z:{}]{1,6}", b in "[a-z:{}]{1,6}") {
            if a != b && validate_agent_id(&a).is_ok() && validate_agent_id(&b).is_ok() {
                for (ta, tb) in [("stm", "stm"), ("stm", "im"), ("im", "stm"), ("im", "im")] {
                    let (ka, kb) = (AgentKeys::new("ns", ta, &a), AgentKeys::new("ns", tb, &b));
                    prop_assert_ne!(&ka.index, &kb.index);
                    prop_assert_ne!(ka.entry("X"), kb.entry("X"));
                }
            }
        }
    }
}
