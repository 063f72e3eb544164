//! Warren's broker core. It knows no wire protocol: AMQP, MQTT, STOMP and the HTTP API are
//! adapters that call into it.
//!
//! Messages are AMQP 0-9-1 shaped (raw basic properties and a body), as in RabbitMQ: that
//! is the broker's data model, not its wire protocol. The core never reads a socket or a
//! frame.
//!
//! # Layout
//! - [`broker`]: the root object: vhosts, users, resource alarms, connection ids.
//! - [`auth`]: users, RabbitMQ-compatible password hashes, permissions.
//! - [`vhost`]: topology (exchanges, queues, bindings) and routing, with RabbitMQ's checks
//!   and error texts.
//! - [`exchange`]: exchange types and their binding indexes; [`topic`] is the topic trie,
//!   [`headers`] the headers matcher.
//! - [`queue`]: the queue state machine: ready messages (in a `warren-store` backend),
//!   consumers, round-robin dispatch with priorities and credit.
//! - [`storage`]: the data directory: queue stores, the definitions journal, recovery.
//! - [`stream`]: stream queues: an append-only log read from any offset.
//! - [`scheduler`]: the broker-wide timer that expires messages on time.
//! - [`deadletter`]: dead-lettering with RabbitMQ's `x-death` history.
//! - [`consumer`]: consumers, prefetch credit, and [`consumer::DeliverySink`], the one
//!   trait an adapter implements to receive deliveries.
//! - [`error`]: [`BrokerError`], an AMQP reply code plus RabbitMQ's text.

pub mod access;
pub mod args;
pub mod auth;
pub mod broker;
pub mod consumer;
pub mod deadletter;
pub mod dedup;
pub mod delayed;
pub mod error;
pub mod exchange;
pub mod headers;
pub mod limits;
pub mod management;
pub mod message;
pub mod policy;
pub mod queue;
pub mod registry;
pub mod scheduler;
pub mod settings;
pub mod storage;
pub mod stream;
pub mod topic;
pub mod util;
pub mod vhost;

pub use broker::{Broker, BrokerConfig};
pub use consumer::{Consumer, Credit, DeliverySink};
pub use error::{BrokerError, Result};
pub use exchange::{Destination, Exchange, ExchangeKind};
pub use queue::{Enqueued, Queue};
pub use vhost::VHost;
pub use warren_store::{Envelope, Message, SeqNo};

/// Identifies a client connection (exclusive queue ownership, consumer identity).
pub type ConnectionId = u64;
