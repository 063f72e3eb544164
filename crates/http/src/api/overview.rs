//! The overview, the node, the cluster name and the small informational endpoints
//! (`whoami`, `extensions`, `auth`, `feature-flags`).

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use serde_json::{json, Value};

use super::{body_json, no_content, ok, require_keys, Auth};
use crate::error::{ApiError, ApiResult};
use crate::rates::{self, sum};
use crate::render;
use crate::{sys, State};

fn exchange_types() -> Value {
    json!([
        {"name": "direct", "description": "AMQP direct exchange, as per the AMQP specification", "enabled": true},
        {"name": "fanout", "description": "AMQP fanout exchange, as per the AMQP specification", "enabled": true},
        {"name": "headers", "description": "AMQP headers exchange, as per the AMQP specification", "enabled": true},
        {"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification", "enabled": true},
    ])
}

fn listeners(state: &State) -> Value {
    let node = &state.broker.config.node_name;
    Value::Array(
        state
            .cfg
            .listeners
            .iter()
            .map(|l| {
                json!({
                    "node": node,
                    "protocol": l.protocol,
                    "ip_address": l.ip,
                    "port": l.port,
                    "socket_opts": {},
                })
            })
            .collect(),
    )
}

fn contexts(state: &State) -> Value {
    let node = &state.broker.config.node_name;
    Value::Array(
        state
            .cfg
            .listeners
            .iter()
            .filter(|l| l.protocol.starts_with("http"))
            .map(|l| {
                let description = if l.protocol == "http" {
                    "RabbitMQ Management"
                } else {
                    "RabbitMQ Prometheus"
                };
                json!({
                    "ssl_opts": [],
                    "node": node,
                    "description": description,
                    "path": "/",
                    "port": l.port.to_string(),
                })
            })
            .collect(),
    )
}

fn churn(state: &State) -> Value {
    let c = state.broker.registry().churn();
    let mut m = serde_json::Map::new();
    for (k, v) in [
        ("channel_closed", c.channels_closed),
        ("channel_created", c.channels_opened),
        ("connection_closed", c.connections_closed),
        ("connection_created", c.connections_opened),
        ("queue_created", c.queues_created),
        ("queue_declared", c.queues_declared),
        ("queue_deleted", c.queues_deleted),
    ] {
        m.insert(k.into(), json!(v));
        m.insert(format!("{k}_details"), render::details(0.0));
    }
    Value::Object(m)
}

pub async fn overview(Auth(caller): Auth, AxState(state): AxState<State>) -> ApiResult {
    let b = &state.broker;
    let totals = rates::vhost_totals(b, |_, _, _| {});
    let visible: std::collections::HashMap<_, _> = totals
        .into_iter()
        .filter(|(v, _)| caller.sees_vhost(b, v))
        .collect();
    let t = sum(&visible);
    let r = state.rates.global();
    let reg = b.registry();
    let conns: Vec<_> = reg
        .connections()
        .into_iter()
        .filter(|c| caller.sees_user(&c.info.user))
        .collect();
    let channels: usize = conns.iter().map(|c| c.channel_count()).sum();
    let cfg = &state.cfg;
    ok(&json!({
        "management_version": cfg.rabbitmq_version,
        "rates_mode": "basic",
        "sample_retention_policies": {
            "global": [600, 3600, 28800, 86400],
            "basic": [600, 3600],
            "detailed": [600],
        },
        "exchange_types": exchange_types(),
        "product_version": cfg.product_version,
        "product_name": cfg.product_name,
        "rabbitmq_version": cfg.rabbitmq_version,
        "cluster_name": b.cluster_name(),
        "erlang_version": "n/a",
        "erlang_full_version": format!("n/a ({} {} is written in Rust)", cfg.product_name, cfg.product_version),
        "release_series_support_status": "supported",
        "disable_stats": false,
        "enable_queue_totals": false,
        "message_stats": render::overview_message_stats(&t, &r),
        "churn_rates": churn(&state),
        "queue_totals": render::queue_totals(&t, &r),
        "object_totals": {
            "channels": channels,
            "connections": conns.len(),
            "consumers": t.consumers,
            "exchanges": t.exchanges,
            "queues": t.queues,
        },
        "statistics_db_event_queue": 0,
        "node": b.config.node_name,
        "listeners": listeners(&state),
        "contexts": contexts(&state),
    }))
}

pub async fn cluster_name(Auth(_): Auth, AxState(state): AxState<State>) -> ApiResult {
    ok(&json!({"name": state.broker.cluster_name()}))
}

pub async fn put_cluster_name(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let v = body_json(&body, "not_json")?;
    require_keys(&v, &["name"])?;
    let Some(name) = v["name"].as_str() else {
        return Err(ApiError::bad("name must be a string"));
    };
    state.broker.set_cluster_name(name);
    no_content()
}

