//! Policies, operator policies, runtime parameters, global parameters and vhost limits.
//!
//! Policies live in their vhost, which applies them. Operator policies and vhost limits
//! are runtime parameters (components `operator_policy` and `vhost-limits`), as in
//! RabbitMQ. Component `shovel` is a one-shot move of messages between local queues,
//! run at once and not kept (see `shovel`); no other component is known (RabbitMQ
//! without its federation plugin refuses that one the same way).

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use serde_json::{json, Map, Value};

use super::{body_json, created, list_query, no_content, ok, require_keys, Auth, Params};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::listing::respond_values;
use crate::State;

const OPERATOR_POLICY: &str = "operator_policy";
const VHOST_LIMITS: &str = "vhost-limits";
const SHOVEL: &str = "shovel";
const KNOWN_COMPONENTS: &[&str] = &[OPERATOR_POLICY, VHOST_LIMITS];

fn require_policymaker(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_policymaker() {
        Ok(())
    } else {
        Err(ApiError::NotAuthorised(
            "User not authorised to access object",
        ))
    }
}

fn visible_vhosts(state: &State, caller: &Caller) -> Vec<String> {
    state
        .broker
        .list_vhost_defs()
        .into_iter()
        .map(|v| v.name)
        .filter(|v| caller.sees_vhost(&state.broker, v))
        .collect()
}

// ----- policies ----------------------------------------------------------------------

pub async fn policies(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    let mut all = Vec::new();
    for v in visible_vhosts(&state, &caller) {
        all.extend(state.broker.list_policies(Some(&v)));
    }
    respond_values(all, &list_query(&p)?, "name", &["vhost", "name"])
}

pub async fn policies_of_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    respond_values(
        state.broker.list_policies(Some(&vhost)),
        &list_query(&p)?,
        "name",
        &["name"],
    )
}

fn find_named(list: Vec<Value>, name: &str) -> Option<Value> {
    list.into_iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
}

pub async fn policy(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    let p =
        find_named(state.broker.list_policies(Some(&vhost)), &name).ok_or(ApiError::NotFound)?;
    ok(&p)
}

pub async fn put_policy(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    require_policymaker(&caller)?;
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    let body = body_json(&body, "not_json")?;
    let new = state
        .broker
        .put_policy(&vhost, &name, &body)
        .map_err(ApiError::bad)?;
    created(new)
}

