//! Cases about keys, strings, expiry, types and raw commands.

use std::time::Duration;

use bytes::Bytes;
use resilience_core::{Command, ErrorKind, ScoreBound, SetCondition, Value, ZaddOptions};

use super::harness::*;
use super::wait_for;

pub(super) async fn ping_and_raw_body(c: &Case<'_>) -> CaseResult {
    let k = c.key("k");
    let n = c.key("n");
    c.expect(Command::Ping, Value::Status("PONG".into()))
        .await?;
    c.expect(raw(&["PING"]), Value::Status("PONG".into()))
        .await?;
    c.expect(raw(&["ECHO", "hello"]), b("hello")).await?;
    c.expect(set(&k, "v"), Value::Okay).await?;
    c.expect(raw_on(&["TYPE", &k], &k), Value::Status("string".into()))
        .await?;
    c.expect(raw_on(&["INCR", &n], &n), Value::Int(1)).await?;
    c.expect_err(
        raw(&["NOSUCHCOMMAND-CONFORMANCE", "a"]),
        ErrorKind::Server,
        None,
    )
    .await?;
    c.expect_err(raw(&["ECHO"]), ErrorKind::Server, Some("ERR"))
        .await?;
    Ok(())
}

pub(super) async fn strings_body(c: &Case<'_>) -> CaseResult {
    let (k, missing, h, n) = (c.key("k"), c.key("missing"), c.key("h"), c.key("n"));
    c.expect(get(&missing), Value::Nil).await?;
    c.expect(set(&k, "v1"), Value::Okay).await?;
    c.expect(get(&k), b("v1")).await?;
    c.expect(set(&k, "v2"), Value::Okay).await?;
    c.expect(get(&k), b("v2")).await?;
    let nx = Some(SetCondition::IfNotExists);
    let xx = Some(SetCondition::IfExists);
    c.expect(set_with(&k, "nx", None, nx), Value::Nil).await?;
    c.expect(set_with(&missing, "xx", None, xx), Value::Nil)
        .await?;
    c.expect(get(&missing), Value::Nil).await?;
    c.expect(set_with(&k, "xx", None, xx), Value::Okay).await?;
    c.expect(get(&k), b("xx")).await?;
    c.expect(set_with(&n, "nx", None, nx), Value::Okay).await?;
    c.expect(get(&n), b("nx")).await?;
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"v"))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Mget {
            keys: keys(&[&k, &missing, &h, &k]),
        },
        Value::Array(vec![b("xx"), Value::Nil, Value::Nil, b("xx")]),
    )
    .await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&k, &k, &missing, &h]),
        },
        Value::Int(3),
    )
    .await?;
    c.expect(
        Command::Del {
            keys: keys(&[&k, &k, &missing]),
        },
        Value::Int(1),
    )
    .await?;
    c.expect(Command::Exists { keys: keys(&[&k]) }, Value::Int(0))
        .await?;
    // INCRBY
    let counter = c.key("counter");
    c.expect(
        Command::Incrby {
            key: counter.clone(),
            delta: 5,
        },
        Value::Int(5),
    )
    .await?;
    c.expect(
        Command::Incrby {
            key: counter.clone(),
            delta: -7,
        },
        Value::Int(-2),
    )
    .await?;
    c.expect(get(&counter), b("-2")).await?;
    c.expect(set(&counter, "abc"), Value::Okay).await?;
    c.expect_err(
        Command::Incrby {
            key: counter.clone(),
            delta: 1,
        },
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect(set(&counter, " 1"), Value::Okay).await?;
    c.expect_err(
        Command::Incrby {
            key: counter.clone(),
            delta: 1,
        },
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect(set(&counter, i64::MAX.to_string()), Value::Okay)
        .await?;
    c.expect_err(
        Command::Incrby {
            key: counter.clone(),
            delta: 1,
        },
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect(get(&counter), b(&i64::MAX.to_string())).await?;
    Ok(())
}

pub(super) async fn binary_body(c: &Case<'_>) -> CaseResult {
    let all_bytes: Bytes = (0u8..=255).collect::<Vec<u8>>().into();
    let bin = c.key("bin");
    c.expect(set(&bin, all_bytes.clone()), Value::Okay).await?;
    c.expect(get(&bin), Value::Bytes(all_bytes.clone())).await?;
    let h = c.key("h");
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![
                ("bin".into(), all_bytes.clone()),
                ("empty".into(), Bytes::new()),
            ],
        },
        Value::Int(2),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "bin".into(),
        },
        Value::Bytes(all_bytes),
    )
    .await?;
    c.expect(
        Command::Hget {
            key: h.clone(),
            field: "empty".into(),
        },
        Value::Bytes(Bytes::new()),
    )
    .await?;
    // An empty string is a value, not a missing key.
    let empty = c.key("empty");
    c.expect(set(&empty, Bytes::new()), Value::Okay).await?;
    c.expect(get(&empty), Value::Bytes(Bytes::new())).await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&empty]),
        },
        Value::Int(1),
    )
    .await?;
    // 1 MiB.
    let large: Bytes = (0..1024 * 1024)
        .map(|i: u32| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let big = c.key("large");
    c.expect(set(&big, large.clone()), Value::Okay).await?;
    c.expect(get(&big), Value::Bytes(large)).await?;
    // Unicode keys.
    let uni = c.key("ключ-🔑-键");
    c.expect(set(&uni, "ü"), Value::Okay).await?;
    c.expect(get(&uni), b("ü")).await?;
    c.expect(
        Command::Mget {
            keys: vec![uni.clone(), bin.clone()],
        },
        Value::Array(vec![
            b("ü"),
            Value::Bytes((0u8..=255).collect::<Vec<u8>>().into()),
        ]),
    )
    .await?;
    Ok(())
}

