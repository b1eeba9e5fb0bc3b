//! Cases about the string commands beyond `GET`/`SET`: `SET` options, `GETEX`, `GETDEL`,
//! `MSET`/`MSETNX`, the counters and the bits.

use resilience_core::Value;

use super::harness::*;

/// Year 2100, in Unix seconds: a deadline far enough away for any test.
const FAR_FUTURE_S: &str = "4102444800";

pub(super) async fn string_commands_body(c: &Case<'_>) -> CaseResult {
    c.run("SET {k} v GET", Value::Nil).await?;
    c.run("SET {k} w GET", b("v")).await?;
    c.run("SET {k} x NX GET", b("w")).await?;
    c.run("GET {k}", b("w")).await?;
    c.run("PEXPIRE {k} 100000", Value::Int(1)).await?;
    c.run("SET {k} y KEEPTTL", Value::Okay).await?;
    let ttl = c.ok(c.line("PTTL {k}")?).await?;
    c.check(
        matches!(ttl, Value::Int(ms) if ms > 0),
        "PTTL k",
        "a TTL kept",
        &ttl,
    )?;
    c.run(&format!("SET {{k}} z PXAT {FAR_FUTURE_S}000"), Value::Okay)
        .await?;
    let ttl = c.ok(c.line("TTL {k}")?).await?;
    c.check(
        matches!(ttl, Value::Int(s) if s > 1_000_000),
        "TTL k",
        "years",
        &ttl,
    )?;
    c.run("GETEX {k} PERSIST", b("z")).await?;
    c.run("TTL {k}", Value::Int(-1)).await?;
    c.run("GETEX {k} PX 100000", b("z")).await?;
    let ttl = c.ok(c.line("PTTL {k}")?).await?;
    c.check(
        matches!(ttl, Value::Int(ms) if ms > 0),
        "PTTL k",
        "a TTL set",
        &ttl,
    )?;
    c.run("GETEX {missing} PX 100", Value::Nil).await?;
    c.run("GETDEL {k}", b("z")).await?;
    c.run("GETDEL {k}", Value::Nil).await?;
    c.run("MSET {a} 1 {b} 2", Value::Okay).await?;
    c.run("MGET {a} {b}", Value::Array(vec![b("1"), b("2")]))
        .await?;
    c.run("MSETNX {a} 9 {c} 3", Value::Int(0)).await?;
    c.run("EXISTS {c}", Value::Int(0)).await?;
    c.run("MSETNX {c} 3 {d} 4", Value::Int(1)).await?;
    c.run("INCR {n}", Value::Int(1)).await?;
    c.run("DECR {n}", Value::Int(0)).await?;
    c.run("DECRBY {n} 5", Value::Int(-5)).await?;
    c.run("INCRBYFLOAT {n} 1.5", Value::Double(-3.5)).await?;
    c.run("GET {n}", b("-3.5")).await?;
    c.run("INCRBYFLOAT {f} 10", Value::Double(10.0)).await?;
    c.run("GET {f}", b("10")).await?;
    c.run("SET {word} v", Value::Okay).await?;
    c.run_err("INCR {word}", "ERR value is not an integer")
        .await?;
    c.run_err("INCRBYFLOAT {word} 1", "ERR value is not a valid float")
        .await?;
    c.run("SETBIT {bits} 7 1", Value::Int(0)).await?;
    c.run("SETBIT {bits} 7 0", Value::Int(1)).await?;
    c.run("SETBIT {bits} 1 1", Value::Int(0)).await?;
    c.run("GETBIT {bits} 1", Value::Int(1)).await?;
    c.run("GETBIT {bits} 100", Value::Int(0)).await?;
    c.run("GETBIT {missing} 3", Value::Int(0)).await?;
    c.run("SETBIT {bits} 20 1", Value::Int(0)).await?;
    c.run("BITCOUNT {bits}", Value::Int(2)).await?;
    c.run("BITCOUNT {bits} 0 0", Value::Int(1)).await?;
    c.run("BITCOUNT {bits} -1 -1", Value::Int(1)).await?;
    c.run("BITCOUNT {missing}", Value::Int(0)).await?;
    c.run("GET {bits}", Value::Bytes(vec![0x40, 0x00, 0x08].into()))
        .await?;
    c.run_err(
        "SETBIT {bits} 7 2",
        "ERR bit is not an integer or out of range",
    )
    .await?;
    Ok(())
}
