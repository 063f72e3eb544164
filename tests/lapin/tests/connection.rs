//! Connection life cycle through lapin: handshake and tuning, server properties,
//! refused logins and vhosts, closing connections and channels.

#[macro_use]
mod common;

use common::*;
use lapin::{
    options::{BasicGetOptions, QueueDeclareOptions},
    protocol::{self, AMQPClass},
    types::{AMQPValue, FieldTable},
    ChannelState, ConnectionState,
};
use std::io::{Read, Write};

#[tokio::test]
async fn connect_negotiates_server_tune_values() {
    let conn = connect().await;
    assert!(conn.status().connected());
    assert_eq!(conn.status().state(), ConnectionState::Connected);
    assert_eq!(conn.status().vhost(), "/");
    assert_eq!(conn.status().username(), "guest");
    // lapin proposes nothing of its own, so it takes the server's connection.tune values.
    let cfg = conn.configuration();
    assert_eq!(cfg.channel_max(), 2047, "channel_max");
    assert_eq!(cfg.frame_max(), 131072, "frame_max");
    assert_eq!(cfg.heartbeat(), 60, "heartbeat");
    close(conn).await;
}

#[tokio::test]
async fn client_tune_values_below_server_proposal_are_used() {
    let mut uri = uri();
    uri.query.frame_max = Some(8192);
    uri.query.channel_max = Some(16);
    uri.query.heartbeat = Some(5);
    let conn = try_connect_uri(uri).await.expect("connect");
    let cfg = conn.configuration();
    assert_eq!(
        (cfg.channel_max(), cfg.frame_max(), cfg.heartbeat()),
        (16, 8192, 5)
    );
    // With frame_max 8192 a 100 000-byte body travels in 13 body frames each way.
    let ch = channel(&conn).await;
    let q = temp_queue(&ch).await;
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    publish(&ch, "", &q, &body).await;
    let got = w!(ch.basic_get(&q, BasicGetOptions { no_ack: true }))
        .expect("basic.get")
        .expect("a message");
    assert_eq!(got.delivery.data.len(), body.len());
    assert!(got.delivery.data == body, "body changed in transit");
    close(conn).await;
}

#[tokio::test]
async fn channels_get_increasing_ids_and_work_independently() {
    let conn = connect().await;
    let mut chans = Vec::new();
    for _ in 0..5 {
        chans.push(channel(&conn).await);
    }
    let ids: Vec<u16> = chans.iter().map(|c| c.id()).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    for ch in &chans {
        assert!(ch.status().connected());
        let q = temp_queue(ch).await;
        assert!(q.starts_with("amq.gen-"), "{q}");
    }
    close(conn).await;
}

/// lapin does not keep the server properties of connection.start; read them with lapin's
/// own protocol parser from a raw socket that sends only the protocol header.
#[tokio::test]
async fn server_properties_and_capabilities() {
    let u = uri();
    let mut s = std::net::TcpStream::connect((u.authority.host.as_str(), u.authority.port))
        .expect("tcp connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"AMQP\x00\x00\x09\x01").unwrap();
    let mut header = [0u8; 7];
    s.read_exact(&mut header).expect("frame header");
    assert_eq!(header[0], 1, "method frame");
    assert_eq!(u16::from_be_bytes([header[1], header[2]]), 0, "channel 0");
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    let mut payload = vec![0u8; size + 1];
    s.read_exact(&mut payload).expect("frame payload");
    assert_eq!(payload[size], 0xCE, "frame end");
    let (_, class) = protocol::parse_class(&payload[..size]).expect("parse connection.start");
    let start = match class {
        AMQPClass::Connection(protocol::connection::AMQPMethod::Start(start)) => start,
        other => panic!("expected connection.start, got {other:?}"),
    };
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    let mechanisms = String::from_utf8(start.mechanisms.as_bytes().to_vec()).unwrap();
    let mechs: Vec<&str> = mechanisms.split(' ').collect();
    assert!(
        mechs.contains(&"PLAIN") && mechs.contains(&"AMQPLAIN"),
        "{mechanisms}"
    );
    assert_eq!(start.locales.as_bytes(), b"en_US");
    let props = start.server_properties.inner();
    for key in [
        "product",
        "version",
        "platform",
        "copyright",
        "information",
        "cluster_name",
    ] {
        match props.get(key) {
            Some(AMQPValue::LongString(v)) => assert!(!v.as_bytes().is_empty(), "{key} empty"),
            other => panic!("server property {key}: {other:?}"),
        }
    }
    let caps = match props.get("capabilities") {
        Some(AMQPValue::FieldTable(t)) => t.clone(),
        other => panic!("capabilities: {other:?}"),
    };
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        assert_eq!(
            caps.inner().get(cap),
            Some(&AMQPValue::Boolean(true)),
            "capability {cap}"
        );
    }
}

