//! A tiny AMQP 0-9-1 client on `warren-amqp-codec`: the handshake (SASL PLAIN), channel
//! open, the setup RPCs a benchmark needs (exchange/queue declare, bind, delete, qos,
//! confirm.select) and connection close.
//!
//! It is deliberately request/response and not concurrent: a [`Client`] sets a connection
//! up, then [`Client::into_parts`] hands the socket and its read buffer to a worker
//! (`worker.rs`), which runs the hot loop itself. Frames that arrive during setup but are
//! not the awaited reply (a delivery on a consumer channel, `connection.blocked`) are kept
//! raw in a stash and handed over in front of the read buffer, so nothing is lost.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_amqp_codec::frame::write_method;
use warren_amqp_codec::methods::*;
use warren_amqp_codec::{CodecError, FieldTable, FieldValue, FrameType, Method, PROTOCOL_HEADER};

use crate::scan;
use crate::uri::AmqpUri;

/// The largest frame we ask for; the broker may lower it.
pub const FRAME_MAX: u32 = 131_072;

#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    Codec(CodecError),
    Frame(scan::FrameError),
    /// The broker closed a channel (`channel != 0`) or the connection.
    Closed {
        channel: u16,
        code: u16,
        text: String,
    },
    Protocol(String),
}

impl Error {
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Closed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Codec(e) => write!(f, "protocol error: {e}"),
            Error::Frame(e) => write!(f, "framing error: {e}"),
            Error::Closed {
                channel: 0,
                code,
                text,
            } => write!(f, "broker closed the connection: {code} {text}"),
            Error::Closed {
                channel,
                code,
                text,
            } => write!(f, "broker closed channel {channel}: {code} {text}"),
            Error::Protocol(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<scan::FrameError> for Error {
    fn from(e: scan::FrameError) -> Self {
        Error::Frame(e)
    }
}

impl From<CodecError> for Error {
    fn from(e: CodecError) -> Self {
        Error::Codec(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub struct Client {
    stream: TcpStream,
    rbuf: BytesMut,
    stash: BytesMut,
    wbuf: BytesMut,
    pub frame_max: u32,
    /// "product version (platform)" from the broker's server properties.
    pub server: String,
}

impl Client {
    /// Connects, authenticates with PLAIN and opens the URI's vhost. `name` shows up as
    /// the connection name in the broker's management UI.
    pub async fn connect(uri: &AmqpUri, name: &str) -> Result<Client> {
        let stream = TcpStream::connect(uri.addr()).await?;
        stream.set_nodelay(true)?;
        let mut c = Client {
            stream,
            rbuf: BytesMut::with_capacity(64 * 1024),
            stash: BytesMut::new(),
            wbuf: BytesMut::with_capacity(4096),
            frame_max: FRAME_MAX,
            server: String::new(),
        };
        c.stream.write_all(PROTOCOL_HEADER).await?;
        let start = match c
            .expect(0, |m| matches!(m, Method::ConnectionStart(_)))
            .await
        {
            Ok(Method::ConnectionStart(s)) => s,
            Ok(_) => unreachable!(),
            Err(Error::Frame(scan::FrameError::UnknownType(b'A'))) => return Err(Error::Protocol(
                "the server does not speak AMQP 0-9-1 (it answered with another protocol header)"
                    .into(),
            )),
            Err(e) => return Err(e),
        };
        let prop = |k: &str| {
            start
                .server_properties
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_string()
        };
        // Warren presents itself as RabbitMQ for clients' feature checks; the platform
        // ("Rust" vs "Erlang/OTP ...") tells them apart.
        c.server = format!(
            "{} {} ({})",
            prop("product"),
            prop("version"),
            prop("platform")
        );
        let mechanisms = String::from_utf8_lossy(&start.mechanisms).to_string();
        if !mechanisms.split_whitespace().any(|m| m == "PLAIN") {
            return Err(Error::Protocol(format!(
                "the broker does not offer PLAIN authentication (it offers {mechanisms})"
            )));
        }
        let mut response = Vec::new();
        response.push(0);
        response.extend_from_slice(uri.user.as_bytes());
        response.push(0);
        response.extend_from_slice(uri.password.as_bytes());
        c.send(
            0,
            ConnectionStartOk {
                client_properties: client_properties(name),
                mechanism: "PLAIN".into(),
                response: Bytes::from(response),
                locale: "en_US".into(),
            }
            .into(),
        )
        .await?;
        let tune = match c
            .expect(0, |m| matches!(m, Method::ConnectionTune(_)))
            .await?
        {
            Method::ConnectionTune(t) => t,
            _ => unreachable!(),
        };
        c.frame_max = match tune.frame_max {
            0 => FRAME_MAX,
            n => n.min(FRAME_MAX),
        };
        c.send(
            0,
            ConnectionTuneOk {
                channel_max: tune.channel_max,
                frame_max: c.frame_max,
                // No heartbeats: every connection is busy for the whole run, and a
                // heartbeat timer per connection would be one more wake-up per second.
                heartbeat: 0,
            }
            .into(),
        )
        .await?;
        c.rpc(
            0,
            ConnectionOpen {
                virtual_host: uri.vhost.as_str().into(),
                ..Default::default()
            }
            .into(),
            |m| matches!(m, Method::ConnectionOpenOk(_)),
        )
        .await?;
        Ok(c)
    }

    async fn send(&mut self, channel: u16, m: Method) -> Result<()> {
        self.wbuf.clear();
        write_method(&mut self.wbuf, channel, &m);
        self.stream.write_all(&self.wbuf).await?;
        Ok(())
    }

    /// Sends `m` on `channel` and waits for the reply `want` accepts.
    pub async fn rpc(
        &mut self,
        channel: u16,
        m: Method,
        want: fn(&Method) -> bool,
    ) -> Result<Method> {
        self.send(channel, m).await?;
        self.expect(channel, want).await
    }

    /// Reads until a method on `channel` that `want` accepts. A `channel.close` for
    /// `channel` or a `connection.close` is answered and returned as [`Error::Closed`];
    /// heartbeats are dropped; everything else is stashed for the worker.
    async fn expect(&mut self, channel: u16, want: fn(&Method) -> bool) -> Result<Method> {
        loop {
            while let Some((f, total)) = scan::peek(&self.rbuf)? {
                let reply = match f.kind {
                    FrameType::Heartbeat => None,
                    FrameType::Method if f.channel == channel || f.channel == 0 => {
                        let m = Method::decode(&Bytes::copy_from_slice(f.payload))?;
                        Some(m)
                    }
                    _ => {
                        self.stash.extend_from_slice(&self.rbuf[..total]);
                        None
                    }
                };
                let frame_channel = f.channel;
                let raw = self.rbuf.split_to(total);
                let Some(m) = reply else { continue };
                if want(&m) {
                    return Ok(m);
                }
                match m {
                    Method::ConnectionClose(c) => {
                        let _ = self.send(0, ConnectionCloseOk {}.into()).await;
                        return Err(Error::Closed {
                            channel: 0,
                            code: c.reply_code,
                            text: c.reply_text.to_string(),
                        });
                    }
                    Method::ChannelClose(c) => {
                        self.send(frame_channel, ChannelCloseOk {}.into()).await?;
                        return Err(Error::Closed {
                            channel: frame_channel,
                            code: c.reply_code,
                            text: c.reply_text.to_string(),
                        });
                    }
                    _ => self.stash.extend_from_slice(&raw),
                }
            }
            if let Some(n) = scan::wanted(&self.rbuf) {
                self.rbuf.reserve(n.saturating_sub(self.rbuf.len()));
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(Error::Protocol(
                    "the broker closed the connection (wrong credentials or vhost?)".into(),
                ));
            }
        }
    }

    pub async fn open_channel(&mut self, channel: u16) -> Result<()> {
        self.rpc(channel, ChannelOpen::default().into(), |m| {
            matches!(m, Method::ChannelOpenOk(_))
        })
        .await
        .map(drop)
    }

    /// Declares (or with `passive`, checks) a queue; returns its message count.
    pub async fn queue_declare(
        &mut self,
        channel: u16,
        queue: &str,
        passive: bool,
        durable: bool,
        arguments: FieldTable,
    ) -> Result<u32> {
        let m = QueueDeclare {
            queue: queue.into(),
            passive,
            durable,
            arguments,
            ..Default::default()
        };
        match self
            .rpc(channel, m.into(), |m| {
                matches!(m, Method::QueueDeclareOk(_))
            })
            .await?
        {
            Method::QueueDeclareOk(ok) => Ok(ok.message_count),
            _ => unreachable!(),
        }
    }

    pub async fn exchange_declare(
        &mut self,
        channel: u16,
        exchange: &str,
        kind: &str,
        passive: bool,
        durable: bool,
    ) -> Result<()> {
        let m = ExchangeDeclare {
            exchange: exchange.into(),
            kind: kind.into(),
            passive,
            durable,
            ..Default::default()
        };
        self.rpc(channel, m.into(), |m| {
            matches!(m, Method::ExchangeDeclareOk(_))
        })
        .await
        .map(drop)
    }

    pub async fn queue_bind(
        &mut self,
        channel: u16,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<()> {
        let m = QueueBind {
            queue: queue.into(),
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            ..Default::default()
        };
        self.rpc(channel, m.into(), |m| matches!(m, Method::QueueBindOk(_)))
            .await
            .map(drop)
    }

    /// Deletes a queue; returns how many messages it still held.
    pub async fn queue_delete(&mut self, channel: u16, queue: &str) -> Result<u32> {
        let m = QueueDelete {
            queue: queue.into(),
            ..Default::default()
        };
        match self
            .rpc(channel, m.into(), |m| matches!(m, Method::QueueDeleteOk(_)))
            .await?
        {
            Method::QueueDeleteOk(ok) => Ok(ok.message_count),
            _ => unreachable!(),
        }
    }

    pub async fn exchange_delete(&mut self, channel: u16, exchange: &str) -> Result<()> {
        let m = ExchangeDelete {
            exchange: exchange.into(),
            ..Default::default()
        };
        self.rpc(channel, m.into(), |m| {
            matches!(m, Method::ExchangeDeleteOk(_))
        })
        .await
        .map(drop)
    }

    /// Per-consumer prefetch (`global = false`, as RabbitMQ clients mean it).
    pub async fn qos(&mut self, channel: u16, prefetch_count: u16) -> Result<()> {
        let m = BasicQos {
            prefetch_count,
            ..Default::default()
        };
        self.rpc(channel, m.into(), |m| matches!(m, Method::BasicQosOk(_)))
            .await
            .map(drop)
    }

    pub async fn confirm_select(&mut self, channel: u16) -> Result<()> {
        self.rpc(channel, ConfirmSelect::default().into(), |m| {
            matches!(m, Method::ConfirmSelectOk(_))
        })
        .await
        .map(drop)
    }

    /// Starts a consumer and waits for `consume-ok`; deliveries that follow it are
    /// stashed for the worker.
    pub async fn consume(
        &mut self,
        channel: u16,
        queue: &str,
        consumer_tag: &str,
        no_ack: bool,
        arguments: FieldTable,
    ) -> Result<()> {
        let m = BasicConsume {
            queue: queue.into(),
            consumer_tag: consumer_tag.into(),
            no_ack,
            arguments,
            ..Default::default()
        };
        self.rpc(channel, m.into(), |m| {
            matches!(m, Method::BasicConsumeOk(_))
        })
        .await
        .map(drop)
    }

    /// Closes the connection politely, waiting at most `wait` for `close-ok`.
    pub async fn close(&mut self, wait: Duration) -> Result<()> {
        let m = ConnectionClose {
            reply_code: 200,
            reply_text: "warren-perf done".into(),
            ..Default::default()
        };
        match tokio::time::timeout(
            wait,
            self.rpc(0, m.into(), |m| matches!(m, Method::ConnectionCloseOk(_))),
        )
        .await
        {
            Ok(r) => r.map(drop),
            Err(_) => Ok(()),
        }
    }

    /// The socket, the frame size agreed on, and every unread byte (stashed frames first).
    pub fn into_parts(mut self) -> (TcpStream, BytesMut, u32) {
        let mut buf = std::mem::take(&mut self.stash);
        buf.extend_from_slice(&self.rbuf);
        (self.stream, buf, self.frame_max)
    }
}

fn client_properties(name: &str) -> FieldTable {
    let mut caps = FieldTable::new();
    for c in [
        "publisher_confirms",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
    ] {
        caps.insert(c, FieldValue::Bool(true));
    }
    let mut p = FieldTable::new();
    p.insert("product", "warren-perf".into());
    p.insert("version", env!("CARGO_PKG_VERSION").into());
    p.insert("platform", "Rust".into());
    p.insert("connection_name", name.into());
    p.insert("capabilities", FieldValue::Table(caps));
    p
}
