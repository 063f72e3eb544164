//! The JSON of each kind of object, with RabbitMQ's field names and types.
//!
//! Fields that only mean something inside Erlang (garbage collection, reductions,
//! process memory) are present with neutral values so that clients which deserialize
//! RabbitMQ's shapes strictly keep working.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use warren_core::exchange::{Binding, Destination};
use warren_core::policy::{pick, Policy};
use warren_core::queue::QueueStats;
use warren_core::registry::{ChannelEntry, ConnectionEntry};
use warren_core::{ConnectionId, Consumer, Exchange, Queue};
use warren_store::json::table_to_json;

use crate::rates::{self, Totals, VN};
use crate::Ctx;

/// `{"rate": r}`
pub fn details(rate: f64) -> Value {
    json!({ "rate": rate })
}

fn gc() -> Value {
    json!({
        "fullsweep_after": 65535,
        "max_heap_size": 0,
        "min_bin_vheap_size": 46422,
        "min_heap_size": 233,
        "minor_gcs": 0
    })
}

/// Puts `name` and `name_details` into `m`.
fn with_rate(m: &mut Map<String, Value>, name: &str, v: u64, rate: f64) {
    m.insert(name.to_string(), json!(v));
    m.insert(format!("{name}_details"), details(rate));
}

/// RabbitMQ's `message_stats` of a queue, vhost or the whole broker.
pub fn message_stats(v: &[u64], r: &[f64]) -> Value {
    let mut m = Map::new();
    let deliver_get =
        v[rates::DELIVER] + v[rates::DELIVER_NO_ACK] + v[rates::GET] + v[rates::GET_NO_ACK];
    let deliver_get_rate =
        r[rates::DELIVER] + r[rates::DELIVER_NO_ACK] + r[rates::GET] + r[rates::GET_NO_ACK];
    with_rate(&mut m, "ack", v[rates::ACK], r[rates::ACK]);
    with_rate(&mut m, "deliver", v[rates::DELIVER], r[rates::DELIVER]);
    with_rate(&mut m, "deliver_get", deliver_get, deliver_get_rate);
    with_rate(
        &mut m,
        "deliver_no_ack",
        v[rates::DELIVER_NO_ACK],
        r[rates::DELIVER_NO_ACK],
    );
    with_rate(&mut m, "get", v[rates::GET], r[rates::GET]);
    with_rate(
        &mut m,
        "get_empty",
        v[rates::GET_EMPTY],
        r[rates::GET_EMPTY],
    );
    with_rate(
        &mut m,
        "get_no_ack",
        v[rates::GET_NO_ACK],
        r[rates::GET_NO_ACK],
    );
    with_rate(&mut m, "publish", v[rates::PUBLISH], r[rates::PUBLISH]);
    with_rate(
        &mut m,
        "redeliver",
        v[rates::REDELIVER],
        r[rates::REDELIVER],
    );
    Value::Object(m)
}

/// Vhost-level message stats add what only channels count.
fn vhost_message_stats(v: &[u64; VN], r: &[f64; VN]) -> Value {
    let mut ms = message_stats(v, r);
    if let Value::Object(m) = &mut ms {
        with_rate(m, "confirm", v[rates::CONFIRM], r[rates::CONFIRM]);
        with_rate(
            m,
            "drop_unroutable",
            v[rates::DROP_UNROUTABLE],
            r[rates::DROP_UNROUTABLE],
        );
        with_rate(
            m,
            "return_unroutable",
            v[rates::RETURN_UNROUTABLE],
            r[rates::RETURN_UNROUTABLE],
        );
    }
    ms
}

/// The policy that applies to a queue or exchange, from its vhost's policies.
pub fn queue_policy<'a>(policies: &'a [Policy], q: &Queue) -> Option<&'a Policy> {
    pick(policies, |p| p.applies_to_queue(&q.name, queue_type(q)))
}

fn queue_type(q: &Queue) -> &str {
    q.arguments
        .get("x-queue-type")
        .and_then(|v| v.as_str())
        .unwrap_or("classic")
}

