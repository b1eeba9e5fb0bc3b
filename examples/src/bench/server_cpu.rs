//! The server's side of a measurement: the CPU time `redis-server` spent, read from
//! `INFO cpu` before and after a phase, per operation of that phase.
//!
//! The bench and the server share the machine's cores, so an operation's cost is the
//! client's CPU (`cpu µs/op`, [`super::load::process_cpu_time`]) plus the server's
//! (`srv µs/op`, this module). Redis runs commands on one thread, so `1e6 / srv µs/op` is
//! the most operations per second that server can give, whatever the client does: the
//! number to hold a target to before blaming the client.
//!
//! The reading covers every client of the server; it means something only on a server the
//! bench has to itself (the one it starts when no `--url` is given).

use std::time::Duration;

use bytes::Bytes;
use resilience_core::{Command, ResilientClient, Value};

/// One section of `INFO` as text, or `None` when the call fails.
async fn info(client: &ResilientClient, section: &'static [u8]) -> Option<String> {
    let reply = client
        .execute(Command::Raw {
            args: vec![Bytes::from_static(b"INFO"), Bytes::from_static(section)],
            keys: Vec::new(),
            write: false,
            idempotent: true,
        })
        .await
        .ok()?;
    match reply {
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        Value::Status(s) => Some(s),
        _ => None,
    }
}

/// The server's CPU time so far (`used_cpu_user + used_cpu_sys`, all its threads), or
/// `None` when it cannot be read (the call failed, or the reply has no such fields).
pub async fn server_cpu_time(client: &ResilientClient) -> Option<Duration> {
    parse_info_cpu(&info(client, b"cpu").await?)
}

/// Bytes the server has written to its clients so far (`total_net_output_bytes` of
/// `INFO stats`): between two readings, what the clients received.
pub async fn server_output_bytes(client: &ResilientClient) -> Option<u64> {
    info_field(&info(client, b"stats").await?, "total_net_output_bytes")?
        .parse()
        .ok()
}

/// Bytes the server's allocator holds for data (`used_memory` of `INFO memory`).
pub async fn server_used_memory(client: &ResilientClient) -> Option<u64> {
    info_field(&info(client, b"memory").await?, "used_memory")?
        .parse()
        .ok()
}

/// The value of `name` in an `INFO` reply.
fn info_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// Server CPU microseconds per operation between two readings; `None` when either is
/// missing, time went backwards, or there were no operations.
pub fn per_op(before: Option<Duration>, after: Option<Duration>, ops: u64) -> Option<f64> {
    let (before, after) = (before?, after?);
    (ops > 0 && after >= before).then(|| (after - before).as_secs_f64() * 1e6 / ops as f64)
}

/// `used_cpu_user + used_cpu_sys` (seconds, with decimals) from an `INFO cpu` reply.
fn parse_info_cpu(text: &str) -> Option<Duration> {
    let field = |name: &str| -> Option<f64> {
        info_field(text, name)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    let seconds = field("used_cpu_user")? + field("used_cpu_sys")?;
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const INFO: &str = "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\n\
                        used_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n\
                        used_cpu_sys_main_thread:1.000000\r\nused_cpu_user_main_thread:2.000000\r\n";

    #[test]
    fn adds_user_and_system_time_of_the_whole_server() {
        assert_eq!(parse_info_cpu(INFO), Some(Duration::from_millis(3_750)));
    }

    #[test]
    fn reads_a_field_of_any_section() {
        let stats = "# Stats\r\ntotal_net_input_bytes:10\r\ntotal_net_output_bytes:4096\r\n";
        assert_eq!(info_field(stats, "total_net_output_bytes"), Some("4096"));
        assert_eq!(info_field(stats, "total_net_repl_output_bytes"), None);
    }

    #[test]
    fn a_reply_without_the_fields_reads_as_none() {
        assert_eq!(parse_info_cpu("# CPU\r\nused_cpu_sys:1.0\r\n"), None);
        assert_eq!(parse_info_cpu("used_cpu_user:x\nused_cpu_sys:1\n"), None);
        assert_eq!(parse_info_cpu(""), None);
    }

    #[test]
    fn per_op_divides_the_difference_by_the_operations() {
        let before = Some(Duration::from_millis(1_000));
        let after = Some(Duration::from_millis(1_500));
        assert_eq!(per_op(before, after, 1_000), Some(500.0));
        assert_eq!(per_op(before, after, 0), None);
        assert_eq!(per_op(after, before, 10), None);
        assert_eq!(per_op(None, after, 10), None);
    }
}
