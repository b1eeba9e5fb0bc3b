//! Cases about hashes.

use bytes::Bytes;
use resilience_core::{Command, ErrorKind, Value};

use super::harness::*;

pub(super) async fn hashes_body(c: &Case<'_>) -> CaseResult {
    let (h, missing) = (c.key("h"), c.key("missing"));
    let hset = |fields: &[(&str, &str)]| Command::Hset {
        key: h.clone(),
        fields: fields
            .iter()
            .map(|(f, v)| ((*f).to_owned(), Bytes::copy_from_slice(v.as_bytes())))
            .collect(),
    };
    c.expect(hset(&[("a", "1"), ("b", "2")]), Value::Int(2))
        .await?;
    c.expect(hset(&[("a", "10"), ("c", "3")]), Value::Int(1))
        .await?;
    c.expect(hset(&[("d", "x"), ("d", "y")]), Value::Int(1))
        .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "a".into(),
        },
        b("10"),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "d".into(),
        },
        b("y"),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "zz".into(),
        },
        Value::Nil,
    )
    .await?;
    c.expect(
        Command::Hget {
            key: missing.clone(),
            field: "a".into(),
        },
        Value::Nil,
    )
    .await?;
    let cmd = Command::Hgetall { key: h.clone() };
    let all = c.ok(cmd.clone()).await?;
    let mut pairs = match &all {
        Value::Map(pairs) => pairs.clone(),
        other => return Err(c.fail(describe(&cmd), "a Map".into(), format!("{other:?}"))),
    };
    pairs.sort_by(|x, y| format!("{:?}", x.0).cmp(&format!("{:?}", y.0)));
    let want = vec![
        (b("a"), b("10")),
        (b("b"), b("2")),
        (b("c"), b("3")),
        (b("d"), b("y")),
    ];
    c.check(
        pairs == want,
        &describe(&cmd),
        &format!("{want:?} (any order)"),
        &all,
    )?;
    c.expect(
        Command::Hgetall {
            key: missing.clone(),
        },
        Value::Map(Vec::new()),
    )
    .await?;
    c.expect(
        Command::Hdel {
            key: h.clone(),
            fields: keys(&["a", "zz", "a"]),
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Hdel {
            key: missing.clone(),
            fields: keys(&["a"]),
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Hdel {
            key: h.clone(),
            fields: keys(&["b", "c", "d"]),
        },
        Value::Int(3),
    )
    .await?;
    c.expect(Command::Exists { keys: keys(&[&h]) }, Value::Int(0))
        .await?;
    // HINCRBY / HINCRBYFLOAT.
    let hi = c.key("counters");
    let hincr = |field: &str, delta: i64| Command::Hincrby {
        key: hi.clone(),
        field: field.into(),
        delta,
    };
    let hfloat = |field: &str, delta: f64| Command::Hincrbyfloat {
        key: hi.clone(),
        field: field.into(),
        delta,
    };
    c.expect(hincr("n", 5), Value::Int(5)).await?;
    c.expect(hincr("n", -8), Value::Int(-3)).await?;
    c.expect(
        Command::Hget {
            key: hi.clone(),
            field: "n".into(),
        },
        b("-3"),
    )
    .await?;
    c.expect(hfloat("f", 1.5), Value::Double(1.5)).await?;
    c.expect(hfloat("f", 2.25), Value::Double(3.75)).await?;
    c.expect(hfloat("n", 0.5), Value::Double(-2.5)).await?;
    c.expect(
        Command::Hget {
            key: hi.clone(),
            field: "f".into(),
        },
        b("3.75"),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: hi.clone(),
            field: "n".into(),
        },
        b("-2.5"),
    )
    .await?;
    c.expect_err(hincr("n", 1), ErrorKind::Server, Some("ERR"))
        .await?;
    c.expect(
        Command::Hset {
            key: hi.clone(),
            fields: vec![("s".into(), Bytes::from_static(b"abc"))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect_err(hfloat("s", 1.0), ErrorKind::Server, Some("ERR"))
        .await?;
    c.expect_err(hincr("s", 1), ErrorKind::Server, Some("ERR"))
        .await?;
    c.expect(
        Command::Hset {
            key: hi.clone(),
            fields: vec![("max".into(), Bytes::from(i64::MAX.to_string()))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect_err(hincr("max", 1), ErrorKind::Server, Some("ERR"))
        .await?;
    Ok(())
}

pub(super) async fn hash_reads_body(c: &Case<'_>) -> CaseResult {
    c.run("HSETNX {h} f v", Value::Int(1)).await?;
    c.run("HSETNX {h} f w", Value::Int(0)).await?;
    c.run("HGET {h} f", b("v")).await?;
    c.run("HSET {h} g 2", Value::Int(1)).await?;
    c.run(
        "HMGET {h} f g x",
        Value::Array(vec![b("v"), b("2"), Value::Nil]),
    )
    .await?;
    c.run("HMGET {missing} f", Value::Array(vec![Value::Nil]))
        .await?;
    c.run("HEXISTS {h} f", Value::Int(1)).await?;
    c.run("HEXISTS {h} x", Value::Int(0)).await?;
    c.run("HLEN {h}", Value::Int(2)).await?;
    c.run("HLEN {missing}", Value::Int(0)).await?;
    c.run_unordered("HKEYS {h}", &["f", "g"]).await?;
    c.run_unordered("HVALS {h}", &["v", "2"]).await?;
    c.run_unordered("HKEYS {missing}", &[]).await?;
    // A small hash is scanned in one step, in insertion order.
    c.run(
        "HSCAN {h} 0",
        Value::Array(vec![Value::Int(0), members(&["f", "v", "g", "2"])]),
    )
    .await?;
    c.run(
        "HSCAN {h} 0 MATCH g*",
        Value::Array(vec![Value::Int(0), members(&["g", "2"])]),
    )
    .await?;
    c.run("SET {str} v", Value::Okay).await?;
    c.run_err("HSETNX {str} f v", "WRONGTYPE").await?;
    Ok(())
}
