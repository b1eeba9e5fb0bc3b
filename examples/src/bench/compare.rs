//! `redis-benchmark` on the same server in the same run, as a yardstick for `setget`.
//!
//! Runs `redis-benchmark -h HOST -p PORT -c 50 -n N -d VALUE_SIZE -t set,get -q` (the
//! binary from `PATH`; skipped with a note when there is none) and reports the `SET` and
//! `GET` requests per second it prints, as measurements of scenario `setget`, backend
//! `redis-benchmark`. It pipelines nothing (`-P 1`) and uses 50 connections, where the
//! Rust clients use one multiplexed connection: it shows what the server can do, not a
//! like-for-like client comparison.

use resilience_core::ConnectionConfig;

use super::SCENARIO_SETGET;
use super::measurement::Measurement;

/// Connections `redis-benchmark` opens.
pub const CONNECTIONS: usize = 50;

/// Runs `redis-benchmark` against `connection`; `Ok(None)` when the binary is not there.
pub async fn run(
    connection: &ConnectionConfig,
    requests: u64,
    value_size: usize,
) -> Result<Option<Vec<Measurement>>, String> {
    let mut cmd = tokio::process::Command::new("redis-benchmark");
    cmd.arg("-h")
        .arg(&connection.host)
        .arg("-p")
        .arg(connection.port.to_string())
        .arg("-c")
        .arg(CONNECTIONS.to_string())
        .arg("-n")
        .arg(requests.to_string())
        .arg("-d")
        .arg(value_size.to_string())
        .args(["-t", "set,get", "-q"]);
    if let Some(password) = &connection.password {
        cmd.arg("-a").arg(password);
    }
    let output = match cmd.output().await {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("redis-benchmark: {e}")),
    };
    if !output.status.success() {
        return Err(format!(
            "redis-benchmark exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut out = Vec::new();
    for (name, metric) in [("SET", "set"), ("GET", "get")] {
        let ops = parse_rps(&text, name)
            .ok_or_else(|| format!("redis-benchmark: no {name} result in {text:?}"))?;
        out.push(
            Measurement::new(
                SCENARIO_SETGET,
                "redis-benchmark",
                metric,
                CONNECTIONS,
                requests,
                ops,
                "ops/s",
            )
            .detail(format!(
                "redis-benchmark -c {CONNECTIONS} -n {requests} -d {value_size}"
            )),
        );
    }
    Ok(Some(out))
}

/// The requests per second of test `name` (`SET`, `GET`) in `redis-benchmark -q` output:
/// the final line `NAME: 123456.79 requests per second, p50=0.191 msec` (progress lines
/// are separated by `\r`).
pub fn parse_rps(output: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}: ");
    output
        .split(['\r', '\n'])
        .filter_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .filter(|rest| rest.contains("requests per second"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .next_back()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_quiet_output() {
        let out = "SET: rps=120000.0 (overall: 119000.0) avg_msec=0.3\rSET: 123456.79 requests per second, p50=0.191 msec\nGET: rps=1.0\rGET: 150000.00 requests per second, p50=0.151 msec\n";
        assert_eq!(parse_rps(out, "SET"), Some(123_456.79));
        assert_eq!(parse_rps(out, "GET"), Some(150_000.0));
        assert_eq!(parse_rps(out, "INCR"), None);
    }
}
