//! Changing a message's properties: the few places the broker does (dead-lettering,
//! `x-delivery-count`, stripping `BCC`, direct reply-to) build a new message with
//! re-encoded properties and share the body.

use warren_amqp_codec::{BasicProperties, FieldTable, PropertiesView, ShortStr};
use warren_store::Message;

/// A copy of `msg` with its properties changed by `f`, routed with `exchange` and
/// `routing_key`.
pub fn rewrite(
    msg: &Message,
    exchange: ShortStr,
    routing_key: ShortStr,
    f: impl FnOnce(&mut BasicProperties),
) -> Message {
    let mut props = BasicProperties::decode(&msg.properties).unwrap_or_default();
    f(&mut props);
    let raw = props.to_bytes();
    let view = PropertiesView::parse(&raw).unwrap_or_default();
    let mut m = Message::new(exchange, routing_key, raw, &view, msg.body.clone());
    m.bcc = msg.bcc.clone();
    m
}

/// A copy of `msg` with its headers table changed by `f` (created if absent; dropped if
/// left empty and there was none).
pub fn with_headers(msg: &Message, f: impl FnOnce(&mut FieldTable)) -> Message {
    rewrite(msg, msg.exchange.clone(), msg.routing_key.clone(), |p| {
        let had = p.headers.is_some();
        let mut h = p.headers.take().unwrap_or_default();
        f(&mut h);
        if had || !h.is_empty() {
            p.headers = Some(h);
        }
    })
}
