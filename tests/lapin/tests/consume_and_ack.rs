//! Consuming and acknowledging through lapin: round-robin dispatch, prefetch, ack / multiple
//! ack / nack / reject, basic.get, consumer tags, cancellation by the client and by the
//! broker (queue deleted), message properties.

#[macro_use]
mod common;

use common::*;
use lapin::{
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions,
        BasicNackOptions, BasicQosOptions, BasicRejectOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldArray, FieldTable, ShortString},
    BasicProperties, Channel, ConsumerState,
};

async fn consume(ch: &Channel, q: &str, tag: &str, no_ack: bool) -> lapin::Consumer {
    w!(ch.basic_consume(
        q,
        tag,
        BasicConsumeOptions {
            no_ack,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect("basic.consume")
}

fn num(d: &lapin::message::Delivery) -> u32 {
    String::from_utf8(d.data.clone()).unwrap().parse().unwrap()
}

#[tokio::test]
async fn round_robin_across_consumers() {
    let (conn, pch) = conn_ch().await;
    let q = temp_queue(&pch).await;
    let mut consumers = Vec::new();
    for k in 0..3 {
        let ch = channel(&conn).await;
        consumers.push((consume(&ch, &q, &format!("rr-{k}"), true).await, ch));
    }
    for i in 0..12 {
        publish(&pch, "", &q, i.to_string().as_bytes()).await;
    }
    for (k, (consumer, _ch)) in consumers.iter_mut().enumerate() {
        let mut got = Vec::new();
        for _ in 0..4 {
            let d = next(consumer).await;
            assert!(!d.redelivered);
            got.push(num(&d));
        }
        let expected: Vec<u32> = (k as u32..12).step_by(3).collect();
        assert_eq!(got, expected, "consumer {k}");
    }
    close(conn).await;
}

#[tokio::test]
async fn prefetch_limits_unacked_deliveries() {
    let (conn, pch) = conn_ch().await;
    let q = temp_queue(&pch).await;
    for i in 0..5 {
        publish_confirmed(&pch, "", &q, i.to_string().as_bytes()).await;
    }
    let ch = channel(&conn).await;
    w!(ch.basic_qos(2, BasicQosOptions::default())).expect("basic.qos");
    let mut c = consume(&ch, &q, "prefetch", false).await;
    let d0 = next(&mut c).await;
    let d1 = next(&mut c).await;
    assert_eq!(
        (num(&d0), d0.delivery_tag, num(&d1), d1.delivery_tag),
        (0, 1, 1, 2)
    );
    // Two unacked: the other three stay in the queue.
    assert_eq!(message_count(&pch, &q).await, 3);
    w!(d0.ack(BasicAckOptions::default())).expect("ack");
    let d2 = next(&mut c).await;
    assert_eq!((num(&d2), d2.delivery_tag), (2, 3));
    assert_eq!(message_count(&pch, &q).await, 2);
    // A multiple ack frees both slots at once.
    w!(d2.ack(BasicAckOptions { multiple: true })).expect("ack multiple");
    let d3 = next(&mut c).await;
    let d4 = next(&mut c).await;
    assert_eq!((num(&d3), num(&d4)), (3, 4));
    assert_eq!(message_count(&pch, &q).await, 0);
    w!(d4.ack(BasicAckOptions { multiple: true })).expect("ack multiple");
    close(conn).await;
}

#[tokio::test]
async fn manual_ack_removes_only_acked_messages() {
    let (conn, pch) = conn_ch().await;
    let q = temp_queue(&pch).await;
    publish_confirmed(&pch, "", &q, b"0").await;
    publish_confirmed(&pch, "", &q, b"1").await;
    let ch = channel(&conn).await;
    let mut c = consume(&ch, &q, "manual", false).await;
    let d0 = next(&mut c).await;
    let d1 = next(&mut c).await;
    assert_eq!((num(&d0), num(&d1)), (0, 1));
    w!(d0.ack(BasicAckOptions::default())).expect("ack");
    // Closing the channel requeues the unacked message only.
    w!(ch.close(200, "OK")).expect("close channel");
    let m = w!(pch.basic_get(&q, BasicGetOptions { no_ack: true }))
        .expect("get")
        .expect("msg");
    assert_eq!(m.delivery.data, b"1");
    assert!(m.delivery.redelivered);
    assert_eq!(m.message_count, 0);
    assert!(w!(pch.basic_get(&q, BasicGetOptions { no_ack: true }))
        .expect("get")
        .is_none());
    close(conn).await;
}

#[tokio::test]
async fn multiple_ack_acks_everything_up_to_the_tag() {
    let (conn, pch) = conn_ch().await;
    let q = temp_queue(&pch).await;
    for i in 0..5 {
        publish_confirmed(&pch, "", &q, i.to_string().as_bytes()).await;
    }
    let ch = channel(&conn).await;
    let mut tags = Vec::new();
    for i in 0..5 {
        let m = w!(ch.basic_get(&q, BasicGetOptions { no_ack: false }))
            .expect("get")
            .expect("msg");
        assert_eq!(num(&m.delivery), i);
        tags.push(m.delivery.delivery_tag);
    }
    assert_eq!(tags, vec![1, 2, 3, 4, 5]);
    w!(ch.basic_ack(3, BasicAckOptions { multiple: true })).expect("ack multiple");
    w!(ch.close(200, "OK")).expect("close channel");
    let mut left = Vec::new();
    while let Some(m) = w!(pch.basic_get(&q, BasicGetOptions { no_ack: true })).expect("get") {
        assert!(m.delivery.redelivered);
        left.push(num(&m.delivery));
    }
    assert_eq!(left, vec![3, 4]);
    close(conn).await;
}

#[tokio::test]
async fn nack_with_requeue_redelivers_with_redelivered_flag() {
    let (conn, pch) = conn_ch().await;
    let q = temp_queue(&pch).await;
    let ch = channel(&conn).await;
    let mut c = consume(&ch, &q, "nacker", false).await;
    publish(&pch, "", &q, b"7").await;
    let d = next(&mut c).await;
    assert_eq!((num(&d), d.redelivered, d.delivery_tag), (7, false, 1));
    w!(d.nack(BasicNackOptions {
        requeue: true,
        multiple: false
    }))
    .expect("nack");
    let again = next(&mut c).await;
    assert_eq!(
        (num(&again), again.redelivered, again.delivery_tag),
        (7, true, 2)
    );
    // reject with requeue behaves the same.
    w!(again.reject(BasicRejectOptions { requeue: true })).expect("reject");
    let third = next(&mut c).await;
    assert_eq!(
        (num(&third), third.redelivered, third.delivery_tag),
        (7, true, 3)
    );
    w!(third.ack(BasicAckOptions::default())).expect("ack");
    close(conn).await;
}

#[tokio::test]
async fn reject_and_nack_without_requeue_discard() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    for i in 0..4 {
        publish(&ch, "", &q, i.to_string().as_bytes()).await;
    }
    let m0 = w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    w!(m0.delivery.reject(BasicRejectOptions { requeue: false })).expect("reject");
    let _m1 = w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    let m2 = w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    // nack multiple without requeue: tags 2 and 3 are dropped.
    w!(m2.delivery.nack(BasicNackOptions {
        multiple: true,
        requeue: false
    }))
    .expect("nack");
    let m3 = w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    assert_eq!(num(&m3.delivery), 3);
    // Closing the channel requeues only the still-unacked message 3.
    w!(ch.close(200, "OK")).expect("close channel");
    let ch2 = channel(&conn).await;
    assert_eq!(drain(&ch2, &q).await, vec![b"3".to_vec()]);
    close(conn).await;
}

#[tokio::test]
async fn basic_get_and_get_empty() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    assert!(w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get-empty")
        .is_none());
    for b in [b"a", b"b", b"c"] {
        publish(&ch, "", &q, b).await;
    }
    let m = w!(ch.basic_get(&q, BasicGetOptions { no_ack: false }))
        .expect("get")
        .expect("msg");
    assert_eq!(m.delivery.data, b"a");
    assert_eq!(m.message_count, 2);
    assert_eq!(m.delivery.delivery_tag, 1);
    assert_eq!(m.delivery.exchange.as_str(), "");
    assert_eq!(m.delivery.routing_key.as_str(), q);
    assert!(!m.delivery.redelivered);
    let m2 = w!(ch.basic_get(&q, BasicGetOptions { no_ack: true }))
        .expect("get")
        .expect("msg");
    assert_eq!(
        (
            m2.delivery.data.as_slice(),
            m2.message_count,
            m2.delivery.delivery_tag
        ),
        (&b"b"[..], 1, 2)
    );
    let m3 = w!(ch.basic_get(&q, BasicGetOptions { no_ack: true }))
        .expect("get")
        .expect("msg");
    assert_eq!(
        (m3.delivery.data.as_slice(), m3.message_count),
        (&b"c"[..], 0)
    );
    assert!(w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get-empty")
        .is_none());
    // The unacked first message comes back with the redelivered flag when rejected.
    w!(m.delivery.reject(BasicRejectOptions { requeue: true })).expect("reject");
    let again = w!(ch.basic_get(&q, BasicGetOptions { no_ack: true }))
        .expect("get")
        .expect("msg");
    assert_eq!(again.delivery.data, b"a");
    assert!(again.delivery.redelivered);
    close(conn).await;
}

#[tokio::test]
async fn consumer_tags_server_generated_and_client_chosen() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    let c = consume(&ch, &q, "", true).await;
    let tag = c.tag().to_string();
    let rest = tag
        .strip_prefix("amq.ctag-")
        .unwrap_or_else(|| panic!("tag {tag}"));
    assert_eq!(rest.len(), 22, "tag {tag}");
    let mine = consume(&ch, &q, "my-tag", true).await;
    assert_eq!(mine.tag().as_str(), "my-tag");
    // The same tag on another channel is fine.
    let ch2 = channel(&conn).await;
    let other = consume(&ch2, &q, "my-tag", true).await;
    assert_eq!(other.tag().as_str(), "my-tag");
    close(conn).await;
}