fn node_json(state: &State) -> Value {
    let b = &state.broker;
    let c = b.registry().churn();
    let uptime = state.started.elapsed().as_millis() as u64;
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("name", json!(b.config.node_name));
    put("type", json!("disc"));
    put("running", json!(true));
    put("os_pid", json!(std::process::id().to_string()));
    put("partitions", json!([]));
    put("fd_total", json!(sys::fd_total()));
    put("sockets_total", json!(sys::fd_total()));
    put("mem_limit", json!(sys::memory_limit(b)));
    put("mem_alarm", json!(b.alarms.memory()));
    put("disk_free_limit", json!(state.cfg.disk_free_limit));
    put("disk_free_alarm", json!(b.alarms.disk()));
    put("proc_total", json!(1_048_576));
    put("rates_mode", json!("basic"));
    put("uptime", json!(uptime));
    put("run_queue", json!(0));
    put("processors", json!(sys::processors()));
    put("exchange_types", exchange_types());
    put(
        "auth_mechanisms",
        json!([
            {"name": "PLAIN", "description": "SASL PLAIN authentication mechanism", "enabled": true},
            {"name": "AMQPLAIN", "description": "QPid AMQPLAIN mechanism", "enabled": true},
        ]),
    );
    put("applications", json!([]));
    put("contexts", contexts(state));
    put("log_files", json!(["<stderr>"]));
    put("db_dir", json!(b.config.data_dir.display().to_string()));
    put("config_files", json!([]));
    put("net_ticktime", json!(60));
    put(
        "enabled_plugins",
        json!(["rabbitmq_management", "rabbitmq_prometheus"]),
    );
    put("mem_calculation_strategy", json!("rss"));
    put("cluster_links", json!([]));
    for (k, v) in [
        ("mem_used", sys::rss_bytes()),
        ("fd_used", sys::fd_used()),
        ("sockets_used", b.registry().connection_count() as u64),
        ("proc_used", sys::threads()),
        ("disk_free", sys::disk_free(&b.config.data_dir)),
        ("connection_created", c.connections_opened),
        ("connection_closed", c.connections_closed),
        ("channel_created", c.channels_opened),
        ("channel_closed", c.channels_closed),
        ("queue_declared", c.queues_declared),
        ("queue_created", c.queues_created),
        ("queue_deleted", c.queues_deleted),
        ("gc_num", 0),
        ("gc_bytes_reclaimed", 0),
        ("context_switches", 0),
        ("io_read_count", 0),
        ("io_read_bytes", 0),
        ("io_write_count", 0),
        ("io_write_bytes", 0),
        ("io_sync_count", 0),
        ("io_seek_count", 0),
        ("io_reopen_count", 0),
        ("mnesia_ram_tx_count", 0),
        ("mnesia_disk_tx_count", 0),
        ("msg_store_read_count", 0),
        ("msg_store_write_count", 0),
        ("queue_index_write_count", 0),
        ("queue_index_read_count", 0),
    ] {
        put(k, json!(v));
        put(&format!("{k}_details"), render::details(0.0));
    }
    for k in [
        "io_read_avg_time",
        "io_write_avg_time",
        "io_sync_avg_time",
        "io_seek_avg_time",
    ] {
        put(k, json!(0.0));
        put(&format!("{k}_details"), render::details(0.0));
    }
    Value::Object(m)
}

pub async fn nodes(Auth(caller): Auth, AxState(state): AxState<State>) -> ApiResult {
    caller.require_monitor()?;
    ok(&json!([node_json(&state)]))
}

pub async fn node(
    Auth(caller): Auth,
    AxState(state): AxState<State>,
    Path(name): Path<String>,
) -> ApiResult {
    caller.require_monitor()?;
    if name != state.broker.config.node_name {
        return Err(ApiError::NotFound);
    }
    ok(&node_json(&state))
}

pub async fn extensions(Auth(_): Auth) -> ApiResult {
    ok(&json!([]))
}

pub async fn whoami(Auth(caller): Auth) -> ApiResult {
    ok(&json!({"name": caller.name, "tags": caller.tags}))
}

/// The login page's question; RabbitMQ answers it without credentials.
pub async fn auth() -> ApiResult {
    ok(&json!({
        "oauth_enabled": false,
        "enable_uaa": false,
        "uaa_client_id": "",
        "uaa_location": "",
    }))
}

pub async fn feature_flags(Auth(_): Auth) -> ApiResult {
    let flags = [
        (
            "classic_mirrored_queue_version",
            "Support setting version for classic mirrored queues",
        ),
        (
            "drop_unroutable_metric",
            "Count unroutable publishes to be dropped in stats",
        ),
        (
            "empty_basic_get_metric",
            "Count AMQP `basic.get` on empty queues in stats",
        ),
        (
            "implicit_default_bindings",
            "Default bindings are now implicit, instead of being stored in the database",
        ),
        ("maintenance_mode_status", "Maintenance mode status"),
        ("user_limits", "A feature flag to enable user limits"),
        (
            "virtual_host_metadata",
            "Virtual host metadata (description, tags, etc)",
        ),
    ];
    ok(&Value::Array(
        flags
            .iter()
            .map(|(name, desc)| {
                json!({
                    "name": name,
                    "desc": desc,
                    "doc_url": "",
                    "state": "enabled",
                    "stability": "stable",
                    "provided_by": "rabbit",
                })
            })
            .collect(),
    ))
}
