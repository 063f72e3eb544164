//! Moving messages between queues of this broker the way RabbitMQ's UI does it: a
//! one-shot dynamic shovel, `PUT /api/parameters/shovel/{vhost}/{name}` with
//! `src-queue`, `dest-queue` (or `dest-exchange`, `dest-exchange-key`) and
//! `src-delete-after` (`"queue-length"` or a count).
//!
//! Warren has no shovel plugin: it runs such a shovel at once, inside the request, and
//! keeps nothing (RabbitMQ's shovel deletes itself when done, so the parameter is gone
//! afterwards there too). Only local URIs are accepted (`amqp://`, `amqp:///`,
//! `amqp:///{vhost}`, RabbitMQ's way to name this node); a continuous shovel
//! (`src-delete-after: "never"`, the default) or a remote one is refused.
//!
//! No message is lost or duplicated: each batch is taken from the source unsettled (as
//! a `basic.get` without ack), published to the destination, and only once every
//! durable copy is on disk (RabbitMQ's `ack-mode: on-confirm`) acknowledged at the
//! source. A message the destination refuses (unroutable, or a full queue with
//! `reject-publish`) goes back to the source, and the move stops there with an error.

use std::sync::Arc;

use serde_json::Value;
use warren_amqp_codec::ShortStr;
use warren_core::vhost::QueueDeclare;
use warren_core::{Queue, VHost};

use crate::auth::{permitted, Caller, Kind, Perm};
use crate::error::ApiError;
use crate::State;

/// Where moved messages go.
#[derive(Debug, PartialEq)]
enum Dest {
    Queue(String),
    /// An exchange, and the routing key to use (None: each message's own).
    Exchange(String, Option<String>),
}

/// How many messages to move.
#[derive(Debug, PartialEq)]
enum Limit {
    /// As many as were ready when the move started.
    QueueLength,
    Count(u64),
}

#[derive(Debug, PartialEq)]
struct Plan {
    src_vhost: String,
    src_queue: String,
    dest_vhost: String,
    dest: Dest,
    limit: Limit,
    batch: usize,
}

fn invalid(what: impl std::fmt::Display) -> ApiError {
    ApiError::bad(format!("Validation failed\n\n{what}\n"))
}

/// Decodes `%xx` escapes (a URI's vhost path segment).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The vhost a local URI names (`amqp://` and `amqp:///`: the shovel's own vhost), or
/// an error for a URI naming another host.
fn local_vhost(key: &str, uri: &Value, own: &str) -> Result<String, ApiError> {
    let uri = match uri {
        Value::Null => return Ok(own.to_string()),
        Value::String(s) => s.as_str(),
        // RabbitMQ takes a list of URIs to try in turn; here they must all be local.
        Value::Array(items) if !items.is_empty() => {
            let mut vhosts = items
                .iter()
                .map(|u| local_vhost(key, u, own))
                .collect::<Result<Vec<_>, _>>()?;
            vhosts.dedup();
            if vhosts.len() > 1 {
                return Err(invalid(format!("{key}: the URIs name different vhosts")));
            }
            return Ok(vhosts.remove(0));
        }
        other => return Err(invalid(format!("{key}: not a URI: {other}"))),
    };
    let rest = uri
        .strip_prefix("amqp://")
        .ok_or_else(|| invalid(format!("{key}: {uri} is not an amqp:// URI")))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.split(['?', '#']).next().unwrap_or("");
    if !authority.is_empty() {
        return Err(invalid(format!(
            "{key}: {uri} names a host; Warren moves messages only within this broker \
             (amqp:///vhost)"
        )));
    }
    if path.is_empty() {
        return Ok(own.to_string());
    }
    percent_decode(path).ok_or_else(|| invalid(format!("{key}: bad escape in {uri}")))
}

fn text<'a>(value: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(format!("{key} should be a string, got {other}"))),
    }
}

