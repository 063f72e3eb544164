//! Warren's AMQP 0-9-1 frontend: sockets and the protocol state machine, over the broker
//! core. It speaks exactly as RabbitMQ does: same handshake, capabilities, reply codes and
//! texts.
//!
//! # Layout
//! - [`listener`]: accepts connections and shuts them down on broker shutdown.
//! - `handshake`: protocol header, SASL (PLAIN, AMQPLAIN), tune, open.
//! - `connection`: the reader loop, frame assembly, connection-level methods, errors
//!   and close.
//! - `channel`: per-channel state and the dispatch of channel methods to one file per
//!   method class: `exchange`, `queue`, `basic` (consume, get, ack...), `publish`
//!   (content assembly, routing, confirms, returns), `tx`.
//! - `confirms`: publisher confirm numbering, and holding acks until their fsync.
//! - `delivery`: the delivery sink queues write into, delivery tags, unacked messages.
//! - `outbound`: the output buffer and writer task (batched writes, heartbeats,
//!   back-pressure towards queues).

mod basic;
mod channel;
mod confirms;
mod connection;
mod delivery;
mod exchange;
mod handshake;
pub mod listener;
mod outbound;
mod publish;
mod queue;
mod tx;

use std::time::Duration;

pub use connection::serve_io;
pub use listener::{serve, serve_tls};

/// Protocol limits and identity, as the broker offers them in `connection.tune`.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    /// Largest accepted message body (RabbitMQ: `max_message_size`).
    pub max_message_size: u64,
    /// `product` and `version` in server-properties.
    pub product: String,
    pub version: String,
    pub cluster_name: String,
    /// How long a client may take from TCP connect to `connection.open`.
    pub handshake_timeout: Duration,
    /// How long a delivery may stay unacknowledged before its channel is closed
    /// (RabbitMQ's `consumer_timeout`, 30 min by default); `None`: no limit, unless the
    /// queue sets one.
    pub consumer_timeout: Option<Duration>,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            frame_max: 131072,
            channel_max: 2047,
            heartbeat: 60,
            max_message_size: 128 << 20,
            // Clients gate RabbitMQ features on these (the Go client's own suite skips
            // cleanup unless product is "RabbitMQ"), so Warren presents itself as the
            // RabbitMQ release whose behaviour it implements, and says what it is in
            // `warren_version` and `information`.
            product: "RabbitMQ".into(),
            version: "3.13.7".into(),
            cluster_name: "warren@localhost".into(),
            handshake_timeout: Duration::from_secs(10),
            consumer_timeout: Some(Duration::from_secs(30 * 60)),
        }
    }
}
