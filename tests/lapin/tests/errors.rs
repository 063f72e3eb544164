//! Errors through lapin: channel-level errors close only their channel, with the right reply
//! code and text (lapin::Error::ProtocolError(AMQPError)); connection-level errors close the
//! connection and leave other connections alone.

#[macro_use]
mod common;

use common::*;
use lapin::{
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
        BasicPublishOptions, BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
        ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    },
    protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError},
    types::FieldTable,
    BasicProperties, ChannelState, ExchangeKind,
};

fn kind(e: &lapin::Error) -> AMQPErrorKind {
    match e {
        lapin::Error::ProtocolError(e) => e.kind().clone(),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn channel_error_closes_only_that_channel() {
    let conn = connect().await;
    let ch1 = channel(&conn).await;
    let ch2 = channel(&conn).await;
    let q = temp_queue(&ch2).await;
    let missing = uniq("missing");
    let err = w!(ch1.queue_declare(
        &missing,
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect_err("passive declare of a missing queue");
    assert_eq!(kind(&err), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND));
    assert_eq!(code_text(&err), (404, not_found_queue(&missing)));
    // ch1 is closed; further use fails locally.
    assert!(!ch1.status().connected());
    assert!(matches!(
        w!(ch1.basic_get(&q, BasicGetOptions::default())),
        Err(lapin::Error::InvalidChannelState(
            ChannelState::Closing | ChannelState::Closed
        ))
    ));
    // The connection and its other channels are untouched.
    assert!(conn.status().connected());
    assert!(ch2.status().connected());
    publish(&ch2, "", &q, b"still fine").await;
    assert_eq!(drain(&ch2, &q).await, vec![b"still fine".to_vec()]);
    let ch3 = channel(&conn).await;
    temp_queue(&ch3).await;
    close(conn).await;
}

#[tokio::test]
async fn soft_error_codes_and_texts() {
    let conn = connect().await;
    let missing_q = uniq("missing-q");
    let missing_x = uniq("missing-x");

    let ch = channel(&conn).await;
    assert_amqp_err(
        w!(ch.basic_consume(
            &missing_q,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default()
        )),
        404,
        &not_found_queue(&missing_q),
    );
    let ch = channel(&conn).await;
    assert_amqp_err(
        w!(ch.basic_get(&missing_q, BasicGetOptions::default())),
        404,
        &not_found_queue(&missing_q),
    );
    let ch = channel(&conn).await;
    let q = temp_queue(&ch).await;
    assert_amqp_err(
        w!(ch.queue_bind(
            &q,
            &missing_x,
            "",
            QueueBindOptions::default(),
            FieldTable::default()
        )),
        404,
        &not_found_exchange(&missing_x),
    );
    let ch = channel(&conn).await;
    assert_amqp_err(
        w!(ch.exchange_declare(
            "amq.lapin-test",
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default()
        )),
        403,
        "ACCESS_REFUSED - exchange name 'amq.lapin-test' contains reserved prefix 'amq.*'",
    );
    let ch = channel(&conn).await;
    assert_amqp_err(
        w!(ch.queue_declare(
            "amq.lapin-test",
            QueueDeclareOptions::default(),
            FieldTable::default()
        )),
        403,
        "ACCESS_REFUSED - queue name 'amq.lapin-test' contains reserved prefix 'amq.*'",
    );
    // exchange.delete if-unused on an exchange with a binding.
    let ch = channel(&conn).await;
    let x = uniq("in-use");
    w!(ch.exchange_declare(
        &x,
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default()
    ))
    .expect("declare");
    let q = temp_queue(&ch).await;
    w!(ch.queue_bind(
        &q,
        &x,
        "",
        QueueBindOptions::default(),
        FieldTable::default()
    ))
    .expect("bind");
    let ch2 = channel(&conn).await;
    assert_amqp_err(
        w!(ch2.exchange_delete(
            &x,
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            }
        )),
        406,
        &format!("PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use"),
    );
    w!(ch.exchange_delete(&x, ExchangeDeleteOptions::default())).expect("delete");
    assert!(conn.status().connected());
    close(conn).await;
}

#[tokio::test]
async fn publish_to_missing_exchange_closes_channel_404() {
    let conn = connect().await;
    let ch = channel(&conn).await;
    let errors = channel_error(&ch);
    let x = uniq("missing");
    // basic.publish has no reply: the error arrives asynchronously as channel.close.
    drop(
        w!(ch.basic_publish(
            &x,
            "k",
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default()
        ))
        .expect("publish is sent"),
    );
    let err = w!(errors).expect("channel error reported");
    assert_eq!(code_text(&err), (404, not_found_exchange(&x)));
    assert!(!ch.status().connected());
    assert!(conn.status().connected());

    // In confirm mode the pending confirmation fails with the same error.
    let cch = channel(&conn).await;
    w!(cch.confirm_select(ConfirmSelectOptions::default())).expect("confirm.select");
    let pc = w!(cch.basic_publish(
        &x,
        "k",
        BasicPublishOptions::default(),
        b"m",
        BasicProperties::default()
    ))
    .expect("publish is sent");
    let err = w!(pc).expect_err("confirm fails when the channel is closed");
    assert_eq!(code_text(&err), (404, not_found_exchange(&x)));
    close(conn).await;
}

#[tokio::test]
async fn unknown_delivery_tag_406() {
    let conn = connect().await;
    let ch = channel(&conn).await;
    let errors = channel_error(&ch);
    w!(ch.basic_ack(42, BasicAckOptions::default())).expect("ack is sent");
    let err = w!(errors).expect("channel error reported");
    assert_eq!(
        kind(&err),
        AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
    );
    assert_eq!(
        code_text(&err),
        (
            406,
            "PRECONDITION_FAILED - unknown delivery tag 42".to_string()
        )
    );
    assert!(conn.status().connected());
    close(conn).await;
}

#[tokio::test]
async fn double_ack_and_reject_after_ack_406() {
    let conn = connect().await;
    let ch = channel(&conn).await;
    let q = temp_queue(&ch).await;
    publish(&ch, "", &q, b"a").await;
    publish(&ch, "", &q, b"b").await;
    let m = w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    let errors = channel_error(&ch);
    w!(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())).expect("ack");
    w!(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default()))
        .expect("second ack is sent");
    let err = w!(errors).expect("channel error reported");
    assert_eq!(
        code_text(&err),
        (
            406,
            "PRECONDITION_FAILED - unknown delivery tag 1".to_string()
        )
    );

    let ch = channel(&conn).await;
    let m = w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .expect("msg");
    let errors = channel_error(&ch);
    w!(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())).expect("ack");
    w!(ch.basic_reject(
        m.delivery.delivery_tag,
        BasicRejectOptions { requeue: true }
    ))
    .expect("reject is sent");
    let err = w!(errors).expect("channel error reported");
    assert_eq!(
        code_text(&err),
        (
            406,
            "PRECONDITION_FAILED - unknown delivery tag 1".to_string()
        )
    );

    // nack of a tag beyond anything delivered.
    let ch = channel(&conn).await;
    let errors = channel_error(&ch);
    w!(ch.basic_nack(
        7,
        BasicNackOptions {
            multiple: true,
            requeue: true
        }
    ))
    .expect("nack is sent");
    let err = w!(errors).expect("channel error reported");
    assert_eq!(
        code_text(&err),
        (
            406,
            "PRECONDITION_FAILED - unknown delivery tag 7".to_string()
        )
    );
    assert!(conn.status().connected());
    close(conn).await;
}

