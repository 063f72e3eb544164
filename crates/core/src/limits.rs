//! RabbitMQ's virtual host limits (`max-connections`, `max-queues`, set as the
//! `vhost-limits` runtime parameter) and user limits (`max-connections`,
//! `max-channels`), checked where they apply, with RabbitMQ's refusal texts. A negative
//! value means no limit, as in RabbitMQ; 0 forbids.

use serde_json::Value;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::vhost::VHost;

fn limit_of(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_i64)
        .and_then(|n| u64::try_from(n).ok())
}

impl Broker {
    /// A vhost limit, if set.
    pub fn vhost_limit(&self, vhost: &str, key: &str) -> Option<u64> {
        self.list_parameters(Some("vhost-limits"), Some(vhost), Some("limits"))
            .first()
            .and_then(|p| limit_of(p["value"].get(key)))
    }

    /// A user limit, if set.
    pub fn user_limit(&self, user: &str, key: &str) -> Option<u64> {
        self.users
            .get(user)
            .and_then(|u| limit_of(u.limits.get(key)))
    }

    /// Why a new connection of `user` to `vhost` is refused, if a limit is reached.
    pub fn connection_refusal(&self, user: &str, vhost: &str) -> Option<BrokerError> {
        let by_vhost = self.vhost_limit(vhost, "max-connections");
        let by_user = self.user_limit(user, "max-connections");
        if by_vhost.is_none() && by_user.is_none() {
            return None;
        }
        let live = self.registry().connections();
        if let Some(max) = by_vhost {
            if live.iter().filter(|c| c.info.vhost == vhost).count() as u64 >= max {
                return Some(BrokerError::not_allowed(format!(
                    "access to vhost '{vhost}' refused for user '{user}': connection limit ({max}) is reached"
                )));
            }
        }
        if let Some(max) = by_user {
            if live.iter().filter(|c| c.info.user == user).count() as u64 >= max {
                return Some(BrokerError::not_allowed(format!(
                    "connection refused for user '{user}': user connection limit ({max}) is reached"
                )));
            }
        }
        None
    }

    /// Why `user` may not open another channel, if its limit is reached (counted over
    /// all its connections, as RabbitMQ does).
    pub fn channel_refusal(&self, user: &str) -> Option<BrokerError> {
        let max = self.user_limit(user, "max-channels")?;
        let open: usize = self
            .registry()
            .connections()
            .iter()
            .filter(|c| c.info.user == user)
            .map(|c| c.channel_count())
            .sum();
        (open as u64 >= max).then(|| {
            BrokerError::not_allowed(format!(
                "number of channels opened for user '{user}' has reached the maximum allowed user limit of ({max})"
            ))
        })
    }

    /// Why declaring queue `name` in `vhost` is refused, if it would be a new queue past
    /// the vhost's limit.
    pub fn queue_refusal(&self, vhost: &VHost, name: &str) -> Option<BrokerError> {
        let max = self.vhost_limit(&vhost.name, "max-queues")?;
        if !name.is_empty() && vhost.has_queue(name) {
            return None;
        }
        (vhost.queue_count() as u64 >= max).then(|| {
            BrokerError::precondition_failed(format!(
                "cannot declare queue '{name}': queue limit in vhost '{}' ({max}) is reached",
                vhost.name
            ))
        })
    }
}
