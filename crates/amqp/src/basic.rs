//! The consuming side of the basic class: qos, consume, cancel, get, ack, reject, nack,
//! recover. (Publishing is in `publish`.)

use std::sync::Arc;

use warren_amqp_codec::frame::{write_body, write_content_header, write_method};
use warren_amqp_codec::methods::*;
use warren_amqp_codec::ShortStr;
use warren_core::access::{Kind, Perm};
use warren_core::util::generated_name;
use warren_core::{BrokerError, Consumer, Credit, Queue, Result};

use crate::channel::{settle_all, Channel, Outcome};
use crate::connection::ConnCtx;
use crate::delivery::Unacked;

/// The direct reply-to pseudo-queue.
pub(crate) const REPLY_TO: &str = "amq.rabbitmq.reply-to";

impl Channel {
    pub(crate) fn basic_qos(&mut self, ctx: &ConnCtx, m: BasicQos) -> Result<()> {
        if m.prefetch_size != 0 {
            return Err(BrokerError::not_implemented(format!(
                "prefetch_size!=0 ({})",
                m.prefetch_size
            )));
        }
        if m.global {
            self.shared.credit.set_limit(m.prefetch_count as u32);
            self.kick_consumed_queues();
        } else {
            // As RabbitMQ: a per-consumer qos also lifts any channel-wide limit.
            self.consumer_prefetch = m.prefetch_count;
            if self.shared.credit.limit() != 0 {
                self.shared.credit.set_limit(0);
                self.kick_consumed_queues();
            }
        }
        self.send(ctx, BasicQosOk {});
        Ok(())
    }

    fn kick_consumed_queues(&self) {
        let mut seen: Vec<&Arc<Queue>> = Vec::new();
        for (_, q) in self.consumers.values() {
            if !seen.iter().any(|x| Arc::ptr_eq(x, q)) {
                seen.push(q);
                q.dispatch();
            }
        }
    }

    pub(crate) fn basic_consume(&mut self, ctx: &ConnCtx, m: BasicConsume) -> Result<()> {
        let tag: ShortStr = if m.consumer_tag.is_empty() {
            generated_name("amq.ctag").into()
        } else {
            m.consumer_tag.clone()
        };
        if self.consumers.contains_key(&tag) {
            return Err(BrokerError::not_allowed(format!(
                "attempt to reuse consumer tag '{tag}'"
            )));
        }
        let queue = if m.queue.as_str() == REPLY_TO {
            self.reply_consumer(ctx, &m)?
        } else {
            let queue_name = self.queue_name(&m.queue)?;
            self.access.check(Kind::Queue, &queue_name, Perm::Read)?;
            ctx.vhost.queue(&queue_name, ctx.id)?
        };
        let priority = match m.arguments.get("x-priority") {
            None => 0,
            Some(v) => match v.as_i64() {
                Some(p) => p,
                None => {
                    return Err(BrokerError::precondition_failed(format!(
                        "invalid arg 'x-priority' for queue '{}' in vhost '{}': \"expected integer, got {}\"",
                        queue.name,
                        queue.vhost,
                        v.type_name()
                    )))
                }
            },
        };
        let consumer = Arc::new(Consumer {
            tag: tag.clone(),
            connection: ctx.id,
            channel: self.id,
            no_ack: m.no_ack,
            exclusive: m.exclusive,
            priority,
            arguments: m.arguments.clone(),
            credit: Credit::new(self.consumer_prefetch as u32),
            channel_credit: self.shared.credit.clone(),
            sink: self.shared.clone(),
        });
        ctx.vhost.consume(&queue, consumer.clone())?;
        // consume-ok must reach the client before the first delivery: send it, then let
        // the queue dispatch.
        if !m.nowait {
            self.send(
                ctx,
                BasicConsumeOk {
                    consumer_tag: tag.clone(),
                },
            );
        }
        ctx.out.add_consumed_queue(queue.clone());
        self.consumers.insert(tag, (consumer, queue.clone()));
        queue.dispatch();
        Ok(())
    }

    /// Direct reply-to: consuming from the pseudo-queue `amq.rabbitmq.reply-to` makes a
    /// private queue named `amq.rabbitmq.reply-to.<token>` that only this channel
    /// consumes, without acks; requests published with `reply_to` =
    /// `amq.rabbitmq.reply-to` carry its name instead, and replies routed to it by the
    /// default exchange arrive here. It goes with the consumer (or the connection).
    fn reply_consumer(&mut self, ctx: &ConnCtx, m: &BasicConsume) -> Result<Arc<Queue>> {
        if !m.no_ack {
            return Err(BrokerError::precondition_failed(
                "reply consumer cannot acknowledge",
            ));
        }
        if self.reply_to.is_some() {
            return Err(BrokerError::precondition_failed(
                "reply consumer already set",
            ));
        }
        let name = format!(
            "{REPLY_TO}.{}",
            generated_name("g").trim_start_matches("g-")
        );
        let q = ctx.vhost.declare_reply_queue(&name, ctx.id)?;
        self.reply_to = Some(name);
        Ok(q)
    }

