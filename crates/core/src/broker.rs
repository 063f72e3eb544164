//! The broker: vhosts (with their metadata), users, resource alarms, connection ids, the
//! connection registry and the management state, opened from and recovered out of the
//! data directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::auth::{Permission, User, Users};
use crate::management::{Management, SHA256};
use crate::registry::Registry;
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
    /// The memory high watermark in bytes (0 until the monitor sets it), as the API
    /// shows it (`mem_limit`).
    memory_limit: std::sync::atomic::AtomicU64,
    tx: watch::Sender<bool>,
}

impl Alarms {
    fn new() -> Alarms {
        Alarms {
            disk: AtomicBool::new(false),
            memory: AtomicBool::new(false),
            memory_limit: std::sync::atomic::AtomicU64::new(0),
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

    pub fn set_memory_limit(&self, bytes: u64) {
        self.memory_limit.store(bytes, Ordering::Relaxed);
    }

    pub fn memory_limit(&self) -> u64 {
        self.memory_limit.load(Ordering::Relaxed)
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
    /// Live connections and channels, and churn.
    pub registry: Registry,
    /// Runtime and global parameters.
    pub management: Management,
    vhosts: RwLock<HashMap<String, VhostEntry>>,
    next_connection: AtomicU64,
    pub(crate) access_cache: crate::access::AccessCache,
}

/// A vhost and what is said about it (description, tags).
struct VhostEntry {
    vhost: Arc<VHost>,
    def: VhostDef,
}

/// RabbitMQ's description of the vhost it creates on first start.
const DEFAULT_VHOST_DESCRIPTION: &str = "Default virtual host";

impl Broker {
    /// Opens the data directory and brings back what it holds: users, vhosts,
    /// permissions, topic permissions, parameters, policies, durable exchanges, queues with
    /// their messages, and bindings. A first start creates the default user and vhost.
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
            registry: Registry::new(storage.queue_churn.clone()),
            management: Management::default(),
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
                b.put_vhost(
                    &c.default_vhost,
                    Some(DEFAULT_VHOST_DESCRIPTION.into()),
                    None,
                );
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
        b.migrate_management_file();
        b.ensure_cluster_id();
        Ok(b)
    }

    /// The registry of live connections.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runtime and global parameters.
    pub fn management(&self) -> &Management {
        &self.management
    }

    fn restore(&self, defs: &Definitions) {
        let t = Instant::now();
        for u in &defs.users {
            self.users.put(User {
                name: u.name.clone(),
                password_hash: u.password_hash.clone(),
                tags: u.tags.clone(),
                limits: u.limits.as_object().cloned().unwrap_or_default(),
            });
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
            self.users
                .set_topic_permission(&t.user, &t.vhost, &t.exchange, &t.write, &t.read);
        }
        self.management
            .restore(&defs.parameters, &defs.global_parameters);
        self.storage.remove_orphans(defs);
        for v in &defs.vhosts {
            let vhost = self.insert_vhost(v.clone());
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

    /// Adds a vhost (or updates the metadata of the one of that name), without
    /// journaling.
    fn insert_vhost(&self, def: VhostDef) -> Arc<VHost> {
        let mut map = self.vhosts.write();
        match map.get_mut(&def.name) {
            Some(e) => {
                e.def = def;
                e.vhost.clone()
            }
            None => {
                let v = VHost::new(&def.name, self.scheduler.clone(), self.storage.clone());
                map.insert(
                    def.name.clone(),
                    VhostEntry {
                        vhost: v.clone(),
                        def,
                    },
                );
                v
            }
        }
    }

    /// Creates a vhost, or updates its metadata (`None` keeps the current description or
    /// tags). Returns true if it was created.
    pub fn put_vhost(
        &self,
        name: &str,
        description: Option<String>,
        tags: Option<Vec<String>>,
    ) -> bool {
        let _g = self.management.serialise();
        let existing = self.vhost_def(name);
        let def = VhostDef {
            name: name.to_string(),
            description: description
                .or_else(|| existing.as_ref().and_then(|v| v.description.clone())),
            tags: tags
                .or_else(|| existing.as_ref().map(|v| v.tags.clone()))
                .unwrap_or_default(),
        };
        self.storage.journal(Op::PutVhost(def.clone()));
        self.insert_vhost(def);
        existing.is_none()
    }

    /// A vhost's metadata.
    pub fn vhost_def(&self, name: &str) -> Option<VhostDef> {
        self.vhosts.read().get(name).map(|e| e.def.clone())
    }

    /// Every vhost's metadata, by name.
    pub fn list_vhost_defs(&self) -> Vec<VhostDef> {
        let mut all: Vec<VhostDef> = self.vhosts.read().values().map(|e| e.def.clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn vhost_exists(&self, name: &str) -> bool {
        self.vhosts.read().contains_key(name)
    }

    /// Deletes a vhost: it is gone at once for new connections, its connections are
    /// closed, its queues (with their files), exchanges and policies deleted, and the
    /// permissions, topic permissions and parameters in it forgotten. None if there was no
    /// such vhost.
    pub fn delete_vhost(&self, name: &str) -> Option<Arc<VHost>> {
        let v = {
            let _g = self.management.serialise();
            let v = self.vhosts.write().remove(name)?.vhost;
            // Durable first: should the broker stop half-way, the files of what is left
            // are orphans, removed at the next start.
            self.storage.journal(Op::DeleteVhost {
                name: name.to_string(),
            });
            self.users.forget_vhost(name);
            self.management.forget_vhost(name);
            v
        };
        for c in self.registry.connections() {
            if c.info.vhost == name {
                c.force_close(&format!("vhost '{name}' is deleted"));
            }
        }
        for p in v.policies() {
            v.clear_policy(&p.name);
        }
        for q in v.queues() {
            let owner = q.exclusive_owner.unwrap_or(0);
            if let Err(e) = v.delete_queue(&q.name, false, false, owner) {
                tracing::error!(queue = %q.name, vhost = name, error = %e, "cannot delete a queue of a deleted vhost");
            }
        }
        for e in v.exchanges() {
            if !e.name.is_empty() && !e.name.starts_with("amq.") {
                let _ = v.delete_exchange(&e.name, false);
            }
        }
        self.registry.forget_vhost(name);
        tracing::info!(vhost = name, "vhost deleted");
        Some(v)
    }

    pub fn add_user(&self, name: &str, password: &str, tags: &[&str]) {
        self.users.add_user(name, password, tags);
        if let Some(u) = self.users.get(name) {
            self.storage.journal(Op::PutUser(user_def(&u)));
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
        self.vhosts.read().get(name).map(|e| e.vhost.clone())
    }

    pub fn vhosts(&self) -> Vec<Arc<VHost>> {
        self.vhosts
            .read()
            .values()
            .map(|e| e.vhost.clone())
            .collect()
    }

    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes everything durable (ack logs, pending syncs, a definitions snapshot).
    pub fn shutdown(&self) {
        self.storage.shutdown();
    }
}

/// A user as the definitions write it.
pub(crate) fn user_def(u: &User) -> UserDef {
    UserDef {
        name: u.name.clone(),
        password_hash: u.password_hash.clone(),
        hashing_algorithm: SHA256.into(),
        tags: u.tags.clone(),
        limits: serde_json::Value::Object(u.limits.clone()),
    }
}
