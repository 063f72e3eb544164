//! Prometheus metrics in the text exposition format, with RabbitMQ's metric names
//! (`rabbitmq_queue_messages_ready`, `rabbitmq_connections`, ...) so that RabbitMQ's
//! Grafana dashboards and alerts work unchanged.
//!
//! `/metrics` aggregates, as RabbitMQ does by default: one unlabelled sample per metric.
//! `/metrics/per-object` labels queue metrics with `vhost` and `queue`, and connection
//! and channel metrics with `channel` (RabbitMQ puts an Erlang process id there; Warren
//! the connection's or the channel's name).

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State as AxState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::rates::{self, sum, vhost_totals};
use crate::render::{channel_name, consumer_index};
use crate::{sys, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/metrics", get(aggregated))
        .route("/metrics/per-object", get(per_object))
}

/// A text-format writer that declares each family once.
struct Out {
    s: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.s, "# TYPE {name} {kind}\n# HELP {name} {help}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.s.push_str(name);
        if !labels.is_empty() {
            self.s.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.s.push(',');
                }
                let _ = write!(self.s, "{k}=\"{}\"", escape(val));
            }
            self.s.push('}');
        }
        let _ = writeln!(self.s, " {v}");
    }

    /// A family with one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], v);
    }
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Metrics every endpoint has: identity, build, resources, churn.
fn common(state: &State, o: &mut Out) {
    let b = &state.broker;
    let cfg = &state.cfg;
    o.family(
        "rabbitmq_build_info",
        "untyped",
        "RabbitMQ & Erlang/OTP version info",
    );
    o.sample(
        "rabbitmq_build_info",
        &[
            ("rabbitmq_version", &cfg.rabbitmq_version),
            ("prometheus_plugin_version", &cfg.rabbitmq_version),
            ("prometheus_client_version", "n/a"),
            ("erlang_version", "n/a"),
            ("product_name", &cfg.product_name),
            ("product_version", &cfg.product_version),
        ],
        1,
    );
    o.family(
        "rabbitmq_identity_info",
        "untyped",
        "RabbitMQ node & cluster identity info",
    );
    let cluster = b.cluster_name();
    o.sample(
        "rabbitmq_identity_info",
        &[
            ("rabbitmq_node", &b.config.node_name),
            ("rabbitmq_cluster", &cluster),
            ("rabbitmq_cluster_permanent_id", &cluster),
        ],
        1,
    );
    let c = b.registry().churn();
    o.one(
        "rabbitmq_connections_opened_total",
        "counter",
        "Total number of connections opened",
        c.connections_opened,
    );
    o.one(
        "rabbitmq_connections_closed_total",
        "counter",
        "Total number of connections closed or terminated",
        c.connections_closed,
    );
    o.one(
        "rabbitmq_channels_opened_total",
        "counter",
        "Total number of channels opened",
        c.channels_opened,
    );
    o.one(
        "rabbitmq_channels_closed_total",
        "counter",
        "Total number of channels closed",
        c.channels_closed,
    );
    o.one(
        "rabbitmq_queues_declared_total",
        "counter",
        "Total number of queues declared",
        c.queues_declared,
    );
    o.one(
        "rabbitmq_queues_created_total",
        "counter",
        "Total number of queues created",
        c.queues_created,
    );
    o.one(
        "rabbitmq_queues_deleted_total",
        "counter",
        "Total number of queues deleted",
        c.queues_deleted,
    );
    o.one(
        "rabbitmq_process_open_fds",
        "gauge",
        "Open file descriptors",
        sys::fd_used(),
    );
    o.one(
        "rabbitmq_process_max_fds",
        "gauge",
        "Open file descriptors limit",
        sys::fd_total(),
    );
    o.one(
        "rabbitmq_process_resident_memory_bytes",
        "gauge",
        "Memory used in bytes",
        sys::rss_bytes(),
    );
    o.one(
        "rabbitmq_resident_memory_limit_bytes",
        "gauge",
        "Memory high watermark in bytes",
        sys::memory_limit(b),
    );
    o.one(
        "rabbitmq_disk_space_available_bytes",
        "gauge",
        "Disk space available in bytes",
        sys::disk_free(&b.config.data_dir),
    );
    o.one(
        "rabbitmq_disk_space_available_limit_bytes",
        "gauge",
        "Free disk space low watermark in bytes",
        cfg.disk_free_limit,
    );
    o.one(
        "rabbitmq_alarms_free_disk_space_watermark",
        "gauge",
        "is 1 if free disk space watermark alarm is in effect",
        u8::from(b.alarms.disk()),
    );
    o.one(
        "rabbitmq_alarms_memory_used_watermark",
        "gauge",
        "is 1 if VM memory watermark alarm is in effect",
        u8::from(b.alarms.memory()),
    );
    o.one(
        "rabbitmq_alarms_file_descriptor_limit",
        "gauge",
        "is 1 if file descriptor limit alarm is in effect",
        0,
    );
    o.one(
        "process_cpu_seconds_total",
        "counter",
        "Process CPU seconds total",
        format!("{:.2}", sys::cpu_seconds()),
    );
    o.one(
        "rabbitmq_erlang_uptime_seconds",
        "gauge",
        "Node uptime",
        state.started.elapsed().as_secs(),
    );
}

