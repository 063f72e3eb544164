//! Helpers shared by the test files: sample packets of every type, and encode/decode
//! shorthands that check the codec's own invariants on the way.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use warren_mqtt_codec::{
    decode, encode, encoded_len, Auth, ByteStr, ConnAck, Connect, Disconnect, Error, Packet,
    Properties, ProtocolVersion, PubReply, Publish, QoS, ReasonCode, RetainHandling, SubAck,
    Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};

pub use ProtocolVersion::{V3_1, V3_1_1, V5};

pub const VERSIONS: [ProtocolVersion; 3] = [V3_1, V3_1_1, V5];

/// Encodes `p`, checking `encoded_len` agrees.
pub fn enc(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(p, v, &mut buf).unwrap();
    assert_eq!(
        buf.len(),
        encoded_len(p, v).unwrap(),
        "encoded_len of {p:?}"
    );
    buf
}

/// Decodes exactly one packet from `bytes`, which must hold exactly one.
pub fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<Packet, Error> {
    let mut buf = BytesMut::from(bytes);
    let p = decode(&mut buf, v, 0)?.expect("a whole packet");
    assert!(buf.is_empty(), "left over: {:?}", &buf[..]);
    Ok(p)
}

/// Encodes `p`, decodes it back and returns what came back.
pub fn round_trip(p: &Packet, v: ProtocolVersion) -> Packet {
    let bytes = enc(p, v);
    dec(&bytes, v).unwrap_or_else(|e| panic!("{p:?} in {v:?}: {e} ({bytes:02x?})"))
}

