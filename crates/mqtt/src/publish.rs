//! Inbound PUBLISH (and wills): topic aliases, QoS checks, routing through the core,
//! retained messages, and PUBACK once the message is safe.
//!
//! A QoS 1 message routed to a durable queue is persistent, so the core hands back a
//! commit epoch: its PUBACK waits until that epoch's fsync is done (RabbitMQ's publisher
//! confirm, which its MQTT plugin turns into PUBACK). PUBACKs leave in the order their
//! PUBLISHes came (MQTT 4.6), so one waiting for an fsync holds back those after it.

use std::collections::VecDeque;
use std::sync::Arc;

use warren_core::access::Access;
use warren_core::scheduler::now_ms;
use warren_core::vhost::Published;
use warren_mqtt_codec::{ByteStr, Packet, ProtocolVersion, PubReply, Publish, QoS, ReasonCode};
use warren_store::Message;
use warren_websocket::Outbound;

use crate::authz;
use crate::connect::WillMsg;
use crate::connection::{Conn, End};
use crate::listener::Mqtt;
use crate::props::{self, Inbound};
use crate::retained::Entry;
use crate::topic::mqtt_to_amqp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    /// Send with this reason code.
    Ready(ReasonCode),
    /// Send (Success) once this commit epoch is done.
    Waiting(u64),
    /// Send nothing (MQTT 3.x, refused message: as RabbitMQ, the client will retry).
    Never,
}

/// PUBACKs owed to the client, in PUBLISH order.
#[derive(Default)]
pub struct PubAcks {
    pending: VecDeque<(u16, Ack)>,
    waiting: usize,
}

impl PubAcks {
    fn push(&mut self, packet_id: u16, ack: Ack) {
        if matches!(ack, Ack::Waiting(_)) {
            self.waiting += 1;
        }
        self.pending.push_back((packet_id, ack));
    }

    /// Whether a PUBACK waits for an fsync.
    pub fn waiting(&self) -> bool {
        self.waiting > 0
    }

    /// Sends every PUBACK that can go, given the last completed commit epoch.
    pub fn flush(&mut self, out: &Outbound, version: ProtocolVersion, done: u64) {
        while let Some(&(id, ack)) = self.pending.front() {
            let code = match ack {
                Ack::Waiting(e) if e > done => break,
                Ack::Waiting(_) => {
                    self.waiting -= 1;
                    Some(ReasonCode::SUCCESS)
                }
                Ack::Ready(code) => Some(code),
                Ack::Never => None,
            };
            self.pending.pop_front();
            if let Some(code) = code {
                let mut r = PubReply::new(id);
                if version == ProtocolVersion::V5 {
                    r.reason_code = code;
                }
                out.write_deferred(|b| {
                    let _ = warren_mqtt_codec::encode(&Packet::PubAck(r), version, b);
                });
            }
        }
    }
}

/// Why a message could not be routed.
enum RouteError {
    /// The user may not publish it (RabbitMQ's `check_publish_permitted`).
    Refused(String),
    Other(ReasonCode, String),
}

/// Routes a message from MQTT (a PUBLISH or a will), once the user's permissions allow
/// it, and keeps it if retained.
#[allow(clippy::too_many_arguments)]
fn route(
    mqtt: &Mqtt,
    vhost: &warren_core::VHost,
    access: &Access,
    topic: &ByteStr,
    payload: bytes::Bytes,
    m: &Inbound<'_>,
    route_buf: &mut Vec<Arc<warren_core::Queue>>,
    before_publish: impl FnOnce(&Arc<Message>),
) -> Result<Published, RouteError> {
    let key = mqtt_to_amqp(topic.as_bytes()).ok_or(RouteError::Other(
        ReasonCode::TOPIC_NAME_INVALID,
        "topic longer than 255 bytes".to_string(),
    ))?;
    let exchange = vhost
        .exchange(&mqtt.cfg.exchange)
        .map_err(|e| RouteError::Other(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR, e.to_string()))?;
    authz::check_publish(access, &exchange, key.as_str())
        .map_err(|e| RouteError::Refused(e.message))?;
    let msg = props::message(&mqtt.exchange, key, m, payload)
        .map_err(|e| RouteError::Other(ReasonCode::PAYLOAD_FORMAT_INVALID, e))?;
    let msg = Arc::new(msg);
    if m.retain {
        let entry = (!msg.body.is_empty()).then(|| Entry {
            qos: m.qos.min(QoS::AtLeastOnce),
            properties: msg.properties.clone(),
            payload: msg.body.clone(),
            expires_at: msg.ttl.map(|t| now_ms() + t),
        });
        if let Err(e) = mqtt.retained.set(&vhost.name, topic.as_str(), entry) {
            tracing::error!(topic = %topic.as_str(), error = %e, "cannot store a retained message");
        }
    }
    before_publish(&msg);
    Ok(vhost.publish(&exchange, msg, route_buf))
}

