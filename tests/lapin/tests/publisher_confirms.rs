//! Publisher confirms and mandatory returns through lapin.

#[macro_use]
mod common;

use common::*;
use lapin::{
    options::{
        BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
        QueuePurgeOptions,
    },
    publisher_confirm::Confirmation,
    types::{AMQPValue, FieldTable, ShortString},
    BasicProperties, Channel,
};
use std::time::{Duration, Instant};

async fn confirm_channel(conn: &lapin::Connection) -> Channel {
    let ch = channel(conn).await;
    w!(ch.confirm_select(ConfirmSelectOptions::default())).expect("confirm.select");
    assert!(ch.status().confirm());
    ch
}

async fn publish_get_confirm(
    ch: &Channel,
    exchange: &str,
    key: &str,
    mandatory: bool,
    body: &[u8],
    props: BasicProperties,
) -> Confirmation {
    let pc = w!(ch.basic_publish(
        exchange,
        key,
        BasicPublishOptions {
            mandatory,
            ..Default::default()
        },
        body,
        props
    ))
    .expect("basic.publish");
    w!(pc).expect("confirm")
}

#[tokio::test]
async fn confirm_select_and_ack_for_routed_and_unroutable() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let q = temp_queue(&ch).await;
    let c = publish_get_confirm(&ch, "", &q, false, b"routed", BasicProperties::default()).await;
    assert_eq!(c, Confirmation::Ack(None));
    // Unroutable, not mandatory: silently dropped, still acked.
    let c = publish_get_confirm(
        &ch,
        "amq.direct",
        &uniq("nobody"),
        false,
        b"x",
        BasicProperties::default(),
    )
    .await;
    assert_eq!(c, Confirmation::Ack(None));
    // Routed and mandatory: acked, nothing returned.
    let c = publish_get_confirm(
        &ch,
        "",
        &q,
        true,
        b"routed-mandatory",
        BasicProperties::default(),
    )
    .await;
    assert_eq!(c, Confirmation::Ack(None));
    assert_eq!(message_count(&ch, &q).await, 2);
    // confirm.select again on a confirm channel is fine.
    w!(ch.confirm_select(ConfirmSelectOptions::default())).expect("confirm.select again");
    close(conn).await;
}

#[tokio::test]
async fn ten_thousand_confirms() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let q = temp_queue(&ch).await;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(10_000);
    for i in 0..10_000u32 {
        pending.push(
            w!(ch.basic_publish(
                "",
                &q,
                BasicPublishOptions::default(),
                &i.to_be_bytes(),
                BasicProperties::default()
            ))
            .expect("basic.publish"),
        );
    }
    let confirms = w!(futures::future::join_all(pending), Duration::from_secs(60));
    let mut acks = 0;
    for c in confirms {
        match c.expect("confirm") {
            Confirmation::Ack(None) => acks += 1,
            other => panic!("unexpected confirmation {other:?}"),
        }
    }
    assert_eq!(acks, 10_000);
    assert!(w!(ch.wait_for_confirms())
        .expect("wait_for_confirms")
        .is_empty());
    assert_eq!(message_count(&ch, &q).await, 10_000);
    // They are all there, in order.
    let first = w!(ch.basic_get(&q, Default::default()))
        .expect("get")
        .expect("msg");
    assert_eq!(first.delivery.data, 0u32.to_be_bytes());
    assert_eq!(
        w!(ch.queue_purge(&q, QueuePurgeOptions::default())).expect("purge"),
        9_999
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    close(conn).await;
}

