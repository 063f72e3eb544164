//! Known byte sequences: the examples of the MQTT 3.1.1 and 5.0 specifications, and the
//! smallest forms clients actually send. Each is decoded to the packet it stands for and,
//! where the encoder's choices (property order, shortest form) agree, encoded back to the
//! same bytes.

mod common;

use bytes::Bytes;
use common::*;
use warren_mqtt_codec::{
    peek_connect_version, Auth, ConnAck, Connect, Disconnect, Packet, Properties, ProtocolVersion,
    PubReply, Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, Subscription,
    SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};

/// Decodes `bytes` to `want` and encodes `want` back to `bytes`.
fn both_ways(bytes: &[u8], v: ProtocolVersion, want: Packet) {
    assert_eq!(dec(bytes, v).unwrap(), want);
    assert_eq!(&enc(&want, v)[..], bytes, "{want:?}");
}

#[test]
fn connect_v3_1_1_variable_header_example() {
    // 3.1.2.10: "MQTT", level 4, flags 0xCE (user name, password, will QoS 1, will flag,
    // clean session), keep alive 10; then a payload of client id, will topic, will
    // message, user name, password.
    let bytes = [
        0x10, 25, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xCE, 0x00, 0x0A, 0, 1, b'c', 0, 1,
        b'w', 0, 1, b'm', 0, 1, b'u', 0, 1, b'p',
    ];
    let want = Connect {
        protocol_version: V3_1_1,
        clean_start: true,
        keep_alive: 10,
        client_id: s("c"),
        will: Some(Will {
            topic: s("w"),
            payload: Bytes::from_static(b"m"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        }),
        username: Some(s("u")),
        password: Some(Bytes::from_static(b"p")),
        properties: Properties::default(),
    };
    both_ways(&bytes, V3_1_1, Packet::Connect(Box::new(want)));
    assert_eq!(peek_connect_version(&bytes), Some(V3_1_1));
}

#[test]
fn connect_v5_variable_header_example() {
    // 3.1.2.11: "MQTT", level 5, flags 0xC2 (user name, password, clean start), keep
    // alive 10, properties: Session Expiry Interval 10.
    let bytes = [
        0x10, 27, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xC2, 0x00, 0x0A, 0x05, 0x11, 0x00,
        0x00, 0x00, 0x0A, 0, 2, b'i', b'd', 0, 1, b'u', 0, 2, b'p', b'w',
    ];
    let want = Connect {
        protocol_version: V5,
        clean_start: true,
        keep_alive: 10,
        client_id: s("id"),
        will: None,
        username: Some(s("u")),
        password: Some(Bytes::from_static(b"pw")),
        properties: Properties {
            session_expiry_interval: Some(10),
            ..Properties::default()
        },
    };
    both_ways(&bytes, V5, Packet::Connect(Box::new(want)));
    assert_eq!(peek_connect_version(&bytes), Some(V5));
    assert_eq!(peek_connect_version(&bytes[..8]), None);
}

#[test]
fn minimal_connects() {
    // 3.1.1, clean session, keep alive 60, empty client id.
    let bytes = [
        0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 0,
    ];
    let mut want = Connect::new(V3_1_1, "");
    want.keep_alive = 60;
    both_ways(&bytes, V3_1_1, Packet::Connect(Box::new(want)));
    // 3.1: "MQIsdp", level 3, client id "test".
    let bytes = [
        0x10, 0x12, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 60, 0, 4, b't', b'e',
        b's', b't',
    ];
    let mut want = Connect::new(V3_1, "test");
    want.keep_alive = 60;
    both_ways(&bytes, V3_1, Packet::Connect(Box::new(want)));
    assert_eq!(peek_connect_version(&bytes), Some(V3_1));
    // 5, with an empty property block.
    let bytes = [
        0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 0,
    ];
    let mut want = Connect::new(V5, "");
    want.keep_alive = 60;
    both_ways(&bytes, V5, Packet::Connect(Box::new(want)));
}

#[test]
fn connack() {
    both_ways(
        &[0x20, 2, 0, 0],
        V3_1_1,
        Packet::ConnAck(ConnAck::default()),
    );
    both_ways(
        &[0x20, 2, 1, 0],
        V3_1_1,
        Packet::ConnAck(ConnAck {
            session_present: true,
            ..ConnAck::default()
        }),
    );
    both_ways(&[0x20, 3, 0, 0, 0], V5, Packet::ConnAck(ConnAck::default()));
    both_ways(
        &[0x20, 3, 0, 0x86, 0],
        V5,
        Packet::ConnAck(ConnAck {
            code: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            ..ConnAck::default()
        }),
    );
}

#[test]
fn publish_variable_header_example() {
    // 3.3.2.3: topic "a/b", packet identifier 10.
    both_ways(
        &[0x32, 9, 0, 3, b'a', b'/', b'b', 0, 10, b'h', b'i'],
        V3_1_1,
        Packet::Publish(Publish {
            qos: QoS::AtLeastOnce,
            packet_id: 10,
            ..Publish::new("a/b", &b"hi"[..])
        }),
    );
    // QoS 0 retained, empty payload.
    both_ways(
        &[0x31, 5, 0, 3, b'a', b'/', b'b'],
        V3_1_1,
        Packet::Publish(Publish {
            retain: true,
            ..Publish::new("a/b", Bytes::new())
        }),
    );
}

#[test]
fn publish_v5_properties_in_any_order() {
    // Topic Alias before Payload Format Indicator; the encoder writes them in identifier
    // order, so only the decode is compared.
    let bytes = [0x30, 10, 0, 1, b't', 5, 0x23, 0, 1, 0x01, 0x01, b'x'];
    let want = Packet::Publish(Publish {
        properties: Properties {
            topic_alias: Some(1),
            payload_format_indicator: Some(true),
            ..Properties::default()
        },
        ..Publish::new("t", &b"x"[..])
    });
    assert_eq!(dec(&bytes, V5).unwrap(), want);
    assert_eq!(
        &enc(&want, V5)[..],
        &[0x30, 10, 0, 1, b't', 5, 0x01, 0x01, 0x23, 0, 1, b'x']
    );
    // Topic alias alone with an empty topic.
    assert_eq!(
        dec(&[0x30, 6, 0, 0, 3, 0x23, 0, 7], V5).unwrap(),
        Packet::Publish(Publish {
            properties: Properties {
                topic_alias: Some(7),
                ..Properties::default()
            },
            ..Publish::new("", Bytes::new())
        })
    );
}

#[test]
fn publish_replies() {
    both_ways(&[0x40, 2, 0, 10], V3_1_1, Packet::PubAck(PubReply::new(10)));
    both_ways(&[0x50, 2, 0, 10], V3_1_1, Packet::PubRec(PubReply::new(10)));
    both_ways(&[0x62, 2, 0, 10], V3_1_1, Packet::PubRel(PubReply::new(10)));
    both_ways(
        &[0x70, 2, 0, 10],
        V3_1_1,
        Packet::PubComp(PubReply::new(10)),
    );
    both_ways(&[0x62, 2, 0, 10], V5, Packet::PubRel(PubReply::new(10)));
}

#[test]
fn subscribe_payload_example() {
    // 3.8.3: packet identifier 10, "a/b" QoS 1, "c/d" QoS 2.
    let bytes = [
        0x82, 14, 0, 10, 0, 3, b'a', b'/', b'b', 1, 0, 3, b'c', b'/', b'd', 2,
    ];
    let want = Packet::Subscribe(Subscribe {
        packet_id: 10,
        properties: Properties::default(),
        subscriptions: vec![
            Subscription {
                filter: s("a/b"),
                options: SubscriptionOptions::new(QoS::AtLeastOnce),
            },
            Subscription {
                filter: s("c/d"),
                options: SubscriptionOptions::new(QoS::ExactlyOnce),
            },
        ],
    });
    both_ways(&bytes, V3_1_1, want);
}

#[test]
fn subscribe_v5_options() {
    // 0x2E: Retain Handling 2, Retain As Published, No Local, QoS 2.
    both_ways(
        &[0x82, 9, 0, 1, 0, 0, 3, b'a', b'/', b'b', 0x2E],
        V5,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::default(),
            subscriptions: vec![Subscription {
                filter: s("a/b"),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            }],
        }),
    );
}