/// (metric, type, help, figure index) of the queue metrics.
const QUEUE_METRICS: &[(&str, &str, &str, QueueFigure)] = &[
    (
        "rabbitmq_queue_messages_ready",
        "gauge",
        "Messages ready to be delivered to consumers",
        QueueFigure::Ready,
    ),
    (
        "rabbitmq_queue_messages_unacked",
        "gauge",
        "Messages delivered to consumers but not yet acknowledged",
        QueueFigure::Unacked,
    ),
    (
        "rabbitmq_queue_messages",
        "gauge",
        "Sum of ready and unacknowledged messages - total queue depth",
        QueueFigure::Messages,
    ),
    (
        "rabbitmq_queue_messages_ready_bytes",
        "gauge",
        "Size in bytes of ready messages",
        QueueFigure::ReadyBytes,
    ),
    (
        "rabbitmq_queue_messages_bytes",
        "gauge",
        "Size in bytes of ready and unacknowledged messages",
        QueueFigure::ReadyBytes,
    ),
    (
        "rabbitmq_queue_consumers",
        "gauge",
        "Consumers on a queue",
        QueueFigure::Consumers,
    ),
    (
        "rabbitmq_queue_messages_published_total",
        "counter",
        "Total number of messages published to queues",
        QueueFigure::Published,
    ),
];

#[derive(Clone, Copy)]
enum QueueFigure {
    Ready,
    Unacked,
    Messages,
    ReadyBytes,
    Consumers,
    Published,
}

fn figure(f: QueueFigure, s: &warren_core::queue::QueueStats, fig: &[u64; rates::QN]) -> u64 {
    match f {
        QueueFigure::Ready => s.ready,
        QueueFigure::Unacked => s.unacked,
        QueueFigure::Messages => s.ready + s.unacked,
        QueueFigure::ReadyBytes => s.ready_bytes,
        QueueFigure::Consumers => s.consumers,
        QueueFigure::Published => fig[rates::PUBLISH],
    }
}

