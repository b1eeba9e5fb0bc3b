//! End-to-end command tests for one backend on a real redis-server, written once and run
//! from each backend crate's `tests/scenarios.rs`: every command with its canonical reply
//! shape, batches (pipelined and atomic), and error classification end to end (WRONGTYPE,
//! NOSCRIPT, unknown command, NOAUTH and a wrong password that is never echoed, a refused
//! connect).
//!
//! Each function is a whole test: it spawns its own server, connects through the factory
//! it is given (so this crate never depends on a driver crate) and panics, like `assert!`,
//! on the first mismatch.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use backend_memory::InMemoryBackend;
//! # use resilience_core::{ConnectionConfig, KvBackend};
//! # use testkit::scenarios::{BackendFuture, commands};
//! fn connect(config: ConnectionConfig) -> BackendFuture {
//!     // A real test passes e.g. `RedisRsBackend::connect(&config)` here.
//!     Box::pin(async move {
//!         let _ = config;
//!         Ok(Arc::new(InMemoryBackend::new()) as Arc<dyn KvBackend>)
//!     })
//! }
//! # async fn demo() {
//! commands::hashes(connect).await;
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use resilience_core::{
    Command, ConnectionConfig, ErrorKind, Limit, ScoreBound, SetCondition, SetOptions, Value,
    ZaddOptions,
};

use super::BackendFuture;
use super::support::*;
use crate::server::RedisServer;

/// Expands to one test per test of [`scenarios::commands`](crate::scenarios::commands),
/// each calling it with `$connect` (a `fn(ConnectionConfig) -> BackendFuture`), one at a
/// time ([`run_serially`](crate::scenarios::backend_tests::run_serially)).
/// [`backend_tests!`](crate::backend_tests) includes it.
#[macro_export]
macro_rules! command_tests {
    ($connect:path) => {
        $crate::serial_test!(strings_and_keys, async {
            $crate::scenarios::commands::strings_and_keys($connect).await;
        });
        $crate::serial_test!(hashes, async {
            $crate::scenarios::commands::hashes($connect).await;
        });
        $crate::serial_test!(sorted_sets, async {
            $crate::scenarios::commands::sorted_sets($connect).await;
        });
        $crate::serial_test!(scan_scripts_and_raw, async {
            $crate::scenarios::commands::scan_scripts_and_raw($connect).await;
        });
        $crate::serial_test!(batches_pipelined_and_atomic, async {
            $crate::scenarios::commands::batches_pipelined_and_atomic($connect).await;
        });
        $crate::serial_test!(server_errors_classified_end_to_end, async {
            $crate::scenarios::commands::server_errors_classified_end_to_end($connect).await;
        });
        $crate::serial_test!(auth_errors_end_to_end_never_show_the_password, async {
            $crate::scenarios::commands::auth_errors_end_to_end_never_show_the_password($connect)
                .await;
        });
        $crate::serial_test!(db_is_selected_and_url_connects, async {
            $crate::scenarios::commands::db_is_selected_and_url_connects($connect).await;
        });
        $crate::serial_test!(consumer_groups, async {
            $crate::scenarios::commands::consumer_groups($connect).await;
        });
        $crate::serial_test!(blocking_commands_wait_on_their_own_connection, async {
            $crate::scenarios::commands::blocking_commands_wait_on_their_own_connection($connect)
                .await;
        });
        $crate::serial_test!(refused_connect_is_unavailable_and_fast, async {
            $crate::scenarios::commands::refused_connect_is_unavailable_and_fast($connect).await;
        });
    };
}

