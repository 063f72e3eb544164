//! Queues through lapin: durable / exclusive / auto-delete flags, server-named queues,
//! passive declares and their counts, purge, delete with if-unused / if-empty.

#[macro_use]
mod common;

use common::*;
use lapin::{
    options::{
        BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
    },
    types::FieldTable,
    Channel,
};

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

fn locked(name: &str) -> String {
    format!(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'. \
         It could be originally declared on another connection or the exclusive property value \
         does not match that of the original declaration."
    )
}

fn is_server_name(name: &str) -> bool {
    name.strip_prefix("amq.gen-").is_some_and(|rest| {
        rest.len() == 22
            && rest
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    })
}

async fn delete(ch: &Channel, q: &str) -> u32 {
    w!(ch.queue_delete(q, QueueDeleteOptions::default())).expect("queue.delete")
}

#[tokio::test]
async fn durable_queue_declare_redeclare_and_inequivalent_flags() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("durable");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let ok = w!(ch.queue_declare(&q, durable, FieldTable::default())).expect("declare");
    assert_eq!(ok.name().as_str(), q);
    assert_eq!((ok.message_count(), ok.consumer_count()), (0, 0));
    let pch = channel(&conn).await;
    publish_confirmed(&pch, "", &q, b"m").await;
    // Redeclaring with the same flags is fine and reports the counts.
    let ok = w!(ch.queue_declare(&q, durable, FieldTable::default())).expect("redeclare");
    assert_eq!((ok.message_count(), ok.consumer_count()), (1, 0));

    let ch2 = channel(&conn).await;
    assert_amqp_err(
        w!(ch2.queue_declare(&q, QueueDeclareOptions::default(), FieldTable::default())),
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{q}' in vhost '/': \
             received 'false' but current is 'true'"
        ),
    );
    let ch3 = channel(&conn).await;
    assert_amqp_err(
        w!(ch3.queue_declare(
            &q,
            QueueDeclareOptions {
                durable: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default()
        )),
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '{q}' in vhost '/': \
             received 'true' but current is 'false'"
        ),
    );
    assert_eq!(delete(&ch, &q).await, 1);
    assert!(!queue_exists(&conn, &q).await);
    close(conn).await;
}

#[tokio::test]
async fn server_named_queues() {
    let (conn, ch) = conn_ch().await;
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let ok = w!(ch.queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default()
        ))
        .expect("declare");
        assert!(is_server_name(ok.name().as_str()), "{}", ok.name());
        assert_eq!((ok.message_count(), ok.consumer_count()), (0, 0));
        names.insert(ok.name().to_string());
    }
    assert_eq!(names.len(), 5, "names are unique");
    // A non-exclusive server-named queue works like any other.
    let q = w!(ch.queue_declare("", QueueDeclareOptions::default(), FieldTable::default()))
        .expect("declare")
        .name()
        .to_string();
    assert!(is_server_name(&q), "{q}");
    publish(&ch, "", &q, b"m").await;
    assert_eq!(drain(&ch, &q).await, vec![b"m".to_vec()]);
    delete(&ch, &q).await;
    close(conn).await;
}

#[tokio::test]
async fn reserved_amq_prefix_refused_403() {
    let (conn, ch) = conn_ch().await;
    assert_amqp_err(
        w!(ch.queue_declare(
            "amq.gen-abc",
            QueueDeclareOptions::default(),
            FieldTable::default()
        )),
        403,
        "ACCESS_REFUSED - queue name 'amq.gen-abc' contains reserved prefix 'amq.*'",
    );
    close(conn).await;
}