/// Publishes a will.
pub(crate) fn publish_will(mqtt: &Mqtt, w: &WillMsg) {
    let v5 = (w.version == ProtocolVersion::V5).then_some(&w.properties);
    let m = Inbound {
        qos: w.qos,
        dup: false,
        retain: w.retain,
        v5,
    };
    let mut buf = Vec::new();
    match route(
        mqtt,
        &w.vhost,
        &w.access,
        &w.topic,
        w.payload.clone(),
        &m,
        &mut buf,
        |_| {},
    ) {
        Ok(_) => {
            tracing::debug!(client_id = %w.client_id, topic = %w.topic.as_str(), "MQTT will published")
        }
        Err(RouteError::Refused(why) | RouteError::Other(_, why)) => {
            tracing::warn!(client_id = %w.client_id, "could not send last will: {why}")
        }
    }
}

impl Conn {
    /// An inbound PUBLISH.
    pub(crate) fn publish(&mut self, mut p: Publish) -> Result<(), End> {
        let v5 = self.version == ProtocolVersion::V5;
        if p.qos == QoS::ExactlyOnce {
            if v5 {
                // As RabbitMQ: MQTT 5 clients were told Maximum QoS 1.
                return Err(End::error(
                    ReasonCode::QOS_NOT_SUPPORTED,
                    "QoS 2 is not supported",
                ));
            }
            // MQTT 3.x: downgraded to QoS 1 and acknowledged with PUBACK, as RabbitMQ does.
            p.qos = QoS::AtLeastOnce;
        }
        if let Some(alias) = p.properties.topic_alias.take() {
            let slot = self
                .aliases
                .get_mut(usize::from(alias))
                .filter(|_| alias != 0)
                .ok_or_else(|| {
                    End::error(
                        ReasonCode::TOPIC_ALIAS_INVALID,
                        format!("topic alias {alias} out of range"),
                    )
                })?;
            if p.topic.is_empty() {
                p.topic = slot.clone().ok_or_else(|| {
                    End::error(
                        ReasonCode::PROTOCOL_ERROR,
                        format!("topic alias {alias} is not set"),
                    )
                })?;
            } else {
                *slot = Some(p.topic.clone());
            }
        }
        let m = Inbound {
            qos: p.qos,
            dup: p.dup,
            retain: p.retain,
            v5: v5.then_some(&p.properties),
        };
        // No Local: our own message must be known before the core can deliver it back
        // to us, which it may do inside `publish`.
        let session = &self.session;
        let topic = p.topic.as_str();
        self.channel.count_publish();
        let result = route(
            &self.mqtt,
            &self.vhost,
            &self.access,
            &p.topic,
            p.payload.clone(),
            &m,
            &mut self.route_buf,
            |msg| session.state.lock().note_own(topic, msg),
        );
        let published = match result {
            Ok(r) => r,
            Err(RouteError::Refused(why)) => {
                tracing::warn!(client_id = %self.client_id, connection = self.id, topic = %p.topic.as_str(), "MQTT publish refused: {why}");
                if self.mqtt.cfg.disconnect_on_unauthorized {
                    return Err(End::unauthorized(v5.then_some(why)));
                }
                // The message is dropped; a QoS 1 one is acknowledged (MQTT 5: as
                // refused), as RabbitMQ does.
                if p.qos != QoS::AtMostOnce {
                    self.acks
                        .push(p.packet_id, Ack::Ready(ReasonCode::NOT_AUTHORIZED));
                }
                return Ok(());
            }
            Err(RouteError::Other(code, why)) => {
                tracing::warn!(client_id = %self.client_id, topic = %p.topic.as_str(), "MQTT publish refused: {why}");
                return Err(End::error(code, why));
            }
        };
        if p.qos == QoS::AtMostOnce {
            return Ok(());
        }
        let ack = match (published.rejected, published.sync) {
            (true, _) if v5 => Ack::Ready(ReasonCode::QUOTA_EXCEEDED),
            (true, _) => Ack::Never,
            (false, Some(e)) => Ack::Waiting(e),
            (false, None) if v5 && published.routed == 0 => {
                Ack::Ready(ReasonCode::NO_MATCHING_SUBSCRIBERS)
            }
            (false, None) => Ack::Ready(ReasonCode::SUCCESS),
        };
        self.acks.push(p.packet_id, ack);
        Ok(())
    }
}
