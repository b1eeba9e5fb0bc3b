//! The size of a call's future: every `get`, `set` or `execute` in flight holds one, inside
//! the caller's own future (a task at 256-way concurrency holds 256 of them), and every
//! byte of it is written when the call starts and moved when the caller moves it.
//!
//! The hot path is a hand-written future (`client/call.rs`) beside the backend's boxed
//! future; the rare paths (client cache invalidation, `EVALSHA` reload) are boxed. Before
//! that, nested `async fn`s made `get`'s future 1,128 bytes. The bounds below leave room
//! for small changes and catch a return to nested state machines.

use backend_memory::InMemoryBackend;
use resilience_core::{Command, ResilientClient, SetOptions};

const BOUND: usize = 320;

#[test]
fn call_futures_stay_small() {
    let client = ResilientClient::builder("size", InMemoryBackend::new())
        .build()
        .expect("valid client settings");
    let sizes = [
        (
            "execute",
            std::mem::size_of_val(&client.execute(Command::Ping)),
        ),
        ("get", std::mem::size_of_val(&client.get("k"))),
        (
            "set",
            std::mem::size_of_val(&client.set("k", "v", SetOptions::default())),
        ),
        ("hget", std::mem::size_of_val(&client.hget("k", "f"))),
    ];
    for (name, size) in sizes {
        println!("{name}: {size} bytes");
        assert!(
            size <= BOUND,
            "the future of `{name}` is {size} bytes, over {BOUND}: is an async layer holding the command or the backend's future again?"
        );
    }
}