/// Reads a shovel definition (the parameter's `value`) defined in `vhost`.
fn plan(vhost: &str, value: &Value) -> Result<Plan, ApiError> {
    if !value.is_object() {
        return Err(invalid("the shovel definition is not a JSON object"));
    }
    for (key, what) in [
        ("src-protocol", "src-protocol"),
        ("dest-protocol", "dest-protocol"),
    ] {
        if let Some(p) = text(value, key)? {
            if p != "amqp091" {
                return Err(invalid(format!("{what} {p}: only amqp091 is supported")));
            }
        }
    }
    if value.get("src-exchange").is_some() {
        return Err(invalid(
            "src-exchange: Warren moves messages from a queue (src-queue) only",
        ));
    }
    let src_queue = text(value, "src-queue")?
        .ok_or_else(|| invalid("src-queue is required"))?
        .to_string();
    let dest = match (text(value, "dest-queue")?, text(value, "dest-exchange")?) {
        (Some(q), None) => Dest::Queue(q.to_string()),
        (None, Some(x)) => Dest::Exchange(
            x.to_string(),
            text(value, "dest-exchange-key")?.map(String::from),
        ),
        (Some(_), Some(_)) => {
            return Err(invalid("dest-queue and dest-exchange cannot both be set"))
        }
        (None, None) => return Err(invalid("dest-queue or dest-exchange is required")),
    };
    let limit = match value.get("src-delete-after") {
        Some(Value::String(s)) if s == "queue-length" => Limit::QueueLength,
        Some(Value::Number(n)) if n.as_u64().is_some() => Limit::Count(n.as_u64().unwrap_or(0)),
        other => {
            let shown = other.map_or("never (the default)".to_string(), Value::to_string);
            return Err(invalid(format!(
                "src-delete-after {shown}: Warren runs one-shot shovels only, \
                 src-delete-after must be \"queue-length\" or a number of messages"
            )));
        }
    };
    let batch = match value.get("src-prefetch-count") {
        None => 1000,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => n.min(65_535) as usize,
            _ => {
                return Err(invalid(format!(
                    "src-prefetch-count {v} is not a positive number"
                )))
            }
        },
    };
    Ok(Plan {
        src_vhost: local_vhost(
            "src-uri",
            value.get("src-uri").unwrap_or(&Value::Null),
            vhost,
        )?,
        src_queue,
        dest_vhost: local_vhost(
            "dest-uri",
            value.get("dest-uri").unwrap_or(&Value::Null),
            vhost,
        )?,
        dest,
        limit,
        batch,
    })
}

fn refused(e: warren_core::BrokerError) -> ApiError {
    ApiError::NotAuthorisedReason(e.reply_text())
}

/// Finds a queue whoever owns it (a shovel may drain an exclusive queue, as the API's
/// get and purge may).
fn queue_of(v: &VHost, name: &str) -> Option<Arc<Queue>> {
    v.queues().into_iter().find(|q| q.name == name)
}