/// A queue as `GET /api/queues` lists it.
pub fn queue(ctx: &Ctx, q: &Arc<Queue>, s: &QueueStats, policies: &[Policy]) -> Value {
    let f = rates::queue_figures(q, s);
    let r = ctx.rates.queue(q);
    let policy = queue_policy(policies, q);
    let consumers = if s.consumers > 0 {
        q.consumers()
    } else {
        Vec::new()
    };
    let exclusive_tag = consumers
        .iter()
        .find(|c| c.exclusive)
        .map(|c| Value::String(c.tag.to_string()))
        .unwrap_or(Value::Null);
    let node = ctx.broker.config.node_name.as_str();
    let mut m = Map::new();
    m.insert("arguments".into(), table_to_json(&q.arguments));
    m.insert("auto_delete".into(), json!(q.auto_delete));
    m.insert(
        "backing_queue_status".into(),
        json!({
            "avg_ack_egress_rate": r[rates::ACK],
            "avg_ack_ingress_rate": r[rates::DELIVER],
            "avg_egress_rate": r[rates::DELIVER] + r[rates::DELIVER_NO_ACK] + r[rates::GET] + r[rates::GET_NO_ACK],
            "avg_ingress_rate": r[rates::PUBLISH],
            "delta": ["delta", "undefined", 0, 0, "undefined"],
            "len": s.ready,
            "mode": "default",
            "next_deliver_seq_id": 0,
            "next_seq_id": f[rates::PUBLISH],
            "q1": 0, "q2": 0, "q3": 0, "q4": s.ready,
            "target_ram_count": "infinity",
            "version": 2
        }),
    );
    let utilisation = if s.consumers > 0 {
        json!(1.0)
    } else {
        json!(0)
    };
    m.insert("consumer_capacity".into(), utilisation.clone());
    m.insert("consumer_utilisation".into(), utilisation);
    m.insert("consumers".into(), json!(s.consumers));
    m.insert("durable".into(), json!(q.durable));
    m.insert(
        "effective_policy_definition".into(),
        policy.map_or_else(|| json!({}), |p| Value::Object(p.definition.clone())),
    );
    m.insert("exclusive".into(), json!(q.is_exclusive()));
    m.insert("exclusive_consumer_tag".into(), exclusive_tag);
    m.insert("garbage_collection".into(), gc());
    m.insert("head_message_timestamp".into(), Value::Null);
    m.insert("memory".into(), json!(s.ready_bytes));
    m.insert("message_bytes".into(), json!(s.ready_bytes));
    m.insert("message_bytes_paged_out".into(), json!(0));
    m.insert(
        "message_bytes_persistent".into(),
        json!(if q.durable { s.ready_bytes } else { 0 }),
    );
    m.insert("message_bytes_ram".into(), json!(s.ready_bytes));
    m.insert("message_bytes_ready".into(), json!(s.ready_bytes));
    m.insert("message_bytes_unacknowledged".into(), json!(0));
    m.insert("message_stats".into(), message_stats(&f, &r));
    with_rate(&mut m, "messages", f[rates::MESSAGES], r[rates::MESSAGES]);
    m.insert("messages_paged_out".into(), json!(0));
    m.insert(
        "messages_persistent".into(),
        json!(if q.durable { f[rates::MESSAGES] } else { 0 }),
    );
    m.insert("messages_ram".into(), json!(f[rates::MESSAGES]));
    with_rate(&mut m, "messages_ready", s.ready, r[rates::READY]);
    m.insert("messages_ready_ram".into(), json!(s.ready));
    with_rate(
        &mut m,
        "messages_unacknowledged",
        s.unacked,
        r[rates::UNACKED],
    );
    m.insert("messages_unacknowledged_ram".into(), json!(s.unacked));
    m.insert("name".into(), json!(q.name));
    m.insert("node".into(), json!(node));
    m.insert("operator_policy".into(), Value::Null);
    m.insert(
        "policy".into(),
        policy.map_or(Value::Null, |p| json!(p.name)),
    );
    m.insert("recoverable_slaves".into(), Value::Null);
    m.insert("reductions".into(), json!(0));
    m.insert("reductions_details".into(), details(0.0));
    m.insert("single_active_consumer_tag".into(), Value::Null);
    m.insert("state".into(), json!("running"));
    m.insert("type".into(), json!(queue_type(q)));
    m.insert("vhost".into(), json!(q.vhost));
    if let Some(info) = q.stream_info() {
        m.insert("stream".into(), stream_json(&info));
        // A single-node "cluster": the stream's only member is this node.
        m.insert("leader".into(), json!(node));
        m.insert("members".into(), json!([node]));
        m.insert("online".into(), json!([node]));
    }
    if let Some(owner) = q.exclusive_owner {
        if let Some(c) = ctx.broker.registry().connection(owner) {
            m.insert("owner_pid_details".into(), conn_details(&c));
        }
    }
    Value::Object(m)
}