#[tokio::test]
async fn client_cancel_ends_the_consumer_stream() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    let mut c = consume(&ch, &q, "to-cancel", false).await;
    publish(&ch, "", &q, b"1").await;
    let d = next(&mut c).await;
    w!(ch.basic_cancel("to-cancel", BasicCancelOptions::default())).expect("basic.cancel");
    assert!(w!(c.next()).is_none(), "stream ends after cancel");
    assert_eq!(c.state(), ConsumerState::Canceled);
    // Unacked deliveries survive the cancel and can still be acked.
    publish(&ch, "", &q, b"2").await;
    w!(d.ack(BasicAckOptions::default())).expect("ack after cancel");
    assert_eq!(drain(&ch, &q).await, vec![b"2".to_vec()]);
    close(conn).await;
}

#[tokio::test]
async fn consumer_cancel_notification_when_queue_deleted() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("cancel-notify");
    named_queue(&ch, &q).await;
    let cch = channel(&conn).await;
    let mut c = consume(&cch, &q, "notified", true).await;
    publish(&ch, "", &q, b"before").await;
    assert_eq!(next(&mut c).await.data, b"before");
    let deleted = w!(ch.queue_delete(&q, QueueDeleteOptions::default())).expect("queue.delete");
    assert_eq!(deleted, 0);
    // The broker sends basic.cancel; lapin ends the stream and marks the consumer cancelled.
    assert!(
        w!(c.next()).is_none(),
        "stream ends on basic.cancel from the broker"
    );
    assert_eq!(c.state(), ConsumerState::Canceled);
    // The consumer's channel stays open and usable.
    assert!(cch.status().connected());
    let q2 = temp_queue(&cch).await;
    let mut c2 = consume(&cch, &q2, "notified", true).await; // the tag is free again
    publish(&cch, "", &q2, b"after").await;
    assert_eq!(next(&mut c2).await.data, b"after");
    close(conn).await;
}