#[tokio::test]
async fn passive_declare_reports_message_and_consumer_counts() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    // Counts come from a query that RabbitMQ lets overtake deliveries still on their way to
    // the queue: publish with confirms so the messages are known to be in the queue.
    let pch = channel(&conn).await;
    for i in 0..7u8 {
        publish_confirmed(&pch, "", &q, &[i]).await;
    }
    let ok = w!(ch.queue_declare(&q, passive(), FieldTable::default())).expect("passive");
    assert_eq!(ok.name().as_str(), q);
    assert_eq!((ok.message_count(), ok.consumer_count()), (7, 0));

    // One unacked basic.get: not counted as ready.
    let m = w!(ch.basic_get(&q, BasicGetOptions { no_ack: false }))
        .expect("get")
        .expect("msg");
    assert_eq!(m.message_count, 6);
    let ok = w!(ch.queue_declare(&q, passive(), FieldTable::default())).expect("passive");
    assert_eq!((ok.message_count(), ok.consumer_count()), (6, 0));

    // Consumers are counted (with prefetch 0 and no messages left they are all idle).
    let cch = channel(&conn).await;
    let purged = w!(ch.queue_purge(&q, QueuePurgeOptions::default())).expect("purge");
    assert_eq!(purged, 6);
    let c1 = w!(cch.basic_consume(
        &q,
        "c1",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect("consume");
    let _c2 = w!(cch.basic_consume(
        &q,
        "c2",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect("consume");
    let ok = w!(ch.queue_declare(&q, passive(), FieldTable::default())).expect("passive");
    assert_eq!((ok.message_count(), ok.consumer_count()), (0, 2));
    w!(cch.basic_cancel(c1.tag().as_str(), BasicCancelOptions::default())).expect("cancel");
    let ok = w!(ch.queue_declare(&q, passive(), FieldTable::default())).expect("passive");
    assert_eq!((ok.message_count(), ok.consumer_count()), (0, 1));
    close(conn).await;
}

#[tokio::test]
async fn passive_declare_missing_queue_404() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("missing");
    assert_amqp_err(
        w!(ch.queue_declare(&q, passive(), FieldTable::default())),
        404,
        &not_found_queue(&q),
    );
    assert!(conn.status().connected());
    close(conn).await;
}

#[tokio::test]
async fn purge_returns_count_and_keeps_unacked() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    for i in 0..10u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    let m = w!(ch.basic_get(&q, BasicGetOptions { no_ack: false }))
        .expect("get")
        .expect("msg");
    assert_eq!(
        w!(ch.queue_purge(&q, QueuePurgeOptions::default())).expect("purge"),
        9
    );
    assert_eq!(
        w!(ch.queue_purge(&q, QueuePurgeOptions::default())).expect("purge"),
        0
    );
    // The unacked message was not purged: rejecting it with requeue brings it back.
    w!(m.delivery
        .reject(lapin::options::BasicRejectOptions { requeue: true }))
    .expect("reject");
    assert_eq!(drain(&ch, &q).await, vec![vec![0u8]]);
    let missing = uniq("missing");
    assert_amqp_err(
        w!(ch.queue_purge(&missing, QueuePurgeOptions::default())),
        404,
        &not_found_queue(&missing),
    );
    close(conn).await;
}

#[tokio::test]
async fn delete_returns_message_count_and_removes_bindings() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("del");
    w!(ch.queue_declare(&q, QueueDeclareOptions::default(), FieldTable::default()))
        .expect("declare");
    w!(ch.queue_bind(
        &q,
        "amq.fanout",
        "",
        QueueBindOptions::default(),
        FieldTable::default()
    ))
    .expect("bind");
    for _ in 0..3 {
        publish(&ch, "", &q, b"m").await;
    }
    assert_eq!(delete(&ch, &q).await, 3);
    assert!(!queue_exists(&conn, &q).await);
    // Deleting a missing queue is not an error.
    assert_eq!(delete(&ch, &q).await, 0);
    // A new queue of the same name has neither the old messages nor the old binding.
    named_queue(&ch, &q).await;
    publish(&ch, "amq.fanout", "", b"lost").await;
    assert_eq!(drain(&ch, &q).await, Vec::<Vec<u8>>::new());
    close(conn).await;
}

