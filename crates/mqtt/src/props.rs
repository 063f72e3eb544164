//! An MQTT application message as the broker's (AMQP-shaped) message, and back.
//!
//! MQTT to AMQP, as RabbitMQ does it (3.10 for MQTT 3.x, 3.13's `mc_mqtt` for MQTT 5):
//! - `delivery_mode` 1 for QoS 0, 2 for QoS 1 (so QoS 1 messages in durable session
//!   queues are on disk before their PUBACK);
//! - headers `x-mqtt-publish-qos` (byte) and `x-mqtt-dup` (bool), as RabbitMQ 3.10 sets
//!   them, so AMQP consumers see the same headers;
//! - MQTT 5: Content Type → `content_type`; Correlation Data → `correlation_id` when it
//!   fits a short string, else header `x-correlation-id`; Response Topic → header
//!   `x-reply-to-topic` (as an AMQP routing key); Message Expiry Interval →
//!   `expiration` (ms); User Properties → headers (strings; the first of a repeated
//!   name wins, as AMQP tables have unique keys).
//!
//! Two headers are Warren's own, to carry what a later MQTT delivery needs: `x-mqtt-retain`
//! (the PUBLISH had RETAIN set: Retain As Published) and
//! `x-mqtt-payload-format-indicator`. Both are set only when true.
//!
//! AMQP to MQTT: the QoS a message was published with is `x-mqtt-publish-qos` if present,
//! else 1 (RabbitMQ 3.10: "non-MQTT publishes are assumed to be qos 1"); MQTT 5 properties
//! come back from the fields above, and every other header whose value is a string or a
//! number becomes a User Property.

use std::sync::OnceLock;

use bytes::Bytes;
use warren_amqp_codec::{BasicProperties, FieldTable, FieldValue, PropertiesView, ShortStr};
use warren_mqtt_codec::{ByteStr, Properties, QoS};
use warren_store::Message;

use crate::topic::{amqp_to_mqtt, mqtt_to_amqp};

pub const H_QOS: &str = "x-mqtt-publish-qos";
pub const H_DUP: &str = "x-mqtt-dup";
pub const H_RETAIN: &str = "x-mqtt-retain";
pub const H_PFI: &str = "x-mqtt-payload-format-indicator";
pub const H_REPLY_TO_TOPIC: &str = "x-reply-to-topic";
pub const H_CORRELATION_ID: &str = "x-correlation-id";

/// Headers that carry MQTT fields, never shown to MQTT 5 clients as User Properties.
const INTERNAL: &[&str] = &[
    H_QOS,
    H_DUP,
    H_RETAIN,
    H_PFI,
    H_REPLY_TO_TOPIC,
    H_CORRELATION_ID,
];

/// What an inbound PUBLISH (or will) carries besides its topic and payload.
pub struct Inbound<'a> {
    pub qos: QoS,
    pub dup: bool,
    pub retain: bool,
    /// MQTT 5 properties; `None` for 3.x.
    pub v5: Option<&'a Properties>,
}

fn base(qos: QoS, dup: bool) -> BasicProperties {
    let mut headers = FieldTable::new();
    headers.insert(H_QOS, FieldValue::I8(qos as i8));
    headers.insert(H_DUP, FieldValue::Bool(dup));
    BasicProperties {
        headers: Some(headers),
        delivery_mode: Some(if qos == QoS::AtMostOnce { 1 } else { 2 }),
        ..Default::default()
    }
}

/// The raw properties of a plain 3.x publish: one of four, encoded once for the process.
fn plain(qos: QoS, dup: bool) -> (Bytes, PropertiesView) {
    static PLAIN: OnceLock<Vec<(Bytes, PropertiesView)>> = OnceLock::new();
    let all = PLAIN.get_or_init(|| {
        let mut v = Vec::new();
        for q in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            for d in [false, true] {
                let raw = base(q, d).to_bytes();
                let view = PropertiesView::parse(&raw).expect("our own encoding");
                v.push((raw, view));
            }
        }
        v
    });
    let i = usize::from(qos != QoS::AtMostOnce) * 2 + usize::from(dup);
    all[i].clone()
}

