//! Dead-lettering, as RabbitMQ does it: a message rejected without requeue, dropped by a
//! length limit (or, later, expired) is republished to the queue's dead-letter exchange,
//! with its routing key or `x-dead-letter-routing-key`, an `x-death` history in its
//! headers, and `x-first-death-*` / `x-last-death-*` summaries.
//!
//! Dead letters are built and routed after the source queue's lock is released, so a
//! queue may be its own dead-letter target.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use warren_amqp_codec::{BasicProperties, FieldTable, FieldValue, PropertiesView, ShortStr};
use warren_store::{Envelope, Message};

use crate::queue::Queue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Rejected,
    Expired,
    Maxlen,
    DeliveryLimit,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
            Reason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// Where a queue sends its dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterTarget {
    pub exchange: String,
    pub routing_key: Option<String>,
}

impl DeadLetterTarget {
    pub fn from_arguments(args: &FieldTable) -> Option<DeadLetterTarget> {
        let exchange = args.get("x-dead-letter-exchange")?.as_str()?.to_string();
        let routing_key = args
            .get("x-dead-letter-routing-key")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        Some(DeadLetterTarget {
            exchange,
            routing_key,
        })
    }
}

fn str_of(v: Option<&FieldValue>) -> Option<&str> {
    v.and_then(|v| v.as_str())
}

/// The routing keys a message was published with: its routing key and any `CC` header.
fn routing_keys(msg: &Message, headers: Option<&FieldTable>) -> Vec<FieldValue> {
    let mut keys = vec![FieldValue::from(msg.routing_key.as_str())];
    if let Some(FieldValue::Array(cc)) = headers.and_then(|h| h.get("CC")) {
        keys.extend(cc.iter().filter(|v| v.as_str().is_some()).cloned());
    }
    keys
}

/// Builds the dead-lettered copy of `msg` leaving `queue` for `reason`.
pub fn dead_letter_message(
    msg: &Message,
    queue: &Queue,
    reason: Reason,
    target: &DeadLetterTarget,
) -> Message {
    let mut props = BasicProperties::decode(&msg.properties).unwrap_or_default();
    let mut headers = props.headers.take().unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    // The count of failed deliveries belonged to the queue it leaves.
    headers.remove("x-delivery-count");
    let mut deaths: Vec<FieldValue> = match headers.remove("x-death") {
        Some(FieldValue::Array(a)) => a,
        _ => Vec::new(),
    };
    let same = |t: &FieldTable| {
        str_of(t.get("queue")) == Some(queue.name.as_str())
            && str_of(t.get("reason")) == Some(reason.as_str())
    };
    let existing = deaths
        .iter()
        .position(|d| matches!(d, FieldValue::Table(t) if same(t)));
    let entry = match existing {
        Some(i) => {
            let FieldValue::Table(mut t) = deaths.remove(i) else {
                unreachable!()
            };
            let count = t.get("count").and_then(|v| v.as_i64()).unwrap_or(0);
            t.insert("count", FieldValue::I64(count + 1));
            t.insert("time", FieldValue::Timestamp(now));
            t
        }
        None => {
            let mut t = FieldTable::new();
            t.insert("count", FieldValue::I64(1));
            t.insert("reason", FieldValue::from(reason.as_str()));
            t.insert("queue", FieldValue::from(queue.name.as_str()));
            t.insert("time", FieldValue::Timestamp(now));
            t.insert("exchange", FieldValue::from(msg.exchange.as_str()));
            t.insert(
                "routing-keys",
                FieldValue::Array(routing_keys(msg, Some(&headers))),
            );
            if let Some(exp) = &props.expiration {
                t.insert("original-expiration", FieldValue::from(exp.as_str()));
            }
            t
        }
    };
    deaths.insert(0, FieldValue::Table(entry));
    headers.insert("x-death", FieldValue::Array(deaths));
    if !headers.contains_key("x-first-death-reason") {
        headers.insert("x-first-death-reason", FieldValue::from(reason.as_str()));
        headers.insert("x-first-death-queue", FieldValue::from(queue.name.as_str()));
        headers.insert(
            "x-first-death-exchange",
            FieldValue::from(msg.exchange.as_str()),
        );
    }
    headers.insert("x-last-death-reason", FieldValue::from(reason.as_str()));
    headers.insert("x-last-death-queue", FieldValue::from(queue.name.as_str()));
    headers.insert(
        "x-last-death-exchange",
        FieldValue::from(msg.exchange.as_str()),
    );
    if target.routing_key.is_some() {
        // Routed by the dead-letter key alone: the CC keys would mislead a reader.
        headers.remove("CC");
    }
    props.headers = Some(headers);
    // The expiration went into x-death: the copy must not expire again on its way.
    props.expiration = None;

    let raw = props.to_bytes();
    let view = PropertiesView::parse(&raw).unwrap_or_default();
    let routing_key: ShortStr = match &target.routing_key {
        Some(k) => k.as_str().into(),
        None => msg.routing_key.clone(),
    };
    let mut m = Message::new(
        target.exchange.as_str().into(),
        routing_key,
        raw,
        &view,
        msg.body.clone(),
    );
    // Its routing keys stay the original ones (BCC included) unless a dead-letter key
    // replaced them.
    if target.routing_key.is_none() {
        m.bcc = msg.bcc.clone();
    }
    m
}

