//! `/api/bindings`: every binding (exchange to queue and exchange to exchange, plus the
//! default exchange's implicit ones), bindings between two objects, and creating
//! (`POST`, answered with a `Location` naming the new binding's `properties_key`) and
//! deleting one by its `properties_key`.

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;
use warren_store::json::{json_to_table, table_to_json};

use super::exchanges::path_name;
use super::{body_json, list_query, no_content, ok, Auth, Params};
use crate::auth::{permitted, refused, Caller, Kind, Perm};
use crate::error::{ApiError, ApiResult};
use crate::listing::respond_values;
use crate::render;
use crate::State;

fn all(state: &State, caller: &Caller, only: Option<&str>) -> Vec<Value> {
    let b = &state.broker;
    let mut out = Vec::new();
    for vd in b.list_vhost_defs() {
        if only.is_some_and(|v| v != vd.name) || !caller.sees_vhost(b, &vd.name) {
            continue;
        }
        let Some(v) = b.vhost(&vd.name) else { continue };
        let mut queues = v.queues();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(queues.iter().map(|q| render::default_binding(q)));
        let mut exchanges = v.exchanges();
        exchanges.sort_by(|a, b| a.name.cmp(&b.name));
        for e in exchanges {
            out.extend(e.bindings().iter().map(|bd| render::binding(&e, bd)));
        }
    }
    out
}

pub async fn list(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    respond_values(
        all(&state, &caller, None),
        &list_query(&p)?,
        "routing_key",
        &[],
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
        all(&state, &caller, Some(&vhost)),
        &list_query(&p)?,
        "routing_key",
        &[],
    )
}

/// The bindings from `source` to `dest` (of `kind`, "queue" or "exchange"), as JSON.
fn between(
    state: &State,
    caller: &Caller,
    vhost: &str,
    source: &str,
    dest: &str,
    kind: &str,
) -> Result<Vec<Value>, ApiError> {
    caller.require_vhost(&state.broker, vhost)?;
    super::vhost_exists(state, vhost)?;
    let v = state.broker.vhost(vhost).ok_or(ApiError::NotFound)?;
    let source = path_name(source);
    let e = v.exchange(source).map_err(|_| ApiError::NotFound)?;
    let dest_exists = match kind {
        "queue" => v.queues().iter().any(|q| q.name == dest),
        _ => v.exchange(path_name(dest)).is_ok(),
    };
    if !dest_exists {
        return Err(ApiError::NotFound);
    }
    if source.is_empty() {
        return Ok(if kind == "queue" {
            vec![render::default_binding(
                &v.queues()
                    .into_iter()
                    .find(|q| q.name == dest)
                    .expect("exists"),
            )]
        } else {
            Vec::new()
        });
    }
    Ok(e.bindings()
        .iter()
        .filter(|b| render::leads_to(b, kind, path_name(dest)))
        .map(|b| render::binding(&e, b))
        .collect())
}

async fn create(
    state: State,
    caller: Caller,
    vhost: String,
    source: String,
    dest: String,
    kind: &str,
    body: Bytes,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    let body = body_json(&body, "not_json")?;
    let v = state.broker.vhost(&vhost).ok_or(ApiError::NotFound)?;
    let source_name = path_name(&source).to_string();
    let dest_name = if kind == "queue" {
        dest.clone()
    } else {
        path_name(&dest).to_string()
    };
    let key = body
        .get("routing_key")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let args_json = body
        .get("arguments")
        .filter(|a| a.is_object())
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let args = json_to_table(&args_json);
    permitted(
        &state.broker,
        &caller,
        &vhost,
        dest_kind(kind),
        &dest_name,
        Perm::Write,
    )
    .map_err(refused)?;
    permitted(
        &state.broker,
        &caller,
        &vhost,
        Kind::Exchange,
        path_name(&source),
        Perm::Read,
    )
    .map_err(refused)?;
    if kind == "queue" {
        let owner = v
            .queues()
            .iter()
            .find(|q| q.name == dest_name)
            .and_then(|q| q.exclusive_owner)
            .unwrap_or(0);
        v.bind_queue(&dest_name, &source_name, &key, &args, owner)?;
    } else {
        v.bind_exchange(&dest_name, &source_name, &key, &args)?;
    }
    // Keys in the Location are those of the stored binding (sorted arguments).
    let stored = table_to_json(&args);
    let location = format!("{}/{}", dest, render::properties_key(&key, &stored));
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(h) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, h);
    }
    Ok(r)
}

