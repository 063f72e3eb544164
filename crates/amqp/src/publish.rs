//! Publishing: `basic.publish` followed by a content header and body frames, assembled
//! into one message (zero-copy when the body fits one frame), routed, enqueued, returned
//! when mandatory and unroutable, and confirmed.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use warren_amqp_codec::frame::{write_body, write_content_header, write_method};
use warren_amqp_codec::methods::*;
use warren_amqp_codec::properties::BASIC_CLASS_ID;
use warren_amqp_codec::{reply, FieldValue, Frame, FrameType, PropertiesView, ShortStr};
use warren_core::access::{Access, Kind, Perm};
use warren_core::{BrokerError, Exchange, Message, Result};

use crate::channel::Channel;
use crate::confirms::Outcome as ConfirmOutcome;
use crate::connection::{AmqpError, ConnCtx};

/// A publish whose content is still arriving.
pub(crate) struct Pending {
    exchange: ShortStr,
    routing_key: ShortStr,
    mandatory: bool,
    properties: Bytes,
    view: PropertiesView,
    body_size: u64,
    /// Body frames so far; one frame is kept as is, several are joined.
    parts: Vec<Bytes>,
    received: u64,
}

pub(crate) enum Content {
    Idle,
    Header(Pending),
    Body(Pending),
}

impl Content {
    pub fn is_idle(&self) -> bool {
        matches!(self, Content::Idle)
    }

    /// RabbitMQ's text for a frame that breaks the method/header/body sequence.
    pub fn expected_text(&self) -> &'static str {
        match self {
            Content::Idle => "expected method frame, got non method frame instead",
            Content::Header(_) => {
                "expected content header for class 60, got non content header frame instead"
            }
            Content::Body(_) => "expected content body, got non content body frame instead",
        }
    }
}

/// A message ready to route (kept by transactions until commit).
pub(crate) struct Publish {
    pub exchange: Arc<Exchange>,
    pub msg: Arc<Message>,
    pub mandatory: bool,
}

impl Channel {
    pub(crate) fn basic_publish(&mut self, ctx: &ConnCtx, m: BasicPublish) -> Result<()> {
        if m.immediate {
            return Err(BrokerError::not_implemented("immediate=true"));
        }
        // Permission, then the exchange, as RabbitMQ checks them before the content.
        let x = self.publish_exchange(ctx, &m.exchange)?;
        if self.access.has_topic_rules() && x.kind == warren_core::ExchangeKind::Topic {
            self.access.check_topic(
                Access::exchange_resource(&m.exchange),
                &m.routing_key,
                Perm::Write,
            )?;
        }
        self.content = Content::Header(Pending {
            exchange: m.exchange,
            routing_key: m.routing_key,
            mandatory: m.mandatory,
            properties: Bytes::new(),
            view: PropertiesView::default(),
            body_size: 0,
            parts: Vec::new(),
            received: 0,
        });
        Ok(())
    }

    fn publish_exchange(&mut self, ctx: &ConnCtx, name: &str) -> Result<Arc<Exchange>> {
        if let Some(e) = &self.exchange_cache {
            // The length test first: comparing two empty strings (the default exchange,
            // the common case) costs a memcmp call that showed up at ~7% of broker CPU.
            let same = e.name.len() == name.len() && (name.is_empty() || e.name == name);
            if same && !e.is_deleted() {
                return Ok(e.clone());
            }
        }
        self.access
            .check(Kind::Exchange, Access::exchange_resource(name), Perm::Write)?;
        let e = ctx.vhost.exchange(name)?;
        if e.internal {
            return Err(BrokerError::access_refused(format!(
                "cannot publish to internal exchange '{name}' in vhost '{}'",
                ctx.vhost.name
            )));
        }
        self.exchange_cache = Some(e.clone());
        Ok(e)
    }