#[test]
fn suback_payload_example() {
    // 3.9.3: granted QoS 0, granted QoS 2, failure.
    both_ways(
        &[0x90, 5, 0, 10, 0x00, 0x02, 0x80],
        V3_1_1,
        Packet::SubAck(SubAck {
            packet_id: 10,
            properties: Properties::default(),
            reason_codes: vec![ReasonCode(0), ReasonCode(2), ReasonCode(0x80)],
        }),
    );
}

#[test]
fn unsubscribe_payload_example() {
    // 3.10.3: packet identifier 10, "a/b", "c/d".
    both_ways(
        &[
            0xA2, 12, 0, 10, 0, 3, b'a', b'/', b'b', 0, 3, b'c', b'/', b'd',
        ],
        V3_1_1,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 10,
            properties: Properties::default(),
            filters: vec![s("a/b"), s("c/d")],
        }),
    );
    both_ways(
        &[0xB0, 2, 0, 10],
        V3_1_1,
        Packet::UnsubAck(UnsubAck {
            packet_id: 10,
            ..UnsubAck::default()
        }),
    );
    both_ways(
        &[0xB0, 5, 0, 10, 0, 0x00, 0x11],
        V5,
        Packet::UnsubAck(UnsubAck {
            packet_id: 10,
            properties: Properties::default(),
            reason_codes: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
        }),
    );
}

#[test]
fn bodiless_packets() {
    for v in VERSIONS {
        both_ways(&[0xC0, 0], v, Packet::PingReq);
        both_ways(&[0xD0, 0], v, Packet::PingResp);
        both_ways(&[0xE0, 0], v, Packet::Disconnect(Disconnect::default()));
    }
}

#[test]
fn disconnect_and_auth_v5() {
    both_ways(
        &[0xE0, 7, 0x00, 5, 0x11, 0, 0, 0, 0],
        V5,
        Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::NORMAL_DISCONNECTION,
            properties: Properties {
                session_expiry_interval: Some(0),
                ..Properties::default()
            },
        }),
    );
    both_ways(
        &[0xF0, 6, 0x18, 4, 0x15, 0, 1, b'X'],
        V5,
        Packet::Auth(Auth {
            reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: Properties {
                authentication_method: Some(s("X")),
                ..Properties::default()
            },
        }),
    );
}
