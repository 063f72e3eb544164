//! Per-channel state and the dispatch of channel methods to their class's file.

use std::collections::HashMap;
use std::sync::Arc;

use warren_amqp_codec::methods::*;
use warren_amqp_codec::{Method, ShortStr};
use warren_core::access::Access;
use warren_core::{BrokerError, Consumer, Exchange, Queue, Result};

use crate::confirms::Confirms;
use crate::connection::ConnCtx;
use crate::delivery::{ChannelShared, Unacked};
use crate::publish::Content;
use crate::tx::Tx;

pub(crate) struct Channel {
    pub id: u16,
    pub shared: Arc<ChannelShared>,
    /// We sent channel.close and wait for close-ok; other frames are dropped.
    pub closing: bool,
    pub consumers: HashMap<ShortStr, (Arc<Consumer>, Arc<Queue>)>,
    pub content: Content,
    pub confirm: Option<Confirms>,
    pub tx: Option<Tx>,
    /// A tx.commit waiting for this commit epoch before its commit-ok.
    pub commit_waiting: Option<u64>,
    /// The private queue of this channel's direct reply-to consumer.
    pub reply_to: Option<String>,
    /// The user's permissions in the vhost, as they were when the channel opened.
    pub access: Arc<Access>,

    /// `basic.qos` global = false: the prefetch given to consumers created from now on.
    pub consumer_prefetch: u16,
    /// The queue most recently declared on this channel (the "" shortcut).
    pub last_queue: Option<String>,
    pub exchange_cache: Option<Arc<Exchange>>,
    pub route_buf: Vec<Arc<Queue>>,
}

impl Channel {
    pub fn new(id: u16, ctx: &ConnCtx) -> Channel {
        Channel {
            id,
            shared: Arc::new(ChannelShared::new(
                id,
                ctx.out.clone(),
                ctx.frame_max,
                ctx.caps.consumer_cancel_notify,
            )),
            closing: false,
            consumers: HashMap::new(),
            content: Content::Idle,
            confirm: None,
            tx: None,
            commit_waiting: None,
            reply_to: None,
            access: ctx.broker.access(&ctx.user.name, &ctx.vhost.name),

            consumer_prefetch: 0,
            last_queue: None,
            exchange_cache: None,
            route_buf: Vec::new(),
        }
    }

    pub fn send(&self, ctx: &ConnCtx, m: impl Into<Method>) {
        ctx.out.send(self.id, &m.into());
    }

    /// Handles a method on this (open) channel.
    pub fn method(&mut self, ctx: &ConnCtx, m: Method) -> Result<()> {
        self.forget_broker_cancelled();
        match m {
            Method::ChannelFlow(f) => {
                if !f.active {
                    return Err(BrokerError::not_implemented("active=false"));
                }
                self.send(ctx, ChannelFlowOk { active: true });
                Ok(())
            }
            Method::ChannelFlowOk(_) => Ok(()),
            Method::AccessRequest(_) => {
                self.send(ctx, AccessRequestOk { reserved_1: 1 });
                Ok(())
            }
            Method::ExchangeDeclare(m) => self.exchange_declare(ctx, m),
            Method::ExchangeDelete(m) => self.exchange_delete(ctx, m),
            Method::ExchangeBind(m) => self.exchange_bind(ctx, m),
            Method::ExchangeUnbind(m) => self.exchange_unbind(ctx, m),
            Method::QueueDeclare(m) => self.queue_declare(ctx, m),
            Method::QueueBind(m) => self.queue_bind(ctx, m),
            Method::QueueUnbind(m) => self.queue_unbind(ctx, m),
            Method::QueuePurge(m) => self.queue_purge(ctx, m),
            Method::QueueDelete(m) => self.queue_delete(ctx, m),
            Method::BasicQos(m) => self.basic_qos(ctx, m),
            Method::BasicConsume(m) => self.basic_consume(ctx, m),
            Method::BasicCancel(m) => self.basic_cancel(ctx, m),
            Method::BasicPublish(m) => self.basic_publish(ctx, m),
            Method::BasicGet(m) => self.basic_get(ctx, m),
            Method::BasicAck(m) => self.basic_ack(ctx, m.delivery_tag, m.multiple),
            Method::BasicReject(m) => self.basic_nack(ctx, m.delivery_tag, false, m.requeue),
            Method::BasicNack(m) => self.basic_nack(ctx, m.delivery_tag, m.multiple, m.requeue),
            Method::BasicRecoverAsync(m) => self.basic_recover(ctx, m.requeue, false),
            Method::BasicRecover(m) => self.basic_recover(ctx, m.requeue, true),
            Method::ConfirmSelect(m) => self.confirm_select(ctx, m),
            Method::TxSelect(_) => self.tx_select(ctx),
            Method::TxCommit(_) => self.tx_commit(ctx),
            Method::TxRollback(_) => self.tx_rollback(ctx),
            other => Err(BrokerError::command_invalid(format!(
                "unexpected method '{}' on channel {}",
                other.name(),
                self.id
            ))),
        }
    }

