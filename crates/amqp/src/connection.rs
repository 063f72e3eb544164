//! One AMQP connection after the handshake: the reader loop, frame routing to channels,
//! connection-level methods, resource-alarm blocking, heartbeat timeouts, errors and close.
//!
//! Each connection and channel is registered with the broker's
//! [`Registry`](warren_core::registry::Registry), which the management API lists and uses to
//! force-close a connection. The only per-message cost is one relaxed atomic increment per
//! publish; byte counts come from the kernel when asked for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use warren_amqp_codec::frame::{decode_frame, write_method, FrameType};
use warren_amqp_codec::methods::*;
use warren_amqp_codec::{reply, CodecError, Frame, Method};
use warren_core::auth::User;
use warren_core::registry::{ChannelEntry, ChannelProbe, ConnectionEntry, ConnectionInfo};
use warren_core::{Broker, BrokerError, ConnectionId, VHost};
use warren_store::committer::Committer;

use crate::channel::Channel;
use crate::delivery::ChannelShared;
use crate::handshake::{handshake, ClientCapabilities, HandshakeEnd};
use crate::outbound::{Outbound, WakeBatch};
use crate::AmqpConfig;

/// How long we wait for the peer's close-ok after sending connection.close.
const CLOSE_OK_TIMEOUT: Duration = Duration::from_secs(3);
/// How often channels are checked for deliveries left unacknowledged past the consumer
/// timeout.
const CONSUMER_TIMEOUT_CHECK: Duration = Duration::from_secs(1);
/// How long a handshake that fails without a word keeps the socket before closing it.
const SILENT_CLOSE_DELAY: Duration = Duration::from_secs(3);
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
    /// A tx.commit waits for an fsync: stop reading until it is answered.
    WaitSync,
}

/// How a batch of buffered frames ended.
enum Batch {
    /// Everything buffered was handled: read more.
    Done,
    Stop(&'static str),
    ClosedByClient,
    /// A publish waits behind a resource alarm.
    Blocked,
    /// A tx.commit waits for its fsync.
    WaitSync,
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
    /// Group commit: confirms and tx.commit of persistent messages wait for its epochs.
    pub committer: Arc<Committer>,
}

pub(crate) struct Connection {
    pub ctx: ConnCtx,
    pub channels: HashMap<u16, Channel>,
    channel_max: u16,
    /// We sent connection.close and wait for close-ok.
    closing: bool,
    /// This connection in the broker's registry.
    reg: Arc<ConnectionEntry>,
    /// The registry entries of open channels, indexed by channel number (a publish finds
    /// its counter without hashing).
    chan_stats: Vec<Option<Arc<ChannelEntry>>>,
}

/// What the management API reads from a channel's delivery state on demand.
impl ChannelProbe for ChannelShared {
    fn unacked(&self) -> u64 {
        self.state.lock().unacked.len() as u64
    }

