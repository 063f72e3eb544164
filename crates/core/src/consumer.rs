//! Consumers, their credit (prefetch), and the sink through which a queue hands deliveries
//! to a protocol adapter.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use warren_amqp_codec::{FieldTable, PropertiesView, ShortStr};
use warren_store::segment::RecordView;
use warren_store::{Envelope, Message};

use crate::queue::Queue;
use crate::ConnectionId;

/// A prefetch window: how many deliveries may be outstanding (unacked) at once.
/// A limit of 0 means unlimited, as in `basic.qos`.
#[derive(Debug, Default)]
pub struct Credit {
    limit: AtomicU32,
    used: AtomicU32,
}

impl Credit {
    pub fn new(limit: u32) -> Credit {
        Credit {
            limit: AtomicU32::new(limit),
            used: AtomicU32::new(0),
        }
    }

    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    pub fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn has_room(&self) -> bool {
        let l = self.limit.load(Ordering::Relaxed);
        l == 0 || self.used.load(Ordering::Relaxed) < l
    }

    pub fn take(&self) {
        self.used.fetch_add(1, Ordering::Relaxed);
    }

    pub fn give_back(&self, n: u32) {
        // Saturating: a give-back racing a qos change must never wrap around.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// Implemented by each protocol adapter; a queue calls it to hand over messages.
///
/// `deliver` and `ready` are called with the queue's lock held: they must not call back
/// into any queue (lock order: queue, then the adapter's own locks).
pub trait DeliverySink: Send + Sync {
    /// Whether the connection can take more right now (its output buffer is not full).
    fn ready(&self) -> bool;

    /// Takes one delivery. Returning the envelope refuses it (the channel is closing);
    /// the queue then keeps the message.
    fn deliver(
        &self,
        consumer: &Arc<Consumer>,
        queue: &Arc<Queue>,
        env: Envelope,
    ) -> Result<(), Envelope>;

    /// A stream's delivery read straight from its log: `view` borrows the record from
    /// the segment mapping, and `env` holds a placeholder message (a stream settles
    /// nothing by content, so what an ack gets back needs none). An adapter that writes
    /// frames can copy them from `view` with no message built; this default builds one.
    fn deliver_view(
        &self,
        consumer: &Arc<Consumer>,
        queue: &Arc<Queue>,
        env: Envelope,
        view: &RecordView<'_>,
    ) -> Result<(), Envelope> {
        let properties = Bytes::copy_from_slice(view.properties);
        let props = PropertiesView::parse(&properties).unwrap_or_default();
        let msg = Message::new(
            view.exchange.into(),
            view.routing_key.into(),
            properties,
            &props,
            Bytes::copy_from_slice(view.body),
        );
        self.deliver(
            consumer,
            queue,
            Envelope {
                msg: Arc::new(msg),
                ..env
            },
        )
    }

    /// The broker cancelled this consumer (its queue was deleted).
    fn cancelled(&self, consumer: &Arc<Consumer>);
}

/// A subscription of one client to one queue.
pub struct Consumer {
    pub tag: ShortStr,
    pub connection: ConnectionId,
    pub channel: u16,
    pub no_ack: bool,
    pub exclusive: bool,
    pub priority: i64,
    pub arguments: FieldTable,
    /// Per-consumer prefetch (`basic.qos` with global = false).
    pub credit: Credit,
    /// Shared by all consumers of a channel (`basic.qos` with global = true).
    pub channel_credit: Arc<Credit>,
    pub sink: Arc<dyn DeliverySink>,
}

impl Consumer {
    /// Whether the queue may hand this consumer a message now.
    pub fn can_take(&self) -> bool {
        (self.no_ack || (self.credit.has_room() && self.channel_credit.has_room()))
            && self.sink.ready()
    }

    /// Called by the adapter when deliveries to this consumer are settled.
    pub fn settled(&self, n: u32) {
        if !self.no_ack {
            self.credit.give_back(n);
            self.channel_credit.give_back(n);
        }
    }
}
