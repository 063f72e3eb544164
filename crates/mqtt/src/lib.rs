//! Warren's MQTT adapter: MQTT 3.1, 3.1.1 and 5.0 over TCP, and over WebSocket as
//! RabbitMQ's Web-MQTT plugin serves it, onto the protocol-agnostic broker core.
//!
//! # The mapping (RabbitMQ's)
//! - A PUBLISH goes to the topic exchange `amq.topic` (configurable) with the topic as
//!   routing key, `/` becoming `.` and `+` becoming `*` ([`topic`]). An AMQP publish to
//!   `amq.topic` with key `a.b` therefore reaches MQTT subscribers of `a/b`, and the other
//!   way round.
//! - A session's subscriptions are bindings from that exchange to the session's queue,
//!   `mqtt-subscription-<client id>qos1`, whose consumer is the connection. A persistent
//!   session's queue is durable, so its subscriptions and QoS 1 messages survive
//!   reconnects and broker restarts; a clean session's queue is exclusive to its
//!   connection. Each binding's arguments record the subscription (its MQTT filter, QoS
//!   and MQTT 5 options), so a resumed session knows its subscriptions from the bindings
//!   alone: there is no second copy of the session state to keep in step.
//! - Message properties: see [`props`].
//! - Access control is RabbitMQ's (`authz`): CONNECT needs access to the vhost (and is
//!   refused, as in RabbitMQ, past the vhost's or user's `max-connections`); a
//!   PUBLISH needs write permission on the exchange and the topic write permission for
//!   its routing key; a SUBSCRIBE needs configure on the session queue (to create it),
//!   write on it and read on the exchange (to bind), the topic read permission for the
//!   binding key, and read on the queue (to consume).
//! - QoS 2 is downgraded to QoS 1 for MQTT 3.x and refused (0x9B) for MQTT 5, as RabbitMQ
//!   does; the CONNACK of MQTT 5 says Maximum QoS 1.
//!
//! # Layout
//! - [`listener`]: [`serve`], [`serve_tls`] (MQTTS) and [`serve_ws`]; the per-broker
//!   adapter state ([`Mqtt`]).
//! - `connection`: one connection's reader loop: packets in, keep-alive, close, will.
//! - one file per packet family: `connect` (CONNECT/CONNACK, authentication, session
//!   resume and takeover), `publish` (inbound PUBLISH, PUBACK after fsync), `subscribe`
//!   (SUBSCRIBE/UNSUBSCRIBE, retained messages on subscribe).
//! - `authz`: the permission checks of each packet.
//! - `delivery`: the session, i.e. the core's `DeliverySink` for this adapter: outbound
//!   PUBLISH, packet identifiers, messages in flight, PUBACK from the client.
//! - `sessions`: the client id registry (session takeover), will delay and session expiry
//!   timers (expiries persisted across restarts).
//! - [`retained`]: the durable retained message store.
//! - [`props`], [`topic`]: MQTT messages and topics as AMQP ones and back.

mod authz;
mod connect;
mod connection;
mod delivery;
pub mod listener;
pub mod props;
mod publish;
pub mod retained;
mod sessions;
mod subscribe;
pub mod topic;

use std::time::Duration;

pub use listener::{serve, serve_tls, serve_ws, Mqtt};

/// MQTT settings, named after RabbitMQ's `mqtt.*` keys where one exists.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// The exchange publishes go to (`mqtt.exchange`).
    pub exchange: String,
    /// The vhost of a username without a `vhost:` prefix (`mqtt.vhost`).
    pub default_vhost: String,
    /// Connections without credentials log in as the default user (`mqtt.allow_anonymous`,
    /// on by default in RabbitMQ 3.10, as here).
    pub allow_anonymous: bool,
    pub default_user: String,
    pub default_pass: String,
    /// A client without username and password that presented a verified TLS certificate
    /// logs in as the user named by the certificate's common name, without a password
    /// (`mqtt.ssl_cert_login`, off by default as in RabbitMQ).
    pub ssl_cert_login: bool,
    /// Unacknowledged QoS 1 deliveries per session (`mqtt.prefetch`); an MQTT 5 client's
    /// smaller Receive Maximum lowers it.
    pub prefetch: u16,
    /// Largest packet accepted after CONNECT (`mqtt.max_packet_size_authenticated`), and
    /// announced to MQTT 5 clients.
    pub max_packet_size: u32,
    /// Largest CONNECT accepted (`mqtt.max_packet_size_unauthenticated`).
    pub max_connect_size: u32,
    /// How long a client may take from TCP connect to CONNECT.
    pub connect_timeout: Duration,
    /// Topic aliases an MQTT 5 client may use towards us (`mqtt.topic_alias_maximum`).
    pub topic_alias_maximum: u16,
    /// Cap on an MQTT 5 Session Expiry Interval, seconds
    /// (`mqtt.max_session_expiry_interval_seconds`).
    pub max_session_expiry: u32,
    /// The HTTP path of the WebSocket endpoint (`web_mqtt.ws_path`).
    pub ws_path: String,
    /// What a refused PUBLISH or SUBSCRIBE does (`mqtt.disconnect_on_unauthorized`,
    /// default on, as in RabbitMQ): close the connection (after the SUBACK that says
    /// which filter failed), or only fail that packet and carry on.
    pub disconnect_on_unauthorized: bool,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            exchange: "amq.topic".into(),
            default_vhost: "/".into(),
            allow_anonymous: true,
            default_user: "guest".into(),
            default_pass: "guest".into(),
            ssl_cert_login: false,
            prefetch: 10,
            max_packet_size: 268_435_455,
            max_connect_size: 65536,
            connect_timeout: Duration::from_secs(10),
            topic_alias_maximum: 16,
            max_session_expiry: 86_400,
            ws_path: "/ws".into(),
            disconnect_on_unauthorized: true,
        }
    }
}