/// A stream's log and its consumers' positions (Warren's own field: RabbitMQ shows
/// these only for its stream protocol). `last_offset` is null while the log is empty;
/// a consumer's `offset` is the next one it will be sent, `offset_lag` how far behind
/// the end it is.
pub fn stream_json(i: &warren_core::stream::StreamInfo) -> Value {
    let last = (i.next_offset > i.first_offset).then(|| i.next_offset - 1);
    let consumers: Vec<Value> = i
        .readers
        .iter()
        .map(|(tag, _, channel, next)| {
            json!({
                "consumer_tag": tag,
                "channel": channel,
                "offset": next,
                "offset_lag": i.next_offset.saturating_sub(*next),
            })
        })
        .collect();
    json!({
        "first_offset": i.first_offset,
        "last_offset": last,
        "next_offset": i.next_offset,
        "segments": i.segments,
        "size_bytes": i.bytes,
        "consumers": consumers,
    })
}

/// `{name, peer_host, peer_port}` of a connection.
pub fn conn_details(c: &ConnectionEntry) -> Value {
    json!({
        "name": c.name,
        "peer_host": c.info.peer.ip().to_string(),
        "peer_port": c.info.peer.port(),
    })
}

/// A queue as `GET /api/queues/{vhost}/{name}` shows it: the list item plus its
/// consumers.
pub fn queue_detail(ctx: &Ctx, q: &Arc<Queue>, policies: &[Policy]) -> Value {
    let s = q.stats();
    let mut v = queue(ctx, q, &s, policies);
    let consumers: Vec<Value> = q.consumers().iter().map(|c| consumer(ctx, c, q)).collect();
    if let Value::Object(m) = &mut v {
        m.insert("consumer_details".into(), Value::Array(consumers));
        m.insert("deliveries".into(), json!([]));
        m.insert("incoming".into(), json!([]));
    }
    v
}

/// An exchange as the API lists it.
pub fn exchange(e: &Exchange, policies: &[Policy]) -> Value {
    let policy = pick(policies, |p| p.applies_to_exchange(&e.name));
    let mut m = Map::new();
    m.insert("arguments".into(), table_to_json(&e.arguments));
    m.insert("auto_delete".into(), json!(e.auto_delete));
    m.insert("durable".into(), json!(e.durable));
    m.insert("internal".into(), json!(e.internal));
    m.insert("name".into(), json!(e.name));
    m.insert("type".into(), json!(e.type_name()));
    // As the delayed-message plugin reports it.
    if let Some(n) = e.delayed_pending() {
        m.insert("messages_delayed".into(), json!(n));
    }
    m.insert(
        "user_who_performed_action".into(),
        json!(if e.name.is_empty() || e.name.starts_with("amq.") {
            "rmq-internal"
        } else {
            "guest"
        }),
    );
    m.insert("vhost".into(), json!(e.vhost));
    if let Some(p) = policy {
        m.insert("policy".into(), json!(p.name));
    }
    Value::Object(m)
}

