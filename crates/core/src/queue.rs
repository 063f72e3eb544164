//! Queues: the state machine that owns ready messages, consumers and dispatch.
//!
//! Every change (enqueue, deliver, settle, requeue, purge, delete) is a method taking the
//! queue's lock once and leaving the state consistent, so that the same operations can
//! later be replicated as commands. Dispatch runs inside the operation that made it
//! possible (a publish, an ack that freed credit, a new consumer), on the caller's task:
//! there is no queue task to hop through.
//!
//! Messages that leave a queue without being consumed (expired, dropped by a length
//! limit, rejected) are collected under the lock and dead-lettered after it is released
//! ([`Queue::unlock`]), so dead-lettering into the same queue cannot deadlock.
//!
//! Lock order: queue lock, then the delivery sink's locks, then the scheduler's heap.
//! Sinks never call back into a queue while holding their own locks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, MutexGuard};
use warren_amqp_codec::FieldTable;
use warren_store::{Envelope, Loc, Message, QueueStore, SeqNo};

use crate::consumer::Consumer;
use crate::deadletter::{DeadLetterTarget, Reason};
use crate::error::{BrokerError, Result};
use crate::scheduler::{now_ms, Scheduler};
use crate::settings::{Overflow, QueueSettings};
use crate::stream::{StreamInfo, StreamState};
use crate::vhost::VHost;
use crate::ConnectionId;

/// Monotonic counters for management and metrics.
#[derive(Debug, Default)]
pub struct QueueCounters {
    pub published: AtomicU64,
    pub delivered: AtomicU64,
    pub delivered_no_ack: AtomicU64,
    pub get: AtomicU64,
    pub get_no_ack: AtomicU64,
    pub acked: AtomicU64,
    pub redelivered: AtomicU64,
    pub get_empty: AtomicU64,
}

pub struct Queue {
    pub name: String,
    pub vhost: String,
    pub durable: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    pub counters: QueueCounters,
    pub(crate) vhost_ref: Weak<VHost>,
    scheduler: Arc<Scheduler>,
    inner: Mutex<Inner>,
    deleted: AtomicBool,
    /// This queue's consumer timeout (ms; 0: the broker's), readable without the lock.
    consumer_timeout: AtomicU64,
    /// A stream queue (`x-queue-type: stream`): its state is in `Inner::stream`.
    stream: bool,
}

struct Inner {
    store: Box<dyn QueueStore>,
    /// From the arguments and the applicable policy; replaced when policies change.
    settings: QueueSettings,
    /// When the queue was last used (ms), for `x-expires`.
    last_used: u64,
    consumers: Vec<Arc<Consumer>>,
    /// Round-robin position: the consumer after the last one served.
    cursor: usize,
    /// Highest consumer priority present (lets dispatch stop searching early).
    top_priority: i64,
    unacked: u64,
    had_consumers: bool,
    /// Ready messages whose own TTL is shorter than the queue's: (expires_at, seq, where).
    /// Messages that expire by the queue's TTL do so in publish order, so the head check
    /// covers them without an entry here.
    expiries: BinaryHeap<Reverse<(u64, SeqNo, Loc)>>,
    /// The deadline the scheduler will wake us at, if any.
    wake_at: Option<u64>,
    /// Whether any message may carry an expiry (a queue TTL, or a per-message one seen):
    /// queues without spare the clock reads on the hot path.
    has_ttl: bool,
    /// Messages that left without being consumed, to dead-letter after unlocking.
    expired: Vec<Envelope>,
    dropped: Vec<Envelope>,
    limited: Vec<Envelope>,
    dedup: crate::dedup::DedupCache,
    /// A stream queue's log and readers; its `store` then stays empty.
    stream: Option<Box<StreamState>>,
}

/// Whether a queue took a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Taken. `sync` is the commit epoch after which it is on disk, for a persistent
    /// message in a durable queue; a publisher confirm waits for it.
    Accepted { sync: Option<u64> },
    /// Refused by `x-overflow: reject-publish` (or `reject-publish-dlx`), or because
    /// storage failed.
    Rejected,
}

