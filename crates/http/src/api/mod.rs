//! The API's routes, one file per resource in RabbitMQ's vocabulary, and what their
//! handlers share: authentication, request bodies, responses.
//!
//! Paths are RabbitMQ's (`/api/queues/{vhost}/{name}`, the default vhost written `%2F`);
//! [`ROUTES`] lists each with its methods, and the OpenAPI document must list the same
//! (a unit test compares them).

mod bindings;
mod connections;
mod definitions;
mod exchanges;
mod health;
mod overview;
mod parameters;
mod permissions;
mod queues;
mod shovel;
mod users;
mod vhosts;

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde_json::Value;

use crate::auth::{authenticate, Caller};
use crate::error::{json_response, ApiError, ApiResult};
use crate::listing::ListQuery;
use crate::State;

/// The authenticated caller of a request (a handler's first extractor).
pub struct Auth(pub Caller);

impl FromRequestParts<State> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        authenticate(&state.broker, &parts.headers, peer).map(Auth)
    }
}

/// The query string as a map.
pub type Params = Query<HashMap<String, String>>;

/// List parameters of a request.
pub fn list_query(p: &Params) -> Result<ListQuery, ApiError> {
    ListQuery::parse(&p.0)
}

/// A request body as JSON (an empty body is `{}`); `not_json` is RabbitMQ's reason for
/// a body that does not parse.
pub fn body_json(body: &Bytes, not_json: &'static str) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(ApiError::bad(not_json)),
    }
}

/// RabbitMQ's `[{key_missing,k},...]` reason, if any of `keys` is missing.
pub fn require_keys(body: &Value, keys: &[&str]) -> Result<(), ApiError> {
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| body.get(**k).is_none())
        .map(|k| format!("{{key_missing,{k}}}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad(format!("[{}]", missing.join(","))))
    }
}

pub fn ok(v: &Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, v))
}

/// 201 for a new object, 204 for an updated one (RabbitMQ's PUT answers).
pub fn created(new: bool) -> ApiResult {
    Ok(if new {
        StatusCode::CREATED.into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    })
}

