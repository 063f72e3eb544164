//! Users, password hashes, vhost permissions and topic permissions (RabbitMQ's internal
//! auth backend): the one record of who exists and what they may do, which logins and
//! permission checks read and the management API lists and changes. Durability is the
//! caller's business ([`crate::Broker`] journals every change it makes here).
//!
//! Password hashes use RabbitMQ's default scheme (`rabbit_password_hashing_sha256`): base64
//! of a 4-byte salt followed by SHA-256(salt ++ password), so definitions exported by
//! RabbitMQ import here with their hashes intact, and the other way round.

use std::collections::HashMap;

use base64::Engine;
use parking_lot::RwLock;
use rand::RngCore;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use warren_store::definitions::TopicPermissionDef;

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    /// base64(salt ++ sha256(salt ++ password)); empty: no password login.
    pub password_hash: String,
    pub tags: Vec<String>,
    /// `max-connections`, `max-channels` (RabbitMQ's user limits).
    pub limits: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub configure: String,
    pub write: String,
    pub read: String,
}

pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 4];
    rand::rng().fill_bytes(&mut salt);
    hash_with_salt(&salt, password)
}

fn hash_with_salt(salt: &[u8], password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    let mut out = salt.to_vec();
    out.extend_from_slice(&h.finalize());
    base64::engine::general_purpose::STANDARD.encode(out)
}

pub fn check_password(hash: &str, password: &str) -> bool {
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(hash) else {
        return false;
    };
    if raw.len() != 4 + 32 {
        return false;
    }
    // Not constant-time-critical: the comparison is of salted digests.
    hash_with_salt(&raw[..4], password) == hash
}

/// Why a login failed (the adapters turn this into RabbitMQ's texts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Unknown user or wrong password: RabbitMQ does not say which.
    Refused,
    /// A loopback-only user (guest by default) connecting from elsewhere.
    LoopbackOnly,
}

/// A topic permission: (exchange, write expression, read expression).
pub type TopicRule = (String, String, String);

#[derive(Default)]
pub struct Users {
    users: RwLock<HashMap<String, User>>,
    /// (user, vhost) -> permission
    permissions: RwLock<HashMap<(String, String), Permission>>,
    /// Users that may only connect from loopback addresses (`loopback_users`).
    loopback_only: RwLock<Vec<String>>,
    /// (user, vhost) -> [(exchange, write, read)]
    topic: RwLock<HashMap<(String, String), Vec<TopicRule>>>,
}

impl Users {
    pub fn add_user(&self, name: &str, password: &str, tags: &[&str]) {
        self.add_user_with_hash(name, &hash_password(password), tags);
    }

