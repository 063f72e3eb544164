//! CONNECT: protocol checks, credentials (RabbitMQ's `vhost:user` username form, its
//! anonymous default user), vhost access, takeover of a client id in use, and the
//! session: resumed from its queue's bindings, or started afresh.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;
use warren_core::access::{Access, Kind, Perm};
use warren_core::auth::AuthFailure;
use warren_core::registry::{ChannelProbe, ConnectionInfo};
use warren_core::vhost::QueueDeclare;
use warren_core::{Consumer, Credit, VHost};
use warren_mqtt_codec::{
    ByteStr, ConnAck, Connect, Packet, Properties, ProtocolVersion, QoS, ReasonCode,
};
use warren_websocket::{Outbound, SocketMeta};

use crate::connection::{send, Conn};
use crate::delivery::{Session, Sub};
use crate::listener::Mqtt;
use crate::publish::PubAcks;
use crate::sessions::Live;

/// A will message, kept from CONNECT until the connection ends.
#[derive(Clone)]
pub struct WillMsg {
    pub vhost: Arc<VHost>,
    /// The permissions of the connection's user (a will is checked as a PUBLISH).
    pub access: Arc<Access>,
    pub client_id: String,
    pub topic: ByteStr,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: Properties,
    pub version: ProtocolVersion,
    /// MQTT 5 Will Delay Interval, seconds.
    pub delay: u32,
}

/// The queue holding a session's messages (RabbitMQ's name for its QoS 1 queue).
pub fn queue_name(client_id: &str) -> String {
    format!("mqtt-subscription-{client_id}qos1")
}

/// RabbitMQ's generated client ids: 16 random bytes, base64url.
fn generated_client_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let mut s = String::with_capacity(22);
    let mut acc = 0u32;
    let mut bits = 0;
    for b in raw {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            s.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        s.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    s
}

/// Splits `vhost:user` at the last colon, as RabbitMQ does.
fn vhost_and_user<'a>(username: &'a str, default_vhost: &'a str) -> (&'a str, &'a str) {
    match username.rsplit_once(':') {
        Some((v, u)) => (v, u),
        None => (default_vhost, username),
    }
}

fn refuse(out: &Outbound, version: ProtocolVersion, code: ReasonCode, why: &str) {
    let mut properties = Properties::default();
    if version == ProtocolVersion::V5 {
        properties.reason_string = Some(ByteStr::from(why));
    }
    send(
        out,
        version,
        &Packet::ConnAck(ConnAck {
            session_present: false,
            code,
            properties,
        }),
    );
}