/// Broker-wide message counters (RabbitMQ's `rabbitmq_global_*`).
fn global(o: &mut Out, t: &rates::Totals) {
    let v = &t.v;
    let m = [
        ("rabbitmq_global_messages_received_total", "Total number of messages received from publishers", v[rates::PUBLISH]),
        ("rabbitmq_global_messages_delivered_total", "Total number of messages delivered to consumers", v[rates::DELIVER] + v[rates::DELIVER_NO_ACK] + v[rates::GET] + v[rates::GET_NO_ACK]),
        ("rabbitmq_global_messages_delivered_consume_manual_ack_total", "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", v[rates::DELIVER]),
        ("rabbitmq_global_messages_delivered_consume_auto_ack_total", "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment", v[rates::DELIVER_NO_ACK]),
        ("rabbitmq_global_messages_delivered_get_manual_ack_total", "Total number of messages delivered to consumers using basic.get with manual acknowledgment", v[rates::GET]),
        ("rabbitmq_global_messages_delivered_get_auto_ack_total", "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", v[rates::GET_NO_ACK]),
        ("rabbitmq_global_messages_redelivered_total", "Total number of messages redelivered to consumers", v[rates::REDELIVER]),
        ("rabbitmq_global_messages_acknowledged_total", "Total number of message acknowledgements received from consumers", v[rates::ACK]),
    ];
    for (name, help, value) in m {
        o.one(name, "counter", help, value);
    }
    o.one(
        "rabbitmq_global_consumers",
        "gauge",
        "Current number of consumers",
        t.consumers,
    );
}

pub async fn aggregated(AxState(state): AxState<State>) -> Response {
    let s = state.clone();
    let body = tokio::task::spawn_blocking(move || render_aggregated(&s))
        .await
        .unwrap_or_default();
    text(body)
}

fn render_aggregated(state: &State) -> String {
    let mut o = Out { s: String::new() };
    common(state, &mut o);
    let b = &state.broker;
    let mut queue_sums = [0u64; 7];
    let totals = vhost_totals(b, |_, s, f| {
        for (i, (_, _, _, fig)) in QUEUE_METRICS.iter().enumerate() {
            queue_sums[i] += figure(*fig, s, f);
        }
    });
    let t = sum(&totals);
    o.one(
        "rabbitmq_connections",
        "gauge",
        "Connections currently open",
        t.connections,
    );
    o.one(
        "rabbitmq_channels",
        "gauge",
        "Channels currently open",
        t.channels,
    );
    o.one(
        "rabbitmq_consumers",
        "gauge",
        "Consumers currently connected",
        t.consumers,
    );
    o.one("rabbitmq_queues", "gauge", "Queues available", t.queues);
    for (i, (name, kind, help, _)) in QUEUE_METRICS.iter().enumerate() {
        o.one(name, kind, help, queue_sums[i]);
    }
    global(&mut o, &t);
    let reg = b.registry();
    let conns = reg.connections();
    let (mut rb, mut sb, mut rp, mut sp, mut pend) = (0, 0, 0, 0, 0);
    let (mut published, mut unacked, mut chans) = (0, 0, 0);
    let (mut confirmed, mut returned, mut dropped) = (0, 0, 0);
    for c in &conns {
        let s = c.socket_stats();
        rb += s.recv_oct;
        sb += s.send_oct;
        rp += s.recv_cnt;
        sp += s.send_cnt;
        pend += s.send_pend;
        for ch in c.channels() {
            let n = ch.counts();
            published += n.published;
            confirmed += n.confirmed;
            returned += n.returned_unroutable;
            dropped += n.dropped_unroutable;
            unacked += ch.unacked();
            chans += 1;
        }
    }
    o.one(
        "rabbitmq_connection_incoming_bytes_total",
        "counter",
        "Total number of bytes received on a connection",
        rb,
    );
    o.one(
        "rabbitmq_connection_outgoing_bytes_total",
        "counter",
        "Total number of bytes sent on a connection",
        sb,
    );
    o.one(
        "rabbitmq_connection_incoming_packets_total",
        "counter",
        "Total number of packets received on a connection",
        rp,
    );
    o.one(
        "rabbitmq_connection_outgoing_packets_total",
        "counter",
        "Total number of packets sent on a connection",
        sp,
    );
    o.one(
        "rabbitmq_connection_pending_packets",
        "gauge",
        "Number of packets waiting to be sent on a connection",
        pend,
    );
    o.one(
        "rabbitmq_connection_channels",
        "gauge",
        "Channels on a connection",
        chans,
    );
    o.one(
        "rabbitmq_channel_messages_published_total",
        "counter",
        "Total number of messages published into an exchange on a channel",
        published,
    );
    o.one(
        "rabbitmq_channel_messages_confirmed_total",
        "counter",
        "Total number of messages published into an exchange and confirmed on the channel",
        confirmed,
    );
    o.one(
        "rabbitmq_channel_messages_unroutable_returned_total",
        "counter",
        "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
        returned,
    );
    o.one(
        "rabbitmq_channel_messages_unroutable_dropped_total",
        "counter",
        "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
        dropped,
    );
    o.one(
        "rabbitmq_channel_get_empty_total",
        "counter",
        "Total number of times basic.get operations fetched no message",
        t.v[rates::GET_EMPTY],
    );
    o.one(
        "rabbitmq_channel_messages_unacked",
        "gauge",
        "Delivered but not yet acknowledged messages",
        unacked,
    );
    o.one(
        "rabbitmq_channel_consumers",
        "gauge",
        "Consumers on a channel",
        t.consumers,
    );
    o.s
}

