//! The command table checked against a real server: for every entry, `COMMAND INFO` must
//! know the command, accept the table's arity, and agree on the write and read-only flags, and
//! `COMMAND GETKEYS` on the entry's example must name exactly the keys the table says
//! (`SPUBLISH`'s shard channel excepted: the table routes it like a key).
//! Runs against whatever `TESTKIT_REDIS_SERVER` names (Redis 7, Redis 8, Valkey 8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resilience_core::{Command, CommandSpec};
use testkit::server::{RedisServer, RespConnection, RespReply};

fn text(reply: &RespReply) -> Option<String> {
    match reply {
        RespReply::Simple(s) => Some(s.clone()),
        RespReply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// What the server says about one command: its arity and flags.
struct Info {
    arity: i64,
    flags: Vec<String>,
}

async fn info(conn: &mut RespConnection, spec: &CommandSpec) -> Info {
    let name = spec.name.replace(' ', "|");
    let reply = conn
        .command(&["COMMAND", "INFO", name.as_str()])
        .await
        .unwrap();
    let RespReply::Array(Some(entries)) = reply else {
        panic!("COMMAND INFO {name}: {reply:?}");
    };
    let Some(RespReply::Array(Some(fields))) = entries.first() else {
        panic!("the server does not know {name}: {entries:?}");
    };
    let RespReply::Int(arity) = fields[1] else {
        panic!("COMMAND INFO {name}: no arity in {fields:?}");
    };
    let RespReply::Array(Some(flags)) = &fields[2] else {
        panic!("COMMAND INFO {name}: no flags in {fields:?}");
    };
    Info {
        arity,
        flags: flags.iter().filter_map(text).collect(),
    }
}

/// Whether every call the table can write fits the server's arity: equal, or the server
/// takes more optional arguments than the table types (`ZRANK … WITHSCORE` on 7.2+).
fn arity_fits(table: i32, server: i64) -> bool {
    let table = i64::from(table);
    table == server || (server < 0 && table.abs() >= -server)
}

#[tokio::test]
async fn every_entry_agrees_with_command_info_and_getkeys() {
    let server = RedisServer::spawn().await.expect("redis-server");
    let mut conn = RespConnection::connect(server.addr()).await.unwrap();
    let mut checked = 0;
    for spec in Command::SPECS.iter().filter(|s| s.name != "RAW") {
        let cmd = Command::from_args(&spec.example_args()).unwrap();
        let info = info(&mut conn, spec).await;
        assert!(
            arity_fits(spec.arity, info.arity),
            "{}: the table says arity {}, the server {}",
            spec.name,
            spec.arity,
            info.arity
        );
        let server_writes = info.flags.iter().any(|f| f == "write");
        // A script may write, which the server cannot know before running it: the table
        // counts scripts as writes.
        let script = matches!(cmd, Command::Eval { .. } | Command::Evalsha { .. });
        assert!(
            cmd.is_write() == server_writes || (script && cmd.is_write()),
            "{}: the table says write={}, the server's flags are {:?}",
            spec.name,
            cmd.is_write(),
            info.flags
        );
        // What may go to a replica is what the server flags `readonly`, for every command
        // with keys (a keyless command always goes to the master).
        let server_read_only = info.flags.iter().any(|f| f == "readonly");
        if !cmd.keys().is_empty() && !script {
            assert_eq!(
                cmd.is_read_only(),
                server_read_only,
                "{}: the table says read-only={}, the server's flags are {:?}",
                spec.name,
                cmd.is_read_only(),
                info.flags
            );
        }
        let mut line: Vec<&str> = vec!["COMMAND", "GETKEYS"];
        line.extend(spec.example.split(' '));
        let keys = match conn.command(&line).await.unwrap() {
            RespReply::Array(Some(keys)) => keys.iter().filter_map(text).collect(),
            // "The command has no key arguments".
            RespReply::Error(_) => Vec::new(),
            other => panic!("COMMAND GETKEYS {}: {other:?}", spec.example),
        };
        // The one exception: a shard channel is not a key to the server (its key spec is
        // flagged `not_key`), but on a cluster it lives in its slot like one, so the table
        // routes it as a key.
        if spec.name == "SPUBLISH" {
            assert_eq!(cmd.keys(), ["ch"], "SPUBLISH routes by its channel");
        } else {
            assert_eq!(cmd.keys(), keys, "keys of `{}`", spec.example);
        }
        checked += 1;
    }
    assert_eq!(checked, Command::SPECS.len() - 1);
    println!("{checked} table entries agree with the server");
}
