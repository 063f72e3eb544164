//! Message storage behind Warren's queues.
//!
//! # Layout
//! - [`Message`]: one published message, shared (`Arc`) by every queue it was routed to.
//!   Its properties are the raw AMQP 0-9-1 basic-properties bytes, the broker's canonical
//!   message format (as in RabbitMQ); other protocols convert at their edge.
//! - [`QueueStore`]: what a queue needs from storage: append, take the next ready message,
//!   settle, requeue, purge. The queue state machine in `warren-core` calls only this.
//! - [`disk`]: the disk-first backend every queue uses: records in [`segment`] files, an
//!   [`acklog`] per durable queue, recovery after a restart or crash.
//! - [`committer`]: group commit: one fsync per file per round covers every persistent
//!   publish that arrived meanwhile; confirms wait for their round.
//! - [`definitions`]: the durable topology in RabbitMQ's definitions JSON format.
//! - [`priority`]: priority queues as one store per level.
//! - [`stream`]: stream queues' append-only logs, read by per-consumer cursors.
//! - [`memory`]: an in-memory backend (unit tests, and a reference for the interface).

pub mod acklog;
pub mod committer;
pub mod definitions;
pub mod disk;
pub mod json;
pub mod memory;
pub mod priority;
pub mod segment;
pub mod stream;

use std::sync::Arc;

use bytes::Bytes;
use warren_amqp_codec::{PropertiesView, ShortStr};

/// A queue-local sequence number: the order messages entered the queue. Requeued messages
/// keep theirs, which is how they return to their original place.
pub type SeqNo = u64;

/// One published message.
#[derive(Debug)]
pub struct Message {
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    /// Raw basic properties: flags + property list, as received.
    pub properties: Bytes,
    pub body: Bytes,
    /// delivery_mode = 2
    pub persistent: bool,
    pub priority: u8,
    /// The per-message TTL (`expiration`, ms), if it has a valid one.
    pub ttl: Option<u64>,
    /// The headers may name extra routing keys (`CC` / `BCC`): found by a byte search at
    /// construction, so routing never decodes the headers of messages without them.
    pub may_have_cc: bool,
    /// The `BCC` routing keys, removed from the headers at publish but still the
    /// message's routing keys when it is dead-lettered (as in RabbitMQ). Stored with it.
    pub bcc: Option<Box<[ShortStr]>>,
}

impl Message {
    pub fn new(
        exchange: ShortStr,
        routing_key: ShortStr,
        properties: Bytes,
        view: &PropertiesView,
        body: Bytes,
    ) -> Message {
        Message {
            exchange,
            routing_key,
            properties,
            body,
            persistent: view.persistent(),
            priority: view.priority.unwrap_or(0),
            ttl: view.expiration.as_ref().and_then(|e| e.parse().ok()),
            may_have_cc: view.headers.as_ref().is_some_and(|raw| {
                raw.windows(3).any(|w| w == b"\x02CC") || raw.windows(4).any(|w| w == b"\x03BCC")
            }),
            bcc: None,
        }
    }

    /// Body bytes, the figure RabbitMQ reports as message bytes.
    pub fn size(&self) -> u64 {
        self.body.len() as u64
    }
}

/// Where a message sits in its queue's store (opaque to the queue).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    pub seg: u32,
    pub idx: u32,
    pub offset: u32,
    pub len: u32,
    /// Which sub-store (a priority level), for stores made of several.
    pub part: u16,
}

/// A message as a queue holds it.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub seq: SeqNo,
    pub msg: Arc<Message>,
    pub redelivered: bool,
    /// When the message expires in this queue (ms since the Unix epoch).
    pub expires_at: Option<u64>,
    pub loc: Loc,
    /// Times it was delivered and returned (requeued) so far: quorum-queue semantics for
    /// `x-delivery-limit` and the `x-delivery-count` header. Kept in memory only.
    pub delivery_count: u32,
}

/// What storing a message gave.
#[derive(Debug, Clone, Copy)]
pub struct Pushed {
    pub seq: SeqNo,
    pub loc: Loc,
    /// For a persistent message in a durable queue: the commit epoch after which it is on
    /// disk (see [`committer`]). Confirms for it wait for that epoch.
    pub sync: Option<u64>,
}

/// Storage for one queue's messages.
///
/// Ready messages come out in sequence order; a requeued message goes back to its place by
/// sequence number (in front of everything published after it), as RabbitMQ does.
pub trait QueueStore: Send {
    /// Appends a message. Fails only when storage itself fails (a full disk).
    fn push(&mut self, msg: Arc<Message>, expires_at: Option<u64>) -> std::io::Result<Pushed>;
    /// Takes the next ready message; it is then outstanding until settled or requeued.
    fn pop(&mut self) -> Option<Envelope>;
    /// The expiry of the next ready message: `None` if there is none, `Some(None)` if it
    /// has no TTL.
    fn peek_expiry(&mut self) -> Option<Option<u64>>;
    /// Takes a ready message out of the middle (it expired); None if it is not ready.
    fn remove(&mut self, seq: SeqNo, loc: Loc) -> Option<Envelope>;
    /// A message is done with (acked, dropped, expired, dead-lettered).
    fn settle(&mut self, env: &Envelope);
    /// An outstanding message goes back to the ready messages (the queue sets
    /// `redelivered`).
    fn requeue(&mut self, env: Envelope);
    /// Drops every ready message; returns how many there were.
    fn purge(&mut self) -> u64;
    fn ready_count(&self) -> u64;
    /// Sum of ready message body sizes.
    fn ready_bytes(&self) -> u64;
    /// Expiries of the ready messages found at recovery: (expires_at, seq, loc).
    fn recovered_expiries(&mut self) -> Vec<(u64, SeqNo, Loc)> {
        Vec::new()
    }
    /// The queue is deleted: remove what the store keeps on disk.
    fn destroy(&mut self) {}
}
