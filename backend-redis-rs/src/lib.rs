//! # backend-redis-rs
//!
//! Will hold `RedisRsBackend`: the [`resilience_core::KvBackend`] trait implemented on the
//! `redis` crate (redis-rs), translating each `Command` to the driver and classifying its
//! errors. Being written; nothing here yet.
