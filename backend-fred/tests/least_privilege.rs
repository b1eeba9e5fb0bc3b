//! A least-privilege ACL user (no `@admin`, no `@dangerous`, keys of one namespace), as
//! managed services hand out: the client, its cache (`CLIENT TRACKING`) and the cluster
//! router work as that user. The scenarios live in `testkit::scenarios::least_privilege`
//! (written once, run for every backend).

mod common;

use testkit::scenarios::least_privilege;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_privilege_user_on_a_single_server() {
    least_privilege::least_privilege(common::factory)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)")
        .print_and_assert();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_privilege_user_on_a_cluster() {
    least_privilege::least_privilege_cluster(common::factory)
        .await
        .expect("the scenario must be able to run (are redis-server and redis-cli installed?)")
        .print_and_assert();
}
