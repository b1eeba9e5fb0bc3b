//! Cases about sets.

use resilience_core::Value;

use super::harness::*;

pub(super) async fn sets_body(c: &Case<'_>) -> CaseResult {
    c.run("SADD {s} a b c a", Value::Int(3)).await?;
    c.run("SADD {s} a d", Value::Int(1)).await?;
    c.run("SCARD {s}", Value::Int(4)).await?;
    c.run("SCARD {missing}", Value::Int(0)).await?;
    c.run_unordered("SMEMBERS {s}", &["a", "b", "c", "d"])
        .await?;
    c.run_unordered("SMEMBERS {missing}", &[]).await?;
    c.run("SISMEMBER {s} a", Value::Int(1)).await?;
    c.run("SISMEMBER {s} z", Value::Int(0)).await?;
    c.run(
        "SMISMEMBER {s} a z",
        Value::Array(vec![Value::Int(1), Value::Int(0)]),
    )
    .await?;
    c.run("SREM {s} a z", Value::Int(1)).await?;
    c.run("SADD {t} c d e", Value::Int(3)).await?;
    c.run_unordered("SINTER {s} {t}", &["c", "d"]).await?;
    c.run_unordered("SUNION {s} {t}", &["b", "c", "d", "e"])
        .await?;
    c.run_unordered("SDIFF {s} {t}", &["b"]).await?;
    c.run_unordered("SDIFF {s} {missing}", &["b", "c", "d"])
        .await?;
    c.run_unordered("SINTER {s} {missing}", &[]).await?;
    // Asking for more than there is pops (or samples) them all.
    c.run_unordered("SRANDMEMBER {s} 5", &["b", "c", "d"])
        .await?;
    c.run_unordered("SPOP {t} 3", &["c", "d", "e"]).await?;
    c.run("EXISTS {t}", Value::Int(0)).await?;
    c.run("SPOP {missing}", Value::Nil).await?;
    c.run("SRANDMEMBER {missing}", Value::Nil).await?;
    // A negative count may repeat members: only the length and membership are fixed.
    let sample = c.ok(c.line("SRANDMEMBER {s} -5")?).await?;
    let ok = matches!(&sample, Value::Array(items) if items.len() == 5
        && items.iter().all(|m| ["b", "c", "d"].iter().any(|w| *m == b(w))));
    c.check(ok, "SRANDMEMBER s -5", "five members of s", &sample)?;
    let popped = c.ok(c.line("SPOP {s}")?).await?;
    let ok = ["b", "c", "d"].iter().any(|w| popped == b(w));
    c.check(ok, "SPOP s", "one member of s", &popped)?;
    c.run("SCARD {s}", Value::Int(2)).await?;
    // A small set is scanned in one step.
    let page = c.ok(c.line("SSCAN {s} 0")?).await?;
    let ok = matches!(&page, Value::Array(p) if p.len() == 2 && p[0] == Value::Int(0)
        && matches!(&p[1], Value::Array(m) if m.len() == 2));
    c.check(ok, "SSCAN s 0", "[0, two members]", &page)?;
    c.run("SET {str} v", Value::Okay).await?;
    c.run_err("SADD {str} x", "WRONGTYPE").await?;
    c.run_err("SINTER {s} {str}", "WRONGTYPE").await?;
    Ok(())
}
