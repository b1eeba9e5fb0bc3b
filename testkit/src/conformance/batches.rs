//! The batch case: pipelines and `MULTI`/`EXEC` transactions.

use bytes::Bytes;
use resilience_core::{Command, Value, ZaddOptions};

use super::harness::*;

pub(super) async fn batches_body(c: &Case<'_>) -> CaseResult {
    let (a, s, t, u) = (c.key("a"), c.key("s"), c.key("t"), c.key("u"));
    let seq = |key: &str| {
        vec![
            set(key, "1"),
            Command::Incrby {
                key: key.to_owned(),
                delta: 2,
            },
            get(key),
            Command::Exists {
                keys: vec![key.to_owned()],
            },
        ]
    };
    let want = vec![Value::Okay, Value::Int(3), b("3"), Value::Int(1)];
    c.expect_batch(seq(&a), false, want.clone()).await?;
    c.expect_batch(seq(&a), true, want).await?;
    c.expect_batch(
        vec![
            Command::Hset {
                key: s.clone(),
                fields: vec![("f".into(), Bytes::from_static(b"v"))],
            },
            Command::Hgetall { key: s.clone() },
            zadd(&t, &[(1.0, "m")], ZaddOptions::default()),
            zrange(&t, 0, -1, false, true),
            Command::Del {
                keys: vec![s.clone(), t.clone()],
            },
        ],
        true,
        vec![
            Value::Int(1),
            Value::Map(vec![(b("f"), b("v"))]),
            Value::Int(1),
            scored(&[("m", 1.0)]),
            Value::Int(2),
        ],
    )
    .await?;
    // A queue-time error (wrong number of arguments) discards the whole transaction.
    c.expect_batch_server_error(vec![set(&u, "applied?"), raw(&["INCR"])], true)
        .await?;
    c.expect(get(&u), Value::Nil).await?;
    // A runtime error fails the call, but Redis still applies the other commands, in both
    // transactions and pipelines.
    for atomic in [true, false] {
        c.expect_batch_server_error(
            vec![
                set(&s, "not a number"),
                Command::Incrby {
                    key: s.clone(),
                    delta: 1,
                },
                set(&t, "after"),
            ],
            atomic,
        )
        .await?;
        c.expect(get(&s), b("not a number")).await?;
        c.expect(get(&t), b("after")).await?;
        c.expect(
            Command::Del {
                keys: vec![s.clone(), t.clone()],
            },
            Value::Int(2),
        )
        .await?;
    }
    Ok(())
}
