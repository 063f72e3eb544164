//! `/api/definitions`: export (`GET`) and import (`POST`) of RabbitMQ's definitions
//! document, for the whole broker or one vhost. A document exported by RabbitMQ imports
//! into Warren, and Warren's back into RabbitMQ. Administrators only.

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use serde_json::Value;

use super::{no_content, ok, Auth, Params};
use crate::error::{ApiError, ApiResult};
use crate::State;

/// `?download=name` asks for an attachment, as the web UI's "Download" does.
fn with_download(mut r: axum::response::Response, p: &Params) -> axum::response::Response {
    if let Some(name) = p.0.get("download") {
        let v = format!("attachment; filename=\"{}\"", name.replace('"', ""));
        if let Ok(h) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, h);
        }
    }
    r
}

pub async fn export(Auth(caller): Auth, AxState(state): AxState<State>, p: Params) -> ApiResult {
    caller.require_admin()?;
    let s = state.clone();
    let defs = tokio::task::spawn_blocking(move || {
        let cfg = &s.cfg;
        s.broker.export_definitions(
            &cfg.rabbitmq_version,
            (&cfg.product_name, &cfg.product_version),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    // Serialised from the struct, so the keys keep RabbitMQ's order.
    let bytes = serde_json::to_vec(&defs).map_err(|e| ApiError::Internal(e.to_string()))?;
    let r = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response();
    Ok(with_download(r, &p))
}

pub async fn export_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    p: Params,
) -> ApiResult {
    caller.require_admin()?;
    super::vhost_exists(&state, &vhost)?;
    let s = state.clone();
    let v = tokio::task::spawn_blocking(move || {
        s.broker
            .export_vhost_definitions(&vhost, &s.cfg.rabbitmq_version)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(with_download(ok(&v)?, &p))
}

async fn run_import(state: State, body: Bytes, vhost: Option<String>) -> ApiResult {
    let doc: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad("failed_to_parse_json"))?;
    if !doc.is_object() {
        return Err(ApiError::bad("failed_to_parse_json"));
    }
    let r = tokio::task::spawn_blocking(move || {
        state.broker.import_definitions(&doc, vhost.as_deref())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    match r {
        Ok(()) => no_content(),
        // RabbitMQ writes this one as an Erlang tuple: ["no_such_vhost", name].
        Err(reason) => match reason.strip_prefix("no_such_vhost: ") {
            Some(v) => Err(ApiError::BadRequest(serde_json::json!([
                "no_such_vhost",
                v
            ]))),
            None => Err(ApiError::bad(reason)),
        },
    }
}

pub async fn import(Auth(caller): Auth, AxState(state): AxState<State>, body: Bytes) -> ApiResult {
    caller.require_admin()?;
    run_import(state, body, None).await
}

pub async fn import_vhost(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(vhost): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    super::vhost_exists(&state, &vhost)?;
    run_import(state, body, Some(vhost)).await
}
