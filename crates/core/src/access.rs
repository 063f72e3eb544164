//! Permission checks: configure / write / read regular expressions per user and vhost, and
//! topic permissions per exchange, enforced as RabbitMQ's access-control table says. Every
//! protocol adapter asks the same [`Access`] before acting.
//!
//! As in RabbitMQ the expressions are searched (not anchored) in the resource name, an
//! empty expression grants nothing, and the default exchange is the resource
//! `amq.default`. Topic permissions apply to topic exchanges only, and only when one is
//! set for that exchange; `{username}` and `{vhost}` in them are replaced first.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use regex::Regex;

use crate::auth::Permission;
use crate::error::{BrokerError, Result};
use crate::Broker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Configure,
    Write,
    Read,
}

/// A resource kind as RabbitMQ names it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Queue,
    Exchange,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Queue => "queue",
            Kind::Exchange => "exchange",
        }
    }
}

struct TopicRule {
    exchange: String,
    write: Option<Regex>,
    read: Option<Regex>,
}

/// One user's compiled permissions in one vhost.
pub struct Access {
    pub user: String,
    pub vhost: String,
    configure: Option<Regex>,
    write: Option<Regex>,
    read: Option<Regex>,
    topics: Vec<TopicRule>,
    /// The strings these were compiled from, to know when to recompile.
    source: Option<Permission>,
    topic_source: Vec<(String, String, String)>,
}

fn compile(expr: &str) -> Option<Regex> {
    if expr.is_empty() {
        return None;
    }
    Regex::new(expr).ok()
}

impl Access {
    /// The name permission checks use for an exchange (`""` is `amq.default`).
    pub fn exchange_resource(name: &str) -> &str {
        if name.is_empty() {
            "amq.default"
        } else {
            name
        }
    }

    fn refused(&self, kind: Kind, name: &str) -> BrokerError {
        BrokerError::access_refused(format!(
            "access to {} '{name}' in vhost '{}' refused for user '{}'",
            kind.as_str(),
            self.vhost,
            self.user
        ))
    }

    /// Checks `perm` on a queue or exchange (use [`Access::exchange_resource`] for
    /// exchange names).
    pub fn check(&self, kind: Kind, name: &str, perm: Perm) -> Result<()> {
        let re = match perm {
            Perm::Configure => &self.configure,
            Perm::Write => &self.write,
            Perm::Read => &self.read,
        };
        match re {
            Some(r) if r.is_match(name) => Ok(()),
            _ => Err(self.refused(kind, name)),
        }
    }

    /// Whether topic permissions could matter at all (skips the per-message check).
    pub fn has_topic_rules(&self) -> bool {
        !self.topics.is_empty()
    }

    /// Checks a topic permission for a routing (or binding) key on a topic exchange.
    pub fn check_topic(&self, exchange: &str, routing_key: &str, perm: Perm) -> Result<()> {
        let Some(rule) = self.topics.iter().find(|t| t.exchange == exchange) else {
            return Ok(());
        };
        let re = match perm {
            Perm::Write => &rule.write,
            _ => &rule.read,
        };
        match re {
            Some(r) if r.is_match(routing_key) => Ok(()),
            _ => Err(BrokerError::access_refused(format!(
                "access to topic '{routing_key}' in exchange '{exchange}' in vhost '{}' refused for user '{}'",
                self.vhost,
                self.user
            ))),
        }
    }
}

/// Compiled permissions, reused while the underlying strings are unchanged.
#[derive(Default)]
pub struct AccessCache {
    entries: Mutex<HashMap<(String, String), Arc<Access>>>,
}

impl Broker {
    /// The permissions of `user` in `vhost`, compiled (cached until they change).
    pub fn access(&self, user: &str, vhost: &str) -> Arc<Access> {
        let perm = self.users.permission(user, vhost);
        let expand = |s: &str| s.replace("{username}", user).replace("{vhost}", vhost);
        let topic_source: Vec<(String, String, String)> = self
            .users
            .topic_permissions(user, vhost)
            .into_iter()
            .map(|(x, w, r)| (x, expand(&w), expand(&r)))
            .collect();
        let key = (user.to_string(), vhost.to_string());
        let mut cache = self.access_cache.entries.lock();
        if let Some(a) = cache.get(&key) {
            if a.source == perm && a.topic_source == topic_source {
                return a.clone();
            }
        }
        let a = Arc::new(Access {
            user: user.to_string(),
            vhost: vhost.to_string(),
            configure: perm.as_ref().and_then(|p| compile(&p.configure)),
            write: perm.as_ref().and_then(|p| compile(&p.write)),
            read: perm.as_ref().and_then(|p| compile(&p.read)),
            topics: topic_source
                .iter()
                .map(|(x, w, r)| TopicRule {
                    exchange: x.clone(),
                    write: compile(w),
                    read: compile(r),
                })
                .collect(),
            source: perm,
            topic_source,
        });
        cache.insert(key, a.clone());
        a
    }
}
