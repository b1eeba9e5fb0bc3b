//! [`Filter`]: which memories a search may return, for
//! [`AgentMemory::find`](crate::AgentMemory::find) and
//! [`AgentMemory::similar`](crate::AgentMemory::similar).
//!
//! Its guide is in the docs of its main type.

use serde_json::Value;

use crate::entry::MemoryEntry;
use crate::error::{Error, Result};
use crate::keys::Index;

/// Conditions a memory must meet, all of them. The default matches every memory.
///
/// ```
/// use memory_tiers::Filter;
/// use serde_json::json;
///
/// let filter = Filter::new()
///     .memory_type("observation")
///     .step_range(10, 20)
///     .attribute("room", json!("kitchen"))
///     .content_contains("door");
/// # let _ = filter;
/// ```
///
/// One range of a filter runs on the server, as a range of the agent's index: the time
/// range if there is one, else the step range, else the importance range. Everything else
/// (the other ranges, the memory type, attributes, content) is checked on each entry the
/// server returns, page by page, until the limit is met.
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use]
pub struct Filter {
    memory_type: Option<String>,
    time: Option<(u64, u64)>,
    steps: Option<(u64, u64)>,
    importance: Option<(f64, f64)>,
    attributes: Vec<(String, Value)>,
    /// Lowercased.
    content: Option<String>,
}

impl Filter {
    /// A filter that matches every memory.
    pub fn new() -> Self {
        Filter::default()
    }

    /// Only memories of this `memory_type`.
    pub fn memory_type(mut self, memory_type: impl Into<String>) -> Self {
        self.memory_type = Some(memory_type.into());
        self
    }

    /// Only memories with `from_ms <= timestamp <= to_ms` (runs on the server).
    pub fn time_range(mut self, from_ms: u64, to_ms: u64) -> Self {
        self.time = Some((from_ms, to_ms));
        self
    }

    /// Only memories with `from <= step_number <= to` (on the server when there is no time
    /// range).
    pub fn step_range(mut self, from: u64, to: u64) -> Self {
        self.steps = Some((from, to));
        self
    }

    /// Only memories with `min <= importance <= max` (on the server when there is neither
    /// a time nor a step range). NaN bounds are [`Error::InvalidInput`] when searched.
    pub fn importance_range(mut self, min: f64, max: f64) -> Self {
        self.importance = Some((min, max));
        self
    }

    /// Only memories whose content has `value` at `path`: a top-level field name of an
    /// object content, or a JSON pointer (`/pos/x`). Equality is JSON equality (`1` and
    /// `1.0` differ); IM at compression levels 1 and 2 rounds floats and drops transient
    /// fields, so compare those with care.
    pub fn attribute(mut self, path: impl Into<String>, value: Value) -> Self {
        self.attributes.push((path.into(), value));
        self
    }

    /// Only memories whose content holds `text` in one of its strings, ignoring case. An
    /// empty text is [`Error::InvalidInput`] when searched.
    pub fn content_contains(mut self, text: &str) -> Self {
        self.content = Some(text.to_lowercase());
        self
    }

    /// Refuses bounds no memory could be compared with.
    pub(crate) fn check(&self) -> Result<()> {
        if let Some((min, max)) = self.importance
            && (min.is_nan() || max.is_nan())
        {
            return Err(Error::InvalidInput(
                "importance bounds must be numbers".to_owned(),
            ));
        }
        if self.content.as_deref() == Some("") {
            return Err(Error::InvalidInput(
                "content search text is empty".to_owned(),
            ));
        }
        Ok(())
    }

    /// The range that runs on the server: the index and its bounds.
    pub(crate) fn narrowing(&self) -> Option<(Index, f64, f64)> {
        if let Some((a, b)) = self.time {
            Some((Index::Timeline, a as f64, b as f64))
        } else if let Some((a, b)) = self.steps {
            Some((Index::Steps, a as f64, b as f64))
        } else {
            self.importance
                .map(|(min, max)| (Index::Importance, min, max))
        }
    }

    /// Whether `entry` meets every condition.
    pub(crate) fn matches(&self, entry: &MemoryEntry) -> bool {
        let within = |r: Option<(u64, u64)>, v: u64| r.is_none_or(|(a, b)| a <= v && v <= b);
        within(self.time, entry.timestamp)
            && within(self.steps, entry.step_number)
            && self.importance.is_none_or(|(min, max)| {
                min <= entry.metadata.importance_score && entry.metadata.importance_score <= max
            })
            && self
                .memory_type
                .as_ref()
                .is_none_or(|t| *t == entry.metadata.memory_type)
            && self
                .attributes
                .iter()
                .all(|(path, want)| attribute(&entry.content, path) == Some(want))
            && self
                .content
                .as_ref()
                .is_none_or(|text| contains_text(&entry.content, text))
    }

