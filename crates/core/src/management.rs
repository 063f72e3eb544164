//! What the management API changes besides topology: users, vhosts with their metadata,
//! permissions, topic permissions, policies, runtime and global parameters, and the
//! definitions document (export and import), as `impl Broker` blocks.
//!
//! Durable changes go through [`Storage::journal`](crate::storage::Storage::journal) in
//! RabbitMQ's definitions format, like [`Broker::add_user`] does; policies live in their
//! vhost ([`crate::policy`]), which journals and applies them. Runtime and global
//! parameters (operator policies and vhost limits among them), topic permissions and the
//! cluster name have no journal operation yet: they are kept in `management.json` in the
//! data directory (RabbitMQ's definitions format, those keys only), written atomically on
//! every change, until the journal learns them.
//!
//! Users, vhosts and permissions have no delete in `auth`/`broker` yet, so this module
//! keeps the list of what exists (seeded from the durable definitions) and makes a
//! deleted user unable to log in by giving it a password hash nothing matches. Both go
//! once `Users::delete_user`, `Users::delete_permission`, `Users::list` and
//! `Broker::delete_vhost` exist.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

use parking_lot::Mutex;
use serde_json::{json, Value};
use warren_store::definitions::{
    write_atomic, BindingDef, Definitions, ExchangeDef, Op, PermissionDef, QueueDef, UserDef,
    VhostDef,
};
use warren_store::json::json_to_table_typed;

use crate::auth::{hash_password, Permission};
use crate::broker::Broker;
use crate::exchange::Destination;
use crate::registry::attached;
use crate::storage::{binding_def, exchange_def, queue_def};
use crate::vhost::{ExchangeDeclare, QueueDeclare};

/// The hashing algorithm Warren stores and checks.
pub const SHA256: &str = "rabbit_password_hashing_sha256";

/// A topic permission (RabbitMQ: per user, vhost and exchange).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicPermission {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// The part of the management state kept in `management.json`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Persisted {
    #[serde(default)]
    cluster_name: Option<String>,
    #[serde(default)]
    topic_permissions: Vec<TopicPermission>,
    /// RabbitMQ's parameter objects: vhost, component, name, value (operator policies
    /// and vhost limits are parameters too, as in RabbitMQ).
    #[serde(default)]
    parameters: Vec<Value>,
    /// name, value
    #[serde(default)]
    global_parameters: Vec<Value>,
}

struct State {
    users: BTreeMap<String, UserDef>,
    vhosts: BTreeMap<String, VhostDef>,
    /// (vhost, user)
    permissions: BTreeMap<(String, String), PermissionDef>,
    persisted: Persisted,
}

/// The management state of one broker.
pub struct Management {
    state: Mutex<State>,
    path: PathBuf,
}

/// Why an import or a change was refused: RabbitMQ's `reason` text.
pub type Refusal = String;

fn key_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

impl Management {
    fn load(broker: &Broker) -> Management {
        let defs = broker.storage.defs.current();
        let path = broker.config.data_dir.join("management.json");
        let persisted = match std::fs::read(&path) {
            Ok(raw) => serde_json::from_slice(&raw).unwrap_or_else(|e| {
                tracing::error!(file = %path.display(), error = %e, "cannot read the management state; starting without it");
                Persisted::default()
            }),
            Err(_) => Persisted::default(),
        };
        let mut persisted = persisted;
        if !persisted
            .global_parameters
            .iter()
            .any(|p| key_of(p, "name") == "internal_cluster_id")
        {
            // RabbitMQ creates one per cluster; exports carry it.
            persisted.global_parameters.push(json!({
                "name": "internal_cluster_id",
                "value": crate::util::generated_name("rabbitmq-cluster-id"),
            }));
        }
        // Topic permissions are enforced by `Users` (see `crate::access`).
        for t in &persisted.topic_permissions {
            broker
                .users
                .set_topic_permission(&t.user, &t.vhost, &t.exchange, &t.write, &t.read);
        }
        Management {
            state: Mutex::new(State {
                users: defs
                    .users
                    .into_iter()
                    .map(|u| (u.name.clone(), u))
                    .collect(),
                vhosts: defs
                    .vhosts
                    .into_iter()
                    .map(|v| (v.name.clone(), v))
                    .collect(),
                permissions: defs
                    .permissions
                    .into_iter()
                    .map(|p| ((p.vhost.clone(), p.user.clone()), p))
                    .collect(),
                persisted,
            }),
            path,
        }
    }