#[tokio::test]
async fn mandatory_unroutable_returned_with_312_no_route() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let key = uniq("unroutable");
    let props = BasicProperties::default()
        .with_content_type(ShortString::from("text/plain"))
        .with_message_id(ShortString::from("m-1"));
    let c = publish_get_confirm(&ch, "amq.direct", &key, true, b"come back", props.clone()).await;
    // The basic.return comes before the ack; lapin attaches it to the confirmation.
    let ret = match c {
        Confirmation::Ack(Some(ret)) => ret,
        other => panic!("expected an ack carrying the returned message, got {other:?}"),
    };
    assert_eq!(ret.reply_code, 312);
    assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(ret.delivery.exchange.as_str(), "amq.direct");
    assert_eq!(ret.delivery.routing_key.as_str(), key);
    assert_eq!(ret.delivery.data, b"come back");
    assert_eq!(ret.delivery.properties, props);
    // Via the default exchange, to a queue that does not exist.
    let missing = uniq("no-such-queue");
    let c = publish_get_confirm(&ch, "", &missing, true, b"", BasicProperties::default()).await;
    let ret = c.take_message().expect("returned message");
    assert_eq!((ret.reply_code, ret.reply_text.as_str()), (312, "NO_ROUTE"));
    assert_eq!(
        (
            ret.delivery.exchange.as_str(),
            ret.delivery.routing_key.as_str()
        ),
        ("", missing.as_str())
    );
    assert!(ret.delivery.data.is_empty());
    close(conn).await;
}

#[tokio::test]
async fn mandatory_unroutable_returned_without_confirms() {
    let (conn, ch) = conn_ch().await;
    let key = uniq("unroutable");
    drop(
        w!(ch.basic_publish(
            "amq.topic",
            &key,
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"r1",
            BasicProperties::default()
        ))
        .expect("publish"),
    );
    drop(
        w!(ch.basic_publish(
            "amq.topic",
            &key,
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"r2",
            BasicProperties::default()
        ))
        .expect("publish"),
    );
    // Any later synchronous reply on the channel comes after the basic.return frames.
    w!(ch.basic_qos(0, BasicQosOptions::default())).expect("qos");
    let returned = w!(ch.wait_for_confirms()).expect("returned messages");
    let got: Vec<(u16, String, Vec<u8>)> = returned
        .into_iter()
        .map(|r| {
            (
                r.reply_code,
                r.reply_text.to_string(),
                r.delivery.data.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (312, "NO_ROUTE".to_string(), b"r1".to_vec()),
            (312, "NO_ROUTE".to_string(), b"r2".to_vec())
        ]
    );
    close(conn).await;
}

#[tokio::test]
async fn wait_for_confirms_collects_returns_of_unawaited_publishes() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let q = temp_queue(&ch).await;
    let missing = uniq("nobody");
    for i in 0..20u8 {
        let key = if i % 5 == 0 {
            missing.as_str()
        } else {
            q.as_str()
        };
        // Drop the PublisherConfirm: wait_for_confirms covers it.
        drop(
            w!(ch.basic_publish(
                "",
                key,
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &[i],
                BasicProperties::default()
            ))
            .expect("publish"),
        );
    }
    let returned = w!(ch.wait_for_confirms()).expect("wait_for_confirms");
    let mut bodies: Vec<u8> = returned.iter().map(|r| r.delivery.data[0]).collect();
    bodies.sort();
    assert_eq!(bodies, vec![0, 5, 10, 15]);
    assert!(returned.iter().all(|r| r.reply_code == 312));
    assert_eq!(message_count(&ch, &q).await, 16);
    close(conn).await;
}

#[tokio::test]
async fn nack_when_queue_rejects_publish() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let q = w!(ch.queue_declare(
        "",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        args
    ))
    .expect("declare")
    .name()
    .to_string();
    let c1 = publish_get_confirm(&ch, "", &q, false, b"fits", BasicProperties::default()).await;
    assert_eq!(c1, Confirmation::Ack(None));
    let c2 =
        publish_get_confirm(&ch, "", &q, false, b"overflows", BasicProperties::default()).await;
    assert_eq!(c2, Confirmation::Nack(None));
    assert_eq!(drain(&ch, &q).await, vec![b"fits".to_vec()]);
    close(conn).await;
}
