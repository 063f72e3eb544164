//! Warren's STOMP adapter: STOMP 1.0, 1.1 and 1.2 over TCP, and over WebSocket as
//! RabbitMQ's Web-STOMP plugin serves it, onto the protocol-agnostic broker core. It
//! behaves as RabbitMQ's STOMP plugin: same destinations, same header mapping, same
//! ERROR frames (message and body texts) for the same mistakes.
//!
//! A connection is what RabbitMQ makes of it: one AMQP-like channel. Subscriptions are
//! consumers on that channel (consumer tag `T_<id>`, or `Q_<destination>` for a STOMP 1.0
//! subscription without id), delivery tags are per connection, and `ACK` in `client`
//! mode acknowledges every earlier message of the connection (`basic.ack` with
//! `multiple`), as in RabbitMQ.
//!
//! # Layout
//! - [`listener`]: [`serve`], [`serve_tls`] (STOMP over TLS) and [`serve_ws`].
//! - `connection`: the reader loop, heart-beats, errors, the end of a connection.
//! - one file per frame family: `connect` (CONNECT/STOMP), `send` (SEND, receipts after
//!   fsync), `subscribe` (SUBSCRIBE/UNSUBSCRIBE), `ack` (ACK/NACK), `transaction`
//!   (BEGIN/COMMIT/ABORT).
//! - `authz`: the permissions each destination needs (RabbitMQ's, as the AMQP operations
//!   its plugin performs), checked in RabbitMQ's order.
//! - [`destination`]: RabbitMQ's destinations (`/queue/`, `/topic/`, `/exchange/`,
//!   `/amq/queue/`, `/temp-queue/`, `/reply-queue/`) parsed and formatted.
//! - [`headers`]: STOMP headers as AMQP properties and back.
//! - `delivery`: the core's `DeliverySink`: MESSAGE frames, delivery tags, unacked
//!   messages.

mod ack;
mod authz;
mod connect;
mod connection;
mod delivery;
pub mod destination;
pub mod headers;
pub mod listener;
mod send;
mod subscribe;
mod transaction;

use std::time::Duration;

pub use listener::{serve, serve_tls, serve_ws};
use warren_stomp_codec::Limits;

/// STOMP settings, named after RabbitMQ's `stomp.*` keys.
#[derive(Debug, Clone)]
pub struct StompConfig {
    /// Credentials of a CONNECT without `login` (`stomp.default_user`, `default_pass`).
    pub default_user: String,
    pub default_pass: String,
    /// A CONNECT without `login` over TLS with a verified client certificate logs in as
    /// the user named by the certificate's common name, without a passcode
    /// (`stomp.ssl_cert_login`, off by default as in RabbitMQ).
    pub ssl_cert_login: bool,
    /// The vhost of a CONNECT without `host` (`stomp.default_vhost`).
    pub default_vhost: String,
    /// Frame limits (`stomp.max_headers`, `max_header_length`, `max_body_length`).
    pub limits: Limits,
    /// How long a client may take from TCP connect to CONNECT (`stomp.login_timeout`).
    pub login_timeout: Duration,
    /// The HTTP path of the WebSocket endpoint (`web_stomp.ws_path`).
    pub ws_path: String,
}

impl Default for StompConfig {
    fn default() -> Self {
        StompConfig {
            default_user: "guest".into(),
            default_pass: "guest".into(),
            ssl_cert_login: false,
            default_vhost: "/".into(),
            limits: Limits::default(),
            login_timeout: Duration::from_secs(10),
            ws_path: "/ws".into(),
        }
    }
}
