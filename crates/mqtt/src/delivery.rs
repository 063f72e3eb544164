//! A session as the core sees it: the [`DeliverySink`] its queue hands messages to.
//!
//! `deliver` runs under the queue's lock on whatever task published the message: it
//! picks the QoS (the highest of the matching subscriptions, capped by the QoS the
//! message was published with), assigns a packet identifier to a QoS 1 delivery and
//! keeps it in flight until PUBACK, and encodes the PUBLISH straight into the
//! connection's output buffer. It never calls back into a queue (lock order: queue,
//! session state, output buffer): deliveries that need settling without a PUBACK (QoS 0
//! deliveries of a consumer in ack mode, messages no subscription matches) are handed to
//! the connection task, which settles them in batches.
//!
//! A session whose subscriptions are all QoS 0 consumes in no-ack mode (the queue settles
//! each delivery as it hands it over); the first QoS 1 subscription switches it to ack
//! mode, with the session's prefetch as credit (the MQTT 5 Receive Maximum).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::sync::Notify;
use warren_amqp_codec::{FieldTable, FieldValue, ShortStr};
use warren_core::registry::ChannelProbe;
use warren_core::scheduler::now_ms;
use warren_core::{Consumer, DeliverySink, Envelope, Queue};
use warren_mqtt_codec::{topic, ByteStr, Packet, ProtocolVersion, Publish, QoS};
use warren_store::Message;
use warren_websocket::Outbound;

use crate::props;
use crate::topic::amqp_to_mqtt;

/// Binding argument names recording a subscription.
pub const ARG_FILTER: &str = "x-mqtt-topic-filter";
pub const ARG_QOS: &str = "x-mqtt-subscription-qos";
pub const ARG_NO_LOCAL: &str = "x-mqtt-no-local";
pub const ARG_RAP: &str = "x-mqtt-retain-as-published";
pub const ARG_ID: &str = "x-mqtt-subscription-id";

/// How many of our own publishes we remember for No Local.
const OWN_MAX: usize = 1024;

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Sub {
    /// The MQTT topic filter.
    pub filter: String,
    /// Its AMQP binding key.
    pub key: ShortStr,
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub id: Option<u32>,
}

impl Sub {
    /// The binding arguments that record this subscription.
    pub fn arguments(&self) -> FieldTable {
        let mut t = FieldTable::new();
        t.insert(ARG_FILTER, FieldValue::LongStr(self.filter.clone().into()));
        t.insert(ARG_QOS, FieldValue::I8(self.qos as i8));
        if self.no_local {
            t.insert(ARG_NO_LOCAL, FieldValue::Bool(true));
        }
        if self.retain_as_published {
            t.insert(ARG_RAP, FieldValue::Bool(true));
        }
        if let Some(id) = self.id {
            t.insert(ARG_ID, FieldValue::I64(i64::from(id)));
        }
        t
    }

    /// A subscription from a binding of the session queue (a resumed session).
    pub fn from_binding(key: &str, args: &FieldTable) -> Sub {
        let filter = args
            .get(ARG_FILTER)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| amqp_to_mqtt(key));
        let qos = match args.get(ARG_QOS).and_then(|v| v.as_i64()) {
            Some(0) => QoS::AtMostOnce,
            _ => QoS::AtLeastOnce,
        };
        Sub {
            filter,
            key: ShortStr::from(key),
            qos,
            no_local: args.get(ARG_NO_LOCAL).and_then(|v| v.as_bool()) == Some(true),
            retain_as_published: args.get(ARG_RAP).and_then(|v| v.as_bool()) == Some(true),
            id: args
                .get(ARG_ID)
                .and_then(|v| v.as_i64())
                .and_then(|v| u32::try_from(v).ok()),
        }
    }
}

/// A PUBLISH awaiting its PUBACK.
pub enum Inflight {
    /// From the session queue: settled on PUBACK, requeued if the connection ends first.
    Queued(Envelope),
    /// A retained message sent on SUBSCRIBE: nothing to settle.
    Retained,
}

#[derive(Default)]
pub struct SessionState {
    pub closed: bool,
    pub subs: Vec<Sub>,
    /// `Some(qos)` when every subscription has that QoS and no MQTT 5 option: delivery
    /// then needs no filter matching (unless the topic starts with `$`).
    simple: Option<QoS>,
    next_pid: u16,
    pub inflight: HashMap<u16, Inflight>,
    /// Deliveries to settle without a PUBACK (see the module docs).
    pub to_settle: Vec<Envelope>,
    /// Messages this connection published that a No Local subscription of its own
    /// matches: delivered back to us, they are dropped.
    own: VecDeque<Arc<Message>>,
    pub queue: Option<Arc<Queue>>,
    pub consumer: Option<Arc<Consumer>>,
    /// Credit of the consumer in ack mode: `mqtt.prefetch`, or the client's smaller
    /// Receive Maximum.
    pub prefetch: u16,
    /// The queue cancelled our consumer (it was deleted): the connection must end.
    pub cancelled: bool,
}

impl SessionState {
    pub fn set_subs(&mut self, subs: Vec<Sub>) {
        let first = subs.first().map(|s| s.qos);
        self.simple = first.filter(|q| {
            subs.iter()
                .all(|s| s.qos == *q && !s.no_local && !s.retain_as_published && s.id.is_none())
        });
        self.subs = subs;
    }