/// What removing a consumer means for the queue.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsumerRemoved {
    NotFound,
    Removed,
    /// The last consumer of an auto-delete queue left: delete the queue.
    RemovedAutoDelete,
}

/// What a queue is, as declared.
pub(crate) struct QueueSpec {
    pub vhost: String,
    pub name: String,
    pub durable: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    /// The definition of the policy that applies, if any.
    pub policy: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A snapshot of a queue's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueStats {
    pub ready: u64,
    pub ready_bytes: u64,
    pub unacked: u64,
    pub consumers: u64,
}

impl Queue {
    pub(crate) fn new(
        spec: QueueSpec,
        store: Box<dyn QueueStore>,
        stream: Option<warren_store::stream::StreamLog>,
        vhost_ref: Weak<VHost>,
        scheduler: Arc<Scheduler>,
    ) -> Queue {
        let QueueSpec {
            vhost,
            name,
            durable,
            exclusive_owner,
            auto_delete,
            arguments,
            policy,
        } = spec;
        let settings = QueueSettings::resolve(&arguments, policy.as_ref());
        let is_stream = stream.is_some();
        let has_ttl = settings.message_ttl.is_some();
        let consumer_timeout = settings.consumer_timeout.unwrap_or(0);
        Queue {
            name,
            vhost,
            durable,
            exclusive_owner,
            auto_delete,
            vhost_ref,
            scheduler,
            arguments,
            counters: QueueCounters::default(),
            inner: Mutex::new(Inner {
                store,
                settings,
                last_used: now_ms(),
                consumers: Vec::new(),
                cursor: 0,
                top_priority: i64::MIN,
                unacked: 0,
                had_consumers: false,
                expiries: BinaryHeap::new(),
                wake_at: None,
                has_ttl,
                expired: Vec::new(),
                dropped: Vec::new(),
                limited: Vec::new(),
                dedup: Default::default(),
                stream: stream.map(|log| Box::new(StreamState::new(log))),
            }),
            deleted: AtomicBool::new(false),
            consumer_timeout: AtomicU64::new(consumer_timeout),
            stream: is_stream,
        }
    }

