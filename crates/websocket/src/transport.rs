//! A connection's two halves, over plain TCP, TLS (MQTTS, STOMP over TLS) or a
//! WebSocket.
//!
//! Over a WebSocket, the protocol's bytes travel in WebSocket messages. Incoming messages
//! are appended to the read buffer as they come, so the protocol decoder never sees the
//! message boundaries (MQTT over WebSocket allows a packet to span messages, and several
//! packets in one). Outgoing, a batch is sent as one binary message (MQTT) or as one
//! message per frame (STOMP: `stomp.js` expects each frame in its own message, as
//! RabbitMQ's Web-STOMP sends them; text when the frame is UTF-8, binary otherwise).

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use warren_tls::TlsStream;

type Ws = WebSocketStream<TcpStream>;
type Tls = TlsStream<TcpStream>;

/// The room the first read of a burst makes. Buffers are allocated when data arrives,
/// not while a connection idles, so ten thousand idle connections hold none; and they
/// start small (a CONNECT, a ping) and double while reads fill them, up to
/// [`READ_CHUNK_MAX`], so a busy publisher still reads in large batches.
const READ_CHUNK_MIN: usize = 512;
const READ_CHUNK_MAX: usize = 64 << 10;

/// The receiving half of a connection.
pub struct Reader {
    kind: ReaderKind,
    /// How much room the next read makes (see [`READ_CHUNK_MIN`]).
    chunk: usize,
}

enum ReaderKind {
    Tcp(OwnedReadHalf),
    Tls(ReadHalf<Tls>),
    Ws(SplitStream<Ws>),
}

impl Reader {
    /// Waits for data and appends it to `buf`. `Ok(0)` means the peer closed the
    /// connection (a TCP FIN, or a WebSocket close).
    pub async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match &mut self.kind {
            ReaderKind::Tcp(r) => loop {
                // Readiness first, memory second: an idle connection keeps no buffer.
                r.readable().await?;
                if buf.capacity() - buf.len() < self.chunk / 2 {
                    buf.reserve(self.chunk);
                }
                let room = buf.capacity() - buf.len();
                match r.try_read_buf(buf) {
                    Ok(n) => {
                        self.chunk = if n == room {
                            (self.chunk * 2).min(READ_CHUNK_MAX)
                        } else {
                            (self.chunk / 2).max(READ_CHUNK_MIN)
                        };
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            },
            ReaderKind::Tls(r) => {
                // Decrypted bytes come out of rustls' own buffer, so there is no
                // readiness to wait for first: read into room made now.
                if buf.capacity() - buf.len() < self.chunk / 2 {
                    buf.reserve(self.chunk);
                }
                let room = buf.capacity() - buf.len();
                let n = r.read_buf(buf).await?;
                self.chunk = if n == room {
                    (self.chunk * 2).min(READ_CHUNK_MAX)
                } else {
                    (self.chunk / 2).max(READ_CHUNK_MIN)
                };
                Ok(n)
            }
            ReaderKind::Ws(s) => loop {
                let Some(msg) = s.next().await else {
                    return Ok(0);
                };
                match msg.map_err(io::Error::other)? {
                    Message::Binary(b) => {
                        if b.is_empty() {
                            continue;
                        }
                        buf.extend_from_slice(&b);
                        return Ok(b.len());
                    }
                    Message::Text(t) => {
                        if t.is_empty() {
                            continue;
                        }
                        buf.extend_from_slice(t.as_bytes());
                        return Ok(t.len());
                    }
                    Message::Close(_) => return Ok(0),
                    // Pings are answered by the WebSocket layer itself.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                }
            },
        }
    }
}

/// How the WebSocket writer frames a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsFraming {
    /// The whole batch in one binary message (MQTT).
    Binary,
    /// One message per frame, text when it is UTF-8 (STOMP).
    PerFrame,
}

/// The sending half of a connection.
pub enum Writer {
    Tcp(OwnedWriteHalf),
    Tls(WriteHalf<Tls>),
    Ws(SplitSink<Ws, Message>, WsFraming),
}

impl Writer {
    /// Writes `data`; `frames` holds the end offset of each protocol frame in it (used
    /// only by [`WsFraming::PerFrame`]).
    pub async fn write(&mut self, data: Bytes, frames: &[usize]) -> io::Result<()> {
        match self {
            Writer::Tcp(w) => w.write_all(&data).await,
            // rustls buffers what it encrypts: without the flush it may sit there.
            Writer::Tls(w) => {
                w.write_all(&data).await?;
                w.flush().await
            }
            Writer::Ws(sink, WsFraming::Binary) => sink
                .send(Message::Binary(data))
                .await
                .map_err(io::Error::other),
            Writer::Ws(sink, WsFraming::PerFrame) => {
                let mut start = 0;
                let ends = frames.iter().copied().chain(std::iter::once(data.len()));
                for end in ends {
                    if end <= start {
                        continue;
                    }
                    let part = data.slice(start..end);
                    start = end;
                    let msg = match std::str::from_utf8(&part) {
                        Ok(_) => Message::Text(
                            // Checked just above.
                            tokio_tungstenite::tungstenite::Utf8Bytes::try_from(part)
                                .map_err(io::Error::other)?,
                        ),
                        Err(_) => Message::Binary(part),
                    };
                    sink.feed(msg).await.map_err(io::Error::other)?;
                }
                sink.flush().await.map_err(io::Error::other)
            }
        }
    }

