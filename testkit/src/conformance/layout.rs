//! Cases for the commands a storage layout of fixed-offset strings and lexicographic
//! indexes is built on: `GETRANGE`, `SETRANGE`, `BITFIELD`, `PEXPIRE` with conditions,
//! `ZRANGEBYLEX`, `ZREVRANGEBYLEX` and `ZLEXCOUNT`.

use resilience_core::{Command, ErrorKind, Value, ZaddOptions};

use super::harness::*;

fn ints(list: &[Option<i64>]) -> Value {
    Value::Array(
        list.iter()
            .map(|v| v.map_or(Value::Nil, Value::Int))
            .collect(),
    )
}

pub(super) async fn string_ranges_body(c: &Case<'_>) -> CaseResult {
    let (k, missing) = (c.key("k"), c.key("missing"));
    c.expect(set(&k, "hello world"), Value::Okay).await?;
    c.expect(raw_on(&["GETRANGE", &k, "0", "4"], &k), b("hello"))
        .await?;
    c.expect(raw_on(&["GETRANGE", &k, "-5", "-1"], &k), b("world"))
        .await?;
    c.expect(raw_on(&["GETRANGE", &k, "6", "100"], &k), b("world"))
        .await?;
    c.expect(raw_on(&["GETRANGE", &k, "5", "2"], &k), b(""))
        .await?;
    c.expect(raw_on(&["GETRANGE", &missing, "0", "-1"], &missing), b(""))
        .await?;
    c.expect(raw_on(&["PEXPIRE", &k, "100000"], &k), Value::Int(1))
        .await?;
    c.expect(raw_on(&["SETRANGE", &k, "6", "there"], &k), Value::Int(11))
        .await?;
    c.expect(get(&k), b("hello there")).await?;
    let ttl = c.ok(Command::Pttl { key: k.clone() }).await?;
    c.check(
        matches!(ttl, Value::Int(ms) if ms > 0),
        "PTTL after SETRANGE",
        "the TTL kept",
        &ttl,
    )?;
    c.expect(
        raw_on(&["SETRANGE", &missing, "2", "x"], &missing),
        Value::Int(3),
    )
    .await?;
    c.expect(get(&missing), Value::Bytes("\0\0x".into()))
        .await?;
    c.expect_err(
        raw_on(&["SETRANGE", &k, "-1", "x"], &k),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    // APPEND creates a missing string, extends one in place keeping its TTL, and is
    // WRONGTYPE on anything else.
    let (appended, hash) = (c.key("appended"), c.key("hash"));
    c.expect(
        raw_on(&["APPEND", &appended, "ab"], &appended),
        Value::Int(2),
    )
    .await?;
    c.expect(raw_on(&["APPEND", &k, "!"], &k), Value::Int(12))
        .await?;
    c.expect(get(&k), b("hello there!")).await?;
    c.expect(raw_on(&["STRLEN", &k], &k), Value::Int(12))
        .await?;
    c.expect(raw_on(&["STRLEN", &missing], &missing), Value::Int(3))
        .await?;
    let nothing = c.key("nothing");
    c.expect(raw_on(&["STRLEN", &nothing], &nothing), Value::Int(0))
        .await?;
    let ttl = c.ok(Command::Pttl { key: k.clone() }).await?;
    c.check(
        matches!(ttl, Value::Int(ms) if ms > 0),
        "PTTL after APPEND",
        "the TTL kept",
        &ttl,
    )?;
    c.expect(
        Command::Hset {
            key: hash.clone(),
            fields: vec![("f".to_owned(), "v".into())],
        },
        Value::Int(1),
    )
    .await?;
    c.expect_err(
        raw_on(&["APPEND", &hash, "x"], &hash),
        ErrorKind::Server,
        Some("WRONGTYPE"),
    )
    .await?;
    c.expect_err(
        raw_on(&["STRLEN", &hash], &hash),
        ErrorKind::Server,
        Some("WRONGTYPE"),
    )
    .await?;
    Ok(())
}

pub(super) async fn bitfield_body(c: &Case<'_>) -> CaseResult {
    let (k, created) = (c.key("k"), c.key("created"));
    c.expect(set_with(&k, "\u{3}", Some(100_000), None), Value::Okay)
        .await?;
    let bump = |key: &str| {
        raw_on(
            &[
                "BITFIELD",
                key,
                "OVERFLOW",
                "SAT",
                "INCRBY",
                "u32",
                "8",
                "1",
                "SET",
                "i64",
                "40",
                "1700000000000",
            ],
            key,
        )
    };
    c.expect(bump(&k), ints(&[Some(1), Some(0)])).await?;
    c.expect(bump(&k), ints(&[Some(2), Some(1_700_000_000_000)]))
        .await?;
    c.expect(
        raw_on(&["BITFIELD", &k, "GET", "u8", "0", "GET", "u32", "#0"], &k),
        ints(&[Some(3), Some(3 << 24)]),
    )
    .await?;
    let ttl = c.ok(Command::Pttl { key: k.clone() }).await?;
    c.check(
        matches!(ttl, Value::Int(ms) if ms > 0),
        "PTTL after BITFIELD",
        "the TTL kept",
        &ttl,
    )?;
    c.expect(
        raw_on(
            &[
                "BITFIELD", &k, "SET", "u8", "0", "255", "INCRBY", "u8", "0", "1",
            ],
            &k,
        ),
        ints(&[Some(3), Some(0)]),
    )
    .await?;
    c.expect(
        raw_on(
            &[
                "BITFIELD", &k, "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "-200",
            ],
            &k,
        ),
        ints(&[None]),
    )
    .await?;
    // A write to a missing key creates it, zero-filled and with no TTL.
    c.expect(bump(&created), ints(&[Some(1), Some(0)])).await?;
    c.expect(
        Command::Pttl {
            key: created.clone(),
        },
        Value::Int(-1),
    )
    .await?;
    c.expect(
        raw_on(&["GETRANGE", &created, "0", "0"], &created),
        Value::Bytes("\0".into()),
    )
    .await?;
    c.expect_err(
        raw_on(&["BITFIELD", &k, "GET", "u64", "0"], &k),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    Ok(())
}

pub(super) async fn expire_conditions_body(c: &Case<'_>) -> CaseResult {
    let (k, persistent) = (c.key("k"), c.key("persistent"));
    c.expect(set(&persistent, "v"), Value::Okay).await?;
    c.expect(set_with(&k, "v", Some(100_000), None), Value::Okay)
        .await?;
    let pexpire = |key: &str, ms: &str, opt: &str| raw_on(&["PEXPIRE", key, ms, opt], key);
    // NX sets a TTL only where there is none: a miss's stray key can be removed with
    // `PEXPIRE key 0 NX` without touching a real entry.
    c.expect(pexpire(&k, "0", "NX"), Value::Int(0)).await?;
    c.expect(get(&k), b("v")).await?;
    c.expect(pexpire(&persistent, "50000", "XX"), Value::Int(0))
        .await?;
    c.expect(pexpire(&k, "50000", "GT"), Value::Int(0)).await?;
    c.expect(pexpire(&k, "200000", "GT"), Value::Int(1)).await?;
    c.expect(pexpire(&k, "300000", "LT"), Value::Int(0)).await?;
    c.expect(pexpire(&persistent, "50000", "GT"), Value::Int(0))
        .await?;
    c.expect(pexpire(&persistent, "50000", "LT"), Value::Int(1))
        .await?;
    c.expect(pexpire(&k, "0", "XX"), Value::Int(1)).await?;
    c.expect(get(&k), Value::Nil).await?;
    c.expect_err(
        raw_on(&["PEXPIRE", &persistent, "10", "NX", "GT"], &persistent),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect_err(
        raw_on(&["PEXPIRE", &persistent, "10", "NX", "XX"], &persistent),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    Ok(())
}

pub(super) async fn lex_ranges_body(c: &Case<'_>) -> CaseResult {
    let (z, missing) = (c.key("z"), c.key("missing"));
    let all = [
        (0.0, "a1"),
        (0.0, "a2"),
        (0.0, "b1"),
        (0.0, "b2"),
        (0.0, "c"),
    ];
    c.expect(zadd(&z, &all, ZaddOptions::default()), Value::Int(5))
        .await?;
    let by_lex = |args: &[&str]| {
        let mut line = vec!["ZRANGEBYLEX", z.as_str()];
        line.extend_from_slice(args);
        raw_on(&line, &z)
    };
    let rev_by_lex = |args: &[&str]| {
        let mut line = vec!["ZREVRANGEBYLEX", z.as_str()];
        line.extend_from_slice(args);
        raw_on(&line, &z)
    };
    c.expect(by_lex(&["-", "+"]), members(&["a1", "a2", "b1", "b2", "c"]))
        .await?;
    c.expect(by_lex(&["[b", "(c"]), members(&["b1", "b2"]))
        .await?;
    c.expect(by_lex(&["(a1", "[b1"]), members(&["a2", "b1"]))
        .await?;
    c.expect(
        by_lex(&["-", "+", "LIMIT", "1", "2"]),
        members(&["a2", "b1"]),
    )
    .await?;
    c.expect(rev_by_lex(&["(c", "[a2"]), members(&["b2", "b1", "a2"]))
        .await?;
    c.expect(
        rev_by_lex(&["+", "-", "LIMIT", "0", "2"]),
        members(&["c", "b2"]),
    )
    .await?;
    c.expect(raw_on(&["ZLEXCOUNT", &z, "[b", "+"], &z), Value::Int(3))
        .await?;
    c.expect(
        raw_on(&["ZLEXCOUNT", &missing, "-", "+"], &missing),
        Value::Int(0),
    )
    .await?;
    c.expect(
        raw_on(&["ZRANGEBYLEX", &missing, "-", "+"], &missing),
        members(&[]),
    )
    .await?;
    c.expect_err(by_lex(&["a", "+"]), ErrorKind::Server, Some("ERR"))
        .await?;
    Ok(())
}
