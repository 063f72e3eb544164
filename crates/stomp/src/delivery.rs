//! The connection as the core sees it: the [`DeliverySink`] every subscription's queue
//! hands messages to.
//!
//! `deliver` runs under the queue's lock on whatever task published the message: it
//! assigns the connection-wide delivery tag, records the unacked message, and encodes the
//! MESSAGE frame straight into the output buffer. It never calls back into a queue (lock
//! order: queue, sink state, output buffer).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use warren_amqp_codec::BasicProperties;
use warren_core::registry::ChannelProbe;
use warren_core::{Consumer, DeliverySink, Envelope, Queue};
use warren_stomp_codec::{Command, Frame, Version};
use warren_websocket::Outbound;

use crate::destination;
use crate::headers;

/// A delivery awaiting ACK or NACK.
pub struct Unacked {
    pub tag: u64,
    pub queue: Arc<Queue>,
    pub env: Envelope,
    pub consumer: Arc<Consumer>,
}

/// What a MESSAGE needs to know about its subscription.
#[derive(Clone)]
pub struct SubInfo {
    /// The `subscription` header (the SUBSCRIBE's id), if the consumer tag has one.
    pub id: Option<String>,
    /// `client` or `client-individual`: 1.2 MESSAGEs carry an `ack` header.
    pub client_ack: bool,
}

#[derive(Default)]
pub struct SinkState {
    pub closed: bool,
    pub next_tag: u64,
    /// Ascending by tag.
    pub unacked: VecDeque<Unacked>,
    /// Consumer tag -> subscription.
    pub subs: HashMap<String, SubInfo>,
    /// Consumers the broker cancelled (their queue was deleted).
    pub cancelled: Vec<String>,
}

impl SinkState {
    /// Removes and returns what an ACK/NACK of `tag` covers (`multiple`: every earlier
    /// delivery of the connection too, as `basic.ack` does). `None`: unknown tag.
    pub fn take(&mut self, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple {
            let n = self.unacked.partition_point(|u| u.tag <= tag);
            if n == 0 || self.unacked[n - 1].tag != tag {
                return None;
            }
            return Some(self.unacked.drain(..n).collect());
        }
        let i = self.unacked.binary_search_by_key(&tag, |u| u.tag).ok()?;
        self.unacked.remove(i).map(|u| vec![u])
    }
}

pub struct Sink {
    pub out: Arc<Outbound>,
    pub version: Version,
    pub session_id: String,
    pub state: Mutex<SinkState>,
    pub wake: tokio::sync::Notify,
}

impl Sink {
    /// The MESSAGE frame for a delivery.
    pub fn message(&self, ctag: &str, sub: Option<&SubInfo>, tag: u64, env: &Envelope) -> Frame {
        let m = &env.msg;
        let message_id = format!("{ctag}@@{}@@{tag}", self.session_id);
        let mut f = Frame::new(Command::Message);
        if let Some(id) = sub.and_then(|s| s.id.as_ref()) {
            f.push_header("subscription", id.clone());
        }
        f.push_header(
            "destination",
            destination::format(m.exchange.as_str(), m.routing_key.as_str()),
        );
        f.push_header("message-id", message_id.clone());
        f.push_header(
            "redelivered",
            if env.redelivered { "true" } else { "false" },
        );
        if self.version == Version::V1_2 && sub.is_some_and(|s| s.client_ack) {
            f.push_header("ack", message_id);
        }
        if let Ok(p) = BasicProperties::decode(&m.properties) {
            headers::from_properties(&p, &mut f.headers);
        }
        if self.version == Version::V1_0 {
            // 1.0 cannot escape: a header with a line break would break the stream.
            f.headers
                .retain(|(k, v)| !k.iter().chain(v.iter()).any(|&b| b == b'\n' || b == b'\r'));
        }
        f.body = m.body.clone();
        f
    }

    pub fn write_frame(&self, f: &Frame) {
        self.out.write_deferred(|b| {
            if let Err(e) = warren_stomp_codec::encode(f, self.version, b) {
                tracing::error!(error = %e, "cannot encode a STOMP frame");
            }
        });
    }
}

/// What the management API shows of the connection's channel.
impl ChannelProbe for Sink {
    fn unacked(&self) -> u64 {
        self.state.lock().unacked.len() as u64
    }

    fn global_prefetch(&self) -> u32 {
        0
    }
}

impl DeliverySink for Sink {
    fn ready(&self) -> bool {
        self.out.ready()
    }

    fn deliver(
        &self,
        consumer: &Arc<Consumer>,
        queue: &Arc<Queue>,
        env: Envelope,
    ) -> Result<(), Envelope> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(env);
        }
        st.next_tag += 1;
        let tag = st.next_tag;
        let ctag = consumer.tag.as_str();
        let frame = self.message(ctag, st.subs.get(ctag), tag, &env);
        self.write_frame(&frame);
        if !consumer.no_ack {
            st.unacked.push_back(Unacked {
                tag,
                queue: queue.clone(),
                env,
                consumer: consumer.clone(),
            });
        }
        drop(st);
        self.out.schedule_soon();
        Ok(())
    }

    fn cancelled(&self, consumer: &Arc<Consumer>) {
        self.state
            .lock()
            .cancelled
            .push(consumer.tag.as_str().to_string());
        self.wake.notify_one();
    }
}

/// An ERROR frame, as RabbitMQ writes them.
pub fn error_frame(message: &str, detail: &str, extra: &[(&str, String)]) -> Frame {
    let mut f = Frame::new(Command::Error)
        .with_header("message", message.to_string())
        .with_header("content-type", "text/plain")
        .with_header("version", "1.0,1.1,1.2");
    for (k, v) in extra {
        f.push_header(Bytes::copy_from_slice(k.as_bytes()), v.clone());
    }
    f.with_body(detail.to_string())
}