/// See the module docs.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn strings_and_keys<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = spawn_server().await;
    let r = connected(&connect, &server).await;
    assert_eq!(
        r.execute(Command::Ping).await.unwrap(),
        Value::Status("PONG".into())
    );
    assert_eq!(r.execute(set("k", "v")).await.unwrap(), Value::Okay);
    assert_eq!(r.execute(get("k")).await.unwrap(), Value::Bytes(b("v")));
    assert_eq!(r.execute(get("missing")).await.unwrap(), Value::Nil);
    let nx = Command::Set {
        key: "k".into(),
        value: b("other"),
        options: SetOptions::default()
            .with_expire_ms(60_000)
            .with_condition(SetCondition::IfNotExists),
    };
    assert_eq!(r.execute(nx).await.unwrap(), Value::Nil, "unmet NX is Nil");
    let binary = Command::Set {
        key: "bin".into(),
        value: bytes::Bytes::from_static(b"\x00\xff\r\n"),
        options: SetOptions::with_ttl(Duration::from_secs(100)),
    };
    assert_eq!(r.execute(binary).await.unwrap(), Value::Okay);
    assert_eq!(
        r.execute(get("bin")).await.unwrap(),
        Value::Bytes(bytes::Bytes::from_static(b"\x00\xff\r\n"))
    );
    let ttl = r
        .execute(Command::Ttl { key: "bin".into() })
        .await
        .unwrap()
        .into_int()
        .unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(
        r.execute(Command::Pttl { key: "k".into() }).await.unwrap(),
        Value::Int(-1)
    );
    assert_eq!(
        r.execute(Command::Mget {
            keys: vec!["k".into(), "missing".into()]
        })
        .await
        .unwrap(),
        Value::Array(vec![Value::Bytes(b("v")), Value::Nil])
    );
    assert_eq!(
        r.execute(Command::Exists {
            keys: vec!["k".into(), "k".into(), "missing".into()]
        })
        .await
        .unwrap(),
        Value::Int(2)
    );
    assert_eq!(
        r.execute(Command::Incrby {
            key: "n".into(),
            delta: 5
        })
        .await
        .unwrap(),
        Value::Int(5)
    );
    assert_eq!(
        r.execute(Command::Expire {
            key: "n".into(),
            seconds: 50,
            condition: None,
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
    assert_eq!(
        r.execute(Command::Pexpire {
            key: "nope".into(),
            millis: 50,
            condition: None,
        })
        .await
        .unwrap(),
        Value::Int(0)
    );
    assert_eq!(
        r.execute(Command::Del {
            keys: vec!["k".into(), "n".into(), "missing".into()]
        })
        .await
        .unwrap(),
        Value::Int(2)
    );
}

/// See the module docs.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn hashes<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = spawn_server().await;
    let r = connected(&connect, &server).await;
    let hset = Command::Hset {
        key: "h".into(),
        fields: vec![("a".into(), b("1")), ("b".into(), b("2"))],
    };
    assert_eq!(r.execute(hset).await.unwrap(), Value::Int(2));
    assert_eq!(
        r.execute(Command::Hget {
            key: "h".into(),
            field: "a".into()
        })
        .await
        .unwrap(),
        Value::Bytes(b("1"))
    );
    let mut all = match r
        .execute(Command::Hgetall { key: "h".into() })
        .await
        .unwrap()
    {
        Value::Map(pairs) => pairs,
        other => panic!("HGETALL must be a Map, got {other:?}"),
    };
    all.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    assert_eq!(
        all,
        vec![
            (Value::Bytes(b("a")), Value::Bytes(b("1"))),
            (Value::Bytes(b("b")), Value::Bytes(b("2")))
        ]
    );
    assert_eq!(
        r.execute(Command::Hgetall { key: "none".into() })
            .await
            .unwrap(),
        Value::Map(vec![])
    );
    assert_eq!(
        r.execute(Command::Hincrby {
            key: "h".into(),
            field: "a".into(),
            delta: 10
        })
        .await
        .unwrap(),
        Value::Int(11)
    );
    assert_eq!(
        r.execute(Command::Hincrbyfloat {
            key: "h".into(),
            field: "f".into(),
            delta: 0.5
        })
        .await
        .unwrap(),
        Value::Double(0.5)
    );
    assert_eq!(
        r.execute(Command::Hdel {
            key: "h".into(),
            fields: vec!["a".into(), "zz".into()]
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
}

fn pair(m: &str, s: f64) -> Value {
    Value::Array(vec![Value::Bytes(b(m)), Value::Double(s)])
}

/// See the module docs.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn sorted_sets<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = spawn_server().await;
    let r = connected(&connect, &server).await;
    let zadd = Command::Zadd {
        key: "z".into(),
        members: vec![
            (1.0, "a".into()),
            (2.5, "b".into()),
            (f64::INFINITY, "c".into()),
        ],
        options: ZaddOptions::default(),
    };
    assert_eq!(r.execute(zadd).await.unwrap(), Value::Int(3));
    let incr = Command::Zadd {
        key: "z".into(),
        members: vec![(0.5, "a".into())],
        options: ZaddOptions::default().with_incr(true),
    };
    assert_eq!(r.execute(incr).await.unwrap(), Value::Double(1.5));
    let blocked = Command::Zadd {
        key: "z".into(),
        members: vec![(9.0, "a".into())],
        options: ZaddOptions::default()
            .with_incr(true)
            .with_condition(SetCondition::IfNotExists),
    };
    assert_eq!(r.execute(blocked).await.unwrap(), Value::Nil);
    assert_eq!(
        r.execute(Command::Zrange {
            key: "z".into(),
            start: 0,
            stop: -1,
            rev: false,
            with_scores: true
        })
        .await
        .unwrap(),
        Value::Array(vec![
            pair("a", 1.5),
            pair("b", 2.5),
            pair("c", f64::INFINITY)
        ])
    );
    assert_eq!(
        r.execute(Command::Zrange {
            key: "z".into(),
            start: 0,
            stop: 0,
            rev: true,
            with_scores: false
        })
        .await
        .unwrap(),
        Value::Array(vec![Value::Bytes(b("c"))])
    );
    assert_eq!(
        r.execute(Command::Zrangebyscore {
            key: "z".into(),
            min: ScoreBound::Exclusive(1.5),
            max: ScoreBound::PosInf,
            rev: true,
            with_scores: true,
            limit: Some(Limit {
                offset: 0,
                count: 1
            }),
        })
        .await
        .unwrap(),
        Value::Array(vec![pair("c", f64::INFINITY)])
    );
    assert_eq!(
        r.execute(Command::Zscore {
            key: "z".into(),
            member: "b".into()
        })
        .await
        .unwrap(),
        Value::Double(2.5)
    );
    assert_eq!(
        r.execute(Command::Zscore {
            key: "z".into(),
            member: "nobody".into()
        })
        .await
        .unwrap(),
        Value::Nil
    );
    assert_eq!(
        r.execute(Command::Zcard { key: "z".into() }).await.unwrap(),
        Value::Int(3)
    );
    assert_eq!(
        r.execute(Command::Zremrangebyrank {
            key: "z".into(),
            start: 0,
            stop: 0
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
    assert_eq!(
        r.execute(Command::Zrem {
            key: "z".into(),
            members: vec!["b".into(), "x".into()]
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
}

/// See the module docs.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn scan_scripts_and_raw<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = spawn_server().await;
    let r = connected(&connect, &server).await;
    for i in 0..30 {
        r.execute(set(&format!("scan:{i}"), "x")).await.unwrap();
    }
    r.execute(set("other", "x")).await.unwrap();
    let mut cursor = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let reply = r
            .execute(Command::Scan {
                cursor,
                pattern: Some("scan:*".into()),
                count: Some(7),
                type_name: None,
            })
            .await
            .unwrap();
        let Value::Array(parts) = reply else {
            panic!("SCAN reply must be an array")
        };
        let [Value::Int(next), Value::Array(keys)] = parts.as_slice() else {
            panic!("SCAN reply must be [Int, Array], got {parts:?}")
        };
        for k in keys {
            seen.insert(k.clone().into_string().unwrap());
        }
        cursor = u64::try_from(*next).unwrap();
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 30);
    assert!(seen.iter().all(|k| k.starts_with("scan:")));

    let script = "return {KEYS[1], ARGV[1], 3}";
    let sha = r
        .execute(Command::ScriptLoad {
            script: script.into(),
        })
        .await
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(sha.len(), 40);
    let want = Value::Array(vec![
        Value::Bytes(b("k")),
        Value::Bytes(b("a")),
        Value::Int(3),
    ]);
    assert_eq!(
        r.execute(Command::Evalsha {
            sha1: sha,
            keys: vec!["k".into()],
            args: vec![b("a")],
            idempotent: true
        })
        .await
        .unwrap(),
        want
    );
    assert_eq!(
        r.execute(Command::Eval {
            script: script.into(),
            keys: vec!["k".into()],
            args: vec![b("a")],
        })
        .await
        .unwrap(),
        want
    );
    let raw = Command::Raw {
        args: vec![b("STRLEN"), b("other")],
        keys: vec!["other".into()],
        write: false,
        idempotent: true,
    };
    assert_eq!(r.execute(raw).await.unwrap(), Value::Int(1));
}

/// See the module docs.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn batches_pipelined_and_atomic<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = spawn_server().await;
    let r = connected(&connect, &server).await;
    let out = r
        .execute_batch(
            vec![
                set("a", "1"),
                Command::Incrby {
                    key: "a".into(),
                    delta: 2,
                },
                Command::Hgetall { key: "h".into() },
                get("a"),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            Value::Okay,
            Value::Int(3),
            Value::Map(vec![]),
            Value::Bytes(b("3"))
        ]
    );
    let out = r
        .execute_batch(
            vec![
                Command::Zadd {
                    key: "z".into(),
                    members: vec![(2.0, "m".into())],
                    options: ZaddOptions::default(),
                },
                Command::Zrange {
                    key: "z".into(),
                    start: 0,
                    stop: -1,
                    rev: false,
                    with_scores: true,
                },
            ],
            true,
        )
        .await
        .unwrap();
    assert_eq!(out, vec![Value::Int(1), Value::Array(vec![pair("m", 2.0)])]);
    assert_eq!(r.execute_batch(vec![], true).await.unwrap(), vec![]);

    // An error reply inside a pipeline fails the whole call with that error.
    let err = r
        .execute_batch(
            vec![
                set("b", "1"),
                Command::Hget {
                    key: "a".into(),
                    field: "f".into(),
                },
                get("b"),
            ],
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Server, Some("WRONGTYPE"))
    );

    // A command the server refuses to queue aborts the transaction: nothing applies.
    let bad = Command::Raw {
        args: vec![b("SET"), b("only-key")],
        keys: vec![],
        write: true,
        idempotent: true,
    };
    let err = r
        .execute_batch(vec![set("c", "1"), bad], true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.code(), Some("ERR"), "{err}");
    assert_eq!(
        r.execute(get("c")).await.unwrap(),
        Value::Nil,
        "MULTI aborted"
    );

    // A runtime error inside EXEC is reported, not hidden.
    let err = r
        .execute_batch(
            vec![
                set("d", "1"),
                Command::Hget {
                    key: "a".into(),
                    field: "f".into(),
                },
            ],
            true,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
}

/// See the module docs.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn server_errors_classified_end_to_end<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = spawn_server().await;
    let r = connected(&connect, &server).await;
    r.execute(set("s", "x")).await.unwrap();
    let err = r
        .execute(Command::Hget {
            key: "s".into(),
            field: "f".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Server, Some("WRONGTYPE"))
    );
    assert!(err.message().starts_with("WRONGTYPE "), "{err}");

    let err = r
        .execute(Command::Evalsha {
            sha1: "0123456789012345678901234567890123456789".into(),
            keys: vec![],
            args: vec![],
            idempotent: true,
        })
        .await
        .unwrap_err();
    assert!(err.is_noscript(), "{err}");
    assert_eq!(err.kind(), ErrorKind::Server);

    let err = r
        .execute(Command::Raw {
            args: vec![b("NOSUCHCOMMAND")],
            keys: vec![],
            write: false,
            idempotent: true,
        })
        .await
        .unwrap_err();
    assert_eq!((err.kind(), err.code()), (ErrorKind::Server, Some("ERR")));
    // The connection is still usable after error replies.
    assert_eq!(r.execute(get("s")).await.unwrap(), Value::Bytes(b("x")));
}

/// See the module docs.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn auth_errors_end_to_end_never_show_the_password<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let password = "pw-Secret-4711";
    let server = RedisServer::builder()
        .password(Some(password.into()))
        .spawn()
        .await
        .expect("redis-server must be installed");

    let good = connect(config(&server)).await.unwrap();
    assert_eq!(good.execute(set("k", "v")).await.unwrap(), Value::Okay);

    // No password: `Auth` (NOAUTH), either from the connect (a driver that probes the
    // connection) or from the first command (one whose handshake sends nothing).
    let anonymous = {
        let mut c = config(&server);
        c.password = None;
        c
    };
    let err = match connect(anonymous).await {
        Ok(r) => r.execute(get("k")).await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("NOAUTH"), "{err}");

    // A wrong password fails the connect with Auth, and never echoes it.
    let mut wrong = config(&server);
    wrong.password = Some("wrong-Secret-0815".into());
    let err = connect(wrong)
        .await
        .err()
        .expect("a wrong password must fail");
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("wrong-Secret-0815"), "{shown}");
    assert!(!shown.contains(password), "{shown}");
}

/// See the module docs.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn db_is_selected_and_url_connects<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = spawn_server().await;
    let url = format!(
        "redis://127.0.0.1:{}/3?socket_timeout=0.5&socket_connect_timeout=0.5",
        server.port()
    );
    let in_db3 = connect(ConnectionConfig::from_url(&url).unwrap())
        .await
        .unwrap();
    in_db3.execute(set("only-in-3", "x")).await.unwrap();
    let in_db0 = connected(&connect, &server).await;
    assert_eq!(in_db0.execute(get("only-in-3")).await.unwrap(), Value::Nil);
    assert_eq!(
        in_db3.execute(get("only-in-3")).await.unwrap(),
        Value::Bytes(b("x"))
    );
}

/// See the module docs.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn refused_connect_is_unavailable_and_fast<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    // A port bound but not listening, held for the whole test: connects are refused, and
    // no server another test spawns can take the port meanwhile (a port merely freed
    // could be).
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap().port();
    let (result, took) = timed(connect(config_for("127.0.0.1", port))).await;
    drop(reserved);
    let err = result.err().expect("nobody listens there");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(took < SOCKET_TIMEOUT, "refusal took {took:?}");
}

/// A typed command from a command line.
fn line(text: &str) -> Command {
    let args: Vec<bytes::Bytes> = text.split(' ').map(b).collect();
    Command::from_args(&args).unwrap()
}

/// Consumer groups end to end: create, read new entries, pending list, ack, autoclaim,
/// and `BUSYGROUP` for a second create.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn consumer_groups<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = spawn_server().await;
    let r = connected(&connect, &server).await;
    for n in 1..=3 {
        r.execute(line(&format!("XADD s {n}-0 f v{n}")))
            .await
            .unwrap();
    }
    assert_eq!(
        r.execute(line("XGROUP CREATE s g 0")).await.unwrap(),
        Value::Okay
    );
    let err = r.execute(line("XGROUP CREATE s g 0")).await.unwrap_err();
    assert_eq!(err.code(), Some("BUSYGROUP"), "{err}");
    assert_eq!(
        r.execute(line("XGROUP CREATE new g $ MKSTREAM"))
            .await
            .unwrap(),
        Value::Okay
    );
    let read = r
        .execute(line("XREADGROUP GROUP g alice COUNT 2 STREAMS s >"))
        .await
        .unwrap();
    let Value::Map(streams) = read else {
        panic!("XREADGROUP: {read:?}");
    };
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].0, Value::Bytes(b("s")));
    let Value::Array(entries) = &streams[0].1 else {
        panic!("entries: {:?}", streams[0].1);
    };
    assert_eq!(entries.len(), 2);
    let pending = r
        .execute(line("XPENDING s g"))
        .await
        .unwrap()
        .into_array()
        .unwrap();
    assert_eq!(pending[0], Value::Int(2));
    assert_eq!(
        r.execute(line("XACK s g 1-0")).await.unwrap(),
        Value::Int(1)
    );
    let claimed = r
        .execute(line("XAUTOCLAIM s g bob 0 0-0 COUNT 10"))
        .await
        .unwrap()
        .into_array()
        .unwrap();
    let Value::Array(claimed_entries) = &claimed[1] else {
        panic!("XAUTOCLAIM: {claimed:?}");
    };
    assert_eq!(claimed_entries.len(), 1, "2-0 moves to bob");
    // Nothing new for the group: an empty map, not nil.
    r.execute(line("XREADGROUP GROUP g alice COUNT 10 STREAMS s >"))
        .await
        .unwrap();
    assert_eq!(
        r.execute(line("XREADGROUP GROUP g alice STREAMS s >"))
            .await
            .unwrap(),
        Value::Map(vec![])
    );
}