/// Handles CONNECT: on success the CONNACK is written and the connection is ready to
/// run; on refusal the CONNACK says why and `None` closes the connection.
pub(crate) async fn establish(
    mqtt: &Arc<Mqtt>,
    c: Connect,
    meta: SocketMeta,
    out: Arc<Outbound>,
    websocket: bool,
) -> Option<Conn> {
    let peer = meta.peer;
    let version = c.protocol_version;
    let cfg = &mqtt.cfg;
    let broker = &mqtt.broker;
    let v5 = version == ProtocolVersion::V5;
    let refused = |code: ReasonCode, why: &str| {
        tracing::warn!(%peer, client_id = %c.client_id.as_str(), "MQTT connection refused: {why}");
        refuse(&out, version, code, why);
        None
    };

    // Client id.
    let mut assigned = None;
    let client_id = if c.client_id.is_empty() {
        if !v5 && !c.clean_start {
            // 3.1.1 3.1.3.1: a persistent session needs a client id.
            return refused(
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                "a persistent session needs a client id",
            );
        }
        let id = generated_client_id();
        if v5 {
            assigned = Some(id.clone());
        }
        id
    } else {
        c.client_id.as_str().to_string()
    };
    if queue_name(&client_id).len() > 255 {
        return refused(
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            "client id too long",
        );
    }

    // Credentials, as RabbitMQ's `creds/3`: a username and password first, then the
    // client certificate's name (`ssl_cert_login`), then the anonymous default user.
    let cert_login = meta
        .tls
        .as_ref()
        .and_then(|t| t.common_name.clone())
        .filter(|_| cfg.ssl_cert_login);
    let (username, password) = match (&c.username, &c.password) {
        (Some(u), Some(p)) => (
            u.as_str().to_string(),
            Some(String::from_utf8_lossy(p).into_owned()),
        ),
        (None, None) if cert_login.is_some() => (cert_login.unwrap_or_default(), None),
        (None, None) if cfg.allow_anonymous => {
            (cfg.default_user.clone(), Some(cfg.default_pass.clone()))
        }
        (None, None) => {
            return refused(
                ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                "no credentials provided",
            )
        }
        _ => {
            return refused(
                ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                "username or password missing",
            )
        }
    };
    let (vhost_name, user_name) = vhost_and_user(&username, &cfg.default_vhost);
    let Some(vhost) = broker.vhost(vhost_name) else {
        // RabbitMQ 3.10 answers a missing vhost as bad credentials.
        return refused(
            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            &format!("virtual host '{vhost_name}' does not exist"),
        );
    };
    let from_loopback = peer.ip().is_loopback();
    let login = match &password {
        Some(p) => broker.users.authenticate(user_name, p, from_loopback),
        // The TLS layer verified the certificate: the name alone logs in.
        None => broker
            .users
            .authenticate_external(user_name, from_loopback)
            .map_err(|(f, _)| f),
    };
    let user = match login {
        Ok(u) => u,
        Err(AuthFailure::Refused) => {
            return refused(
                ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                &format!("authentication failed for user '{user_name}'"),
            )
        }
        Err(AuthFailure::LoopbackOnly) => {
            return refused(
                ReasonCode::NOT_AUTHORIZED,
                &format!("user '{user_name}' can only connect via localhost"),
            )
        }
    };
    if broker.users.permission(&user.name, vhost_name).is_none() {
        return refused(
            ReasonCode::NOT_AUTHORIZED,
            &format!("access to vhost '{vhost_name}' refused for user '{user_name}'"),
        );
    }
    // Connection limits: RabbitMQ answers "quota exceeded" to MQTT 5 and "not
    // authorized" (return code 5) to 3.x.
    if let Some(e) = broker.connection_refusal(&user.name, vhost_name) {
        let code = if v5 {
            ReasonCode::QUOTA_EXCEEDED
        } else {
            ReasonCode::NOT_AUTHORIZED
        };
        return refused(code, &e.message);
    }

    let access = broker.access(&user.name, vhost_name);

    // Takeover.
    let id = broker.next_connection_id();
    let key = (vhost.name.clone(), client_id.clone());
    let live = Live::new();
    mqtt.sessions.claim(&key, live.clone()).await;

    // The session.
    let props = &c.properties;
    let session_expiry = if v5 {
        props
            .session_expiry_interval
            .unwrap_or(0)
            .min(cfg.max_session_expiry)
    } else if c.clean_start {
        0
    } else {
        // RabbitMQ 3.10: a 3.x persistent session never expires.
        u32::MAX
    };
    let qname = queue_name(&client_id);
    let existing = vhost.queue(&qname, id).ok();
    // A clean start deletes the old session's queue (configure), a resumed session
    // consumes it (read): RabbitMQ refuses the CONNECT when the user may not.
    let needed = match &existing {
        Some(_) if c.clean_start => Some(Perm::Configure),
        Some(q) if q.durable => Some(Perm::Read),
        _ => None,
    };
    if let Some(perm) = needed {
        if let Err(e) = access.check(Kind::Queue, &qname, perm) {
            mqtt.sessions.release(&key, &live);
            return refused(ReasonCode::NOT_AUTHORIZED, &e.message);
        }
    }
    // What waited for this client id (a delayed will, the session's expiry).
    let waiting_will = mqtt.sessions.cancel_pending(&key);
    let mut session_present = false;
    if c.clean_start {
        if existing.is_some() {
            let _ = vhost.delete_queue(&qname, false, false, id);
        }
        // A new session ends the old one, and its waiting will goes now.
        if let Some(w) = waiting_will {
            crate::publish::publish_will(mqtt, &w);
        }
    } else if existing.as_ref().is_some_and(|q| q.durable) {
        session_present = true;
    }
    let client_receive_max = props.receive_maximum.unwrap_or(u16::MAX);
    let max_packet = props.maximum_packet_size.unwrap_or(0);
    let session = Arc::new(Session::new(out.clone(), version, max_packet));
    let will = c.will.as_ref().map(|w| WillMsg {
        vhost: vhost.clone(),
        access: access.clone(),
        client_id: client_id.clone(),
        topic: w.topic.clone(),
        payload: w.payload.clone(),
        qos: w.qos,
        retain: w.retain,
        properties: w.properties.clone(),
        version,
        delay: w.properties.will_delay_interval.unwrap_or(0),
    });
    let durable = session_present || session_expiry != 0;
    let prefetch = cfg.prefetch.min(client_receive_max);
    // The management registry, with what RabbitMQ shows of an MQTT connection: one
    // channel, no frame_max, the client id in `client_properties`.
    let registration = broker.registry().register(ConnectionInfo {
        id,
        protocol: protocol_name(version, websocket),
        peer,
        local: meta.local,
        user: user.name.clone(),
        vhost: vhost.name.clone(),
        auth_mechanism: if password.is_none() {
            "EXTERNAL"
        } else {
            "PLAIN"
        }
        .into(),
        client_properties: serde_json::json!({
            "client_id": client_id,
            "product": "MQTT client",
        }),
        frame_max: 0,
        channel_max: 1,
        heartbeat: c.keep_alive,
        fd: meta.fd,
        tls: meta.tls_info(),
    });
    let entry = registration.entry.clone();
    let channel = entry.add_channel(1, Some(session.clone() as Arc<dyn ChannelProbe>));
    channel
        .prefetch
        .store(u32::from(prefetch), std::sync::atomic::Ordering::Relaxed);
    let mut conn = Conn {
        mqtt: mqtt.clone(),
        id,
        peer,
        version,
        out: out.clone(),
        vhost,
        user: user.name.clone(),
        access,
        registration: Some(registration),
        entry,
        channel,
        client_id: client_id.clone(),
        key,
        live,
        keep_alive: Duration::from_secs(c.keep_alive.into()),
        session,
        will,
        session_expiry,
        queue_name: qname,
        durable,
        aliases: vec![None; usize::from(cfg.topic_alias_maximum) + 1],
        acks: PubAcks::default(),
        route_buf: Vec::new(),
    };
    conn.session.state.lock().prefetch = prefetch;

    // CONNACK, before any delivery.
    let mut ack_props = Properties::default();
    if v5 {
        ack_props.assigned_client_identifier = assigned.map(ByteStr::from);
        ack_props.topic_alias_maximum = Some(cfg.topic_alias_maximum);
        ack_props.maximum_qos = Some(QoS::AtLeastOnce);
        ack_props.shared_subscription_available = Some(false);
        ack_props.maximum_packet_size = Some(cfg.max_packet_size);
        if props.session_expiry_interval.unwrap_or(0) != session_expiry {
            ack_props.session_expiry_interval = Some(session_expiry);
        }
    }
    conn.send(&Packet::ConnAck(ConnAck {
        session_present,
        code: ReasonCode::SUCCESS,
        properties: ack_props,
    }));
    tracing::info!(
        %peer, connection = id, client_id = %client_id, user = %conn.user, vhost = %conn.vhost.name,
        version = ?version, websocket, clean_start = c.clean_start, session_present,
        "MQTT connection opened"
    );
    if session_present {
        if let Err(e) = conn.resume() {
            tracing::error!(client_id = %client_id, error = %e, "cannot resume MQTT session");
            conn.finish(crate::connection::End {
                reason: "session cannot be resumed",
                disconnect: None,
                will: false,
            });
            return None;
        }
    }
    Some(conn)
}