#[tokio::test]
async fn amqplain_login_succeeds() {
    let mut uri = uri();
    uri.query.auth_mechanism = Some(lapin::auth::SASLMechanism::AMQPlain);
    let conn = try_connect_uri(uri).await.expect("AMQPLAIN login");
    let ch = channel(&conn).await;
    temp_queue(&ch).await;
    close(conn).await;
}

const LOGIN_REFUSED: &str = "ACCESS_REFUSED - Login was refused using authentication mechanism \
                             PLAIN. For details see the broker logfile.";

#[tokio::test]
async fn wrong_password_refused_with_403() {
    let mut uri = uri();
    uri.authority.userinfo.password = "not-the-password".into();
    assert_amqp_err(try_connect_uri(uri).await, 403, LOGIN_REFUSED);
}

#[tokio::test]
async fn unknown_user_refused_with_403() {
    let mut uri = uri();
    uri.authority.userinfo.username = "no-such-user-lapin".into();
    uri.authority.userinfo.password = "whatever".into();
    assert_amqp_err(try_connect_uri(uri).await, 403, LOGIN_REFUSED);
}

#[tokio::test]
async fn unknown_vhost_refused_with_530() {
    let vhost = uniq("vhost");
    let mut uri = uri();
    uri.vhost = vhost.clone();
    assert_amqp_err(
        try_connect_uri(uri).await,
        530,
        &format!("NOT_ALLOWED - vhost {vhost} not found"),
    );
}

#[tokio::test]
async fn a_refused_login_does_not_affect_other_connections() {
    let conn = connect().await;
    let ch = channel(&conn).await;
    let mut bad = uri();
    bad.authority.userinfo.password = "nope".into();
    assert!(try_connect_uri(bad).await.is_err());
    assert!(conn.status().connected());
    temp_queue(&ch).await;
    close(conn).await;
}

#[tokio::test]
async fn close_connection() {
    let conn = connect().await;
    let ch = channel(&conn).await;
    let q = uniq("excl");
    named_queue(&ch, &q).await;
    w!(conn.close(200, "bye")).expect("connection.close");
    // lapin moves from Closing to Closed on its I/O thread just after close-ok.
    assert!(!conn.status().connected());
    assert!(matches!(
        w!(conn.create_channel()),
        Err(lapin::Error::InvalidConnectionState(
            ConnectionState::Closing | ConnectionState::Closed
        ))
    ));
    assert!(matches!(
        w!(ch.queue_declare(&q, QueueDeclareOptions::default(), FieldTable::default())),
        Err(lapin::Error::InvalidChannelState(_))
    ));
    // The closed connection's exclusive queue goes away.
    let other = connect().await;
    wait_queue_gone(&other, &q).await;
    close(other).await;
}

#[tokio::test]
async fn close_channel_keeps_connection() {
    let conn = connect().await;
    let ch1 = channel(&conn).await;
    let ch2 = channel(&conn).await;
    w!(ch1.close(200, "OK")).expect("channel.close");
    assert!(matches!(
        ch1.status().state(),
        ChannelState::Closing | ChannelState::Closed
    ));
    assert!(matches!(
        w!(ch1.basic_qos(1, Default::default())),
        Err(lapin::Error::InvalidChannelState(_))
    ));
    assert!(conn.status().connected());
    temp_queue(&ch2).await;
    let ch3 = channel(&conn).await;
    temp_queue(&ch3).await;
    close(conn).await;
}

/// With a 1-second heartbeat both sides must send heartbeats while the connection is idle:
/// the broker would close a silent client after two missed intervals, and lapin a silent
/// broker. Waiting is the point of this test, not a synchronisation.
#[tokio::test]
async fn heartbeats_keep_an_idle_connection_alive() {
    let mut uri = uri();
    uri.query.heartbeat = Some(1);
    let conn = try_connect_uri(uri).await.expect("connect");
    assert_eq!(conn.configuration().heartbeat(), 1);
    let ch = channel(&conn).await;
    let q = temp_queue(&ch).await;
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert!(
        conn.status().connected(),
        "connection state {:?}",
        conn.status().state()
    );
    publish(&ch, "", &q, b"still alive").await;
    assert_eq!(drain(&ch, &q).await, vec![b"still alive".to_vec()]);
    close(conn).await;
}
