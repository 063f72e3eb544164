//! Exchanges and their bindings, indexed per exchange type so routing a message costs a
//! hash lookup (direct), a trie walk (topic) or a scan only where the type demands one
//! (fanout, headers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use warren_amqp_codec::FieldTable;

use crate::queue::Queue;
use crate::topic::TopicTrie;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    pub fn parse(s: &str) -> Option<ExchangeKind> {
        Some(match s {
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "topic" => ExchangeKind::Topic,
            "headers" => ExchangeKind::Headers,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

/// Where a binding leads.
#[derive(Clone)]
pub enum Destination {
    Queue(Arc<Queue>),
    Exchange(Arc<Exchange>),
}

impl Destination {
    pub fn name(&self) -> &str {
        match self {
            Destination::Queue(q) => &q.name,
            Destination::Exchange(e) => &e.name,
        }
    }

    /// "queue" or "exchange", as RabbitMQ's API names destination types.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Queue(_) => "queue",
            Destination::Exchange(_) => "exchange",
        }
    }
}

impl PartialEq for Destination {
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (Destination::Queue(a), Destination::Queue(b)) => Arc::ptr_eq(a, b),
            (Destination::Exchange(a), Destination::Exchange(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} '{}'", self.kind(), self.name())
    }
}

#[derive(Clone, Debug)]
pub struct Binding {
    pub destination: Destination,
    pub routing_key: String,
    pub arguments: FieldTable,
}

impl Binding {
    /// Binding identity: destination, key, and arguments compared as RabbitMQ compares
    /// values (integer widths do not matter, so bindings restored from definitions still
    /// match the client's unbind).
    fn same(&self, dest: &Destination, key: &str, args: &FieldTable) -> bool {
        self.destination == *dest
            && self.routing_key == key
            && self.arguments.len() == args.len()
            && self
                .arguments
                .iter()
                .zip(args.iter())
                .all(|((ka, va), (kb, vb))| {
                    ka == kb && crate::args::same_class_and_value(Some(va), Some(vb))
                })
    }
}

#[derive(Default)]
pub(crate) struct Bindings {
    /// Every binding, in creation order (listing, fanout and headers routing).
    pub(crate) list: Vec<Binding>,
    direct: HashMap<String, Vec<Destination>>,
    topic: TopicTrie<Destination>,
    /// How many bindings lead to exchanges: routing takes the general (recursive) path
    /// only when this is non-zero.
    pub(crate) to_exchanges: usize,
}

pub struct Exchange {
    pub name: String,
    pub vhost: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
    pub(crate) bindings: RwLock<Bindings>,
    deleted: AtomicBool,
    /// `alternate-exchange` from the applicable policy (the argument wins over it).
    policy_ae: RwLock<Option<String>>,
    /// Set for an `x-delayed-message` exchange (`kind` is then its `x-delayed-type`).
    pub(crate) delayed: std::sync::OnceLock<Arc<crate::delayed::DelayedExchange>>,
}

impl Exchange {
    pub(crate) fn new(
        vhost: &str,
        name: &str,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Exchange {
        Exchange {
            name: name.to_string(),
            vhost: vhost.to_string(),
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
            bindings: RwLock::new(Bindings::default()),
            deleted: AtomicBool::new(false),
            policy_ae: RwLock::new(None),
            delayed: std::sync::OnceLock::new(),
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// The type as declared: `x-delayed-message` for a delayed exchange, else the kind.
    pub fn type_name(&self) -> &str {
        if self.delayed.get().is_some() {
            "x-delayed-message"
        } else {
            self.kind.as_str()
        }
    }

    /// Messages held by a delayed exchange, waiting for their time.
    pub fn delayed_pending(&self) -> Option<u64> {
        self.delayed.get().map(|d| d.pending())
    }

    /// Where unroutable messages go: the `alternate-exchange` argument, else the policy's.
    pub fn alternate_exchange(&self) -> Option<String> {
        self.arguments
            .get("alternate-exchange")
            .and_then(|v| v.as_str())
            .map(String::from)
            .or_else(|| self.policy_ae.read().clone())
    }

    pub(crate) fn set_policy_alternate_exchange(&self, ae: Option<String>) {
        *self.policy_ae.write() = ae;
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    /// A snapshot of this exchange's bindings.
    pub fn bindings(&self) -> Vec<Binding> {
        self.bindings.read().list.clone()
    }

    pub fn binding_count(&self) -> usize {
        self.bindings.read().list.len()
    }

    /// Adds a binding; false if an identical one exists (binding is idempotent).
    pub(crate) fn add_binding(&self, dest: Destination, key: &str, args: FieldTable) -> bool {
        let mut b = self.bindings.write();
        if b.list.iter().any(|x| x.same(&dest, key, &args)) {
            return false;
        }
        match self.kind {
            ExchangeKind::Direct => {
                let v = b.direct.entry(key.to_string()).or_default();
                if !v.contains(&dest) {
                    v.push(dest.clone());
                }
            }
            ExchangeKind::Topic => b.topic.insert(key, dest.clone()),
            ExchangeKind::Fanout | ExchangeKind::Headers => {}
        }
        if matches!(dest, Destination::Exchange(_)) {
            b.to_exchanges += 1;
        }
        b.list.push(Binding {
            destination: dest,
            routing_key: key.to_string(),
            arguments: args,
        });
        true
    }

    /// Removes a binding; false if there was none.
    pub(crate) fn remove_binding(&self, dest: &Destination, key: &str, args: &FieldTable) -> bool {
        let mut b = self.bindings.write();
        let Some(i) = b.list.iter().position(|x| x.same(dest, key, args)) else {
            return false;
        };
        b.list.remove(i);
        Self::unindex(&mut b, self.kind, dest, key);
        true
    }

    /// Removes every binding leading to `dest`; returns how many went.
    pub(crate) fn remove_bindings_to(&self, dest: &Destination) -> usize {
        let mut b = self.bindings.write();
        let gone: Vec<Binding> = b
            .list
            .iter()
            .filter(|x| x.destination == *dest)
            .cloned()
            .collect();
        b.list.retain(|x| x.destination != *dest);
        for g in &gone {
            Self::unindex(&mut b, self.kind, dest, &g.routing_key);
        }
        gone.len()
    }

    /// Drops `dest` from the routing index unless another binding (same destination and
    /// key, other arguments) still needs it.
    fn unindex(b: &mut Bindings, kind: ExchangeKind, dest: &Destination, key: &str) {
        if matches!(dest, Destination::Exchange(_)) {
            b.to_exchanges -= 1;
        }
        if b.list
            .iter()
            .any(|x| x.destination == *dest && x.routing_key == key)
        {
            return;
        }
        match kind {
            ExchangeKind::Direct => {
                if let Some(v) = b.direct.get_mut(key) {
                    v.retain(|d| d != dest);
                    if v.is_empty() {
                        b.direct.remove(key);
                    }
                }
            }
            ExchangeKind::Topic => {
                b.topic.remove(key, dest);
            }
            ExchangeKind::Fanout | ExchangeKind::Headers => {}
        }
    }

    /// Calls `f` for each destination this exchange routes `routing_key` to (possibly more
    /// than once for one destination). `headers` is parsed only for headers exchanges.
    pub(crate) fn route_local(
        &self,
        routing_key: &str,
        headers: &mut dyn FnMut() -> Option<FieldTable>,
        f: &mut dyn FnMut(&Destination),
    ) {
        let b = self.bindings.read();
        match self.kind {
            ExchangeKind::Direct => {
                if let Some(v) = b.direct.get(routing_key) {
                    v.iter().for_each(f);
                }
            }
            ExchangeKind::Fanout => b.list.iter().for_each(|x| f(&x.destination)),
            ExchangeKind::Topic => b.topic.matches(routing_key, &mut |d| f(d)),
            ExchangeKind::Headers => {
                if b.list.is_empty() {
                    return;
                }
                let h = headers();
                for x in &b.list {
                    if crate::headers::matches(&x.arguments, h.as_ref()) {
                        f(&x.destination)
                    }
                }
            }
        }
    }
}
