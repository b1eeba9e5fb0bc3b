//! A lost reply to each non-idempotent family (`INCR`, `LPUSH`, `ZINCRBY`, `APPEND`,
//! `SPOP`, `XADD *`): applied exactly once, the caller told `Timeout`. The scenario lives in
//! `testkit::scenarios::lost_reply` (written once, run for every backend).

mod common;

use testkit::scenarios::lost_reply;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_is_a_timeout_and_the_write_applied_once() {
    lost_reply::lost_reply(common::factory)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)")
        .print_and_assert();
}