#[tokio::test]
async fn message_properties_round_trip() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    let mut headers = FieldTable::default();
    headers.insert("str".into(), AMQPValue::LongString("value".into()));
    headers.insert("int".into(), AMQPValue::LongInt(-42));
    headers.insert("long".into(), AMQPValue::LongLongInt(1 << 40));
    headers.insert("bool".into(), AMQPValue::Boolean(true));
    headers.insert("double".into(), AMQPValue::Double(2.5));
    let mut nested = FieldTable::default();
    nested.insert("k".into(), AMQPValue::LongString("v".into()));
    headers.insert("table".into(), AMQPValue::FieldTable(nested));
    let mut arr = FieldArray::default();
    arr.push(AMQPValue::LongInt(1));
    arr.push(AMQPValue::LongString("two".into()));
    headers.insert("array".into(), AMQPValue::FieldArray(arr));
    headers.insert("void".into(), AMQPValue::Void);
    let props = BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_content_encoding(ShortString::from("utf-8"))
        .with_headers(headers)
        .with_delivery_mode(2)
        .with_priority(3)
        .with_correlation_id(ShortString::from("corr-1"))
        .with_reply_to(ShortString::from("reply.queue"))
        .with_expiration(ShortString::from("60000"))
        .with_message_id(ShortString::from("msg-1"))
        .with_timestamp(1_700_000_000)
        .with_type(ShortString::from("event.kind"))
        .with_user_id(ShortString::from("guest"))
        .with_app_id(ShortString::from("lapin-tests"));
    let mut c = consume(&ch, &q, "props", true).await;
    publish_with(&ch, "", &q, b"{}", props.clone()).await;
    let d = next(&mut c).await;
    assert_eq!(d.properties, props);
    assert_eq!(d.data, b"{}");
    close(conn).await;
}

#[tokio::test]
async fn messages_published_before_consume_are_delivered_in_order() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    for i in 0..50 {
        publish(&ch, "", &q, i.to_string().as_bytes()).await;
    }
    let cch = channel(&conn).await;
    let mut c = consume(&cch, &q, "", false).await;
    for i in 0..50u32 {
        let d = next(&mut c).await;
        assert_eq!((num(&d), d.delivery_tag), (i, u64::from(i) + 1));
    }
    w!(cch.basic_ack(0, BasicAckOptions { multiple: true })).expect("ack all");
    w!(cch.close(200, "OK")).expect("close");
    assert!(w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .is_none());
    close(conn).await;
}

#[tokio::test]
async fn exclusive_consumer_refuses_others_403() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    let excl = w!(ch.basic_consume(
        &q,
        "sole",
        BasicConsumeOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect("exclusive consume");
    let other = channel(&conn).await;
    assert_amqp_err(
        w!(other.basic_consume(
            &q,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default()
        )),
        403,
        &format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"),
    );
    assert!(conn.status().connected());
    // Released on cancel.
    w!(ch.basic_cancel(excl.tag().as_str(), BasicCancelOptions::default())).expect("cancel");
    let other = channel(&conn).await;
    consume(&other, &q, "", true).await;
    close(conn).await;
}
