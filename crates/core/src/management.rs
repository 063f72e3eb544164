//! What the management API changes besides topology: users, permissions, topic
//! permissions, policies, runtime and global parameters (the cluster name is one), and the
//! definitions document (export and import), as `impl Broker` blocks; [`Management`] holds
//! the parameters.
//!
//! The live state is kept by what enforces it: users and permissions by
//! [`crate::auth::Users`], vhosts and their metadata by the broker, policies by their
//! vhost ([`crate::policy`]), parameters here. Every change is journaled in RabbitMQ's
//! definitions format ([`Storage::journal`](crate::storage::Storage::journal)) and comes
//! back through [`Broker::open`].

use std::collections::BTreeSet;

use parking_lot::{Mutex, MutexGuard};
use serde_json::{json, Value};
use warren_store::definitions::{
    BindingDef, Definitions, ExchangeDef, GlobalParameterDef, Op, ParameterDef, PermissionDef,
    QueueDef, TopicPermissionDef, UserDef, VhostDef,
};
use warren_store::json::json_to_table_typed;

use crate::auth::{hash_password, Permission, User};
use crate::broker::{user_def, Broker};
use crate::exchange::Destination;
use crate::policy::erlang_term;
use crate::storage::{binding_def, exchange_def, queue_def};
use crate::vhost::{ExchangeDeclare, QueueDeclare};

/// The hashing algorithm Warren stores and checks.
pub const SHA256: &str = "rabbit_password_hashing_sha256";

/// The global parameter that holds the cluster name (as in RabbitMQ).
pub const CLUSTER_NAME: &str = "cluster_name";

/// The global parameter RabbitMQ creates once per cluster; exports carry it.
const CLUSTER_ID: &str = "internal_cluster_id";

/// A topic permission (RabbitMQ: per user, vhost and exchange).
pub type TopicPermission = TopicPermissionDef;

#[derive(Default)]
struct Params {
    /// In the order they were created.
    runtime: Vec<ParameterDef>,
    global: Vec<GlobalParameterDef>,
}

/// Runtime and global parameters, and the lock that keeps the journal in the order of
/// the changes it records.
#[derive(Default)]
pub struct Management {
    params: Mutex<Params>,
    /// Held across "change, then journal" of users, permissions, vhost metadata and
    /// parameters, so that two concurrent changes to one object are journaled in the
    /// order they were applied.
    changes: Mutex<()>,
}

impl Management {
    pub(crate) fn restore(&self, runtime: &[ParameterDef], global: &[GlobalParameterDef]) {
        let mut p = self.params.lock();
        p.runtime = runtime.to_vec();
        p.global = global.to_vec();
    }

    /// Forgets the parameters of a deleted vhost (the journal's `DeleteVhost` drops them
    /// too).
    pub(crate) fn forget_vhost(&self, vhost: &str) {
        self.params.lock().runtime.retain(|p| p.vhost != vhost);
    }

    pub(crate) fn serialise(&self) -> MutexGuard<'_, ()> {
        self.changes.lock()
    }

    fn global(&self, name: &str) -> Option<Value> {
        self.params
            .lock()
            .global
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.clone())
    }
}

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

/// Why an import or a change was refused: RabbitMQ's `reason` text.
pub type Refusal = String;

fn key_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn permission_def(user: &str, vhost: &str, p: &Permission) -> PermissionDef {
    PermissionDef {
        user: user.to_string(),
        vhost: vhost.to_string(),
        configure: p.configure.clone(),
        write: p.write.clone(),
        read: p.read.clone(),
    }
}

impl Broker {
    fn journal(&self, op: Op) {
        self.storage.journal(op);
    }

    // ----- users ---------------------------------------------------------------------

    pub fn list_users(&self) -> Vec<UserDef> {
        self.users.list().iter().map(user_def).collect()
    }

    pub fn user_def(&self, name: &str) -> Option<UserDef> {
        self.users.get(name).as_ref().map(user_def)
    }