/// Whether delivering a dead letter to `target` would close an automatic cycle: the
/// message already died in that queue, and no death on the way was a client's rejection
/// (RabbitMQ drops such messages instead of looping forever).
pub fn is_cycle(msg: &Message, target: &Queue) -> bool {
    let Some(headers) = PropertiesView::parse(&msg.properties)
        .ok()
        .and_then(|v| v.headers_table())
    else {
        return false;
    };
    let Some(FieldValue::Array(deaths)) = headers.get("x-death") else {
        return false;
    };
    let mut seen_target = false;
    for d in deaths {
        if let FieldValue::Table(t) = d {
            if str_of(t.get("reason")) == Some("rejected") {
                return false;
            }
            if str_of(t.get("queue")) == Some(target.name.as_str()) {
                seen_target = true;
            }
        }
    }
    seen_target
}

impl Queue {
    /// Sends envelopes that left this queue for `reason` to its dead-letter exchange (or
    /// drops them if it has none, or the exchange is gone). Call without the queue lock.
    pub(crate) fn dead_letter(
        self: &Arc<Self>,
        target: &Option<DeadLetterTarget>,
        envs: Vec<Envelope>,
        reason: Reason,
    ) {
        if envs.is_empty() {
            return;
        }
        let Some(target) = target.clone() else {
            return;
        };
        let Some(vhost) = self.vhost_ref.upgrade() else {
            return;
        };
        let Ok(exchange) = vhost.exchange(&target.exchange) else {
            tracing::debug!(queue = %self.name, exchange = %target.exchange, "dead-letter exchange missing; message dropped");
            return;
        };
        let mut queues = Vec::new();
        for env in envs {
            let msg = Arc::new(dead_letter_message(&env.msg, self, reason, &target));
            let raw_headers = PropertiesView::parse(&msg.properties)
                .ok()
                .and_then(|v| v.headers);
            let mut headers = || {
                raw_headers
                    .as_ref()
                    .and_then(|r| FieldTable::decode(r).ok())
            };
            queues.clear();
            // With a dead-letter routing key, that key alone; otherwise the keys it was
            // published with (its routing key and `CC`).
            let keys: Vec<String> = match &target.routing_key {
                Some(k) => vec![k.clone()],
                None => routing_keys(&env.msg, headers().as_ref())
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .chain(env.msg.bcc.iter().flatten().map(|k| k.to_string()))
                    .collect(),
            };
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            vhost.route(&exchange, &keys, &mut headers, &mut queues);
            for q in queues.drain(..) {
                if reason != Reason::Rejected && is_cycle(&msg, &q) {
                    continue;
                }
                q.publish(msg.clone());
            }
        }
    }
}
