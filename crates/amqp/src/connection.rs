//! One AMQP connection after the handshake: the reader loop, frame routing to channels,
//! connection-level methods, resource-alarm blocking, heartbeat timeouts, errors and close.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::watch;
use warren_amqp_codec::frame::{decode_frame, write_method, FrameType};
use warren_amqp_codec::methods::*;
use warren_amqp_codec::{reply, CodecError, Frame, Method};
use warren_core::auth::User;
use warren_core::{Broker, BrokerError, ConnectionId, VHost};

use crate::channel::Channel;
use crate::handshake::{handshake, ClientCapabilities, HandshakeEnd};
use crate::outbound::Outbound;
use crate::AmqpConfig;

/// How long we wait for the peer's close-ok after sending connection.close.
const CLOSE_OK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a closed connection waits for the client to close its socket.
const CLOSING_TIMEOUT: Duration = Duration::from_secs(10);

/// What the reader loop does after a frame.
pub(crate) enum Flow {
    Continue,
    /// Stop reading: the connection is finished (our close was acknowledged).
    Stop,
    /// The client closed the connection and has its close-ok: wait for it to close
    /// the socket.
    ClosedByClient,
}

/// An error while handling a frame, and its scope.
pub(crate) enum AmqpError {
    /// Close this channel with the error; the connection lives on.
    Channel(u16, BrokerError, u16, u16),
    /// Close the connection with the error.
    Connection(BrokerError, u16, u16),
}

impl AmqpError {
    /// Scopes a broker error raised by a method on `channel`.
    pub fn from_method(channel: u16, e: BrokerError, m: (u16, u16)) -> AmqpError {
        if e.is_connection_error() {
            AmqpError::Connection(e, m.0, m.1)
        } else {
            AmqpError::Channel(channel, e, m.0, m.1)
        }
    }

    pub fn connection(code: u16, text: impl Into<String>) -> AmqpError {
        AmqpError::Connection(BrokerError::new(code, text), 0, 0)
    }
}

/// Per-connection facts channels need while handling methods.
pub(crate) struct ConnCtx {
    pub id: ConnectionId,
    pub broker: Arc<Broker>,
    pub vhost: Arc<VHost>,
    pub user: User,
    pub cfg: Arc<AmqpConfig>,
    pub out: Arc<Outbound>,
    pub frame_max: u32,
    pub caps: ClientCapabilities,
}

pub(crate) struct Connection {
    pub ctx: ConnCtx,
    pub channels: HashMap<u16, Channel>,
    channel_max: u16,
    /// We sent connection.close and wait for close-ok.
    closing: bool,
    /// The connection published since the last alarm check (RabbitMQ blocks publishers).
    published: bool,
    /// Channels whose publisher confirms must be flushed at the end of this read batch.
    pub confirm_dirty: Vec<u16>,
}

/// Serves one accepted socket to the end.
pub async fn serve_connection(
    sock: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    cfg: Arc<AmqpConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = sock.set_nodelay(true);
    let (mut r, mut w) = sock.into_split();
    let mut buf = BytesMut::with_capacity(64 << 10);
    let hs = tokio::time::timeout(
        cfg.handshake_timeout,
        handshake(&mut r, &mut w, &mut buf, &broker, &cfg, peer),
    )
    .await;
    let opened = match hs {
        Err(_) => {
            tracing::info!(%peer, "handshake timed out");
            return;
        }
        Ok(Err(HandshakeEnd::Closed)) => return,
        Ok(Err(HandshakeEnd::Error(e, class_id, method_id))) => {
            tracing::warn!(%peer, error = %e, "connection refused during handshake");
            let mut b = BytesMut::new();
            write_method(&mut b, 0, &close_method(&e, class_id, method_id));
            use tokio::io::AsyncWriteExt;
            if w.write_all(&b).await.is_ok() {
                // Give the client a moment to read it and answer close-ok.
                let _ = tokio::time::timeout(CLOSE_OK_TIMEOUT, async {
                    let mut scratch = [0u8; 512];
                    while let Ok(n) = r.read(&mut scratch).await {
                        if n == 0 {
                            break;
                        }
                        if scratch[..n].windows(4).any(|x| x == [0, 10, 0, 51]) {
                            break;
                        }
                    }
                })
                .await;
            }
            let _ = w.shutdown().await;
            return;
        }
        Ok(Ok(o)) => o,
    };
    let id = broker.next_connection_id();
    let client = opened
        .client_properties
        .get("product")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .to_string();
    tracing::info!(%peer, connection = id, user = %opened.user.name, vhost = %opened.vhost.name, %client, "connection opened");
    let out = Arc::new(Outbound::default());
    let heartbeat = Duration::from_secs(opened.heartbeat as u64);
    let writer = tokio::spawn(out.clone().run_writer(w, heartbeat));
    let mut conn = Connection {
        ctx: ConnCtx {
            id,
            broker: broker.clone(),
            vhost: opened.vhost,
            user: opened.user,
            cfg,
            out: out.clone(),
            frame_max: opened.frame_max,
            caps: opened.capabilities,
        },
        channels: HashMap::new(),
        channel_max: opened.channel_max,
        closing: false,
        published: false,
        confirm_dirty: Vec::new(),
    };
    let reason = conn.run(&mut r, buf, heartbeat, &mut shutdown).await;
    tracing::info!(%peer, connection = id, reason, "connection closed");
    conn.cleanup();
    out.close();
    let _ = writer.await;
}

