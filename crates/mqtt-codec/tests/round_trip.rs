//! Every packet type encodes and decodes back to itself, in every version, in its richest
//! and its plainest form; and what each version leaves out is left out.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use warren_mqtt_codec::{
    decode, encode, encoded_len, ByteStr, ConnAck, Connect, Disconnect, EncodeError, Packet,
    PacketType, Properties, PubReply, Publish, QoS, ReasonCode, SubAck, Subscribe, Subscription,
    SubscriptionOptions, UnsubAck,
};

fn round_trip_type(t: PacketType) {
    let mut seen = 0;
    for v in VERSIONS {
        for rich in [false, true] {
            for p in sample_packets(v, rich) {
                if p.packet_type() != t {
                    continue;
                }
                assert_eq!(round_trip(&p, v), p, "{v:?}");
                seen += 1;
            }
        }
    }
    let expected_versions = if t == PacketType::Auth { 1 } else { 3 };
    assert!(seen >= 2 * expected_versions, "{t:?}: only {seen} samples");
}

macro_rules! round_trip_tests {
    ($($name:ident => $t:ident,)*) => {
        $( #[test] fn $name() { round_trip_type(PacketType::$t); } )*
    };
}

round_trip_tests! {
    connect => Connect,
    connack => ConnAck,
    publish => Publish,
    puback => PubAck,
    pubrec => PubRec,
    pubrel => PubRel,
    pubcomp => PubComp,
    subscribe => Subscribe,
    suback => SubAck,
    unsubscribe => Unsubscribe,
    unsuback => UnsubAck,
    pingreq => PingReq,
    pingresp => PingResp,
    disconnect => Disconnect,
    auth => Auth,
}

#[test]
fn a_stream_of_packets_decodes_one_at_a_time() {
    for v in VERSIONS {
        let packets = sample_packets(v, true);
        let mut buf = BytesMut::new();
        for p in &packets {
            encode(p, v, &mut buf).unwrap();
        }
        for p in &packets {
            assert_eq!(decode(&mut buf, v, 0).unwrap().as_ref(), Some(p));
        }
        assert!(buf.is_empty());
        assert_eq!(decode(&mut buf, v, 0).unwrap(), None);
    }
}

#[test]
fn connect_is_decoded_in_its_own_version() {
    for named in VERSIONS {
        let bytes = enc(&Packet::Connect(Box::new(Connect::new(named, "x"))), named);
        for passed in VERSIONS {
            match dec(&bytes, passed).unwrap() {
                Packet::Connect(c) => assert_eq!(c.protocol_version, named),
                p => panic!("{p:?}"),
            }
        }
    }
    // And the encoder writes CONNECT in the version it names, whatever it is asked for.
    let c = Packet::Connect(Box::new(Connect::new(V3_1, "x")));
    assert_eq!(enc(&c, V5), enc(&c, V3_1));
}

#[test]
fn publish_payload_is_a_slice_of_the_read_buffer() {
    let p = Packet::Publish(Publish::new("t", Bytes::from(vec![7u8; 1000])));
    for v in VERSIONS {
        let mut buf = enc(&p, v);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let Some(Packet::Publish(got)) = decode(&mut buf, v, 0).unwrap() else {
            panic!()
        };
        assert!(range.contains(&(got.payload.as_ptr() as usize)));
        assert!(range.contains(&(got.topic.as_bytes().as_ptr() as usize)));
        assert_eq!(got.payload.len(), 1000);
    }
}

#[test]
fn v3_leaves_out_what_it_does_not_have() {
    let rich = sample_packets(V5, true);
    for v in [V3_1, V3_1_1] {
        for p in &rich {
            if p.packet_type() == PacketType::Auth {
                assert_eq!(
                    encoded_len(p, v),
                    Err(EncodeError::NotInVersion {
                        packet_type: PacketType::Auth
                    })
                );
                continue;
            }
            let got = round_trip(p, v);
            // Nothing MQTT 5 survives...
            let strip = |props: &mut Properties| *props = Properties::default();
            let mut want = p.clone();
            match &mut want {
                Packet::Connect(_) => {
                    // ...except CONNECT, which is written in its own version.
                    assert_eq!(got, want);
                    continue;
                }
                Packet::ConnAck(c) => {
                    strip(&mut c.properties);
                    if v == V3_1 {
                        c.session_present = false;
                    }
                }
                Packet::Publish(x) => strip(&mut x.properties),
                Packet::PubAck(x) | Packet::PubRec(x) | Packet::PubRel(x) | Packet::PubComp(x) => {
                    strip(&mut x.properties);
                    x.reason_code = ReasonCode::SUCCESS;
                }
                Packet::Subscribe(x) => {
                    strip(&mut x.properties);
                    for s in &mut x.subscriptions {
                        s.options = SubscriptionOptions::new(s.options.qos);
                    }
                }
                Packet::SubAck(x) => {
                    strip(&mut x.properties);
                    for c in &mut x.reason_codes {
                        if c.is_error() {
                            *c = ReasonCode::UNSPECIFIED_ERROR;
                        }
                    }
                }
                Packet::Unsubscribe(x) => strip(&mut x.properties),
                Packet::UnsubAck(x) => {
                    strip(&mut x.properties);
                    x.reason_codes.clear();
                }
                Packet::Disconnect(x) => *x = Disconnect::default(),
                Packet::PingReq | Packet::PingResp | Packet::Auth(_) => {}
            }
            assert_eq!(got, want, "{v:?}");
        }
    }
}

#[test]
fn connack_codes_translate_to_v3() {
    let cases = [
        (ReasonCode::SUCCESS, 0, ReasonCode::SUCCESS),
        (
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            1,
            ReasonCode(0x84),
        ),
        (ReasonCode::CLIENT_IDENTIFIER_NOT_VALID, 2, ReasonCode(0x85)),
        (ReasonCode::SERVER_UNAVAILABLE, 3, ReasonCode(0x88)),
        (ReasonCode::SERVER_BUSY, 3, ReasonCode(0x88)),
        (ReasonCode::MALFORMED_PACKET, 3, ReasonCode(0x88)),
        (ReasonCode::BAD_USER_NAME_OR_PASSWORD, 4, ReasonCode(0x86)),
        (ReasonCode::BAD_AUTHENTICATION_METHOD, 4, ReasonCode(0x86)),
        (ReasonCode::NOT_AUTHORIZED, 5, ReasonCode(0x87)),
        (ReasonCode::BANNED, 5, ReasonCode(0x87)),
    ];
    for (code, v3, back) in cases {
        let p = Packet::ConnAck(ConnAck {
            code,
            ..ConnAck::default()
        });
        for v in [V3_1, V3_1_1] {
            let bytes = enc(&p, v);
            assert_eq!(&bytes[..], &[0x20, 2, 0, v3], "{code:?}");
            let Packet::ConnAck(got) = dec(&bytes, v).unwrap() else {
                panic!()
            };
            assert_eq!(got.code, back);
        }
    }
}

#[test]
fn shortest_forms_in_v5() {
    // PUBACK family: id only when Success without properties; id + code without them.
    let ack = Packet::PubAck(PubReply::new(1));
    assert_eq!(&enc(&ack, V5)[..], &[0x40, 2, 0, 1]);
    let ack = Packet::PubRec(PubReply {
        reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        ..PubReply::new(1)
    });
    assert_eq!(&enc(&ack, V5)[..], &[0x50, 3, 0, 1, 0x10]);
    // Success with properties still writes the code.
    let ack = Packet::PubComp(PubReply {
        properties: Properties {
            reason_string: Some(ByteStr::from("r")),
            ..Properties::default()
        },
        ..PubReply::new(1)
    });
    assert_eq!(&enc(&ack, V5)[..], &[0x70, 8, 0, 1, 0, 4, 0x1F, 0, 1, b'r']);
    // DISCONNECT and AUTH: nothing at all for Success without properties.
    assert_eq!(
        &enc(&Packet::Disconnect(Disconnect::default()), V5)[..],
        &[0xE0, 0]
    );
    assert_eq!(
        &enc(
            &Packet::Disconnect(Disconnect::new(ReasonCode::SESSION_TAKEN_OVER)),
            V5
        )[..],
        &[0xE0, 1, 0x8E]
    );
    assert_eq!(&enc(&Packet::Auth(Default::default()), V5)[..], &[0xF0, 0]);
}

#[test]
fn v5_accepts_every_optional_form() {
    // PUBACK with remaining length 2, 3, and 4 (code + empty property length).
    for body in [&[0, 5][..], &[0, 5, 0], &[0, 5, 0, 0]] {
        assert_eq!(
            dec(&raw(0x40, body), V5).unwrap(),
            Packet::PubAck(PubReply::new(5))
        );
    }
    // DISCONNECT with remaining length 0, 1, 2; AUTH likewise.
    for body in [&[][..], &[0], &[0, 0]] {
        assert_eq!(
            dec(&raw(0xE0, body), V5).unwrap(),
            Packet::Disconnect(Disconnect::default())
        );
        assert_eq!(
            dec(&raw(0xF0, body), V5).unwrap(),
            Packet::Auth(Default::default())
        );
    }
}

#[test]
fn suback_v3_failure_is_0x80() {
    let p = Packet::SubAck(SubAck {
        packet_id: 1,
        properties: Properties::default(),
        reason_codes: vec![ReasonCode::NOT_AUTHORIZED, ReasonCode::GRANTED_QOS_1],
    });
    assert_eq!(&enc(&p, V3_1_1)[..], &[0x90, 4, 0, 1, 0x80, 0x01]);
}

#[test]
fn unsuback_v3_is_just_the_id() {
    let p = Packet::UnsubAck(UnsubAck {
        packet_id: 9,
        properties: Properties::default(),
        reason_codes: vec![ReasonCode::SUCCESS],
    });
    assert_eq!(&enc(&p, V3_1_1)[..], &[0xB0, 2, 0, 9]);
}

#[test]
fn encoder_refuses_what_the_wire_cannot_carry() {
    let long = ByteStr::from("x".repeat(65_536));
    let cases = [
        Packet::Publish(Publish::new(long.clone(), Bytes::new())),
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::default(),
            subscriptions: vec![Subscription {
                filter: long.clone(),
                options: SubscriptionOptions::default(),
            }],
        }),
        Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::SUCCESS,
            properties: Properties {
                user_properties: vec![(ByteStr::from("k"), long.clone())],
                ..Properties::default()
            },
        }),
        Packet::Connect(Box::new(Connect {
            password: Some(Bytes::from(vec![0; 65_536])),
            ..Connect::new(V5, "c")
        })),
    ];
    for p in cases {
        let mut buf = BytesMut::from(&b"keep"[..]);
        assert_eq!(
            encode(&p, V5, &mut buf),
            Err(EncodeError::FieldTooLong { len: 65_536 }),
            "{p:?}"
        );
        assert_eq!(&buf[..], b"keep", "nothing written on error");
    }
    // The longest field that fits does encode.
    let ok = Packet::Publish(Publish::new(
        ByteStr::from("x".repeat(65_535)),
        Bytes::new(),
    ));
    assert_eq!(round_trip(&ok, V3_1_1), ok);
}

#[test]
fn granted_qos_orders() {
    assert_eq!(QoS::ExactlyOnce.min(QoS::AtLeastOnce), QoS::AtLeastOnce);
    assert!(QoS::AtMostOnce < QoS::AtLeastOnce);
}
