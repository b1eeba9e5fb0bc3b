//! The synchronization primitives of the breaker's concurrent core, behind one switch.
//!
//! Normal builds use `std`'s, unchanged. Built with `RUSTFLAGS="--cfg resilience_loom"`, the state
//! word, the open timestamp, the transition lock and the notification queue and flag use
//! [loom](https://docs.rs/loom)'s instead, so the model checker in `loom_tests.rs` can
//! explore every interleaving of `try_acquire`, the permit records and transitions:
//!
//! ```text
//! RUSTFLAGS="--cfg resilience_loom" cargo test -p resilience-core --release --lib loom
//! ```
//!
//! Only what makes the breaker's admission and transition decisions goes through here.
//! The failure counters (`window.rs`), the listener list and the watch channel stay on
//! `std`/tokio: loom treats them as ordinary memory, which is sound because none of them
//! is ever held across one of the primitives below.
//!
//! The switch is named `resilience_loom`, not the customary `loom`: `RUSTFLAGS` reach every
//! crate, and tokio built with `--cfg loom` drops `tokio::net` and `tokio::process`, which
//! the test kit needs.

#[cfg(resilience_loom)]
pub(super) use loom::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(resilience_loom)]
pub(super) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(resilience_loom))]
pub(super) use std::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(not(resilience_loom))]
pub(super) use std::sync::{Mutex, MutexGuard};
