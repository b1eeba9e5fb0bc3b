//! Cases about streams (without consumer groups, which need a server) and HyperLogLog.

use resilience_core::Value;

use super::harness::*;

/// One stream entry as the canonical reply spells it.
fn entry(id: &str, fields: &[&str]) -> Value {
    Value::Array(vec![b(id), members(fields)])
}

pub(super) async fn streams_body(c: &Case<'_>) -> CaseResult {
    c.run("XADD {s} 1-1 f a", b("1-1")).await?;
    c.run("XADD {s} 1-2 f b g c", b("1-2")).await?;
    c.run("XADD {s} 2-* f d", b("2-0")).await?;
    c.run_err(
        "XADD {s} 1-1 f x",
        "ERR The ID specified in XADD is equal or smaller",
    )
    .await?;
    c.run_err("XADD {s} 0-0 f x", "ERR The ID specified in XADD")
        .await?;
    c.run("XLEN {s}", Value::Int(3)).await?;
    c.run("XLEN {missing}", Value::Int(0)).await?;
    c.run(
        "XRANGE {s} - +",
        Value::Array(vec![
            entry("1-1", &["f", "a"]),
            entry("1-2", &["f", "b", "g", "c"]),
            entry("2-0", &["f", "d"]),
        ]),
    )
    .await?;
    c.run(
        "XRANGE {s} (1-1 + COUNT 1",
        Value::Array(vec![entry("1-2", &["f", "b", "g", "c"])]),
    )
    .await?;
    c.run(
        "XREVRANGE {s} + - COUNT 2",
        Value::Array(vec![
            entry("2-0", &["f", "d"]),
            entry("1-2", &["f", "b", "g", "c"]),
        ]),
    )
    .await?;
    c.run("XRANGE {missing} - +", Value::Array(vec![])).await?;
    let read = c.line("XREAD COUNT 1 STREAMS {s} 1-1")?;
    let key = c.key("s");
    c.expect(
        read,
        Value::Map(vec![(
            b(&key),
            Value::Array(vec![entry("1-2", &["f", "b", "g", "c"])]),
        )]),
    )
    .await?;
    c.run("XREAD STREAMS {s} 2-0", Value::Map(vec![])).await?;
    c.run("XREAD STREAMS {s} $", Value::Map(vec![])).await?;
    c.run("XDEL {s} 1-1 9-9", Value::Int(1)).await?;
    c.run("XTRIM {s} MAXLEN = 1", Value::Int(1)).await?;
    c.run(
        "XRANGE {s} - +",
        Value::Array(vec![entry("2-0", &["f", "d"])]),
    )
    .await?;
    c.run("XADD {s} MINID = 3 3-0 f e", b("3-0")).await?;
    c.run("XLEN {s}", Value::Int(1)).await?;
    c.run("XADD {none} NOMKSTREAM * f v", Value::Nil).await?;
    c.run("EXISTS {none}", Value::Int(0)).await?;
    // An auto id is newer than every id before it.
    let id = c.ok(c.line("XADD {s} * f auto")?).await?;
    let ms = match &id {
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|id| id.split_once('-'))
            .and_then(|(ms, _)| ms.parse::<u64>().ok()),
        _ => None,
    };
    let newer = ms.is_some_and(|ms| ms > 3);
    c.check(newer, "XADD s * f auto", "an id after 3-0", &id)?;
    c.run("TYPE {s}", Value::Status("stream".into())).await?;
    c.run("SET {str} v", Value::Okay).await?;
    c.run_err("XADD {str} * f v", "WRONGTYPE").await?;
    // HyperLogLog: small counts are exact on a server too.
    c.run("PFADD {h} a b c a", Value::Int(1)).await?;
    c.run("PFADD {h} a", Value::Int(0)).await?;
    c.run("PFADD {h2} c d", Value::Int(1)).await?;
    c.run("PFCOUNT {h}", Value::Int(3)).await?;
    c.run("PFCOUNT {h} {h2}", Value::Int(4)).await?;
    c.run("PFCOUNT {missing}", Value::Int(0)).await?;
    c.run("TYPE {h}", Value::Status("string".into())).await?;
    Ok(())
}
