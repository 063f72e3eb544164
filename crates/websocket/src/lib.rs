//! Transports shared by Warren's MQTT and STOMP adapters.
//!
//! Both protocols are byte streams over TCP, and both have a WebSocket variant in which
//! the same bytes travel in WebSocket messages (RabbitMQ's Web-MQTT and Web-STOMP
//! plugins). The adapters are written once against this crate's [`Reader`] and
//! [`Writer`], which hide which of the two carries a connection; everything above them
//! (codecs, sessions, the broker core) is the same code for both.
//!
//! # Layout
//! - [`transport`]: [`Reader`] and [`Writer`], a connection's two halves over TCP or a
//!   WebSocket.
//! - [`ws`]: the WebSocket upgrade (HTTP path check, subprotocol choice) for an accepted
//!   TCP socket.
//! - [`outbound`]: a connection's output buffer and its writer task: every producer
//!   appends, one task writes a whole batch with one syscall (the pattern of the AMQP
//!   adapter's `outbound.rs`), with back-pressure towards the queues it consumes from.
//! - [`listener`]: the accept loop with graceful shutdown.

pub mod listener;
pub mod outbound;
pub mod transport;
pub mod ws;

pub use listener::accept_loop;
pub use outbound::{Outbound, WakeBatch};
pub use transport::{Reader, SocketMeta, Writer};
pub use ws::{upgrade, WsOptions};