/// Runs the shovel `value` defined in `vhost` for `caller`: checks what RabbitMQ's
/// shovel would need (read on the source queue, write on the destination exchange,
/// configure to declare a missing destination queue), then moves. Returns how many
/// messages moved.
pub async fn run(
    state: &State,
    caller: &Caller,
    vhost: &str,
    value: &Value,
) -> Result<u64, ApiError> {
    let plan = plan(vhost, value)?;
    let broker = &state.broker;
    for v in [&plan.src_vhost, &plan.dest_vhost] {
        caller.require_vhost(broker, v)?;
        if !broker.vhost_exists(v) {
            return Err(invalid(format!("vhost {v} does not exist")));
        }
    }
    let src_v = broker.vhost(&plan.src_vhost).ok_or(ApiError::NotFound)?;
    let dest_v = broker.vhost(&plan.dest_vhost).ok_or(ApiError::NotFound)?;
    permitted(
        broker,
        caller,
        &plan.src_vhost,
        Kind::Queue,
        &plan.src_queue,
        Perm::Read,
    )
    .map_err(refused)?;
    let src = queue_of(&src_v, &plan.src_queue).ok_or_else(|| {
        ApiError::NotFoundReason(format!(
            "no queue '{}' in vhost '{}'",
            plan.src_queue, plan.src_vhost
        ))
    })?;
    let (exchange, key) = match &plan.dest {
        Dest::Queue(q) => {
            // RabbitMQ's shovel declares a missing destination queue (durable, classic).
            if !dest_v.has_queue(q) {
                permitted(
                    broker,
                    caller,
                    &plan.dest_vhost,
                    Kind::Queue,
                    q,
                    Perm::Configure,
                )
                .map_err(refused)?;
                dest_v.declare_queue(
                    &QueueDeclare {
                        name: q.clone(),
                        durable: true,
                        ..Default::default()
                    },
                    0,
                )?;
            }
            (String::new(), Some(q.clone()))
        }
        Dest::Exchange(x, k) => (x.clone(), k.clone()),
    };
    permitted(
        broker,
        caller,
        &plan.dest_vhost,
        Kind::Exchange,
        &exchange,
        Perm::Write,
    )
    .map_err(refused)?;
    let exchange = dest_v.exchange(&exchange).map_err(|_| {
        ApiError::NotFoundReason(format!(
            "no exchange '{exchange}' in vhost '{}'",
            plan.dest_vhost
        ))
    })?;
    let want = match plan.limit {
        Limit::QueueLength => src.stats().ready,
        Limit::Count(n) => n,
    };
    let committer = broker.storage.committer.clone();
    let batch = plan.batch;
    tokio::task::spawn_blocking(move || {
        move_messages(
            &src,
            &dest_v,
            &exchange,
            key.as_deref(),
            want,
            batch,
            &committer,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// Moves up to `want` ready messages from `src` through `exchange`, a batch at a time.
fn move_messages(
    src: &Arc<Queue>,
    dest: &VHost,
    exchange: &Arc<warren_core::Exchange>,
    key: Option<&str>,
    want: u64,
    batch: usize,
    committer: &warren_store::committer::Committer,
) -> Result<u64, ApiError> {
    let mut moved = 0;
    let mut scratch = Vec::new();
    while moved < want {
        let n = (want - moved).min(batch as u64);
        let mut taken = Vec::new();
        while (taken.len() as u64) < n {
            match src.get(false) {
                Some((env, _)) => taken.push(env),
                None => break,
            }
        }
        if taken.is_empty() {
            break;
        }
        let mut done = Vec::with_capacity(taken.len());
        let mut sync = None;
        let mut failed = None;
        let mut rest = taken.into_iter();
        for env in rest.by_ref() {
            let routing_key = key.map_or_else(|| env.msg.routing_key.clone(), ShortStr::from);
            let msg = warren_core::message::rewrite(
                &env.msg,
                ShortStr::from(exchange.name.as_str()),
                routing_key,
                |_| {},
            );
            let published = dest.publish(exchange, Arc::new(msg), &mut scratch);
            if published.routed == 0 || published.rejected {
                failed = Some((env, published.routed == 0));
                break;
            }
            sync = sync.max(published.sync);
            done.push(env);
        }
        if let Some(epoch) = sync {
            committer.wait_for(epoch);
        }
        moved += done.len() as u64;
        src.settle(&done, true);
        if let Some((env, unroutable)) = failed {
            src.requeue(std::iter::once(env).chain(rest));
            return Err(ApiError::bad(format!(
                "moved {moved} of {want} messages, then the destination {} the next one",
                if unroutable {
                    "did not route"
                } else {
                    "refused"
                }
            )));
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_rabbitmq_uis_move_definition() {
        let v = json!({
            "src-uri": "amqp:///%2F", "src-queue": "orders", "src-protocol": "amqp091",
            "src-prefetch-count": 1000, "src-delete-after": "queue-length",
            "dest-protocol": "amqp091", "dest-uri": "amqp:///%2F",
            "dest-add-forward-headers": false, "ack-mode": "on-confirm", "dest-queue": "archive"
        });
        assert_eq!(
            plan("/", &v).unwrap(),
            Plan {
                src_vhost: "/".into(),
                src_queue: "orders".into(),
                dest_vhost: "/".into(),
                dest: Dest::Queue("archive".into()),
                limit: Limit::QueueLength,
                batch: 1000,
            }
        );
    }

    #[test]
    fn uris_name_local_vhosts() {
        let own = "dev";
        assert_eq!(local_vhost("k", &json!("amqp://"), own).unwrap(), "dev");
        assert_eq!(local_vhost("k", &json!("amqp:///"), own).unwrap(), "dev");
        assert_eq!(
            local_vhost("k", &json!("amqp:///a%2Fb"), own).unwrap(),
            "a/b"
        );
        assert_eq!(
            local_vhost("k", &json!(["amqp:///x", "amqp:///x"]), own).unwrap(),
            "x"
        );
        assert!(local_vhost("k", &json!("amqp://other-host/x"), own).is_err());
        assert!(local_vhost("k", &json!("amqps:///x"), own).is_err());
        assert!(local_vhost("k", &json!(["amqp:///x", "amqp:///y"]), own).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let base = json!({"src-queue": "a", "dest-queue": "b", "src-delete-after": 5});
        assert_eq!(plan("/", &base).unwrap().limit, Limit::Count(5));
        let with = |k: &str, v: Value| {
            let mut x = base.clone();
            x[k] = v;
            plan("/", &x)
        };
        assert!(with("src-delete-after", json!("never")).is_err());
        assert!(with("src-exchange", json!("x")).is_err());
        assert!(with("dest-exchange", json!("x")).is_err());
        assert!(with("src-protocol", json!("amqp10")).is_err());
        assert!(with("src-prefetch-count", json!(0)).is_err());
        let mut no_limit = base.clone();
        no_limit.as_object_mut().unwrap().remove("src-delete-after");
        assert!(plan("/", &no_limit).is_err());
        let x = json!({"src-queue": "a", "dest-exchange": "amq.topic", "dest-exchange-key": "k",
                       "src-delete-after": "queue-length"});
        assert_eq!(
            plan("/", &x).unwrap().dest,
            Dest::Exchange("amq.topic".into(), Some("k".into()))
        );
    }
}