    /// Whether only the server-side range (or nothing) is checked: then every entry the
    /// range lists matches.
    pub(crate) fn is_range_only(&self) -> bool {
        let ranges = [
            self.time.is_some(),
            self.steps.is_some(),
            self.importance.is_some(),
        ];
        self.memory_type.is_none()
            && self.attributes.is_empty()
            && self.content.is_none()
            && ranges.iter().filter(|r| **r).count() <= 1
    }
}

fn attribute<'v>(content: &'v Value, path: &str) -> Option<&'v Value> {
    if path.starts_with('/') {
        content.pointer(path)
    } else {
        content.get(path)
    }
}

/// Whether any string in `v` (object keys aside) contains `lowered`, ignoring case.
fn contains_text(v: &Value, lowered: &str) -> bool {
    match v {
        Value::String(s) => s.to_lowercase().contains(lowered),
        Value::Array(items) => items.iter().any(|i| contains_text(i, lowered)),
        Value::Object(map) => map.values().any(|i| contains_text(i, lowered)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{MemoryMetadata, Tier};
    use serde_json::json;
    use ulid::Ulid;

    fn entry(step: u64, content: Value) -> MemoryEntry {
        MemoryEntry {
            memory_id: Ulid::nil(),
            agent_id: "a".to_owned(),
            step_number: step,
            timestamp: 1000 + step,
            content,
            metadata: MemoryMetadata {
                creation_time: 0,
                last_access_time: 0,
                compression_level: 0,
                importance_score: 0.25,
                retrieval_count: 0,
                memory_type: "observation".to_owned(),
                current_tier: Tier::Stm,
            },
            embedding: None,
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let e = entry(
            5,
            json!({"room": "Kitchen", "pos": {"x": 3}, "notes": ["A Red DOOR"]}),
        );
        let yes = [
            Filter::new(),
            Filter::new().memory_type("observation"),
            Filter::new().time_range(1005, 1005),
            Filter::new().step_range(0, 5),
            Filter::new().importance_range(0.25, 1.0),
            Filter::new().attribute("room", json!("Kitchen")),
            Filter::new().attribute("/pos/x", json!(3)),
            Filter::new().content_contains("red door"),
            Filter::new().content_contains("KITCHEN"),
        ];
        for f in yes {
            assert!(f.matches(&e), "{f:?}");
        }
        let no = [
            Filter::new().memory_type("action"),
            Filter::new().time_range(0, 1004),
            Filter::new().step_range(6, 9),
            Filter::new().importance_range(0.3, 1.0),
            Filter::new().attribute("room", json!("kitchen")),
            Filter::new().attribute("/pos/x", json!(3.0)),
            Filter::new().attribute("missing", json!(null)),
            Filter::new().content_contains("window"),
            // Keys are not content.
            Filter::new().content_contains("room"),
            Filter::new().step_range(0, 5).memory_type("action"),
        ];
        for f in no {
            assert!(!f.matches(&e), "{f:?}");
        }
    }

    #[test]
    fn the_server_runs_one_range_in_a_fixed_preference() {
        assert_eq!(Filter::new().narrowing(), None);
        let all = Filter::new()
            .importance_range(0.1, 0.9)
            .step_range(1, 2)
            .time_range(3, 4);
        assert_eq!(all.narrowing(), Some((Index::Timeline, 3.0, 4.0)));
        assert!(!all.is_range_only());
        let steps = Filter::new().importance_range(0.1, 0.9).step_range(1, 2);
        assert_eq!(steps.narrowing(), Some((Index::Steps, 1.0, 2.0)));
        let imp = Filter::new().importance_range(0.1, 0.9);
        assert_eq!(imp.narrowing(), Some((Index::Importance, 0.1, 0.9)));
        assert!(imp.is_range_only());
    }

    #[test]
    fn unusable_filters_are_invalid_input() {
        for f in [
            Filter::new().importance_range(f64::NAN, 1.0),
            Filter::new().content_contains(""),
        ] {
            assert!(matches!(f.check(), Err(Error::InvalidInput(_))), "{f:?}");
        }
    }
}
