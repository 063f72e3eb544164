//! The part of a channel that queues touch: delivery tags, the unacked list, and the
//! [`DeliverySink`] that writes `basic.deliver` frames into the connection's output.
//!
//! Lock order: a queue's lock (held by the caller of `deliver`), then `state`, then the
//! output buffer. The reader takes `state` only on its own, never while holding a queue.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use warren_amqp_codec::frame::{write_body, write_content_header, write_deliver, write_method};
use warren_amqp_codec::methods::BasicCancel;
use warren_amqp_codec::ShortStr;
use warren_core::scheduler::coarse_monotonic_ms;
use warren_core::{Consumer, Credit, DeliverySink, Envelope, Queue};
use warren_store::segment::RecordView;

use crate::outbound::Outbound;

/// A delivery awaiting ack.
pub struct Unacked {
    pub tag: u64,
    pub queue: Arc<Queue>,
    pub env: Envelope,
    /// None for `basic.get`.
    pub consumer: Option<Arc<Consumer>>,
    /// When it was delivered ([`coarse_monotonic_ms`]), for the consumer timeout.
    pub delivered_at: u64,
}

#[derive(Default)]
pub struct DeliveryState {
    pub next_tag: u64,
    /// Ascending by tag.
    pub unacked: VecDeque<Unacked>,
    pub closed: bool,
    /// Consumers the broker cancelled (queue deleted) that the reader must forget.
    pub cancelled_by_broker: Vec<ShortStr>,
}

impl DeliveryState {
    /// Removes and returns the unacked deliveries an ack/nack with this tag covers.
    /// `None` if the tag is unknown. Tag 0 with `multiple` means "everything".
    pub fn take(&mut self, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple {
            if tag == 0 {
                return Some(self.unacked.drain(..).collect());
            }
            // As RabbitMQ: the tag itself must be outstanding; everything before it goes too.
            let n = self.unacked.partition_point(|u| u.tag <= tag);
            if n == 0 || self.unacked[n - 1].tag != tag {
                return None;
            }
            return Some(self.unacked.drain(..n).collect());
        }
        if self.unacked.front().is_some_and(|u| u.tag == tag) {
            return self.unacked.pop_front().map(|u| vec![u]);
        }
        let i = self.unacked.binary_search_by_key(&tag, |u| u.tag).ok()?;
        self.unacked.remove(i).map(|u| vec![u])
    }

    /// The first delivery (in delivery order) left unacknowledged longer than its
    /// queue's consumer timeout, or `default_ms` for queues without one: returns the
    /// timeout it exceeded.
    pub fn timed_out(&self, now: u64, default_ms: Option<u64>) -> Option<u64> {
        self.unacked.iter().find_map(|u| {
            let limit = u.queue.consumer_timeout().or(default_ms)?;
            (now.saturating_sub(u.delivered_at) > limit).then_some(limit)
        })
    }

    /// Puts deliveries back (a rolled-back transaction's acks), keeping tag order.
    pub fn restore(&mut self, mut back: Vec<Unacked>) {
        back.extend(self.unacked.drain(..));
        back.sort_by_key(|u| u.tag);
        self.unacked = back.into();
    }
}

pub struct ChannelShared {
    pub id: u16,
    pub out: Arc<Outbound>,
    pub frame_max: u32,
    /// `basic.qos` global = true.
    pub credit: Arc<Credit>,
    /// The client announced `consumer_cancel_notify`.
    pub cancel_notify: bool,
    pub state: Mutex<DeliveryState>,
}

impl ChannelShared {
    pub fn new(id: u16, out: Arc<Outbound>, frame_max: u32, cancel_notify: bool) -> ChannelShared {
        ChannelShared {
            id,
            out,
            frame_max,
            credit: Arc::new(Credit::new(0)),
            cancel_notify,
            state: Mutex::new(DeliveryState::default()),
        }
    }
}

impl ChannelShared {
    fn send(
        &self,
        consumer: &Arc<Consumer>,
        queue: &Arc<Queue>,
        env: Envelope,
        view: Option<&RecordView<'_>>,
    ) -> Result<(), Envelope> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(env);
        }
        st.next_tag += 1;
        let tag = st.next_tag;
        // A stream's replay writes from the log's bytes; anything else from the message.
        let m = &env.msg;
        let (exchange, routing_key, properties, body) = match view {
            Some(v) => (v.exchange, v.routing_key, v.properties, v.body),
            None => (
                &*m.exchange,
                &*m.routing_key,
                &m.properties[..],
                &m.body[..],
            ),
        };
        self.out.write_deferred(|b| {
            write_deliver(
                b,
                self.id,
                &consumer.tag,
                tag,
                env.redelivered,
                exchange,
                routing_key,
            );
            write_content_header(b, self.id, 60, body.len() as u64, properties);
            write_body(b, self.id, body, self.frame_max);
        });
        if !consumer.no_ack {
            st.unacked.push_back(Unacked {
                tag,
                queue: queue.clone(),
                env,
                consumer: Some(consumer.clone()),
                delivered_at: coarse_monotonic_ms(),
            });
        }
        drop(st);
        self.out.schedule_soon();
        Ok(())
    }
}

impl DeliverySink for ChannelShared {
    fn ready(&self) -> bool {
        self.out.ready()
    }

    fn deliver(
        &self,
        consumer: &Arc<Consumer>,
        queue: &Arc<Queue>,
        env: Envelope,
    ) -> Result<(), Envelope> {
        self.send(consumer, queue, env, None)
    }

    fn deliver_view(
        &self,
        consumer: &Arc<Consumer>,
        queue: &Arc<Queue>,
        env: Envelope,
        view: &RecordView<'_>,
    ) -> Result<(), Envelope> {
        self.send(consumer, queue, env, Some(view))
    }

    fn cancelled(&self, consumer: &Arc<Consumer>) {
        self.state
            .lock()
            .cancelled_by_broker
            .push(consumer.tag.clone());
        if self.cancel_notify {
            self.out.write(|b| {
                write_method(
                    b,
                    self.id,
                    &BasicCancel {
                        consumer_tag: consumer.tag.clone(),
                        nowait: true,
                    }
                    .into(),
                )
            });
        }
    }
}