#[tokio::test]
async fn delete_if_unused_refused_while_consumed_406() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("if-unused");
    w!(ch.queue_declare(&q, QueueDeclareOptions::default(), FieldTable::default()))
        .expect("declare");
    let consumer = w!(ch.basic_consume(
        &q,
        "",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect("consume");
    let ch2 = channel(&conn).await;
    assert_amqp_err(
        w!(ch2.queue_delete(
            &q,
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            }
        )),
        406,
        &format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' in use"),
    );
    assert!(queue_exists(&conn, &q).await);
    w!(ch.basic_cancel(consumer.tag().as_str(), BasicCancelOptions::default())).expect("cancel");
    let ch3 = channel(&conn).await;
    publish(&ch3, "", &q, b"m").await;
    // Messages do not make a queue "used".
    assert_eq!(
        w!(ch3.queue_delete(
            &q,
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            }
        ))
        .expect("delete if-unused"),
        1
    );
    assert!(!queue_exists(&conn, &q).await);
    close(conn).await;
}

#[tokio::test]
async fn delete_if_empty_refused_with_messages_406() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("if-empty");
    w!(ch.queue_declare(&q, QueueDeclareOptions::default(), FieldTable::default()))
        .expect("declare");
    let pch = channel(&conn).await;
    publish_confirmed(&pch, "", &q, b"m").await;
    let ch2 = channel(&conn).await;
    assert_amqp_err(
        w!(ch2.queue_delete(
            &q,
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            }
        )),
        406,
        &format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty"),
    );
    assert_eq!(drain(&ch, &q).await, vec![b"m".to_vec()]);
    assert_eq!(
        w!(ch.queue_delete(
            &q,
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            }
        ))
        .expect("delete if-empty"),
        0
    );
    assert!(!queue_exists(&conn, &q).await);
    close(conn).await;
}

#[tokio::test]
async fn exclusive_queue_locked_405_for_other_connections() {
    let (owner, och) = conn_ch().await;
    let q = uniq("excl");
    named_queue(&och, &q).await;
    w!(och.queue_bind(
        &q,
        "amq.direct",
        &q,
        QueueBindOptions::default(),
        FieldTable::default()
    ))
    .expect("bind");

    let other = connect().await;
    let excl = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    // Each refused operation closes its channel with 405; the connection stays up.
    let ch = channel(&other).await;
    assert_amqp_err(
        w!(ch.queue_declare(&q, passive(), FieldTable::default())),
        405,
        &locked(&q),
    );
    let ch = channel(&other).await;
    assert_amqp_err(
        w!(ch.queue_declare(&q, excl, FieldTable::default())),
        405,
        &locked(&q),
    );
    let ch = channel(&other).await;
    assert_amqp_err(
        w!(ch.queue_declare(&q, QueueDeclareOptions::default(), FieldTable::default())),
        405,
        &locked(&q),
    );
    let ch = channel(&other).await;
    assert_amqp_err(
        w!(ch.basic_consume(
            &q,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default()
        )),
        405,
        &locked(&q),
    );
    let ch = channel(&other).await;
    assert_amqp_err(
        w!(ch.basic_get(&q, BasicGetOptions::default())),
        405,
        &locked(&q),
    );
    let ch = channel(&other).await;
    assert_amqp_err(
        w!(ch.queue_purge(&q, QueuePurgeOptions::default())),
        405,
        &locked(&q),
    );
    let ch = channel(&other).await;
    assert_amqp_err(
        w!(ch.queue_delete(&q, QueueDeleteOptions::default())),
        405,
        &locked(&q),
    );
    let ch = channel(&other).await;
    assert_amqp_err(
        w!(ch.queue_bind(
            &q,
            "amq.fanout",
            "",
            QueueBindOptions::default(),
            FieldTable::default()
        )),
        405,
        &locked(&q),
    );
    let ch = channel(&other).await;
    assert_amqp_err(
        w!(ch.queue_unbind(&q, "amq.direct", &q, FieldTable::default())),
        405,
        &locked(&q),
    );
    assert!(other.status().connected());

    // Others may still publish to it, and the owner sees everything intact.
    let ch = channel(&other).await;
    publish_confirmed(&ch, "amq.direct", &q, b"from-outside").await;
    close(other).await;
    assert_eq!(drain(&och, &q).await, vec![b"from-outside".to_vec()]);
    close(owner).await;
}