    fn save(&self, p: &Persisted) {
        let raw = match serde_json::to_vec_pretty(p) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the management state");
                return;
            }
        };
        if let Err(e) = write_atomic(&self.path, &raw) {
            tracing::error!(file = %self.path.display(), error = %e, "cannot write the management state");
        }
    }
}

static MANAGEMENT: OnceLock<parking_lot::Mutex<HashMap<usize, &'static Management>>> =
    OnceLock::new();

/// What to do with a user's password in [`Broker::put_user`].
#[derive(Debug, Clone)]
pub enum Password {
    /// Hash this clear-text password.
    Clear(String),
    /// Store this hash as is (RabbitMQ's base64 salted SHA-256).
    Hash(String),
    /// Keep the current one (or none for a new user: no password login).
    Keep,
}

impl Broker {
    /// The management state (created on first use from the durable definitions).
    pub fn management(&self) -> &Management {
        attached(&MANAGEMENT, self, || Management::load(self))
    }

    fn journal(&self, op: Op) {
        self.storage.journal(op);
    }

    // ----- users ---------------------------------------------------------------------

    pub fn list_users(&self) -> Vec<UserDef> {
        self.management()
            .state
            .lock()
            .users
            .values()
            .cloned()
            .collect()
    }

    pub fn user_def(&self, name: &str) -> Option<UserDef> {
        self.management().state.lock().users.get(name).cloned()
    }