/// Blocking commands: a `BLPOP` that waits longer than `socket_timeout` ends with its own
/// timeout (an empty reply, not a `Timeout` error); while one waits, other calls on the
/// same backend answer at once; an element pushed meanwhile wakes it; `BLMOVE` and
/// `XREAD BLOCK` alike.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn blocking_commands_wait_on_their_own_connection<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = spawn_server().await;
    let short = config(&server).with_socket_timeout(Duration::from_millis(300));
    let r = connect(short).await.unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(
        r.execute(line("BLPOP empty 0.8")).await.unwrap(),
        Value::Array(vec![]),
        "a block longer than socket_timeout ends with its own timeout"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "{:?}",
        started.elapsed()
    );
    let waiter = {
        let r = std::sync::Arc::clone(&r);
        tokio::spawn(async move { r.execute(line("BLPOP jobs 5")).await })
    };
    // While it waits, the shared connection is free.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let quick = tokio::time::Instant::now();
    assert_eq!(r.execute(get("missing")).await.unwrap(), Value::Nil);
    assert!(
        quick.elapsed() < Duration::from_millis(250),
        "{:?}",
        quick.elapsed()
    );
    assert_eq!(
        r.execute(line("RPUSH jobs j1")).await.unwrap(),
        Value::Int(1)
    );
    let woken = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the BLPOP woke up")
        .unwrap()
        .unwrap();
    assert_eq!(
        woken,
        Value::Array(vec![Value::Bytes(b("jobs")), Value::Bytes(b("j1"))])
    );
    r.execute(line("RPUSH src x")).await.unwrap();
    assert_eq!(
        r.execute(line("BLMOVE src dst LEFT RIGHT 1"))
            .await
            .unwrap(),
        Value::Bytes(b("x"))
    );
    assert_eq!(
        r.execute(line("BLMOVE src dst LEFT RIGHT 0.1"))
            .await
            .unwrap(),
        Value::Nil
    );
    r.execute(line("XADD st 1-0 f v")).await.unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(
        r.execute(line("XREAD BLOCK 100 STREAMS st $"))
            .await
            .unwrap(),
        Value::Map(vec![])
    );
    assert!(started.elapsed() >= Duration::from_millis(90));
    // Blocking commands never share a pipeline.
    let err = r
        .execute_batch(vec![line("BLPOP jobs 1"), get("k")], false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}