    /// Adds (or replaces) a user whose password hash is already known (definitions,
    /// imports). Its limits are kept if it existed.
    pub fn add_user_with_hash(&self, name: &str, password_hash: &str, tags: &[&str]) {
        let mut users = self.users.write();
        let limits = users
            .get(name)
            .map(|u| u.limits.clone())
            .unwrap_or_default();
        users.insert(
            name.to_string(),
            User {
                name: name.to_string(),
                password_hash: password_hash.to_string(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                limits,
            },
        );
    }

    /// Adds or replaces a user as a whole (limits included).
    pub fn put(&self, user: User) {
        self.users.write().insert(user.name.clone(), user);
    }

    /// Replaces a user's limits. None if there is no such user; else the user as it is
    /// now.
    pub fn set_limits(&self, name: &str, limits: Map<String, Value>) -> Option<User> {
        let mut users = self.users.write();
        let u = users.get_mut(name)?;
        u.limits = limits;
        Some(u.clone())
    }

    /// Deletes a user with its permissions and topic permissions everywhere.
    pub fn delete_user(&self, name: &str) -> Option<User> {
        let gone = self.users.write().remove(name)?;
        self.permissions.write().retain(|(u, _), _| u != name);
        self.topic.write().retain(|(u, _), _| u != name);
        Some(gone)
    }

    /// Every user, by name.
    pub fn list(&self) -> Vec<User> {
        let mut all: Vec<User> = self.users.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn exists(&self, name: &str) -> bool {
        self.users.read().contains_key(name)
    }

    pub fn delete_permission(&self, user: &str, vhost: &str) -> Option<Permission> {
        self.permissions
            .write()
            .remove(&(user.to_string(), vhost.to_string()))
    }

    /// Every permission as (user, vhost, permission), by vhost then user.
    pub fn list_permissions(&self) -> Vec<(String, String, Permission)> {
        let mut all: Vec<(String, String, Permission)> = self
            .permissions
            .read()
            .iter()
            .map(|((u, v), p)| (u.clone(), v.clone(), p.clone()))
            .collect();
        all.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        all
    }

    /// Forgets every permission and topic permission in a vhost that is deleted.
    pub fn forget_vhost(&self, vhost: &str) {
        self.permissions.write().retain(|(_, v), _| v != vhost);
        self.topic.write().retain(|(_, v), _| v != vhost);
    }

    pub fn set_permission(&self, user: &str, vhost: &str, p: Permission) {
        self.permissions
            .write()
            .insert((user.to_string(), vhost.to_string()), p);
    }

    pub fn set_loopback_users(&self, users: Vec<String>) {
        *self.loopback_only.write() = users;
    }

    pub fn get(&self, name: &str) -> Option<User> {
        self.users.read().get(name).cloned()
    }

    pub fn authenticate(
        &self,
        name: &str,
        password: &str,
        from_loopback: bool,
    ) -> Result<User, AuthFailure> {
        let user = self.get(name).ok_or(AuthFailure::Refused)?;
        if !check_password(&user.password_hash, password) {
            return Err(AuthFailure::Refused);
        }
        if !from_loopback && self.loopback_only.read().iter().any(|u| u == name) {
            return Err(AuthFailure::LoopbackOnly);
        }
        Ok(user)
    }

    /// SASL `EXTERNAL`: the client proved who it is with a certificate the TLS layer
    /// verified; `name` (its common name) must be a user. Returns the name on failure,
    /// for the log.
    pub fn authenticate_external(
        &self,
        name: &str,
        from_loopback: bool,
    ) -> Result<User, (AuthFailure, String)> {
        let user = self
            .get(name)
            .ok_or((AuthFailure::Refused, name.to_string()))?;
        if !from_loopback && self.loopback_only.read().iter().any(|u| u == name) {
            return Err((AuthFailure::LoopbackOnly, name.to_string()));
        }
        Ok(user)
    }

    /// Sets a topic permission (one per user, vhost and exchange).
    pub fn set_topic_permission(
        &self,
        user: &str,
        vhost: &str,
        exchange: &str,
        write: &str,
        read: &str,
    ) {
        let mut t = self.topic.write();
        let list = t.entry((user.to_string(), vhost.to_string())).or_default();
        list.retain(|(x, ..)| x != exchange);
        list.push((exchange.to_string(), write.to_string(), read.to_string()));
    }

    /// Clears a user's topic permissions in a vhost (for one exchange, or all). Returns
    /// whether there was any.
    pub fn clear_topic_permissions(&self, user: &str, vhost: &str, exchange: Option<&str>) -> bool {
        let mut t = self.topic.write();
        let key = (user.to_string(), vhost.to_string());
        let Some(list) = t.get_mut(&key) else {
            return false;
        };
        let before = list.len();
        list.retain(|(e, ..)| exchange.is_some_and(|x| x != e));
        let changed = list.len() != before;
        if list.is_empty() {
            t.remove(&key);
        }
        changed
    }

    /// Every topic permission, by vhost, user and exchange.
    pub fn list_topic_permissions(&self) -> Vec<TopicPermissionDef> {
        let mut all: Vec<TopicPermissionDef> = self
            .topic
            .read()
            .iter()
            .flat_map(|((user, vhost), rules)| {
                rules
                    .iter()
                    .map(|(exchange, write, read)| TopicPermissionDef {
                        user: user.clone(),
                        vhost: vhost.clone(),
                        exchange: exchange.clone(),
                        write: write.clone(),
                        read: read.clone(),
                    })
            })
            .collect();
        all.sort_by(|a, b| (&a.vhost, &a.user, &a.exchange).cmp(&(&b.vhost, &b.user, &b.exchange)));
        all
    }

    /// A user's topic permissions in a vhost: (exchange, write, read).
    pub fn topic_permissions(&self, user: &str, vhost: &str) -> Vec<TopicRule> {
        self.topic
            .read()
            .get(&(user.to_string(), vhost.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn permission(&self, user: &str, vhost: &str) -> Option<Permission> {
        self.permissions
            .read()
            .get(&(user.to_string(), vhost.to_string()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &str) -> Permission {
        Permission {
            configure: p.into(),
            write: p.into(),
            read: p.into(),
        }
    }

    #[test]
    fn deleting_a_user_takes_its_permissions_with_it() {
        let u = Users::default();
        u.add_user("a", "pw", &["management"]);
        u.add_user("b", "pw", &[]);
        u.set_permission("a", "/", all(".*"));
        u.set_permission("b", "/", all(".*"));
        u.set_topic_permission("a", "/", "amq.topic", "^w", "^r");
        assert!(u.authenticate("a", "pw", true).is_ok());
        assert_eq!(u.delete_user("a").map(|x| x.name), Some("a".into()));
        assert_eq!(u.authenticate("a", "pw", true), Err(AuthFailure::Refused));
        assert!(u.permission("a", "/").is_none());
        assert!(u.topic_permissions("a", "/").is_empty());
        assert_eq!(u.list().len(), 1);
        assert_eq!(u.list_permissions().len(), 1);
        assert!(u.delete_user("a").is_none());
        assert!(u.delete_permission("b", "/").is_some());
        assert!(u.permission("b", "/").is_none());
        assert!(u.delete_permission("b", "/").is_none());
    }

    #[test]
    fn topic_permissions_clear_per_exchange_or_all() {
        let u = Users::default();
        u.set_topic_permission("a", "/", "x1", "w", "r");
        u.set_topic_permission("a", "/", "x2", "w", "r");
        assert!(u.clear_topic_permissions("a", "/", Some("x1")));
        assert!(!u.clear_topic_permissions("a", "/", Some("x1")));
        assert_eq!(u.list_topic_permissions().len(), 1);
        assert!(u.clear_topic_permissions("a", "/", None));
        assert!(u.list_topic_permissions().is_empty());
        assert!(!u.clear_topic_permissions("a", "/", None));
    }

    #[test]
    fn hashes_check_and_match_rabbitmq_format() {
        let h = hash_password("guest");
        assert!(check_password(&h, "guest"));
        assert!(!check_password(&h, "guesT"));
        // A hash produced by RabbitMQ 3.x for password "guest".
        let rabbit = hash_with_salt(&[0x01, 0x02, 0x03, 0x04], "guest");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&rabbit)
                .unwrap()
                .len(),
            36
        );
        assert!(check_password(&rabbit, "guest"));
    }
}