    /// Closes the sending side: a TCP FIN, or a WebSocket close frame.
    pub async fn shutdown(&mut self) {
        match self {
            Writer::Tcp(w) => {
                let _ = w.shutdown().await;
            }
            // A TLS close_notify, then the FIN.
            Writer::Tls(w) => {
                let _ = w.shutdown().await;
            }
            Writer::Ws(sink, _) => {
                let _ = sink.close().await;
            }
        }
    }
}

/// Where an accepted socket is: what the connection registry shows, and the descriptor
/// it reads byte counts from (`TCP_INFO`). Taken before the socket is split or
/// upgraded; the descriptor stays valid for as long as the connection's [`Reader`] lives.
#[derive(Debug, Clone)]
pub struct SocketMeta {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub fd: Option<i32>,
    /// Set on a TLS connection: what its handshake established about the client.
    pub tls: Option<warren_tls::Peer>,
}

impl SocketMeta {
    pub fn of(sock: &TcpStream, peer: SocketAddr) -> SocketMeta {
        #[cfg(unix)]
        let fd = Some(std::os::fd::AsRawFd::as_raw_fd(sock));
        #[cfg(not(unix))]
        let fd = None;
        SocketMeta {
            peer,
            local: sock
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
            fd,
            tls: None,
        }
    }
}

impl SocketMeta {
    /// The TLS session as the connection registry shows it.
    pub fn tls_info(&self) -> Option<warren_core::registry::TlsInfo> {
        self.tls.as_ref().map(|p| {
            let s = &p.session;
            warren_core::registry::TlsInfo {
                protocol: s.protocol.clone(),
                key_exchange: s.key_exchange.clone(),
                cipher: s.cipher.clone(),
                hash: s.hash.clone(),
            }
        })
    }
}

/// Splits a plain TCP connection.
pub fn tcp(sock: TcpStream) -> (Reader, Writer) {
    let (r, w) = sock.into_split();
    let r = Reader {
        kind: ReaderKind::Tcp(r),
        chunk: READ_CHUNK_MIN,
    };
    (r, Writer::Tcp(w))
}

/// Splits a TLS connection.
pub fn tls(stream: Tls) -> (Reader, Writer) {
    let (r, w) = tokio::io::split(stream);
    let r = Reader {
        kind: ReaderKind::Tls(r),
        chunk: READ_CHUNK_MIN,
    };
    (r, Writer::Tls(w))
}

/// Splits an upgraded WebSocket connection.
pub fn websocket(ws: Ws, framing: WsFraming) -> (Reader, Writer) {
    let (w, r) = ws.split();
    let r = Reader {
        kind: ReaderKind::Ws(r),
        chunk: READ_CHUNK_MIN,
    };
    (r, Writer::Ws(w, framing))
}