/// The reply text for a close method: RabbitMQ cuts texts longer than a short string
/// allows to 252 bytes and appends "...".
pub(crate) fn reply_text(e: &BrokerError) -> warren_amqp_codec::ShortStr {
    let mut t = e.reply_text();
    if t.len() > 255 {
        let mut n = 252;
        while !t.is_char_boundary(n) {
            n -= 1;
        }
        t.truncate(n);
        t.push_str("...");
    }
    t.into()
}

fn close_method(e: &BrokerError, class_id: u16, method_id: u16) -> Method {
    ConnectionClose {
        reply_code: e.code,
        reply_text: reply_text(e),
        class_id,
        method_id,
    }
    .into()
}

impl Connection {
    async fn run(
        &mut self,
        r: &mut OwnedReadHalf,
        mut buf: BytesMut,
        heartbeat: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> &'static str {
        // Dead-peer detection: RabbitMQ gives up after two heartbeat intervals of silence.
        let idle_limit = if heartbeat.is_zero() {
            None
        } else {
            Some(heartbeat * 2)
        };
        let mut alarms = self.ctx.broker.alarms.subscribe();
        let mut close_deadline: Option<tokio::time::Instant> = None;
        loop {
            // Process everything already buffered before reading more.
            loop {
                let frame = match decode_frame(&mut buf, self.ctx.frame_max) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        if self.closing {
                            return "frame error while closing";
                        }
                        self.fail(frame_error(&e, self.ctx.frame_max));
                        close_deadline = Some(tokio::time::Instant::now() + CLOSE_OK_TIMEOUT);
                        // The stream is unparseable from here: drop what is buffered.
                        buf.clear();
                        break;
                    }
                };
                match self.handle_frame(frame) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Stop) => {
                        self.flush_confirms();
                        return "closed";
                    }
                    Ok(Flow::ClosedByClient) => {
                        self.ctx.out.schedule();
                        self.linger(r, &mut buf).await;
                        return "closed by client";
                    }
                    Err(e) => {
                        if self.on_error(e) {
                            close_deadline = Some(tokio::time::Instant::now() + CLOSE_OK_TIMEOUT);
                        }
                    }
                }
            }
            self.flush_confirms();
            self.ctx.out.schedule();

            if self.published && *alarms.borrow() && !self.closing {
                self.published = false;
                if !self.block_until_clear(&mut alarms, shutdown).await {
                    return "shutdown while blocked";
                }
            }

            let read = r.read_buf(&mut buf);
            let res = tokio::select! {
                res = read => res,
                _ = shutdown.changed() => {
                    self.fail(AmqpError::connection(
                        reply::CONNECTION_FORCED,
                        "broker forced connection closure with reason 'shutdown'",
                    ));
                    return "broker shutdown";
                }
                _ = sleep_until_opt(close_deadline) => return "close-ok timeout",
                _ = sleep_opt(idle_limit) => {
                    tracing::warn!(connection = self.ctx.id, "missed heartbeats from client, timeout: {}s", heartbeat.as_secs());
                    return "heartbeat timeout";
                }
            };
            match res {
                Ok(0) | Err(_) => return "client closed the socket",
                Ok(_) => {}
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(64 << 10);
            }
        }
    }

    /// After close-ok, leaves closing the socket to the client (as RabbitMQ does), reading
    /// and ignoring whatever it still sends, for at most `CLOSING_TIMEOUT`.
    async fn linger(&mut self, r: &mut OwnedReadHalf, buf: &mut BytesMut) {
        let _ = tokio::time::timeout(CLOSING_TIMEOUT, async {
            loop {
                buf.clear();
                match r.read_buf(buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }

    /// Blocks reading while a resource alarm is raised (RabbitMQ blocks a connection
    /// when it publishes during an alarm). False if the broker shut down meanwhile.
    async fn block_until_clear(
        &mut self,
        alarms: &mut watch::Receiver<bool>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let notify = self.ctx.caps.connection_blocked;
        if notify {
            let reason = self.ctx.broker.alarms.reason();
            self.ctx.out.send(
                0,
                &ConnectionBlocked {
                    reason: reason.into(),
                }
                .into(),
            );
        }
        tracing::info!(connection = self.ctx.id, "connection blocked by resource alarm");
        loop {
            if !*alarms.borrow_and_update() {
                break;
            }
            tokio::select! {
                r = alarms.changed() => if r.is_err() { return false },
                _ = shutdown.changed() => return false,
            }
        }
        if notify {
            self.ctx.out.send(0, &ConnectionUnblocked {}.into());
        }
        tracing::info!(connection = self.ctx.id, "connection unblocked");
        true
    }

    fn handle_frame(&mut self, f: Frame) -> Result<Flow, AmqpError> {
        if f.frame_type == FrameType::Heartbeat {
            if f.channel != 0 {
                return Err(AmqpError::connection(
                    reply::FRAME_ERROR,
                    format!("heartbeat frame on non-zero channel {}", f.channel),
                ));
            }
            return Ok(Flow::Continue);
        }
        if f.channel == 0 {
            if f.frame_type != FrameType::Method {
                return Err(AmqpError::connection(
                    reply::UNEXPECTED_FRAME,
                    "expected method frame, got non method frame instead",
                ));
            }
            let m = decode_method(&f)?;
            return self.connection_method(m);
        }
        if self.closing {
            return Ok(Flow::Continue);
        }
        if f.channel > self.channel_max {
            return Err(AmqpError::connection(
                reply::CHANNEL_ERROR,
                format!("channel number {} out of range", f.channel),
            ));
        }
        match f.frame_type {
            FrameType::Method => {
                let m = decode_method(&f)?;
                self.channel_method(f.channel, m)
            }
            FrameType::Header | FrameType::Body => {
                let Some(ch) = self.channels.get_mut(&f.channel) else {
                    return Err(AmqpError::connection(
                        reply::CHANNEL_ERROR,
                        "expected 'channel.open'",
                    ));
                };
                if ch.closing {
                    return Ok(Flow::Continue);
                }
                let published = ch.content_frame(&self.ctx, f)?;
                if published {
                    self.published = true;
                    if ch.confirm.is_some() && !self.confirm_dirty.contains(&ch.id) {
                        self.confirm_dirty.push(ch.id);
                    }
                }
                Ok(Flow::Continue)
            }
            FrameType::Heartbeat => unreachable!(),
        }
    }

    fn connection_method(&mut self, m: Method) -> Result<Flow, AmqpError> {
        match m {
            Method::ConnectionClose(c) => {
                if !self.closing {
                    tracing::info!(connection = self.ctx.id, code = c.reply_code, text = %c.reply_text, "client closed the connection");
                }
                // Exclusive queues go before close-ok: clients assume a closed connection's
                // exclusive queues are gone.
                self.flush_confirms();
                self.cleanup();
                self.ctx.out.send(0, &ConnectionCloseOk {}.into());
                Ok(Flow::ClosedByClient)
            }
            Method::ConnectionCloseOk(_) => {
                if self.closing {
                    Ok(Flow::Stop)
                } else {
                    Ok(Flow::Continue)
                }
            }
            _ if self.closing => Ok(Flow::Continue),
            Method::ConnectionUpdateSecret(u) => {
                let _ = u;
                self.ctx.out.send(0, &ConnectionUpdateSecretOk {}.into());
                Ok(Flow::Continue)
            }
            Method::ConnectionBlocked(_) | Method::ConnectionUnblocked(_) => Ok(Flow::Continue),
            other => Err(AmqpError::Connection(
                BrokerError::command_invalid(format!(
                    "unexpected method '{}' on channel 0",
                    other.name()
                )),
                other.class_id(),
                other.method_id(),
            )),
        }
    }

    fn channel_method(&mut self, id: u16, m: Method) -> Result<Flow, AmqpError> {
        let ids = (m.class_id(), m.method_id());
        match m {
            Method::ChannelOpen(_) => {
                if self.channels.contains_key(&id) {
                    return Err(AmqpError::Connection(
                        BrokerError::new(reply::CHANNEL_ERROR, "second 'channel.open' seen"),
                        ids.0,
                        ids.1,
                    ));
                }
                let ch = Channel::new(id, &self.ctx);
                self.channels.insert(id, ch);
                self.ctx.out.send(
                    id,
                    &ChannelOpenOk {
                        reserved_1: Default::default(),
                    }
                    .into(),
                );
                Ok(Flow::Continue)
            }
            Method::ChannelCloseOk(_) => {
                if let Some(ch) = self.channels.get(&id) {
                    if ch.closing {
                        self.channels.remove(&id);
                    }
                }
                Ok(Flow::Continue)
            }
            Method::ChannelClose(_) => {
                if let Some(mut ch) = self.channels.remove(&id) {
                    ch.close(&self.ctx);
                }
                self.ctx.out.send(id, &ChannelCloseOk {}.into());
                Ok(Flow::Continue)
            }
            m => {
                let Some(ch) = self.channels.get_mut(&id) else {
                    return Err(AmqpError::Connection(
                        BrokerError::new(reply::CHANNEL_ERROR, "expected 'channel.open'"),
                        ids.0,
                        ids.1,
                    ));
                };
                if ch.closing {
                    return Ok(Flow::Continue);
                }
                ch.method(&self.ctx, m)
                    .map_err(|e| AmqpError::from_method(id, e, ids))?;
                if ch.confirm.as_ref().is_some_and(|c| c.dirty()) && !self.confirm_dirty.contains(&id) {
                    self.confirm_dirty.push(id);
                }
                Ok(Flow::Continue)
            }
        }
    }

    fn flush_confirms(&mut self) {
        for id in self.confirm_dirty.drain(..) {
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.flush_confirms(&self.ctx);
            }
        }
    }

    /// Applies an error. Returns true if the connection is now closing.
    fn on_error(&mut self, e: AmqpError) -> bool {
        match e {
            AmqpError::Channel(id, err, class_id, method_id) => {
                tracing::warn!(connection = self.ctx.id, channel = id, error = %err, "channel error");
                self.flush_confirms();
                if let Some(ch) = self.channels.get_mut(&id) {
                    ch.close(&self.ctx);
                    ch.closing = true;
                }
                self.ctx.out.send(
                    id,
                    &ChannelClose {
                        reply_code: err.code,
                        reply_text: reply_text(&err),
                        class_id,
                        method_id,
                    }
                    .into(),
                );
                false
            }
            e @ AmqpError::Connection(..) => {
                self.fail(e);
                true
            }
        }
    }

    /// Sends connection.close for a connection-level error and stops all channels.
    fn fail(&mut self, e: AmqpError) {
        let AmqpError::Connection(err, class_id, method_id) = e else {
            return;
        };
        if self.closing {
            return;
        }
        tracing::warn!(connection = self.ctx.id, error = %err, "closing connection");
        self.flush_confirms();
        self.closing = true;
        for (_, mut ch) in self.channels.drain() {
            ch.close(&self.ctx);
        }
        self.ctx.out.send(0, &close_method(&err, class_id, method_id));
    }

    /// Releases everything the connection holds: consumers, unacked messages (requeued),
    /// exclusive queues.
    fn cleanup(&mut self) {
        for (_, mut ch) in self.channels.drain() {
            ch.close(&self.ctx);
        }
        self.ctx.vhost.connection_closed(self.ctx.id);
    }
}

fn decode_method(f: &Frame) -> Result<Method, AmqpError> {
    Method::decode(&f.payload).map_err(|e| match e {
        CodecError::UnknownMethod {
            class_id,
            method_id,
        } => AmqpError::Connection(
            BrokerError::not_implemented(format!(
                "unknown method {{{class_id},{method_id}}}"
            )),
            class_id,
            method_id,
        ),
        other => {
            let (c, m) = if f.payload.len() >= 4 {
                (
                    u16::from_be_bytes([f.payload[0], f.payload[1]]),
                    u16::from_be_bytes([f.payload[2], f.payload[3]]),
                )
            } else {
                (0, 0)
            };
            AmqpError::Connection(
                BrokerError::new(reply::SYNTAX_ERROR, format!("cannot decode method: {other}")),
                c,
                m,
            )
        }
    })
}

fn frame_error(e: &CodecError, frame_max: u32) -> AmqpError {
    let text = match e {
        CodecError::FrameTooLarge { size, .. } => {
            format!("frame size {} exceeds negotiated frame_max {frame_max}", *size as u64 + 8)
        }
        CodecError::BadFrameEnd(b) => format!("invalid frame end marker {b:#04x}"),
        CodecError::UnknownFrameType(t) => format!("unknown frame type {t}"),
        other => other.to_string(),
    };
    AmqpError::connection(reply::FRAME_ERROR, text)
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
