//! Agent-id and namespace validation plus key building on arbitrary input: never panics,
//! and for every valid (namespace, id) each key's hash tag (between the first `{` and the
//! next `}`) is exactly the tier and the agent id (`stm:<id>`, `im:<id>`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use memory_tiers::fuzzing::agent_keys;
use memory_tiers::validate_namespace;
use memory_tiers::{MAX_AGENT_ID_BYTES, validate_agent_id};

fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = key[open + 1..].find('}')?;
    Some(&key[open + 1..open + 1 + close])
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the namespace, the rest the agent id.
    let (ns, id) = input.split_once('\n').unwrap_or(("agent_memory", input));
    let valid = validate_agent_id(id).is_ok();
    assert_eq!(
        valid,
        !id.is_empty()
            && id.len() <= MAX_AGENT_ID_BYTES
            && !id.chars().any(|c| c == '{' || c == '}' || c.is_control())
    );
    if !valid || validate_namespace(ns).is_err() {
        return;
    }
    for tier in ["stm", "im"] {
        let keys = agent_keys(ns, tier, id);
        let entry = keys.entry("01ARZ3NDEKTSV4RRFFQ69G5FAV");
        let tag = format!("{tier}:{id}");
        for key in [&keys.index, &entry] {
            assert_eq!(hash_tag(key), Some(tag.as_str()), "{key}");
            assert!(key.starts_with(&format!("{ns}:{{{tier}:")));
        }
    }
});