/// RabbitMQ's `quote_plus`: unreserved characters stay, space becomes `+`, the rest
/// `%XX`.
fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A binding's `properties_key`: its routing key quoted as RabbitMQ quotes it, plus
/// `~` and a hash of its arguments when it has any. (RabbitMQ hashes the Erlang term
/// with `phash2`; Warren hashes the arguments' JSON with FNV-1a, so keys of bindings
/// with arguments differ from RabbitMQ's but are just as stable; keys of bindings
/// without arguments are the same.)
pub fn properties_key(routing_key: &str, args: &Value) -> String {
    let empty = args.as_object().is_none_or(|m| m.is_empty());
    if routing_key.is_empty() && empty {
        return "~".into();
    }
    let key = quote_plus(routing_key).replace('~', "%7E");
    if empty {
        return key;
    }
    let text = args.to_string();
    let mut h: u32 = 0x811c9dc5;
    for b in text.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    use base64::Engine;
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.to_be_bytes());
    format!("{key}~{enc}")
}

fn binding_json(
    vhost: &str,
    source: &str,
    dest: &str,
    dest_type: &str,
    key: &str,
    args: Value,
) -> Value {
    let pk = properties_key(key, &args);
    json!({
        "source": source,
        "vhost": vhost,
        "destination": dest,
        "destination_type": dest_type,
        "routing_key": key,
        "arguments": args,
        "properties_key": pk,
    })
}

pub fn binding(e: &Exchange, b: &Binding) -> Value {
    binding_json(
        &e.vhost,
        &e.name,
        b.destination.name(),
        b.destination.kind(),
        &b.routing_key,
        table_to_json(&b.arguments),
    )
}

/// The binding every queue has from the default exchange (RabbitMQ lists it).
pub fn default_binding(q: &Queue) -> Value {
    binding_json(&q.vhost, "", &q.name, "queue", &q.name, json!({}))
}

/// Whether a binding leads to this queue or exchange.
pub fn leads_to(b: &Binding, kind: &str, name: &str) -> bool {
    match &b.destination {
        Destination::Queue(q) => kind == "queue" && q.name == name,
        Destination::Exchange(x) => kind == "exchange" && x.name == name,
    }
}

/// A connection as the API lists it.
pub fn connection(ctx: &Ctx, c: &ConnectionEntry) -> Value {
    let s = c.socket_stats();
    let r = ctx.rates.connection(c.id());
    let i = &c.info;
    let user_name = i
        .client_properties
        .get("connection_name")
        .cloned()
        .unwrap_or(Value::Null);
    let mut m = Map::new();
    m.insert("auth_mechanism".into(), json!(i.auth_mechanism));
    m.insert("channel_max".into(), json!(i.channel_max));
    m.insert("channels".into(), json!(c.channel_count()));
    m.insert("client_properties".into(), i.client_properties.clone());
    m.insert("connected_at".into(), json!(c.connected_at));
    m.insert("frame_max".into(), json!(i.frame_max));
    m.insert("garbage_collection".into(), gc());
    m.insert("host".into(), json!(i.local.ip().to_string()));
    m.insert("name".into(), json!(c.name));
    m.insert("node".into(), json!(ctx.broker.config.node_name));
    for k in [
        "peer_cert_issuer",
        "peer_cert_subject",
        "peer_cert_validity",
    ] {
        m.insert(k.into(), Value::Null);
    }
    m.insert("peer_host".into(), json!(i.peer.ip().to_string()));
    m.insert("peer_port".into(), json!(i.peer.port()));
    m.insert("port".into(), json!(i.local.port()));
    m.insert("protocol".into(), json!(i.protocol));
    m.insert("recv_cnt".into(), json!(s.recv_cnt));
    with_rate(&mut m, "recv_oct", s.recv_oct, r[0]);
    m.insert("reductions".into(), json!(0));
    m.insert("reductions_details".into(), details(0.0));
    m.insert("send_cnt".into(), json!(s.send_cnt));
    with_rate(&mut m, "send_oct", s.send_oct, r[1]);
    m.insert("send_pend".into(), json!(s.send_pend));
    m.insert("ssl".into(), json!(i.tls.is_some()));
    let tls = i.tls.as_ref();
    m.insert("ssl_cipher".into(), json!(tls.map(|t| &t.cipher)));
    m.insert("ssl_hash".into(), json!(tls.map(|t| &t.hash)));
    m.insert(
        "ssl_key_exchange".into(),
        json!(tls.map(|t| &t.key_exchange)),
    );
    m.insert("ssl_protocol".into(), json!(tls.map(|t| &t.protocol)));
    m.insert(
        "state".into(),
        json!(if ctx.broker.alarms.any() {
            "blocked"
        } else {
            "running"
        }),
    );
    m.insert("timeout".into(), json!(i.heartbeat));
    m.insert("type".into(), json!("network"));
    m.insert("user".into(), json!(i.user));
    if !user_name.is_null() {
        m.insert("user_provided_name".into(), user_name);
    }
    m.insert("user_who_performed_action".into(), json!(i.user));
    m.insert("vhost".into(), json!(i.vhost));
    Value::Object(m)
}

