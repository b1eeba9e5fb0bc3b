//! # backend-fred
//!
//! Will hold `FredBackend`: the [`resilience_core::KvBackend`] trait implemented on the
//! `fred` crate, translating each `Command` to the driver and classifying its errors.
//! Being written; nothing here yet.
