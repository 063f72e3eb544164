//! Connection opening: protocol header, `connection.start` / `start-ok` (SASL PLAIN and
//! AMQPLAIN), `tune` / `tune-ok` negotiation and `open` / `open-ok`, with RabbitMQ's
//! refusals.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warren_amqp_codec::frame::{decode_frame, write_method, FrameType};
use warren_amqp_codec::methods::*;
use warren_amqp_codec::{FieldTable, FieldValue, Method, FRAME_MIN_SIZE, PROTOCOL_HEADER};
use warren_core::auth::{AuthFailure, User};
use warren_core::{Broker, BrokerError, VHost};

use crate::AmqpConfig;

/// What the client and server agreed on.
pub struct Opened {
    pub user: User,
    /// The SASL mechanism the client logged in with (`PLAIN`, `AMQPLAIN`).
    pub mechanism: String,
    pub vhost: Arc<VHost>,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    pub client_properties: FieldTable,
    pub capabilities: ClientCapabilities,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ClientCapabilities {
    pub consumer_cancel_notify: bool,
    pub connection_blocked: bool,
    pub authentication_failure_close: bool,
}

impl ClientCapabilities {
    fn from_properties(p: &FieldTable) -> ClientCapabilities {
        let caps = match p.get("capabilities") {
            Some(FieldValue::Table(t)) => t.clone(),
            _ => FieldTable::new(),
        };
        let on = |k: &str| caps.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        ClientCapabilities {
            consumer_cancel_notify: on("consumer_cancel_notify"),
            connection_blocked: on("connection.blocked"),
            authentication_failure_close: on("authentication_failure_close"),
        }
    }
}

/// Why the handshake ended without an open connection.
pub enum HandshakeEnd {
    /// The socket is done with (already answered or closed).
    Closed,
    /// Refuse without a word, as RabbitMQ does for most handshake failures: the socket
    /// is closed after a delay.
    Silent(String),
    /// A protocol error: send `connection.close` with this and wait for close-ok.
    Error(BrokerError, u16, u16),
}

impl From<std::io::Error> for HandshakeEnd {
    fn from(_: std::io::Error) -> Self {
        HandshakeEnd::Closed
    }
}

pub fn server_properties(cfg: &AmqpConfig) -> FieldTable {
    let mut caps = FieldTable::new();
    for c in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        caps.insert(c, FieldValue::Bool(true));
    }
    let mut p = FieldTable::new();
    p.insert("capabilities", FieldValue::Table(caps));
    p.insert("cluster_name", cfg.cluster_name.as_str().into());
    p.insert(
        "copyright",
        "Copyright (c) the Warren developers. A RabbitMQ-compatible broker.".into(),
    );
    p.insert(
        "information",
        "Warren, a RabbitMQ-compatible broker written in Rust. Licensed under the Apache 2.0 license.".into(),
    );
    p.insert("platform", "Rust".into());
    p.insert("product", cfg.product.as_str().into());
    p.insert("version", cfg.version.as_str().into());
    p.insert("warren_version", env!("CARGO_PKG_VERSION").into());
    p
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, m: Method) -> std::io::Result<()> {
    let mut b = BytesMut::new();
    write_method(&mut b, 0, &m);
    w.write_all(&b).await
}

/// Reads the next frame during the handshake, skipping heartbeats.
async fn read_method<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    frame_max: u32,
) -> Result<Method, HandshakeEnd> {
    loop {
        match decode_frame(buf, frame_max) {
            Ok(Some(f)) => {
                if f.frame_type == FrameType::Heartbeat {
                    continue;
                }
                if f.frame_type != FrameType::Method || f.channel != 0 {
                    return Err(HandshakeEnd::Silent(format!(
                        "unexpected frame of type {} on channel {} during handshake",
                        f.frame_type as u8, f.channel
                    )));
                }
                return Method::decode(&f.payload).map_err(|e| {
                    HandshakeEnd::Silent(format!("cannot decode method during handshake: {e}"))
                });
            }
            Ok(None) => {
                if r.read_buf(buf).await? == 0 {
                    return Err(HandshakeEnd::Closed);
                }
            }
            Err(e) => {
                return Err(HandshakeEnd::Silent(format!(
                    "frame error during handshake: {e}"
                )))
            }
        }
    }
}

fn unexpected(m: &Method, expected: &str) -> HandshakeEnd {
    HandshakeEnd::Silent(format!("expected '{expected}', got '{}'", m.name()))
}

/// Decodes SASL credentials; None for a malformed response.
fn credentials(mechanism: &str, response: &Bytes) -> Option<(String, String)> {
    match mechanism {
        "PLAIN" => {
            let mut parts = response.split(|&b| b == 0);
            let _authzid = parts.next()?;
            let user = parts.next()?;
            let pass = parts.next()?;
            Some((
                String::from_utf8(user.to_vec()).ok()?,
                String::from_utf8(pass.to_vec()).ok()?,
            ))
        }
        "AMQPLAIN" => {
            let t = FieldTable::decode(response).ok()?;
            let user = t.get("LOGIN")?.as_str()?.to_string();
            let pass = t.get("PASSWORD")?.as_str()?.to_string();
            Some((user, pass))
        }
        _ => None,
    }
}

fn negotiate(field: &str, client: u32, server: u32, min: u32) -> Result<u32, BrokerError> {
    let fail = |dir: &str, bound: &str, limit: u32| {
        BrokerError::not_allowed(format!(
            "negotiated {field} = {client} is {dir} than the {bound} allowed value ({limit})"
        ))
    };
    if client != 0 && client < min {
        return Err(fail("lower", "minimum", min));
    }
    if server != 0 && (client == 0 || client > server) {
        return Err(fail("higher", "maximum", server));
    }
    Ok(if client == 0 { server } else { client })
}