/// Stream queues' logs and readers (Warren's own families: RabbitMQ exports stream
/// figures only for its stream protocol).
fn stream_metrics(o: &mut Out, streams: &[(String, String, warren_core::stream::StreamInfo)]) {
    type Get = fn(&warren_core::stream::StreamInfo) -> u64;
    let per_stream: [(&str, &str, Get); 4] = [
        (
            "warren_stream_segments",
            "Segment files a stream keeps",
            |i| i.segments as u64,
        ),
        (
            "warren_stream_size_bytes",
            "Bytes of messages a stream keeps",
            |i| i.bytes,
        ),
        (
            "warren_stream_first_offset",
            "Offset of the oldest message a stream keeps",
            |i| i.first_offset,
        ),
        (
            "warren_stream_next_offset",
            "Offset the next message appended to a stream gets",
            |i| i.next_offset,
        ),
    ];
    for (name, help, get) in per_stream {
        o.family(name, "gauge", help);
        for (vhost, queue, i) in streams {
            o.sample(name, &[("vhost", vhost), ("queue", queue)], get(i));
        }
    }
    let name = "warren_stream_consumer_offset_lag";
    o.family(
        name,
        "gauge",
        "Messages between a stream consumer's position and the stream's end",
    );
    for (vhost, queue, i) in streams {
        for (tag, _, _, next) in &i.readers {
            o.sample(
                name,
                &[("vhost", vhost), ("queue", queue), ("consumer_tag", tag)],
                i.next_offset.saturating_sub(*next),
            );
        }
    }
}

pub async fn per_object(AxState(state): AxState<State>) -> Response {
    let s = state.clone();
    let body = tokio::task::spawn_blocking(move || render_per_object(&s))
        .await
        .unwrap_or_default();
    text(body)
}