    pub fn any_qos1(&self) -> bool {
        self.subs.iter().any(|s| s.qos != QoS::AtMostOnce)
    }

    /// A free packet identifier.
    pub fn next_pid(&mut self) -> u16 {
        loop {
            self.next_pid = self.next_pid.wrapping_add(1);
            if self.next_pid != 0 && !self.inflight.contains_key(&self.next_pid) {
                return self.next_pid;
            }
        }
    }

    /// Remembers a message we published, if one of our No Local subscriptions matches it.
    pub fn note_own(&mut self, topic: &str, msg: &Arc<Message>) {
        if self
            .subs
            .iter()
            .any(|s| s.no_local && topic::matches(&s.filter, topic))
        {
            if self.own.len() == OWN_MAX {
                self.own.pop_front();
            }
            self.own.push_back(msg.clone());
        }
    }
}

/// What the matching subscriptions say about one delivery.
struct Matched {
    qos: QoS,
    ids: Vec<u32>,
    retain_as_published: bool,
}

pub struct Session {
    pub out: Arc<Outbound>,
    pub version: ProtocolVersion,
    /// The client's Maximum Packet Size (0: the protocol's).
    pub max_packet: u32,
    pub state: Mutex<SessionState>,
    /// Wakes the connection task: deliveries to settle, or the consumer was cancelled.
    pub wake: Notify,
}

impl Session {
    pub fn new(out: Arc<Outbound>, version: ProtocolVersion, max_packet: u32) -> Session {
        Session {
            out,
            version,
            max_packet,
            state: Mutex::new(SessionState::default()),
            wake: Notify::new(),
        }
    }

    fn matched(st: &mut SessionState, topic: &str, msg: &Arc<Message>) -> Option<Matched> {
        if let Some(qos) = st.simple {
            if !topic.starts_with('$') {
                return Some(Matched {
                    qos,
                    ids: Vec::new(),
                    retain_as_published: false,
                });
            }
        }
        let own = st.own.iter().position(|m| Arc::ptr_eq(m, msg));
        if let Some(i) = own {
            st.own.remove(i);
        }
        let mut m: Option<Matched> = None;
        for s in &st.subs {
            if (own.is_some() && s.no_local) || !topic::matches(&s.filter, topic) {
                continue;
            }
            let e = m.get_or_insert(Matched {
                qos: QoS::AtMostOnce,
                ids: Vec::new(),
                retain_as_published: false,
            });
            e.qos = e.qos.max(s.qos);
            e.ids.extend(s.id);
            e.retain_as_published |= s.retain_as_published;
        }
        m
    }

    /// Encodes a PUBLISH into the output buffer, unless it exceeds the client's Maximum
    /// Packet Size (then it is dropped, as MQTT 5 says). Returns whether it was written.
    pub fn write_publish(&self, p: &Publish) -> bool {
        let packet = Packet::Publish(p.clone());
        if self.max_packet != 0 {
            match warren_mqtt_codec::encoded_len(&packet, self.version) {
                Ok(n) if n <= self.max_packet as usize => {}
                _ => return false,
            }
        }
        self.out.write_deferred(|b: &mut BytesMut| {
            warren_mqtt_codec::encode(&packet, self.version, b).is_ok()
        })
    }
}

/// What the management API shows of the connection's channel.
impl ChannelProbe for Session {
    fn unacked(&self) -> u64 {
        let st = self.state.lock();
        st.inflight
            .values()
            .filter(|f| matches!(f, Inflight::Queued(_)))
            .count() as u64
    }

    fn global_prefetch(&self) -> u32 {
        0
    }
}

impl DeliverySink for Session {
    fn ready(&self) -> bool {
        self.out.ready()
    }

    fn deliver(
        &self,
        consumer: &Arc<Consumer>,
        _queue: &Arc<Queue>,
        env: Envelope,
    ) -> Result<(), Envelope> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(env);
        }
        let msg = env.msg.clone();
        let topic = amqp_to_mqtt(&msg.routing_key);
        let matched = Self::matched(&mut st, &topic, &msg);
        let Some(m) = matched else {
            // Bound for another subscription's sake ($-topic rule, No Local): drop.
            if !consumer.no_ack {
                st.to_settle.push(env);
                drop(st);
                self.wake.notify_one();
            }
            return Ok(());
        };
        let qos = if consumer.no_ack {
            QoS::AtMostOnce
        } else {
            m.qos.min(props::published_qos(&msg))
        };
        let (properties, retain) = if self.version == ProtocolVersion::V5 {
            let (mut p, published_retain) = props::to_v5(&msg, env.expires_at, now_ms());
            p.subscription_identifiers = m.ids;
            (p, m.retain_as_published && published_retain)
        } else {
            Default::default()
        };
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            st.next_pid()
        };
        let publish = Publish {
            dup: env.redelivered && qos != QoS::AtMostOnce,
            qos,
            retain,
            topic: ByteStr::from(topic),
            packet_id,
            properties,
            payload: msg.body.clone(),
        };
        let written = self.write_publish(&publish);
        if written && qos != QoS::AtMostOnce {
            st.inflight.insert(packet_id, Inflight::Queued(env));
        } else if !consumer.no_ack {
            st.to_settle.push(env);
            drop(st);
            self.wake.notify_one();
        }
        self.out.schedule_soon();
        Ok(())
    }

    fn cancelled(&self, _consumer: &Arc<Consumer>) {
        self.state.lock().cancelled = true;
        self.wake.notify_one();
    }
}
