//! STOMP headers as AMQP properties and back, as RabbitMQ's `rabbit_stomp_util` maps
//! them.
//!
//! SEND → properties: `content-type`, `content-encoding`, `persistent:true` (delivery
//! mode 2), `priority`, `correlation-id`, `reply-to`, `expiration`, `amqp-message-id`
//! (message id), `timestamp`, `type`, `user-id`, `app-id`; every other header except
//! `destination` becomes an AMQP header (a long string), as in RabbitMQ.
//!
//! Properties → MESSAGE: the same fields back under the same names, then AMQP headers
//! that are strings or integers; a `reply-to` that is not a STOMP destination gets
//! `/reply-queue/` in front.

use bytes::Bytes;
use warren_amqp_codec::{BasicProperties, FieldTable, FieldValue, ShortStr};
use warren_stomp_codec::Frame;

use crate::destination;

/// Headers mapped to properties (and so not copied into the AMQP headers table).
const PROPERTY_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "persistent",
    "priority",
    "correlation-id",
    "reply-to",
    "expiration",
    "amqp-message-id",
    "timestamp",
    "type",
    "user-id",
    "app-id",
    "destination",
];

/// RabbitMQ's `boolean_header`: `true`/`false`, and `True`/`False` ("some Python
/// clients serialize True/False as such"); anything else is as if absent.
pub fn boolean(f: &Frame, name: &str) -> Option<bool> {
    match f.header_str(name) {
        Some("true" | "True") => Some(true),
        Some("false" | "False") => Some(false),
        _ => None,
    }
}

fn text(v: &Bytes) -> Option<ShortStr> {
    let s = std::str::from_utf8(v).ok()?;
    (s.len() <= 255).then(|| ShortStr::from(s))
}

/// RabbitMQ's `integer_header`: a value that is not an integer is as if absent.
fn integer(v: &Bytes) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The AMQP properties of a SEND (`reply_to` already rewritten for a temp queue).
pub fn to_properties(frame: &Frame, reply_to: Option<&str>) -> BasicProperties {
    let h = |name: &str| frame.header(name);
    let mut headers = FieldTable::new();
    for (k, v) in &frame.headers {
        let Ok(name) = std::str::from_utf8(k) else {
            continue;
        };
        if PROPERTY_HEADERS.contains(&name) || name.len() > 255 || headers.contains_key(name) {
            continue;
        }
        headers.insert(name, FieldValue::LongStr(v.clone()));
    }
    BasicProperties {
        content_type: h("content-type").and_then(text),
        content_encoding: h("content-encoding").and_then(text),
        headers: Some(headers),
        delivery_mode: (boolean(frame, "persistent") == Some(true)).then_some(2),
        priority: h("priority")
            .and_then(integer)
            .map(|p| p.clamp(0, 255) as u8),
        correlation_id: h("correlation-id").and_then(text),
        reply_to: reply_to
            .map(ShortStr::from)
            .or_else(|| h("reply-to").and_then(text)),
        expiration: h("expiration").and_then(text),
        message_id: h("amqp-message-id").and_then(text),
        timestamp: h("timestamp").and_then(integer).map(|t| t as u64),
        kind: h("type").and_then(text),
        user_id: h("user-id").and_then(text),
        app_id: h("app-id").and_then(text),
        cluster_id: None,
    }
}

/// The headers of a MESSAGE for a message's properties.
pub fn from_properties(p: &BasicProperties, out: &mut Vec<(Bytes, Bytes)>) {
    let s = |v: &Option<ShortStr>| v.as_ref().map(|s| s.as_str().to_string());
    if let Some(h) = &p.headers {
        for (k, v) in h.iter() {
            let value = match v {
                FieldValue::LongStr(b) => b.clone(),
                FieldValue::I32(i) => Bytes::from(i.to_string()),
                FieldValue::I64(i) => Bytes::from(i.to_string()),
                _ => continue,
            };
            out.push((k.as_bytes().clone(), value));
        }
    }
    let mut push =
        |k: &'static str, v: String| out.push((Bytes::from_static(k.as_bytes()), Bytes::from(v)));
    if let Some(v) = s(&p.content_type) {
        push("content-type", v);
    }
    if let Some(v) = s(&p.content_encoding) {
        push("content-encoding", v);
    }
    if p.delivery_mode == Some(2) {
        push("persistent", "true".into());
    }
    if let Some(v) = p.priority {
        push("priority", v.to_string());
    }
    if let Some(v) = s(&p.correlation_id) {
        push("correlation-id", v);
    }
    if let Some(v) = s(&p.reply_to) {
        let v = if destination::is_destination(&v) {
            v
        } else {
            format!("/reply-queue/{v}")
        };
        push("reply-to", v);
    }
    if let Some(v) = s(&p.expiration) {
        push("expiration", v);
    }
    if let Some(v) = s(&p.message_id) {
        push("amqp-message-id", v);
    }
    if let Some(v) = p.timestamp {
        push("timestamp", v.to_string());
    }
    if let Some(v) = s(&p.kind) {
        push("type", v);
    }
    if let Some(v) = s(&p.user_id) {
        push("user-id", v);
    }
    if let Some(v) = s(&p.app_id) {
        push("app-id", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_stomp_codec::Command;

    #[test]
    fn round_trip() {
        let f = Frame::new(Command::Send)
            .with_header("destination", "/queue/a")
            .with_header("persistent", "true")
            .with_header("priority", "5")
            .with_header("correlation-id", "c1")
            .with_header("reply-to", "amq.gen-x")
            .with_header("custom", "v");
        let p = to_properties(&f, None);
        assert_eq!(p.delivery_mode, Some(2));
        assert_eq!(p.priority, Some(5));
        assert_eq!(
            p.headers.as_ref().unwrap().get("custom"),
            Some(&FieldValue::from("v"))
        );
        assert!(p.headers.as_ref().unwrap().get("destination").is_none());
        let mut out = Vec::new();
        from_properties(&p, &mut out);
        let get = |k: &str| {
            out.iter()
                .find(|(n, _)| n.as_ref() == k.as_bytes())
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("persistent").as_deref(), Some(&b"true"[..]));
        assert_eq!(
            get("reply-to").as_deref(),
            Some(&b"/reply-queue/amq.gen-x"[..])
        );
        assert_eq!(get("custom").as_deref(), Some(&b"v"[..]));
    }
}