fn render_per_object(state: &State) -> String {
    let mut o = Out { s: String::new() };
    common(state, &mut o);
    let b = &state.broker;
    let mut rows: Vec<(
        String,
        String,
        warren_core::queue::QueueStats,
        [u64; rates::QN],
    )> = Vec::new();
    let mut streams = Vec::new();
    let totals = vhost_totals(b, |q, s, f| {
        if let Some(i) = q.stream_info() {
            streams.push((q.vhost.clone(), q.name.clone(), i));
        }
        rows.push((q.vhost.clone(), q.name.clone(), *s, *f))
    });
    let t = sum(&totals);
    o.one(
        "rabbitmq_connections",
        "gauge",
        "Connections currently open",
        t.connections,
    );
    o.one(
        "rabbitmq_channels",
        "gauge",
        "Channels currently open",
        t.channels,
    );
    o.one(
        "rabbitmq_consumers",
        "gauge",
        "Consumers currently connected",
        t.consumers,
    );
    o.one("rabbitmq_queues", "gauge", "Queues available", t.queues);
    for (name, kind, help, fig) in QUEUE_METRICS {
        o.family(name, kind, help);
        for (vhost, queue, s, f) in &rows {
            o.sample(
                name,
                &[("vhost", vhost), ("queue", queue)],
                figure(*fig, s, f),
            );
        }
    }
    stream_metrics(&mut o, &streams);
    global(&mut o, &t);
    let conns = b.registry().connections();
    type Getter = fn(&warren_core::registry::SocketStats) -> u64;
    let conn_metrics: [(&str, &str, &str, Getter); 5] = [
        (
            "rabbitmq_connection_incoming_bytes_total",
            "counter",
            "Total number of bytes received on a connection",
            |s| s.recv_oct,
        ),
        (
            "rabbitmq_connection_outgoing_bytes_total",
            "counter",
            "Total number of bytes sent on a connection",
            |s| s.send_oct,
        ),
        (
            "rabbitmq_connection_incoming_packets_total",
            "counter",
            "Total number of packets received on a connection",
            |s| s.recv_cnt,
        ),
        (
            "rabbitmq_connection_outgoing_packets_total",
            "counter",
            "Total number of packets sent on a connection",
            |s| s.send_cnt,
        ),
        (
            "rabbitmq_connection_pending_packets",
            "gauge",
            "Number of packets waiting to be sent on a connection",
            |s| s.send_pend,
        ),
    ];
    let stats: Vec<_> = conns.iter().map(|c| c.socket_stats()).collect();
    for (name, kind, help, get) in conn_metrics {
        o.family(name, kind, help);
        for (c, s) in conns.iter().zip(&stats) {
            o.sample(name, &[("channel", &c.name)], get(s));
        }
    }
    o.family(
        "rabbitmq_connection_channels",
        "gauge",
        "Channels on a connection",
    );
    for c in &conns {
        o.sample(
            "rabbitmq_connection_channels",
            &[("channel", &c.name)],
            c.channel_count(),
        );
    }
    let idx = consumer_index(state);
    let mut chans = Vec::new();
    for c in &conns {
        for ch in c.channels() {
            chans.push((c.clone(), ch));
        }
    }
    o.family(
        "rabbitmq_channel_consumers",
        "gauge",
        "Consumers on a channel",
    );
    for (c, ch) in &chans {
        let n = idx.get(&(c.id(), ch.number)).map_or(0, Vec::len);
        o.sample(
            "rabbitmq_channel_consumers",
            &[("channel", &channel_name(c, ch.number))],
            n,
        );
    }
    o.family(
        "rabbitmq_channel_messages_unacked",
        "gauge",
        "Delivered but not yet acknowledged messages",
    );
    for (c, ch) in &chans {
        o.sample(
            "rabbitmq_channel_messages_unacked",
            &[("channel", &channel_name(c, ch.number))],
            ch.unacked(),
        );
    }
    o.family(
        "rabbitmq_channel_prefetch",
        "gauge",
        "Total limit of unacknowledged messages for all consumers on a channel",
    );
    for (c, ch) in &chans {
        o.sample(
            "rabbitmq_channel_prefetch",
            &[("channel", &channel_name(c, ch.number))],
            ch.global_prefetch(),
        );
    }
    o.family(
        "rabbitmq_consumer_prefetch",
        "gauge",
        "Limit of unacknowledged messages for each consumer",
    );
    for (c, ch) in &chans {
        o.sample(
            "rabbitmq_consumer_prefetch",
            &[("channel", &channel_name(c, ch.number))],
            ch.prefetch.load(Relaxed),
        );
    }
    o.family(
        "rabbitmq_channel_messages_published_total",
        "counter",
        "Total number of messages published into an exchange on a channel",
    );
    for (c, ch) in &chans {
        o.sample(
            "rabbitmq_channel_messages_published_total",
            &[
                ("channel", &channel_name(c, ch.number)),
                ("vhost", &c.info.vhost),
            ],
            ch.published.load(Relaxed),
        );
    }
    o.s
}