/// Consumers by (connection, channel): one scan of every queue.
pub type ConsumerIndex = HashMap<(ConnectionId, u16), Vec<(Arc<Consumer>, Arc<Queue>)>>;

pub fn consumer_index(ctx: &Ctx) -> ConsumerIndex {
    let mut idx: ConsumerIndex = HashMap::new();
    for v in ctx.broker.vhosts() {
        for q in v.queues() {
            for c in q.consumers() {
                idx.entry((c.connection, c.channel))
                    .or_default()
                    .push((c, q.clone()));
            }
        }
    }
    idx
}

/// A channel's name: its connection's and its number.
pub fn channel_name(c: &ConnectionEntry, number: u16) -> String {
    format!("{} ({number})", c.name)
}

/// A channel as the API lists it.
pub fn channel(ctx: &Ctx, c: &ConnectionEntry, ch: &ChannelEntry, consumers: usize) -> Value {
    let f = rates::channel_figures(&ch.counts());
    let r = ctx.rates.channel(c.id(), ch.number);
    let mut stats = Map::new();
    with_rate(&mut stats, "confirm", f[1], r[1]);
    with_rate(&mut stats, "drop_unroutable", f[3], r[3]);
    with_rate(&mut stats, "publish", f[0], r[0]);
    with_rate(&mut stats, "return_unroutable", f[2], r[2]);
    json!({
        "acks_uncommitted": 0,
        "confirm": ch.confirm.load(Relaxed),
        "connection_details": conn_details(c),
        "consumer_count": consumers,
        "garbage_collection": gc(),
        "global_prefetch_count": ch.global_prefetch(),
        "message_stats": Value::Object(stats),
        "messages_unacknowledged": ch.unacked(),
        "messages_uncommitted": 0,
        "messages_unconfirmed": 0,
        "name": channel_name(c, ch.number),
        "node": ctx.broker.config.node_name,
        "number": ch.number,
        "pending_raft_commands": 0,
        "prefetch_count": ch.prefetch.load(Relaxed),
        "reductions": 0,
        "reductions_details": details(0.0),
        "state": "running",
        "transactional": ch.transactional.load(Relaxed),
        "user": c.info.user,
        "user_who_performed_action": c.info.user,
        "vhost": c.info.vhost,
    })
}

/// A consumer as `GET /api/consumers` lists it.
pub fn consumer(ctx: &Ctx, c: &Consumer, q: &Queue) -> Value {
    let conn = ctx.broker.registry().connection(c.connection);
    let channel_details = match &conn {
        Some(conn) => json!({
            "connection_name": conn.name,
            "name": channel_name(conn, c.channel),
            "node": ctx.broker.config.node_name,
            "number": c.channel,
            "peer_host": conn.info.peer.ip().to_string(),
            "peer_port": conn.info.peer.port(),
            "user": conn.info.user,
        }),
        None => json!({}),
    };
    json!({
        "arguments": table_to_json(&c.arguments),
        "ack_required": !c.no_ack,
        "active": true,
        "activity_status": "up",
        "channel_details": channel_details,
        "consumer_tag": c.tag.to_string(),
        "exclusive": c.exclusive,
        "prefetch_count": c.credit.limit(),
        "queue": {"name": q.name, "vhost": q.vhost},
    })
}