#[tokio::test]
async fn exclusive_queue_usable_from_any_channel_of_its_connection() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("excl-own");
    named_queue(&ch, &q).await;
    let ch2 = channel(&conn).await;
    named_queue(&ch2, &q).await; // redeclare, same flags
    w!(ch2.queue_declare(&q, passive(), FieldTable::default())).expect("passive");
    publish(&ch2, "", &q, b"a").await;
    assert_eq!(
        w!(ch2.queue_purge(&q, QueuePurgeOptions::default())).expect("purge"),
        1
    );
    let c = w!(ch2.basic_consume(
        &q,
        "",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect("consume");
    w!(ch2.basic_cancel(c.tag().as_str(), BasicCancelOptions::default())).expect("cancel");
    // The queue outlives the channel that declared it...
    w!(ch.close(200, "OK")).expect("close channel");
    assert!(queue_exists(&conn, &q).await);
    // ...but redeclaring it as non-exclusive, even by the owner, is refused.
    let ch3 = channel(&conn).await;
    assert_amqp_err(
        w!(ch3.queue_declare(&q, QueueDeclareOptions::default(), FieldTable::default())),
        405,
        &locked(&q),
    );
    close(conn).await;
}

#[tokio::test]
async fn exclusive_queue_deleted_when_owner_closes() {
    let (owner, och) = conn_ch().await;
    let q = uniq("excl-gone");
    named_queue(&och, &q).await;
    let other = connect().await;
    close(owner).await;
    wait_queue_gone(&other, &q).await;
    // The name is free again.
    let ch = channel(&other).await;
    named_queue(&ch, &q).await;
    close(other).await;
}

#[tokio::test]
async fn auto_delete_queue_deleted_after_last_consumer_cancels() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("autodel");
    let ad = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    w!(ch.queue_declare(&q, ad, FieldTable::default())).expect("declare");
    // basic.get is not a consumer: the queue stays.
    publish(&ch, "", &q, b"1").await;
    assert_eq!(drain(&ch, &q).await, vec![b"1".to_vec()]);
    assert!(queue_exists(&conn, &q).await);
    let c1 = w!(ch.basic_consume(
        &q,
        "",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect("consume");
    let c2 = w!(ch.basic_consume(
        &q,
        "",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect("consume");
    w!(ch.basic_cancel(c1.tag().as_str(), BasicCancelOptions::default())).expect("cancel");
    let ok = w!(ch.queue_declare(&q, passive(), FieldTable::default())).expect("still there");
    assert_eq!(ok.consumer_count(), 1);
    w!(ch.basic_cancel(c2.tag().as_str(), BasicCancelOptions::default())).expect("cancel");
    wait_queue_gone(&conn, &q).await;
    close(conn).await;
}

#[tokio::test]
async fn auto_delete_queue_deleted_when_consumer_connection_closes() {
    let (conn, ch) = conn_ch().await;
    let q = uniq("autodel-conn");
    let ad = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    w!(ch.queue_declare(&q, ad, FieldTable::default())).expect("declare");
    w!(ch.basic_consume(
        &q,
        "",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect("consume");
    publish(&ch, "", &q, b"pending").await; // messages do not keep it alive
    let observer = connect().await;
    close(conn).await;
    wait_queue_gone(&observer, &q).await;
    close(observer).await;
}