/// The resource kind of a binding's destination.
fn dest_kind(kind: &str) -> Kind {
    if kind == "queue" {
        Kind::Queue
    } else {
        Kind::Exchange
    }
}

fn find_by_props(list: Vec<Value>, props: &str) -> Option<Value> {
    list.into_iter()
        .find(|b| b.get("properties_key").and_then(Value::as_str) == Some(props))
}

async fn remove(
    state: State,
    caller: Caller,
    (vhost, source, dest, props): (String, String, String, String),
    kind: &str,
) -> ApiResult {
    let list = between(&state, &caller, &vhost, &source, &dest, kind)?;
    let b = find_by_props(list, &props).ok_or(ApiError::NotFound)?;
    let v = state.broker.vhost(&vhost).ok_or(ApiError::NotFound)?;
    let key = b["routing_key"].as_str().unwrap_or("");
    let args = json_to_table(&b["arguments"]);
    let dest_name = b["destination"].as_str().unwrap_or("");
    let source_name = b["source"].as_str().unwrap_or("");
    permitted(
        &state.broker,
        &caller,
        &vhost,
        dest_kind(kind),
        dest_name,
        Perm::Write,
    )
    .map_err(refused)?;
    permitted(
        &state.broker,
        &caller,
        &vhost,
        Kind::Exchange,
        path_name(&source),
        Perm::Read,
    )
    .map_err(refused)?;
    if kind == "queue" {
        let owner = v
            .queues()
            .iter()
            .find(|q| q.name == dest_name)
            .and_then(|q| q.exclusive_owner)
            .unwrap_or(0);
        v.unbind_queue(dest_name, source_name, key, &args, owner)?;
    } else {
        v.unbind_exchange(dest_name, source_name, key, &args)?;
    }
    no_content()
}

pub async fn between_q(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, source, dest)): Path<(String, String, String)>,
    p: Params,
) -> ApiResult {
    let list = between(&state, &caller, &vhost, &source, &dest, "queue")?;
    respond_values(list, &list_query(&p)?, "routing_key", &[])
}

pub async fn between_e(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, source, dest)): Path<(String, String, String)>,
    p: Params,
) -> ApiResult {
    let list = between(&state, &caller, &vhost, &source, &dest, "exchange")?;
    respond_values(list, &list_query(&p)?, "routing_key", &[])
}

pub async fn create_q(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, source, dest)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    create(state, caller, vhost, source, dest, "queue", body).await
}

pub async fn create_e(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, source, dest)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    create(state, caller, vhost, source, dest, "exchange", body).await
}

pub async fn show_q(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, source, dest, props)): Path<(String, String, String, String)>,
) -> ApiResult {
    let list = between(&state, &caller, &vhost, &source, &dest, "queue")?;
    ok(&find_by_props(list, &props).ok_or(ApiError::NotFound)?)
}

pub async fn show_e(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, source, dest, props)): Path<(String, String, String, String)>,
) -> ApiResult {
    let list = between(&state, &caller, &vhost, &source, &dest, "exchange")?;
    ok(&find_by_props(list, &props).ok_or(ApiError::NotFound)?)
}

pub async fn remove_q(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(p): Path<(String, String, String, String)>,
) -> ApiResult {
    remove(state, caller, p, "queue").await
}

pub async fn remove_e(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(p): Path<(String, String, String, String)>,
) -> ApiResult {
    remove(state, caller, p, "exchange").await
}
