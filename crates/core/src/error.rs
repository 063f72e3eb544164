//! Broker errors carry an AMQP reply code and RabbitMQ's text, because every protocol
//! adapter (and RabbitMQ's HTTP API) reports them in those terms.

use std::fmt;

use warren_amqp_codec::reply;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerError {
    pub code: u16,
    /// The explanation, without RabbitMQ's "NOT_FOUND - " prefix.
    pub message: String,
}

pub type Result<T> = std::result::Result<T, BrokerError>;

impl BrokerError {
    pub fn new(code: u16, message: impl Into<String>) -> BrokerError {
        BrokerError {
            code,
            message: message.into(),
        }
    }

    /// The reply text as RabbitMQ sends it: "NOT_FOUND - no queue 'q' in vhost '/'".
    pub fn reply_text(&self) -> String {
        format!("{} - {}", reply::name(self.code), self.message)
    }

    pub fn is_connection_error(&self) -> bool {
        reply::is_connection_error(self.code)
    }

    pub fn not_found(m: impl Into<String>) -> BrokerError {
        BrokerError::new(reply::NOT_FOUND, m)
    }
    pub fn access_refused(m: impl Into<String>) -> BrokerError {
        BrokerError::new(reply::ACCESS_REFUSED, m)
    }
    pub fn resource_locked(m: impl Into<String>) -> BrokerError {
        BrokerError::new(reply::RESOURCE_LOCKED, m)
    }
    pub fn precondition_failed(m: impl Into<String>) -> BrokerError {
        BrokerError::new(reply::PRECONDITION_FAILED, m)
    }
    pub fn not_allowed(m: impl Into<String>) -> BrokerError {
        BrokerError::new(reply::NOT_ALLOWED, m)
    }
    pub fn command_invalid(m: impl Into<String>) -> BrokerError {
        BrokerError::new(reply::COMMAND_INVALID, m)
    }
    pub fn not_implemented(m: impl Into<String>) -> BrokerError {
        BrokerError::new(reply::NOT_IMPLEMENTED, m)
    }
    pub fn internal(m: impl Into<String>) -> BrokerError {
        BrokerError::new(reply::INTERNAL_ERROR, m)
    }

    pub fn no_queue(vhost: &str, name: &str) -> BrokerError {
        BrokerError::not_found(format!("no queue '{name}' in vhost '{vhost}'"))
    }
    pub fn no_exchange(vhost: &str, name: &str) -> BrokerError {
        BrokerError::not_found(format!("no exchange '{name}' in vhost '{vhost}'"))
    }
    pub fn queue_locked(vhost: &str, name: &str) -> BrokerError {
        BrokerError::resource_locked(format!(
            "cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost}'. \
             It could be originally declared on another connection or the exclusive \
             property value does not match that of the original declaration."
        ))
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reply_text())
    }
}

impl std::error::Error for BrokerError {}