    /// Creates or updates a user (its limits are kept). Returns true if it was created.
    pub fn put_user(&self, name: &str, password: Password, tags: Vec<String>) -> bool {
        let _g = self.management.serialise();
        let existing = self.users.get(name);
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
            .unwrap_or_default();
        self.install_user(User {
            name: name.to_string(),
            password_hash: hash,
            tags,
            limits,
        });
        existing.is_none()
    }

    fn install_user(&self, u: User) {
        self.journal(Op::PutUser(user_def(&u)));
        self.users.put(u);
    }

    /// Deletes a user with its permissions and topic permissions, and closes its
    /// connections (as RabbitMQ: "user 'x' is deleted"). False if there was none.
    pub fn delete_user(&self, name: &str) -> bool {
        {
            let _g = self.management.serialise();
            if self.users.delete_user(name).is_none() {
                return false;
            }
            // The journal's DeleteUser drops the permissions too.
            self.journal(Op::DeleteUser {
                name: name.to_string(),
            });
        }
        for c in self.registry.connections() {
            if c.info.user == name {
                c.force_close(&format!("user '{name}' is deleted"));
            }
        }
        true
    }

    /// Sets or clears (`value` None) one of a user's limits (`max-connections`,
    /// `max-channels`). False if there is no such user.
    pub fn set_user_limit(&self, user: &str, limit: &str, value: Option<Value>) -> bool {
        let _g = self.management.serialise();
        let Some(mut limits) = self.users.get(user).map(|u| u.limits) else {
            return false;
        };
        match value {
            Some(v) => {
                limits.insert(limit.to_string(), v);
            }
            None => {
                limits.remove(limit);
            }
        }
        match self.users.set_limits(user, limits) {
            Some(u) => {
                self.journal(Op::PutUser(user_def(&u)));
                true
            }
            None => false,
        }
    }

    /// Users that have no permission in any vhost.
    pub fn users_without_permissions(&self) -> Vec<UserDef> {
        let with: BTreeSet<String> = self
            .users
            .list_permissions()
            .into_iter()
            .map(|(u, ..)| u)
            .collect();
        self.users
            .list()
            .iter()
            .filter(|u| !with.contains(&u.name))
            .map(user_def)
            .collect()
    }

    // ----- permissions ---------------------------------------------------------------

    pub fn list_permissions(&self) -> Vec<PermissionDef> {
        self.users
            .list_permissions()
            .iter()
            .map(|(u, v, p)| permission_def(u, v, p))
            .collect()
    }

    pub fn permission_def(&self, vhost: &str, user: &str) -> Option<PermissionDef> {
        self.users
            .permission(user, vhost)
            .map(|p| permission_def(user, vhost, &p))
    }

    /// Sets a user's permissions in a vhost. Ok(true) if they were created; Err with
    /// RabbitMQ's reason if the user or vhost does not exist.
    pub fn put_permission(&self, def: PermissionDef) -> Result<bool, Refusal> {
        let _g = self.management.serialise();
        if !self.users.exists(&def.user) || !self.vhost_exists(&def.vhost) {
            return Err("vhost_or_user_not_found".into());
        }
        let created = self.users.permission(&def.user, &def.vhost).is_none();
        self.set_permission(
            &def.user,
            &def.vhost,
            Permission {
                configure: def.configure,
                write: def.write,
                read: def.read,
            },
        );
        Ok(created)
    }

    /// Clears a user's permissions in a vhost: it can no longer open it. False if there
    /// were none.
    pub fn delete_permission(&self, vhost: &str, user: &str) -> bool {
        let _g = self.management.serialise();
        if self.users.delete_permission(user, vhost).is_none() {
            return false;
        }
        self.journal(Op::DeletePermission {
            user: user.to_string(),
            vhost: vhost.to_string(),
        });
        true
    }

    // ----- topic permissions ---------------------------------------------------------

    pub fn list_topic_permissions(&self) -> Vec<TopicPermission> {
        self.users.list_topic_permissions()
    }

