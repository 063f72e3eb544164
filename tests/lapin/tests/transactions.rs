//! tx.select / tx.commit / tx.rollback through lapin.

#[macro_use]
mod common;

use common::*;
use lapin::{
    options::{
        BasicAckOptions, BasicGetOptions, BasicPublishOptions, BasicRecoverOptions,
        BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
    },
    types::FieldTable,
    BasicProperties, Channel,
};

const NOT_TX: &str = "PRECONDITION_FAILED - channel is not transactional";

async fn tx_channel(conn: &lapin::Connection) -> Channel {
    let ch = channel(conn).await;
    w!(ch.tx_select()).expect("tx.select");
    ch
}

/// A synchronous round trip on `ch`: everything sent before it has been processed.
async fn sync(ch: &Channel, q: &str) {
    w!(ch.queue_declare(
        q,
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect("passive declare");
}

async fn get(ch: &Channel, q: &str) -> Option<(Vec<u8>, bool)> {
    w!(ch.basic_get(q, BasicGetOptions { no_ack: true }))
        .expect("basic.get")
        .map(|m| (m.delivery.data.clone(), m.delivery.redelivered))
}

#[tokio::test]
async fn select_commit_and_rollback_on_empty_transactions() {
    let conn = connect().await;
    let ch = tx_channel(&conn).await;
    w!(ch.tx_select()).expect("tx.select again");
    w!(ch.tx_commit()).expect("empty commit");
    w!(ch.tx_rollback()).expect("empty rollback");
    w!(ch.tx_commit()).expect("commit again");
    close(conn).await;
}

#[tokio::test]
async fn publishes_invisible_until_commit() {
    let (conn, obs) = conn_ch().await;
    let q = temp_queue(&obs).await;
    let tx = tx_channel(&conn).await;
    for i in 0..3 {
        publish(&tx, "", &q, i.to_string().as_bytes()).await;
    }
    sync(&tx, &q).await;
    assert_eq!(get(&obs, &q).await, None);
    assert_eq!(message_count(&obs, &q).await, 0);
    w!(tx.tx_commit()).expect("tx.commit");
    assert_eq!(message_count(&obs, &q).await, 3);
    assert_eq!(
        drain(&obs, &q).await,
        vec![b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]
    );
    // The channel stays transactional after a commit.
    publish(&tx, "", &q, b"3").await;
    sync(&tx, &q).await;
    assert_eq!(get(&obs, &q).await, None);
    w!(tx.tx_commit()).expect("tx.commit");
    assert_eq!(drain(&obs, &q).await, vec![b"3".to_vec()]);
    close(conn).await;
}

#[tokio::test]
async fn rollback_discards_publishes() {
    let (conn, obs) = conn_ch().await;
    let q = temp_queue(&obs).await;
    let tx = tx_channel(&conn).await;
    publish(&tx, "", &q, b"discarded-1").await;
    publish(&tx, "", &q, b"discarded-2").await;
    w!(tx.tx_rollback()).expect("tx.rollback");
    publish(&tx, "", &q, b"kept").await;
    w!(tx.tx_commit()).expect("tx.commit");
    assert_eq!(drain(&obs, &q).await, vec![b"kept".to_vec()]);
    close(conn).await;
}

#[tokio::test]
async fn uncommitted_publishes_dropped_when_channel_closes() {
    let (conn, obs) = conn_ch().await;
    let q = temp_queue(&obs).await;
    let tx = tx_channel(&conn).await;
    publish(&tx, "", &q, b"lost").await;
    w!(tx.close(200, "OK")).expect("close");
    assert_eq!(get(&obs, &q).await, None);
    close(conn).await;
}

#[tokio::test]
async fn acks_take_effect_on_commit_only() {
    let (conn, obs) = conn_ch().await;
    let q = temp_queue(&obs).await;
    publish_confirmed(&obs, "", &q, b"a").await;
    publish_confirmed(&obs, "", &q, b"b").await;
    let tx = tx_channel(&conn).await;
    let m1 = w!(tx.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    let m2 = w!(tx.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    w!(m1.delivery.ack(BasicAckOptions::default())).expect("ack");
    w!(tx.tx_commit()).expect("commit"); // "a" is acked for good
    w!(m2.delivery.ack(BasicAckOptions::default())).expect("ack"); // never committed
    w!(tx.close(200, "OK")).expect("close"); // so "b" is still unacked and comes back
    assert_eq!(get(&obs, &q).await, Some((b"b".to_vec(), true)));
    assert_eq!(get(&obs, &q).await, None);
    close(conn).await;
}

#[tokio::test]
async fn rollback_undoes_acks_without_requeueing() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    publish(&ch, "", &q, b"a").await;
    w!(ch.tx_select()).expect("tx.select");
    let m = w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    w!(m.delivery.ack(BasicAckOptions::default())).expect("ack");
    w!(ch.tx_rollback()).expect("rollback");
    // The message is unacked again, not back in the queue.
    assert_eq!(get(&ch, &q).await, None);
    w!(ch.basic_recover(BasicRecoverOptions { requeue: true })).expect("basic.recover");
    assert_eq!(get(&ch, &q).await, Some((b"a".to_vec(), true)));
    close(conn).await;
}

#[tokio::test]
async fn reject_with_requeue_takes_effect_on_commit() {
    let (conn, obs) = conn_ch().await;
    let q = temp_queue(&obs).await;
    publish_confirmed(&obs, "", &q, b"a").await;
    let tx = tx_channel(&conn).await;
    let m = w!(tx.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    w!(m.delivery.reject(BasicRejectOptions { requeue: true })).expect("reject");
    sync(&tx, &q).await;
    assert_eq!(get(&obs, &q).await, None); // not requeued yet
    w!(tx.tx_commit()).expect("commit");
    assert_eq!(get(&obs, &q).await, Some((b"a".to_vec(), true)));
    close(conn).await;
}

#[tokio::test]
async fn mandatory_returns_sent_on_commit_and_discarded_on_rollback() {
    let conn = connect().await;
    let tx = tx_channel(&conn).await;
    let nowhere = uniq("nowhere");
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    drop(
        w!(tx.basic_publish("", &nowhere, mandatory, b"r", BasicProperties::default()))
            .expect("publish"),
    );
    w!(tx.tx_commit()).expect("commit");
    // basic.return precedes commit-ok, so it has been received by now.
    let returned = w!(tx.wait_for_confirms()).expect("returns");
    assert_eq!(returned.len(), 1);
    assert_eq!(
        (returned[0].reply_code, returned[0].reply_text.as_str()),
        (312, "NO_ROUTE")
    );
    assert_eq!(returned[0].delivery.data, b"r");

    drop(
        w!(tx.basic_publish("", &nowhere, mandatory, b"r2", BasicProperties::default()))
            .expect("publish"),
    );
    w!(tx.tx_rollback()).expect("rollback");
    w!(tx.tx_commit()).expect("commit");
    assert!(w!(tx.wait_for_confirms()).expect("returns").is_empty());
    close(conn).await;
}

#[tokio::test]
async fn commit_without_select_406() {
    let (conn, ch) = conn_ch().await;
    assert_amqp_err(w!(ch.tx_commit()), 406, NOT_TX);
    assert!(conn.status().connected());
    close(conn).await;
}

#[tokio::test]
async fn rollback_without_select_406() {
    let (conn, ch) = conn_ch().await;
    assert_amqp_err(w!(ch.tx_rollback()), 406, NOT_TX);
    assert!(conn.status().connected());
    close(conn).await;
}

#[tokio::test]
async fn tx_and_confirm_modes_exclude_each_other_406() {
    let conn = connect().await;
    let tx = tx_channel(&conn).await;
    assert_amqp_err(
        w!(tx.confirm_select(ConfirmSelectOptions::default())),
        406,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
    );
    let ch = channel(&conn).await;
    w!(ch.confirm_select(ConfirmSelectOptions::default())).expect("confirm.select");
    assert_amqp_err(
        w!(ch.tx_select()),
        406,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
    );
    close(conn).await;
}