    fn global_prefetch(&self) -> u32 {
        self.credit.limit()
    }
}

/// Sets up an accepted socket: no Nagle delay; its local address and descriptor (for
/// the registry's TCP statistics).
fn prepare(sock: &TcpStream, peer: SocketAddr) -> (SocketAddr, i32) {
    use std::os::fd::AsRawFd;
    let _ = sock.set_nodelay(true);
    (sock.local_addr().unwrap_or(peer), sock.as_raw_fd())
}

/// Serves one accepted socket to the end.
pub async fn serve_connection(
    sock: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    cfg: Arc<AmqpConfig>,
    shutdown: watch::Receiver<bool>,
) {
    let (local, fd) = prepare(&sock, peer);
    let (r, w) = sock.into_split();
    serve_stream(r, w, Some(fd), peer, local, None, broker, cfg, shutdown).await
}

/// Serves one accepted socket with TLS (AMQPS): the TLS handshake counts towards the
/// handshake timeout; a verified client certificate's common name enables SASL EXTERNAL.
pub async fn serve_tls_connection(
    sock: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    peer: SocketAddr,
    broker: Arc<Broker>,
    cfg: Arc<AmqpConfig>,
    shutdown: watch::Receiver<bool>,
) {
    let (local, fd) = prepare(&sock, peer);
    let Some((tls, client)) =
        warren_tls::accept(&acceptor, sock, peer, cfg.handshake_timeout, "AMQPS").await
    else {
        return;
    };
    let (r, w) = tokio::io::split(tls);
    serve_stream(
        r,
        w,
        Some(fd),
        peer,
        local,
        Some(client),
        broker,
        cfg,
        shutdown,
    )
    .await
}

/// Serves a connection over any byte stream (no socket: no TCP statistics). The fuzz
/// target for the connection state machine drives the broker through this.
pub async fn serve_io<S>(
    stream: S,
    peer: SocketAddr,
    broker: Arc<Broker>,
    cfg: Arc<AmqpConfig>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(stream);
    serve_stream(r, w, None, peer, peer, None, broker, cfg, shutdown).await
}

#[allow(clippy::too_many_arguments)]
async fn serve_stream<R, W>(
    mut r: R,
    mut w: W,
    fd: Option<i32>,
    peer: SocketAddr,
    local: SocketAddr,
    tls: Option<warren_tls::Peer>,
    broker: Arc<Broker>,
    cfg: Arc<AmqpConfig>,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(64 << 10);
    let hs = tokio::time::timeout(
        cfg.handshake_timeout,
        handshake(
            &mut r,
            &mut w,
            &mut buf,
            &broker,
            &cfg,
            peer,
            tls.as_ref().and_then(|t| t.common_name.as_deref()),
        ),
    )
    .await;
    let opened = match hs {
        Err(_) => {
            tracing::info!(%peer, "handshake timed out");
            return;
        }
        Ok(Err(HandshakeEnd::Closed)) => return,
        Ok(Err(HandshakeEnd::Silent(why))) => {
            // As RabbitMQ: no frame; the socket closes after the handshake timeout.
            tracing::warn!(%peer, "closing connection during handshake: {why}");
            drain_for(&mut r, SILENT_CLOSE_DELAY, |_| false).await;
            return;
        }
        Ok(Err(HandshakeEnd::Error(e, class_id, method_id))) => {
            tracing::warn!(%peer, error = %e, "connection refused during handshake");
            let mut b = BytesMut::new();
            write_method(&mut b, 0, &close_method(&e, class_id, method_id));
            use tokio::io::AsyncWriteExt;
            if w.write_all(&b).await.is_ok() {
                // Give the client a moment to read it and answer close-ok.
                let close_ok = [1u8, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51];
                drain_for(&mut r, CLOSE_OK_TIMEOUT, |seen| {
                    seen.windows(close_ok.len()).any(|x| x == close_ok)
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
    // Deregisters when dropped, at the end of this function, while `r` still holds the
    // socket open (see `Registration::socket_closing`).
    let registration = broker.registry().register(ConnectionInfo {
        id,
        protocol: "AMQP 0-9-1".into(),
        peer,
        local,
        user: opened.user.name.clone(),
        vhost: opened.vhost.name.clone(),
        auth_mechanism: opened.mechanism.clone(),
        client_properties: warren_store::json::table_to_json(&opened.client_properties),
        frame_max: opened.frame_max,
        channel_max: opened.channel_max,
        heartbeat: opened.heartbeat,
        fd,
        tls: tls.map(|t| warren_core::registry::TlsInfo {
            protocol: t.session.protocol,
            key_exchange: t.session.key_exchange,
            cipher: t.session.cipher,
            hash: t.session.hash,
        }),
    });
    let out = Arc::new(Outbound::default());
    let heartbeat = Duration::from_secs(opened.heartbeat as u64);
    // As RabbitMQ: a heartbeat every half interval while we have nothing else to send.
    let writer = tokio::spawn(out.clone().run_writer(w, heartbeat / 2));
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
            committer: broker.storage.committer.clone(),
        },
        channels: HashMap::new(),
        channel_max: opened.channel_max,
        closing: false,
        reg: registration.entry.clone(),
        chan_stats: Vec::new(),
    };
    let reason = conn.run(&mut r, buf, heartbeat, &mut shutdown).await;
    tracing::info!(%peer, connection = id, reason, "connection closed");
    conn.cleanup();
    out.close();
    let _ = writer.await;
    registration.socket_closing();
    drop(registration);
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

/// Reads and discards for up to `limit`, until EOF or until `done` says what was read is
/// enough.
async fn drain_for<R: AsyncRead + Unpin>(r: &mut R, limit: Duration, done: impl Fn(&[u8]) -> bool) {
    let _ = tokio::time::timeout(limit, async {
        let mut seen = Vec::new();
        let mut scratch = [0u8; 1024];
        while let Ok(n) = r.read(&mut scratch).await {
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&scratch[..n]);
            if done(&seen) {
                return;
            }
            if seen.len() > 64 << 10 {
                seen.drain(..seen.len() - 64);
            }
        }
    })
    .await;
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

/// Formats bytes as Erlang prints a binary in RabbitMQ's error texts: `<<"abc">>` when
/// every octet is printable, `<<1,2,3>>` otherwise, `<<>>` when empty.
pub(crate) fn erlang_binary(b: &[u8]) -> String {
    if b.is_empty() {
        return "<<>>".into();
    }
    if b.iter().all(|&c| (32..=126).contains(&c)) {
        let mut s = String::from("<<\"");
        for &c in b {
            if c == b'"' || c == b'\\' {
                s.push('\\');
            }
            s.push(c as char);
        }
        s.push_str("\">>");
        return s;
    }
    let parts: Vec<String> = b.iter().map(|c| c.to_string()).collect();
    format!("<<{}>>", parts.join(","))
}

/// Whether the next buffered frame is part of a publish (a basic.publish method, a content
/// header or a body): RabbitMQ holds those back while a resource alarm is raised.
fn next_frame_publishes(buf: &[u8]) -> bool {
    match buf.first() {
        Some(2) | Some(3) => true,
        Some(1) => buf.len() >= 11 && buf[7..11] == [0, 60, 0, 40],
        _ => false,
    }
}

/// The reader's buffer: room for a few frames of the default `frame_max` per read.
const READ_BUF: usize = 64 << 10;

/// Whether `buf` starts with a frame header whose frame it does not hold whole.
fn partial_frame(buf: &[u8]) -> bool {
    buf.len() >= 7 && buf.len() < 8 + u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize
}

impl Connection {
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        mut buf: BytesMut,
        heartbeat: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> &'static str {
        // Dead-peer detection: RabbitMQ drops a client silent for two to three heartbeat
        // intervals.
        let idle_limit = if heartbeat.is_zero() {
            None
        } else {
            Some(heartbeat * 2)
        };
        let mut alarms = self.ctx.broker.alarms.subscribe();
        let mut synced = self.ctx.committer.subscribe();
        let forced = self.reg.clone();
        let mut close_deadline: Option<tokio::time::Instant> = None;
        // Deliveries left unacknowledged too long are looked for once a second (RabbitMQ
        // does it on its channel tick, once a minute by default).
        let mut timeout_check = tokio::time::interval(CONSUMER_TIMEOUT_CHECK);
        timeout_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // After a frame error that desynchronised the stream, nothing more is parsed.
        let mut desynced = false;
        // A deadline, not a fresh sleep per select: the other arms (timeout checks,
        // confirms) wake this loop without the peer having said anything.
        let mut idle_deadline = idle_limit.map(|d| tokio::time::Instant::now() + d);
        loop {
            let outcome = {
                // Deliveries this batch makes to other connections wake their writers once,
                // when the batch ends, instead of once per message.
                let _wakes = WakeBatch::begin();
                let alarm = *alarms.borrow();
                self.process_buffered(&mut buf, alarm, &mut desynced, &mut close_deadline)
            };
            match outcome {
                Batch::Done => {}
                Batch::Stop(why) => return why,
                Batch::ClosedByClient => {
                    self.linger(r, &mut buf).await;
                    return "closed by client";
                }
                Batch::Blocked => {
                    if !self.block_until_clear(&mut alarms, shutdown).await {
                        return "shutdown while blocked";
                    }
                    continue;
                }
                Batch::WaitSync => {
                    if !self.finish_commit(shutdown).await {
                        return "shutdown while committing";
                    }
                    continue;
                }
            }

            if buf.is_empty() && buf.capacity() < READ_BUF - 4096 {
                // Back to the start of an allocation once a page of this one is used up:
                // each read would otherwise land further into it until every page of it
                // was resident, 64 KiB for each of thousands of mostly idle connections.
                buf = BytesMut::new();
            }
            // A frame begun but not whole already has room for all of it (`decode_frame`
            // reserved it): growing the buffer further would make a large message's body,
            // a slice of it, pin twice its size while it sits in a queue.
            if buf.capacity() - buf.len() < 4096 && !partial_frame(&buf) {
                buf.reserve(READ_BUF);
            }

            let waiting = self.waiting_sync();
            let read = r.read_buf(&mut buf);
            let res = tokio::select! {
                res = read => res,
                // An fsync round completed: confirms waiting for it can go out.
                _ = synced.changed(), if waiting => {
                    self.flush_confirms();
                    self.ctx.out.schedule();
                    continue;
                }
                _ = shutdown.changed() => {
                    self.fail(AmqpError::connection(
                        reply::CONNECTION_FORCED,
                        "broker forced connection closure with reason 'shutdown'",
                    ));
                    return "broker shutdown";
                }
                // The management API closes us: connection.close, then wait for close-ok.
                why = forced.close_requested(), if !self.closing => {
                    tracing::info!(connection = self.ctx.id, reason = %why, "closing connection on request");
                    self.fail(AmqpError::connection(reply::CONNECTION_FORCED, why));
                    close_deadline = Some(tokio::time::Instant::now() + CLOSE_OK_TIMEOUT);
                    self.ctx.out.schedule();
                    continue;
                }
                _ = sleep_until_opt(close_deadline) => return "close-ok timeout",
                _ = timeout_check.tick(), if !self.closing => {
                    self.check_consumer_timeouts();
                    continue;
                }
                _ = sleep_until_opt(idle_deadline) => {
                    tracing::warn!(connection = self.ctx.id, "missed heartbeats from client, timeout: {}s", heartbeat.as_secs());
                    return "heartbeat timeout";
                }
            };
            match res {
                Ok(0) | Err(_) => return "client closed the socket",
                Ok(_) => {
                    if let Some(d) = idle_limit {
                        idle_deadline = Some(tokio::time::Instant::now() + d);
                    }
                }
            }
        }
    }

    /// Handles every complete frame in `buf` (without awaiting), then flushes confirms
    /// and schedules the writer.
    fn process_buffered(
        &mut self,
        buf: &mut BytesMut,
        alarm: bool,
        desynced: &mut bool,
        close_deadline: &mut Option<tokio::time::Instant>,
    ) -> Batch {
        let mut outcome = Batch::Done;
        while !*desynced {
            if !self.closing && alarm && next_frame_publishes(buf) {
                outcome = Batch::Blocked;
                break;
            }
            let frame = match decode_frame(buf, self.ctx.frame_max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    if self.closing {
                        return Batch::Stop("frame error while closing");
                    }
                    *desynced = matches!(
                        e,
                        CodecError::BadFrameEnd { .. } | CodecError::FrameTooLarge { .. }
                    );
                    self.fail(frame_error(&e));
                    *close_deadline = Some(tokio::time::Instant::now() + CLOSE_OK_TIMEOUT);
                    continue;
                }
            };
            match self.handle_frame(frame) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => {
                    self.flush_confirms();
                    return Batch::Stop("closed");
                }
                Ok(Flow::ClosedByClient) => {
                    self.ctx.out.schedule();
                    return Batch::ClosedByClient;
                }
                Ok(Flow::WaitSync) => {
                    outcome = Batch::WaitSync;
                    break;
                }
                Err(e) => {
                    if self.on_error(e) {
                        *close_deadline = Some(tokio::time::Instant::now() + CLOSE_OK_TIMEOUT);
                    }
                }
            }
        }
        if *desynced {
            buf.clear();
        }
        self.flush_confirms();
        self.ctx.out.schedule();
        outcome
    }

    /// After close-ok, leaves closing the socket to the client (as RabbitMQ does), reading
    /// and ignoring whatever it still sends, for at most `CLOSING_TIMEOUT`.
    async fn linger<R: AsyncRead + Unpin>(&mut self, r: &mut R, buf: &mut BytesMut) {
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
        tracing::info!(
            connection = self.ctx.id,
            "connection blocked by resource alarm"
        );
        loop {
            if !*alarms.borrow_and_update() {
                break;
            }
            tokio::select! {
                r = alarms.changed() => if r.is_err() { return false },
                _ = shutdown.changed() => return false,
                why = self.reg.close_requested() => {
                    self.fail(AmqpError::connection(reply::CONNECTION_FORCED, why));
                    self.ctx.out.schedule();
                    return false;
                }
            }
        }
        if notify {
            self.ctx.out.send(0, &ConnectionUnblocked {}.into());
        }
        tracing::info!(connection = self.ctx.id, "connection unblocked");
        true
    }

    fn handle_frame(&mut self, f: Frame) -> Result<Flow, AmqpError> {
        let wrong_channel = |f: &Frame| {
            AmqpError::connection(
                reply::UNEXPECTED_FRAME,
                format!(
                    "type {}, all octets = {}",
                    f.frame_type as u8,
                    erlang_binary(&f.payload)
                ),
            )
        };
        match (f.frame_type, f.channel) {
            (FrameType::Heartbeat, 0) => Ok(Flow::Continue),
            (FrameType::Heartbeat, _) => Err(wrong_channel(&f)),
            (FrameType::Header | FrameType::Body, 0) => Err(wrong_channel(&f)),
            (FrameType::Method, 0) => {
                let m = decode_method(&f)?;
                self.connection_method(m)
            }
            (FrameType::Method, ch) => {
                if self.closing {
                    return Ok(Flow::Continue);
                }
                let m = decode_method(&f)?;
                self.channel_method(ch, m)
            }
            (FrameType::Header | FrameType::Body, id) => {
                if self.closing {
                    return Ok(Flow::Continue);
                }
                let Some(ch) = self.channels.get_mut(&id) else {
                    return Err(AmqpError::connection(
                        reply::UNEXPECTED_FRAME,
                        "expected method frame, got non method frame instead",
                    ));
                };
                if ch.closing {
                    return Ok(Flow::Continue);
                }
                ch.content_frame(&self.ctx, f)?;
                Ok(Flow::Continue)
            }
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
            Method::ConnectionCloseOk(_) if self.closing => Ok(Flow::Stop),
            _ if self.closing => Ok(Flow::Continue),
            Method::ConnectionUpdateSecret(_) => {
                // The internal user database has nothing to refresh: RabbitMQ answers ok
                // and keeps the connection's credentials.
                self.ctx.out.send(0, &ConnectionUpdateSecretOk {}.into());
                Ok(Flow::Continue)
            }
            other => Err(AmqpError::Connection(
                BrokerError::new(
                    reply::CHANNEL_ERROR,
                    "unexpected method in connection state running",
                ),
                other.class_id(),
                other.method_id(),
            )),
        }
    }

    fn channel_method(&mut self, id: u16, m: Method) -> Result<Flow, AmqpError> {
        let ids = (m.class_id(), m.method_id());
        let err = |code: u16, text: &str| {
            Err(AmqpError::Connection(
                BrokerError::new(code, text),
                ids.0,
                ids.1,
            ))
        };
        if ids.0 == 10 {
            return err(reply::COMMAND_INVALID, "unimplemented method");
        }
        let state = self.channels.get(&id).map(|c| c.closing);
        match (m, state) {
            (Method::ChannelOpen(_), Some(_)) => {
                err(reply::CHANNEL_ERROR, "second 'channel.open' seen")
            }
            (Method::ChannelOpen(_), None) => {
                if self.channels.len() >= self.channel_max as usize {
                    return Err(AmqpError::connection(
                        reply::NOT_ALLOWED,
                        format!(
                            "number of channels opened ({}) has reached the negotiated channel_max ({})",
                            self.channels.len(),
                            self.channel_max
                        ),
                    ));
                }
                if let Some(e) = self.ctx.broker.channel_refusal(&self.ctx.user.name) {
                    return Err(AmqpError::Connection(e, ids.0, ids.1));
                }
                let ch = Channel::new(id, &self.ctx);
                self.track_channel(id, Some(ch.shared.clone()));
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
            (_, None) => err(reply::CHANNEL_ERROR, "expected 'channel.open'"),
            // We closed the channel and wait for close-ok; a crossing close gets its
            // close-ok, everything else is dropped.
            (Method::ChannelCloseOk(_), Some(true)) => {
                self.channels.remove(&id);
                self.track_channel(id, None);
                Ok(Flow::Continue)
            }
            (Method::ChannelClose(_), Some(true)) => {
                self.ctx.out.send(id, &ChannelCloseOk {}.into());
                Ok(Flow::Continue)
            }
            (_, Some(true)) => Ok(Flow::Continue),
            (Method::ChannelClose(_), Some(false)) => {
                if let Some(mut ch) = self.channels.remove(&id) {
                    ch.close(&self.ctx);
                }
                self.track_channel(id, None);
                self.ctx.out.send(id, &ChannelCloseOk {}.into());
                Ok(Flow::Continue)
            }
            (Method::ChannelCloseOk(_) | Method::ChannelFlowOk(_), Some(false)) => {
                err(reply::COMMAND_INVALID, "unimplemented method")
            }
            (m, Some(false)) => {
                let ch = self.channels.get_mut(&id).expect("state says open");
                if !ch.content.is_idle() {
                    // A method cut into a publish's content: reported against the publish.
                    return Err(AmqpError::Connection(
                        BrokerError::new(reply::UNEXPECTED_FRAME, ch.content.expected_text()),
                        60,
                        40,
                    ));
                }
                let stat = self.chan_stats.get(id as usize).and_then(Option::as_ref);
                if let (Method::BasicPublish(_), Some(st)) = (&m, stat) {
                    st.count_publish();
                }
                // Methods that change what the management API shows of a channel.
                let mode_change = matches!(
                    m,
                    Method::BasicQos(_) | Method::ConfirmSelect(_) | Method::TxSelect(_)
                );
                let r = ch.method(&self.ctx, m);
                if mode_change {
                    if let Some(st) = stat {
                        st.prefetch.store(
                            ch.consumer_prefetch as u32,
                            std::sync::atomic::Ordering::Relaxed,
                        );
                        st.confirm
                            .store(ch.confirm.is_some(), std::sync::atomic::Ordering::Relaxed);
                        st.transactional
                            .store(ch.tx.is_some(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
                r.map_err(|e| AmqpError::from_method(id, e, ids))?;
                if ch.commit_waiting.is_some() {
                    return Ok(Flow::WaitSync);
                }
                Ok(Flow::Continue)
            }
        }
    }

    /// Registers a channel that opened (`probe` given) or forgets one that closed.
    fn track_channel(&mut self, id: u16, probe: Option<Arc<ChannelShared>>) {
        let i = id as usize;
        match probe {
            Some(p) => {
                let entry = self.reg.add_channel(id, Some(p as Arc<dyn ChannelProbe>));
                if self.chan_stats.len() <= i {
                    self.chan_stats.resize(i + 1, None);
                }
                self.chan_stats[i] = Some(entry);
            }
            None => {
                self.reg.remove_channel(id);
                if let Some(slot) = self.chan_stats.get_mut(i) {
                    *slot = None;
                }
            }
        }
    }

    fn untrack_all_channels(&mut self) {
        self.reg.clear_channels();
        self.chan_stats.clear();
    }

    /// Sends every publisher confirm that can go out now.
    fn flush_confirms(&mut self) {
        let done = self.ctx.committer.done();
        for ch in self.channels.values_mut() {
            if ch.confirm.as_ref().is_some_and(|c| c.ready(done)) {
                ch.flush_confirms(&self.ctx, done);
            }
        }
    }

    /// Whether a confirm or a commit-ok waits for an fsync.
    fn waiting_sync(&self) -> bool {
        self.channels
            .values()
            .any(|c| c.confirm.as_ref().is_some_and(|c| c.waiting()))
    }

    /// Waits for a tx.commit's persistent messages to reach the disk, then answers it.
    async fn finish_commit(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let waiting: Vec<(u16, u64)> = self
            .channels
            .values()
            .filter_map(|c| c.commit_waiting.map(|e| (c.id, e)))
            .collect();
        let mut done = self.ctx.committer.subscribe();
        for (id, epoch) in waiting {
            while *done.borrow_and_update() < epoch {
                tokio::select! {
                    r = done.changed() => if r.is_err() { return false },
                    _ = shutdown.changed() => return false,
                }
            }
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.commit_waiting = None;
                self.ctx.out.send(id, &TxCommitOk {}.into());
            }
        }
        true
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

    /// Closes every channel holding a delivery unacknowledged past its timeout, with
    /// RabbitMQ's error (its unacked messages are requeued by the close).
    fn check_consumer_timeouts(&mut self) {
        let default_ms = self.ctx.cfg.consumer_timeout.map(|d| d.as_millis() as u64);
        let now = warren_core::scheduler::coarse_monotonic_ms();
        let mut expired = Vec::new();
        for (id, ch) in &self.channels {
            if ch.closing {
                continue;
            }
            if let Some(limit) = ch.shared.state.lock().timed_out(now, default_ms) {
                expired.push((*id, limit));
            }
        }
        for (id, limit) in expired {
            let err = BrokerError::precondition_failed(format!(
                "delivery acknowledgement on channel {id} timed out. Timeout value used: {limit} ms. \
                 This timeout value can be configured, see consumers doc guide to learn more"
            ));
            self.on_error(AmqpError::Channel(id, err, 0, 0));
        }
        self.ctx.out.schedule();
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
        self.untrack_all_channels();
        self.ctx
            .out
            .send(0, &close_method(&err, class_id, method_id));
    }

    /// Releases everything the connection holds: consumers, unacked messages (requeued),
    /// exclusive queues.
    fn cleanup(&mut self) {
        for (_, mut ch) in self.channels.drain() {
            ch.close(&self.ctx);
        }
        self.untrack_all_channels();
        self.ctx.vhost.connection_closed(self.ctx.id);
    }
}

fn decode_method(f: &Frame) -> Result<Method, AmqpError> {
    let p = &f.payload;
    if p.len() < 4 {
        return Err(AmqpError::connection(
            reply::FRAME_ERROR,
            format!("type 1, all octets = {}: unknown_frame", erlang_binary(p)),
        ));
    }
    let class_id = u16::from_be_bytes([p[0], p[1]]);
    let method_id = u16::from_be_bytes([p[2], p[3]]);
    Method::decode(p).map_err(|e| match e {
        // RabbitMQ's reader crashes on these and drops the socket; we say why first.
        CodecError::UnknownMethod { .. } => AmqpError::Connection(
            BrokerError::not_implemented(format!(
                "unknown method: class {class_id}, method {method_id}"
            )),
            class_id,
            method_id,
        ),
        _ => AmqpError::Connection(
            BrokerError::new(
                reply::FRAME_ERROR,
                format!("cannot decode {}", erlang_binary(&p[4..])),
            ),
            class_id,
            method_id,
        ),
    })
}

/// RabbitMQ's texts for frames that cannot be read at all.
fn frame_error(e: &CodecError) -> AmqpError {
    let text = match e {
        CodecError::FrameTooLarge {
            frame_type,
            size,
            max,
        } => format!(
            "type {frame_type}, all octets = <<>>: {{frame_too_large,{size},{}}}",
            max.saturating_sub(8)
        ),
        CodecError::BadFrameEnd {
            frame_type,
            payload,
            end,
        } => format!(
            "type {frame_type}, all octets = {}: {{invalid_frame_end_marker,{end}}}",
            erlang_binary(payload)
        ),
        CodecError::UnknownFrame {
            frame_type,
            payload,
        } => format!(
            "type {frame_type}, all octets = {}: unknown_frame",
            erlang_binary(payload)
        ),
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
