//! Who is calling, and what they may see and do, as RabbitMQ's management plugin decides.
//!
//! Every API request authenticates with HTTP Basic against the broker's users (the same
//! password hashes and loopback-only users as AMQP). Tags then decide access:
//! `management` (any tag below implies it) sees its own connections and the vhosts it
//! has permissions in; `policymaker` also manages policies and parameters there;
//! `monitoring` sees every vhost, connection and node; `administrator` does everything.
//! Resource operations (declare, delete, bind, publish, get) also check the user's
//! configure/write/read permissions with the core's checks, as an AMQP client is checked.

use std::net::SocketAddr;

use axum::http::{header, HeaderMap};
use base64::Engine;
use warren_core::access::Access;
pub use warren_core::access::{Kind, Perm};
use warren_core::Broker;

use crate::error::ApiError;

/// An authenticated API caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub tags: Vec<String>,
}

const MANAGEMENT_TAGS: &[&str] = &["management", "policymaker", "monitoring", "administrator"];

impl Caller {
    fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    pub fn is_admin(&self) -> bool {
        self.has("administrator")
    }

    pub fn is_monitor(&self) -> bool {
        self.is_admin() || self.has("monitoring")
    }

    pub fn is_policymaker(&self) -> bool {
        self.is_admin() || self.has("policymaker")
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::NotAuthorised("Not administrator user"))
        }
    }

    pub fn require_monitor(&self) -> Result<(), ApiError> {
        if self.is_monitor() {
            Ok(())
        } else {
            Err(ApiError::NotAuthorised("Not monitor user"))
        }
    }

    /// Whether the caller may see objects of `vhost` in lists: monitors see all vhosts,
    /// others those they have permissions in.
    pub fn sees_vhost(&self, broker: &Broker, vhost: &str) -> bool {
        self.is_monitor() || broker.permission_def(vhost, &self.name).is_some()
    }

    /// RabbitMQ's `is_authorized_vhost`: a vhost named in the path must be one the user
    /// has permissions in (a vhost that does not exist passes, and is then a 404).
    pub fn require_vhost(&self, broker: &Broker, vhost: &str) -> Result<(), ApiError> {
        if !broker.vhost_exists(vhost) || broker.permission_def(vhost, &self.name).is_some() {
            Ok(())
        } else {
            Err(ApiError::NotAuthorised(
                "User not authorised to access virtual host",
            ))
        }
    }

    /// Whether the caller sees connections and channels of `user`.
    pub fn sees_user(&self, user: &str) -> bool {
        self.is_monitor() || self.name == user
    }
}

/// Checks that `caller` may act on a resource in `vhost`, with the core's permission
/// checks (the same as every protocol adapter's). The error is the broker's refusal; each
/// endpoint words it as RabbitMQ's API does.
pub fn permitted(
    broker: &Broker,
    caller: &Caller,
    vhost: &str,
    kind: Kind,
    name: &str,
    perm: Perm,
) -> Result<(), warren_core::BrokerError> {
    let name = match kind {
        Kind::Exchange => Access::exchange_resource(name),
        Kind::Queue => name,
    };
    broker.access(&caller.name, vhost).check(kind, name, perm)
}

/// A configure or bind refusal, as RabbitMQ's API answers it.
pub fn refused(_: warren_core::BrokerError) -> ApiError {
    ApiError::NotAuthorised("Access refused.")
}

/// Authenticates a request and requires a management tag.
pub fn authenticate(
    broker: &Broker,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::NoCredentials);
    };
    let value = value.to_str().map_err(|_| ApiError::LoginFailed)?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(ApiError::LoginFailed);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ApiError::LoginFailed)?;
    let text = String::from_utf8(raw).map_err(|_| ApiError::LoginFailed)?;
    let (user, pass) = text.split_once(':').ok_or(ApiError::LoginFailed)?;
    let u = broker
        .users
        .authenticate(user, pass, peer.ip().is_loopback())
        .map_err(|_| ApiError::LoginFailed)?;
    let caller = Caller {
        name: u.name,
        tags: u.tags,
    };
    if !caller
        .tags
        .iter()
        .any(|t| MANAGEMENT_TAGS.contains(&t.as_str()))
    {
        return Err(ApiError::NotAuthorised("Not management user"));
    }
    Ok(caller)
}