/// The AMQP properties for an inbound MQTT message.
pub fn to_amqp(m: &Inbound<'_>) -> Result<(Bytes, PropertiesView), String> {
    // QoS 2 is delivered at QoS 1 (RabbitMQ downgrades it).
    let qos = m.qos.min(QoS::AtLeastOnce);
    let v5 = m.v5.filter(|p| !p.is_empty());
    if v5.is_none() && !m.retain {
        return Ok(plain(qos, m.dup));
    }
    let mut p = base(qos, m.dup);
    let headers = p.headers.as_mut().expect("base sets headers");
    if m.retain {
        headers.insert(H_RETAIN, FieldValue::Bool(true));
    }
    if let Some(v) = v5 {
        if v.payload_format_indicator == Some(true) {
            headers.insert(H_PFI, FieldValue::Bool(true));
        }
        if let Some(ct) = &v.content_type {
            if ct.len() <= 255 && ct.is_ascii() {
                p.content_type = Some(ShortStr::from(ct.as_str()));
            }
        }
        if let Some(rt) = &v.response_topic {
            if let Some(k) = mqtt_to_amqp(rt.as_bytes()) {
                headers.insert(H_REPLY_TO_TOPIC, FieldValue::LongStr(k.as_bytes().clone()));
            }
        }
        if let Some(cd) = &v.correlation_data {
            match std::str::from_utf8(cd) {
                Ok(s) if cd.len() <= 255 => p.correlation_id = Some(ShortStr::from(s)),
                _ => headers.insert(H_CORRELATION_ID, FieldValue::LongStr(cd.clone())),
            }
        }
        if let Some(secs) = v.message_expiry_interval {
            p.expiration = Some(ShortStr::from((u64::from(secs) * 1000).to_string()));
        }
        for (k, val) in &v.user_properties {
            if k.len() <= 255 && !headers.contains_key(k.as_str()) {
                headers.insert(k.as_str(), FieldValue::LongStr(val.as_bytes().clone()));
            }
        }
    }
    let raw = p.to_bytes();
    let view = PropertiesView::parse(&raw).map_err(|e| e.to_string())?;
    Ok((raw, view))
}

/// Builds the broker message for an inbound MQTT message.
pub fn message(
    exchange: &ShortStr,
    routing_key: ShortStr,
    m: &Inbound<'_>,
    payload: Bytes,
) -> Result<Message, String> {
    let (raw, view) = to_amqp(m)?;
    Ok(Message::new(
        exchange.clone(),
        routing_key,
        raw,
        &view,
        payload,
    ))
}

/// The QoS a message was published with (see the module docs).
pub fn published_qos(msg: &Message) -> QoS {
    if msg.persistent {
        // An MQTT QoS 1 publish, or an AMQP persistent one: 1 either way.
        return QoS::AtLeastOnce;
    }
    let qos = PropertiesView::parse(&msg.properties)
        .ok()
        .and_then(|v| v.headers_table())
        .and_then(|h| h.get(H_QOS).and_then(|v| v.as_i64()));
    match qos {
        Some(0) => QoS::AtMostOnce,
        _ => QoS::AtLeastOnce,
    }
}

