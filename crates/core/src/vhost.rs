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
use warren_amqp_codec::{FieldTable, FieldValue, PropertiesView, ShortStr};
use warren_store::definitions::{Definitions, Op};
use warren_store::json::json_to_table_typed;
use warren_store::Message;

use crate::args::{assert_equivalent, validate_queue_args, EQUIVALENT_QUEUE_ARGS};
use crate::consumer::Consumer;
use crate::error::{BrokerError, Result};
use crate::exchange::{Destination, Exchange, ExchangeKind};
use crate::policy::{pick, Policy};
use crate::queue::{ConsumerRemoved, Enqueued, Queue, QueueSpec};
use crate::scheduler::{now_ms, Scheduler};
use crate::settings::QueueSettings;
use crate::storage::{binding_def, binding_is_durable, exchange_def, queue_def, Storage};
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

/// What became of a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Queues it was routed to (0: unroutable, and returned if mandatory).
    pub routed: usize,
    /// A queue refused it (`x-overflow: reject-publish`, or storage failed): a
    /// confirming publisher gets a nack.
    pub rejected: bool,
    /// The commit epoch after which every durable copy is on disk.
    pub sync: Option<u64>,
}

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
    storage: Arc<Storage>,
    exchanges: RwLock<HashMap<String, Arc<Exchange>>>,
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    topology: Mutex<()>,
    policies: RwLock<Vec<Policy>>,
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
    pub fn new(name: &str, scheduler: Arc<Scheduler>, storage: Arc<Storage>) -> Arc<VHost> {
        Arc::new_cyclic(|w| VHost::build(name, w.clone(), scheduler, storage))
    }

    fn build(
        name: &str,
        self_ref: Weak<VHost>,
        scheduler: Arc<Scheduler>,
        storage: Arc<Storage>,
    ) -> VHost {
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
            storage,
            exchanges: RwLock::new(exchanges),
            queues: RwLock::new(HashMap::new()),
            topology: Mutex::new(()),
            policies: RwLock::new(Vec::new()),
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

    /// Whether a queue of that name exists (whoever owns it).
    pub fn queue_count(&self) -> usize {
        self.queues.read().len()
    }

    pub fn has_queue(&self, name: &str) -> bool {
        self.queues.read().contains_key(name)
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
        self.declare_exchange_checked(d, &|_| Ok(()))
    }

    /// `exchange.declare` with the caller's creation-time access check (alternate
    /// exchange permissions), made only if the exchange is to be created, as RabbitMQ.
    pub fn declare_exchange_checked(
        &self,
        d: &ExchangeDeclare,
        check_new: &dyn Fn(&str) -> Result<()>,
    ) -> Result<Arc<Exchange>> {
        let _t = self.topology.lock();
        if d.passive {
            if d.name.is_empty() {
                return Err(default_exchange_refused());
            }
            return self.exchange(&d.name);
        }
        // As RabbitMQ: the type is checked before the name.
        let delayed = d.kind == "x-delayed-message";
        let kind = if delayed {
            delayed_kind(&d.arguments)?
        } else {
            ExchangeKind::parse(&d.kind).ok_or_else(|| {
                BrokerError::command_invalid(format!("unknown exchange type '{}'", d.kind))
            })?
        };
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
        check_new(&d.name)?;
        let e = Arc::new(Exchange::new(
            &self.name,
            &d.name,
            kind,
            d.durable,
            d.auto_delete,
            d.internal,
            d.arguments.clone(),
        ));
        e.set_policy_alternate_exchange(self.exchange_policy_ae(&e.name));
        if delayed {
            self.attach_delayed(&e)?;
        }
        self.exchanges.write().insert(d.name.clone(), e.clone());
        if e.durable {
            self.storage.journal(Op::PutExchange(exchange_def(&e)));
        }
        Ok(e)
    }

    /// Opens (recovering) the pending-message store of a delayed exchange.
    fn attach_delayed(&self, e: &Arc<Exchange>) -> Result<()> {
        let d = crate::delayed::DelayedExchange::open(
            self.storage.delayed_dir(&self.name, &e.name, e.durable),
            self.storage.disk_options(e.durable, false),
            self.self_ref.clone(),
            Arc::downgrade(e),
            self.scheduler.clone(),
        )
        .map_err(|err| {
            BrokerError::internal(format!(
                "cannot open storage for delayed exchange '{}': {err}",
                e.name
            ))
        })?;
        let _ = e.delayed.set(d);
        Ok(())
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
        let _ = kind;
        check("type", e.type_name().into(), d.kind.clone())?;
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
        if let Some(d) = e.delayed.get() {
            d.destroy();
        }
        if e.durable {
            // The definitions drop the exchange's bindings, both ways, with it.
            self.storage.journal(Op::DeleteExchange {
                vhost: self.name.clone(),
                name: e.name.clone(),
            });
        }
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
        self.declare_queue_checked(d, connection, &|_, _| Ok(()))
    }

    /// `queue.declare` with the caller's access checks at the points RabbitMQ makes
    /// them: `check(name, false)` once the name is known (a server-named queue is checked
    /// on its generated name), `check(name, true)` only if the queue is to be created
    /// (where dead-letter exchange permissions are checked).
    pub fn declare_queue_checked(
        &self,
        d: &QueueDeclare,
        connection: ConnectionId,
        check: &dyn Fn(&str, bool) -> Result<()>,
    ) -> Result<(Arc<Queue>, u64, u64)> {
        let _t = self.topology.lock();
        if d.passive {
            let q = self.queue(&d.name, connection)?;
            q.touch();
            let s = q.stats();
            return Ok((q, s.ready, s.consumers));
        }
        let name = if d.name.is_empty() {
            generated_name("amq.gen")
        } else {
            d.name.clone()
        };
        check(&name, false)?;
        self.storage.queue_churn.declared();
        if let Some(q) = self.queues.read().get(&name).cloned() {
            self.assert_queue_equivalent(&q, d, connection)?;
            q.touch();
            let s = q.stats();
            return Ok((q, s.ready, s.consumers));
        }
        if name.starts_with("amq.") && !d.name.is_empty() {
            return Err(BrokerError::access_refused(format!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        check(&name, true)?;
        validate_queue_args(
            &self.name,
            &name,
            &d.arguments,
            d.durable,
            d.exclusive,
            d.auto_delete,
        )?;
        let policy = self.queue_policy(&name, &d.arguments);
        let q = self.create_queue(QueueSpec {
            vhost: self.name.clone(),
            name,
            // As RabbitMQ: an exclusive queue is never durable.
            durable: d.durable && !d.exclusive,
            exclusive_owner: d.exclusive.then_some(connection),
            auto_delete: d.auto_delete,
            arguments: d.arguments.clone(),
            policy,
        })?;
        self.storage.queue_churn.created();
        if q.durable {
            self.storage.journal(Op::PutQueue(queue_def(&q)));
        }
        Ok((q, 0, 0))
    }

    /// The private queue behind a direct reply-to consumer: exclusive to `connection`,
    /// deleted with its consumer, and named under the reserved `amq.` prefix that clients
    /// cannot declare.
    pub fn declare_reply_queue(&self, name: &str, connection: ConnectionId) -> Result<Arc<Queue>> {
        let _t = self.topology.lock();
        self.create_queue(QueueSpec {
            vhost: self.name.clone(),
            name: name.to_string(),
            durable: false,
            exclusive_owner: Some(connection),
            auto_delete: true,
            arguments: FieldTable::new(),
            policy: None,
        })
    }

    /// Builds a queue on its store (recovering a durable queue's messages) and adds it.
    fn create_queue(&self, spec: QueueSpec) -> Result<Arc<Queue>> {
        let max_priority = spec
            .arguments
            .get("x-max-priority")
            .and_then(|v| v.as_i64())
            .or_else(|| {
                spec.policy
                    .as_ref()
                    .and_then(|p| p.get("max-priority"))
                    .and_then(|v| v.as_i64())
            })
            .filter(|&p| p > 0)
            .map(|p| p.min(255) as u8);
        let open_err = |e: std::io::Error| {
            tracing::error!(queue = %spec.name, vhost = %spec.vhost, error = %e, "cannot open queue storage");
            BrokerError::internal(format!(
                "cannot open storage for queue '{}': {e}",
                spec.name
            ))
        };
        let (store, stream): (Box<dyn warren_store::QueueStore>, _) =
            if crate::stream::is_stream_args(&spec.arguments) {
                let settings =
                    crate::settings::QueueSettings::resolve(&spec.arguments, spec.policy.as_ref());
                let log = self
                    .storage
                    .stream_log(&spec.vhost, &spec.name, &settings)
                    .map_err(open_err)?;
                (
                    Box::new(warren_store::memory::MemoryQueueStore::default()),
                    Some(log),
                )
            } else {
                let store = self
                    .storage
                    .queue_store(&spec.vhost, &spec.name, spec.durable, max_priority)
                    .map_err(open_err)?;
                (store, None)
            };
        let name = spec.name.clone();
        let q = Arc::new(Queue::new(
            spec,
            store,
            stream,
            self.self_ref.clone(),
            self.scheduler.clone(),
        ));
        q.after_recovery();
        self.queues.write().insert(name, q.clone());
        Ok(q)
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
        self.storage.queue_churn.deleted();
        self.queues.write().remove(&q.name);
        if q.durable {
            // The definitions drop the queue's bindings with it.
            self.storage.journal(Op::DeleteQueue {
                vhost: self.name.clone(),
                name: q.name.clone(),
            });
        }
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
        let q = self.queue(name, connection)?;
        q.check_not_stream("queue.purge")?;
        Ok(q.purge())
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
        self.add_binding_locked(&e, Destination::Queue(q), routing_key, sorted(arguments));
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
        self.remove_binding_locked(&e, &Destination::Queue(q), routing_key, &sorted(arguments));
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
        self.add_binding_locked(&s, Destination::Exchange(d), routing_key, sorted(arguments));
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
        self.remove_binding_locked(
            &s,
            &Destination::Exchange(d),
            routing_key,
            &sorted(arguments),
        );
        Ok(())
    }

    fn add_binding_locked(
        &self,
        source: &Arc<Exchange>,
        dest: Destination,
        routing_key: &str,
        args: FieldTable,
    ) {
        let def = binding_is_durable(source, &dest)
            .then(|| binding_def(source, &dest, routing_key, &args));
        if source.add_binding(dest, routing_key, args) {
            if let Some(d) = def {
                self.storage.journal(Op::PutBinding(d));
            }
        }
    }

    /// Removes a binding; an auto-delete source left without bindings goes too.
    fn remove_binding_locked(
        &self,
        source: &Arc<Exchange>,
        dest: &Destination,
        routing_key: &str,
        args: &FieldTable,
    ) {
        if !source.remove_binding(dest, routing_key, args) {
            return;
        }
        if binding_is_durable(source, dest) {
            self.storage.journal(Op::DeleteBinding(binding_def(
                source,
                dest,
                routing_key,
                args,
            )));
        }
        if source.auto_delete && source.binding_count() == 0 {
            self.remove_exchange_locked(source);
        }
    }

    // ----- recovery ------------------------------------------------------------------

    /// Recreates this vhost's durable exchanges, queues (with their messages) and
    /// bindings from the definitions, without journaling them again.
    pub fn restore(&self, defs: &Definitions) {
        let _t = self.topology.lock();
        for p in defs.policy_defs().iter().filter(|p| p.vhost == self.name) {
            let definition = p.definition.as_object().cloned().unwrap_or_default();
            match Policy::new(
                &self.name,
                &p.name,
                &p.pattern,
                &p.apply_to,
                p.priority,
                definition,
            ) {
                Ok(policy) => self.policies.write().push(policy),
                Err(e) => {
                    tracing::warn!(policy = %p.name, error = %e, "skipping an invalid policy")
                }
            }
        }
        for x in defs.exchanges.iter().filter(|x| x.vhost == self.name) {
            let arguments = json_to_table_typed(&x.arguments, x.argument_types.as_ref());
            let delayed = x.kind == "x-delayed-message";
            let kind = if delayed {
                delayed_kind(&arguments).ok()
            } else {
                ExchangeKind::parse(&x.kind)
            };
            let Some(kind) = kind else {
                tracing::warn!(exchange = %x.name, kind = %x.kind, "skipping an exchange of unknown type");
                continue;
            };
            if self.exchanges.read().contains_key(&x.name) {
                continue;
            }
            let e = Arc::new(Exchange::new(
                &self.name,
                &x.name,
                kind,
                x.durable,
                x.auto_delete,
                x.internal,
                arguments,
            ));
            if delayed {
                if let Err(err) = self.attach_delayed(&e) {
                    tracing::error!(exchange = %x.name, error = %err, "delayed exchange not recovered");
                    continue;
                }
            }
            self.exchanges.write().insert(x.name.clone(), e);
        }
        for q in defs.queues.iter().filter(|q| q.vhost == self.name) {
            let arguments = json_to_table_typed(&q.arguments, q.argument_types.as_ref());
            let spec = QueueSpec {
                vhost: self.name.clone(),
                name: q.name.clone(),
                durable: q.durable,
                exclusive_owner: None,
                auto_delete: q.auto_delete,
                policy: self.queue_policy(&q.name, &arguments),
                arguments,
            };
            match self.create_queue(spec) {
                Ok(queue) => {
                    let st = queue.stats();
                    tracing::info!(queue = %q.name, vhost = %self.name, messages = st.ready, "queue recovered");
                }
                Err(e) => tracing::error!(queue = %q.name, error = %e, "queue not recovered"),
            }
        }
        for b in defs.bindings.iter().filter(|b| b.vhost == self.name) {
            let Ok(source) = self.exchange(&b.source) else {
                continue;
            };
            let dest = match b.destination_type.as_str() {
                "queue" => self
                    .queues
                    .read()
                    .get(&b.destination)
                    .cloned()
                    .map(Destination::Queue),
                _ => self
                    .exchanges
                    .read()
                    .get(&b.destination)
                    .cloned()
                    .map(Destination::Exchange),
            };
            let Some(dest) = dest else { continue };
            source.add_binding(
                dest,
                &b.routing_key,
                sorted(&json_to_table_typed(
                    &b.arguments,
                    b.argument_types.as_ref(),
                )),
            );
        }
    }

    // ----- policies ------------------------------------------------------------------

    /// The definition of the policy that applies to a queue of this name and arguments.
    fn queue_policy(
        &self,
        name: &str,
        args: &FieldTable,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let kind = args
            .get("x-queue-type")
            .and_then(|v| v.as_str())
            .unwrap_or("classic");
        let ps = self.policies.read();
        pick(&ps, |p| p.applies_to_queue(name, kind)).map(|p| p.definition.clone())
    }

    fn exchange_policy_ae(&self, name: &str) -> Option<String> {
        let ps = self.policies.read();
        pick(&ps, |p| p.applies_to_exchange(name))
            .and_then(|p| p.definition.get("alternate-exchange"))
            .and_then(|v| v.as_str())
            .map(String::from)
    }

    pub fn policies(&self) -> Vec<Policy> {
        self.policies.read().clone()
    }

    /// Sets (or replaces) a policy and applies it, live, to every matching queue and
    /// exchange.
    pub fn set_policy(&self, policy: Policy) {
        let _t = self.topology.lock();
        self.storage
            .journal(Op::PutPolicy(warren_store::definitions::PolicyDef {
                vhost: self.name.clone(),
                name: policy.name.clone(),
                pattern: policy.pattern.clone(),
                apply_to: policy.apply_to.as_str().into(),
                definition: serde_json::Value::Object(policy.definition.clone()),
                priority: policy.priority,
            }));
        {
            let mut ps = self.policies.write();
            ps.retain(|p| p.name != policy.name);
            ps.push(policy);
        }
        self.reapply_policies();
    }

    /// Clears a policy; false if there was none of that name.
    pub fn clear_policy(&self, name: &str) -> bool {
        let _t = self.topology.lock();
        let existed = {
            let mut ps = self.policies.write();
            let before = ps.len();
            ps.retain(|p| p.name != name);
            before != ps.len()
        };
        if existed {
            self.storage.journal(Op::DeletePolicy {
                vhost: self.name.clone(),
                name: name.to_string(),
            });
            self.reapply_policies();
        }
        existed
    }

    fn reapply_policies(&self) {
        for q in self.queues() {
            let settings = QueueSettings::resolve(
                &q.arguments,
                self.queue_policy(&q.name, &q.arguments).as_ref(),
            );
            q.apply_settings(settings);
        }
        for e in self.exchanges() {
            e.set_policy_alternate_exchange(self.exchange_policy_ae(&e.name));
        }
    }

    /// Deletes a queue unused past its `x-expires` (called by the queue's timer).
    pub(crate) fn expire_queue(&self, q: &Arc<Queue>) {
        let _t = self.topology.lock();
        if !q.is_deleted() && q.is_expired(now_ms()) {
            tracing::info!(queue = %q.name, vhost = %self.name, "queue expired (x-expires)");
            let _ = self.delete_queue_locked(q, false, false);
        }
    }

    // ----- publishing ----------------------------------------------------------------

    /// Routes a message from `exchange` and enqueues it in every queue it reaches: the one
    /// entry point every protocol adapter publishes through. `scratch` is a buffer the
    /// caller keeps between calls (to spare an allocation per message).
    pub fn publish(
        &self,
        exchange: &Arc<Exchange>,
        msg: Arc<Message>,
        scratch: &mut Vec<Arc<Queue>>,
    ) -> Published {
        if let Some(d) = exchange.delayed.get() {
            if let Some(delay) = crate::delayed::delay_of(&msg) {
                // Held, and routed when due: never returned as unroutable; the routed
                // copy says `x-delay: -delay`, as the plugin marks it.
                let msg = Arc::new(crate::message::with_headers(&msg, |h| {
                    h.insert("x-delay", FieldValue::I64(-(delay as i64)));
                }));
                return match d.hold(msg, delay) {
                    Ok(sync) => Published {
                        routed: 1,
                        rejected: false,
                        sync,
                    },
                    Err(e) => {
                        tracing::error!(exchange = %exchange.name, error = %e, "cannot store a delayed message; refusing it");
                        Published {
                            routed: 1,
                            rejected: true,
                            sync: None,
                        }
                    }
                };
            }
        }
        self.publish_now(exchange, msg, scratch)
    }

    /// Routes and enqueues at once (a delayed exchange's message whose time has come).
    pub fn publish_now(
        &self,
        exchange: &Arc<Exchange>,
        msg: Arc<Message>,
        scratch: &mut Vec<Arc<Queue>>,
    ) -> Published {
        scratch.clear();
        let mut msg = msg;
        // Sender-selected distribution: `CC` and `BCC` name more routing keys; `BCC` is
        // removed from the message the queues get.
        let mut extra_keys: Vec<String> = Vec::new();
        if msg.may_have_cc {
            let table = PropertiesView::parse(&msg.properties)
                .ok()
                .and_then(|v| v.headers_table());
            if let Some(h) = table {
                for key in ["CC", "BCC"] {
                    if let Some(FieldValue::Array(items)) = h.get(key) {
                        extra_keys
                            .extend(items.iter().filter_map(|v| v.as_str()).map(String::from));
                    }
                }
                if let Some(bcc) = h.get("BCC") {
                    let keys: Box<[ShortStr]> = match bcc {
                        FieldValue::Array(items) => items
                            .iter()
                            .filter_map(|v| v.as_str())
                            .filter(|k| k.len() <= 255)
                            .map(ShortStr::from)
                            .take(255)
                            .collect(),
                        _ => Box::new([]),
                    };
                    let mut m = crate::message::with_headers(&msg, |h| {
                        h.remove("BCC");
                    });
                    m.bcc = (!keys.is_empty()).then_some(keys);
                    msg = Arc::new(m);
                }
            }
        }
        let mut headers = || {
            PropertiesView::parse(&msg.properties)
                .ok()
                .and_then(|v| v.headers_table())
        };
        let mut keys: Vec<&str> = Vec::with_capacity(1 + extra_keys.len());
        keys.push(&msg.routing_key);
        keys.extend(extra_keys.iter().map(String::as_str));
        self.route(exchange, &keys, &mut headers, scratch);
        let mut out = Published {
            routed: scratch.len(),
            rejected: false,
            sync: None,
        };
        for q in scratch.drain(..) {
            match q.publish(msg.clone()) {
                Enqueued::Accepted { sync: Some(e) } => {
                    out.sync = Some(out.sync.map_or(e, |s| s.max(e)))
                }
                Enqueued::Accepted { sync: None } => {}
                Enqueued::Rejected => out.rejected = true,
            }
        }
        out
    }

    // ----- routing -------------------------------------------------------------------

    /// Routes a message with `routing_keys` (its key, then any `CC`/`BCC` keys) from
    /// `exchange` into `out` (each queue once), following exchange-to-exchange bindings
    /// without looping on cycles. As in RabbitMQ, an exchange that routes the message
    /// nowhere at all (no queue, no exchange) hands it to its alternate exchange, which
    /// is then routed like any other exchange on the way. `headers` is consulted (and
    /// should parse lazily) only if a headers exchange is on the way.
    pub fn route(
        &self,
        exchange: &Arc<Exchange>,
        routing_keys: &[&str],
        headers: &mut dyn FnMut() -> Option<FieldTable>,
        out: &mut Vec<Arc<Queue>>,
    ) {
        fn push_queue(out: &mut Vec<Arc<Queue>>, q: &Arc<Queue>) {
            if !out.iter().any(|x| Arc::ptr_eq(x, q)) {
                out.push(q.clone());
            }
        }
        if exchange.name.is_empty() {
            let queues = self.queues.read();
            for k in routing_keys {
                if let Some(q) = queues.get(*k) {
                    push_queue(out, q);
                }
            }
            return;
        }
        // The common case: one key, no exchange bindings, no alternate exchange.
        if routing_keys.len() == 1
            && exchange.bindings.read().to_exchanges == 0
            && exchange.alternate_exchange().is_none()
        {
            exchange.route_local(routing_keys[0], headers, &mut |d| {
                if let Destination::Queue(q) = d {
                    push_queue(out, q)
                }
            });
            return;
        }
        let mut pending: Vec<Arc<Exchange>> = vec![exchange.clone()];
        let mut seen: Vec<*const Exchange> = vec![Arc::as_ptr(exchange)];
        while let Some(e) = pending.pop() {
            let mut any = false;
            for k in routing_keys {
                e.route_local(k, headers, &mut |d| {
                    any = true;
                    match d {
                        Destination::Queue(q) => push_queue(out, q),
                        Destination::Exchange(x) => {
                            if !seen.contains(&Arc::as_ptr(x)) {
                                seen.push(Arc::as_ptr(x));
                                pending.push(x.clone());
                            }
                        }
                    }
                });
            }
            if any {
                continue;
            }
            if let Some(ae) = e.alternate_exchange() {
                if let Ok(x) = self.exchange(&ae) {
                    if !seen.contains(&Arc::as_ptr(&x)) {
                        seen.push(Arc::as_ptr(&x));
                        pending.push(x);
                    }
                }
            }
        }
    }
}

/// The routing type of an `x-delayed-message` exchange, from `x-delayed-type`.
fn delayed_kind(args: &FieldTable) -> Result<ExchangeKind> {
    let Some(t) = args.get("x-delayed-type").and_then(|v| v.as_str()) else {
        return Err(BrokerError::precondition_failed(
            "Invalid argument, 'x-delayed-type' must be an existing exchange type",
        ));
    };
    if t == "x-delayed-message" {
        return Err(BrokerError::precondition_failed(
            "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'",
        ));
    }
    ExchangeKind::parse(t)
        .ok_or_else(|| BrokerError::command_invalid(format!("unknown exchange type '{t}'")))
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