/// RabbitMQ's `protocol` of an MQTT connection: "MQTT 3.1.1" and "MQTT 3.1.0" as 3.10
/// shows them, "MQTT 5-0" as 3.13 does (3.10 has no MQTT 5); "Web MQTT ..." over
/// WebSocket.
fn protocol_name(version: ProtocolVersion, websocket: bool) -> String {
    let v = match version {
        ProtocolVersion::V3_1 => "3.1.0",
        ProtocolVersion::V3_1_1 => "3.1.1",
        ProtocolVersion::V5 => "5-0",
    };
    format!("{}MQTT {v}", if websocket { "Web " } else { "" })
}

impl Conn {
    /// Declares the session queue if this session has none yet.
    pub fn ensure_queue(&mut self) -> warren_core::Result<Arc<warren_core::Queue>> {
        let existing = self.session.state.lock().queue.clone();
        if let Some(q) = existing {
            return Ok(q);
        }
        let (q, _, _) = self.vhost.declare_queue(
            &QueueDeclare {
                name: self.queue_name.clone(),
                durable: self.durable,
                // A clean session's queue goes with its connection.
                exclusive: !self.durable,
                ..Default::default()
            },
            self.id,
        )?;
        self.session.state.lock().queue = Some(q.clone());
        Ok(q)
    }

