//! A [mockall] mock of [`KvBackend`], for tests that need exact call expectations.
//!
//! [`MockKvBackend`] implements [`KvBackend`]; each trait method gets an `expect_*` method
//! that sets how many times it must be called, with which arguments, and what it returns.
//! Unmet expectations panic when the mock is dropped, so a test fails loudly when the code
//! under test calls the backend too often, too rarely, or with the wrong [`Command`].
//!
//! ```
//! use resilience_core::{Command, KvBackend, Value};
//! use testkit::mock::MockKvBackend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut backend = MockKvBackend::new();
//! backend
//!     .expect_execute()
//!     .times(1)
//!     .withf(|cmd| matches!(cmd, Command::Get { key } if key == "user:1"))
//!     .returning(|_| Ok(Value::Nil));
//! backend.expect_name().return_const("mock");
//!
//! let reply = backend.execute(Command::Get { key: "user:1".into() }).await;
//! assert_eq!(reply, Ok(Value::Nil));
//! # }
//! ```
//!
//! `execute` and `execute_batch` are async in the trait; the mock's `returning` closures
//! are plain synchronous closures that produce the `Result` directly.

#![allow(missing_docs)] // mockall generates undocumented items (expect_*, checkpoint, ...).

use async_trait::async_trait;
use mockall::mock;
use resilience_core::{BackendError, Command, KvBackend, Value};

mock! {
    /// A mockall mock of [`KvBackend`]. Create it with `MockKvBackend::new()`, set
    /// expectations with `expect_execute`, `expect_execute_batch` and `expect_name`.
    pub KvBackend {}

    #[async_trait]
    impl KvBackend for KvBackend {
        async fn execute(&self, cmd: Command) -> Result<Value, BackendError>;
        async fn execute_batch(
            &self,
            cmds: Vec<Command>,
            atomic: bool,
        ) -> Result<Vec<Value>, BackendError>;
        fn name(&self) -> &'static str;
    }
}