/// Runs the handshake up to `connection.open-ok`.
///
/// `peer_cn`: the common name of the client's verified TLS certificate, if any; it
/// makes SASL `EXTERNAL` available, which logs in as the user of that name.
pub async fn handshake<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut R,
    w: &mut W,
    buf: &mut BytesMut,
    broker: &Broker,
    cfg: &AmqpConfig,
    peer: SocketAddr,
    peer_cn: Option<&str>,
) -> Result<Opened, HandshakeEnd> {
    while buf.len() < 8 {
        if r.read_buf(buf).await? == 0 {
            return Err(HandshakeEnd::Closed);
        }
    }
    if &buf[..8] != PROTOCOL_HEADER {
        w.write_all(PROTOCOL_HEADER).await?;
        let _ = w.shutdown().await;
        return Err(HandshakeEnd::Closed);
    }
    let _ = buf.split_to(8);

    send(
        w,
        ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: server_properties(cfg),
            mechanisms: if peer_cn.is_some() {
                Bytes::from_static(b"PLAIN AMQPLAIN EXTERNAL")
            } else {
                Bytes::from_static(b"PLAIN AMQPLAIN")
            },
            locales: Bytes::from_static(b"en_US"),
        }
        .into(),
    )
    .await?;

    let start_ok = match read_method(r, buf, FRAME_MIN_SIZE).await? {
        Method::ConnectionStartOk(m) => m,
        other => return Err(unexpected(&other, "connection.start_ok")),
    };
    let capabilities = ClientCapabilities::from_properties(&start_ok.client_properties);
    let mechanism = start_ok.mechanism.as_str();
    let external = mechanism == "EXTERNAL" && peer_cn.is_some();
    if mechanism != "PLAIN" && mechanism != "AMQPLAIN" && !external {
        return Err(HandshakeEnd::Silent(format!(
            "unknown authentication mechanism '{mechanism}'"
        )));
    }
    let refused = |text: String| {
        if capabilities.authentication_failure_close {
            HandshakeEnd::Error(BrokerError::access_refused(text), 0, 0)
        } else {
            HandshakeEnd::Silent(text)
        }
    };
    let from_loopback = peer.ip().is_loopback();
    let outcome = if let (true, Some(cn)) = (external, peer_cn) {
        // The certificate, verified against the CA, is the credential: its common
        // name must be a user.
        broker.users.authenticate_external(cn, from_loopback)
    } else {
        let Some((username, password)) = credentials(mechanism, &start_ok.response) else {
            // RabbitMQ drops these without a word, capability or not.
            return Err(HandshakeEnd::Silent(format!(
                "malformed {mechanism} response"
            )));
        };
        broker
            .users
            .authenticate(&username, &password, from_loopback)
            .map_err(|e| (e, username))
    };
    let user = match outcome {
        Ok(u) => u,
        Err((AuthFailure::Refused, username)) => {
            tracing::warn!(%peer, "{mechanism} login refused: user '{username}' - invalid credentials");
            return Err(refused(format!(
                "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
            )));
        }
        Err((AuthFailure::LoopbackOnly, username)) => {
            tracing::warn!(%peer, "{mechanism} login refused: user '{username}' can only connect via localhost");
            return Err(refused(format!(
                "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
            )));
        }
    };

    send(
        w,
        ConnectionTune {
            channel_max: cfg.channel_max,
            frame_max: cfg.frame_max,
            heartbeat: cfg.heartbeat,
        }
        .into(),
    )
    .await?;
    let tune_ok = match read_method(r, buf, FRAME_MIN_SIZE).await? {
        Method::ConnectionTuneOk(m) => m,
        other => return Err(unexpected(&other, "connection.tune_ok")),
    };
    // RabbitMQ refuses out-of-range tune-ok values by closing without a frame.
    let err = |e: BrokerError| HandshakeEnd::Silent(e.message);
    let frame_max = negotiate(
        "frame_max",
        tune_ok.frame_max,
        cfg.frame_max,
        FRAME_MIN_SIZE,
    )
    .map_err(err)?;
    let channel_max = negotiate(
        "channel_max",
        tune_ok.channel_max as u32,
        cfg.channel_max as u32,
        0,
    )
    .map_err(err)? as u16;
    let heartbeat = tune_ok.heartbeat;

    let open = match read_method(r, buf, frame_max).await? {
        Method::ConnectionOpen(m) => m,
        other => return Err(unexpected(&other, "connection.open")),
    };
    let vhost_name = open.virtual_host.as_str();
    let Some(vhost) = broker.vhost(vhost_name) else {
        return Err(HandshakeEnd::Error(
            BrokerError::not_allowed(format!("vhost {vhost_name} not found")),
            10,
            40,
        ));
    };
    if broker.users.permission(&user.name, vhost_name).is_none() {
        return Err(HandshakeEnd::Error(
            BrokerError::not_allowed(format!(
                "access to vhost '{vhost_name}' refused for user '{}'",
                user.name
            )),
            10,
            40,
        ));
    }
    if let Some(e) = broker.connection_refusal(&user.name, vhost_name) {
        return Err(HandshakeEnd::Error(e, 10, 40));
    }
    send(
        w,
        ConnectionOpenOk {
            reserved_1: Default::default(),
        }
        .into(),
    )
    .await?;
    Ok(Opened {
        user,
        mechanism: start_ok.mechanism.as_str().to_string(),
        vhost,
        frame_max,
        channel_max,
        heartbeat,
        client_properties: start_ok.client_properties,
        capabilities,
    })
}
