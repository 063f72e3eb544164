//! `/api/exchanges`: list, show, declare (`PUT`), delete, their bindings as source and as
//! destination, and publishing a message (`POST .../publish`). The default exchange is
//! written `amq.default` in paths.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use base64::Engine;
use serde_json::{json, Value};
use warren_amqp_codec::{BasicProperties, PropertiesView, ShortStr};
use warren_core::vhost::ExchangeDeclare;
use warren_core::{Exchange, Message, VHost};
use warren_store::json::json_to_table;

use super::{body_json, created, list_query, no_content, ok, require_keys, Auth, Params};
use crate::auth::{permitted, refused, Caller, Kind, Perm};
use crate::error::{ApiError, ApiResult};
use crate::listing::respond_values;
use crate::render;
use crate::State;

/// The exchange name a path means (`amq.default` is the default exchange).
pub fn path_name(name: &str) -> &str {
    if name == "amq.default" {
        ""
    } else {
        name
    }
}

fn exchanges_json(state: &State, caller: &Caller, only: Option<&str>) -> Vec<Value> {
    let b = &state.broker;
    let mut out = Vec::new();
    for vd in b.list_vhost_defs() {
        if only.is_some_and(|v| v != vd.name) || !caller.sees_vhost(b, &vd.name) {
            continue;
        }
        let Some(v) = b.vhost(&vd.name) else { continue };
        let policies = v.policies();
        out.extend(v.exchanges().iter().map(|e| render::exchange(e, &policies)));
    }
    out
}

pub async fn list(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    respond_values(
        exchanges_json(&state, &caller, None),
        &list_query(&p)?,
        "name",
        &["vhost", "name"],
    )
}

pub async fn list_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    respond_values(
        exchanges_json(&state, &caller, Some(&vhost)),
        &list_query(&p)?,
        "name",
        &["vhost", "name"],
    )
}

/// The vhost and exchange a path names, for a caller allowed in the vhost.
pub fn find(
    state: &State,
    caller: &Caller,
    vhost: &str,
    name: &str,
) -> Result<(Arc<VHost>, Arc<Exchange>), ApiError> {
    caller.require_vhost(&state.broker, vhost)?;
    super::vhost_exists(state, vhost)?;
    let v = state.broker.vhost(vhost).ok_or(ApiError::NotFound)?;
    let e = v
        .exchange(path_name(name))
        .map_err(|_| ApiError::NotFound)?;
    Ok((v, e))
}

pub async fn show(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult {
    let (v, e) = find(&state, &caller, &vhost, &name)?;
    let mut j = render::exchange(&e, &v.policies());
    if let Value::Object(m) = &mut j {
        m.insert("incoming".into(), json!([]));
        m.insert("outgoing".into(), json!([]));
    }
    ok(&j)
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
    let name = path_name(&name).to_string();
    permitted(
        &state.broker,
        &caller,
        &vhost,
        Kind::Exchange,
        &name,
        Perm::Configure,
    )
    .map_err(refused)?;
    let v = state.broker.vhost(&vhost).ok_or(ApiError::NotFound)?;
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let d = ExchangeDeclare {
        name: name.clone(),
        kind: body
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("direct")
            .to_string(),
        passive: false,
        durable: flag("durable"),
        auto_delete: flag("auto_delete"),
        internal: flag("internal"),
        arguments: json_to_table(body.get("arguments").unwrap_or(&Value::Null)),
    };
    let existed = v.exchange(&name).is_ok();
    v.declare_exchange(&d)?;
    created(!existed)
}

pub async fn remove(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    p: Params,
) -> ApiResult {
    let (v, e) = find(&state, &caller, &vhost, &name)?;
    permitted(
        &state.broker,
        &caller,
        &vhost,
        Kind::Exchange,
        &e.name,
        Perm::Configure,
    )
    .map_err(refused)?;
    let if_unused = p.0.get("if-unused").is_some_and(|x| x == "true");
    v.delete_exchange(&e.name, if_unused)?;
    no_content()
}

pub async fn bindings_source(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    p: Params,
) -> ApiResult {
    let (v, e) = find(&state, &caller, &vhost, &name)?;
    let items: Vec<Value> = if e.name.is_empty() {
        v.queues()
            .iter()
            .map(|q| render::default_binding(q))
            .collect()
    } else {
        e.bindings()
            .iter()
            .map(|b| render::binding(&e, b))
            .collect()
    };
    respond_values(items, &list_query(&p)?, "routing_key", &[])
}

pub async fn bindings_destination(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    p: Params,
) -> ApiResult {
    let (v, e) = find(&state, &caller, &vhost, &name)?;
    let mut items = Vec::new();
    for src in v.exchanges() {
        for b in src.bindings() {
            if render::leads_to(&b, "exchange", &e.name) {
                items.push(render::binding(&src, &b));
            }
        }
    }
    respond_values(items, &list_query(&p)?, "routing_key", &[])
}

/// Builds basic properties from RabbitMQ's JSON form.
pub fn properties_from_json(p: &Value) -> Result<BasicProperties, ApiError> {
    let Some(m) = p.as_object() else {
        return Err(ApiError::bad("properties must be an object"));
    };
    let s = |k: &str| m.get(k).and_then(Value::as_str).map(ShortStr::from);
    let n = |k: &str| m.get(k).and_then(Value::as_u64);
    Ok(BasicProperties {
        content_type: s("content_type"),
        content_encoding: s("content_encoding"),
        headers: m
            .get("headers")
            .filter(|h| h.is_object())
            .map(json_to_table),
        delivery_mode: n("delivery_mode").map(|d| d as u8),
        priority: n("priority").map(|d| d as u8),
        correlation_id: s("correlation_id"),
        reply_to: s("reply_to"),
        expiration: s("expiration"),
        message_id: s("message_id"),
        timestamp: n("timestamp"),
        kind: s("type"),
        user_id: s("user_id"),
        app_id: s("app_id"),
        cluster_id: s("cluster_id"),
    })
}

pub async fn publish(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let (v, e) = find(&state, &caller, &vhost, &name)?;
    let body = body_json(&body, "not_json")?;
    require_keys(
        &body,
        &["properties", "routing_key", "payload", "payload_encoding"],
    )?;
    permitted(
        &state.broker,
        &caller,
        &vhost,
        Kind::Exchange,
        &e.name,
        Perm::Write,
    )
    .map_err(|e| ApiError::bad(format!("403 {}", e.reply_text())))?;
    if e.internal {
        return Err(ApiError::NotAuthorised("Access refused."));
    }
    let payload = body["payload"].as_str().unwrap_or("");
    let bytes = match body["payload_encoding"].as_str() {
        Some("string") => payload.as_bytes().to_vec(),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map_err(|_| ApiError::bad("invalid base64 payload"))?,
        _ => return Err(ApiError::bad("payload_encoding must be string or base64")),
    };
    let props = properties_from_json(&body["properties"])?;
    let raw = props.to_bytes();
    let view = PropertiesView::parse(&raw).unwrap_or_default();
    let rk = body["routing_key"].as_str().unwrap_or("");
    let msg = Message::new(
        ShortStr::from(e.name.as_str()),
        ShortStr::from(rk),
        raw,
        &view,
        bytes.into(),
    );
    let published = v.publish(&e, Arc::new(msg), &mut Vec::new());
    if let Some(epoch) = published.sync {
        // As RabbitMQ's API, which publishes in confirm mode: answer once it is safe.
        let committer = state.broker.storage.committer.clone();
        let _ = tokio::task::spawn_blocking(move || committer.wait_for(epoch)).await;
    }
    ok(&json!({"routed": published.routed > 0}))
}