/// What an MQTT 5 PUBLISH of a broker message carries: its properties, and whether
/// it was published with RETAIN.
pub fn to_v5(msg: &Message, expires_at: Option<u64>, now_ms: u64) -> (Properties, bool) {
    let mut out = Properties::default();
    let Ok(p) = BasicProperties::decode(&msg.properties) else {
        return (out, false);
    };
    let mut retain = false;
    if let Some(ct) = p.content_type {
        out.content_type = Some(ByteStr::from(ct.as_str()));
    }
    if let Some(c) = p.correlation_id {
        out.correlation_data = Some(c.as_bytes().clone());
    }
    if let Some(at) = expires_at {
        // The time left, rounded up so a message never expires early at the client.
        out.message_expiry_interval = Some(at.saturating_sub(now_ms).div_ceil(1000) as u32);
    }
    if let Some(h) = p.headers {
        for (k, v) in h.iter() {
            match k.as_str() {
                H_RETAIN => retain = v.as_bool() == Some(true),
                H_PFI => {
                    if v.as_bool() == Some(true) {
                        out.payload_format_indicator = Some(true);
                    }
                }
                H_REPLY_TO_TOPIC => {
                    if let Some(s) = v.as_str() {
                        out.response_topic = Some(ByteStr::from(amqp_to_mqtt(s)));
                    }
                }
                H_CORRELATION_ID => {
                    if out.correlation_data.is_none() {
                        if let FieldValue::LongStr(b) = v {
                            out.correlation_data = Some(b.clone());
                        }
                    }
                }
                name if INTERNAL.contains(&name) => {}
                name => {
                    if let Some(s) = user_property_value(v) {
                        if !name.contains('\0') {
                            out.user_properties
                                .push((ByteStr::from(name), ByteStr::from(s)));
                        }
                    }
                }
            }
        }
    }
    (out, retain)
}

/// Whether a message carries RETAIN from its publisher (for Retain As Published).
pub fn published_retain(msg: &Message) -> bool {
    PropertiesView::parse(&msg.properties)
        .ok()
        .and_then(|v| v.headers_table())
        .and_then(|h| h.get(H_RETAIN).and_then(|v| v.as_bool()))
        == Some(true)
}

/// A header value as an MQTT User Property value (RabbitMQ's
/// `amqpl_field_to_utf8_string_pair`): strings, numbers, booleans; not tables, arrays or
/// binary data.
fn user_property_value(v: &FieldValue) -> Option<String> {
    Some(match v {
        FieldValue::LongStr(b) => {
            let s = std::str::from_utf8(b).ok()?;
            if s.contains('\0') {
                return None;
            }
            s.to_string()
        }
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::F32(f) => f.to_string(),
        FieldValue::F64(f) => f.to_string(),
        FieldValue::Void => String::new(),
        other => other.as_i64()?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_publishes_carry_rabbitmq_headers() {
        let m = Inbound {
            qos: QoS::AtLeastOnce,
            dup: false,
            retain: false,
            v5: None,
        };
        let (raw, view) = to_amqp(&m).unwrap();
        assert!(view.persistent());
        let h = view.headers_table().unwrap();
        assert_eq!(h.get(H_QOS), Some(&FieldValue::I8(1)));
        assert_eq!(h.get(H_DUP), Some(&FieldValue::Bool(false)));
        let msg = Message::new("amq.topic".into(), "a".into(), raw, &view, Bytes::new());
        assert_eq!(published_qos(&msg), QoS::AtLeastOnce);
    }

    #[test]
    fn v5_properties_round_trip() {
        let mut p = Properties {
            content_type: Some("text/plain".into()),
            response_topic: Some("reply/here".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            message_expiry_interval: Some(30),
            ..Default::default()
        };
        p.user_properties.push(("k".into(), "v".into()));
        let m = Inbound {
            qos: QoS::AtMostOnce,
            dup: false,
            retain: true,
            v5: Some(&p),
        };
        let (raw, view) = to_amqp(&m).unwrap();
        let msg = Message::new("amq.topic".into(), "a".into(), raw, &view, Bytes::new());
        assert_eq!(msg.ttl, Some(30_000));
        assert_eq!(published_qos(&msg), QoS::AtMostOnce);
        let (back, retain) = to_v5(&msg, Some(10_500), 0);
        assert!(retain);
        assert_eq!(back.content_type.as_deref(), Some("text/plain"));
        assert_eq!(back.response_topic.as_deref(), Some("reply/here"));
        assert_eq!(back.correlation_data.as_deref(), Some(&b"\x00\x01"[..]));
        assert_eq!(back.message_expiry_interval, Some(11));
        assert_eq!(back.user_properties, vec![("k".into(), "v".into())]);
    }
}
