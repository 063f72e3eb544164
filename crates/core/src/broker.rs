//! The broker: vhosts, users, resource alarms, and connection ids.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::auth::{Permission, Users};
use crate::scheduler::Scheduler;
use crate::storage::Storage;
use crate::vhost::VHost;
use crate::ConnectionId;
use warren_store::definitions::{Definitions, Op, PermissionDef, UserDef, VhostDef};

/// Settings the core needs; protocol and listener settings live with the adapters.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_name: String,
    pub default_user: String,
    pub default_pass: String,
    pub default_vhost: String,
    /// Users allowed to log in from loopback addresses only (RabbitMQ: `loopback_users`).
    pub loopback_users: Vec<String>,
    pub data_dir: PathBuf,
    /// Size of a queue's segment files.
    pub segment_size: u32,
    /// Reply to durable topology changes only once they are on disk.
    pub sync_topology: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_name: "warren@localhost".into(),
            default_user: "guest".into(),
            default_pass: "guest".into(),
            default_vhost: "/".into(),
            loopback_users: vec!["guest".into()],
            data_dir: PathBuf::from("warren-data"),
            segment_size: warren_store::segment::DEFAULT_SEGMENT_SIZE,
            sync_topology: false,
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
    pub storage: Arc<Storage>,
    pub started_at: Instant,
    vhosts: RwLock<HashMap<String, Arc<VHost>>>,
    next_connection: AtomicU64,
    pub(crate) access_cache: crate::access::AccessCache,
}

impl Broker {
    /// Opens the data directory and brings back what it holds: users, vhosts,
    /// permissions, durable exchanges, queues with their messages, and bindings. A first
    /// start creates the default user and vhost.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, String> {
        let (storage, found) =
            Storage::open(&config.data_dir, config.segment_size, config.sync_topology).map_err(
                |e| {
                    format!(
                        "cannot open data directory {}: {e}",
                        config.data_dir.display()
                    )
                },
            )?;
        let b = Arc::new(Broker {
            users: Users::default(),
            alarms: Alarms::new(),
            scheduler: Arc::new(Scheduler::default()),
            storage,
            started_at: Instant::now(),
            vhosts: RwLock::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
            access_cache: Default::default(),
            config,
        });
        b.users.set_loopback_users(b.config.loopback_users.clone());
        match found {
            None => {
                let c = &b.config;
                b.add_vhost(&c.default_vhost);
                b.add_user(&c.default_user, &c.default_pass, &["administrator"]);
                b.set_permission(
                    &c.default_user,
                    &c.default_vhost,
                    Permission {
                        configure: ".*".into(),
                        write: ".*".into(),
                        read: ".*".into(),
                    },
                );
            }
            Some(defs) => b.restore(&defs),
        }
        Ok(b)
    }

    fn restore(&self, defs: &Definitions) {
        let t = Instant::now();
        for u in &defs.users {
            let tags: Vec<&str> = u.tags.iter().map(String::as_str).collect();
            self.users
                .add_user_with_hash(&u.name, &u.password_hash, &tags);
        }
        for p in &defs.permissions {
            self.users.set_permission(
                &p.user,
                &p.vhost,
                Permission {
                    configure: p.configure.clone(),
                    write: p.write.clone(),
                    read: p.read.clone(),
                },
            );
        }
        for t in &defs.topic_permissions {
            let f = |k: &str| {
                t.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            self.users.set_topic_permission(
                &f("user"),
                &f("vhost"),
                &f("exchange"),
                &f("write"),
                &f("read"),
            );
        }
        self.storage.remove_orphans(defs);
        for v in &defs.vhosts {
            let vhost = self.insert_vhost(&v.name);
            vhost.restore(defs);
        }
        tracing::info!(
            vhosts = defs.vhosts.len(),
            queues = defs.queues.len(),
            exchanges = defs.exchanges.len(),
            bindings = defs.bindings.len(),
            elapsed_ms = t.elapsed().as_millis() as u64,
            "definitions and messages recovered"
        );
    }

    fn insert_vhost(&self, name: &str) -> Arc<VHost> {
        self.vhosts
            .write()
            .entry(name.to_string())
            .or_insert_with(|| VHost::new(name, self.scheduler.clone(), self.storage.clone()))
            .clone()
    }

    pub fn add_vhost(&self, name: &str) -> Arc<VHost> {
        let v = self.insert_vhost(name);
        self.storage.journal(Op::PutVhost(VhostDef {
            name: name.to_string(),
            description: None,
            tags: Vec::new(),
        }));
        v
    }

    pub fn add_user(&self, name: &str, password: &str, tags: &[&str]) {
        self.users.add_user(name, password, tags);
        if let Some(u) = self.users.get(name) {
            self.storage.journal(Op::PutUser(UserDef {
                name: u.name,
                password_hash: u.password_hash,
                hashing_algorithm: "rabbit_password_hashing_sha256".into(),
                tags: u.tags,
                limits: serde_json::json!({}),
            }));
        }
    }

    pub fn set_permission(&self, user: &str, vhost: &str, p: Permission) {
        self.storage.journal(Op::PutPermission(PermissionDef {
            user: user.to_string(),
            vhost: vhost.to_string(),
            configure: p.configure.clone(),
            write: p.write.clone(),
            read: p.read.clone(),
        }));
        self.users.set_permission(user, vhost, p);
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

    /// Makes everything durable (ack logs, pending syncs, a definitions snapshot).
    pub fn shutdown(&self) {
        self.storage.shutdown();
    }
}