/// A packet built from a hand-written body: fixed header byte, remaining length, body.
pub fn raw(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

pub fn s(x: &str) -> ByteStr {
    ByteStr::from(x)
}

pub fn user_props() -> Vec<(ByteStr, ByteStr)> {
    vec![
        (s("region"), s("eu")),
        (s("region"), s("us")),
        (s(""), s("")),
    ]
}

pub fn connect_v5_full() -> Connect {
    Connect {
        protocol_version: V5,
        clean_start: false,
        keep_alive: 65_535,
        client_id: s("client-✓"),
        will: Some(Will {
            topic: s("last/will"),
            payload: Bytes::from_static(b"\x00gone\xFF"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties {
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(3600),
                content_type: Some(s("text/plain")),
                response_topic: Some(s("reply/here")),
                correlation_data: Some(Bytes::from_static(b"corr")),
                will_delay_interval: Some(10),
                user_properties: user_props(),
                ..Properties::default()
            },
        }),
        username: Some(s("guest")),
        password: Some(Bytes::from_static(b"\x00secret\xFF")),
        properties: Properties {
            session_expiry_interval: Some(0xFFFF_FFFF),
            receive_maximum: Some(100),
            maximum_packet_size: Some(1 << 20),
            topic_alias_maximum: Some(10),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            authentication_method: Some(s("SCRAM-SHA-256")),
            authentication_data: Some(Bytes::from_static(b"client-first")),
            user_properties: user_props(),
            ..Properties::default()
        },
    }
}

/// Every packet type, with every field and property its version allows filled in where
/// `rich`, and in its plainest form otherwise.
pub fn sample_packets(v: ProtocolVersion, rich: bool) -> Vec<Packet> {
    let v5 = v == V5 && rich;
    let props = |p: Properties| if v5 { p } else { Properties::default() };
    let reason_props = || {
        props(Properties {
            reason_string: Some(s("because")),
            user_properties: user_props(),
            ..Properties::default()
        })
    };
    let code = |c: ReasonCode| if v5 { c } else { ReasonCode::SUCCESS };

    let connect = if v == V5 && rich {
        connect_v5_full()
    } else if rich {
        Connect {
            protocol_version: v,
            clean_start: true,
            keep_alive: 60,
            client_id: s("c1"),
            will: Some(Will {
                topic: s("w"),
                payload: Bytes::from_static(b"bye"),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Properties::default(),
            }),
            username: Some(s("u")),
            password: Some(Bytes::from_static(b"p")),
            properties: Properties::default(),
        }
    } else {
        Connect::new(v, "")
    };

    let mut packets = vec![
        Packet::Connect(Box::new(connect)),
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: ReasonCode::NOT_AUTHORIZED,
            properties: Properties::default(),
        }),
        Packet::ConnAck(ConnAck {
            session_present: rich && v != V3_1,
            code: ReasonCode::SUCCESS,
            properties: props(Properties {
                session_expiry_interval: Some(7),
                assigned_client_identifier: Some(s("auto-42")),
                server_keep_alive: Some(20),
                authentication_method: Some(s("SCRAM-SHA-256")),
                authentication_data: Some(Bytes::from_static(b"server-final")),
                response_information: Some(s("resp/")),
                server_reference: Some(s("other:1883")),
                reason_string: Some(s("not today")),
                receive_maximum: Some(1),
                topic_alias_maximum: Some(0),
                maximum_qos: Some(QoS::AtLeastOnce),
                retain_available: Some(false),
                maximum_packet_size: Some(65_536),
                wildcard_subscription_available: Some(true),
                subscription_identifier_available: Some(false),
                shared_subscription_available: Some(true),
                user_properties: user_props(),
                ..Properties::default()
            }),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: rich,
            topic: s("sport/tennis/player1"),
            packet_id: 0,
            properties: Properties::default(),
            payload: Bytes::from_static(b"hello"),
        }),
        Packet::Publish(Publish {
            dup: rich,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: s("a"),
            packet_id: 1,
            properties: props(Properties {
                payload_format_indicator: Some(false),
                message_expiry_interval: Some(0),
                topic_alias: Some(65_535),
                response_topic: Some(s("r")),
                correlation_data: Some(Bytes::new()),
                subscription_identifiers: vec![1, 127, 128, 268_435_455],
                content_type: Some(s("")),
                user_properties: user_props(),
                ..Properties::default()
            }),
            payload: Bytes::new(),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: s("/"),
            packet_id: 65_535,
            properties: Properties::default(),
            payload: Bytes::from(vec![0xAB; 300]),
        }),
        Packet::PubAck(PubReply::new(1)),
        Packet::PubAck(PubReply {
            packet_id: 2,
            reason_code: code(ReasonCode::NO_MATCHING_SUBSCRIBERS),
            properties: Properties::default(),
        }),
        Packet::PubRec(PubReply {
            packet_id: 3,
            reason_code: code(ReasonCode::QUOTA_EXCEEDED),
            properties: reason_props(),
        }),
        Packet::PubRel(PubReply {
            packet_id: 4,
            reason_code: code(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND),
            properties: reason_props(),
        }),
        Packet::PubComp(PubReply {
            packet_id: 65_535,
            reason_code: ReasonCode::SUCCESS,
            properties: reason_props(),
        }),
        Packet::Subscribe(Subscribe {
            packet_id: 10,
            properties: props(Properties {
                subscription_identifiers: vec![268_435_455],
                user_properties: user_props(),
                ..Properties::default()
            }),
            subscriptions: vec![
                Subscription {
                    filter: s("a/+/c"),
                    options: SubscriptionOptions::new(QoS::AtMostOnce),
                },
                Subscription {
                    filter: s("#"),
                    options: SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        no_local: v5,
                        retain_as_published: v5,
                        retain_handling: if v5 {
                            RetainHandling::DoNotSend
                        } else {
                            RetainHandling::SendAtSubscribe
                        },
                    },
                },
                Subscription {
                    filter: s(if v5 { "$share/group/x/#" } else { "$SYS/#" }),
                    options: SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        retain_handling: if v5 {
                            RetainHandling::SendIfNewSubscription
                        } else {
                            RetainHandling::SendAtSubscribe
                        },
                        ..SubscriptionOptions::default()
                    },
                },
            ],
        }),
        Packet::SubAck(SubAck {
            packet_id: 10,
            properties: reason_props(),
            reason_codes: vec![
                ReasonCode::GRANTED_QOS_0,
                ReasonCode::GRANTED_QOS_2,
                ReasonCode::GRANTED_QOS_1,
                if v5 {
                    ReasonCode::TOPIC_FILTER_INVALID
                } else {
                    ReasonCode::UNSPECIFIED_ERROR
                },
            ],
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 11,
            properties: props(Properties {
                user_properties: user_props(),
                ..Properties::default()
            }),
            filters: vec![s("a/+/c"), s("#")],
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: 11,
            properties: reason_props(),
            reason_codes: if v == V5 {
                vec![
                    ReasonCode::SUCCESS,
                    code(ReasonCode::NO_SUBSCRIPTION_EXISTED),
                ]
            } else {
                vec![]
            },
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::default()),
    ];
    if v == V5 {
        packets.push(Packet::Disconnect(Disconnect::new(
            ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        )));
        packets.push(Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::SERVER_MOVED,
            properties: props(Properties {
                session_expiry_interval: Some(0),
                server_reference: Some(s("elsewhere")),
                reason_string: Some(s("moved")),
                user_properties: user_props(),
                ..Properties::default()
            }),
        }));
        packets.push(Packet::Auth(Auth::default()));
        packets.push(Packet::Auth(Auth {
            reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: props(Properties {
                authentication_method: Some(s("SCRAM-SHA-256")),
                authentication_data: Some(Bytes::from_static(b"more")),
                reason_string: Some(s("step 2")),
                user_properties: user_props(),
                ..Properties::default()
            }),
        }));
    }
    packets
}

/// A tiny deterministic generator (xorshift64*), so property tests need no extra crate
/// and every failure reproduces from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}