    /// Handles a content header or body frame. Returns true when a message completed.
    pub(crate) fn content_frame(
        &mut self,
        ctx: &ConnCtx,
        f: Frame,
    ) -> std::result::Result<bool, AmqpError> {
        let unexpected = |c: &Content| {
            let ids = if c.is_idle() { (0, 0) } else { (60, 40) };
            AmqpError::Connection(
                BrokerError::new(reply::UNEXPECTED_FRAME, c.expected_text()),
                ids.0,
                ids.1,
            )
        };
        let content = std::mem::replace(&mut self.content, Content::Idle);
        let pending = match (f.frame_type, content) {
            (FrameType::Header, Content::Header(mut p)) => {
                let h = f.content_header().map_err(|e| {
                    AmqpError::Connection(
                        BrokerError::new(
                            reply::FRAME_ERROR,
                            format!("cannot decode content header: {e}"),
                        ),
                        60,
                        40,
                    )
                })?;
                if h.class_id != BASIC_CLASS_ID {
                    return Err(AmqpError::Connection(
                        BrokerError::new(
                            reply::UNEXPECTED_FRAME,
                            format!(
                                "expected content header for class 60, got one for class {} instead",
                                h.class_id
                            ),
                        ),
                        60,
                        40,
                    ));
                }
                if h.body_size > ctx.cfg.max_message_size {
                    return Err(AmqpError::Channel(
                        self.id,
                        BrokerError::precondition_failed(format!(
                            "message size {} is larger than configured max size {}",
                            h.body_size, ctx.cfg.max_message_size
                        )),
                        60,
                        40,
                    ));
                }
                p.view = PropertiesView::parse(&h.properties).map_err(|e| {
                    AmqpError::Connection(
                        BrokerError::new(
                            reply::FRAME_ERROR,
                            format!("cannot decode properties: {e}"),
                        ),
                        60,
                        40,
                    )
                })?;
                p.properties = h.properties;
                p.body_size = h.body_size;
                p
            }
            (FrameType::Body, Content::Body(mut p)) => {
                p.received += f.payload.len() as u64;
                if p.received > p.body_size {
                    // As RabbitMQ: a body longer than announced never completes; the
                    // channel keeps expecting body frames until a method arrives, which
                    // is then the error.
                    p.parts.clear();
                    self.content = Content::Body(p);
                    return Ok(false);
                }
                p.parts.push(f.payload);
                p
            }
            (_, other) => {
                let e = unexpected(&other);
                return Err(e);
            }
        };
        if pending.received < pending.body_size {
            self.content = Content::Body(pending);
            return Ok(false);
        }
        self.complete(ctx, pending)
            .map_err(|e| AmqpError::from_method(self.id, e, (60, 40)))?;
        Ok(true)
    }

    fn complete(&mut self, ctx: &ConnCtx, p: Pending) -> Result<()> {
        let body = match p.parts.len() {
            0 => Bytes::new(),
            1 => p.parts.into_iter().next().unwrap(),
            _ => {
                let mut b = BytesMut::with_capacity(p.body_size as usize);
                for part in &p.parts {
                    b.extend_from_slice(part);
                }
                b.freeze()
            }
        };
        if let Some(dm) = p.view.delivery_mode {
            if dm != 1 && dm != 2 {
                return Err(BrokerError::precondition_failed(format!(
                    "invalid message: {{delivery_mode_unknown,{dm}}}"
                )));
            }
        }
        if let Some(exp) = &p.view.expiration {
            parse_expiration(exp).map_err(|why| {
                BrokerError::precondition_failed(format!("invalid expiration '{exp}': {why}"))
            })?;
        }
        if let Some(uid) = &p.view.user_id {
            // As RabbitMQ: users tagged `impersonator` may publish as anyone.
            if uid.as_str() != ctx.user.name && !ctx.user.tags.iter().any(|t| t == "impersonator") {
                return Err(BrokerError::precondition_failed(format!(
                    "user_id property set to '{uid}' but authenticated user was '{}'",
                    ctx.user.name
                )));
            }
        }
        let exchange = self.publish_exchange(ctx, &p.exchange)?;
        let mut msg = Message::new(p.exchange, p.routing_key, p.properties, &p.view, body);
        if msg.may_have_cc {
            check_routing_headers(&p.view)?;
        }
        if p.view.reply_to.as_deref() == Some(crate::basic::REPLY_TO) {
            let Some(own) = self.reply_to.clone() else {
                return Err(BrokerError::precondition_failed(
                    "fast reply consumer does not exist",
                ));
            };
            msg = warren_core::message::rewrite(
                &msg,
                msg.exchange.clone(),
                msg.routing_key.clone(),
                |props| props.reply_to = Some(own.as_str().into()),
            );
        }
        let msg = Arc::new(msg);
        let publish = Publish {
            exchange,
            msg,
            mandatory: p.mandatory,
        };
        if let Some(tx) = self.tx.as_mut() {
            tx.publishes.push(publish);
            return Ok(());
        }
        let outcome = self.route_and_enqueue(ctx, publish);
        if let Some(c) = self.confirm.as_mut() {
            c.attach_stats(|| ctx.broker.registry().channel_entry(ctx.id, self.id));
            c.record(outcome);
        }
        Ok(())
    }

