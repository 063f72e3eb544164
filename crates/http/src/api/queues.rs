//! `/api/queues`: list (fast with 100,000 queues: sorted and paged as handles, only the
//! page rendered), show, declare (`PUT`), delete (`if-empty`, `if-unused`), bindings,
//! purge (`DELETE .../contents`) and getting messages (`POST .../get`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use base64::Engine;
use serde_json::{json, Map, Value};
use warren_amqp_codec::BasicProperties;
use warren_core::policy::Policy;
use warren_core::queue::QueueStats;
use warren_core::vhost::QueueDeclare;
use warren_core::{Queue, VHost};
use warren_store::json::{json_to_table, table_to_json};

use super::{body_json, created, list_query, no_content, ok, Auth, Params};
use crate::auth::{permitted, refused, Caller, Kind, Perm};
use crate::error::{ApiError, ApiResult};
use crate::listing::{respond, respond_values, Listable, SortKey};
use crate::rates::{self, QN};
use crate::render;
use crate::State;

/// A queue in a list: a handle with its figures, rendered only if it is returned.
struct Row {
    state: State,
    q: Arc<Queue>,
    s: QueueStats,
    f: [u64; QN],
    policies: Arc<Vec<Policy>>,
}

impl Listable for Row {
    fn name(&self) -> &str {
        &self.q.name
    }

    fn sort_key(&self, field: &str) -> Option<SortKey<'_>> {
        let n = |v: u64| Some(SortKey::num(v as f64));
        match field {
            "name" => Some(SortKey::Str(&self.q.name)),
            "vhost" => Some(SortKey::Str(&self.q.vhost)),
            "messages" => n(self.f[rates::MESSAGES]),
            "messages_ready" => n(self.s.ready),
            "messages_unacknowledged" => n(self.s.unacked),
            "consumers" => n(self.s.consumers),
            "message_bytes" | "message_bytes_ready" | "memory" => n(self.s.ready_bytes),
            "durable" => Some(SortKey::bool(self.q.durable)),
            "auto_delete" => Some(SortKey::bool(self.q.auto_delete)),
            "exclusive" => Some(SortKey::bool(self.q.is_exclusive())),
            "message_stats.publish" => n(self.f[rates::PUBLISH]),
            "message_stats.deliver" => n(self.f[rates::DELIVER]),
            "message_stats.ack" => n(self.f[rates::ACK]),
            "message_stats.get" => n(self.f[rates::GET]),
            "message_stats.redeliver" => n(self.f[rates::REDELIVER]),
            _ => None,
        }
    }

    fn render(&self) -> Value {
        render::queue(&self.state, &self.q, &self.s, &self.policies)
    }

    fn render_columns(&self, columns: &[Vec<String>]) -> Option<Value> {
        let mut m = Map::new();
        for c in columns {
            let [k] = c.as_slice() else { return None };
            let v = match k.as_str() {
                "name" => json!(self.q.name),
                "vhost" => json!(self.q.vhost),
                "durable" => json!(self.q.durable),
                "auto_delete" => json!(self.q.auto_delete),
                "exclusive" => json!(self.q.is_exclusive()),
                "arguments" => table_to_json(&self.q.arguments),
                "messages" => json!(self.f[rates::MESSAGES]),
                "messages_ready" => json!(self.s.ready),
                "messages_unacknowledged" => json!(self.s.unacked),
                "consumers" => json!(self.s.consumers),
                "message_bytes" | "message_bytes_ready" | "memory" => json!(self.s.ready_bytes),
                "state" => json!("running"),
                "node" => json!(self.state.broker.config.node_name),
                _ => return None,
            };
            m.insert(k.clone(), v);
        }
        Some(Value::Object(m))
    }
}

fn rows(state: &State, caller: &Caller, only: Option<&str>) -> Vec<Row> {
    let b = &state.broker;
    let mut out = Vec::new();
    for vd in b.list_vhost_defs() {
        if only.is_some_and(|v| v != vd.name) || !caller.sees_vhost(b, &vd.name) {
            continue;
        }
        let Some(v) = b.vhost(&vd.name) else { continue };
        let policies = Arc::new(v.policies());
        for q in v.queues() {
            let s = q.stats();
            let f = rates::queue_figures(&q, &s);
            out.push(Row {
                state: state.clone(),
                q,
                s,
                f,
                policies: policies.clone(),
            });
        }
    }
    out
}