    pub(crate) fn basic_cancel(&mut self, ctx: &ConnCtx, m: BasicCancel) -> Result<()> {
        if let Some((_, q)) = self.consumers.remove(&m.consumer_tag) {
            ctx.out.remove_consumed_queue(&q);
            ctx.vhost.cancel(&q, ctx.id, &m.consumer_tag);
            if self.reply_to.as_deref() == Some(q.name.as_str()) {
                self.reply_to = None;
            }
        }
        if !m.nowait {
            self.send(
                ctx,
                BasicCancelOk {
                    consumer_tag: m.consumer_tag,
                },
            );
        }
        Ok(())
    }

    pub(crate) fn basic_get(&mut self, ctx: &ConnCtx, m: BasicGet) -> Result<()> {
        let queue_name = self.queue_name(&m.queue)?;
        self.access.check(Kind::Queue, &queue_name, Perm::Read)?;
        let queue = ctx.vhost.queue(&queue_name, ctx.id)?;
        queue.check_not_stream("basic.get")?;
        let Some((env, left)) = queue.get(m.no_ack) else {
            self.send(
                ctx,
                BasicGetEmpty {
                    reserved_1: Default::default(),
                },
            );
            return Ok(());
        };
        let mut st = self.shared.state.lock();
        st.next_tag += 1;
        let tag = st.next_tag;
        let msg = &env.msg;
        ctx.out.write_deferred(|b| {
            write_method(
                b,
                self.id,
                &BasicGetOk {
                    delivery_tag: tag,
                    redelivered: env.redelivered,
                    exchange: msg.exchange.clone(),
                    routing_key: msg.routing_key.clone(),
                    message_count: left as u32,
                }
                .into(),
            );
            write_content_header(b, self.id, 60, msg.body.len() as u64, &msg.properties);
            write_body(b, self.id, &msg.body, ctx.frame_max);
        });
        if !m.no_ack {
            st.unacked.push_back(Unacked {
                tag,
                queue,
                env,
                consumer: None,
                delivered_at: warren_core::scheduler::coarse_monotonic_ms(),
            });
        }
        Ok(())
    }

    fn take_unacked(&self, tag: u64, multiple: bool) -> Result<Vec<Unacked>> {
        self.shared
            .state
            .lock()
            .take(tag, multiple)
            .ok_or_else(|| BrokerError::precondition_failed(format!("unknown delivery tag {tag}")))
    }

    pub(crate) fn basic_ack(&mut self, _ctx: &ConnCtx, tag: u64, multiple: bool) -> Result<()> {
        let acked = self.take_unacked(tag, multiple)?;
        if let Some(tx) = self.tx.as_mut() {
            tx.acks.push((acked, Outcome::Ack));
            return Ok(());
        }
        self.settle(acked, Outcome::Ack);
        Ok(())
    }

    pub(crate) fn basic_nack(
        &mut self,
        _ctx: &ConnCtx,
        tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> Result<()> {
        let taken = self.take_unacked(tag, multiple)?;
        if let Some(u) = taken.iter().find(|u| u.queue.is_stream()) {
            // RabbitMQ 3.10 closes the connection; what was taken goes with it.
            u.queue.check_not_stream("basic.nack and basic.reject")?;
        }
        let outcome = if requeue {
            Outcome::Requeue
        } else {
            Outcome::Reject
        };
        if let Some(tx) = self.tx.as_mut() {
            tx.acks.push((taken, outcome));
            return Ok(());
        }
        self.settle(taken, outcome);
        Ok(())
    }

    /// Settles deliveries, then lets queues held back by a channel-wide limit dispatch.
    pub(crate) fn settle(&self, done: Vec<Unacked>, outcome: Outcome) {
        settle_all(done, outcome);
        if self.shared.credit.limit() != 0 {
            self.kick_consumed_queues();
        }
    }

    pub(crate) fn basic_recover(&mut self, ctx: &ConnCtx, requeue: bool, sync: bool) -> Result<()> {
        if !requeue {
            return Err(BrokerError::not_implemented("requeue=false"));
        }
        let all: Vec<Unacked> = self.shared.state.lock().unacked.drain(..).collect();
        self.settle(all, Outcome::Requeue);
        if sync {
            self.send(ctx, BasicRecoverOk {});
        }
        Ok(())
    }
}