    /// Routes a message, returns it if mandatory and unroutable, enqueues it everywhere
    /// else. The outcome is what its confirm will say: a nack if a queue refused it, an
    /// ack after the fsync of the latest durable queue that stored it persistently.
    pub(crate) fn route_and_enqueue(&mut self, ctx: &ConnCtx, p: Publish) -> ConfirmOutcome {
        let published = ctx
            .vhost
            .publish(&p.exchange, p.msg.clone(), &mut self.route_buf);
        if published.routed == 0 {
            ctx.broker
                .registry()
                .count_unroutable(ctx.id, self.id, p.mandatory);
        }
        if published.routed == 0 && p.mandatory {
            let m = &p.msg;
            ctx.out.write_deferred(|b| {
                write_method(
                    b,
                    self.id,
                    &BasicReturn {
                        reply_code: reply::NO_ROUTE,
                        reply_text: ShortStr::from_static("NO_ROUTE"),
                        exchange: m.exchange.clone(),
                        routing_key: m.routing_key.clone(),
                    }
                    .into(),
                );
                write_content_header(b, self.id, 60, m.body.len() as u64, &m.properties);
                write_body(b, self.id, &m.body, ctx.frame_max);
            });
        }
        match (published.rejected, published.sync) {
            (true, _) => ConfirmOutcome::Nack,
            (false, Some(e)) => ConfirmOutcome::AfterSync(e),
            (false, None) => ConfirmOutcome::Ack,
        }
    }
}

/// Parses a per-message `expiration` (milliseconds, as a decimal string) the way
/// RabbitMQ does, with its error terms.
/// `CC` and `BCC` must be arrays (of strings), or RabbitMQ refuses the message.
fn check_routing_headers(view: &PropertiesView) -> Result<()> {
    let Some(h) = view.headers_table() else {
        return Ok(());
    };
    for key in ["CC", "BCC"] {
        match h.get(key) {
            None | Some(FieldValue::Array(_)) => {}
            Some(v) => {
                return Err(BrokerError::precondition_failed(format!(
                    "invalid message: {{unacceptable_type_in_header,\"{key}\",{}}}",
                    v.type_name()
                )))
            }
        }
    }
    Ok(())
}

pub(crate) fn parse_expiration(s: &str) -> std::result::Result<u64, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits_start {
        return Err("no_integer".into());
    }
    if i < b.len() {
        return Err(format!("{{leftover_string,\"{}\"}}", &s[i..]));
    }
    let digits = &s[digits_start..i];
    let n: u128 = digits.parse().unwrap_or(u128::MAX);
    if neg && n > 0 {
        return Err(format!("{{value_negative,-{digits}}}"));
    }
    if n >= 4_294_967_295_000 {
        return Err(format!(
            "{{value_too_large,{}}}",
            digits.trim_start_matches('0')
        ));
    }
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_expiration;

    #[test]
    fn expiration_errors_match_rabbitmq() {
        assert_eq!(parse_expiration("60000"), Ok(60000));
        assert_eq!(parse_expiration("+5"), Ok(5));
        assert_eq!(parse_expiration("007"), Ok(7));
        assert_eq!(parse_expiration("abc").unwrap_err(), "no_integer");
        assert_eq!(parse_expiration("").unwrap_err(), "no_integer");
        assert_eq!(parse_expiration(" 5").unwrap_err(), "no_integer");
        assert_eq!(parse_expiration("-1").unwrap_err(), "{value_negative,-1}");
        assert_eq!(
            parse_expiration("1.5").unwrap_err(),
            "{leftover_string,\".5\"}"
        );
        assert_eq!(
            parse_expiration("99999999999999999").unwrap_err(),
            "{value_too_large,99999999999999999}"
        );
    }
}