async fn list_of(state: State, caller: Caller, only: Option<String>, p: Params) -> ApiResult {
    let q = list_query(&p)?;
    // Scanning and rendering a hundred thousand queues is CPU work: keep it off the
    // async workers.
    tokio::task::spawn_blocking(move || {
        respond(
            rows(&state, &caller, only.as_deref()),
            &q,
            &["vhost", "name"],
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

pub async fn list(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    list_of(state, caller, None, p).await
}

pub async fn list_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    list_of(state, caller, Some(vhost), p).await
}

/// Looks a queue up whoever owns it (the API may inspect and delete exclusive queues,
/// as RabbitMQ's does).
fn lookup(v: &VHost, name: &str) -> Option<Arc<Queue>> {
    match v.queue(name, 0) {
        Ok(q) => Some(q),
        Err(e) if e.code == warren_amqp_codec::reply::RESOURCE_LOCKED => {
            v.queues().into_iter().find(|q| q.name == name)
        }
        Err(_) => None,
    }
}

fn find(
    state: &State,
    caller: &Caller,
    vhost: &str,
    name: &str,
) -> Result<(Arc<VHost>, Arc<Queue>), ApiError> {
    caller.require_vhost(&state.broker, vhost)?;
    super::vhost_exists(state, vhost)?;
    let v = state.broker.vhost(vhost).ok_or(ApiError::NotFound)?;
    let q = lookup(&v, name).ok_or(ApiError::NotFound)?;
    Ok((v, q))
}

pub async fn show(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult {
    let (v, q) = find(&state, &caller, &vhost, &name)?;
    ok(&render::queue_detail(&state, &q, &v.policies()))
}

pub async fn put(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    let body = body_json(&body, "not_json")?;
    permitted(
        &state.broker,
        &caller,
        &vhost,
        Kind::Queue,
        &name,
        Perm::Configure,
    )
    .map_err(refused)?;
    let v = state.broker.vhost(&vhost).ok_or(ApiError::NotFound)?;
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let d = QueueDeclare {
        name: name.clone(),
        passive: false,
        durable: flag("durable"),
        exclusive: false,
        auto_delete: flag("auto_delete"),
        arguments: json_to_table(body.get("arguments").unwrap_or(&Value::Null)),
    };
    let existed = lookup(&v, &name).is_some();
    v.declare_queue(&d, 0)?;
    created(!existed)
}

pub async fn remove(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    p: Params,
) -> ApiResult {
    let (v, q) = find(&state, &caller, &vhost, &name)?;
    permitted(
        &state.broker,
        &caller,
        &vhost,
        Kind::Queue,
        &name,
        Perm::Configure,
    )
    .map_err(refused)?;
    let flag = |k: &str| p.0.get(k).is_some_and(|x| x == "true");
    let owner = q.exclusive_owner.unwrap_or(0);
    v.delete_queue(&name, flag("if-unused"), flag("if-empty"), owner)?;
    no_content()
}

pub async fn bindings(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    p: Params,
) -> ApiResult {
    let (v, q) = find(&state, &caller, &vhost, &name)?;
    let mut items = vec![render::default_binding(&q)];
    let mut exchanges = v.exchanges();
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    for e in exchanges {
        for b in e.bindings() {
            if render::leads_to(&b, "queue", &q.name) {
                items.push(render::binding(&e, &b));
            }
        }
    }
    respond_values(items, &list_query(&p)?, "routing_key", &[])
}

pub async fn purge(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult {
    let (_, q) = find(&state, &caller, &vhost, &name)?;
    permitted(
        &state.broker,
        &caller,
        &vhost,
        Kind::Queue,
        &name,
        Perm::Read,
    )
    .map_err(|e| ApiError::NotAuthorisedReason(e.reply_text()))?;
    q.purge();
    no_content()
}

/// Basic properties as RabbitMQ's API writes them (only those present).
pub fn properties_json(p: &BasicProperties) -> Value {
    let mut m = Map::new();
    let mut s = |k: &str, v: &Option<warren_amqp_codec::ShortStr>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v.to_string()));
        }
    };
    s("content_type", &p.content_type);
    s("content_encoding", &p.content_encoding);
    s("correlation_id", &p.correlation_id);
    s("reply_to", &p.reply_to);
    s("expiration", &p.expiration);
    s("message_id", &p.message_id);
    s("type", &p.kind);
    s("user_id", &p.user_id);
    s("app_id", &p.app_id);
    s("cluster_id", &p.cluster_id);
    if let Some(h) = &p.headers {
        m.insert("headers".into(), table_to_json(h));
    }
    if let Some(d) = p.delivery_mode {
        m.insert("delivery_mode".into(), json!(d));
    }
    if let Some(x) = p.priority {
        m.insert("priority".into(), json!(x));
    }
    if let Some(t) = p.timestamp {
        m.insert("timestamp".into(), json!(t));
    }
    Value::Object(m)
}

pub async fn get_messages(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let (_, q) = find(&state, &caller, &vhost, &name)?;
    let body = body_json(&body, "not_json")?;
    super::require_keys(&body, &["count", "ackmode", "encoding"])?;
    permitted(
        &state.broker,
        &caller,
        &vhost,
        Kind::Queue,
        &name,
        Perm::Read,
    )
    .map_err(|e| ApiError::NotAuthorisedReason(e.reply_text()))?;
    let count = body["count"].as_u64().unwrap_or(1);
    let (requeue, ack) = match body["ackmode"].as_str() {
        Some("ack_requeue_true") => (true, true),
        Some("reject_requeue_true") => (true, false),
        Some("ack_requeue_false") => (false, true),
        Some("reject_requeue_false") => (false, false),
        _ => return Err(ApiError::bad("unknown ackmode")),
    };
    let encoding = body["encoding"].as_str().unwrap_or("auto");
    if encoding != "auto" && encoding != "base64" {
        return Err(ApiError::bad("unknown encoding"));
    }
    let truncate = body.get("truncate").and_then(Value::as_u64);
    q.check_not_stream("basic.get")?;
    let mut taken = Vec::new();
    let mut out = Vec::new();
    for _ in 0..count {
        let Some((env, left)) = q.get(false) else {
            break;
        };
        let m = &env.msg;
        let mut payload: &[u8] = &m.body;
        if let Some(t) = truncate {
            payload = &payload[..payload.len().min(t as usize)];
        }
        let (text, enc) = match (encoding, std::str::from_utf8(payload)) {
            ("auto", Ok(s)) => (s.to_string(), "string"),
            _ => (
                base64::engine::general_purpose::STANDARD.encode(payload),
                "base64",
            ),
        };
        let props = BasicProperties::decode(&m.properties).unwrap_or_default();
        out.push(json!({
            "payload_bytes": m.body.len(),
            "redelivered": env.redelivered,
            "exchange": m.exchange.to_string(),
            "routing_key": m.routing_key.to_string(),
            "message_count": left,
            "properties": properties_json(&props),
            "payload": text,
            "payload_encoding": enc,
        }));
        taken.push(env);
    }
    // As RabbitMQ: every message is fetched first, then all are settled, so a requeued
    // one is not fetched twice by one request.
    if requeue {
        q.requeue(taken);
    } else if ack {
        q.settle(&taken, true);
    } else {
        q.reject(taken);
    }
    ok(&Value::Array(out))
}

/// Mirror synchronisation actions: Warren has no mirrors, so there is nothing to do.
pub async fn actions(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    find(&state, &caller, &vhost, &name)?;
    let body = body_json(&body, "not_json")?;
    match body.get("action").and_then(Value::as_str) {
        Some("sync") | Some("cancel_sync") => no_content(),
        _ => Err(ApiError::bad("unknown action")),
    }
}