    /// Creates or updates a user. Returns true if it was created.
    pub fn put_user(&self, name: &str, password: Password, tags: Vec<String>) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        let existing = st.users.get(name).cloned();
        let hash = match password {
            Password::Clear(p) => hash_password(&p),
            Password::Hash(h) => h,
            Password::Keep => existing
                .as_ref()
                .map(|u| u.password_hash.clone())
                .unwrap_or_default(),
        };
        let limits = existing
            .as_ref()
            .map(|u| u.limits.clone())
            .unwrap_or_else(|| json!({}));
        self.install_user(&mut st, name, hash, tags, limits);
        existing.is_none()
    }

    fn install_user(
        &self,
        st: &mut State,
        name: &str,
        hash: String,
        tags: Vec<String>,
        limits: Value,
    ) {
        let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        self.users.add_user_with_hash(name, &hash, &tag_refs);
        let def = UserDef {
            name: name.to_string(),
            password_hash: hash,
            hashing_algorithm: SHA256.into(),
            tags,
            limits,
        };
        self.journal(Op::PutUser(def.clone()));
        st.users.insert(name.to_string(), def);
    }

    /// Deletes a user with its permissions. False if there was none.
    pub fn delete_user(&self, name: &str) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        if st.users.remove(name).is_none() {
            return false;
        }
        // `Users` cannot forget a user yet: an empty hash matches no password, and no
        // tags give no management access.
        self.users.add_user_with_hash(name, "", &[]);
        st.permissions.retain(|(_, u), _| u != name);
        let before = st.persisted.topic_permissions.len();
        st.persisted.topic_permissions.retain(|t| {
            if t.user == name {
                self.users.clear_topic_permissions(&t.user, &t.vhost, None);
            }
            t.user != name
        });
        if st.persisted.topic_permissions.len() != before {
            m.save(&st.persisted);
        }
        self.journal(Op::DeleteUser {
            name: name.to_string(),
        });
        true
    }

    /// Sets or clears (`value` None) one of a user's limits (`max-connections`,
    /// `max-channels`). False if there is no such user.
    pub fn set_user_limit(&self, user: &str, limit: &str, value: Option<Value>) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        let Some(mut u) = st.users.get(user).cloned() else {
            return false;
        };
        let mut limits = u.limits.as_object().cloned().unwrap_or_default();
        match value {
            Some(v) => {
                limits.insert(limit.to_string(), v);
            }
            None => {
                limits.remove(limit);
            }
        }
        u.limits = Value::Object(limits);
        self.journal(Op::PutUser(u.clone()));
        st.users.insert(user.to_string(), u);
        true
    }

    // ----- vhosts --------------------------------------------------------------------

    pub fn list_vhost_defs(&self) -> Vec<VhostDef> {
        self.management()
            .state
            .lock()
            .vhosts
            .values()
            .cloned()
            .collect()
    }

    pub fn vhost_def(&self, name: &str) -> Option<VhostDef> {
        self.management().state.lock().vhosts.get(name).cloned()
    }

    /// Whether the vhost exists (a deleted vhost's object may linger in the broker until
    /// `Broker::delete_vhost` exists; this is the answer to trust).
    pub fn vhost_exists(&self, name: &str) -> bool {
        self.management().state.lock().vhosts.contains_key(name)
    }

    /// Creates or updates a vhost. `None` keeps the current description or tags.
    /// Returns true if it was created.
    pub fn put_vhost(
        &self,
        name: &str,
        description: Option<String>,
        tags: Option<Vec<String>>,
    ) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        let existing = st.vhosts.get(name).cloned();
        let def = VhostDef {
            name: name.to_string(),
            description: description
                .or_else(|| existing.as_ref().and_then(|v| v.description.clone())),
            tags: tags
                .or_else(|| existing.as_ref().map(|v| v.tags.clone()))
                .unwrap_or_default(),
        };
        if existing.is_none() {
            // add_vhost journals a bare PutVhost; the one below carries the metadata.
            self.add_vhost(name);
        }
        self.journal(Op::PutVhost(def.clone()));
        st.vhosts.insert(name.to_string(), def);
        existing.is_none()
    }

    /// Deletes a vhost: closes its connections, deletes its queues and exchanges, drops
    /// permissions, policies and parameters in it. False if there was none.
    pub fn delete_vhost(&self, name: &str) -> bool {
        let m = self.management();
        {
            let mut st = m.state.lock();
            if st.vhosts.remove(name).is_none() {
                return false;
            }
            st.permissions.retain(|(v, _), _| v != name);
            let p = &mut st.persisted;
            p.topic_permissions.retain(|t| {
                if t.vhost == name {
                    self.users.clear_topic_permissions(&t.user, &t.vhost, None);
                }
                t.vhost != name
            });
            p.parameters.retain(|x| key_of(x, "vhost") != name);
            m.save(&st.persisted);
        }
        for c in self.registry().connections() {
            if c.info.vhost == name {
                c.force_close(&format!("vhost '{name}' is deleted"));
            }
        }
        if let Some(v) = self.vhost(name) {
            for p in v.policies() {
                v.clear_policy(&p.name);
            }
            for q in v.queues() {
                let owner = q.exclusive_owner.unwrap_or(0);
                let _ = v.delete_queue(&q.name, false, false, owner);
            }
            for e in v.exchanges() {
                if !e.name.is_empty() && !e.name.starts_with("amq.") {
                    let _ = v.delete_exchange(&e.name, false);
                }
            }
        }
        self.registry().forget_vhost(name);
        self.journal(Op::DeleteVhost {
            name: name.to_string(),
        });
        true
    }

    // ----- permissions ---------------------------------------------------------------

    pub fn list_permissions(&self) -> Vec<PermissionDef> {
        self.management()
            .state
            .lock()
            .permissions
            .values()
            .cloned()
            .collect()
    }

    pub fn permission_def(&self, vhost: &str, user: &str) -> Option<PermissionDef> {
        self.management()
            .state
            .lock()
            .permissions
            .get(&(vhost.to_string(), user.to_string()))
            .cloned()
    }

    /// Sets a user's permissions in a vhost. Ok(true) if they were created; Err with
    /// RabbitMQ's reason if the user or vhost does not exist.
    pub fn put_permission(&self, def: PermissionDef) -> Result<bool, Refusal> {
        let m = self.management();
        let mut st = m.state.lock();
        if !st.users.contains_key(&def.user) || !st.vhosts.contains_key(&def.vhost) {
            return Err("vhost_or_user_not_found".into());
        }
        self.set_permission(
            &def.user,
            &def.vhost,
            Permission {
                configure: def.configure.clone(),
                write: def.write.clone(),
                read: def.read.clone(),
            },
        );
        let created = st
            .permissions
            .insert((def.vhost.clone(), def.user.clone()), def)
            .is_none();
        Ok(created)
    }

    pub fn delete_permission(&self, vhost: &str, user: &str) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        if st
            .permissions
            .remove(&(vhost.to_string(), user.to_string()))
            .is_none()
        {
            return false;
        }
        // `Users` cannot forget a permission yet: patterns that match nothing.
        let none = "^$".to_string();
        self.users.set_permission(
            user,
            vhost,
            Permission {
                configure: none.clone(),
                write: none.clone(),
                read: none,
            },
        );
        self.journal(Op::DeletePermission {
            user: user.to_string(),
            vhost: vhost.to_string(),
        });
        true
    }

    // ----- topic permissions ---------------------------------------------------------

    pub fn list_topic_permissions(&self) -> Vec<TopicPermission> {
        self.management()
            .state
            .lock()
            .persisted
            .topic_permissions
            .clone()
    }

    /// Sets a topic permission (one per user, vhost and exchange). Ok(true) if created.
    pub fn put_topic_permission(&self, t: TopicPermission) -> Result<bool, Refusal> {
        let m = self.management();
        let mut st = m.state.lock();
        if !st.users.contains_key(&t.user) || !st.vhosts.contains_key(&t.vhost) {
            return Err("vhost_or_user_not_found".into());
        }
        self.users
            .set_topic_permission(&t.user, &t.vhost, &t.exchange, &t.write, &t.read);
        let list = &mut st.persisted.topic_permissions;
        let created = match list
            .iter_mut()
            .find(|x| x.user == t.user && x.vhost == t.vhost && x.exchange == t.exchange)
        {
            Some(slot) => {
                *slot = t;
                false
            }
            None => {
                list.push(t);
                true
            }
        };
        m.save(&st.persisted);
        Ok(created)
    }

    /// Deletes a user's topic permissions in a vhost (for one exchange, or all).
    pub fn delete_topic_permissions(
        &self,
        vhost: &str,
        user: &str,
        exchange: Option<&str>,
    ) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        let list = &mut st.persisted.topic_permissions;
        let before = list.len();
        list.retain(|x| {
            !(x.user == user && x.vhost == vhost && exchange.is_none_or(|e| x.exchange == e))
        });
        let changed = list.len() != before;
        if changed {
            self.users.clear_topic_permissions(user, vhost, exchange);
            m.save(&st.persisted);
        }
        changed
    }

    // ----- policies, parameters ------------------------------------------------------

    /// Policies as RabbitMQ's API shows them, optionally of one vhost. Policies live in
    /// their vhost, which applies them ([`crate::policy`]).
    pub fn list_policies(&self, vhost: Option<&str>) -> Vec<Value> {
        let names: Vec<String> = match vhost {
            Some(v) => vec![v.to_string()],
            None => self.list_vhost_defs().into_iter().map(|v| v.name).collect(),
        };
        let mut out = Vec::new();
        for n in names {
            let Some(v) = self.vhost(&n) else { continue };
            let mut ps = v.policies();
            ps.sort_by(|a, b| a.name.cmp(&b.name));
            out.extend(ps.iter().map(policy_json));
        }
        out
    }

    /// Creates or replaces a policy from RabbitMQ's request body (`pattern`,
    /// `definition`, optional `apply-to` and `priority`). Ok(true) if it was created;
    /// Err with RabbitMQ's reason if it is invalid.
    pub fn put_policy(&self, vhost: &str, name: &str, body: &Value) -> Result<bool, Refusal> {
        let v = self
            .vhost(vhost)
            .filter(|_| self.vhost_exists(vhost))
            .ok_or_else(|| format!("no_such_vhost: {vhost}"))?;
        let missing: Vec<&str> = ["pattern", "definition"]
            .into_iter()
            .filter(|k| body.get(*k).is_none())
            .collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing
                .iter()
                .map(|k| format!("{{key_missing,{k}}}"))
                .collect();
            return Err(format!("[{}]", keys.join(",")));
        }
        let pattern = body["pattern"].as_str().unwrap_or("").to_string();
        let apply_to = body
            .get("apply-to")
            .and_then(Value::as_str)
            .unwrap_or("all");
        let priority = match body.get("priority") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().map_err(|_| {
                format!("Validation failed\n\n<<\"{s}\">> is not a valid priority\n")
            })?,
            Some(other) => {
                return Err(format!(
                    "Validation failed\n\n{other} is not a valid priority\n"
                ))
            }
        };
        let definition = body["definition"].as_object().cloned().unwrap_or_default();
        let policy =
            crate::policy::Policy::new(vhost, name, &pattern, apply_to, priority, definition)?;
        let created = !v.policies().iter().any(|p| p.name == name);
        v.set_policy(policy);
        Ok(created)
    }

    pub fn delete_policy(&self, vhost: &str, name: &str) -> bool {
        self.vhost(vhost).is_some_and(|v| v.clear_policy(name))
    }

    /// Runtime parameters (vhost, component, name, value), filtered by what is given.
    pub fn list_parameters(
        &self,
        component: Option<&str>,
        vhost: Option<&str>,
        name: Option<&str>,
    ) -> Vec<Value> {
        let st = self.management().state.lock();
        st.persisted
            .parameters
            .iter()
            .filter(|p| {
                component.is_none_or(|c| key_of(p, "component") == c)
                    && vhost.is_none_or(|v| key_of(p, "vhost") == v)
                    && name.is_none_or(|n| key_of(p, "name") == n)
            })
            .cloned()
            .collect()
    }

    /// Creates or replaces a runtime parameter. Returns true if it was created.
    pub fn put_parameter(&self, component: &str, vhost: &str, name: &str, value: Value) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        let obj = json!({"value": value, "vhost": vhost, "component": component, "name": name});
        let list = &mut st.persisted.parameters;
        let same = |p: &Value| {
            key_of(p, "component") == component
                && key_of(p, "vhost") == vhost
                && key_of(p, "name") == name
        };
        let created = match list.iter_mut().find(|p| same(p)) {
            Some(slot) => {
                *slot = obj;
                false
            }
            None => {
                list.push(obj);
                true
            }
        };
        m.save(&st.persisted);
        created
    }

    pub fn delete_parameter(&self, component: &str, vhost: &str, name: &str) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        let list = &mut st.persisted.parameters;
        let before = list.len();
        list.retain(|p| {
            !(key_of(p, "component") == component
                && key_of(p, "vhost") == vhost
                && key_of(p, "name") == name)
        });
        let changed = list.len() != before;
        if changed {
            m.save(&st.persisted);
        }
        changed
    }

    pub fn list_global_parameters(&self) -> Vec<Value> {
        self.management()
            .state
            .lock()
            .persisted
            .global_parameters
            .clone()
    }

    pub fn put_global_parameter(&self, name: &str, value: Value) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        let obj = json!({"name": name, "value": value});
        let list = &mut st.persisted.global_parameters;
        let created = match list.iter_mut().find(|p| key_of(p, "name") == name) {
            Some(slot) => {
                *slot = obj;
                false
            }
            None => {
                list.push(obj);
                true
            }
        };
        m.save(&st.persisted);
        created
    }

    pub fn delete_global_parameter(&self, name: &str) -> bool {
        let m = self.management();
        let mut st = m.state.lock();
        let list = &mut st.persisted.global_parameters;
        let before = list.len();
        list.retain(|p| key_of(p, "name") != name);
        let changed = list.len() != before;
        if changed {
            m.save(&st.persisted);
        }
        changed
    }

    /// The cluster name (RabbitMQ's `cluster_name`; the node name until set).
    pub fn cluster_name(&self) -> String {
        self.management()
            .state
            .lock()
            .persisted
            .cluster_name
            .clone()
            .unwrap_or_else(|| self.config.node_name.clone())
    }

    pub fn set_cluster_name(&self, name: &str) {
        let m = self.management();
        let mut st = m.state.lock();
        st.persisted.cluster_name = Some(name.to_string());
        m.save(&st.persisted);
    }

    // ----- definitions ---------------------------------------------------------------

    /// The whole broker's definitions, as `GET /api/definitions` returns them.
    pub fn export_definitions(&self, rabbitmq_version: &str, product: (&str, &str)) -> Definitions {
        let (users, vhosts, permissions, persisted) = {
            let st = self.management().state.lock();
            (
                st.users.values().cloned().collect(),
                st.vhosts.values().cloned().collect::<Vec<_>>(),
                st.permissions.values().cloned().collect(),
                st.persisted.clone(),
            )
        };
        let mut d = Definitions {
            rabbit_version: Some(rabbitmq_version.into()),
            rabbitmq_version: Some(rabbitmq_version.into()),
            product_name: Some(product.0.into()),
            product_version: Some(product.1.into()),
            users,
            permissions,
            topic_permissions: persisted
                .topic_permissions
                .iter()
                .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
                .collect(),
            parameters: persisted.parameters,
            global_parameters: persisted.global_parameters,
            ..Default::default()
        };
        // Through JSON: the definitions type of a policy is the store's business.
        d.policies =
            serde_json::from_value(Value::Array(self.list_policies(None))).unwrap_or_default();
        for v in &vhosts {
            self.export_topology(&v.name, &mut d);
        }
        d.vhosts = vhosts;
        d
    }

    /// Appends a vhost's queues, exchanges and bindings (those a definitions export
    /// holds: everything but exclusive queues, the default and `amq.*` exchanges, and the
    /// default exchange's implicit bindings).
    fn export_topology(&self, vhost: &str, d: &mut Definitions) {
        let Some(v) = self.vhost(vhost) else { return };
        let mut queues: Vec<QueueDef> = v
            .queues()
            .iter()
            .filter(|q| !q.is_exclusive())
            .map(|q| queue_def(q))
            .collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        let mut exchanges: Vec<ExchangeDef> = Vec::new();
        let mut bindings: Vec<BindingDef> = Vec::new();
        let mut all = v.exchanges();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        for e in &all {
            if !e.name.is_empty() && !e.name.starts_with("amq.") {
                exchanges.push(exchange_def(e));
            }
            if e.name.is_empty() {
                continue;
            }
            for b in e.bindings() {
                if let Destination::Queue(q) = &b.destination {
                    if q.is_exclusive() {
                        continue;
                    }
                }
                bindings.push(binding_def(e, &b.destination, &b.routing_key, &b.arguments));
            }
        }
        d.queues.extend(queues);
        d.exchanges.extend(exchanges);
        d.bindings.extend(bindings);
    }

    /// One vhost's definitions, as `GET /api/definitions/{vhost}` returns them (no
    /// users, vhosts or permissions, and no `vhost` keys).
    pub fn export_vhost_definitions(&self, vhost: &str, rabbitmq_version: &str) -> Value {
        let mut d = Definitions::default();
        self.export_topology(vhost, &mut d);
        // Objects without their `vhost` key, as RabbitMQ writes a vhost's export.
        fn stripped<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
            items
                .iter()
                .map(|x| {
                    let mut v = serde_json::to_value(x).unwrap_or(Value::Null);
                    if let Value::Object(m) = &mut v {
                        m.remove("vhost");
                    }
                    v
                })
                .collect()
        }
        json!({
            "rabbit_version": rabbitmq_version,
            "rabbitmq_version": rabbitmq_version,
            "parameters": stripped(&self.list_parameters(None, Some(vhost), None)),
            "policies": stripped(&self.list_policies(Some(vhost))),
            "queues": stripped(&d.queues),
            "exchanges": stripped(&d.exchanges),
            "bindings": stripped(&d.bindings),
        })
    }

    /// Imports a definitions document (RabbitMQ's or Warren's). With `only_vhost`, the
    /// document is one vhost's (`POST /api/definitions/{vhost}`): its objects carry no
    /// `vhost` key and all go to that vhost. Stops at the first error, with RabbitMQ's
    /// reason.
    pub fn import_definitions(&self, doc: &Value, only_vhost: Option<&str>) -> Result<(), Refusal> {
        let Value::Object(top) = doc else {
            return Err("failed_to_parse_json".into());
        };
        let items = |k: &str| -> Vec<Value> {
            let list = top
                .get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            match only_vhost {
                None => list,
                Some(v) => list
                    .into_iter()
                    .map(|mut x| {
                        if let Value::Object(m) = &mut x {
                            m.insert("vhost".into(), Value::String(v.into()));
                        }
                        x
                    })
                    .collect(),
            }
        };
        fn parse<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, Refusal> {
            serde_json::from_value(v).map_err(|e| format!("invalid {what} definition: {e}"))
        }
        if only_vhost.is_none() {
            for u in items("users") {
                let u: UserDef = parse(u, "user")?;
                let m = self.management();
                let mut st = m.state.lock();
                if u.hashing_algorithm != SHA256 {
                    tracing::warn!(user = %u.name, algorithm = %u.hashing_algorithm, "imported user's password hash uses an algorithm Warren does not check; password login will fail");
                }
                let limits = if u.limits.is_object() {
                    u.limits
                } else {
                    json!({})
                };
                self.install_user(&mut st, &u.name, u.password_hash, u.tags, limits);
            }
            for v in items("vhosts") {
                let v: VhostDef = parse(v, "vhost")?;
                let tags = if v.tags.is_empty() {
                    None
                } else {
                    Some(v.tags)
                };
                self.put_vhost(&v.name, v.description, tags);
            }
            for p in items("permissions") {
                let p: PermissionDef = parse(p, "permission")?;
                self.put_permission(p)?;
            }
            for t in items("topic_permissions") {
                let t: TopicPermission = parse(t, "topic permission")?;
                self.put_topic_permission(t)?;
            }
            for g in items("global_parameters") {
                self.put_global_parameter(
                    &key_of(&g, "name"),
                    g.get("value").cloned().unwrap_or(Value::Null),
                );
            }
        }
        let need_vhost = |v: &str| -> Result<std::sync::Arc<crate::VHost>, Refusal> {
            if !self.vhost_exists(v) {
                return Err(format!("no_such_vhost: {v}"));
            }
            self.vhost(v).ok_or_else(|| format!("no_such_vhost: {v}"))
        };
        for p in items("parameters") {
            let v = key_of(&p, "vhost");
            need_vhost(&v)?;
            self.put_parameter(
                &key_of(&p, "component"),
                &v,
                &key_of(&p, "name"),
                p.get("value").cloned().unwrap_or(Value::Null),
            );
        }
        for p in items("policies") {
            let v = key_of(&p, "vhost");
            need_vhost(&v)?;
            self.put_policy(&v, &key_of(&p, "name"), &p)?;
        }
        for q in items("queues") {
            let q: QueueDef = parse(q, "queue")?;
            let vh = need_vhost(&q.vhost)?;
            let d = QueueDeclare {
                name: q.name.clone(),
                passive: false,
                durable: q.durable,
                exclusive: false,
                auto_delete: q.auto_delete,
                arguments: json_to_table_typed(&q.arguments, q.argument_types.as_ref()),
            };
            if let Err(e) = vh.declare_queue(&d, 0) {
                // An existing queue declared differently stays as it is (RabbitMQ too).
                if e.code != warren_amqp_codec::reply::PRECONDITION_FAILED
                    || !e.message.starts_with("inequivalent arg")
                {
                    return Err(e.message);
                }
                tracing::warn!(queue = %q.name, vhost = %q.vhost, error = %e, "import: keeping the existing queue");
            }
        }
        for x in items("exchanges") {
            let x: ExchangeDef = parse(x, "exchange")?;
            let vh = need_vhost(&x.vhost)?;
            if x.name.is_empty() || x.name.starts_with("amq.") {
                continue;
            }
            let d = ExchangeDeclare {
                name: x.name.clone(),
                kind: x.kind.clone(),
                passive: false,
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: json_to_table_typed(&x.arguments, x.argument_types.as_ref()),
            };
            if let Err(e) = vh.declare_exchange(&d) {
                if !e.message.starts_with("inequivalent arg") {
                    return Err(e.message);
                }
                tracing::warn!(exchange = %x.name, vhost = %x.vhost, error = %e, "import: keeping the existing exchange");
            }
        }
        for b in items("bindings") {
            let b: BindingDef = parse(b, "binding")?;
            let vh = need_vhost(&b.vhost)?;
            let args = json_to_table_typed(&b.arguments, b.argument_types.as_ref());
            // As RabbitMQ 3.x: a binding whose source or destination is missing is
            // skipped, not an error.
            let r = if b.destination_type == "exchange" {
                vh.bind_exchange(&b.destination, &b.source, &b.routing_key, &args)
            } else {
                let owner = vh
                    .queues()
                    .iter()
                    .find(|q| q.name == b.destination)
                    .and_then(|q| q.exclusive_owner)
                    .unwrap_or(0);
                vh.bind_queue(&b.destination, &b.source, &b.routing_key, &args, owner)
            };
            if let Err(e) = r {
                if e.code != warren_amqp_codec::reply::NOT_FOUND {
                    return Err(e.message);
                }
                tracing::warn!(source = %b.source, destination = %b.destination, error = %e, "import: skipping a binding");
            }
        }
        Ok(())
    }

    /// Names of users that have no permission in any vhost.
    pub fn users_without_permissions(&self) -> Vec<UserDef> {
        let st = self.management().state.lock();
        let with: BTreeSet<&str> = st.permissions.values().map(|p| p.user.as_str()).collect();
        st.users
            .values()
            .filter(|u| !with.contains(u.name.as_str()))
            .cloned()
            .collect()
    }
}

/// A policy as RabbitMQ's API and definitions write it.
pub fn policy_json(p: &crate::policy::Policy) -> Value {
    json!({
        "vhost": p.vhost,
        "name": p.name,
        "pattern": p.pattern,
        "apply-to": p.apply_to.as_str(),
        "definition": Value::Object(p.definition.clone()),
        "priority": p.priority,
    })
}
