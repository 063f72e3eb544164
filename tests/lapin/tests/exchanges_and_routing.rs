//! Exchanges and routing through lapin: direct, fanout, topic, headers, exchange-to-exchange
//! bindings, the default exchange, passive declares.
//!
//! Exchanges are declared auto-delete, so they vanish with the exclusive queues bound to
//! them when a test's connection closes.

#[macro_use]
mod common;

use common::*;
use lapin::{
    options::{
        ExchangeBindOptions, ExchangeDeclareOptions, ExchangeUnbindOptions, QueueBindOptions,
    },
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, ExchangeKind,
};

async fn declare_x(ch: &Channel, name: &str, kind: ExchangeKind) {
    w!(ch.exchange_declare(
        name,
        kind,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect("exchange.declare");
}

async fn bind(ch: &Channel, q: &str, x: &str, key: &str, args: FieldTable) {
    w!(ch.queue_bind(q, x, key, QueueBindOptions::default(), args)).expect("queue.bind");
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn bs(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| b(s)).collect()
}

#[tokio::test]
async fn direct_exchange_routes_by_exact_key() {
    let (conn, ch) = conn_ch().await;
    let x = uniq("direct");
    declare_x(&ch, &x, ExchangeKind::Direct).await;
    let (q1, q2, q3) = (
        temp_queue(&ch).await,
        temp_queue(&ch).await,
        temp_queue(&ch).await,
    );
    bind(&ch, &q1, &x, "orange", FieldTable::default()).await;
    bind(&ch, &q2, &x, "black", FieldTable::default()).await;
    bind(&ch, &q2, &x, "green", FieldTable::default()).await;
    bind(&ch, &q3, &x, "orange", FieldTable::default()).await;
    for key in ["orange", "black", "green", "blue", "Orange", "orange.x", ""] {
        publish(&ch, &x, key, key.as_bytes()).await;
    }
    assert_eq!(drain(&ch, &q1).await, bs(&["orange"]));
    assert_eq!(drain(&ch, &q2).await, bs(&["black", "green"]));
    assert_eq!(drain(&ch, &q3).await, bs(&["orange"]));
    // Unbinding one key leaves the queue's other bindings in place.
    w!(ch.queue_unbind(&q2, &x, "black", FieldTable::default())).expect("queue.unbind");
    publish(&ch, &x, "black", b"black-2").await;
    publish(&ch, &x, "green", b"green-2").await;
    assert_eq!(drain(&ch, &q2).await, bs(&["green-2"]));
    close(conn).await;
}

#[tokio::test]
async fn same_queue_bound_twice_gets_one_copy() {
    let (conn, ch) = conn_ch().await;
    let x = uniq("direct2");
    declare_x(&ch, &x, ExchangeKind::Direct).await;
    let q = temp_queue(&ch).await;
    bind(&ch, &q, &x, "k", FieldTable::default()).await;
    bind(&ch, &q, &x, "k", FieldTable::default()).await; // idempotent
    publish(&ch, &x, "k", b"once").await;
    assert_eq!(drain(&ch, &q).await, bs(&["once"]));
    close(conn).await;
}

#[tokio::test]
async fn fanout_exchange_copies_to_every_queue_ignoring_key() {
    let (conn, ch) = conn_ch().await;
    let x = uniq("fanout");
    declare_x(&ch, &x, ExchangeKind::Fanout).await;
    let mut qs = Vec::new();
    for i in 0..3 {
        let q = temp_queue(&ch).await;
        bind(&ch, &q, &x, &format!("ignored-{i}"), FieldTable::default()).await;
        qs.push(q);
    }
    publish(&ch, &x, "", b"m1").await;
    publish(&ch, &x, "whatever.key", b"m2").await;
    for q in &qs {
        assert_eq!(drain(&ch, q).await, bs(&["m1", "m2"]), "queue {q}");
    }
    close(conn).await;
}

#[tokio::test]
async fn topic_exchange_star_and_hash() {
    let (conn, ch) = conn_ch().await;
    let x = uniq("topic");
    declare_x(&ch, &x, ExchangeKind::Topic).await;
    let q1 = temp_queue(&ch).await; // *.orange.*
    let q2 = temp_queue(&ch).await; // *.*.rabbit and lazy.#
    let q3 = temp_queue(&ch).await; // #
    let q4 = temp_queue(&ch).await; // a.#.z
    let q5 = temp_queue(&ch).await; // exact: no wildcards
    bind(&ch, &q1, &x, "*.orange.*", FieldTable::default()).await;
    bind(&ch, &q2, &x, "*.*.rabbit", FieldTable::default()).await;
    bind(&ch, &q2, &x, "lazy.#", FieldTable::default()).await;
    bind(&ch, &q3, &x, "#", FieldTable::default()).await;
    bind(&ch, &q4, &x, "a.#.z", FieldTable::default()).await;
    bind(&ch, &q5, &x, "quick.brown.fox", FieldTable::default()).await;
    let keys = [
        "quick.orange.rabbit",      // q1 q2
        "lazy.orange.elephant",     // q1 q2
        "quick.orange.fox",         // q1
        "lazy.brown.fox",           // q2
        "lazy.pink.rabbit",         // q2 (matches both of its bindings: one copy)
        "quick.brown.fox",          // q5
        "orange",                   // none but #
        "quick.orange.male.rabbit", // none but #
        "lazy.orange.male.rabbit",  // q2
        "lazy",                     // q2 (# matches zero words)
        "a.z",                      // q4 (# matches zero words in the middle)
        "a.b.c.z",                  // q4
        "a.b.c",                    // none but #
        "",                         // none but #
    ];
    for k in keys {
        publish(&ch, &x, k, k.as_bytes()).await;
    }
    assert_eq!(
        drain(&ch, &q1).await,
        bs(&[
            "quick.orange.rabbit",
            "lazy.orange.elephant",
            "quick.orange.fox"
        ])
    );
    assert_eq!(
        drain(&ch, &q2).await,
        bs(&[
            "quick.orange.rabbit",
            "lazy.orange.elephant",
            "lazy.brown.fox",
            "lazy.pink.rabbit",
            "lazy.orange.male.rabbit",
            "lazy",
        ])
    );
    assert_eq!(drain(&ch, &q3).await, bs(&keys));
    assert_eq!(drain(&ch, &q4).await, bs(&["a.z", "a.b.c.z"]));
    assert_eq!(drain(&ch, &q5).await, bs(&["quick.brown.fox"]));
    close(conn).await;
}

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn ls(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

#[tokio::test]
async fn headers_exchange_all_and_any() {
    let (conn, ch) = conn_ch().await;
    let x = uniq("headers");
    declare_x(&ch, &x, ExchangeKind::Headers).await;
    let q_all = temp_queue(&ch).await;
    let q_any = temp_queue(&ch).await;
    let q_default = temp_queue(&ch).await; // no x-match: defaults to all
    bind(
        &ch,
        &q_all,
        &x,
        "",
        table(&[
            ("x-match", ls("all")),
            ("format", ls("pdf")),
            ("type", ls("report")),
        ]),
    )
    .await;
    bind(
        &ch,
        &q_any,
        &x,
        "",
        table(&[
            ("x-match", ls("any")),
            ("format", ls("pdf")),
            ("type", ls("report")),
        ]),
    )
    .await;
    bind(
        &ch,
        &q_default,
        &x,
        "",
        table(&[("format", ls("pdf")), ("type", ls("report"))]),
    )
    .await;
    let msgs: Vec<(&str, FieldTable)> = vec![
        (
            "both",
            table(&[("format", ls("pdf")), ("type", ls("report"))]),
        ),
        (
            "both-plus-extra",
            table(&[
                ("format", ls("pdf")),
                ("type", ls("report")),
                ("extra", ls("x")),
            ]),
        ),
        ("format-only", table(&[("format", ls("pdf"))])),
        ("type-only", table(&[("type", ls("report"))])),
        (
            "wrong-values",
            table(&[("format", ls("zip")), ("type", ls("log"))]),
        ),
        (
            "one-wrong",
            table(&[("format", ls("pdf")), ("type", ls("log"))]),
        ),
        ("none", FieldTable::default()),
    ];
    for (body, headers) in &msgs {
        publish_with(
            &ch,
            &x,
            "key-is-ignored",
            body.as_bytes(),
            BasicProperties::default().with_headers(headers.clone()),
        )
        .await;
    }
    // A message with no headers property at all.
    publish(&ch, &x, "", b"no-property").await;
    assert_eq!(drain(&ch, &q_all).await, bs(&["both", "both-plus-extra"]));
    assert_eq!(
        drain(&ch, &q_any).await,
        bs(&[
            "both",
            "both-plus-extra",
            "format-only",
            "type-only",
            "one-wrong"
        ])
    );
    assert_eq!(
        drain(&ch, &q_default).await,
        bs(&["both", "both-plus-extra"])
    );
    close(conn).await;
}

#[tokio::test]
async fn headers_exchange_matches_typed_values() {
    let (conn, ch) = conn_ch().await;
    let x = uniq("headers-typed");
    declare_x(&ch, &x, ExchangeKind::Headers).await;
    let q = temp_queue(&ch).await;
    bind(
        &ch,
        &q,
        &x,
        "",
        table(&[("x-match", ls("all")), ("n", AMQPValue::LongInt(42))]),
    )
    .await;
    publish_with(
        &ch,
        &x,
        "",
        b"int-42",
        BasicProperties::default().with_headers(table(&[("n", AMQPValue::LongInt(42))])),
    )
    .await;
    publish_with(
        &ch,
        &x,
        "",
        b"int-43",
        BasicProperties::default().with_headers(table(&[("n", AMQPValue::LongInt(43))])),
    )
    .await;
    publish_with(
        &ch,
        &x,
        "",
        b"string-42",
        BasicProperties::default().with_headers(table(&[("n", ls("42"))])),
    )
    .await;
    assert_eq!(drain(&ch, &q).await, bs(&["int-42"]));
    close(conn).await;
}

#[tokio::test]
async fn exchange_to_exchange_binding() {
    let (conn, ch) = conn_ch().await;
    let src = uniq("e2e-src");
    let dst = uniq("e2e-dst");
    w!(ch.exchange_declare(
        &src,
        ExchangeKind::Topic,
        Default::default(),
        FieldTable::default()
    ))
    .expect("declare src");
    declare_x(&ch, &dst, ExchangeKind::Fanout).await;
    let q = temp_queue(&ch).await;
    let direct_q = temp_queue(&ch).await;
    bind(&ch, &q, &dst, "", FieldTable::default()).await;
    bind(&ch, &direct_q, &src, "a.b", FieldTable::default()).await;
    w!(ch.exchange_bind(
        &dst,
        &src,
        "a.#",
        ExchangeBindOptions::default(),
        FieldTable::default()
    ))
    .expect("exchange.bind");
    publish(&ch, &src, "a.b", b"1").await;
    publish(&ch, &src, "b.a", b"2").await;
    publish(&ch, &dst, "anything", b"3").await;
    assert_eq!(drain(&ch, &q).await, bs(&["1", "3"]));
    assert_eq!(drain(&ch, &direct_q).await, bs(&["1"]));

    // Deliveries through an exchange-to-exchange binding name the exchange published to.
    publish(&ch, &src, "a.c", b"4").await;
    let m = w!(ch.basic_get(&q, Default::default()))
        .expect("get")
        .expect("a message");
    assert_eq!(m.delivery.exchange.as_str(), src);
    assert_eq!(m.delivery.routing_key.as_str(), "a.c");
    w!(m.delivery.ack(Default::default())).expect("ack");

    w!(ch.exchange_unbind(
        &dst,
        &src,
        "a.#",
        ExchangeUnbindOptions::default(),
        FieldTable::default()
    ))
    .expect("exchange.unbind");
    publish(&ch, &src, "a.b", b"5").await;
    assert_eq!(drain(&ch, &q).await, Vec::<Vec<u8>>::new());
    assert_eq!(drain(&ch, &direct_q).await, bs(&["5"]));
    w!(ch.exchange_delete(&src, Default::default())).expect("exchange.delete");
    close(conn).await;
}

#[tokio::test]
async fn default_exchange_routes_to_queue_by_name() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("default-x");
    named_queue(&ch, &q).await;
    publish(&ch, "", &q, b"hello").await;
    publish(&ch, "", &uniq("no-such-queue"), b"dropped").await;
    let m = w!(ch.basic_get(&q, Default::default()))
        .expect("get")
        .expect("a message");
    assert_eq!(m.delivery.data, b"hello");
    assert_eq!(m.delivery.exchange.as_str(), "");
    assert_eq!(m.delivery.routing_key.as_str(), q);
    assert!(!m.delivery.redelivered);
    assert_eq!(m.message_count, 0);
    w!(m.delivery.ack(Default::default())).expect("ack");
    close(conn).await;
}

#[tokio::test]
async fn binding_to_default_exchange_refused_403() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    assert_amqp_err(
        w!(ch.queue_bind(
            &q,
            "",
            "k",
            QueueBindOptions::default(),
            FieldTable::default()
        )),
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
    close(conn).await;
}

#[tokio::test]
async fn passive_declare_existing_exchanges() {
    let (conn, ch) = conn_ch().await;
    let x = uniq("passive");
    declare_x(&ch, &x, ExchangeKind::Topic).await;
    let q = temp_queue(&ch).await;
    bind(&ch, &q, &x, "#", FieldTable::default()).await; // keeps the auto-delete exchange
    for (name, kind) in [
        (x.as_str(), ExchangeKind::Topic),
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        w!(ch.exchange_declare(
            name,
            kind,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default()
        ))
        .unwrap_or_else(|e| panic!("passive declare of {name}: {e:?}"));
    }
    close(conn).await;
}

#[tokio::test]
async fn passive_declare_missing_exchange_404() {
    let (conn, ch) = conn_ch().await;
    let x = uniq("missing");
    assert_amqp_err(
        w!(ch.exchange_declare(
            &x,
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default()
        )),
        404,
        &not_found_exchange(&x),
    );
    assert!(!ch.status().connected());
    // Only the channel is gone.
    assert!(conn.status().connected());
    let ch2 = channel(&conn).await;
    temp_queue(&ch2).await;
    close(conn).await;
}

#[tokio::test]
async fn bind_to_missing_exchange_404() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    let x = uniq("missing");
    assert_amqp_err(
        w!(ch.queue_bind(
            &q,
            &x,
            "k",
            QueueBindOptions::default(),
            FieldTable::default()
        )),
        404,
        &not_found_exchange(&x),
    );
    close(conn).await;
}

#[tokio::test]
async fn redeclare_with_other_type_406() {
    let (conn, ch) = conn_ch().await;
    let x = uniq("retype");
    declare_x(&ch, &x, ExchangeKind::Direct).await;
    let q = temp_queue(&ch).await;
    bind(&ch, &q, &x, "k", FieldTable::default()).await;
    let ch2 = channel(&conn).await;
    assert_amqp_err(
        w!(ch2.exchange_declare(
            &x,
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default()
        )),
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': \
             received 'fanout' but current is 'direct'"
        ),
    );
    close(conn).await;
}
