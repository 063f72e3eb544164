//! `/api/connections`, `/api/channels` and `/api/consumers`: what the connection registry
//! holds, and closing a connection (`DELETE`, with RabbitMQ's `X-Reason` header).
//!
//! Users without `monitoring` see only their own connections and channels.

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use serde_json::Value;
use warren_core::registry::ConnectionEntry;

use super::{list_query, no_content, ok, Auth, Params};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::listing::respond_values;
use crate::render;
use crate::State;

/// RabbitMQ's reason when a connection is closed through the API without `X-Reason`.
const DEFAULT_REASON: &str = "Closed via management plugin";

fn visible(state: &State, caller: &Caller, vhost: Option<&str>) -> Vec<Arc<ConnectionEntry>> {
    state
        .broker
        .registry()
        .connections()
        .into_iter()
        .filter(|c| caller.sees_user(&c.info.user))
        .filter(|c| vhost.is_none_or(|v| c.info.vhost == v))
        .collect()
}

fn list_of(state: &State, conns: &[Arc<ConnectionEntry>], p: &Params) -> ApiResult {
    let items = conns.iter().map(|c| render::connection(state, c)).collect();
    respond_values(items, &list_query(p)?, "name", &["name"])
}

pub async fn list(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    list_of(&state, &visible(&state, &caller, None), &p)
}

pub async fn of_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    list_of(&state, &visible(&state, &caller, Some(&vhost)), &p)
}

/// A connection named in a path, if the caller may see it.
fn find(state: &State, caller: &Caller, name: &str) -> Result<Arc<ConnectionEntry>, ApiError> {
    let c = state
        .broker
        .registry()
        .connection_by_name(name)
        .ok_or(ApiError::NotFound)?;
    if !caller.sees_user(&c.info.user) {
        return Err(ApiError::NotAuthorised(
            "User not authorised to access object",
        ));
    }
    Ok(c)
}

pub async fn show(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(name): Path<String>,
) -> ApiResult {
    let c = find(&state, &caller, &name)?;
    ok(&render::connection(&state, &c))
}

fn reason(headers: &HeaderMap) -> String {
    headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_REASON)
        .to_string()
}

pub async fn close(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let c = find(&state, &caller, &name)?;
    if !caller.is_admin() && c.info.user != caller.name {
        return Err(ApiError::NotAuthorised(
            "User not authorised to access object",
        ));
    }
    c.force_close(&reason(&headers));
    no_content()
}

pub async fn of_user(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(user): Path<String>,
    p: Params,
) -> ApiResult {
    if !caller.sees_user(&user) {
        return Err(ApiError::NotAuthorised(
            "User not authorised to access object",
        ));
    }
    let conns: Vec<_> = visible(&state, &caller, None)
        .into_iter()
        .filter(|c| c.info.user == user)
        .collect();
    list_of(&state, &conns, &p)
}

pub async fn close_of_user(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    if !caller.is_admin() && caller.name != user {
        return Err(ApiError::NotAuthorised(
            "User not authorised to access object",
        ));
    }
    let why = reason(&headers);
    for c in state.broker.registry().connections() {
        if c.info.user == user {
            c.force_close(&why);
        }
    }
    no_content()
}

fn channels_json(state: &State, conns: &[Arc<ConnectionEntry>]) -> Vec<Value> {
    let idx = render::consumer_index(state);
    let mut out = Vec::new();
    for c in conns {
        for ch in c.channels() {
            let n = idx.get(&(c.id(), ch.number)).map_or(0, Vec::len);
            out.push(render::channel(state, c, &ch, n));
        }
    }
    out
}

pub async fn channels(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    let conns = visible(&state, &caller, None);
    respond_values(
        channels_json(&state, &conns),
        &list_query(&p)?,
        "name",
        &["name"],
    )
}

pub async fn channels_of(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult {
    let c = find(&state, &caller, &name)?;
    respond_values(
        channels_json(&state, &[c]),
        &list_query(&p)?,
        "name",
        &["name"],
    )
}

pub async fn channels_of_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    let conns = visible(&state, &caller, Some(&vhost));
    respond_values(
        channels_json(&state, &conns),
        &list_query(&p)?,
        "name",
        &["name"],
    )
}

pub async fn channel(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(name): Path<String>,
) -> ApiResult {
    // "<connection name> (<number>)"
    let (conn, number) = name
        .rsplit_once(" (")
        .and_then(|(c, n)| Some((c, n.strip_suffix(')')?.parse::<u16>().ok()?)))
        .ok_or(ApiError::NotFound)?;
    let c = find(&state, &caller, conn)?;
    let ch = c.channel(number).ok_or(ApiError::NotFound)?;
    let idx = render::consumer_index(&state);
    let consumers = idx.get(&(c.id(), number)).cloned().unwrap_or_default();
    let mut v = render::channel(&state, &c, &ch, consumers.len());
    if let Value::Object(m) = &mut v {
        m.insert(
            "consumer_details".into(),
            Value::Array(
                consumers
                    .iter()
                    .map(|(cons, q)| render::consumer(&state, cons, q))
                    .collect(),
            ),
        );
        m.insert("deliveries".into(), Value::Array(vec![]));
        m.insert("publishes".into(), Value::Array(vec![]));
    }
    ok(&v)
}

fn consumers_json(state: &State, caller: &Caller, vhost: Option<&str>) -> Vec<Value> {
    let b = &state.broker;
    let mut out = Vec::new();
    for v in b.vhosts() {
        if vhost.is_some_and(|x| x != v.name) || !b.vhost_exists(&v.name) {
            continue;
        }
        if !caller.sees_vhost(b, &v.name) {
            continue;
        }
        for q in v.queues() {
            for c in q.consumers() {
                out.push(render::consumer(state, &c, &q));
            }
        }
    }
    out
}

pub async fn consumers(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    respond_values(
        consumers_json(&state, &caller, None),
        &list_query(&p)?,
        "consumer_tag",
        &["queue.vhost", "queue.name", "consumer_tag"],
    )
}

pub async fn consumers_of_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    respond_values(
        consumers_json(&state, &caller, Some(&vhost)),
        &list_query(&p)?,
        "consumer_tag",
        &["queue.vhost", "queue.name", "consumer_tag"],
    )
}
