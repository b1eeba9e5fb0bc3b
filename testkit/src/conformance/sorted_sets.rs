//! Cases about sorted sets: ordering, ranks, scores and `ZADD` options.

use resilience_core::{Command, ErrorKind, ScoreBound, SetCondition, Value, ZaddOptions};

use super::harness::*;

pub(super) async fn sorted_sets_body(c: &Case<'_>) -> CaseResult {
    let (z, missing) = (c.key("z"), c.key("missing"));
    let none = ZaddOptions::default();
    c.expect(
        zadd(&z, &[(1.0, "b"), (1.0, "a"), (0.0, "c"), (2.5, "d")], none),
        Value::Int(4),
    )
    .await?;
    c.expect(zadd(&z, &[(1.0, "B")], none), Value::Int(1))
        .await?;
    c.expect(zadd(&z, &[(3.0, "d")], none), Value::Int(0))
        .await?;
    c.expect(Command::Zcard { key: z.clone() }, Value::Int(5))
        .await?;
    c.expect(
        Command::Zcard {
            key: missing.clone(),
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "d".into(),
        },
        Value::Double(3.0),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "zz".into(),
        },
        Value::Nil,
    )
    .await?;
    // Ties order by member bytes: "B" (0x42) before "a" (0x61).
    c.expect(
        zrange(&z, 0, -1, false, false),
        members(&["c", "B", "a", "b", "d"]),
    )
    .await?;
    c.expect(
        zrange(&z, 0, -1, true, false),
        members(&["d", "b", "a", "B", "c"]),
    )
    .await?;
    c.expect(zrange(&z, -2, -1, false, false), members(&["b", "d"]))
        .await?;
    c.expect(
        zrange(&z, 1, 2, false, true),
        scored(&[("B", 1.0), ("a", 1.0)]),
    )
    .await?;
    c.expect(zrange(&z, 0, 0, true, true), scored(&[("d", 3.0)]))
        .await?;
    c.expect(zrange(&z, -100, 0, false, false), members(&["c"]))
        .await?;
    c.expect(zrange(&z, 3, 100, false, false), members(&["b", "d"]))
        .await?;
    c.expect(zrange(&z, 2, 1, false, false), members(&[]))
        .await?;
    c.expect(zrange(&z, 5, 10, false, false), members(&[]))
        .await?;
    c.expect(zrange(&missing, 0, -1, false, true), members(&[]))
        .await?;
    c.expect(
        Command::Zrem {
            key: z.clone(),
            members: keys(&["a", "zz"]),
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zrem {
            key: missing.clone(),
            members: keys(&["a"]),
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Zremrangebyrank {
            key: z.clone(),
            start: 0,
            stop: 1,
        },
        Value::Int(2),
    )
    .await?;
    c.expect(zrange(&z, 0, -1, false, false), members(&["b", "d"]))
        .await?;
    c.expect(
        Command::Zremrangebyrank {
            key: z.clone(),
            start: 5,
            stop: 10,
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Zremrangebyrank {
            key: missing.clone(),
            start: 0,
            stop: -1,
        },
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Zremrangebyrank {
            key: z.clone(),
            start: -1,
            stop: -1,
        },
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zrem {
            key: z.clone(),
            members: keys(&["b"]),
        },
        Value::Int(1),
    )
    .await?;
    c.expect(Command::Exists { keys: keys(&[&z]) }, Value::Int(0))
        .await?;
    // Infinite scores.
    c.expect(
        zadd(
            &z,
            &[
                (f64::INFINITY, "top"),
                (f64::NEG_INFINITY, "bottom"),
                (0.0, "mid"),
            ],
            none,
        ),
        Value::Int(3),
    )
    .await?;
    c.expect(
        zrange(&z, 0, -1, false, true),
        scored(&[
            ("bottom", f64::NEG_INFINITY),
            ("mid", 0.0),
            ("top", f64::INFINITY),
        ]),
    )
    .await?;
    Ok(())
}

pub(super) async fn zadd_options_body(c: &Case<'_>) -> CaseResult {
    let (z, missing) = (c.key("z"), c.key("missing"));
    let opts = |condition, greater_than, changed, incr| {
        let mut c = ZaddOptions::default();
        c.condition = condition;
        c.greater_than = greater_than;
        c.changed = changed;
        c.incr = incr;
        c
    };
    let nx = Some(SetCondition::IfNotExists);
    let xx = Some(SetCondition::IfExists);
    c.expect(
        zadd(
            &z,
            &[(1.0, "a"), (2.0, "b")],
            opts(None, None, false, false),
        ),
        Value::Int(2),
    )
    .await?;
    // Option errors.
    c.expect_err(
        zadd(&z, &[(1.0, "a")], opts(nx, Some(true), false, false)),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect_err(
        zadd(&z, &[(1.0, "a")], opts(nx, Some(false), false, false)),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    c.expect_err(
        zadd(&z, &[(1.0, "a"), (2.0, "b")], opts(None, None, false, true)),
        ErrorKind::Server,
        Some("ERR"),
    )
    .await?;
    // NX: only new members.
    c.expect(
        zadd(&z, &[(10.0, "a"), (3.0, "c")], opts(nx, None, false, false)),
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "a".into(),
        },
        Value::Double(1.0),
    )
    .await?;
    // XX: only existing members, CH counts updates.
    c.expect(
        zadd(&z, &[(5.0, "a"), (4.0, "new")], opts(xx, None, true, false)),
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "new".into(),
        },
        Value::Nil,
    )
    .await?;
    // XX on a missing key creates nothing.
    c.expect(
        zadd(&missing, &[(1.0, "a")], opts(xx, None, false, false)),
        Value::Int(0),
    )
    .await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&missing]),
        },
        Value::Int(0),
    )
    .await?;
    // GT: updates only upward, still adds new members; CH counts both.
    c.expect(
        zadd(
            &z,
            &[(0.5, "a"), (9.0, "b"), (7.0, "d")],
            opts(None, Some(true), true, false),
        ),
        Value::Int(2),
    )
    .await?;
    c.expect(
        zrange(&z, 0, -1, false, true),
        scored(&[("c", 3.0), ("a", 5.0), ("d", 7.0), ("b", 9.0)]),
    )
    .await?;
    // LT: updates only downward.
    c.expect(
        zadd(
            &z,
            &[(6.0, "a"), (1.0, "b")],
            opts(None, Some(false), true, false),
        ),
        Value::Int(1),
    )
    .await?;
    c.expect(
        Command::Zscore {
            key: z.clone(),
            member: "b".into(),
        },
        Value::Double(1.0),
    )
    .await?;
    // Without CH, updates are not counted.
    c.expect(
        zadd(&z, &[(2.0, "b")], opts(None, None, false, false)),
        Value::Int(0),
    )
    .await?;
    // INCR returns the new score, Nil when a condition blocks it.
    c.expect(
        zadd(&z, &[(1.5, "b")], opts(None, None, false, true)),
        Value::Double(3.5),
    )
    .await?;
    c.expect(
        zadd(&z, &[(2.0, "fresh")], opts(None, None, false, true)),
        Value::Double(2.0),
    )
    .await?;
    c.expect(
        zadd(&z, &[(1.0, "b")], opts(nx, None, false, true)),
        Value::Nil,
    )
    .await?;
    c.expect(
        zadd(&z, &[(1.0, "ghost")], opts(xx, None, false, true)),
        Value::Nil,
    )
    .await?;
    c.expect(
        zadd(&z, &[(-1.0, "b")], opts(None, Some(true), false, true)),
        Value::Nil,
    )
    .await?;
    c.expect(
        zadd(&z, &[(-1.0, "b")], opts(None, Some(false), false, true)),
        Value::Double(2.5),
    )
    .await?;
    c.expect(
        zadd(&missing, &[(1.0, "a")], opts(xx, None, false, true)),
        Value::Nil,
    )
    .await?;
    c.expect(
        Command::Exists {
            keys: keys(&[&missing]),
        },
        Value::Int(0),
    )
    .await?;
    Ok(())
}

