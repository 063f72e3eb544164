//! Message bodies of many sizes (split into body frames of frame_max - 8 octets) arrive
//! intact, NULs included; many small messages keep their order.

#[macro_use]
mod common;

use common::*;
use lapin::{
    options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions},
    types::FieldTable,
    BasicProperties,
};
use std::time::Duration;

const BIG_TIMEOUT: Duration = Duration::from_secs(60);

/// A body of `len` bytes in which every 3rd byte is NUL and the rest vary with `seed`.
fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i % 3 == 0 {
                0
            } else {
                ((i * 131 + seed as usize) % 256) as u8
            }
        })
        .collect()
}

fn check(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(pos) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {pos}");
    }
}

#[tokio::test]
async fn bodies_of_many_sizes_arrive_intact_via_consumer() {
    let (conn, pch) = conn_ch().await;
    let q = temp_queue(&pch).await;
    // 131064 = frame_max - 8: exactly one full body frame; one more byte needs two.
    let sizes = [
        0usize,
        1,
        7,
        131_063,
        131_064,
        131_065,
        262_128,
        1 << 20,
        16 << 20,
    ];
    let bodies: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| body(n, i as u8))
        .collect();
    let ch = channel(&conn).await;
    let mut c = w!(ch.basic_consume(
        &q,
        "big",
        BasicConsumeOptions::default(),
        FieldTable::default()
    ))
    .expect("consume");
    for (i, b) in bodies.iter().enumerate() {
        let props = BasicProperties::default().with_message_id(i.to_string().into());
        publish_with(&pch, "", &q, b, props).await;
    }
    for (i, want) in bodies.iter().enumerate() {
        let d = match w!(c.next(), BIG_TIMEOUT) {
            Some(Ok(d)) => d,
            other => panic!("delivery {i}: {other:?}"),
        };
        assert_eq!(
            d.properties.message_id().as_ref().map(|s| s.to_string()),
            Some(i.to_string())
        );
        check(&d.data, want, &format!("{} bytes", sizes[i]));
        w!(d.ack(BasicAckOptions::default())).expect("ack");
    }
    close(conn).await;
}

#[tokio::test]
async fn bodies_of_many_sizes_arrive_intact_via_basic_get() {
    let (conn, ch) = conn_ch().await;
    let q = temp_queue(&ch).await;
    let cases = [
        (0usize, body(0, 1)),
        (1, vec![0u8]),
        (131_064, body(131_064, 2)),
        (1 << 20, vec![0u8; 1 << 20]), // all NULs
        (16 << 20, body(16 << 20, 3)),
    ];
    for (_, b) in &cases {
        publish_confirmed(&ch, "", &q, b).await;
    }
    for (n, want) in &cases {
        let m = w!(
            ch.basic_get(&q, BasicGetOptions { no_ack: true }),
            BIG_TIMEOUT
        )
        .expect("basic.get")
        .expect("a message");
        check(&m.delivery.data, want, &format!("{n} bytes"));
    }
    assert!(w!(ch.basic_get(&q, BasicGetOptions::default()))
        .expect("get")
        .is_none());
    close(conn).await;
}

#[tokio::test]
async fn large_body_with_small_frame_max() {
    let mut uri = uri();
    uri.query.frame_max = Some(8192); // the smallest lapin accepts
    let conn = try_connect_uri(uri).await.expect("connect");
    assert_eq!(conn.configuration().frame_max(), 8192);
    let ch = channel(&conn).await;
    let q = temp_queue(&ch).await;
    let want = body(1 << 20, 9); // 129 body frames each way
    publish(&ch, "", &q, &want).await;
    let m = w!(
        ch.basic_get(&q, BasicGetOptions { no_ack: true }),
        BIG_TIMEOUT
    )
    .expect("basic.get")
    .expect("a message");
    check(&m.delivery.data, &want, "1 MiB at frame_max 8192");
    close(conn).await;
}

#[tokio::test]
async fn thousand_small_messages_in_order() {
    let (conn, pch) = conn_ch().await;
    let q = temp_queue(&pch).await;
    let ch = channel(&conn).await;
    let mut c = w!(ch.basic_consume(
        &q,
        "",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        FieldTable::default()
    ))
    .expect("consume");
    for i in 0..1000u32 {
        publish(&pch, "", &q, format!("msg-{i}").as_bytes()).await;
    }
    for i in 0..1000u32 {
        let d = next(&mut c).await;
        assert_eq!(String::from_utf8_lossy(&d.data), format!("msg-{i}"));
        assert_eq!(d.delivery_tag, u64::from(i) + 1);
        assert!(!d.redelivered);
    }
    // And through basic.get, published before anyone reads them.
    let q2 = temp_queue(&pch).await;
    for i in 0..1000u32 {
        publish(&pch, "", &q2, &i.to_be_bytes()).await;
    }
    let got = drain(&pch, &q2).await;
    let want: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_be_bytes().to_vec()).collect();
    assert!(got == want, "basic.get order: got {} messages", got.len());
    close(conn).await;
}
