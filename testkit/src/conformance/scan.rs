//! The `SCAN` case.

use bytes::Bytes;
use resilience_core::{Command, Value};

use super::ConformanceFailure;
use super::harness::*;

pub(super) async fn scan_body(c: &Case<'_>) -> CaseResult {
    let mut want = Vec::new();
    for i in 0..25 {
        let k = c.key(&format!("all:{i:02}"));
        c.expect(set(&k, "v"), Value::Okay).await?;
        want.push(k);
    }
    let h = c.key("all:hash");
    c.expect(
        Command::Hset {
            key: h.clone(),
            fields: vec![("f".into(), Bytes::from_static(b"v"))],
        },
        Value::Int(1),
    )
    .await?;
    want.push(h);
    want.sort();
    let seen = scan_all(c, &format!("{}all:*", c.prefix), Some(5)).await?;
    c.check(
        seen == want,
        "full SCAN MATCH iteration",
        &format!("{want:?}"),
        &seen,
    )?;
    // Glob features: ?, [set], [^set], ranges and escapes.
    for name in ["g:a1", "g:b1", "g:c1", "g:a22", "g:x*y", "g:xzy"] {
        c.expect(set(&c.key(name), "v"), Value::Okay).await?;
    }
    let p = &c.prefix;
    for (pattern, names) in [
        ("g:[ab]?", &["g:a1", "g:b1"][..]),
        ("g:[^ab]1", &["g:c1"][..]),
        ("g:[a-b]1", &["g:a1", "g:b1"][..]),
        ("g:a*", &["g:a1", "g:a22"][..]),
        ("g:x\\*y", &["g:x*y"][..]),
        ("g:x?y", &["g:x*y", "g:xzy"][..]),
    ] {
        let mut expected: Vec<String> = names.iter().map(|n| format!("{p}{n}")).collect();
        expected.sort();
        let got = scan_all(c, &format!("{p}{pattern}"), None).await?;
        c.check(
            got == expected,
            &format!("SCAN MATCH {pattern}"),
            &format!("{expected:?}"),
            &got,
        )?;
    }
    Ok(())
}

/// Iterates SCAN to the end; returns the distinct keys seen, sorted.
async fn scan_all(
    c: &Case<'_>,
    pattern: &str,
    count: Option<u64>,
) -> Result<Vec<String>, ConformanceFailure> {
    let mut cursor = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    // Generous: even a huge shared database finishes long before this.
    for _ in 0..1_000_000 {
        let cmd = Command::Scan {
            cursor,
            pattern: Some(pattern.to_owned()),
            count,
            type_name: None,
        };
        let reply = c.ok(cmd.clone()).await?;
        let shape_error = || {
            c.fail(
                describe(&cmd),
                "Array[Int cursor, Array[Bytes]]".into(),
                format!("{reply:?}"),
            )
        };
        let Value::Array(parts) = &reply else {
            return Err(shape_error());
        };
        let [Value::Int(next), Value::Array(keys)] = parts.as_slice() else {
            return Err(shape_error());
        };
        for key in keys {
            let Value::Bytes(key) = key else {
                return Err(shape_error());
            };
            seen.insert(String::from_utf8_lossy(key).into_owned());
        }
        cursor = u64::try_from(*next).map_err(|_| shape_error())?;
        if cursor == 0 {
            return Ok(seen.into_iter().collect());
        }
    }
    Err(c.fail(
        format!("SCAN MATCH {pattern}"),
        "the cursor to return to 0".into(),
        "it never did".into(),
    ))
}
