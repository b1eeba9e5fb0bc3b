//! Scripts (EVALSHA with NOSCRIPT reload) and pipelines through the client.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::Rig;
use resilience_core::{BackendError, Command, Error, Script, SetOptions, Value};

#[tokio::test]
async fn eval_loads_the_script_on_noscript_and_caches_it() {
    let (rig, client) = Rig::client(|b| b);
    let script = Script::new("return redis.call('SET', KEYS[1], ARGV[1])").idempotent(true);
    rig.memory.register_script(
        script.source(),
        std::sync::Arc::new(|ctx, keys, args| {
            ctx.call(Command::Set {
                key: keys[0].clone(),
                value: args[0].clone(),
                options: SetOptions::default(),
            })
        }),
    );
    let reply = client
        .eval(&script, vec!["k".into()], vec![Bytes::from_static(b"v")])
        .await
        .unwrap();
    assert_eq!(reply, Value::Okay);
    let names: Vec<String> = rig.applied().into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        names,
        vec!["EVALSHA", "SCRIPT LOAD", "EVALSHA"],
        "NOSCRIPT, load, run again"
    );
    client
        .eval(&script, vec!["k".into()], vec![Bytes::from_static(b"w")])
        .await
        .unwrap();
    assert_eq!(rig.applied().len(), 4, "second run is one EVALSHA");
    assert_eq!(rig.get("k").await.as_deref(), Some(&b"w"[..]));
}

#[tokio::test]
async fn an_unknown_script_reports_noscript_clearly() {
    let (_rig, client) = Rig::client(|b| b);
    let err = client
        .execute(Command::Evalsha {
            sha1: "0".repeat(40),
            keys: vec![],
            args: vec![],
            idempotent: true,
        })
        .await
        .unwrap_err();
    match err {
        Error::Server(e) => assert!(e.is_noscript(), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pipelines_return_replies_in_order_and_transactions_apply_together() {
    let (rig, client) = Rig::client(|b| b);
    let replies = client
        .pipeline()
        .add_command(Command::Set {
            key: "a".into(),
            value: Bytes::from_static(b"1"),
            options: SetOptions::default(),
        })
        .add_command(Command::Incrby {
            key: "a".into(),
            delta: 2,
        })
        .add_command(Command::Get { key: "a".into() })
        .execute()
        .await
        .unwrap();
    assert_eq!(
        replies,
        vec![
            Value::Okay,
            Value::Int(3),
            Value::Bytes(Bytes::from_static(b"3"))
        ]
    );
    let replies = client
        .transaction()
        .add_command(Command::Hset {
            key: "h".into(),
            fields: vec![("f".into(), Bytes::from_static(b"v"))],
        })
        .add_command(Command::Expire {
            key: "h".into(),
            seconds: 60,
            condition: None,
        })
        .execute()
        .await
        .unwrap();
    assert_eq!(replies, vec![Value::Int(1), Value::Int(1)]);
    assert_eq!(rig.faults.calls(), 2, "one round trip each");
    assert!(client.pipeline().execute().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_pipeline_is_an_error_not_a_partial_success() {
    let (_rig, client) = Rig::client(|b| b);
    client
        .set("s", "string", SetOptions::default())
        .await
        .unwrap();
    let result = client
        .pipeline()
        .add_command(Command::Get { key: "s".into() })
        .add_command(Command::Hget {
            key: "s".into(),
            field: "f".into(),
        })
        .execute()
        .await;
    assert!(
        matches!(result, Err(Error::Server(ref e)) if e.code() == Some("WRONGTYPE")),
        "{result:?}"
    );
    let _ = BackendError::unavailable("unused");
}