    /// Sets a topic permission (one per user, vhost and exchange). Ok(true) if the user
    /// had none in the vhost.
    pub fn put_topic_permission(&self, t: TopicPermission) -> Result<bool, Refusal> {
        let _g = self.management.serialise();
        if !self.users.exists(&t.user) || !self.vhost_exists(&t.vhost) {
            return Err("vhost_or_user_not_found".into());
        }
        // As RabbitMQ: the resource is the user's topic permissions in the vhost, so a
        // second exchange's updates it.
        let created = self.users.topic_permissions(&t.user, &t.vhost).is_empty();
        self.users
            .set_topic_permission(&t.user, &t.vhost, &t.exchange, &t.write, &t.read);
        self.journal(Op::PutTopicPermission(t));
        Ok(created)
    }

    /// Deletes a user's topic permissions in a vhost (for one exchange, or all).
    pub fn delete_topic_permissions(
        &self,
        vhost: &str,
        user: &str,
        exchange: Option<&str>,
    ) -> bool {
        let _g = self.management.serialise();
        if !self.users.clear_topic_permissions(user, vhost, exchange) {
            return false;
        }
        self.journal(Op::DeleteTopicPermission {
            user: user.to_string(),
            vhost: vhost.to_string(),
            exchange: exchange.map(String::from),
        });
        true
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
        let pattern = match &body["pattern"] {
            Value::String(p) => p.clone(),
            other => {
                let said = "pattern should be a binary but was ";
                return Err(format!(
                    "Validation failed\n\n{said}{}\n",
                    erlang_term(other, said.len() + 1)
                ));
            }
        };
        let apply_to = body
            .get("apply-to")
            .and_then(Value::as_str)
            .unwrap_or("all");
        let priority = match body.get("priority") {
            None => 0,
            Some(Value::Number(n)) => n
                .as_i64()
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
            Some(other) => {
                let said = "priority should be a number, actually was ";
                return Err(format!(
                    "Validation failed\n\n{said}{}\n",
                    erlang_term(other, said.len() + 1)
                ));
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
        self.management
            .params
            .lock()
            .runtime
            .iter()
            .filter(|p| {
                component.is_none_or(|c| p.component == c)
                    && vhost.is_none_or(|v| p.vhost == v)
                    && name.is_none_or(|n| p.name == n)
            })
            .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
            .collect()
    }

    /// Creates or replaces a runtime parameter. Returns true if it was created.
    pub fn put_parameter(&self, component: &str, vhost: &str, name: &str, value: Value) -> bool {
        let _g = self.management.serialise();
        let def = ParameterDef {
            value,
            vhost: vhost.to_string(),
            component: component.to_string(),
            name: name.to_string(),
        };
        let created = {
            let mut p = self.management.params.lock();
            let slot = p
                .runtime
                .iter_mut()
                .find(|p| p.component == component && p.vhost == vhost && p.name == name);
            match slot {
                Some(s) => {
                    *s = def.clone();
                    false
                }
                None => {
                    p.runtime.push(def.clone());
                    true
                }
            }
        };
        self.journal(Op::PutParameter(def));
        created
    }

    pub fn delete_parameter(&self, component: &str, vhost: &str, name: &str) -> bool {
        let _g = self.management.serialise();
        let changed = {
            let mut p = self.management.params.lock();
            let before = p.runtime.len();
            p.runtime
                .retain(|p| !(p.component == component && p.vhost == vhost && p.name == name));
            p.runtime.len() != before
        };
        if changed {
            self.journal(Op::DeleteParameter {
                vhost: vhost.to_string(),
                component: component.to_string(),
                name: name.to_string(),
            });
        }
        changed
    }

    pub fn list_global_parameters(&self) -> Vec<Value> {
        let mut all = self.management.params.lock().global.clone();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all.iter()
            .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
            .collect()
    }

    pub fn put_global_parameter(&self, name: &str, value: Value) -> bool {
        let _g = self.management.serialise();
        let def = GlobalParameterDef {
            name: name.to_string(),
            value,
        };
        let created = {
            let mut p = self.management.params.lock();
            match p.global.iter_mut().find(|p| p.name == name) {
                Some(s) => {
                    *s = def.clone();
                    false
                }
                None => {
                    p.global.push(def.clone());
                    true
                }
            }
        };
        self.journal(Op::PutGlobalParameter(def));
        created
    }

    pub fn delete_global_parameter(&self, name: &str) -> bool {
        let _g = self.management.serialise();
        let changed = {
            let mut p = self.management.params.lock();
            let before = p.global.len();
            p.global.retain(|p| p.name != name);
            p.global.len() != before
        };
        if changed {
            self.journal(Op::DeleteGlobalParameter {
                name: name.to_string(),
            });
        }
        changed
    }

    /// The cluster name (RabbitMQ's `cluster_name` global parameter; the node name until
    /// set).
    pub fn cluster_name(&self) -> String {
        match self.management.global(CLUSTER_NAME) {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => self.config.node_name.clone(),
        }
    }

    pub fn set_cluster_name(&self, name: &str) {
        self.put_global_parameter(CLUSTER_NAME, Value::String(name.to_string()));
    }

    /// Creates the cluster id a RabbitMQ cluster has from its first start, unless there
    /// is one.
    pub(crate) fn ensure_cluster_id(&self) {
        if self.management.global(CLUSTER_ID).is_none() {
            self.put_global_parameter(
                CLUSTER_ID,
                Value::String(crate::util::generated_name("rabbitmq-cluster-id")),
            );
        }
    }

    /// Moves what an older version kept in `management.json` into the journal, once.
    pub(crate) fn migrate_management_file(&self) {
        let Some(old) = self.storage.take_legacy_management() else {
            return;
        };
        let list = |k: &str| {
            old.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        for t in list("topic_permissions") {
            match serde_json::from_value::<TopicPermission>(t) {
                Ok(t) => {
                    if let Err(why) = self.put_topic_permission(t.clone()) {
                        tracing::warn!(user = %t.user, vhost = %t.vhost, %why, "old management state: dropping a topic permission");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "old management state: skipping a topic permission")
                }
            }
        }
        for p in list("parameters") {
            let vhost = key_of(&p, "vhost");
            if !self.vhost_exists(&vhost) {
                tracing::warn!(%vhost, "old management state: dropping a parameter of a vhost that is gone");
                continue;
            }
            self.put_parameter(
                &key_of(&p, "component"),
                &vhost,
                &key_of(&p, "name"),
                p.get("value").cloned().unwrap_or(Value::Null),
            );
        }
        for g in list("global_parameters") {
            self.put_global_parameter(
                &key_of(&g, "name"),
                g.get("value").cloned().unwrap_or(Value::Null),
            );
        }
        if let Some(name) = old.get("cluster_name").and_then(Value::as_str) {
            self.set_cluster_name(name);
        }
        self.storage.legacy_management_migrated();
    }

    // ----- definitions ---------------------------------------------------------------

    /// The whole broker's definitions, as `GET /api/definitions` returns them.
    pub fn export_definitions(&self, rabbitmq_version: &str, product: (&str, &str)) -> Definitions {
        let vhosts = self.list_vhost_defs();
        let (parameters, global_parameters) = {
            let p = self.management.params.lock();
            (p.runtime.clone(), p.global.clone())
        };
        let mut d = Definitions {
            rabbit_version: Some(rabbitmq_version.into()),
            rabbitmq_version: Some(rabbitmq_version.into()),
            product_name: Some(product.0.into()),
            product_version: Some(product.1.into()),
            users: self.list_users(),
            permissions: self.list_permissions(),
            topic_permissions: self.list_topic_permissions(),
            parameters,
            global_parameters,
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
                if u.hashing_algorithm != SHA256 {
                    tracing::warn!(user = %u.name, algorithm = %u.hashing_algorithm, "imported user's password hash uses an algorithm Warren does not check; password login will fail");
                }
                let _g = self.management.serialise();
                self.install_user(User {
                    name: u.name,
                    password_hash: u.password_hash,
                    tags: u.tags,
                    limits: u.limits.as_object().cloned().unwrap_or_default(),
                });
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
