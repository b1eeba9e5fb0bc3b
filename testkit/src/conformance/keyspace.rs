//! Cases about keys as a whole: `UNLINK`, `PERSIST`, `EXPIREAT`, `TYPE`, `COPY`, `SCAN …
//! TYPE`, and `PUBLISH` (which touches no key).

use resilience_core::{Command, Value};

use super::harness::*;

pub(super) async fn keyspace_body(c: &Case<'_>) -> CaseResult {
    c.run("SET {a} 1", Value::Okay).await?;
    c.run("UNLINK {a} {missing}", Value::Int(1)).await?;
    c.run("SET {k} v PX 100000", Value::Okay).await?;
    c.run("PERSIST {k}", Value::Int(1)).await?;
    c.run("PERSIST {k}", Value::Int(0)).await?;
    c.run("PERSIST {missing}", Value::Int(0)).await?;
    c.run("TTL {k}", Value::Int(-1)).await?;
    c.run("EXPIREAT {k} 4102444800", Value::Int(1)).await?;
    c.run("EXPIREAT {k} 4102444800 NX", Value::Int(0)).await?;
    c.run("EXPIREAT {k} 4102444801 GT", Value::Int(1)).await?;
    let ttl = c.ok(c.line("TTL {k}")?).await?;
    c.check(
        matches!(ttl, Value::Int(s) if s > 1_000_000),
        "TTL k",
        "years",
        &ttl,
    )?;
    c.run("EXPIREAT {missing} 4102444800", Value::Int(0))
        .await?;
    // A time in the past deletes the key.
    c.run("EXPIREAT {k} 1", Value::Int(1)).await?;
    c.run("EXISTS {k}", Value::Int(0)).await?;
    c.run("SET {str} v", Value::Okay).await?;
    c.run("RPUSH {list} x", Value::Int(1)).await?;
    c.run("SADD {set} x", Value::Int(1)).await?;
    c.run("HSET {hash} f v", Value::Int(1)).await?;
    c.run("ZADD {zset} 1 m", Value::Int(1)).await?;
    for (key, kind) in [
        ("str", "string"),
        ("list", "list"),
        ("set", "set"),
        ("hash", "hash"),
        ("zset", "zset"),
        ("missing", "none"),
    ] {
        c.run(&format!("TYPE {{{key}}}"), Value::Status(kind.into()))
            .await?;
    }
    c.run("COPY {str} {copy}", Value::Int(1)).await?;
    c.run("GET {copy}", b("v")).await?;
    c.run("COPY {str} {copy}", Value::Int(0)).await?;
    c.run("SET {str} w", Value::Okay).await?;
    c.run("COPY {str} {copy} REPLACE", Value::Int(1)).await?;
    c.run("GET {copy}", b("w")).await?;
    c.run("COPY {list} {list2}", Value::Int(1)).await?;
    c.run("LRANGE {list2} 0 -1", members(&["x"])).await?;
    c.run("COPY {missing} {copy}", Value::Int(0)).await?;
    // SCAN … TYPE: only the lists under this case's prefix.
    let mut cursor = 0u64;
    let mut lists = Vec::new();
    loop {
        let page = c
            .ok(Command::Scan {
                cursor,
                pattern: Some(format!("{}*", c.prefix)),
                count: Some(1000),
                type_name: Some("list".into()),
            })
            .await?;
        let Value::Array(parts) = page else {
            return Err(c.fail(
                "SCAN … TYPE list".into(),
                "a page".into(),
                format!("{page:?}"),
            ));
        };
        match parts.as_slice() {
            [Value::Int(next), Value::Array(keys)] => {
                lists.extend(keys.iter().cloned());
                cursor = *next as u64;
            }
            other => {
                return Err(c.fail(
                    "SCAN … TYPE list".into(),
                    "a page".into(),
                    format!("{other:?}"),
                ));
            }
        }
        if cursor == 0 {
            break;
        }
    }
    lists.sort_by_key(|v| format!("{v:?}"));
    let want = vec![b(&c.key("list")), b(&c.key("list2"))];
    c.check(lists == want, "SCAN … TYPE list", "the two lists", &lists)?;
    // Nobody subscribes here: the message reaches no one.
    c.run("PUBLISH {channel} hello", Value::Int(0)).await?;
    Ok(())
}