pub(super) async fn ttl_body(c: &Case<'_>) -> CaseResult {
    let (k, missing) = (c.key("k"), c.key("missing"));
    c.expect(
        Command::Ttl {
            key: missing.clone(),
        },
        Value::Int(-2),
    )
    .await?;
    c.expect(
        Command::Pttl {
            key: missing.clone(),
        },
        Value::Int(-2),
    )
    .await?;
    c.expect(
        Command::Expire {
            key: missing.clone(),
            seconds: 10,
            condition: None,
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Pexpire {
            key: missing.clone(),
            millis: 10,
            condition: None,
        },
        Value::Int(0),
    )
    .await?;
    c.expect(set(&k, "v"), Value::Okay).await?;
    c.expect(Command::Ttl { key: k.clone() }, Value::Int(-1))
        .await?;
    c.expect(Command::Pttl { key: k.clone() }, Value::Int(-1))
        .await?;
    c.expect(
        Command::Expire {
            key: k.clone(),
            seconds: 100,
            condition: None,
        },
        Value::Int(1),
    )
    .await?;
    let cmd = Command::Ttl { key: k.clone() };
    let ttl = c.ok(cmd.clone()).await?;
    c.check(
        matches!(ttl, Value::Int(99..=100)),
        &describe(&cmd),
        "Int in 99..=100",
        &ttl,
    )?;
    let cmd = Command::Pttl { key: k.clone() };
    let pttl = c.ok(cmd.clone()).await?;
    c.check(
        matches!(pttl, Value::Int(90_000..=100_000)),
        &describe(&cmd),
        "Int in 90000..=100000",
        &pttl,
    )?;
    // SET clears the TTL.
    c.expect(set(&k, "v2"), Value::Okay).await?;
    c.expect(Command::Ttl { key: k.clone() }, Value::Int(-1))
        .await?;
    // SET PX sets one; INCRBY keeps it.
    let n = c.key("n");
    c.expect(set_with(&n, "1", Some(100_000), None), Value::Okay)
        .await?;
    c.expect(
        Command::Incrby {
            key: n.clone(),
            delta: 1,
        },
        Value::Int(2),
    )
    .await?;
    let cmd = Command::Pttl { key: n.clone() };
    let pttl = c.ok(cmd.clone()).await?;
    c.check(
        matches!(pttl, Value::Int(90_000..=100_000)),
        &describe(&cmd),
        "Int in 90000..=100000",
        &pttl,
    )?;
    // PEXPIRE 0 and EXPIRE -1 delete.
    c.expect(
        Command::Pexpire {
            key: n.clone(),
            millis: 0,
            condition: None,
        },
        Value::Int(1),
    )
    .await?;
    c.expect(get(&n), Value::Nil).await?;
    c.expect(
        Command::Expire {
            key: k.clone(),
            seconds: -1,
            condition: None,
        },
        Value::Int(1),
    )
    .await?;
    c.expect(Command::Exists { keys: keys(&[&k]) }, Value::Int(0))
        .await?;
    // A hash expires like a string.
    let h = c.key("h");
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"v"))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Pexpire {
            key: h.clone(),
            millis: 100_000,
            condition: None,
        },
        Value::Int(1),
    )
    .await?;
    let cmd = Command::Ttl { key: h.clone() };
    let ttl = c.ok(cmd.clone()).await?;
    c.check(
        matches!(ttl, Value::Int(90..=100)),
        &describe(&cmd),
        "Int in 90..=100",
        &ttl,
    )?;
    // Real expiry: PX 50, then poll until gone (2 s deadline).
    let short = c.key("short");
    c.expect(set_with(&short, "v", Some(50), None), Value::Okay)
        .await?;
    let backend = c.backend;
    let gone = wait_for(Duration::from_secs(2), || {
        let key = short.clone();
        async move { matches!(backend.execute(get(&key)).await, Ok(Value::Nil)) }
    })
    .await;
    c.check(
        gone,
        "GET after SET PX 50",
        "Nil within 2 s",
        "the value was still there",
    )?;
    c.expect(
        Command::Exists {
            keys: keys(&[&short]),
        },
        Value::Int(0),
    )
    .await?;
    c.expect(Command::Ttl { key: short.clone() }, Value::Int(-2))
        .await?;
    // SET NX treats an expired key as missing.
    c.expect(
        set_with(&short, "again", None, Some(SetCondition::IfNotExists)),
        Value::Okay,
    )
    .await?;
    Ok(())
}

