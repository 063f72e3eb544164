//! `/api/permissions` and `/api/topic-permissions`, and the per-vhost and per-user
//! views of both. Administrators only.

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use serde_json::{json, Value};
use warren_core::management::TopicPermission;
use warren_store::definitions::PermissionDef;

use super::{body_json, created, list_query, no_content, ok, require_keys, Auth, Params};
use crate::error::{ApiError, ApiResult};
use crate::listing::respond_values;
use crate::render;
use crate::State;

fn check_regex(pattern: &str) -> Result<(), ApiError> {
    regex::Regex::new(pattern)
        .map(|_| ())
        .map_err(|e| ApiError::BadRequest(json!(["invalid_regexp", pattern, e.to_string()])))
}

fn perms(state: &State, keep: impl Fn(&PermissionDef) -> bool) -> Vec<Value> {
    state
        .broker
        .list_permissions()
        .iter()
        .filter(|p| keep(p))
        .map(render::permission)
        .collect()
}

pub async fn list(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    caller.require_admin()?;
    respond_values(
        perms(&state, |_| true),
        &list_query(&p)?,
        "user",
        &["vhost", "user"],
    )
}

pub async fn of_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_admin()?;
    super::vhost_exists(&state, &vhost)?;
    respond_values(
        perms(&state, |x| x.vhost == vhost),
        &list_query(&p)?,
        "user",
        &["user"],
    )
}

pub async fn of_user(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(user): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_admin()?;
    if state.broker.user_def(&user).is_none() {
        return Err(ApiError::NotFound);
    }
    respond_values(
        perms(&state, |x| x.user == user),
        &list_query(&p)?,
        "vhost",
        &["vhost"],
    )
}

pub async fn show(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin()?;
    match state.broker.permission_def(&vhost, &user) {
        Some(p) => ok(&render::permission(&p)),
        None => Err(ApiError::NotFound),
    }
}

pub async fn put(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, user)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let v = body_json(&body, "not_json")?;
    require_keys(&v, &["configure", "write", "read"])?;
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let def = PermissionDef {
        user,
        vhost,
        configure: s("configure"),
        write: s("write"),
        read: s("read"),
    };
    for p in [&def.configure, &def.write, &def.read] {
        check_regex(p)?;
    }
    let new = state.broker.put_permission(def).map_err(ApiError::bad)?;
    created(new)
}

pub async fn remove(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin()?;
    if state.broker.delete_permission(&vhost, &user) {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}

fn topic_perms(state: &State, keep: impl Fn(&TopicPermission) -> bool) -> Vec<Value> {
    state
        .broker
        .list_topic_permissions()
        .iter()
        .filter(|t| keep(t))
        .map(render::topic_permission)
        .collect()
}

pub async fn topic_list(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    p: Params,
) -> ApiResult {
    caller.require_admin()?;
    respond_values(
        topic_perms(&state, |_| true),
        &list_query(&p)?,
        "user",
        &["vhost", "user"],
    )
}

pub async fn topic_of_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_admin()?;
    super::vhost_exists(&state, &vhost)?;
    respond_values(
        topic_perms(&state, |t| t.vhost == vhost),
        &list_query(&p)?,
        "user",
        &["user"],
    )
}

pub async fn topic_of_user(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(user): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_admin()?;
    if state.broker.user_def(&user).is_none() {
        return Err(ApiError::NotFound);
    }
    respond_values(
        topic_perms(&state, |t| t.user == user),
        &list_query(&p)?,
        "vhost",
        &["vhost"],
    )
}

pub async fn topic_show(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin()?;
    let list = topic_perms(&state, |t| t.vhost == vhost && t.user == user);
    if list.is_empty() {
        return Err(ApiError::NotFound);
    }
    ok(&Value::Array(list))
}

pub async fn topic_put(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, user)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let v = body_json(&body, "not_json")?;
    require_keys(&v, &["exchange", "write", "read"])?;
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let t = TopicPermission {
        user,
        vhost,
        exchange: s("exchange"),
        write: s("write"),
        read: s("read"),
    };
    check_regex(&t.write)?;
    check_regex(&t.read)?;
    let new = state
        .broker
        .put_topic_permission(t)
        .map_err(ApiError::bad)?;
    created(new)
}

pub async fn topic_remove(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin()?;
    // As RabbitMQ 3.10: all of the user's topic permissions in the vhost go (an
    // `exchange` query parameter is ignored).
    if state.broker.delete_topic_permissions(&vhost, &user, None) {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}
