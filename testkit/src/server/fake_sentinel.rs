//! A stand-in sentinel that names whichever master the test says, to drive a client
//! through a master change at an exact moment (real sentinels decide by themselves).
//!
//! It speaks just enough RESP for the drivers' sentinel handshakes:
//! `SENTINEL GET-MASTER-ADDR-BY-NAME <name>` answers the current master (nil for another
//! name), `SENTINEL SENTINELS <name>` an empty list, `PING` `PONG`, anything else `OK`.
//!
//! ```no_run
//! use testkit::server::FakeSentinel;
//! # async fn demo() -> std::io::Result<()> {
//! let sentinel = FakeSentinel::start("mymaster", "127.0.0.1:7000".parse().unwrap()).await?;
//! sentinel.set_master("127.0.0.1:7001".parse().unwrap()); // the next question gets 7001
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A fake sentinel on a free port of `127.0.0.1` (see the module docs). Dropping it stops
/// it and closes its connections.
#[derive(Debug)]
pub struct FakeSentinel {
    addr: SocketAddr,
    master: Arc<Mutex<SocketAddr>>,
    task: JoinHandle<()>,
}

impl Drop for FakeSentinel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSentinel {
    /// Starts answering that `master_name`'s master is `master`.
    ///
    /// # Errors
    ///
    /// The I/O error of the connection or the listener.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn start(master_name: &str, master: SocketAddr) -> std::io::Result<FakeSentinel> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let master = Arc::new(Mutex::new(master));
        let shared = Arc::clone(&master);
        let name = master_name.to_owned();
        let task = tokio::spawn(async move {
            // Dropped with the task: aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, name.clone(), Arc::clone(&shared)));
            }
        });
        Ok(FakeSentinel { addr, master, task })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, name `master` as the master.
    pub fn set_master(&self, master: SocketAddr) {
        *self.master.lock().unwrap_or_else(PoisonError::into_inner) = master;
    }
}

async fn serve(stream: TcpStream, name: String, master: Arc<Mutex<SocketAddr>>) {
    let mut stream = BufReader::new(stream);
    while let Ok(Some(args)) = read_command(&mut stream).await {
        let upper: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
            .collect();
        let reply = match upper
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", _] => {
                if args[2] == name.as_bytes() {
                    let addr = *master.lock().unwrap_or_else(PoisonError::into_inner);
                    let host = addr.ip().to_string();
                    let port = addr.port().to_string();
                    format!(
                        "*2\r\n${}\r\n{host}\r\n${}\r\n{port}\r\n",
                        host.len(),
                        port.len()
                    )
                } else {
                    "*-1\r\n".to_owned()
                }
            }
            ["SENTINEL", "SENTINELS", ..] => "*0\r\n".to_owned(),
            ["PING", ..] => "+PONG\r\n".to_owned(),
            _ => "+OK\r\n".to_owned(),
        };
        if stream.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one command (an array of bulk strings); `None` at end of stream.
async fn read_command(stream: &mut BufReader<TcpStream>) -> std::io::Result<Option<Vec<Vec<u8>>>> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a RESP command");
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let count: usize = line
        .trim_end()
        .strip_prefix('*')
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    let mut args = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        line.clear();
        stream.read_line(&mut line).await?;
        let len: usize = line
            .trim_end()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .filter(|n| *n <= 1 << 20)
            .ok_or_else(bad)?;
        let mut data = vec![0; len + 2];
        stream.read_exact(&mut data).await?;
        data.truncate(len);
        args.push(data);
    }
    Ok(Some(args))
}
