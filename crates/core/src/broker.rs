//! The broker: vhosts, users, resource alarms, and connection ids.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::auth::{Permission, Users};
use crate::scheduler::Scheduler;
use crate::vhost::VHost;
use crate::ConnectionId;

/// Settings the core needs; protocol and listener settings live with the adapters.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_name: String,
    pub default_user: String,
    pub default_pass: String,
    pub default_vhost: String,
    /// Users allowed to log in from loopback addresses only (RabbitMQ: `loopback_users`).
    pub loopback_users: Vec<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_name: "warren@localhost".into(),
            default_user: "guest".into(),
            default_pass: "guest".into(),
            default_vhost: "/".into(),
            loopback_users: vec!["guest".into()],
        }
    }
}

/// Resource alarms. While any is raised, publishing connections are blocked.
pub struct Alarms {
    disk: AtomicBool,
    memory: AtomicBool,
    tx: watch::Sender<bool>,
}

impl Alarms {
    fn new() -> Alarms {
        Alarms {
            disk: AtomicBool::new(false),
            memory: AtomicBool::new(false),
            tx: watch::channel(false).0,
        }
    }

    pub fn set_disk(&self, on: bool) {
        if self.disk.swap(on, Ordering::SeqCst) != on {
            tracing::warn!(
                alarm = "disk",
                on,
                "disk resource alarm {}",
                if on { "set" } else { "cleared" }
            );
            self.publish();
        }
    }

    pub fn set_memory(&self, on: bool) {
        if self.memory.swap(on, Ordering::SeqCst) != on {
            tracing::warn!(
                alarm = "memory",
                on,
                "memory resource alarm {}",
                if on { "set" } else { "cleared" }
            );
            self.publish();
        }
    }

    fn publish(&self) {
        self.tx.send_replace(self.any());
    }

    pub fn any(&self) -> bool {
        self.disk.load(Ordering::SeqCst) || self.memory.load(Ordering::SeqCst)
    }

    pub fn disk(&self) -> bool {
        self.disk.load(Ordering::SeqCst)
    }

    pub fn memory(&self) -> bool {
        self.memory.load(Ordering::SeqCst)
    }

    /// The reason RabbitMQ gives in `connection.blocked`.
    pub fn reason(&self) -> &'static str {
        match (self.memory(), self.disk()) {
            (true, true) => "low on memory & disk",
            (true, false) => "low on memory",
            _ => "low on disk",
        }
    }

    /// A receiver that changes whenever "any alarm raised" changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}

pub struct Broker {
    pub config: BrokerConfig,
    pub users: Users,
    pub alarms: Alarms,
    /// Message expiry timer; the binary runs [`Scheduler::run`].
    pub scheduler: Arc<Scheduler>,
    pub started_at: Instant,
    vhosts: RwLock<HashMap<String, Arc<VHost>>>,
    next_connection: AtomicU64,
}

impl Broker {
    pub fn new(config: BrokerConfig) -> Arc<Broker> {
        let b = Broker {
            users: Users::default(),
            alarms: Alarms::new(),
            scheduler: Arc::new(Scheduler::default()),
            started_at: Instant::now(),
            vhosts: RwLock::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
            config,
        };
        let c = &b.config;
        b.add_vhost(&c.default_vhost);
        b.users
            .add_user(&c.default_user, &c.default_pass, &["administrator"]);
        b.users.set_permission(
            &c.default_user,
            &c.default_vhost,
            Permission {
                configure: ".*".into(),
                write: ".*".into(),
                read: ".*".into(),
            },
        );
        b.users.set_loopback_users(c.loopback_users.clone());
        Arc::new(b)
    }

    pub fn add_vhost(&self, name: &str) -> Arc<VHost> {
        self.vhosts
            .write()
            .entry(name.to_string())
            .or_insert_with(|| VHost::new(name, self.scheduler.clone()))
            .clone()
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.read().get(name).cloned()
    }

    pub fn vhosts(&self) -> Vec<Arc<VHost>> {
        self.vhosts.read().values().cloned().collect()
    }

    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }
}
