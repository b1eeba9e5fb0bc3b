//! A dead server: the first call after a kill fails fast as `Unavailable`, a `High`
//! non-idempotent write made then is queued and applied once, the breaker opens and closes
//! in time, and a write whose reply is lost in flight is `Timeout`. The scenarios live in
//! `testkit::scenarios::dead_server` (written once, run for every backend); these tests
//! print their numbers (`-- --nocapture`) and assert their promises.

mod common;

use testkit::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_fast_and_truthfully() {
    scenarios::dead_server(common::factory)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)")
        .print_and_assert();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_lost_in_flight_is_timeout_and_applied_at_most_once() {
    scenarios::in_flight_then_death(common::factory)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)")
        .print_and_assert();
}
