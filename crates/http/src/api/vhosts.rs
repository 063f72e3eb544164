//! `/api/vhosts`: list, show, create or update (description, tags), delete.

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use serde_json::Value;
use warren_store::definitions::PermissionDef;

use super::{body_json, created, list_query, no_content, ok, tags_of, Auth, Params};
use crate::error::{ApiError, ApiResult};
use crate::listing::respond_values;
use crate::rates::vhost_totals;
use crate::render;
use crate::State;

pub async fn list(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    let q = list_query(&p)?;
    let b = &state.broker;
    let totals = vhost_totals(b, |_, _, _| {});
    let items: Vec<Value> = b
        .list_vhost_defs()
        .iter()
        .filter(|v| caller.sees_vhost(b, &v.name))
        .map(|v| render::vhost(&state, v, totals.get(&v.name)))
        .collect();
    respond_values(items, &q, "name", &["name"])
}

pub async fn show(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
) -> ApiResult {
    let b = &state.broker;
    let Some(def) = b.vhost_def(&vhost) else {
        return Err(ApiError::NotFound);
    };
    if !caller.sees_vhost(b, &vhost) {
        return Err(ApiError::NotAuthorised("Not administrator user"));
    }
    let totals = vhost_totals(b, |_, _, _| {});
    ok(&render::vhost(&state, &def, totals.get(&vhost)))
}

pub async fn put(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let v = body_json(&body, "not_json")?;
    let description = v
        .get("description")
        .and_then(Value::as_str)
        .map(String::from);
    let tags = v.get("tags").map(|t| tags_of(Some(t)));
    let new = state.broker.put_vhost(&vhost, description, tags);
    if new {
        // As RabbitMQ: whoever creates a vhost through the API gets full permissions.
        let all = ".*".to_string();
        let _ = state.broker.put_permission(PermissionDef {
            user: caller.name.clone(),
            vhost: vhost.clone(),
            configure: all.clone(),
            write: all.clone(),
            read: all,
        });
    }
    created(new)
}

pub async fn remove(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    let b = state.broker.clone();
    let name = vhost.clone();
    // Deleting every queue of a big vhost takes a while: off the async workers.
    let deleted = tokio::task::spawn_blocking(move || b.delete_vhost(&name).is_some())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if deleted {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}
