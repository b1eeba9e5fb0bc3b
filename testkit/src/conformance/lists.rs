//! Cases about lists.

use resilience_core::Value;

use super::harness::*;

pub(super) async fn lists_body(c: &Case<'_>) -> CaseResult {
    c.run("RPUSH {l} a b c", Value::Int(3)).await?;
    c.run("LPUSH {l} z", Value::Int(4)).await?;
    c.run("LRANGE {l} 0 -1", members(&["z", "a", "b", "c"]))
        .await?;
    c.run("LRANGE {l} -2 10", members(&["b", "c"])).await?;
    c.run("LRANGE {missing} 0 -1", members(&[])).await?;
    c.run("LLEN {l}", Value::Int(4)).await?;
    c.run("LLEN {missing}", Value::Int(0)).await?;
    c.run("LINDEX {l} -1", b("c")).await?;
    c.run("LINDEX {l} 9", Value::Nil).await?;
    c.run("LSET {l} 1 A", Value::Okay).await?;
    c.run_err("LSET {l} 9 x", "ERR index out of range").await?;
    c.run_err("LSET {missing} 0 x", "ERR no such key").await?;
    c.run("LPOP {l}", b("z")).await?;
    c.run("RPOP {l} 2", members(&["c", "b"])).await?;
    c.run("LRANGE {l} 0 -1", members(&["A"])).await?;
    c.run("LPOP {missing}", Value::Nil).await?;
    c.run("LPOP {missing} 2", members(&[])).await?;
    c.run("RPUSH {l} x A x", Value::Int(4)).await?;
    c.run("LREM {l} 0 x", Value::Int(2)).await?;
    c.run("LREM {l} -1 A", Value::Int(1)).await?;
    c.run("LRANGE {l} 0 -1", members(&["A"])).await?;
    c.run("RPUSH {l} B C D", Value::Int(4)).await?;
    c.run("LTRIM {l} 1 2", Value::Okay).await?;
    c.run("LRANGE {l} 0 -1", members(&["B", "C"])).await?;
    // Trimming everything deletes the key.
    c.run("LTRIM {l} 5 10", Value::Okay).await?;
    c.run("EXISTS {l}", Value::Int(0)).await?;
    c.run("RPUSH {src} 1 2 3", Value::Int(3)).await?;
    c.run("LMOVE {src} {dst} LEFT RIGHT", b("1")).await?;
    c.run("LMOVE {src} {dst} RIGHT LEFT", b("3")).await?;
    c.run("LRANGE {dst} 0 -1", members(&["3", "1"])).await?;
    c.run("LMOVE {missing} {dst} LEFT LEFT", Value::Nil).await?;
    c.run("SET {s} v", Value::Okay).await?;
    c.run_err("LPUSH {s} x", "WRONGTYPE").await?;
    c.run_err("LMOVE {src} {s} LEFT LEFT", "WRONGTYPE").await?;
    // The failed move moved nothing.
    c.run("LRANGE {src} 0 -1", members(&["2"])).await?;
    Ok(())
}