    /// Starts (or restarts, to change mode) the session queue's consumer: no-ack while
    /// every subscription is QoS 0, with credit once one is QoS 1.
    pub fn ensure_consumer(&mut self) -> warren_core::Result<()> {
        let q = self.ensure_queue()?;
        let (want_ack, current, prefetch) = {
            let st = self.session.state.lock();
            (st.any_qos1(), st.consumer.clone(), st.prefetch)
        };
        if let Some(c) = &current {
            if !(c.no_ack && want_ack) {
                return Ok(());
            }
            // no-ack -> ack: nothing is outstanding in no-ack mode, so it can be replaced.
            self.vhost.cancel(&q, self.id, &c.tag);
        }
        let consumer = Arc::new(Consumer {
            tag: format!("mqtt-{}", self.client_id)
                .chars()
                .take(255)
                .collect::<String>()
                .into(),
            connection: self.id,
            // The connection's one channel in the registry.
            channel: 1,
            no_ack: !want_ack,
            exclusive: true,
            priority: 0,
            arguments: Default::default(),
            credit: Credit::new(u32::from(prefetch)),
            channel_credit: Arc::new(Credit::new(0)),
            sink: self.session.clone(),
        });
        self.vhost.consume(&q, consumer.clone())?;
        self.session.state.lock().consumer = Some(consumer);
        self.out.add_consumed_queue(q);
        Ok(())
    }

    /// A resumed session: its subscriptions come from its queue's bindings, and its
    /// messages start flowing.
    fn resume(&mut self) -> warren_core::Result<()> {
        let q = self.ensure_queue()?;
        let exchange = self.vhost.exchange(&self.mqtt.cfg.exchange)?;
        let subs: Vec<Sub> = exchange
            .bindings()
            .into_iter()
            .filter(|b| matches!(&b.destination, warren_core::Destination::Queue(d) if Arc::ptr_eq(d, &q)))
            .map(|b| Sub::from_binding(&b.routing_key, &b.arguments))
            .collect();
        self.session.state.lock().set_subs(subs);
        self.ensure_consumer()?;
        q.dispatch();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_split_at_the_last_colon() {
        assert_eq!(vhost_and_user("guest", "/"), ("/", "guest"));
        assert_eq!(vhost_and_user("v:guest", "/"), ("v", "guest"));
        assert_eq!(vhost_and_user("a:b:guest", "/"), ("a:b", "guest"));
    }

    #[test]
    fn generated_ids_look_like_rabbitmqs() {
        let id = generated_client_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
