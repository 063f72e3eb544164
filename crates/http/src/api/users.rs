//! `/api/users` and `/api/user-limits`: users with their tags and password hashes, bulk
//! deletion, per-user limits. Administrators only.

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use serde_json::{json, Value};
use warren_core::management::{Password, SHA256};

use super::{body_json, created, list_query, no_content, ok, require_keys, tags_of, Auth, Params};
use crate::error::{ApiError, ApiResult};
use crate::listing::respond_values;
use crate::render;
use crate::State;

pub async fn list(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    caller.require_admin()?;
    let q = list_query(&p)?;
    let items = state.broker.list_users().iter().map(render::user).collect();
    respond_values(items, &q, "name", &["name"])
}

pub async fn without_permissions(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    p: Params,
) -> ApiResult {
    caller.require_admin()?;
    let q = list_query(&p)?;
    let items = state
        .broker
        .users_without_permissions()
        .iter()
        .map(render::user)
        .collect();
    respond_values(items, &q, "name", &["name"])
}

pub async fn show(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(user): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    match state.broker.user_def(&user) {
        Some(u) => ok(&render::user(&u)),
        None => Err(ApiError::NotFound),
    }
}

pub async fn put(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(user): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let v = body_json(&body, "not_json")?;
    let password = match (
        v.get("password").and_then(Value::as_str),
        v.get("password_hash").and_then(Value::as_str),
    ) {
        (Some(p), _) => Password::Clear(p.to_string()),
        (None, Some(h)) => {
            let algo = v
                .get("hashing_algorithm")
                .and_then(Value::as_str)
                .unwrap_or(SHA256);
            if algo != SHA256 {
                tracing::warn!(user = %user, algorithm = %algo, "password hash of an algorithm Warren does not check; password login will fail");
            }
            Password::Hash(h.to_string())
        }
        (None, None) => Password::Keep,
    };
    let tags = tags_of(v.get("tags"));
    created(state.broker.put_user(&user, password, tags))
}

pub async fn remove(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(user): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    // The core closes the user's connections too, as RabbitMQ does.
    if state.broker.delete_user(&user) {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}

pub async fn bulk_delete(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let v = body_json(&body, "not_json")?;
    require_keys(&v, &["users"])?;
    let names: Vec<String> = v["users"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    for n in names {
        if !state.broker.delete_user(&n) {
            return Err(ApiError::BadRequest(json!(["no_such_user", n])));
        }
    }
    no_content()
}

fn limits_json(u: &warren_store::definitions::UserDef) -> Option<Value> {
    let m = u.limits.as_object()?;
    (!m.is_empty()).then(|| json!({"user": u.name, "value": u.limits}))
}

pub async fn limits(Auth(caller): Auth, AxState(state): AxState<State>) -> ApiResult {
    caller.require_admin()?;
    let all: Vec<Value> = state
        .broker
        .list_users()
        .iter()
        .filter_map(limits_json)
        .collect();
    ok(&Value::Array(all))
}

pub async fn limits_of(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(user): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    let Some(u) = state.broker.user_def(&user) else {
        return Err(ApiError::NotFound);
    };
    ok(&Value::Array(limits_json(&u).into_iter().collect()))
}

pub async fn put_limit(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((user, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let v = body_json(&body, "not_json")?;
    require_keys(&v, &["value"])?;
    if !["max-connections", "max-channels"].contains(&name.as_str()) {
        return Err(ApiError::bad(format!(
            "Validation failed\n\nUnrecognised terms [{{<<\"{name}\">>,{}}}] in user-limits\n",
            v["value"]
        )));
    }
    if !v["value"].is_i64() {
        return Err(ApiError::bad(format!(
            "Validation failed\n\n{} is not a valid value for {name}\n",
            v["value"]
        )));
    }
    if state
        .broker
        .set_user_limit(&user, &name, Some(v["value"].clone()))
    {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}

pub async fn delete_limit(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((user, name)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin()?;
    if state.broker.set_user_limit(&user, &name, None) {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}
