//! The queue class: declare, bind, unbind, purge, delete, with the spec's "" shortcut for
//! the channel's most recently declared queue.

use warren_amqp_codec::methods::*;
use warren_core::access::{Kind, Perm};
use warren_core::vhost::QueueDeclare as Declare;
use warren_core::{BrokerError, Result};

use crate::channel::Channel;
use crate::connection::ConnCtx;

impl Channel {
    /// Resolves the "" queue name to the last queue declared on this channel.
    pub(crate) fn queue_name(&self, name: &str) -> Result<String> {
        if !name.is_empty() {
            return Ok(name.to_string());
        }
        self.last_queue
            .clone()
            .ok_or_else(|| BrokerError::not_found("no previously declared queue"))
    }

    pub(crate) fn queue_declare(&mut self, ctx: &ConnCtx, m: QueueDeclare) -> Result<()> {
        // Unlike the other queue methods, a passive declare of "" looks for a queue
        // named "" (RabbitMQ does not apply the shortcut here).
        let name = m.queue.to_string();
        if name.starts_with(crate::basic::REPLY_TO) {
            // As RabbitMQ, passive or not: the direct reply-to pseudo-queue always
            // "exists", and so does a reply token whose consumer is still there (from
            // any connection); other names under it do not.
            if name != crate::basic::REPLY_TO && !ctx.vhost.has_queue(&name) {
                return Err(BrokerError::no_queue(&ctx.vhost.name, &name));
            }
            if !m.nowait {
                self.send(
                    ctx,
                    QueueDeclareOk {
                        queue: m.queue,
                        message_count: 0,
                        consumer_count: 1,
                    },
                );
            }
            return Ok(());
        }
        let check = |name: &str, creating: bool| -> Result<()> {
            if m.passive {
                return Ok(());
            }
            if creating {
                if let Some(e) = ctx.broker.queue_refusal(&ctx.vhost, name) {
                    return Err(e);
                }
            }
            self.check_queue_declare(name, &m.arguments, creating)
        };
        let (q, messages, consumers) = ctx.vhost.declare_queue_checked(
            &Declare {
                name,
                passive: m.passive,
                durable: m.durable,
                exclusive: m.exclusive,
                auto_delete: m.auto_delete,
                arguments: m.arguments.clone(),
            },
            ctx.id,
            &check,
        )?;
        self.last_queue = Some(q.name.clone());
        if !m.nowait {
            self.send(
                ctx,
                QueueDeclareOk {
                    queue: q.name.as_str().into(),
                    message_count: messages as u32,
                    consumer_count: consumers as u32,
                },
            );
        }
        Ok(())
    }

    /// queue.declare: configure on the queue; when it is created with a dead-letter
    /// exchange, also read on the queue and write on that exchange.
    fn check_queue_declare(
        &self,
        name: &str,
        args: &warren_amqp_codec::FieldTable,
        creating: bool,
    ) -> Result<()> {
        let a = &self.access;
        if !creating {
            return a.check(Kind::Queue, name, Perm::Configure);
        }
        if let Some(dlx) = args.get("x-dead-letter-exchange").and_then(|v| v.as_str()) {
            a.check(Kind::Queue, name, Perm::Read)?;
            a.check(
                Kind::Exchange,
                warren_core::access::Access::exchange_resource(dlx),
                Perm::Write,
            )?;
        }
        Ok(())
    }

    pub(crate) fn queue_bind(&mut self, ctx: &ConnCtx, m: QueueBind) -> Result<()> {
        let queue = self.queue_name(&m.queue)?;
        let key = shortcut_key(&m.queue, &m.routing_key, &queue);
        self.check_bind(ctx, (Kind::Queue, &queue), &m.exchange, &key)?;
        ctx.vhost
            .bind_queue(&queue, &m.exchange, &key, &m.arguments, ctx.id)?;
        if !m.nowait {
            self.send(ctx, QueueBindOk {});
        }
        Ok(())
    }

    pub(crate) fn queue_unbind(&mut self, ctx: &ConnCtx, m: QueueUnbind) -> Result<()> {
        let queue = self.queue_name(&m.queue)?;
        let key = shortcut_key(&m.queue, &m.routing_key, &queue);
        self.check_bind(ctx, (Kind::Queue, &queue), &m.exchange, &key)?;
        ctx.vhost
            .unbind_queue(&queue, &m.exchange, &key, &m.arguments, ctx.id)?;
        self.send(ctx, QueueUnbindOk {});
        Ok(())
    }

    pub(crate) fn queue_purge(&mut self, ctx: &ConnCtx, m: QueuePurge) -> Result<()> {
        let queue = self.queue_name(&m.queue)?;
        self.access.check(Kind::Queue, &queue, Perm::Read)?;
        let n = ctx.vhost.purge_queue(&queue, ctx.id)?;
        if !m.nowait {
            self.send(
                ctx,
                QueuePurgeOk {
                    message_count: n as u32,
                },
            );
        }
        Ok(())
    }

    pub(crate) fn queue_delete(&mut self, ctx: &ConnCtx, m: QueueDelete) -> Result<()> {
        let queue = self.queue_name(&m.queue)?;
        self.access.check(Kind::Queue, &queue, Perm::Configure)?;
        let n = ctx
            .vhost
            .delete_queue(&queue, m.if_unused, m.if_empty, ctx.id)?;
        if !m.nowait {
            self.send(
                ctx,
                QueueDeleteOk {
                    message_count: n as u32,
                },
            );
        }
        Ok(())
    }
}

/// The spec's shortcut: an empty routing key with an empty queue name means the queue's
/// name.
fn shortcut_key(requested_queue: &str, routing_key: &str, queue: &str) -> String {
    if requested_queue.is_empty() && routing_key.is_empty() {
        queue.to_string()
    } else {
        routing_key.to_string()
    }
}
