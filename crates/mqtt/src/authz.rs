//! Access control as RabbitMQ's MQTT plugin does it: the core's compiled permissions
//! ([`Access`], the same the AMQP adapter asks) checked at the points where RabbitMQ
//! checks them, with the MQTT topic translated to its routing key.
//!
//! | MQTT | checks (in this order) |
//! |---|---|
//! | CONNECT | the user may use the vhost; a clean start that deletes an existing session queue: configure on it; a resumed session: read on its queue (it is consumed) |
//! | PUBLISH, will | write on the exchange (`amq.topic`); topic write permission for the routing key |
//! | SUBSCRIBE | configure on the session queue if it is created now; write on the queue and read on the exchange (the binding); topic read permission for the binding key; read on the queue if it is not consumed yet |
//! | UNSUBSCRIBE | write on the queue, read on the exchange, topic read permission (the unbinding) |
//!
//! What a refusal does (RabbitMQ 3.13, `mqtt.disconnect_on_unauthorized = true`, the
//! default): CONNECT gets CONNACK 5 / 0x87 Not authorized; a SUBSCRIBE gets a SUBACK
//! whose refused filter and every later one say 0x80 (MQTT 3.1.1) or 0x87 (MQTT 5), and
//! the connection is closed; a PUBLISH closes the connection (MQTT 5: after DISCONNECT
//! 0x87); an UNSUBSCRIBE gets 0x87 for that filter (MQTT 5) and the subscription stays.
//! With `disconnect_on_unauthorized = false` a refused SUBSCRIBE or PUBLISH only fails:
//! the SUBACK says so, a QoS 1 PUBLISH gets PUBACK 0x87 (MQTT 3.x: a plain PUBACK), a
//! QoS 0 one is dropped. A refused will is not sent (and logged).
//!
//! Permissions are compiled once per connection at CONNECT, as RabbitMQ caches them
//! per connection.

use warren_core::access::{Access, Kind, Perm};
use warren_core::{BrokerError, Exchange, ExchangeKind, Result};

/// A PUBLISH (or will) to `x` with `key`: RabbitMQ's `check_publish_permitted`.
pub(crate) fn check_publish(a: &Access, x: &Exchange, key: &str) -> Result<()> {
    a.check(
        Kind::Exchange,
        Access::exchange_resource(&x.name),
        Perm::Write,
    )?;
    if x.kind == ExchangeKind::Topic && a.has_topic_rules() {
        a.check_topic(&x.name, key, Perm::Write)?;
    }
    Ok(())
}

/// Binding or unbinding `queue` to `x` with `key`: RabbitMQ's
/// `binding_action_with_checks`.
pub(crate) fn check_bind(a: &Access, queue: &str, x: &Exchange, key: &str) -> Result<()> {
    a.check(Kind::Queue, queue, Perm::Write)?;
    a.check(
        Kind::Exchange,
        Access::exchange_resource(&x.name),
        Perm::Read,
    )?;
    if x.kind == ExchangeKind::Topic {
        a.check_topic(&x.name, key, Perm::Read)?;
    }
    Ok(())
}

/// Whether a broker error is a permission refusal.
pub(crate) fn is_refusal(e: &BrokerError) -> bool {
    e.code == warren_amqp_codec::reply::ACCESS_REFUSED
}