    /// How long a delivery from this queue may stay unacknowledged, if the queue says
    /// (`x-consumer-timeout`, or a `consumer-timeout` policy); otherwise the broker's.
    pub fn consumer_timeout(&self) -> Option<u64> {
        match self.consumer_timeout.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn is_exclusive(&self) -> bool {
        self.exclusive_owner.is_some()
    }

    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// Refuses an operation streams do not have (basic.get, purge, nack/reject), with
    /// RabbitMQ's connection error.
    pub fn check_not_stream(&self, what: &str) -> Result<()> {
        if self.stream {
            return Err(crate::stream::unsupported(what, &self.name, &self.vhost));
        }
        Ok(())
    }

    /// A stream queue's log and readers, for management.
    pub fn stream_info(&self) -> Option<StreamInfo> {
        self.inner.lock().stream.as_ref().map(|s| s.info())
    }

    /// Appends to a stream and sends the message to the readers that can take it.
    fn publish_stream(
        self: &Arc<Self>,
        mut inner: MutexGuard<'_, Inner>,
        msg: Arc<Message>,
    ) -> Enqueued {
        let now = now_ms();
        let Inner {
            stream, unacked, ..
        } = &mut *inner;
        let st = stream.as_mut().expect("a stream");
        let stamped = Arc::new(st.stamp(&msg));
        match st.log.append(&stamped, now) {
            Ok(a) => {
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                let sent = st.dispatch_appended(self, &stamped, &a);
                *unacked += sent;
                self.counters.delivered.fetch_add(sent, Ordering::Relaxed);
                Enqueued::Accepted { sync: a.sync }
            }
            Err(e) => {
                tracing::error!(queue = %self.name, vhost = %self.vhost, error = %e, "cannot append to a stream; refusing the message");
                Enqueued::Rejected
            }
        }
    }

    /// Releases the lock, then dead-letters what the operation expired or dropped.
    fn unlock(self: &Arc<Self>, mut inner: MutexGuard<'_, Inner>) {
        if inner.expired.is_empty() && inner.dropped.is_empty() && inner.limited.is_empty() {
            return;
        }
        let expired = std::mem::take(&mut inner.expired);
        let dropped = std::mem::take(&mut inner.dropped);
        let limited = std::mem::take(&mut inner.limited);
        let target = inner.settings.dead_letter.clone();
        drop(inner);
        self.dead_letter(&target, expired, Reason::Expired);
        self.dead_letter(&target, dropped, Reason::Maxlen);
        self.dead_letter(&target, limited, Reason::DeliveryLimit);
    }

    /// Enqueues a routed message and dispatches what it can. A queue over its length
    /// limit either drops from its head (`drop-head`, the default) or refuses the
    /// message (`reject-publish`): then publishers in confirm mode get a nack.
    pub fn publish(self: &Arc<Self>, msg: Arc<Message>) -> Enqueued {
        let mut inner = self.inner.lock();
        if self.is_deleted() {
            return Enqueued::Accepted { sync: None };
        }
        if self.stream {
            return self.publish_stream(inner, msg);
        }
        let overflow = inner.settings.overflow;
        if overflow != Overflow::DropHead
            && inner.settings.is_full(
                inner.store.ready_count(),
                inner.store.ready_bytes(),
                msg.size(),
            )
        {
            let target = inner.settings.dead_letter.clone();
            drop(inner);
            if overflow == Overflow::RejectPublishDlx {
                let env = Envelope {
                    seq: 0,
                    msg,
                    redelivered: false,
                    expires_at: None,
                    loc: Loc::default(),
                    delivery_count: 0,
                };
                self.dead_letter(&target, vec![env], Reason::Maxlen);
            }
            return Enqueued::Rejected;
        }
        // The clock is read only when something here depends on it: a system call's
        // worth of time per publish on the hottest path otherwise.
        let timed = inner.has_ttl
            || msg.ttl.is_some()
            || inner.settings.message_ttl.is_some()
            || inner.settings.dedup.is_some();
        let now = if timed { now_ms() } else { 0 };
        let dedup_key = match inner.settings.dedup {
            Some(cfg) => crate::dedup::key(&msg).map(|k| (k, cfg)),
            None => None,
        };
        if let Some((key, cfg)) = &dedup_key {
            if inner.dedup.check_and_insert(key.clone(), cfg, now) {
                // A duplicate: dropped, and still acked to a confirming publisher.
                return Enqueued::Accepted { sync: None };
            }
        }
        let queue_ttl = inner.settings.message_ttl;
        let expires_at = match (queue_ttl, msg.ttl) {
            (Some(q), Some(m)) => Some(now.saturating_add(q.min(m))),
            (q, m) => q.or(m).map(|t| now.saturating_add(t)),
        };
        // A message whose own TTL is shorter than the queue's can expire out of order.
        let out_of_order = msg.ttl.is_some_and(|m| queue_ttl.is_none_or(|q| m < q));
        let pushed = match inner.store.push(msg, expires_at) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(queue = %self.name, vhost = %self.vhost, error = %e, "cannot store a message; refusing it");
                if let Some((k, _)) = &dedup_key {
                    inner.dedup.forget(k, u64::MAX);
                }
                return Enqueued::Rejected;
            }
        };
        if let Some((k, _)) = &dedup_key {
            inner.dedup.own(k, pushed.seq);
        }
        if let Some(at) = expires_at {
            inner.has_ttl = true;
            if out_of_order {
                inner.expiries.push(Reverse((at, pushed.seq, pushed.loc)));
            }
        }
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        // As RabbitMQ, a consumer that can take the message at once gets it whatever its
        // TTL (so a TTL of 0 reaches a waiting consumer): dispatch as of just before now.
        self.dispatch_at(&mut inner, now.saturating_sub(1));
        if overflow == Overflow::DropHead {
            Self::drop_over_limit(&mut inner);
        }
        if expires_at.is_some() {
            // A TTL of 0 expires at once unless a consumer took the message above.
            self.expire_locked(&mut inner, now_ms());
        }
        self.unlock(inner);
        Enqueued::Accepted { sync: pushed.sync }
    }

    /// `drop-head`: drops (and dead-letters) from the head until within the limits.
    fn drop_over_limit(inner: &mut Inner) {
        while inner
            .settings
            .is_over(inner.store.ready_count(), inner.store.ready_bytes())
        {
            let Some(env) = inner.store.pop() else { break };
            inner.settle(&env);
            inner.dropped.push(env);
        }
    }

    /// What the queue does now (its arguments, with the applicable policy).
    pub fn settings(&self) -> QueueSettings {
        self.inner.lock().settings.clone()
    }

    /// Applies new settings (a policy was set, changed or cleared): limits and TTLs take
    /// effect on the messages already in the queue.
    pub(crate) fn apply_settings(self: &Arc<Self>, settings: QueueSettings) {
        let mut inner = self.inner.lock();
        if inner.settings == settings {
            return;
        }
        if let Some(st) = inner.stream.as_mut() {
            st.log.set_retention(settings.stream_retention);
            st.log.set_segment_bytes(settings.stream_segment);
        }
        inner.has_ttl |= settings.message_ttl.is_some();
        self.consumer_timeout
            .store(settings.consumer_timeout.unwrap_or(0), Ordering::Relaxed);
        inner.settings = settings;
        if inner.settings.overflow == Overflow::DropHead {
            Self::drop_over_limit(&mut inner);
        }
        self.touch_locked(&mut inner);
        self.dispatch_locked(&mut inner);
        self.expire_locked(&mut inner, now_ms());
        self.unlock(inner);
    }

    /// Marks the queue used now, for `x-expires`, and schedules the expiry check.
    fn touch_locked(self: &Arc<Self>, inner: &mut Inner) {
        inner.last_used = now_ms();
        if let Some(exp) = inner.settings.expires {
            let at = inner.last_used.saturating_add(exp);
            if inner.wake_at.is_none_or(|w| at < w) {
                inner.wake_at = Some(at);
                self.scheduler.schedule(at, self);
            }
        }
    }

    /// Marks the queue used (a redeclaration, a `basic.get`), for `x-expires`.
    pub fn touch(self: &Arc<Self>) {
        let mut inner = self.inner.lock();
        self.touch_locked(&mut inner);
    }

    /// Arms the timers of a new or recovered queue: `x-expires`, and the expiries of
    /// messages the store recovered.
    pub(crate) fn after_recovery(self: &Arc<Self>) {
        let mut inner = self.inner.lock();
        // x-expires counts from creation (or from the restart, for a recovered queue).
        self.touch_locked(&mut inner);
        let recovered = inner.store.recovered_expiries();
        if recovered.is_empty() {
            return;
        }
        inner.has_ttl = true;
        for (at, seq, loc) in recovered {
            inner.expiries.push(Reverse((at, seq, loc)));
        }
        self.expire_locked(&mut inner, now_ms());
        self.unlock(inner);
    }

    /// Called by the scheduler at a deadline this queue asked for.
    pub fn expire_due(self: &Arc<Self>, now: u64) {
        let mut inner = self.inner.lock();
        inner.wake_at = None;
        self.expire_locked(&mut inner, now);
        let unused_until = inner
            .settings
            .expires
            .map(|e| inner.last_used.saturating_add(e));
        let idle = inner.consumers.is_empty();
        if let (Some(at), true) = (unused_until, idle) {
            if at <= now {
                self.unlock(inner);
                // `x-expires`: unused for its whole period, the queue goes.
                if let Some(v) = self.vhost_ref.upgrade() {
                    v.expire_queue(self);
                }
                return;
            }
            if inner.wake_at.is_none_or(|w| at < w) {
                inner.wake_at = Some(at);
                self.scheduler.schedule(at, self);
            }
        }
        self.unlock(inner);
    }

    /// Whether the queue is unused past its `x-expires` (checked again under the vhost's
    /// topology lock before deleting).
    pub(crate) fn is_expired(&self, now: u64) -> bool {
        let inner = self.inner.lock();
        inner.consumers.is_empty()
            && inner
                .settings
                .expires
                .is_some_and(|e| inner.last_used.saturating_add(e) <= now)
    }

    /// Moves every ready message whose TTL has passed to `expired`, wherever it is in
    /// the queue, and asks the scheduler to come back for the next one.
    fn expire_locked(self: &Arc<Self>, inner: &mut Inner, now: u64) {
        while let Some(&Reverse((at, seq, loc))) = inner.expiries.peek() {
            if at > now {
                break;
            }
            inner.expiries.pop();
            if let Some(env) = inner.store.remove(seq, loc) {
                inner.settle(&env);
                inner.expired.push(env);
            }
        }
        Self::expire_head(inner, now);
        let head = inner.store.peek_expiry().flatten();
        let next = [inner.expiries.peek().map(|Reverse((at, ..))| *at), head]
            .into_iter()
            .flatten()
            .min();
        if let Some(at) = next {
            if inner.wake_at.is_none_or(|w| at < w) {
                inner.wake_at = Some(at);
                self.scheduler.schedule(at, self);
            }
        }
    }

    /// Expires what sits at the head of the queue, so dispatch and get never hand out a
    /// message whose TTL has passed even if the scheduler has not run yet.
    fn expire_head(inner: &mut Inner, now: u64) {
        if !inner.has_ttl {
            return;
        }
        while inner
            .store
            .peek_expiry()
            .is_some_and(|e| e.is_some_and(|t| t <= now))
        {
            let env = inner.store.pop().expect("peeked");
            inner.settle(&env);
            inner.expired.push(env);
        }
    }

    pub fn dead_letter_target(&self) -> Option<DeadLetterTarget> {
        self.inner.lock().settings.dead_letter.clone()
    }

    /// Outstanding deliveries rejected by the client without requeue: settled here and
    /// dead-lettered.
    pub fn reject(self: &Arc<Self>, envs: Vec<Envelope>) {
        if self.stream {
            // Nothing leaves a stream: a reject only frees the consumer's credit.
            self.requeue(envs);
            return;
        }
        let target = {
            let mut inner = self.inner.lock();
            for e in &envs {
                inner.settle(e);
            }
            inner.unacked = inner.unacked.saturating_sub(envs.len() as u64);
            self.dispatch_locked(&mut inner);
            let t = inner.settings.dead_letter.clone();
            self.unlock(inner);
            t
        };
        self.dead_letter(&target, envs, Reason::Rejected);
    }

    /// Hands ready messages to consumers with credit, round-robin within the highest
    /// consumer priority that can take one.
    pub fn dispatch(self: &Arc<Self>) {
        let mut inner = self.inner.lock();
        self.dispatch_locked(&mut inner);
        self.unlock(inner);
    }

    fn dispatch_locked(self: &Arc<Self>, inner: &mut Inner) {
        if inner.consumers.is_empty() {
            return;
        }
        let now = if inner.has_ttl { now_ms() } else { 0 };
        self.dispatch_at(inner, now);
    }

    /// Dispatch, treating messages that expire after `now` (ms) as alive.
    fn dispatch_at(self: &Arc<Self>, inner: &mut Inner, now: u64) {
        if inner.consumers.is_empty() {
            return;
        }
        if let Some(st) = inner.stream.as_mut() {
            let sent = st.dispatch(self);
            inner.unacked += sent;
            self.counters.delivered.fetch_add(sent, Ordering::Relaxed);
            return;
        }
        Self::expire_head(inner, now);
        let Inner {
            store,
            consumers,
            cursor,
            top_priority,
            unacked,
            expired,
            has_ttl,
            settings,
            dedup,
            ..
        } = inner;
        // Single active consumer: only the first registered consumer gets messages; the
        // next one takes over when it goes.
        let n = if settings.single_active_consumer {
            *cursor = 0;
            1
        } else {
            consumers.len()
        };
        while store.ready_count() > 0 {
            let mut best: Option<(usize, i64)> = None;
            for off in 0..n {
                let i = (*cursor + off) % n;
                let c = &consumers[i];
                if best.is_none_or(|(_, p)| c.priority > p) && c.can_take() {
                    best = Some((i, c.priority));
                    if c.priority >= *top_priority {
                        break;
                    }
                }
            }
            let Some((i, _)) = best else { break };
            let c = &consumers[i];
            let Some(mut env) = store.pop() else { break };
            if *has_ttl && env.expires_at.is_some_and(|t| t <= now) {
                settle_one(store, dedup, &env);
                expired.push(env);
                continue;
            }
            let redelivered = env.redelivered;
            if settings.count_deliveries {
                mark_delivery_count(&mut env);
            }
            if !c.no_ack {
                c.credit.take();
                c.channel_credit.take();
            }
            // A no-ack delivery is settled once the sink has it; the envelope itself
            // moves into the sink.
            let settle_after = c.no_ack.then(|| env.clone());
            match c.sink.deliver(c, self, env) {
                Ok(()) => {
                    if let Some(done) = settle_after {
                        settle_one(store, dedup, &done);
                        self.counters
                            .delivered_no_ack
                            .fetch_add(1, Ordering::Relaxed);
                    } else {
                        *unacked += 1;
                        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    if redelivered {
                        self.counters.redelivered.fetch_add(1, Ordering::Relaxed);
                    }
                    *cursor = i + 1;
                }
                Err(env) => {
                    c.settled(1);
                    store.requeue(env);
                    // The sink is closing; its consumers are about to be removed.
                    break;
                }
            }
        }
    }

    /// `basic.get`: takes the next ready message. Returns it with the number of messages
    /// left ready.
    pub fn get(self: &Arc<Self>, no_ack: bool) -> Option<(Envelope, u64)> {
        if self.stream {
            // Adapters refuse basic.get on streams before coming here.
            return None;
        }
        let mut inner = self.inner.lock();
        self.touch_locked(&mut inner);
        let now = if inner.has_ttl { now_ms() } else { 0 };
        Self::expire_head(&mut inner, now);
        let Some(mut env) = inner.store.pop() else {
            self.counters.get_empty.fetch_add(1, Ordering::Relaxed);
            self.unlock(inner);
            return None;
        };
        if inner.settings.count_deliveries {
            mark_delivery_count(&mut env);
        }
        if no_ack {
            inner.settle(&env);
            self.counters.get_no_ack.fetch_add(1, Ordering::Relaxed);
        } else {
            inner.unacked += 1;
            self.counters.get.fetch_add(1, Ordering::Relaxed);
        }
        if env.redelivered {
            self.counters.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let left = inner.store.ready_count();
        self.unlock(inner);
        Some((env, left))
    }

    /// Outstanding deliveries are done with (acked, or rejected without requeue); the
    /// credit that freed is used to dispatch more.
    pub fn settle(self: &Arc<Self>, envs: &[Envelope], acked: bool) {
        let mut inner = self.inner.lock();
        if !self.stream {
            for e in envs {
                inner.settle(e);
            }
        }
        inner.unacked = inner.unacked.saturating_sub(envs.len() as u64);
        if acked {
            self.counters
                .acked
                .fetch_add(envs.len() as u64, Ordering::Relaxed);
        }
        self.dispatch_locked(&mut inner);
        self.unlock(inner);
    }

    /// Outstanding deliveries go back to their places, marked redelivered, and are
    /// dispatched again.
    pub fn requeue(self: &Arc<Self>, envs: impl IntoIterator<Item = Envelope>) {
        let mut inner = self.inner.lock();
        if self.stream {
            // Nothing goes back into a stream: the consumer's credit (given back by the
            // adapter) is all that returns.
            let n = envs.into_iter().count() as u64;
            inner.unacked = inner.unacked.saturating_sub(n);
            self.dispatch_locked(&mut inner);
            return;
        }
        let deleted = self.is_deleted();
        let mut any_ttl = false;
        let limit = inner.settings.delivery_limit;
        for mut env in envs {
            inner.unacked = inner.unacked.saturating_sub(1);
            env.delivery_count += 1;
            if deleted {
                inner.settle(&env);
            } else if limit.is_some_and(|l| env.delivery_count as u64 > l) {
                // Returned more often than x-delivery-limit allows: dead-lettered.
                inner.settle(&env);
                inner.limited.push(env);
            } else {
                env.redelivered = true;
                if let Some(at) = env.expires_at {
                    // A requeued message sits ahead of the others whatever its expiry.
                    inner.expiries.push(Reverse((at, env.seq, env.loc)));
                    any_ttl = true;
                }
                inner.store.requeue(env);
            }
        }
        if !deleted {
            self.dispatch_locked(&mut inner);
            // Requeued messages went back to the head; a length limit trims from there.
            if inner.settings.overflow == Overflow::DropHead {
                Self::drop_over_limit(&mut inner);
            }
            if any_ttl {
                self.expire_locked(&mut inner, now_ms());
            }
        }
        self.unlock(inner);
    }

    pub(crate) fn add_consumer(self: &Arc<Self>, consumer: Arc<Consumer>) -> Result<()> {
        let mut inner = self.inner.lock();
        if self.is_deleted() {
            return Err(BrokerError::no_queue(&self.vhost, &self.name));
        }
        let exclusive_in_use = inner.consumers.iter().any(|c| c.exclusive);
        if exclusive_in_use || (consumer.exclusive && !inner.consumers.is_empty()) {
            return Err(BrokerError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.name, self.vhost
            )));
        }
        if let Some(st) = inner.stream.as_mut() {
            if consumer.no_ack {
                return Err(crate::stream::unsupported(
                    "automatic acknowledgement",
                    &self.name,
                    &self.vhost,
                ));
            }
            if consumer.credit.limit() == 0 {
                return Err(BrokerError::precondition_failed(format!(
                    "consumer prefetch count is not set for 'queue '{}' in vhost '{}''",
                    self.name, self.vhost
                )));
            }
            let start = crate::stream::parse_start(
                consumer.arguments.get(crate::stream::OFFSET_HEADER),
                now_ms(),
            )
            .map_err(BrokerError::precondition_failed)?;
            let filter = crate::stream::Filter::from_args(&consumer.arguments)
                .map_err(BrokerError::precondition_failed)?;
            st.add_reader(consumer.clone(), start, filter);
        }
        inner.top_priority = inner.top_priority.max(consumer.priority);
        inner.consumers.push(consumer);
        inner.had_consumers = true;
        // No dispatch here: the adapter confirms the subscription to its client first,
        // then calls `dispatch`.
        Ok(())
    }

    pub(crate) fn remove_consumer(
        self: &Arc<Self>,
        connection: ConnectionId,
        tag: &str,
    ) -> ConsumerRemoved {
        let mut inner = self.inner.lock();
        let Some(i) = inner
            .consumers
            .iter()
            .position(|c| c.connection == connection && c.tag.as_str() == tag)
        else {
            return ConsumerRemoved::NotFound;
        };
        let gone = inner.consumers.remove(i);
        if let Some(st) = inner.stream.as_mut() {
            st.remove_reader(&gone);
        }
        if inner.cursor > i {
            inner.cursor -= 1;
        }
        // The x-expires clock starts when the last consumer goes.
        self.touch_locked(&mut inner);
        inner.top_priority = inner
            .consumers
            .iter()
            .map(|c| c.priority)
            .max()
            .unwrap_or(i64::MIN);
        if inner.consumers.is_empty() && self.auto_delete && inner.had_consumers {
            ConsumerRemoved::RemovedAutoDelete
        } else {
            ConsumerRemoved::Removed
        }
    }

    pub fn purge(&self) -> u64 {
        let mut inner = self.inner.lock();
        if inner.stream.is_some() {
            return 0;
        }
        inner.expiries.clear();
        if inner.dedup.is_empty() {
            return inner.store.purge();
        }
        // Deduplication keys of purged messages are freed: take them one by one.
        let mut n = 0;
        while let Some(env) = inner.store.pop() {
            inner.settle(&env);
            n += 1;
        }
        n
    }

    pub fn stats(&self) -> QueueStats {
        let inner = self.inner.lock();
        if let Some(st) = &inner.stream {
            // As RabbitMQ: a stream's messages are all "ready"; deliveries awaiting an
            // ack are only credit, not messages held back.
            return QueueStats {
                ready: st.log.count(),
                ready_bytes: st.log.bytes(),
                unacked: 0,
                consumers: inner.consumers.len() as u64,
            };
        }
        QueueStats {
            ready: inner.store.ready_count(),
            ready_bytes: inner.store.ready_bytes(),
            unacked: inner.unacked,
            consumers: inner.consumers.len() as u64,
        }
    }

    pub fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.inner.lock().consumers.clone()
    }

    /// Checks `if-unused` / `if-empty`, then marks the queue deleted and returns its ready
    /// message count and the consumers to notify.
    pub(crate) fn delete(
        &self,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<(u64, Vec<Arc<Consumer>>)> {
        let mut inner = self.inner.lock();
        if if_empty && inner.store.ready_count() > 0 {
            return Err(BrokerError::precondition_failed(format!(
                "queue '{}' in vhost '{}' not empty",
                self.name, self.vhost
            )));
        }
        if if_unused && !inner.consumers.is_empty() {
            return Err(BrokerError::precondition_failed(format!(
                "queue '{}' in vhost '{}' in use",
                self.name, self.vhost
            )));
        }
        self.deleted.store(true, Ordering::Release);
        let mut n = inner.store.purge();
        inner.store.destroy();
        if let Some(st) = inner.stream.as_mut() {
            // RabbitMQ reports no message count for a deleted stream.
            n = 0;
            st.log.destroy();
        }
        let consumers = std::mem::take(&mut inner.consumers);
        Ok((n, consumers))
    }
}

impl Inner {
    /// A message left the queue for good.
    fn settle(&mut self, env: &Envelope) {
        settle_one(&mut self.store, &mut self.dedup, env);
    }
}

fn settle_one(
    store: &mut Box<dyn QueueStore>,
    dedup: &mut crate::dedup::DedupCache,
    env: &Envelope,
) {
    store.settle(env);
    // Its deduplication key, if it held one, is free again.
    if !dedup.is_empty() {
        if let Some(k) = crate::dedup::key(&env.msg) {
            dedup.forget(&k, env.seq);
        }
    }
}

/// Quorum-queue semantics: a redelivery says in `x-delivery-count` how often it came
/// back (a first delivery has no such header).
fn mark_delivery_count(env: &mut Envelope) {
    if env.delivery_count == 0 {
        return;
    }
    let count = env.delivery_count as i64;
    env.msg = Arc::new(crate::message::with_headers(&env.msg, |h| {
        h.insert(
            "x-delivery-count",
            warren_amqp_codec::FieldValue::I64(count),
        );
    }));
}
