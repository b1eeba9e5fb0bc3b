//! Every end-to-end scenario of `testkit::scenarios` on `FredBackend`, written once for every
//! backend ([`testkit::backend_tests!`]): commands, Redis Cluster (with the chaos run), a
//! dead server, a least-privilege user, lost replies, Pub/Sub, a kill under load,
//! Sentinel and the chaos soak. One family at a time: `-- commands::`, `-- cluster::`, …
//! (`--nocapture` prints each scenario's numbers).

mod common;

testkit::backend_tests!(crate::common::factory);
