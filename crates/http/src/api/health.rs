//! Health checks (`/api/health/checks/...`), the aliveness test and the old node health
//! check, with RabbitMQ's answers: 200 `{"status":"ok"}`, or 503 with `"failed"` and a
//! reason.

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use serde_json::json;
use warren_amqp_codec::{BasicProperties, PropertiesView, ShortStr};
use warren_core::vhost::QueueDeclare;
use warren_core::Message;

use super::{ok, Auth};
use crate::error::{ApiError, ApiResult};
use crate::State;

pub async fn alarms(Auth(_): Auth, AxState(state): AxState<State>) -> ApiResult {
    let a = &state.broker.alarms;
    if !a.any() {
        return ok(&json!({"status": "ok"}));
    }
    let node = &state.broker.config.node_name;
    let mut list = Vec::new();
    if a.disk() {
        list.push(json!({"node": node, "resource": "disk"}));
    }
    if a.memory() {
        list.push(json!({"node": node, "resource": "memory"}));
    }
    Err(ApiError::Unavailable(json!({
        "status": "failed",
        "reason": "resource alarm(s) in effect in the cluster",
        "alarms": list,
    })))
}

pub async fn virtual_hosts(Auth(_): Auth, AxState(state): AxState<State>) -> ApiResult {
    let b = &state.broker;
    let down: Vec<String> = b
        .list_vhost_defs()
        .into_iter()
        .map(|v| v.name)
        .filter(|v| b.vhost(v).is_none())
        .collect();
    if down.is_empty() {
        ok(&json!({"status": "ok"}))
    } else {
        Err(ApiError::Unavailable(json!({
            "status": "failed",
            "reason": "Some virtual hosts are down",
            "virtual-hosts": down,
        })))
    }
}

pub async fn port_listener(
    Auth(_): Auth,
    AxState(state): AxState<State>,
    Path(port): Path<String>,
) -> ApiResult {
    let port: u16 = port.parse().map_err(|_| ApiError::bad("Invalid port"))?;
    let ports: Vec<u16> = state.cfg.listeners.iter().map(|l| l.port).collect();
    if ports.contains(&port) {
        ok(&json!({"status": "ok", "port": port}))
    } else {
        Err(ApiError::Unavailable(json!({
            "status": "failed",
            "reason": "No active listener",
            "missing": port,
            "ports": ports,
        })))
    }
}

pub async fn protocol_listener(
    Auth(_): Auth,
    AxState(state): AxState<State>,
    Path(protocol): Path<String>,
) -> ApiResult {
    let protocols: Vec<String> = state
        .cfg
        .listeners
        .iter()
        .map(|l| l.protocol.clone())
        .collect();
    // RabbitMQ accepts a few aliases ("amqp091", "amqp0-9-1").
    let wanted = match protocol.as_str() {
        "amqp091" | "amqp0-9-1" | "amqp0.9.1" => "amqp",
        p => p,
    };
    if protocols.iter().any(|p| p == wanted) {
        ok(&json!({"status": "ok", "protocol": protocol}))
    } else {
        Err(ApiError::Unavailable(json!({
            "status": "failed",
            "reason": "No active listener",
            "missing": protocol,
            "protocols": protocols,
        })))
    }
}

/// Quorum and mirror checks: a single node has nothing that depends on it.
pub async fn single_node(Auth(_): Auth) -> ApiResult {
    ok(&json!({"status": "ok", "reason": "single node cluster"}))
}

/// No TLS listeners: no certificate can expire.
pub async fn certificates(Auth(_): Auth, Path(_): Path<(String, String)>) -> ApiResult {
    ok(&json!({"status": "ok"}))
}

pub async fn node(Auth(_): Auth) -> ApiResult {
    ok(&json!({"status": "ok"}))
}

pub async fn node_named(
    Auth(_): Auth,
    AxState(state): AxState<State>,
    Path(node): Path<String>,
) -> ApiResult {
    if node != state.broker.config.node_name {
        return Err(ApiError::NotFound);
    }
    ok(&json!({"status": "ok"}))
}

/// RabbitMQ's aliveness test: declares the `aliveness-test` queue in the vhost,
/// publishes a message to it through the default exchange and gets it back.
pub async fn aliveness(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
) -> ApiResult {
    caller.require_vhost(&state.broker, &vhost)?;
    super::vhost_exists(&state, &vhost)?;
    let v = state.broker.vhost(&vhost).ok_or(ApiError::NotFound)?;
    let failed = |why: String| ApiError::Unavailable(json!({"status": "failed", "reason": why}));
    let d = QueueDeclare {
        name: "aliveness-test".into(),
        ..Default::default()
    };
    let (q, _, _) = v.declare_queue(&d, 0).map_err(|e| failed(e.message))?;
    let e = v.exchange("").map_err(|e| failed(e.message))?;
    let raw = BasicProperties::default().to_bytes();
    let view = PropertiesView::parse(&raw).unwrap_or_default();
    let msg = Message::new(
        ShortStr::from(""),
        ShortStr::from("aliveness-test"),
        raw,
        &view,
        bytes::Bytes::from_static(b"test_message"),
    );
    v.publish(&e, Arc::new(msg), &mut Vec::new());
    match q.get(true) {
        Some((env, _)) if &env.msg.body[..] == b"test_message" => ok(&json!({"status": "ok"})),
        _ => Err(failed("aliveness test message not received".into())),
    }
}
