//! The kill-and-restart scenario at the `ResilientClient` level over `RedisRsBackend`:
//! a real redis-server SIGKILLed under load and restarted on the same port.
//!
//! The scenario itself lives in `testkit::scenarios` (written once, run for every backend);
//! this test prints its numbers (`cargo test -p backend-redis-rs --test resilient_kill --
//! --nocapture`) and asserts its promises.

mod common;

use testkit::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_then_restart_loses_nothing_and_applies_nothing_twice() {
    scenarios::kill_and_restart(common::factory)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)")
        .print_and_assert();
}
