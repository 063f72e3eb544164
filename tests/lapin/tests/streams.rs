//! Stream queues through lapin: declare, publish with confirms, consume from `first`, a
//! numeric offset and `next` with the `x-stream-offset` header on each delivery, acks as
//! credit, two consumers at different offsets, and the refusal of auto-ack.

#[macro_use]
mod common;

use common::*;
use lapin::{
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
    Channel,
};

async fn declare_stream(ch: &Channel, name: &str) {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("stream")),
    );
    w!(ch.queue_declare(
        name,
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args
    ))
    .expect("declare stream");
}

async fn reader(ch: &Channel, q: &str, tag: &str, offset: AMQPValue) -> lapin::Consumer {
    w!(ch.basic_qos(50, BasicQosOptions::default())).expect("basic.qos");
    let mut args = FieldTable::default();
    args.insert(ShortString::from("x-stream-offset"), offset);
    w!(ch.basic_consume(q, tag, BasicConsumeOptions::default(), args)).expect("basic.consume")
}

fn offset_of(d: &lapin::message::Delivery) -> i64 {
    let h = d.properties.headers().as_ref().expect("headers");
    match h.inner().get("x-stream-offset") {
        Some(AMQPValue::LongLongInt(n)) => *n,
        other => panic!("x-stream-offset header: {other:?}"),
    }
}

async fn take(c: &mut lapin::Consumer, n: usize) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let d = next(c).await;
        out.push((offset_of(&d), d.data.clone()));
        w!(d.ack(BasicAckOptions::default())).expect("ack");
    }
    out
}

#[tokio::test]
async fn offsets_replay_and_independent_consumers() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("stream");
    declare_stream(&ch, &q).await;
    for i in 0..20 {
        publish_confirmed(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let ch1 = channel(&conn).await;
    let mut all = reader(&ch1, &q, "all", AMQPValue::LongString("first".into())).await;
    let ch2 = channel(&conn).await;
    let mut from15 = reader(&ch2, &q, "from15", AMQPValue::LongLongInt(15)).await;
    let ch3 = channel(&conn).await;
    let mut new_only = reader(&ch3, &q, "next", AMQPValue::LongString("next".into())).await;

    let got = take(&mut all, 20).await;
    let want: Vec<(i64, Vec<u8>)> = (0..20).map(|i| (i, format!("m{i}").into_bytes())).collect();
    assert_eq!(got, want);
    let got = take(&mut from15, 5).await;
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        (15..20).collect::<Vec<_>>()
    );

    publish_confirmed(&ch, "", &q, b"live").await;
    for c in [&mut all, &mut from15, &mut new_only] {
        assert_eq!(take(c, 1).await, vec![(20, b"live".to_vec())]);
    }
    w!(ch.queue_delete(&q, QueueDeleteOptions::default())).expect("delete");
    close(conn).await;
}

#[tokio::test]
async fn auto_ack_is_refused_with_540() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("stream");
    declare_stream(&ch, &q).await;
    let errors = connection_error(&conn);
    let ch2 = channel(&conn).await;
    w!(ch2.basic_qos(10, BasicQosOptions::default())).expect("basic.qos");
    let res = w!(ch2.basic_consume(
        &q,
        "auto",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        FieldTable::default()
    ));
    assert!(res.is_err(), "auto-ack consume on a stream was accepted");
    let err = w!(errors).expect("connection error reported");
    assert_eq!(
        code_text(&err),
        (
            540,
            format!(
                "NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues queue '{q}' in vhost '/'"
            )
        )
    );
    // The stream itself is unaffected.
    let (conn2, ch) = conn_ch().await;
    w!(ch.queue_delete(&q, QueueDeleteOptions::default())).expect("delete");
    close(conn2).await;
}
