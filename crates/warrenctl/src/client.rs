//! The management HTTP API as warrenctl uses it: blocking requests with basic
//! authentication, and the failures every command shares (broker unreachable or slow,
//! credentials refused, missing rights, broker errors) turned into [`Failure`]s with
//! rabbitmqctl's exit codes. Statuses a command must interpret itself (404, 400) are
//! handed back.

use std::io::ErrorKind;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::error::{
    Failure, Result, EX_NOPERM, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE,
};

pub struct Client {
    agent: ureq::Agent,
    base: String,
    user: String,
    authorization: String,
}

/// An answer the command interprets: its status and body (JSON when it parses).
pub struct Response {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The API's `reason` as text (RabbitMQ HTML-escapes it and sometimes sends a list).
    pub fn reason(&self) -> String {
        let r = match &self.body["reason"] {
            Value::String(s) => s.clone(),
            Value::Null => self.text.trim().to_string(),
            Value::Array(parts) => parts
                .iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(": "),
            other => other.to_string(),
        };
        r.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    /// An answer no command expects: the broker's own words, as rabbitmqctl's generic
    /// "Error:" does.
    pub fn unexpected(&self) -> Failure {
        let code = if self.status >= 500 {
            EX_SOFTWARE
        } else {
            EX_UNAVAILABLE
        };
        Failure::new(code, self.reason())
    }
}

/// A path segment, percent-encoded as the API expects (the default vhost is `%2F`).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    pub fn new(url: &str, user: &str, password: &str, timeout: Duration) -> Result<Client> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            return Err(Failure::new(
                EX_USAGE,
                format!(
                    "unsupported URL {url:?}: warrenctl speaks plain http:// to the management API"
                ),
            ));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Ok(Client {
            agent,
            base,
            user: user.to_string(),
            authorization: format!("Basic {token}"),
        })
    }

    pub fn get(&self, path: &str) -> Result<Response> {
        self.request("GET", path, None, None)
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Response> {
        self.request("PUT", path, Some(body), None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Response> {
        self.request("POST", path, Some(body), None)
    }

    pub fn delete(&self, path: &str) -> Result<Response> {
        self.request("DELETE", path, None, None)
    }

    /// DELETE with RabbitMQ's `X-Reason` header (closing a connection).
    pub fn delete_with_reason(&self, path: &str, reason: &str) -> Result<Response> {
        self.request("DELETE", path, None, Some(reason))
    }

    /// A GET whose answer must be a success (listings, overview).
    pub fn get_ok(&self, path: &str) -> Result<Value> {
        let r = self.get(path)?;
        if r.ok() {
            Ok(r.body)
        } else {
            Err(r.unexpected())
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        reason: Option<&str>,
    ) -> Result<Response> {
        let url = format!("{}{path}", self.base);
        let auth = self.authorization.as_str();
        let result = match method {
            "GET" => self.agent.get(&url).header("authorization", auth).call(),
            "DELETE" => {
                let mut req = self.agent.delete(&url).header("authorization", auth);
                if let Some(r) = reason {
                    req = req.header("x-reason", r);
                }
                req.call()
            }
            _ => {
                let body = body.map(Value::to_string).unwrap_or_default();
                let req = if method == "PUT" {
                    self.agent.put(&url)
                } else {
                    self.agent.post(&url)
                };
                req.header("authorization", auth)
                    .content_type("application/json")
                    .send(body)
            }
        };
        let mut resp = result.map_err(|e| self.transport_failure(e))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .map_err(|e| self.transport_failure(e))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        let r = Response { status, body, text };
        match status {
            401 | 403 => Err(self.refused(&r)),
            s if s >= 500 => Err(Failure::new(
                EX_SOFTWARE,
                format!("the broker failed (HTTP {s}): {}", r.reason()),
            )),
            _ => Ok(r),
        }
    }

    fn refused(&self, r: &Response) -> Failure {
        let reason = r.reason();
        let message = if reason.contains("Login failed") {
            format!(
                "the broker at {} refused the credentials of user \"{}\" (HTTP {}: {reason})",
                self.base, self.user, r.status
            )
        } else {
            format!(
                "user \"{}\" is not allowed to do this (HTTP {}: {reason})",
                self.user, r.status
            )
        };
        Failure::new(EX_NOPERM, message)
    }

    fn transport_failure(&self, e: ureq::Error) -> Failure {
        let timed_out = match &e {
            ureq::Error::Timeout(_) => true,
            ureq::Error::Io(io) => io.kind() == ErrorKind::TimedOut,
            _ => false,
        };
        if timed_out {
            return Failure::new(
                EX_TEMPFAIL,
                format!(
                    "the broker at {} did not answer in time ({e}); see --timeout",
                    self.base
                ),
            );
        }
        Failure::new(
            EX_UNAVAILABLE,
            format!(
                "unable to perform an operation on the broker at {}: {e}\n\n\
                 Most common reasons for this are:\n\n \
                 * The broker is not running\n \
                 * Its management HTTP API listens on another address or port \
                 (set --url, WARRENCTL_URL or url in the config file)",
                self.base
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::seg;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(seg("/"), "%2F");
        assert_eq!(seg("a b/c~d.e"), "a%20b%2Fc~d.e");
        assert_eq!(seg("1.2.3.4:5 -> 6"), "1.2.3.4%3A5%20-%3E%206");
        assert_eq!(seg("é"), "%C3%A9");
    }
}
