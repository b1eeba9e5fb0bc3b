//! The scripting case: `SCRIPT LOAD`, `EVAL`, `EVALSHA`, `NOSCRIPT`.

use bytes::Bytes;
use resilience_core::{Command, ErrorKind, Value};

use super::SET_AND_INCR_LUA;
use super::harness::*;

pub(super) async fn scripts_body(c: &Case<'_>) -> CaseResult {
    let (k1, k2) = (c.key("value"), c.key("counter"));
    let sha = resilience_core::script_sha1(SET_AND_INCR_LUA);
    c.expect(
        Command::ScriptLoad {
            script: SET_AND_INCR_LUA.to_owned(),
        },
        b(&sha),
    )
    .await?;
    // A script nobody loaded: NOSCRIPT, a Server error.
    let unknown = resilience_core::script_sha1(&format!("return '{}'", c.prefix));
    let e = c
        .expect_err(
            Command::Evalsha {
                sha1: unknown,
                keys: vec![],
                args: vec![],
                idempotent: true,
            },
            ErrorKind::Server,
            Some("NOSCRIPT"),
        )
        .await?;
    c.check(
        e.is_noscript(),
        "EVALSHA of an unknown script",
        "is_noscript()",
        &e,
    )?;
    let args = |v: &'static str, d: &'static str| {
        vec![
            Bytes::from_static(v.as_bytes()),
            Bytes::from_static(d.as_bytes()),
        ]
    };
    c.expect(
        Command::Eval {
            script: SET_AND_INCR_LUA.to_owned(),
            keys: vec![k1.clone(), k2.clone()],
            args: args("first", "5"),
        },
        Value::Array(vec![Value::Int(5), b("first")]),
    )
    .await?;
    c.expect(
        Command::Evalsha {
            sha1: sha,
            keys: vec![k1.clone(), k2.clone()],
            args: args("second", "-2"),
            idempotent: false,
        },
        Value::Array(vec![Value::Int(3), b("second")]),
    )
    .await?;
    c.expect(get(&k2), b("3")).await?;
    Ok(())
}