    fn confirm_select(&mut self, ctx: &ConnCtx, m: ConfirmSelect) -> Result<()> {
        if self.tx.is_some() {
            return Err(BrokerError::precondition_failed(
                "cannot switch from tx to confirm mode",
            ));
        }
        if self.confirm.is_none() {
            self.confirm = Some(Confirms::new());
        }
        if !m.nowait {
            self.send(ctx, ConfirmSelectOk {});
        }
        Ok(())
    }

    /// Sends the confirms that can go out, given the last completed commit epoch.
    pub fn flush_confirms(&mut self, ctx: &ConnCtx, done: u64) {
        let Some(c) = self.confirm.as_mut() else {
            return;
        };
        let id = self.id;
        ctx.out.write_deferred(|b| {
            c.flush(done, |m| warren_amqp_codec::frame::write_method(b, id, &m));
        });
    }

    /// Forgets consumers whose queue was deleted under them.
    pub fn forget_broker_cancelled(&mut self) {
        let gone = std::mem::take(&mut self.shared.state.lock().cancelled_by_broker);
        for tag in gone {
            if let Some((_, q)) = self.consumers.remove(&tag) {
                self.shared.out.remove_consumed_queue(&q);
            }
        }
    }

    /// Tears the channel down: no more deliveries, consumers cancelled, unacked messages
    /// (and a pending transaction's acks) back to their queues.
    pub fn close(&mut self, ctx: &ConnCtx) {
        let unacked: Vec<Unacked> = {
            let mut st = self.shared.state.lock();
            st.closed = true;
            st.unacked.drain(..).collect()
        };
        for (tag, (_, q)) in self.consumers.drain() {
            ctx.out.remove_consumed_queue(&q);
            ctx.vhost.cancel(&q, ctx.id, &tag);
        }
        let mut all = unacked;
        if let Some(tx) = self.tx.take() {
            all.extend(tx.into_pending_acks());
        }
        all.sort_by_key(|u| u.tag);
        settle_all(all, Outcome::Requeue);
        self.content = Content::Idle;
    }
}

/// What becomes of settled deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ack,
    /// Rejected without requeue: dead-lettered, or dropped.
    Reject,
    /// Back to the queue, marked redelivered.
    Requeue,
}

/// Settles deliveries with their queues, one batch per queue, in tag order, giving
/// consumer credit back first so the queues can dispatch into the room just made.
pub(crate) fn settle_all(done: Vec<Unacked>, outcome: Outcome) {
    let mut by_queue: Vec<(Arc<Queue>, Vec<warren_core::Envelope>)> = Vec::new();
    for u in done {
        if let Some(c) = &u.consumer {
            c.settled(1);
        }
        match by_queue.last_mut() {
            Some((q, v)) if Arc::ptr_eq(q, &u.queue) => v.push(u.env),
            _ => match by_queue.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
                Some((_, v)) => v.push(u.env),
                None => by_queue.push((u.queue, vec![u.env])),
            },
        }
    }
    for (q, envs) in by_queue {
        match outcome {
            Outcome::Ack => q.settle(&envs, true),
            Outcome::Reject => q.reject(envs),
            Outcome::Requeue => q.requeue(envs),
        }
    }
}