#[tokio::test]
async fn duplicate_consumer_tag_is_a_connection_error_530() {
    let bystander = connect().await;
    let bch = channel(&bystander).await;
    let bq = temp_queue(&bch).await;
    let mut bconsumer = w!(bch.basic_consume(
        &bq,
        "",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect("consume");

    let conn = connect().await;
    let conn_errors = connection_error(&conn);
    let ch = channel(&conn).await;
    let q = temp_queue(&ch).await;
    w!(ch.basic_consume(
        &q,
        "dup",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect("first consume");
    let err = w!(ch.basic_consume(
        &q,
        "dup",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect_err("second consume with the same tag");
    assert_eq!(kind(&err), AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED));
    assert_eq!(
        code_text(&err),
        (
            530,
            "NOT_ALLOWED - attempt to reuse consumer tag 'dup'".to_string()
        )
    );
    let conn_err = w!(conn_errors).expect("connection error reported");
    assert_eq!(
        code_text(&conn_err),
        (
            530,
            "NOT_ALLOWED - attempt to reuse consumer tag 'dup'".to_string()
        )
    );
    // The whole connection is gone.
    assert!(!conn.status().connected());
    assert!(w!(conn.create_channel()).is_err());

    // Other connections keep working.
    assert!(bystander.status().connected());
    publish(&bch, "", &bq, b"still here").await;
    assert_eq!(next(&mut bconsumer).await.data, b"still here");
    let fresh = connect().await;
    let fch = channel(&fresh).await;
    temp_queue(&fch).await;
    close(fresh).await;
    close(bystander).await;
}

#[tokio::test]
async fn unknown_exchange_type_is_a_connection_error_503() {
    let bystander = connect().await;
    let bch = channel(&bystander).await;
    let conn = connect().await;
    let conn_errors = connection_error(&conn);
    let ch = channel(&conn).await;
    let x = uniq("bogus-type");
    let err = w!(ch.exchange_declare(
        &x,
        ExchangeKind::Custom("bogus".into()),
        ExchangeDeclareOptions::default(),
        FieldTable::default()
    ))
    .expect_err("unknown exchange type");
    assert_eq!(
        kind(&err),
        AMQPErrorKind::Hard(AMQPHardError::COMMANDINVALID)
    );
    assert_eq!(
        code_text(&err),
        (
            503,
            "COMMAND_INVALID - unknown exchange type 'bogus'".to_string()
        )
    );
    // lapin updates the connection state on its I/O thread; its error handler runs after.
    let conn_err = w!(conn_errors).expect("connection error reported");
    assert_eq!(
        code_text(&conn_err),
        (
            503,
            "COMMAND_INVALID - unknown exchange type 'bogus'".to_string()
        )
    );
    assert!(!conn.status().connected());
    assert!(bystander.status().connected());
    temp_queue(&bch).await;
    close(bystander).await;
}
