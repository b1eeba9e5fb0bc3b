//! A minimal RESP2 client over a raw TCP socket, with no Redis driver behind it.
//!
//! testkit uses it to check that a spawned server answers, and tests use it to talk to a
//! server (or through a [`FaultProxy`](crate::proxy::FaultProxy)) without depending on the
//! backends under test:
//!
//! ```no_run
//! use testkit::server::{RespConnection, RespReply};
//!
//! # async fn demo(addr: std::net::SocketAddr) -> std::io::Result<()> {
//! let mut conn = RespConnection::connect(addr).await?;
//! assert_eq!(conn.command(&["SET", "k", "v"]).await?, RespReply::Simple("OK".into()));
//! assert_eq!(conn.command(&["GET", "k"]).await?, RespReply::Bulk(Some(b"v".to_vec())));
//! # Ok(())
//! # }
//! ```
//!
//! Replies are read in full before a command returns; a connection closed or reset by the
//! peer is an `io::Error` (`UnexpectedEof`, `ConnectionReset`, ...). There is no timeout
//! here: wrap calls in `tokio::time::timeout` where a server may not answer.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest bulk string or array this reader accepts, so a corrupt length cannot make it
/// allocate without bound.
const MAX_LEN: usize = 64 * 1024 * 1024;

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespReply {
    /// `+OK`, `+PONG`: a simple string, without the `+`.
    Simple(String),
    /// `-ERR ...`: an error reply, without the `-`.
    Error(String),
    /// `:42`: an integer.
    Int(i64),
    /// `$n ...`: a bulk string; `None` for the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*n ...`: an array; `None` for the null array `*-1`.
    Array(Option<Vec<RespReply>>),
}

/// A raw RESP2 connection: send commands, read replies.
#[derive(Debug)]
pub struct RespConnection {
    stream: BufReader<TcpStream>,
}

/// Encodes `args` as one RESP2 command (an array of bulk strings).
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl RespConnection {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// The I/O error of the connection or the listener.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the exchange: a command already written may still run on
    /// the server, and the connection should not be used again.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self::from_stream(stream))
    }

    /// Wraps an already connected socket.
    pub fn from_stream(stream: TcpStream) -> Self {
        RespConnection {
            stream: BufReader::new(stream),
        }
    }

    /// Sends one command and reads its reply. An error *reply* is `Ok(RespReply::Error)`;
    /// `Err` means the connection failed.
    ///
    /// # Errors
    ///
    /// The I/O error of the connection.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the exchange: a command already written may still run on
    /// the server, and the connection should not be used again.
    pub async fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<RespReply> {
        self.send(args).await?;
        self.read_reply().await
    }

    /// Sends one command without reading its reply (for pipelining, or to test a server
    /// or proxy that never answers).
    ///
    /// # Errors
    ///
    /// The I/O error of the connection.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the exchange: a command already written may still run on
    /// the server, and the connection should not be used again.
    pub async fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        let bytes = encode_command(args);
        self.stream.get_mut().write_all(&bytes).await?;
        self.stream.get_mut().flush().await
    }

    /// Reads the next reply.
    ///
    /// # Errors
    ///
    /// The I/O error of the connection or the listener.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the exchange: a command already written may still run on
    /// the server, and the connection should not be used again.
    pub async fn read_reply(&mut self) -> io::Result<RespReply> {
        // Arrays nest; read them iteratively to keep the future small and non-recursive.
        let mut stack: Vec<(usize, Vec<RespReply>)> = Vec::new();
        loop {
            let mut value = match self.read_one().await? {
                Head::Done(v) => v,
                Head::Array(0) => RespReply::Array(Some(Vec::new())),
                Head::Array(n) => {
                    stack.push((n, Vec::with_capacity(n.min(1024))));
                    continue;
                }
            };
            loop {
                match stack.last_mut() {
                    None => return Ok(value),
                    Some((n, items)) => {
                        items.push(value);
                        if items.len() < *n {
                            break;
                        }
                    }
                }
                match stack.pop() {
                    Some((_, items)) => value = RespReply::Array(Some(items)),
                    None => return Err(invalid("array stack underflow")),
                }
            }
        }
    }

    async fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let n = self.stream.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the peer",
            ));
        }
        if !line.ends_with(b"\r\n") {
            return Err(invalid("reply line not terminated by CRLF"));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| invalid("reply line is not UTF-8"))
    }

    async fn read_one(&mut self) -> io::Result<Head> {
        let line = self.read_line().await?;
        let (tag, rest) = line
            .split_at_checked(1)
            .ok_or_else(|| invalid("empty reply line"))?;
        let parse_len = |s: &str| -> io::Result<Option<usize>> {
            let n: i64 = s
                .parse()
                .map_err(|_| invalid(format!("bad length {s:?}")))?;
            if n < 0 {
                return Ok(None);
            }
            let n = usize::try_from(n).map_err(|_| invalid("length overflow"))?;
            if n > MAX_LEN {
                return Err(invalid(format!("length {n} too large")));
            }
            Ok(Some(n))
        };
        Ok(match tag {
            "+" => Head::Done(RespReply::Simple(rest.to_owned())),
            "-" => Head::Done(RespReply::Error(rest.to_owned())),
            ":" => Head::Done(RespReply::Int(
                rest.parse()
                    .map_err(|_| invalid(format!("bad integer {rest:?}")))?,
            )),
            "$" => match parse_len(rest)? {
                None => Head::Done(RespReply::Bulk(None)),
                Some(n) => {
                    let mut data = vec![0; n + 2];
                    self.stream.read_exact(&mut data).await?;
                    if !data.ends_with(b"\r\n") {
                        return Err(invalid("bulk string not terminated by CRLF"));
                    }
                    data.truncate(n);
                    Head::Done(RespReply::Bulk(Some(data)))
                }
            },
            "*" => match parse_len(rest)? {
                None => Head::Done(RespReply::Array(None)),
                Some(n) => Head::Array(n),
            },
            other => return Err(invalid(format!("unknown reply type {other:?}"))),
        })
    }
}

enum Head {
    Done(RespReply),
    Array(usize),
}