pub async fn delete_policy(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult {
    require_policymaker(&caller)?;
    caller.require_vhost(&state.broker, &vhost)?;
    if state.broker.delete_policy(&vhost, &name) {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}

// ----- operator policies -------------------------------------------------------------

fn operator_policy_json(p: &Value) -> Value {
    let v = &p["value"];
    json!({
        "vhost": p["vhost"],
        "name": p["name"],
        "pattern": v.get("pattern").cloned().unwrap_or(json!("")),
        "apply-to": v.get("apply-to").cloned().unwrap_or(json!("all")),
        "definition": v.get("definition").cloned().unwrap_or(json!({})),
        "priority": v.get("priority").cloned().unwrap_or(json!(0)),
    })
}

fn operator_policies_in(state: &State, vhost: Option<&str>) -> Vec<Value> {
    state
        .broker
        .list_parameters(Some(OPERATOR_POLICY), vhost, None)
        .iter()
        .map(operator_policy_json)
        .collect()
}

pub async fn operator_policies(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    p: Params,
) -> ApiResult {
    caller.require_admin()?;
    respond_values(
        operator_policies_in(&state, None),
        &list_query(&p)?,
        "name",
        &["vhost", "name"],
    )
}

pub async fn operator_policies_of_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_admin()?;
    super::vhost_exists(&state, &vhost)?;
    respond_values(
        operator_policies_in(&state, Some(&vhost)),
        &list_query(&p)?,
        "name",
        &["name"],
    )
}

pub async fn operator_policy(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin()?;
    let p =
        find_named(operator_policies_in(&state, Some(&vhost)), &name).ok_or(ApiError::NotFound)?;
    ok(&p)
}

pub async fn put_operator_policy(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    super::vhost_exists(&state, &vhost)?;
    let body = body_json(&body, "not_json")?;
    require_keys(&body, &["pattern", "definition"])?;
    if let Some(pat) = body["pattern"].as_str() {
        regex::Regex::new(pat).map_err(|e| {
            ApiError::bad(format!(
                "Validation failed\n\n<<\"{pat}\">> is not a valid regular expression: {e}\n"
            ))
        })?;
    }
    let value = json!({
        "pattern": body["pattern"],
        "definition": body["definition"],
        "priority": body.get("priority").cloned().unwrap_or(json!(0)),
        "apply-to": body.get("apply-to").cloned().unwrap_or(json!("all")),
    });
    created(
        state
            .broker
            .put_parameter(OPERATOR_POLICY, &vhost, &name, value),
    )
}

pub async fn delete_operator_policy(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin()?;
    if state
        .broker
        .delete_parameter(OPERATOR_POLICY, &vhost, &name)
    {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}

// ----- runtime parameters ------------------------------------------------------------

fn params_in(
    state: &State,
    caller: &Caller,
    component: Option<&str>,
    vhost: Option<&str>,
) -> Vec<Value> {
    let visible = visible_vhosts(state, caller);
    state
        .broker
        .list_parameters(component, vhost, None)
        .into_iter()
        .filter(|p| {
            p.get("vhost")
                .and_then(Value::as_str)
                .is_some_and(|v| visible.iter().any(|x| x == v))
        })
        .collect()
}

pub async fn list(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    require_policymaker(&caller)?;
    respond_values(
        params_in(&state, &caller, None, None),
        &list_query(&p)?,
        "name",
        &[],
    )
}

pub async fn of_component(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(component): Path<String>,
    p: Params,
) -> ApiResult {
    require_policymaker(&caller)?;
    respond_values(
        params_in(&state, &caller, Some(&component), None),
        &list_query(&p)?,
        "name",
        &[],
    )
}

pub async fn of_component_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((component, vhost)): Path<(String, String)>,
    p: Params,
) -> ApiResult {
    require_policymaker(&caller)?;
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    respond_values(
        params_in(&state, &caller, Some(&component), Some(&vhost)),
        &list_query(&p)?,
        "name",
        &[],
    )
}

pub async fn show(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((component, vhost, name)): Path<(String, String, String)>,
) -> ApiResult {
    require_policymaker(&caller)?;
    caller.require_vhost(&state.broker, &vhost)?;
    let p = state
        .broker
        .list_parameters(Some(&component), Some(&vhost), Some(&name))
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?;
    ok(&p)
}

pub async fn put(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((component, vhost, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    require_policymaker(&caller)?;
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    let body = body_json(&body, "not_json")?;
    require_keys(&body, &["value"])?;
    if component == SHOVEL {
        let moved = super::shovel::run(&state, &caller, &vhost, &body["value"]).await?;
        tracing::info!(vhost = %vhost, shovel = %name, moved, "one-shot shovel done");
        return created(true);
    }
    if !KNOWN_COMPONENTS.contains(&component.as_str()) {
        return Err(ApiError::bad(format!(
            "Validation failed\n\ncomponent {component} not found\n"
        )));
    }
    created(
        state
            .broker
            .put_parameter(&component, &vhost, &name, body["value"].clone()),
    )
}

pub async fn remove(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((component, vhost, name)): Path<(String, String, String)>,
) -> ApiResult {
    require_policymaker(&caller)?;
    caller.require_vhost(&state.broker, &vhost)?;
    if state.broker.delete_parameter(&component, &vhost, &name) {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}

// ----- global parameters -------------------------------------------------------------

pub async fn globals(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    caller.require_admin()?;
    respond_values(
        state.broker.list_global_parameters(),
        &list_query(&p)?,
        "name",
        &["name"],
    )
}

pub async fn global(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(name): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    let p = find_named(state.broker.list_global_parameters(), &name).ok_or(ApiError::NotFound)?;
    ok(&json!({"value": p["value"], "name": p["name"]}))
}

pub async fn put_global(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let body = body_json(&body, "not_json")?;
    require_keys(&body, &["value"])?;
    created(
        state
            .broker
            .put_global_parameter(&name, body["value"].clone()),
    )
}

pub async fn delete_global(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(name): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    if state.broker.delete_global_parameter(&name) {
        no_content()
    } else {
        Err(ApiError::NotFound)
    }
}

// ----- vhost limits ------------------------------------------------------------------

fn limits_of(state: &State, vhost: Option<&str>) -> Vec<Value> {
    state
        .broker
        .list_parameters(Some(VHOST_LIMITS), vhost, Some("limits"))
        .iter()
        .filter(|p| p["value"].as_object().is_some_and(|m| !m.is_empty()))
        .map(|p| json!({"vhost": p["vhost"], "value": p["value"]}))
        .collect()
}

pub async fn vhost_limits(Auth(caller): Auth, AxState(state): AxState<State>) -> ApiResult {
    let visible = visible_vhosts(&state, &caller);
    let list: Vec<Value> = limits_of(&state, None)
        .into_iter()
        .filter(|l| visible.iter().any(|v| l["vhost"] == *v))
        .collect();
    ok(&Value::Array(list))
}

pub async fn vhost_limits_of(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    ok(&Value::Array(limits_of(&state, Some(&vhost))))
}

fn current_limits(state: &State, vhost: &str) -> Map<String, Value> {
    state
        .broker
        .list_parameters(Some(VHOST_LIMITS), Some(vhost), Some("limits"))
        .first()
        .and_then(|p| p["value"].as_object().cloned())
        .unwrap_or_default()
}

pub async fn put_vhost_limit(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    super::vhost_exists(&state, &vhost)?;
    let body = body_json(&body, "not_json")?;
    require_keys(&body, &["value"])?;
    if !["max-connections", "max-queues"].contains(&name.as_str()) || !body["value"].is_i64() {
        return Err(ApiError::bad(format!(
            "Validation failed\n\n{} is not a valid value for {name}\n",
            body["value"]
        )));
    }
    let mut limits = current_limits(&state, &vhost);
    limits.insert(name, body["value"].clone());
    state
        .broker
        .put_parameter(VHOST_LIMITS, &vhost, "limits", Value::Object(limits));
    no_content()
}

pub async fn delete_vhost_limit(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin()?;
    super::vhost_exists(&state, &vhost)?;
    let mut limits = current_limits(&state, &vhost);
    if limits.remove(&name).is_none() {
        return Err(ApiError::NotFound);
    }
    if limits.is_empty() {
        state
            .broker
            .delete_parameter(VHOST_LIMITS, &vhost, "limits");
    } else {
        state
            .broker
            .put_parameter(VHOST_LIMITS, &vhost, "limits", Value::Object(limits));
    }
    no_content()
}
