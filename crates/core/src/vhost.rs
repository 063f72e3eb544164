//! A virtual host: its exchanges, queues and bindings, and the topology operations on them
//! with RabbitMQ's checks and error texts.
//!
//! Lock order: `topology` (serialises changes so multi-step ones are atomic), then the
//! exchange and queue maps, then an exchange's bindings, then a queue's lock. Routing a
//! message takes only read locks on bindings (and the queue map for the default exchange),
//! releases them, and then enqueues.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use warren_amqp_codec::FieldTable;
use warren_store::memory::MemoryQueueStore;

use crate::args::{assert_equivalent, validate_queue_args, EQUIVALENT_QUEUE_ARGS};
use crate::consumer::Consumer;
use crate::error::{BrokerError, Result};
use crate::exchange::{Destination, Exchange, ExchangeKind};
use crate::queue::{ConsumerRemoved, Queue, QueueSpec};
use crate::scheduler::Scheduler;
use crate::util::generated_name;
use crate::ConnectionId;

/// Exchange arguments whose values must match on redeclaration.
const EQUIVALENT_EXCHANGE_ARGS: &[&str] = &["alternate-exchange"];

/// The exchanges every vhost starts with.
const BUILTIN_EXCHANGES: &[(&str, ExchangeKind)] = &[
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

/// Parameters of `queue.declare`.
#[derive(Debug, Clone, Default)]
pub struct QueueDeclare {
    pub name: String,
    pub passive: bool,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

/// Parameters of `exchange.declare`.
#[derive(Debug, Clone, Default)]
pub struct ExchangeDeclare {
    pub name: String,
    pub kind: String,
    pub passive: bool,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

pub struct VHost {
    pub name: String,
    /// Handed to queues, which route their dead letters through their vhost.
    self_ref: Weak<VHost>,
    scheduler: Arc<Scheduler>,
    exchanges: RwLock<HashMap<String, Arc<Exchange>>>,
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    topology: Mutex<()>,
}

fn inequivalent(
    field: &str,
    what: &str,
    name: &str,
    vhost: &str,
    got: String,
    cur: String,
) -> BrokerError {
    BrokerError::precondition_failed(format!(
        "inequivalent arg '{field}' for {what} '{name}' in vhost '{vhost}': received {got} but current is {cur}"
    ))
}

impl VHost {
    pub fn new(name: &str, scheduler: Arc<Scheduler>) -> Arc<VHost> {
        Arc::new_cyclic(|w| VHost::build(name, w.clone(), scheduler))
    }

    fn build(name: &str, self_ref: Weak<VHost>, scheduler: Arc<Scheduler>) -> VHost {
        let mut exchanges = HashMap::new();
        exchanges.insert(
            String::new(),
            Arc::new(Exchange::new(
                name,
                "",
                ExchangeKind::Direct,
                true,
                false,
                false,
                FieldTable::new(),
            )),
        );
        for (n, k) in BUILTIN_EXCHANGES {
            exchanges.insert(
                n.to_string(),
                Arc::new(Exchange::new(
                    name,
                    n,
                    *k,
                    true,
                    false,
                    false,
                    FieldTable::new(),
                )),
            );
        }
        VHost {
            name: name.to_string(),
            self_ref,
            scheduler,
            exchanges: RwLock::new(exchanges),
            queues: RwLock::new(HashMap::new()),
            topology: Mutex::new(()),
        }
    }

    // ----- lookups -------------------------------------------------------------------

    pub fn exchange(&self, name: &str) -> Result<Arc<Exchange>> {
        self.exchanges
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::no_exchange(&self.name, name))
    }

    pub fn exchanges(&self) -> Vec<Arc<Exchange>> {
        self.exchanges.read().values().cloned().collect()
    }

    pub fn queues(&self) -> Vec<Arc<Queue>> {
        self.queues.read().values().cloned().collect()
    }

    /// Looks a queue up for `connection`, refusing another connection's exclusive queue.
    pub fn queue(&self, name: &str, connection: ConnectionId) -> Result<Arc<Queue>> {
        let q = self
            .queues
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::no_queue(&self.name, name))?;
        check_exclusive(&q, connection)?;
        Ok(q)
    }

    // ----- exchanges -----------------------------------------------------------------

    pub fn declare_exchange(&self, d: &ExchangeDeclare) -> Result<Arc<Exchange>> {
        let _t = self.topology.lock();
        if d.passive {
            if d.name.is_empty() {
                return Err(default_exchange_refused());
            }
            return self.exchange(&d.name);
        }
        // As RabbitMQ: the type is checked before the name.
        let kind = ExchangeKind::parse(&d.kind).ok_or_else(|| {
            BrokerError::command_invalid(format!("unknown exchange type '{}'", d.kind))
        })?;
        if d.name.is_empty() {
            return Err(default_exchange_refused());
        }
        if let Some(existing) = self.exchanges.read().get(&d.name).cloned() {
            self.assert_exchange_equivalent(&existing, kind, d)?;
            return Ok(existing);
        }
        if d.name.starts_with("amq.") {
            return Err(BrokerError::access_refused(format!(
                "exchange name '{}' contains reserved prefix 'amq.*'",
                d.name
            )));
        }
        let e = Arc::new(Exchange::new(
            &self.name,
            &d.name,
            kind,
            d.durable,
            d.auto_delete,
            d.internal,
            d.arguments.clone(),
        ));
        self.exchanges.write().insert(d.name.clone(), e.clone());
        Ok(e)
    }

    fn assert_exchange_equivalent(
        &self,
        e: &Exchange,
        kind: ExchangeKind,
        d: &ExchangeDeclare,
    ) -> Result<()> {
        let check = |field: &str, cur: String, got: String| {
            if cur != got {
                Err(inequivalent(
                    field,
                    "exchange",
                    &e.name,
                    &self.name,
                    format!("'{got}'"),
                    format!("'{cur}'"),
                ))
            } else {
                Ok(())
            }
        };
        check("type", e.kind.as_str().into(), kind.as_str().into())?;
        check("durable", e.durable.to_string(), d.durable.to_string())?;
        check(
            "auto_delete",
            e.auto_delete.to_string(),
            d.auto_delete.to_string(),
        )?;
        check("internal", e.internal.to_string(), d.internal.to_string())?;
        assert_equivalent(
            "exchange",
            &e.name,
            &self.name,
            EQUIVALENT_EXCHANGE_ARGS,
            &e.arguments,
            &d.arguments,
        )
    }

    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<()> {
        let _t = self.topology.lock();
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        if name.starts_with("amq.") {
            return Err(BrokerError::access_refused(format!(
                "deletion of system exchange '{name}' in vhost '{}' not allowed",
                self.name
            )));
        }
        let Some(e) = self.exchanges.read().get(name).cloned() else {
            // RabbitMQ 3.x: deleting a missing exchange succeeds.
            return Ok(());
        };
        if if_unused {
            // As RabbitMQ: only bindings with this exchange as their source count.
            if e.binding_count() > 0 {
                return Err(BrokerError::precondition_failed(format!(
                    "exchange '{name}' in vhost '{}' in use",
                    self.name
                )));
            }
        }
        self.remove_exchange_locked(&e);
        Ok(())
    }

    /// Removes an exchange with every binding from or to it, then auto-deletes sources
    /// left without bindings.
    fn remove_exchange_locked(&self, e: &Arc<Exchange>) {
        self.exchanges.write().remove(&e.name);
        e.mark_deleted();
        let dest = Destination::Exchange(e.clone());
        let sources: Vec<Arc<Exchange>> = self.exchanges.read().values().cloned().collect();
        let mut emptied = Vec::new();
        for s in sources {
            if s.remove_bindings_to(&dest) > 0 && s.auto_delete && s.binding_count() == 0 {
                emptied.push(s);
            }
        }
        // Clearing our own bindings drops the Arcs to destinations, breaking any cycles.
        *e.bindings.write() = Default::default();
        for s in emptied {
            if !s.is_deleted() {
                self.remove_exchange_locked(&s);
            }
        }
    }

    // ----- queues --------------------------------------------------------------------

    /// `queue.declare`: returns the queue with its ready message and consumer counts.
    pub fn declare_queue(
        &self,
        d: &QueueDeclare,
        connection: ConnectionId,
    ) -> Result<(Arc<Queue>, u64, u64)> {
        let _t = self.topology.lock();
        if d.passive {
            let q = self.queue(&d.name, connection)?;
            let s = q.stats();
            return Ok((q, s.ready, s.consumers));
        }
        let name = if d.name.is_empty() {
            generated_name("amq.gen")
        } else {
            d.name.clone()
        };
        if let Some(q) = self.queues.read().get(&name).cloned() {
            self.assert_queue_equivalent(&q, d, connection)?;
            let s = q.stats();
            return Ok((q, s.ready, s.consumers));
        }
        if name.starts_with("amq.") && !d.name.is_empty() {
            return Err(BrokerError::access_refused(format!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        validate_queue_args(
            &self.name,
            &name,
            &d.arguments,
            d.durable,
            d.exclusive,
            d.auto_delete,
        )?;
        let q = Arc::new(Queue::new(
            QueueSpec {
                vhost: self.name.clone(),
                name: name.clone(),
                // As RabbitMQ: an exclusive queue is never durable.
                durable: d.durable && !d.exclusive,
                exclusive_owner: d.exclusive.then_some(connection),
                auto_delete: d.auto_delete,
                arguments: d.arguments.clone(),
            },
            Box::new(MemoryQueueStore::new()),
            self.self_ref.clone(),
            self.scheduler.clone(),
        ));
        self.queues.write().insert(name, q.clone());
        Ok((q, 0, 0))
    }

    fn assert_queue_equivalent(
        &self,
        q: &Queue,
        d: &QueueDeclare,
        connection: ConnectionId,
    ) -> Result<()> {
        // RabbitMQ checks exclusivity strictly on redeclare: the owner must match what the
        // declare asks for.
        let wanted_owner = d.exclusive.then_some(connection);
        if q.exclusive_owner != wanted_owner {
            return Err(BrokerError::queue_locked(&self.name, &q.name));
        }
        let check = |field: &str, cur: bool, got: bool| {
            if cur != got {
                Err(inequivalent(
                    field,
                    "queue",
                    &q.name,
                    &self.name,
                    format!("'{got}'"),
                    format!("'{cur}'"),
                ))
            } else {
                Ok(())
            }
        };
        check("durable", q.durable, d.durable && !d.exclusive)?;
        check("auto_delete", q.auto_delete, d.auto_delete)?;
        assert_equivalent(
            "queue",
            &q.name,
            &self.name,
            EQUIVALENT_QUEUE_ARGS,
            &q.arguments,
            &d.arguments,
        )
    }

    /// `queue.delete`: returns the number of ready messages deleted with the queue.
    pub fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        connection: ConnectionId,
    ) -> Result<u64> {
        let _t = self.topology.lock();
        let q = match self.queue(name, connection) {
            Ok(q) => q,
            // RabbitMQ 3.x: deleting a missing queue succeeds with a count of 0.
            Err(e) if e.code == warren_amqp_codec::reply::NOT_FOUND => return Ok(0),
            Err(e) => return Err(e),
        };
        self.delete_queue_locked(&q, if_unused, if_empty)
    }

    fn delete_queue_locked(&self, q: &Arc<Queue>, if_unused: bool, if_empty: bool) -> Result<u64> {
        let (n, consumers) = q.delete(if_unused, if_empty)?;
        self.queues.write().remove(&q.name);
        let dest = Destination::Queue(q.clone());
        let sources: Vec<Arc<Exchange>> = self.exchanges.read().values().cloned().collect();
        for s in sources {
            if s.remove_bindings_to(&dest) > 0 && s.auto_delete && s.binding_count() == 0 {
                self.remove_exchange_locked(&s);
            }
        }
        for c in consumers {
            c.sink.cancelled(&c);
        }
        Ok(n)
    }

    pub fn purge_queue(&self, name: &str, connection: ConnectionId) -> Result<u64> {
        Ok(self.queue(name, connection)?.purge())
    }

    /// Deletes the exclusive queues a closing connection owned.
    pub fn connection_closed(&self, connection: ConnectionId) {
        let owned: Vec<Arc<Queue>> = self
            .queues
            .read()
            .values()
            .filter(|q| q.exclusive_owner == Some(connection))
            .cloned()
            .collect();
        if owned.is_empty() {
            return;
        }
        let _t = self.topology.lock();
        for q in owned {
            if !q.is_deleted() {
                let _ = self.delete_queue_locked(&q, false, false);
            }
        }
    }

    // ----- consumers -----------------------------------------------------------------

    pub fn consume(&self, queue: &Arc<Queue>, consumer: Arc<Consumer>) -> Result<()> {
        queue.add_consumer(consumer)
    }

    /// Removes a consumer; deletes an auto-delete queue whose last consumer it was.
    pub fn cancel(&self, queue: &Arc<Queue>, connection: ConnectionId, tag: &str) {
        if queue.remove_consumer(connection, tag) == ConsumerRemoved::RemovedAutoDelete {
            let _t = self.topology.lock();
            if !queue.is_deleted() && queue.stats().consumers == 0 {
                let _ = self.delete_queue_locked(queue, false, false);
            }
        }
    }

    // ----- bindings ------------------------------------------------------------------

    pub fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
        connection: ConnectionId,
    ) -> Result<()> {
        let _t = self.topology.lock();
        if exchange.is_empty() {
            return Err(default_exchange_refused());
        }
        let e = self.exchange(exchange)?;
        let q = self.queue(queue, connection)?;
        validate_binding(&e, arguments)?;
        e.add_binding(Destination::Queue(q), routing_key, sorted(arguments));
        Ok(())
    }

    pub fn unbind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
        connection: ConnectionId,
    ) -> Result<()> {
        let _t = self.topology.lock();
        if exchange.is_empty() {
            return Err(default_exchange_refused());
        }
        // RabbitMQ 3.x: unbinding from a missing exchange or queue succeeds.
        let Ok(e) = self.exchange(exchange) else {
            return Ok(());
        };
        let q = match self.queue(queue, connection) {
            Ok(q) => q,
            Err(err) if err.code == warren_amqp_codec::reply::NOT_FOUND => return Ok(()),
            Err(err) => return Err(err),
        };
        if e.remove_binding(&Destination::Queue(q), routing_key, &sorted(arguments))
            && e.auto_delete
            && e.binding_count() == 0
        {
            self.remove_exchange_locked(&e);
        }
        Ok(())
    }

    pub fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> Result<()> {
        let _t = self.topology.lock();
        if destination.is_empty() || source.is_empty() {
            return Err(default_exchange_refused());
        }
        let s = self.exchange(source)?;
        let d = self.exchange(destination)?;
        validate_binding(&s, arguments)?;
        s.add_binding(Destination::Exchange(d), routing_key, sorted(arguments));
        Ok(())
    }

    pub fn unbind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> Result<()> {
        let _t = self.topology.lock();
        if destination.is_empty() || source.is_empty() {
            return Err(default_exchange_refused());
        }
        let (Ok(s), Ok(d)) = (self.exchange(source), self.exchange(destination)) else {
            return Ok(());
        };
        if s.remove_binding(&Destination::Exchange(d), routing_key, &sorted(arguments))
            && s.auto_delete
            && s.binding_count() == 0
        {
            self.remove_exchange_locked(&s);
        }
        Ok(())
    }

    // ----- routing -------------------------------------------------------------------

    /// Routes a message from `exchange` into `out` (each queue once), following
    /// exchange-to-exchange bindings without looping on cycles. `headers` is consulted
    /// (and should parse lazily) only if a headers exchange is on the way.
    pub fn route(
        &self,
        exchange: &Arc<Exchange>,
        routing_key: &str,
        headers: &mut dyn FnMut() -> Option<FieldTable>,
        out: &mut Vec<Arc<Queue>>,
    ) {
        fn push_queue(out: &mut Vec<Arc<Queue>>, q: &Arc<Queue>) {
            if !out.iter().any(|x| Arc::ptr_eq(x, q)) {
                out.push(q.clone());
            }
        }
        if exchange.name.is_empty() {
            if let Some(q) = self.queues.read().get(routing_key) {
                out.push(q.clone());
            }
            return;
        }
        if exchange.bindings.read().to_exchanges == 0 {
            exchange.route_local(routing_key, headers, &mut |d| {
                if let Destination::Queue(q) = d {
                    push_queue(out, q)
                }
            });
            return;
        }
        let mut pending: Vec<Arc<Exchange>> = vec![exchange.clone()];
        let mut seen: Vec<*const Exchange> = vec![Arc::as_ptr(exchange)];
        while let Some(e) = pending.pop() {
            e.route_local(routing_key, headers, &mut |d| match d {
                Destination::Queue(q) => push_queue(out, q),
                Destination::Exchange(x) => {
                    if !seen.contains(&Arc::as_ptr(x)) {
                        seen.push(Arc::as_ptr(x));
                        pending.push(x.clone());
                    }
                }
            });
        }
    }
}

fn check_exclusive(q: &Queue, connection: ConnectionId) -> Result<()> {
    match q.exclusive_owner {
        Some(owner) if owner != connection => Err(BrokerError::queue_locked(&q.vhost, &q.name)),
        _ => Ok(()),
    }
}

fn default_exchange_refused() -> BrokerError {
    BrokerError::access_refused("operation not permitted on the default exchange")
}

/// Binding arguments in key order: RabbitMQ identifies a binding by its sorted arguments,
/// so `{a, b}` and `{b, a}` are the same binding.
fn sorted(args: &FieldTable) -> FieldTable {
    let mut t = args.clone();
    t.0.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

fn validate_binding(e: &Exchange, args: &FieldTable) -> Result<()> {
    if e.kind == ExchangeKind::Headers {
        crate::headers::validate_binding(args).map_err(BrokerError::precondition_failed)?;
    }
    Ok(())
}
