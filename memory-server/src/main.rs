//! The `memory-server` binary: parses its flags, logs to stderr, and serves until SIGINT or
//! SIGTERM, then drains the recovery queue.

use std::process::ExitCode;

use clap::Parser;
use memory_server::{MemoryServer, ServerConfig};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = ServerConfig::parse();
    if config.print_openapi {
        print!("{}", memory_server::openapi::document());
        return ExitCode::SUCCESS;
    }
    // Logs go to stderr: over MCP stdio, stdout carries the protocol.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let server = match MemoryServer::start(config.clone()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("memory-server: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = if config.mcp_stdio {
        server.serve_mcp_stdio().await
    } else {
        match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => server.serve(listener, shutdown_signal()).await,
            Err(e) => {
                eprintln!("memory-server: cannot listen on {}: {e}", config.listen);
                return ExitCode::from(2);
            }
        }
    };
    match outcome {
        Ok(summary) if summary.drained => ExitCode::SUCCESS,
        Ok(summary) => {
            eprintln!(
                "memory-server: {} queued writes could not be stored before shutdown (each is in the log)",
                summary.abandoned
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("memory-server: {e}");
            ExitCode::from(2)
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down: finishing requests, then draining queued writes");
}