/// A vhost as `GET /api/vhosts` lists it, with its totals.
pub fn vhost(ctx: &Ctx, def: &warren_store::definitions::VhostDef, t: Option<&Totals>) -> Value {
    let description = def.description.clone().unwrap_or_default();
    let mut m = Map::new();
    m.insert(
        "cluster_state".into(),
        json!({ ctx.broker.config.node_name.clone(): "running" }),
    );
    m.insert("default_queue_type".into(), json!("undefined"));
    m.insert("description".into(), json!(description));
    m.insert(
        "metadata".into(),
        json!({"description": description, "tags": def.tags}),
    );
    m.insert("name".into(), json!(def.name));
    m.insert("tags".into(), json!(def.tags));
    m.insert("tracing".into(), json!(false));
    if let Some(t) = t {
        let r = ctx.rates.vhost(&def.name);
        m.insert("message_stats".into(), vhost_message_stats(&t.v, &r));
        with_rate(&mut m, "messages", t.v[rates::MESSAGES], r[rates::MESSAGES]);
        with_rate(&mut m, "messages_ready", t.v[rates::READY], r[rates::READY]);
        with_rate(
            &mut m,
            "messages_unacknowledged",
            t.v[rates::UNACKED],
            r[rates::UNACKED],
        );
        with_rate(&mut m, "recv_oct", t.v[rates::RECV_OCT], r[rates::RECV_OCT]);
        with_rate(&mut m, "send_oct", t.v[rates::SEND_OCT], r[rates::SEND_OCT]);
    }
    Value::Object(m)
}

/// Whole-broker message stats (the overview's).
pub fn overview_message_stats(t: &Totals, r: &[f64; VN]) -> Value {
    vhost_message_stats(&t.v, r)
}

/// Queue totals of the overview.
pub fn queue_totals(t: &Totals, r: &[f64; VN]) -> Value {
    let mut m = Map::new();
    with_rate(&mut m, "messages", t.v[rates::MESSAGES], r[rates::MESSAGES]);
    with_rate(&mut m, "messages_ready", t.v[rates::READY], r[rates::READY]);
    with_rate(
        &mut m,
        "messages_unacknowledged",
        t.v[rates::UNACKED],
        r[rates::UNACKED],
    );
    Value::Object(m)
}

/// A user as the API shows it.
pub fn user(u: &warren_store::definitions::UserDef) -> Value {
    json!({
        "name": u.name,
        "password_hash": u.password_hash,
        "hashing_algorithm": u.hashing_algorithm,
        "tags": u.tags,
        "limits": if u.limits.is_object() { u.limits.clone() } else { json!({}) },
    })
}

pub fn permission(p: &warren_store::definitions::PermissionDef) -> Value {
    json!({
        "user": p.user,
        "vhost": p.vhost,
        "configure": p.configure,
        "write": p.write,
        "read": p.read,
    })
}

pub fn topic_permission(t: &warren_core::management::TopicPermission) -> Value {
    json!({
        "user": t.user,
        "vhost": t.vhost,
        "exchange": t.exchange,
        "write": t.write,
        "read": t.read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_keys_match_rabbitmq_without_arguments() {
        // Taken from RabbitMQ 3.10's responses.
        assert_eq!(properties_key("", &json!({})), "~");
        assert_eq!(properties_key("b.*", &json!({})), "b.%2A");
        assert_eq!(properties_key("zz.q", &json!({})), "zz.q");
        assert_eq!(properties_key("a b~c", &json!({})), "a+b%7Ec");
        let k = properties_key("a.#", &json!({"k": "v"}));
        assert!(
            k.starts_with("a.%23~") && k.len() == "a.%23~".len() + 6,
            "{k}"
        );
    }
}