pub fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A vhost named in a path must exist.
pub fn vhost_exists(state: &State, vhost: &str) -> Result<(), ApiError> {
    if state.broker.vhost_exists(vhost) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// Tags from a request body: RabbitMQ takes "a,b" or ["a","b"].
pub fn tags_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

async fn not_found() -> Response {
    ApiError::NotFound.into_response()
}

macro_rules! api_routes {
    ($( $path:literal [$($m:ident),+] => $route:expr ),* $(,)?) => {
        /// Every path the API serves, with its methods (what the OpenAPI document must
        /// describe).
        pub const ROUTES: &[(&str, &[&str])] = &[$(($path, &[$(stringify!($m)),+])),*];

        pub fn routes() -> Router<State> {
            Router::new()
                $(.route($path, $route))*
                .fallback(not_found)
        }
    };
}

api_routes! {
    "/api/overview" [get] => get(overview::overview),
    "/api/cluster-name" [get, put] => get(overview::cluster_name).put(overview::put_cluster_name),
    "/api/nodes" [get] => get(overview::nodes),
    "/api/nodes/{node}" [get] => get(overview::node),
    "/api/extensions" [get] => get(overview::extensions),
    "/api/whoami" [get] => get(overview::whoami),
    "/api/auth" [get] => get(overview::auth),
    "/api/feature-flags" [get] => get(overview::feature_flags),

    "/api/vhosts" [get] => get(vhosts::list),
    "/api/vhosts/{vhost}" [get, put, delete] => get(vhosts::show).put(vhosts::put).delete(vhosts::remove),
    "/api/vhosts/{vhost}/permissions" [get] => get(permissions::of_vhost),
    "/api/vhosts/{vhost}/topic-permissions" [get] => get(permissions::topic_of_vhost),
    "/api/vhosts/{vhost}/connections" [get] => get(connections::of_vhost),
    "/api/vhosts/{vhost}/channels" [get] => get(connections::channels_of_vhost),

    "/api/users" [get] => get(users::list),
    "/api/users/without-permissions" [get] => get(users::without_permissions),
    "/api/users/bulk-delete" [post] => post(users::bulk_delete),
    "/api/users/{user}" [get, put, delete] => get(users::show).put(users::put).delete(users::remove),
    "/api/users/{user}/permissions" [get] => get(permissions::of_user),
    "/api/users/{user}/topic-permissions" [get] => get(permissions::topic_of_user),
    "/api/user-limits" [get] => get(users::limits),
    "/api/user-limits/{user}" [get] => get(users::limits_of),
    "/api/user-limits/{user}/{name}" [put, delete] => put(users::put_limit).delete(users::delete_limit),

    "/api/permissions" [get] => get(permissions::list),
    "/api/permissions/{vhost}/{user}" [get, put, delete] => get(permissions::show).put(permissions::put).delete(permissions::remove),
    "/api/topic-permissions" [get] => get(permissions::topic_list),
    "/api/topic-permissions/{vhost}/{user}" [get, put, delete] => get(permissions::topic_show).put(permissions::topic_put).delete(permissions::topic_remove),

    "/api/connections" [get] => get(connections::list),
    "/api/connections/{name}" [get, delete] => get(connections::show).delete(connections::close),
    "/api/connections/{name}/channels" [get] => get(connections::channels_of),
    "/api/connections/username/{user}" [get, delete] => get(connections::of_user).delete(connections::close_of_user),
    "/api/channels" [get] => get(connections::channels),
    "/api/channels/{name}" [get] => get(connections::channel),
    "/api/consumers" [get] => get(connections::consumers),
    "/api/consumers/{vhost}" [get] => get(connections::consumers_of_vhost),

    "/api/exchanges" [get] => get(exchanges::list),
    "/api/exchanges/{vhost}" [get] => get(exchanges::list_vhost),
    "/api/exchanges/{vhost}/{name}" [get, put, delete] => get(exchanges::show).put(exchanges::put).delete(exchanges::remove),
    "/api/exchanges/{vhost}/{name}/bindings/source" [get] => get(exchanges::bindings_source),
    "/api/exchanges/{vhost}/{name}/bindings/destination" [get] => get(exchanges::bindings_destination),
    "/api/exchanges/{vhost}/{name}/publish" [post] => post(exchanges::publish),

    "/api/queues" [get] => get(queues::list),
    "/api/queues/{vhost}" [get] => get(queues::list_vhost),
    "/api/queues/{vhost}/{name}" [get, put, delete] => get(queues::show).put(queues::put).delete(queues::remove),
    "/api/queues/{vhost}/{name}/bindings" [get] => get(queues::bindings),
    "/api/queues/{vhost}/{name}/contents" [delete] => delete(queues::purge),
    "/api/queues/{vhost}/{name}/get" [post] => post(queues::get_messages),
    "/api/queues/{vhost}/{name}/actions" [post] => post(queues::actions),

    "/api/bindings" [get] => get(bindings::list),
    "/api/bindings/{vhost}" [get] => get(bindings::list_vhost),
    "/api/bindings/{vhost}/e/{source}/q/{dest}" [get, post] => get(bindings::between_q).post(bindings::create_q),
    "/api/bindings/{vhost}/e/{source}/q/{dest}/{props}" [get, delete] => get(bindings::show_q).delete(bindings::remove_q),
    "/api/bindings/{vhost}/e/{source}/e/{dest}" [get, post] => get(bindings::between_e).post(bindings::create_e),
    "/api/bindings/{vhost}/e/{source}/e/{dest}/{props}" [get, delete] => get(bindings::show_e).delete(bindings::remove_e),

    "/api/policies" [get] => get(parameters::policies),
    "/api/policies/{vhost}" [get] => get(parameters::policies_of_vhost),
    "/api/policies/{vhost}/{name}" [get, put, delete] => get(parameters::policy).put(parameters::put_policy).delete(parameters::delete_policy),
    "/api/operator-policies" [get] => get(parameters::operator_policies),
    "/api/operator-policies/{vhost}" [get] => get(parameters::operator_policies_of_vhost),
    "/api/operator-policies/{vhost}/{name}" [get, put, delete] => get(parameters::operator_policy).put(parameters::put_operator_policy).delete(parameters::delete_operator_policy),
    "/api/parameters" [get] => get(parameters::list),
    "/api/parameters/{component}" [get] => get(parameters::of_component),
    "/api/parameters/{component}/{vhost}" [get] => get(parameters::of_component_vhost),
    "/api/parameters/{component}/{vhost}/{name}" [get, put, delete] => get(parameters::show).put(parameters::put).delete(parameters::remove),
    "/api/global-parameters" [get] => get(parameters::globals),
    "/api/global-parameters/{name}" [get, put, delete] => get(parameters::global).put(parameters::put_global).delete(parameters::delete_global),
    "/api/vhost-limits" [get] => get(parameters::vhost_limits),
    "/api/vhost-limits/{vhost}" [get] => get(parameters::vhost_limits_of),
    "/api/vhost-limits/{vhost}/{name}" [put, delete] => put(parameters::put_vhost_limit).delete(parameters::delete_vhost_limit),

    "/api/definitions" [get, post] => get(definitions::export).post(definitions::import),
    "/api/definitions/{vhost}" [get, post] => get(definitions::export_vhost).post(definitions::import_vhost),
    "/api/all-configuration" [get, post] => get(definitions::export).post(definitions::import),

    "/api/health/checks/alarms" [get] => get(health::alarms),
    "/api/health/checks/local-alarms" [get] => get(health::alarms),
    "/api/health/checks/virtual-hosts" [get] => get(health::virtual_hosts),
    "/api/health/checks/port-listener/{port}" [get] => get(health::port_listener),
    "/api/health/checks/protocol-listener/{protocol}" [get] => get(health::protocol_listener),
    "/api/health/checks/node-is-quorum-critical" [get] => get(health::single_node),
    "/api/health/checks/node-is-mirror-sync-critical" [get] => get(health::single_node),
    "/api/health/checks/certificate-expiration/{within}/{unit}" [get] => get(health::certificates),
    "/api/aliveness-test/{vhost}" [get] => get(health::aliveness),
    "/api/healthchecks/node" [get] => get(health::node),
    "/api/healthchecks/node/{node}" [get] => get(health::node_named),
}

#[cfg(test)]
mod tests {
    use super::ROUTES;
    use serde_json::Value;

    /// The OpenAPI document describes exactly the routes served, with their methods.
    #[test]
    fn openapi_document_matches_the_router() {
        let doc: Value =
            serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json parses");
        let paths = doc["paths"].as_object().expect("paths");
        for (path, methods) in ROUTES {
            let item = paths
                .get(*path)
                .unwrap_or_else(|| panic!("{path} is served but not in openapi.json"));
            for m in *methods {
                assert!(
                    item.get(*m).is_some(),
                    "{m} {path} is served but not documented"
                );
            }
        }
        for (path, item) in paths {
            let served = ROUTES
                .iter()
                .find(|(p, _)| p == path)
                .unwrap_or_else(|| panic!("{path} is documented but not served"));
            for m in item.as_object().unwrap().keys() {
                if ["get", "put", "post", "delete"].contains(&m.as_str()) {
                    assert!(
                        served.1.contains(&m.as_str()),
                        "{m} {path} is documented but not served"
                    );
                }
            }
        }
    }
}
