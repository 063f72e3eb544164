//! CONNECT and STOMP frames: version negotiation, credentials (defaults for a frame
//! without `login`), the `host` header as the vhost, heart-beats, CONNECTED.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::RngCore;
use warren_core::auth::AuthFailure;
use warren_core::registry::{ChannelProbe, ConnectionInfo};
use warren_stomp_codec::{negotiate_version, Command, Frame, HeartBeat, Version};
use warren_websocket::{Outbound, SocketMeta};

use crate::connection::{write_frame, Conn};
use crate::delivery::{error_frame, Sink, SinkState};
use crate::listener::Shared;
use crate::send::Receipts;

/// RabbitMQ's session ids: `session-` and 16 random bytes, base64url.
fn session_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let mut s = String::from("session-");
    let (mut acc, mut bits) = (0u32, 0);
    for b in raw {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            s.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    s.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    s
}

/// Handles CONNECT. `Err(())`: refused, the ERROR frame is written, and (as in RabbitMQ)
/// the connection stays open for another CONNECT.
pub(crate) fn connect(
    shared: &Arc<Shared>,
    mut f: Frame,
    meta: SocketMeta,
    out: Arc<Outbound>,
    websocket: bool,
) -> Result<Conn, ()> {
    let peer = meta.peer;
    let refuse = |message: &str, detail: &str| {
        tracing::warn!(%peer, message, detail, "STOMP login refused");
        write_frame(&out, Version::V1_0, &error_frame(message, detail, &[]));
        Err(())
    };
    let Some(version) = negotiate_version(
        f.header("accept-version").map(|v| v.as_ref()),
        &Version::ALL,
    ) else {
        return refuse("Version mismatch", "Supported versions are 1.0,1.1,1.2\n");
    };
    if version == Version::V1_0 {
        f.trim_value_leading_spaces();
    }
    let cfg = &shared.cfg;
    let text = |name: &str| {
        f.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    // RabbitMQ's `creds/3`: the `login` header, else the client certificate's name
    // (`ssl_cert_login`, no passcode), else the default user.
    let cert_login = meta
        .tls
        .as_ref()
        .and_then(|t| t.common_name.clone())
        .filter(|_| cfg.ssl_cert_login);
    let (login, passcode) = match (text("login"), cert_login) {
        (Some(l), _) => (
            l,
            Some(text("passcode").unwrap_or_else(|| cfg.default_pass.clone())),
        ),
        (None, Some(cn)) => (cn, None),
        (None, None) => (
            cfg.default_user.clone(),
            Some(text("passcode").unwrap_or_else(|| cfg.default_pass.clone())),
        ),
    };
    let vhost_name = text("host").unwrap_or_else(|| cfg.default_vhost.clone());
    let heart_beat = match f.header("heart-beat").map(|v| HeartBeat::parse(v)) {
        None => HeartBeat::NONE,
        Some(Ok(h)) => h,
        Some(Err(e)) => return refuse("Bad CONNECT", &e.to_string()),
    };
    let broker = &shared.broker;
    let from_loopback = peer.ip().is_loopback();
    let outcome = match &passcode {
        Some(p) => broker.users.authenticate(&login, p, from_loopback),
        // The TLS layer verified the certificate: the name alone logs in.
        None => broker
            .users
            .authenticate_external(&login, from_loopback)
            .map_err(|(f, _)| f),
    };
    let user = match outcome {
        Ok(u) => u,
        Err(AuthFailure::Refused) => {
            return refuse(
                "Bad CONNECT",
                &format!("Access refused for user '{login}'\n"),
            )
        }
        Err(AuthFailure::LoopbackOnly) => {
            return refuse("Bad CONNECT", "non-loopback access denied")
        }
    };
    let vhost = match broker.vhost(&vhost_name) {
        Some(v) if broker.users.permission(&user.name, &vhost_name).is_some() => v,
        _ => {
            return refuse(
                "Bad CONNECT",
                &format!("Virtual host '{vhost_name}' access denied"),
            )
        }
    };
    // Past a connection limit RabbitMQ 3.10 answers as for a vhost without access (the
    // log says which limit).
    if let Some(e) = broker.connection_refusal(&user.name, &vhost_name) {
        tracing::warn!(%peer, "STOMP connection refused: {}", e.message);
        return refuse(
            "Bad CONNECT",
            &format!("Virtual host '{vhost_name}' access denied"),
        );
    }
    let reply = HeartBeat::rabbitmq_reply(heart_beat);
    let ms = |n: u64| (n != 0).then(|| Duration::from_millis(n));
    let session_id = session_id();
    let sink = Arc::new(Sink {
        out: out.clone(),
        version,
        session_id: session_id.clone(),
        state: Mutex::new(SinkState::default()),
        wake: tokio::sync::Notify::new(),
    });
    let id = broker.next_connection_id();
    // The management registry, with what RabbitMQ shows of a STOMP connection: one
    // channel, no frame_max, the heart-beat the client asked for (whole seconds).
    let registration = broker.registry().register(ConnectionInfo {
        id,
        protocol: format!(
            "{}STOMP {}",
            if websocket { "Web " } else { "" },
            version.as_str()
        ),
        peer,
        local: meta.local,
        user: user.name.clone(),
        vhost: vhost.name.clone(),
        auth_mechanism: if passcode.is_none() {
            "EXTERNAL"
        } else {
            "PLAIN"
        }
        .into(),
        client_properties: serde_json::json!({"product": "STOMP client"}),
        frame_max: 0,
        channel_max: 1,
        heartbeat: u16::try_from(reply.receive_ms / 1000).unwrap_or(u16::MAX),
        fd: meta.fd,
        tls: meta.tls_info(),
    });
    let entry = registration.entry.clone();
    let channel = entry.add_channel(1, Some(sink.clone() as Arc<dyn ChannelProbe>));
    let conn = Conn {
        shared: shared.clone(),
        peer,
        out,
        id,
        version,
        access: broker.access(&user.name, &vhost.name),
        vhost,
        user: user.name.clone(),
        registration: Some(registration),
        entry,
        channel,
        sink,
        subs: HashMap::new(),
        prefetch: 0,
        transactions: HashMap::new(),
        reply_queues: HashMap::new(),
        declared: HashSet::new(),
        receipts: Receipts::default(),
        tx_receipts: Vec::new(),
        route_buf: Vec::new(),
        receive_every: ms(reply.receive_ms),
        send_every: ms(reply.send_ms),
    };
    let connected = Frame::new(Command::Connected)
        .with_header("server", format!("Warren/{}", env!("CARGO_PKG_VERSION")))
        .with_header("session", session_id)
        .with_header("heart-beat", reply.to_header_value())
        .with_header("version", version.as_str());
    conn.send_frame(&connected);
    tracing::info!(%peer, connection = conn.id, user = %conn.user, vhost = %conn.vhost.name, version = version.as_str(), "STOMP connection opened");
    Ok(conn)
}
