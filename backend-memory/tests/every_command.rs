//! Every entry of the command table has an in-memory implementation, or a refusal that
//! says why (it needs a server). `Command` grows with the table and other crates match it
//! with a fallback arm, so this test is what keeps a new entry from being silently
//! unsupported here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use backend_memory::InMemoryBackend;
use resilience_core::{Command, KvBackend};

/// The commands the in-memory backend refuses on purpose, with the reason each refusal
/// names.
const NEEDS_A_SERVER: &[(&str, &str)] = &[
    ("BLPOP", "blocking"),
    ("BRPOP", "blocking"),
    ("BLMOVE", "blocking"),
    ("XGROUP CREATE", "consumer groups"),
    ("XREADGROUP", "consumer groups"),
    ("XACK", "consumer groups"),
    ("XPENDING", "consumer groups"),
    ("XAUTOCLAIM", "consumer groups"),
];

#[tokio::test]
async fn every_command_in_the_table_is_implemented_or_refused_with_a_reason() {
    let mut checked = 0;
    for spec in Command::SPECS.iter().filter(|s| s.name != "RAW") {
        let cmd = Command::from_args(&spec.example_args()).expect(spec.example);
        // A fresh keyspace per command: the example's reply may be an error of Redis's
        // own (wrong type, no such key), but never "not implemented".
        let backend = InMemoryBackend::new();
        let reply = backend.execute(cmd).await;
        let refusal = NEEDS_A_SERVER.iter().find(|(name, _)| *name == spec.name);
        match (reply, refusal) {
            (Err(e), Some((_, why))) => {
                let message = e.to_string();
                assert!(
                    message.contains("not implemented"),
                    "{}: {message}",
                    spec.name
                );
                assert!(message.contains(why), "{}: {message}", spec.name);
            }
            (Err(e), None) => assert!(
                !e.to_string().contains("not implemented"),
                "{} has no in-memory implementation: {e}",
                spec.name
            ),
            (Ok(reply), Some(_)) => panic!("{} was expected to refuse: {reply:?}", spec.name),
            (Ok(_), None) => {}
        }
        checked += 1;
    }
    assert!(checked > 100, "only {checked} commands checked");
}
