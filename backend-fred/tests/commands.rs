//! End-to-end: every command against a real redis-server, canonical reply shapes, batches
//! and error classification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use backend_fred::FredBackend;
use bytes::Bytes;
use resilience_core::{
    Command, ErrorKind, KvBackend, Limit, ScoreBound, SetCondition, SetOptions, Value, ZaddOptions,
};
use testkit::RedisServer;

fn b(s: &str) -> Value {
    Value::from(s)
}

fn set(key: &str, v: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: Bytes::copy_from_slice(v.as_bytes()),
        options: SetOptions::default(),
    }
}

#[tokio::test]
async fn strings_keys_and_ttls() {
    let (_server, be) = common::server_and_backend(Duration::from_secs(2)).await;
    assert_eq!(be.name(), "fred");
    assert_eq!(
        be.execute(Command::Ping).await.unwrap(),
        Value::Status("PONG".into())
    );
    assert_eq!(be.execute(set("k", "OK")).await.unwrap(), Value::Okay);
    // A bulk "OK" stays bytes.
    assert_eq!(
        be.execute(Command::Get { key: "k".into() }).await.unwrap(),
        b("OK")
    );
    let nx = Command::Set {
        key: "k".into(),
        value: Bytes::from_static(b"x"),
        options: SetOptions {
            expire_ms: None,
            condition: Some(SetCondition::IfNotExists),
        },
    };
    assert_eq!(be.execute(nx).await.unwrap(), Value::Nil);
    let bin = Command::Set {
        key: "bin".into(),
        value: Bytes::from_static(b"\x00\xff\x01"),
        options: SetOptions::with_ttl(Duration::from_secs(100)),
    };
    assert_eq!(be.execute(bin).await.unwrap(), Value::Okay);
    assert_eq!(
        be.execute(Command::Get { key: "bin".into() })
            .await
            .unwrap(),
        Value::Bytes(Bytes::from_static(b"\x00\xff\x01"))
    );
    let pttl = be
        .execute(Command::Pttl { key: "bin".into() })
        .await
        .unwrap();
    assert!(matches!(pttl, Value::Int(ms) if ms > 90_000 && ms <= 100_000));
    assert_eq!(
        be.execute(Command::Ttl { key: "k".into() }).await.unwrap(),
        Value::Int(-1)
    );
    assert_eq!(
        be.execute(Command::Ttl {
            key: "missing".into()
        })
        .await
        .unwrap(),
        Value::Int(-2)
    );
    assert_eq!(
        be.execute(Command::Expire {
            key: "k".into(),
            seconds: 50
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
    assert_eq!(
        be.execute(Command::Pexpire {
            key: "missing".into(),
            millis: 50
        })
        .await
        .unwrap(),
        Value::Int(0)
    );
    assert_eq!(
        be.execute(Command::Incrby {
            key: "n".into(),
            delta: 5
        })
        .await
        .unwrap(),
        Value::Int(5)
    );
    assert_eq!(
        be.execute(Command::Mget {
            keys: vec!["k".into(), "missing".into()]
        })
        .await
        .unwrap(),
        Value::Array(vec![b("OK"), Value::Nil])
    );
    assert_eq!(
        be.execute(Command::Exists {
            keys: vec!["k".into(), "k".into(), "missing".into()]
        })
        .await
        .unwrap(),
        Value::Int(2)
    );
    assert_eq!(
        be.execute(Command::Del {
            keys: vec!["k".into(), "missing".into()]
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
}

#[tokio::test]
async fn hashes() {
    let (_server, be) = common::server_and_backend(Duration::from_secs(2)).await;
    let hset = Command::Hset {
        key: "h".into(),
        fields: vec![
            ("a".into(), Bytes::from_static(b"1")),
            ("b".into(), Bytes::from_static(b"2")),
        ],
    };
    assert_eq!(be.execute(hset).await.unwrap(), Value::Int(2));
    assert_eq!(
        be.execute(Command::Hget {
            key: "h".into(),
            field: "a".into()
        })
        .await
        .unwrap(),
        b("1")
    );
    let all = be
        .execute(Command::Hgetall { key: "h".into() })
        .await
        .unwrap();
    let Value::Map(mut pairs) = all else {
        panic!("HGETALL must be a Map, got {all:?}")
    };
    pairs.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    assert_eq!(pairs, vec![(b("a"), b("1")), (b("b"), b("2"))]);
    assert_eq!(
        be.execute(Command::Hgetall { key: "none".into() })
            .await
            .unwrap(),
        Value::Map(vec![])
    );
    assert_eq!(
        be.execute(Command::Hincrby {
            key: "h".into(),
            field: "a".into(),
            delta: 2
        })
        .await
        .unwrap(),
        Value::Int(3)
    );
    assert_eq!(
        be.execute(Command::Hincrbyfloat {
            key: "h".into(),
            field: "f".into(),
            delta: 0.5
        })
        .await
        .unwrap(),
        Value::Double(0.5)
    );
    assert_eq!(
        be.execute(Command::Hdel {
            key: "h".into(),
            fields: vec!["a".into(), "zz".into()]
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
}

#[tokio::test]
async fn sorted_sets() {
    let (_server, be) = common::server_and_backend(Duration::from_secs(2)).await;
    let zadd = Command::Zadd {
        key: "z".into(),
        members: vec![(1.0, "a".into()), (2.5, "b".into()), (3.0, "c".into())],
        options: ZaddOptions::default(),
    };
    assert_eq!(be.execute(zadd).await.unwrap(), Value::Int(3));
    let incr = Command::Zadd {
        key: "z".into(),
        members: vec![(1.0, "a".into())],
        options: ZaddOptions {
            incr: true,
            ..Default::default()
        },
    };
    assert_eq!(be.execute(incr).await.unwrap(), Value::Double(2.0));
    let blocked = Command::Zadd {
        key: "z".into(),
        members: vec![(1.0, "a".into())],
        options: ZaddOptions {
            incr: true,
            condition: Some(SetCondition::IfNotExists),
            ..Default::default()
        },
    };
    assert_eq!(be.execute(blocked).await.unwrap(), Value::Nil);
    assert_eq!(
        be.execute(Command::Zrange {
            key: "z".into(),
            start: 0,
            stop: -1,
            rev: false,
            with_scores: true
        })
        .await
        .unwrap(),
        Value::Array(vec![
            Value::Array(vec![b("a"), Value::Double(2.0)]),
            Value::Array(vec![b("b"), Value::Double(2.5)]),
            Value::Array(vec![b("c"), Value::Double(3.0)]),
        ])
    );
    assert_eq!(
        be.execute(Command::Zrange {
            key: "z".into(),
            start: 0,
            stop: 0,
            rev: true,
            with_scores: false
        })
        .await
        .unwrap(),
        Value::Array(vec![b("c")])
    );
    assert_eq!(
        be.execute(Command::Zrangebyscore {
            key: "z".into(),
            min: ScoreBound::Exclusive(2.0),
            max: ScoreBound::PosInf,
            rev: true,
            with_scores: false,
            limit: Some(Limit {
                offset: 0,
                count: 1
            })
        })
        .await
        .unwrap(),
        Value::Array(vec![b("c")])
    );
    assert_eq!(
        be.execute(Command::Zscore {
            key: "z".into(),
            member: "b".into()
        })
        .await
        .unwrap(),
        Value::Double(2.5)
    );
    assert_eq!(
        be.execute(Command::Zscore {
            key: "z".into(),
            member: "nope".into()
        })
        .await
        .unwrap(),
        Value::Nil
    );
    assert_eq!(
        be.execute(Command::Zcard { key: "z".into() })
            .await
            .unwrap(),
        Value::Int(3)
    );
    assert_eq!(
        be.execute(Command::Zremrangebyrank {
            key: "z".into(),
            start: 0,
            stop: 0
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
    assert_eq!(
        be.execute(Command::Zrem {
            key: "z".into(),
            members: vec!["b".into(), "x".into()]
        })
        .await
        .unwrap(),
        Value::Int(1)
    );
}

#[tokio::test]
async fn scripts_scan_and_raw() {
    let (_server, be) = common::server_and_backend(Duration::from_secs(2)).await;
    let script = "return {KEYS[1], ARGV[1], 7}";
    let sha = be
        .execute(Command::ScriptLoad {
            script: script.into(),
        })
        .await
        .unwrap();
    let Value::Bytes(sha) = sha else {
        panic!("SCRIPT LOAD must give Bytes, got {sha:?}")
    };
    let sha = String::from_utf8(sha.to_vec()).unwrap();
    assert_eq!(sha.len(), 40);
    let want = Value::Array(vec![b("k"), b("v"), Value::Int(7)]);
    assert_eq!(
        be.execute(Command::Evalsha {
            sha1: sha,
            keys: vec!["k".into()],
            args: vec![Bytes::from_static(b"v")],
            idempotent: true
        })
        .await
        .unwrap(),
        want
    );
    assert_eq!(
        be.execute(Command::Eval {
            script: script.into(),
            keys: vec!["k".into()],
            args: vec![Bytes::from_static(b"v")]
        })
        .await
        .unwrap(),
        want
    );
    for i in 0..30 {
        be.execute(set(&format!("scan:{i}"), "x")).await.unwrap();
    }
    let mut cursor = 0u64;
    let mut seen = 0;
    loop {
        let reply = be
            .execute(Command::Scan {
                cursor,
                pattern: Some("scan:*".into()),
                count: Some(7),
            })
            .await
            .unwrap();
        let Value::Array(parts) = reply else {
            panic!("SCAN shape")
        };
        let [Value::Int(next), Value::Array(keys)] = &parts[..] else {
            panic!("SCAN must be [Int, Array], got {parts:?}")
        };
        seen += keys.len();
        cursor = *next as u64;
        if cursor == 0 {
            break;
        }
    }
    assert!(seen >= 30);
    let raw = Command::Raw {
        args: vec![
            Bytes::from_static(b"RPUSH"),
            Bytes::from_static(b"l"),
            Bytes::from_static(b"a"),
        ],
        keys: vec!["l".into()],
        write: true,
        idempotent: false,
    };
    assert_eq!(be.execute(raw).await.unwrap(), Value::Int(1));
    let raw_set = Command::Raw {
        args: vec![
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"r"),
            Bytes::from_static(b"1"),
        ],
        keys: vec!["r".into()],
        write: true,
        idempotent: true,
    };
    assert_eq!(be.execute(raw_set).await.unwrap(), Value::Okay);
}

#[tokio::test]
async fn batches_pipeline_and_transaction() {
    let (_server, be) = common::server_and_backend(Duration::from_secs(2)).await;
    let cmds = vec![
        set("a", "1"),
        Command::Incrby {
            key: "a".into(),
            delta: 2,
        },
        Command::Get { key: "a".into() },
        Command::Zadd {
            key: "z".into(),
            members: vec![(1.5, "m".into())],
            options: ZaddOptions::default(),
        },
        Command::Zrange {
            key: "z".into(),
            start: 0,
            stop: -1,
            rev: false,
            with_scores: true,
        },
        Command::Ping,
    ];
    let want = vec![
        Value::Okay,
        Value::Int(3),
        b("3"),
        Value::Int(1),
        Value::Array(vec![Value::Array(vec![b("m"), Value::Double(1.5)])]),
        Value::Status("PONG".into()),
    ];
    for atomic in [false, true] {
        be.execute(Command::Del {
            keys: vec!["a".into(), "z".into()],
        })
        .await
        .unwrap();
        assert_eq!(
            be.execute_batch(cmds.clone(), atomic).await.unwrap(),
            want,
            "atomic={atomic}"
        );
    }
    assert_eq!(be.execute_batch(vec![], true).await.unwrap(), vec![]);
    assert_eq!(
        be.execute_batch(vec![Command::Get { key: "a".into() }], false)
            .await
            .unwrap(),
        vec![b("3")]
    );
}

#[tokio::test]
async fn an_error_inside_a_batch_fails_the_whole_call() {
    let (_server, be) = common::server_and_backend(Duration::from_secs(2)).await;
    be.execute(set("s", "x")).await.unwrap();
    for atomic in [false, true] {
        let err = be
            .execute_batch(
                vec![
                    set("ok", "1"),
                    Command::Hget {
                        key: "s".into(),
                        field: "f".into(),
                    },
                    Command::Ping,
                ],
                atomic,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server, "atomic={atomic}: {err}");
        assert_eq!(err.code(), Some("WRONGTYPE"), "atomic={atomic}");
    }
    // A queue-time error (unknown command) aborts the transaction: nothing applied.
    let err = be
        .execute_batch(
            vec![
                set("never", "1"),
                Command::Raw {
                    args: vec![Bytes::from_static(b"NOSUCHCOMMAND")],
                    keys: vec![],
                    write: false,
                    idempotent: true,
                },
            ],
            true,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server, "{err}");
    assert_eq!(
        be.execute(Command::Exists {
            keys: vec!["never".into()]
        })
        .await
        .unwrap(),
        Value::Int(0)
    );
}

#[tokio::test]
async fn errors_are_classified_end_to_end() {
    let (_server, be) = common::server_and_backend(Duration::from_secs(2)).await;
    be.execute(set("s", "x")).await.unwrap();
    let wrongtype = be
        .execute(Command::Hget {
            key: "s".into(),
            field: "f".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrongtype.kind(), ErrorKind::Server);
    assert_eq!(wrongtype.code(), Some("WRONGTYPE"));
    let noscript = be
        .execute(Command::Evalsha {
            sha1: "0000000000000000000000000000000000000000".into(),
            keys: vec![],
            args: vec![],
            idempotent: true,
        })
        .await
        .unwrap_err();
    assert!(noscript.is_noscript(), "{noscript}");
    assert_eq!(noscript.kind(), ErrorKind::Server);
    let syntax = be
        .execute(Command::Raw {
            args: vec![Bytes::from_static(b"SET")],
            keys: vec![],
            write: true,
            idempotent: true,
        })
        .await
        .unwrap_err();
    assert_eq!(syntax.kind(), ErrorKind::Server);
    assert_eq!(syntax.code(), Some("ERR"));
    let bad_raw = be
        .execute(Command::Raw {
            args: vec![],
            keys: vec![],
            write: false,
            idempotent: true,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_raw.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn auth_failures_are_auth_and_never_show_the_password() {
    let server = RedisServer::builder()
        .password(Some("s3cret-pw".into()))
        .spawn()
        .await
        .expect("spawn");
    // No password: the server answers NOAUTH to the connect probe.
    let mut cfg = common::config(server.port(), Duration::from_secs(2));
    let err = FredBackend::connect(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    // Wrong password.
    cfg.password = Some("wrong-pw".into());
    let err = FredBackend::connect(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(!err.to_string().contains("wrong-pw"));
    // Right password works, and Debug of the backend hides it.
    cfg.password = Some("s3cret-pw".into());
    let be = FredBackend::connect(&cfg).await.unwrap();
    assert_eq!(
        be.execute(Command::Ping).await.unwrap(),
        Value::Status("PONG".into())
    );
    assert!(!format!("{be:?}").contains("s3cret-pw"));
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let start = std::time::Instant::now();
    let err = FredBackend::connect(&common::config(port, Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(start.elapsed() < Duration::from_millis(600));
}

#[tokio::test]
async fn database_index_is_selected_and_validated() {
    let server = RedisServer::spawn().await.expect("spawn");
    let mut cfg = common::config(server.port(), Duration::from_secs(2));
    cfg.db = 3;
    let db3 = FredBackend::connect(&cfg).await.unwrap();
    db3.execute(set("only-in-3", "x")).await.unwrap();
    cfg.db = 0;
    let db0 = FredBackend::connect(&cfg).await.unwrap();
    assert_eq!(
        db0.execute(Command::Get {
            key: "only-in-3".into()
        })
        .await
        .unwrap(),
        Value::Nil
    );
    cfg.db = 999;
    let err = FredBackend::connect(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
