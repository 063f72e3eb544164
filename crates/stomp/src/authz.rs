//! Access control as RabbitMQ's STOMP plugin does it: each destination type does what an
//! AMQP client would (RabbitMQ's plugin is one, over a direct connection), so it needs
//! the permissions those AMQP operations need, checked in the same order, with the
//! same errors (`ERROR` `message:access_refused`, then the connection closes).
//!
//! | frame, destination | AMQP operations: permissions |
//! |---|---|
//! | SEND `/queue/q` | `queue.declare q` (once per connection): configure on `q` (and, when it creates `q` with a dead-letter exchange, read on `q`, write on that exchange); `basic.publish` to the default exchange: write on `amq.default` |
//! | SEND `/amq/queue/q`, `/reply-queue/q` | `basic.publish` to the default exchange: write on `amq.default` |
//! | SEND `/topic/k`, `/exchange/x/k` | `basic.publish`: write on `amq.topic` / `x`, and for a topic exchange the topic write permission for `k` |
//! | SEND with `reply-to:/temp-queue/t` | `queue.declare` of a server-named queue: configure on its `amq.gen-…` name; `basic.consume`: read on it |
//! | SUBSCRIBE `/queue/q` | `queue.declare q`: as above; `basic.consume`: read on `q` |
//! | SUBSCRIBE `/topic/k`, `/exchange/x/k` | `queue.declare` of the subscription queue: configure on it; `queue.bind`: write on it, read on `amq.topic` / `x`, topic read permission for `k`; `basic.consume`: read on it |
//! | SUBSCRIBE `/amq/queue/q` | `basic.consume`: read on `q` |
//! | UNSUBSCRIBE a durable `/topic/` subscription | `queue.delete`: configure on its queue |
//!
//! The text of a refused topic binding lacks the `ACCESS_REFUSED - ` prefix the other
//! refusals have: RabbitMQ 3.10 raises that one in the STOMP process itself.

use warren_amqp_codec::FieldTable;
use warren_core::access::{Access, Kind, Perm};
use warren_core::{Exchange, ExchangeKind, Result};

use crate::connection::Fail;

/// The check `VHost::declare_queue_checked` makes of a `queue.declare` with `args`:
/// configure on the queue; when it is created with a dead-letter exchange, also read on
/// the queue and write on that exchange (as the AMQP adapter checks it).
pub(crate) fn declare_check<'a>(
    a: &'a Access,
    args: &'a FieldTable,
) -> impl Fn(&str, bool) -> Result<()> + 'a {
    move |name: &str, creating: bool| {
        if !creating {
            return a.check(Kind::Queue, name, Perm::Configure);
        }
        if let Some(dlx) = args.get("x-dead-letter-exchange").and_then(|v| v.as_str()) {
            a.check(Kind::Queue, name, Perm::Read)?;
            a.check(Kind::Exchange, Access::exchange_resource(dlx), Perm::Write)?;
        }
        Ok(())
    }
}

/// `basic.publish` to `x` with `key`: write on the exchange (checked before it is looked
/// up, as RabbitMQ does), then the topic write permission.
pub(crate) fn check_write(a: &Access, exchange: &str) -> Result<()> {
    a.check(
        Kind::Exchange,
        Access::exchange_resource(exchange),
        Perm::Write,
    )
}

pub(crate) fn check_topic_write(a: &Access, x: &Exchange, key: &str) -> Result<()> {
    if x.kind == ExchangeKind::Topic && a.has_topic_rules() {
        a.check_topic(&x.name, key, Perm::Write)?;
    }
    Ok(())
}

/// `queue.bind` of `queue` to the exchange `x`: write on the queue, read on the
/// exchange (before it is looked up, as RabbitMQ does).
pub(crate) fn check_bind(a: &Access, queue: &str, x: &str) -> std::result::Result<(), Fail> {
    a.check(Kind::Queue, queue, Perm::Write)
        .and_then(|_| a.check(Kind::Exchange, Access::exchange_resource(x), Perm::Read))
        .map_err(Fail::broker)
}

/// `queue.bind` to a topic exchange: the topic read permission for the binding key.
pub(crate) fn check_bind_topic(
    a: &Access,
    x: &Exchange,
    key: &str,
) -> std::result::Result<(), Fail> {
    if x.kind != ExchangeKind::Topic {
        return Ok(());
    }
    a.check_topic(&x.name, key, Perm::Read)
        .map_err(|e| Fail::Fatal {
            message: "access_refused".into(),
            detail: e.message,
        })
}

/// `basic.consume` of `queue`.
pub(crate) fn check_consume(a: &Access, queue: &str) -> std::result::Result<(), Fail> {
    a.check(Kind::Queue, queue, Perm::Read)
        .map_err(Fail::broker)
}