pub(super) async fn wrong_type_body(c: &Case<'_>) -> CaseResult {
    let (s, h, z) = (c.key("s"), c.key("h"), c.key("z"));
    c.expect(set(&s, "v"), Value::Okay).await?;
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"1"))],
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        zadd(&z, &[(1.0, "m")], ZaddOptions::default()),
        Value::Int(1),
    )
    .await?;
    let wrong: Vec<Command> = vec![
        Command::Hget {
            key: s.clone(),
            field: "f".into(),
        },
        Command::Hset {
            key: s.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"1"))],
        },
        Command::Hgetall { key: s.clone() },
        Command::Hdel {
            key: z.clone(),
            fields: keys(&["f"]),
        },
        Command::Hincrby {
            key: s.clone(),
            field: "f".into(),
            delta: 1,
        },
        Command::Hincrbyfloat {
            key: z.clone(),
            field: "f".into(),
            delta: 1.0,
        },
        zadd(&s, &[(1.0, "m")], ZaddOptions::default()),
        zrange(&h, 0, -1, false, false),
        zbyscore(
            &s,
            ScoreBound::NegInf,
            ScoreBound::PosInf,
            false,
            false,
            None,
        ),
        Command::Zrem {
            key: h.clone(),
            members: keys(&["m"]),
        },
        Command::Zcard { key: s.clone() },
        Command::Zscore {
            key: h.clone(),
            member: "m".into(),
        },
        Command::Zremrangebyrank {
            key: s.clone(),
            start: 0,
            stop: -1,
        },
        get(&h),
        get(&z),
        Command::Incrby {
            key: h.clone(),
            delta: 1,
        },
    ];
    for cmd in wrong {
        c.expect_err(cmd, ErrorKind::Server, Some("WRONGTYPE"))
            .await?;
    }
    // Type-agnostic commands work on any type.
    c.expect(
        Command::Mget {
            keys: keys(&[&s, &h, &z]),
        },
        Value::Array(vec![b("v"), Value::Nil, Value::Nil]),
    )
    .await?;
    c.expect(Command::Ttl { key: h.clone() }, Value::Int(-1))
        .await?;
    c.expect(
        Command::Expire {
            key: z.clone(),
            seconds: 100,
            condition: None,
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&s, &h, &z]),
        },
        Value::Int(3),
    )
    .await?;
    c.expect(raw_on(&["TYPE", &z], &z), Value::Status("zset".into()))
        .await?;
    // SET replaces any type.
    c.expect(set(&h, "now a string"), Value::Okay).await?;
    c.expect(get(&h), b("now a string")).await?;
    c.expect(
        Command::Del {
            keys: keys(&[&s, &h, &z]),
        },
        Value::Int(3),
    )
    .await?;
    Ok(())
}