pub(super) async fn zrangebyscore_body(c: &Case<'_>) -> CaseResult {
    use ScoreBound::{Exclusive, Inclusive, NegInf, PosInf};
    let (z, missing) = (c.key("z"), c.key("missing"));
    c.expect(
        zadd(
            &z,
            &[
                (1.0, "a"),
                (2.0, "b"),
                (2.0, "c"),
                (3.0, "d"),
                (f64::INFINITY, "inf"),
            ],
            ZaddOptions::default(),
        ),
        Value::Int(5),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(2.0), Inclusive(3.0), false, false, None),
        members(&["b", "c", "d"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Exclusive(1.0), Exclusive(3.0), false, false, None),
        members(&["b", "c"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Exclusive(2.0), PosInf, false, false, None),
        members(&["d", "inf"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, false, None),
        members(&["a", "b", "c", "d", "inf"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, Exclusive(2.0), false, true, None),
        scored(&[("a", 1.0)]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(2.0), PosInf, true, false, None),
        members(&["inf", "d", "c", "b"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(1.0), Inclusive(2.0), true, true, None),
        scored(&[("c", 2.0), ("b", 2.0), ("a", 1.0)]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, false, Some((1, 2))),
        members(&["b", "c"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, true, false, Some((1, 2))),
        members(&["d", "c"]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, true, Some((4, 10))),
        scored(&[("inf", f64::INFINITY)]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, false, Some((10, 10))),
        members(&[]),
    )
    .await?;
    c.expect(
        zbyscore(&z, NegInf, PosInf, false, false, Some((0, 0))),
        members(&[]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(3.0), Inclusive(1.0), false, false, None),
        members(&[]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Exclusive(2.0), Exclusive(2.0), false, false, None),
        members(&[]),
    )
    .await?;
    c.expect(
        zbyscore(&z, Inclusive(2.0), Inclusive(2.0), false, false, None),
        members(&["b", "c"]),
    )
    .await?;
    c.expect(
        zbyscore(&missing, NegInf, PosInf, false, true, None),
        members(&[]),
    )
    .await?;
    Ok(())
}

pub(super) async fn sorted_set_more_body(c: &Case<'_>) -> CaseResult {
    c.run("ZADD {z} 1 a 2 b 3 c", Value::Int(3)).await?;
    c.run("ZINCRBY {z} 2.5 a", Value::Double(3.5)).await?;
    c.run("ZINCRBY {new} 1 m", Value::Double(1.0)).await?;
    c.run("ZCOUNT {z} (2 +inf", Value::Int(2)).await?;
    c.run("ZCOUNT {z} -inf +inf", Value::Int(3)).await?;
    c.run("ZCOUNT {missing} -inf +inf", Value::Int(0)).await?;
    c.run("ZRANK {z} b", Value::Int(0)).await?;
    c.run("ZRANK {z} a", Value::Int(2)).await?;
    c.run("ZRANK {z} x", Value::Nil).await?;
    c.run(
        "ZMSCORE {z} a x",
        Value::Array(vec![Value::Double(3.5), Value::Nil]),
    )
    .await?;
    c.run("ZPOPMIN {z}", scored(&[("b", 2.0)])).await?;
    c.run("ZPOPMAX {z} 5", scored(&[("a", 3.5), ("c", 3.0)]))
        .await?;
    c.run("EXISTS {z}", Value::Int(0)).await?;
    c.run("ZPOPMIN {missing}", scored(&[])).await?;
    c.run("ZADD {z2} 1 m 2 n", Value::Int(2)).await?;
    c.run(
        "ZSCAN {z2} 0",
        Value::Array(vec![Value::Int(0), members(&["m", "1", "n", "2"])]),
    )
    .await?;
    c.run("SET {str} v", Value::Okay).await?;
    c.run_err("ZINCRBY {str} 1 m", "WRONGTYPE").await?;
    Ok(())
}
