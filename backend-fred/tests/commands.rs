//! Every command against a real redis-server with its canonical reply shape, batches,
//! and error classification end to end: the tests of `testkit::scenarios::commands`,
//! written once for every backend, run on `FredBackend`.

mod common;

use backend_fred::FredBackend;

testkit::command_tests!(common::factory);

#[tokio::test]
async fn debug_output_never_shows_the_password() {
    let password = "pw-Debug-4711";
    let server = testkit::RedisServer::builder()
        .password(Some(password.into()))
        .spawn()
        .await
        .expect("redis-server must be installed (apt-get install redis-server)");
    let backend = FredBackend::connect(&server.connection_config())
        .await
        .expect("connects with the right password");
    let shown = format!("{backend:?}");
    assert!(!shown.contains(password), "{shown}");
}
