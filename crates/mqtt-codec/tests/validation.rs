//! Every rule the decoder enforces, one test per rule family, each checking the error
//! *and* the reason code a broker would answer it with.

mod common;

use bytes::BytesMut;
use common::*;
use warren_mqtt_codec::{decode, Error, Packet, PacketType, ProtocolVersion, ReasonCode};

fn err(bytes: &[u8], v: ProtocolVersion) -> Error {
    match dec(bytes, v) {
        Ok(p) => panic!("{bytes:02x?} decoded in {v:?} as {p:?}"),
        Err(e) => e,
    }
}

fn ok(bytes: &[u8], v: ProtocolVersion) -> Packet {
    dec(bytes, v).unwrap_or_else(|e| panic!("{bytes:02x?} in {v:?}: {e}"))
}

const MALFORMED: ReasonCode = ReasonCode::MALFORMED_PACKET;
const PROTOCOL: ReasonCode = ReasonCode::PROTOCOL_ERROR;

/// A CONNECT body: protocol name, level, flags, keep alive 0, then `rest`.
fn connect(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0, 0]);
    body.extend_from_slice(rest);
    raw(0x10, &body)
}

// ---- fixed header --------------------------------------------------------------------

#[test]
fn packet_type_0_is_malformed() {
    for v in VERSIONS {
        let e = err(&[0x00, 0x00], v);
        assert_eq!(e, Error::InvalidPacketType(0));
        assert_eq!(e.reason_code(), MALFORMED);
    }
}

#[test]
fn auth_exists_only_in_v5() {
    assert_eq!(err(&[0xF0, 0], V3_1_1), Error::InvalidPacketType(15));
    assert_eq!(err(&[0xF0, 0], V3_1), Error::InvalidPacketType(15));
    assert!(matches!(ok(&[0xF0, 0], V5), Packet::Auth(_)));
}

#[test]
fn garbage_is_refused_from_the_first_byte() {
    // No remaining length yet: the first byte alone decides.
    for first in [0x00, 0x0F, 0x21, 0x36, 0x80, 0xC1] {
        let mut buf = BytesMut::from(&[first][..]);
        assert!(decode(&mut buf, V3_1_1, 0).is_err(), "{first:#04x}");
    }
}

#[test]
fn reserved_header_flags() {
    // (first byte with bad flags, body that is otherwise fine)
    let cases: &[(u8, &[u8])] = &[
        (0x21, &[0, 0]),
        (0x41, &[0, 1]),
        (0x58, &[0, 1]),
        (0x60, &[0, 1]),
        (0x63, &[0, 1]),
        (0x72, &[0, 1]),
        (0x80, &[0, 1, 0, 1, b'a', 0]),
        (0x83, &[0, 1, 0, 1, b'a', 0]),
        (0x91, &[0, 1, 0]),
        (0xA0, &[0, 1, 0, 1, b'a']),
        (0xB4, &[0, 1]),
        (0xC1, &[]),
        (0xD2, &[]),
        (0xE8, &[]),
    ];
    for &(first, body) in cases {
        // MQTT 5 bodies of the acks may carry more, but these are the same in 3.1.1 and 5
        // except for SUBSCRIBE / UNSUBSCRIBE / SUBACK (property length), added below.
        let v3 = raw(first, body);
        let e = err(&v3, V3_1_1);
        assert!(
            matches!(e, Error::InvalidHeaderFlags { flags, .. } if flags == first & 0x0F),
            "{first:#04x}: {e:?}"
        );
        assert_eq!(e.reason_code(), MALFORMED);
    }
    // CONNECT's flags are checked once the level is known, 3.1.1 and 5 alike.
    let mut c = connect(b"MQTT", 4, 0x02, &[0, 0]);
    c[0] = 0x11;
    assert_eq!(
        err(&c, V3_1_1),
        Error::InvalidHeaderFlags {
            packet_type: PacketType::Connect,
            flags: 1
        }
    );
    let mut c = connect(b"MQTT", 5, 0x02, &[0, 0, 0]);
    c[0] = 0x18;
    assert!(matches!(err(&c, V5), Error::InvalidHeaderFlags { .. }));
}

#[test]
fn v3_1_has_no_reserved_flag_rule() {
    // A 3.1 client retrying SUBSCRIBE sets DUP; PUBREL and UNSUBSCRIBE likewise.
    assert!(matches!(
        ok(&raw(0x8A, &[0, 1, 0, 1, b'a', 0]), V3_1),
        Packet::Subscribe(_)
    ));
    assert!(matches!(ok(&raw(0x6A, &[0, 1]), V3_1), Packet::PubRel(_)));
    assert!(matches!(ok(&raw(0x60, &[0, 1]), V3_1), Packet::PubRel(_)));
    let mut c = connect(b"MQIsdp", 3, 0x02, &[0, 0]);
    c[0] = 0x12;
    assert!(matches!(ok(&c, V3_1), Packet::Connect(_)));
}

#[test]
fn publish_qos_3_is_malformed() {
    for v in VERSIONS {
        let mut buf = BytesMut::from(&[0x36][..]);
        let e = decode(&mut buf, v, 0).unwrap_err();
        assert_eq!(e, Error::InvalidQoS);
        assert_eq!(e.reason_code(), MALFORMED);
    }
}

#[test]
fn dup_on_qos_0_is_malformed() {
    let p = raw(0x38, &[0, 1, b't']);
    assert!(matches!(
        err(&p, V3_1_1),
        Error::InvalidHeaderFlags {
            packet_type: PacketType::Publish,
            flags: 8
        }
    ));
    let p5 = raw(0x38, &[0, 1, b't', 0]);
    assert!(matches!(err(&p5, V5), Error::InvalidHeaderFlags { .. }));
    // 3.1 only said DUP applies to QoS > 0; it does not reject it.
    assert!(matches!(ok(&p, V3_1), Packet::Publish(p) if p.dup));
}

// ---- strings -------------------------------------------------------------------------

#[test]
fn strings_must_be_utf8_without_nul() {
    for topic in [&b"a\0b"[..], b"\xFF", b"\xED\xA0\x80", b"\xC0\xAF"] {
        let mut body = vec![0, topic.len() as u8];
        body.extend_from_slice(topic);
        for v in VERSIONS {
            let mut b = body.clone();
            if v == V5 {
                b.push(0);
            }
            let e = err(&raw(0x30, &b), v);
            assert_eq!(e, Error::InvalidUtf8, "{topic:?}");
            assert_eq!(e.reason_code(), MALFORMED);
        }
    }
    // Client id, user name, will topic, property strings, user property keys.
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x02, &[0, 1, 0]), V3_1_1),
        Error::InvalidUtf8
    );
    assert_eq!(
        err(
            &connect(b"MQTT", 4, 0x82, &[0, 1, b'c', 0, 1, 0xFF]),
            V3_1_1
        ),
        Error::InvalidUtf8
    );
    assert_eq!(
        err(&raw(0x30, &[0, 1, b't', 6, 0x26, 0, 1, 0, 0, 0]), V5),
        Error::InvalidUtf8
    );
}

// ---- CONNECT -------------------------------------------------------------------------

#[test]
fn connect_protocol_name_and_level() {
    let e = err(&connect(b"MQTX", 4, 0x02, &[0, 0]), V3_1_1);
    assert_eq!(e, Error::InvalidProtocolName);
    assert_eq!(e.reason_code(), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
    for (name, level) in [
        (&b"MQTT"[..], 3),
        (b"MQTT", 6),
        (b"MQTT", 0),
        (b"MQIsdp", 4),
        (b"MQIsdp", 5),
    ] {
        let e = err(&connect(name, level, 0x02, &[0, 0]), V3_1_1);
        assert_eq!(e, Error::UnsupportedProtocolVersion(level));
        assert_eq!(e.reason_code().0, 0x84);
    }
}

#[test]
fn connect_reserved_flag() {
    for (v, level) in [(V3_1_1, 4), (V5, 5)] {
        let rest: &[u8] = if v == V5 { &[0, 0, 0] } else { &[0, 0] };
        let e = err(&connect(b"MQTT", level, 0x03, rest), v);
        assert_eq!(e, Error::InvalidConnectFlags(0x03));
        assert_eq!(e.reason_code(), MALFORMED);
    }
    // 3.1 does not define the bit; it is ignored.
    assert!(matches!(
        ok(&connect(b"MQIsdp", 3, 0x03, &[0, 1, b'c']), V3_1),
        Packet::Connect(_)
    ));
}

#[test]
fn connect_will_flags() {
    // Will QoS 3 (with the will flag), will QoS 1 without it, will retain without it.
    for flags in [0x1C, 0x08, 0x20] {
        let e = err(&connect(b"MQTT", 4, flags, &[0, 0]), V3_1_1);
        assert_eq!(e, Error::InvalidConnectFlags(flags), "{flags:#04x}");
        assert!(e.is_malformed());
    }
}

#[test]
fn connect_password_without_username() {
    let e = err(&connect(b"MQTT", 4, 0x42, &[0, 0, 0, 1, b'p']), V3_1_1);
    assert_eq!(e, Error::PasswordWithoutUsername);
    assert_eq!(e.reason_code(), PROTOCOL);
    // MQTT 5 allows it.
    let Packet::Connect(c) = ok(&connect(b"MQTT", 5, 0x42, &[0, 0, 0, 0, 1, b'p']), V5) else {
        panic!()
    };
    assert_eq!(c.username, None);
    assert_eq!(&c.password.unwrap()[..], b"p");
}

#[test]
fn connect_will_topic_is_a_topic_name() {
    for topic in [&b"a/#"[..], b"+", b""] {
        let mut rest = vec![0, 1, b'c', 0, topic.len() as u8];
        rest.extend_from_slice(topic);
        rest.extend_from_slice(&[0, 0]);
        let e = err(&connect(b"MQTT", 4, 0x06, &rest), V3_1_1);
        assert_eq!(e, Error::TopicNameInvalid);
        assert_eq!(e.reason_code(), ReasonCode::TOPIC_NAME_INVALID);
    }
}

#[test]
fn connect_truncated_and_trailing() {
    // User name flag without a user name.
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x82, &[0, 1, b'c']), V3_1_1),
        Error::Truncated
    );
    // Will flag without will topic and message.
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x06, &[0, 1, b'c']), V3_1_1),
        Error::Truncated
    );
    // A byte after the client id.
    let e = err(&connect(b"MQTT", 4, 0x02, &[0, 1, b'c', 9]), V3_1_1);
    assert_eq!(e, Error::TrailingBytes);
    assert!(e.is_malformed());
    // Cut inside the protocol name.
    assert_eq!(
        err(&raw(0x10, &[0, 4, b'M', b'Q']), V3_1_1),
        Error::Truncated
    );
}

#[test]
fn connect_v5_properties() {
    // Will Delay Interval belongs to the will, not to CONNECT.
    let e = err(&connect(b"MQTT", 5, 0x02, &[5, 0x18, 0, 0, 0, 1, 0, 0]), V5);
    assert_eq!(
        e,
        Error::PropertyNotAllowed {
            property: 0x18,
            packet_type: PacketType::Connect
        }
    );
    assert_eq!(e.reason_code(), MALFORMED);
    // Session Expiry Interval belongs to CONNECT, not to the will.
    let rest = [0, 0, 1, b'c', 5, 0x11, 0, 0, 0, 1, 0, 1, b'w', 0, 0];
    assert!(matches!(
        err(&connect(b"MQTT", 5, 0x06, &rest), V5),
        Error::PropertyNotAllowed { property: 0x11, .. }
    ));
    // Authentication Data without Authentication Method.
    let e = err(&connect(b"MQTT", 5, 0x02, &[4, 0x16, 0, 1, 7, 0, 0]), V5);
    assert_eq!(e, Error::InvalidPropertyValue(0x16));
    assert_eq!(e.reason_code(), PROTOCOL);
    // Receive Maximum twice.
    let e = err(
        &connect(b"MQTT", 5, 0x02, &[6, 0x21, 0, 1, 0x21, 0, 1, 0, 0]),
        V5,
    );
    assert_eq!(e, Error::DuplicateProperty(0x21));
    assert_eq!(e.reason_code(), PROTOCOL);
}

// ---- CONNACK -------------------------------------------------------------------------

#[test]
fn connack_flags_and_codes() {
    assert_eq!(
        err(&[0x20, 2, 0x02, 0], V3_1_1),
        Error::InvalidConnAckFlags(2)
    );
    assert_eq!(
        err(&[0x20, 3, 0x80, 0, 0], V5),
        Error::InvalidConnAckFlags(0x80)
    );
    // 3.1 called the byte reserved and never used it.
    assert!(matches!(ok(&[0x20, 2, 0xFF, 0], V3_1), Packet::ConnAck(c) if !c.session_present));
    // 3.x return codes stop at 5.
    assert_eq!(
        err(&[0x20, 2, 0, 6], V3_1_1),
        Error::InvalidReasonCode {
            packet_type: PacketType::ConnAck,
            code: 6
        }
    );
    // 0x01 is not a CONNACK reason code in 5; 0x8B (server shutting down) neither.
    for code in [0x01, 0x8B, 0x92] {
        assert!(matches!(
            err(&[0x20, 3, 0, code, 0], V5),
            Error::InvalidReasonCode { .. }
        ));
    }
    // MQTT 5 CONNACK always has properties.
    assert_eq!(err(&[0x20, 2, 0, 0], V5), Error::Truncated);
}

// ---- PUBLISH -------------------------------------------------------------------------

#[test]
fn publish_topic_name_rules() {
    for topic in [&b"a/+"[..], b"#", b"a/#", b"a+b"] {
        let mut body = vec![0, topic.len() as u8];
        body.extend_from_slice(topic);
        let e = err(&raw(0x30, &body), V3_1_1);
        assert_eq!(e, Error::TopicNameInvalid);
        assert_eq!(e.reason_code().0, 0x90);
    }
    // Empty topic: a Protocol Error, in 5 unless a Topic Alias stands in for it.
    assert_eq!(err(&raw(0x30, &[0, 0]), V3_1_1), Error::EmptyTopicName);
    let e = err(&raw(0x30, &[0, 0, 0]), V5);
    assert_eq!(e, Error::EmptyTopicName);
    assert_eq!(e.reason_code(), PROTOCOL);
    assert!(matches!(
        ok(&raw(0x30, &[0, 0, 3, 0x23, 0, 1]), V5),
        Packet::Publish(_)
    ));
}

#[test]
fn publish_packet_id() {
    for first in [0x32, 0x34] {
        let e = err(&raw(first, &[0, 1, b't', 0, 0]), V3_1_1);
        assert_eq!(e, Error::ZeroPacketId);
        assert_eq!(e.reason_code(), PROTOCOL);
    }
    // QoS 0 has none: those two bytes are payload.
    let Packet::Publish(p) = ok(&raw(0x30, &[0, 1, b't', 0, 0]), V3_1_1) else {
        panic!()
    };
    assert_eq!((p.packet_id, &p.payload[..]), (0, &[0u8, 0][..]));
    // QoS 1 cut before its packet id.
    assert_eq!(err(&raw(0x32, &[0, 1, b't', 0]), V3_1_1), Error::Truncated);
}

#[test]
fn publish_v5_properties() {
    let e = err(&raw(0x30, &[0, 1, b't', 3, 0x23, 0, 0]), V5);
    assert_eq!(e, Error::TopicAliasInvalid);
    assert_eq!(e.reason_code().0, 0x94);
    assert!(matches!(
        err(&raw(0x30, &[0, 1, b't', 5, 0x11, 0, 0, 0, 0]), V5),
        Error::PropertyNotAllowed {
            property: 0x11,
            packet_type: PacketType::Publish
        }
    ));
    assert_eq!(
        err(&raw(0x30, &[0, 1, b't', 4, 0x01, 1, 0x01, 1]), V5),
        Error::DuplicateProperty(1)
    );
    // Property length past the end of the packet.
    assert_eq!(
        err(&raw(0x30, &[0, 1, b't', 9, 0x01]), V5),
        Error::Truncated
    );
    // A five-byte property length.
    assert_eq!(
        err(&raw(0x30, &[0, 1, b't', 0x80, 0x80, 0x80, 0x80, 0x01]), V5),
        Error::MalformedVarInt
    );
    // Subscription identifiers repeat in PUBLISH, but never 0.
    assert_eq!(
        err(&raw(0x30, &[0, 1, b't', 2, 0x0B, 0]), V5),
        Error::InvalidPropertyValue(0x0B)
    );
}

#[test]
fn publish_topic_truncated() {
    assert_eq!(err(&raw(0x30, &[0, 5, b'a']), V3_1_1), Error::Truncated);
    assert_eq!(err(&raw(0x30, &[0]), V3_1_1), Error::Truncated);
}

// ---- PUBACK, PUBREC, PUBREL, PUBCOMP -------------------------------------------------

#[test]
fn publish_replies() {
    for first in [0x40, 0x50, 0x62, 0x70] {
        // Packet id 0.
        assert_eq!(err(&raw(first, &[0, 0]), V3_1_1), Error::ZeroPacketId);
        assert_eq!(err(&raw(first, &[0, 0]), V5), Error::ZeroPacketId);
        // Too short.
        assert_eq!(err(&raw(first, &[0]), V3_1_1), Error::Truncated);
        // 3.1.1 has nothing after the id.
        assert_eq!(err(&raw(first, &[0, 1, 0]), V3_1_1), Error::TrailingBytes);
        // A property block that runs past the packet, and a byte after a complete one.
        assert_eq!(err(&raw(first, &[0, 1, 0, 5]), V5), Error::Truncated);
        assert_eq!(err(&raw(first, &[0, 1, 0, 0, 0]), V5), Error::TrailingBytes);
    }
    // Reason codes per packet: 0x92 is for PUBREL / PUBCOMP, 0x10 for PUBACK / PUBREC.
    let bad = |first: u8, code: u8| err(&raw(first, &[0, 1, code]), V5);
    assert!(matches!(bad(0x40, 0x92), Error::InvalidReasonCode { .. }));
    assert!(matches!(bad(0x50, 0x92), Error::InvalidReasonCode { .. }));
    assert!(matches!(bad(0x62, 0x10), Error::InvalidReasonCode { .. }));
    let e = bad(0x70, 0x80);
    assert_eq!(
        e,
        Error::InvalidReasonCode {
            packet_type: PacketType::PubComp,
            code: 0x80
        }
    );
    assert_eq!(e.reason_code(), PROTOCOL);
    assert!(matches!(
        ok(&raw(0x62, &[0, 1, 0x92]), V5),
        Packet::PubRel(_)
    ));
    // Reason String is allowed, Topic Alias is not.
    assert!(matches!(
        ok(&raw(0x40, &[0, 1, 0x80, 4, 0x1F, 0, 1, b'x']), V5),
        Packet::PubAck(_)
    ));
    assert!(matches!(
        err(&raw(0x40, &[0, 1, 0x80, 3, 0x23, 0, 1]), V5),
        Error::PropertyNotAllowed { .. }
    ));
}

// ---- SUBSCRIBE -----------------------------------------------------------------------

#[test]
fn subscribe_needs_a_filter() {
    let e = err(&raw(0x82, &[0, 1]), V3_1_1);
    assert_eq!(e, Error::NoTopicFilters);
    assert_eq!(e.reason_code(), PROTOCOL);
    assert_eq!(err(&raw(0x82, &[0, 1, 0]), V5), Error::NoTopicFilters);
    assert_eq!(
        err(&raw(0x82, &[0, 0, 0, 1, b'a', 0]), V3_1_1),
        Error::ZeroPacketId
    );
    // A filter without its options byte.
    assert_eq!(
        err(&raw(0x82, &[0, 1, 0, 1, b'a']), V3_1_1),
        Error::Truncated
    );
}

#[test]
fn subscribe_filter_rules() {
    for filter in [&b""[..], b"a/#/b", b"a+", b"#/", b"sport/tennis#", b"a\0"] {
        let mut body = vec![0, 1, 0, filter.len() as u8];
        body.extend_from_slice(filter);
        body.push(0);
        let e = err(&raw(0x82, &body), V3_1_1);
        if filter.contains(&0) {
            assert_eq!(e, Error::InvalidUtf8);
            continue;
        }
        assert_eq!(e, Error::TopicFilterInvalid, "{filter:?}");
        assert_eq!(e.reason_code().0, 0x8F);
    }
    // Shared subscriptions are checked in 5 only.
    for filter in [&b"$share/g"[..], b"$share//a", b"$share/+/a"] {
        let mut v5 = vec![0, 1, 0, 0, filter.len() as u8];
        v5.extend_from_slice(filter);
        v5.push(0);
        assert_eq!(
            err(&raw(0x82, &v5), V5),
            Error::TopicFilterInvalid,
            "{filter:?}"
        );
        let mut v3 = vec![0, 1, 0, filter.len() as u8];
        v3.extend_from_slice(filter);
        v3.push(0);
        assert!(matches!(ok(&raw(0x82, &v3), V3_1_1), Packet::Subscribe(_)));
    }
}

#[test]
fn subscribe_options_v3() {
    for (byte, want) in [
        (0x03, Error::InvalidQoS),
        (0x04, Error::ReservedSubscriptionBits(0x04)),
        (0x80, Error::ReservedSubscriptionBits(0x80)),
    ] {
        let e = err(&raw(0x82, &[0, 1, 0, 1, b'a', byte]), V3_1_1);
        assert_eq!(e, want);
        assert!(e.is_malformed());
    }
}

#[test]
fn subscribe_options_v5() {
    let sub = |byte: u8, filter: &[u8]| {
        let mut body = vec![0, 1, 0, 0, filter.len() as u8];
        body.extend_from_slice(filter);
        body.push(byte);
        raw(0x82, &body)
    };
    // Reserved bits 6 and 7: malformed.
    for byte in [0x40, 0x80] {
        let e = err(&sub(byte, b"a"), V5);
        assert_eq!(e, Error::ReservedSubscriptionBits(byte));
        assert!(e.is_malformed());
    }
    // QoS 3 and Retain Handling 3: Protocol Errors in 5.
    for byte in [0x03, 0x30] {
        let e = err(&sub(byte, b"a"), V5);
        assert_eq!(e, Error::InvalidSubscriptionOptions(byte));
        assert_eq!(e.reason_code(), PROTOCOL);
    }
    // No Local on a shared subscription.
    assert_eq!(
        err(&sub(0x04, b"$share/g/a"), V5),
        Error::InvalidSubscriptionOptions(0x04)
    );
    assert!(matches!(ok(&sub(0x04, b"a"), V5), Packet::Subscribe(_)));
    // The other options are fine on a shared subscription (0x2A: RH 2, RAP, QoS 2).
    assert!(matches!(
        ok(&sub(0x2A, b"$share/g/a"), V5),
        Packet::Subscribe(_)
    ));
}

#[test]
fn subscribe_v5_properties() {
    let sub = |props: &[u8]| {
        let mut body = vec![0, 1];
        body.extend_from_slice(props);
        body.extend_from_slice(&[0, 1, b'a', 0]);
        raw(0x82, &body)
    };
    assert_eq!(
        err(&sub(&[4, 0x0B, 1, 0x0B, 2]), V5),
        Error::DuplicateProperty(0x0B)
    );
    assert_eq!(
        err(&sub(&[2, 0x0B, 0]), V5),
        Error::InvalidPropertyValue(0x0B)
    );
    assert!(matches!(
        err(&sub(&[3, 0x23, 0, 1]), V5),
        Error::PropertyNotAllowed { .. }
    ));
    assert!(matches!(ok(&sub(&[2, 0x0B, 5]), V5), Packet::Subscribe(_)));
}

// ---- SUBACK, UNSUBSCRIBE, UNSUBACK ---------------------------------------------------

#[test]
fn suback_codes() {
    assert_eq!(err(&raw(0x90, &[0, 1]), V3_1_1), Error::NoReasonCodes);
    assert_eq!(err(&raw(0x90, &[0, 1, 0]), V5), Error::NoReasonCodes);
    // 3.1.1 knows 0, 1, 2 and 0x80 only.
    for code in [0x03, 0x81, 0x8F] {
        assert!(matches!(
            err(&raw(0x90, &[0, 1, code]), V3_1_1),
            Error::InvalidReasonCode { .. }
        ));
    }
    assert!(matches!(
        err(&raw(0x90, &[0, 1, 0, 0x10]), V5),
        Error::InvalidReasonCode { .. }
    ));
    assert!(matches!(
        ok(&raw(0x90, &[0, 1, 0, 0x8F]), V5),
        Packet::SubAck(_)
    ));
}

#[test]
fn unsubscribe_rules() {
    assert_eq!(err(&raw(0xA2, &[0, 1]), V3_1_1), Error::NoTopicFilters);
    assert_eq!(
        err(&raw(0xA2, &[0, 0, 0, 1, b'a']), V3_1_1),
        Error::ZeroPacketId
    );
    assert_eq!(
        err(&raw(0xA2, &[0, 1, 0, 3, b'a', b'#', b'b']), V3_1_1),
        Error::TopicFilterInvalid
    );
    // Only User Property is allowed in UNSUBSCRIBE.
    assert!(matches!(
        err(&raw(0xA2, &[0, 1, 4, 0x1F, 0, 1, b'x', 0, 1, b'a']), V5),
        Error::PropertyNotAllowed { .. }
    ));
}

#[test]
fn unsuback_rules() {
    assert_eq!(err(&raw(0xB0, &[0, 1, 0]), V3_1_1), Error::TrailingBytes);
    assert_eq!(err(&raw(0xB0, &[0, 1, 0]), V5), Error::NoReasonCodes);
    assert!(matches!(
        err(&raw(0xB0, &[0, 1, 0, 0x01]), V5),
        Error::InvalidReasonCode { .. }
    ));
}

// ---- PINGREQ, PINGRESP, DISCONNECT, AUTH ---------------------------------------------

#[test]
fn bodiless_packets_have_no_body() {
    for v in VERSIONS {
        assert_eq!(err(&[0xC0, 1, 0], v), Error::TrailingBytes);
        assert_eq!(err(&[0xD0, 1, 0], v), Error::TrailingBytes);
    }
    assert_eq!(err(&[0xE0, 1, 0], V3_1_1), Error::TrailingBytes);
    assert_eq!(err(&[0xE0, 1, 0], V3_1), Error::TrailingBytes);
}

#[test]
fn disconnect_v5() {
    assert!(matches!(
        err(&[0xE0, 1, 0x01], V5),
        Error::InvalidReasonCode { .. }
    ));
    // Topic Alias is not a DISCONNECT property; Server Reference is.
    assert!(matches!(
        err(&[0xE0, 5, 0, 3, 0x23, 0, 1], V5),
        Error::PropertyNotAllowed { .. }
    ));
    assert!(matches!(
        ok(&[0xE0, 6, 0x9C, 4, 0x1C, 0, 1, b'x'], V5),
        Packet::Disconnect(_)
    ));
    assert_eq!(err(&[0xE0, 3, 0, 0, 0], V5), Error::TrailingBytes);
}

#[test]
fn auth_v5() {
    for code in [0x01, 0x80, 0x87] {
        assert!(matches!(
            err(&[0xF0, 1, code], V5),
            Error::InvalidReasonCode { .. }
        ));
    }
    assert!(matches!(
        err(&[0xF0, 5, 0x18, 4, 0x1F, 0, 1], V5),
        Error::Truncated
    ));
    assert!(matches!(
        err(&[0xF0, 4, 0x18, 2, 0x17, 1], V5),
        Error::PropertyNotAllowed { .. }
    ));
}

// ---- reason code groups ----------------------------------------------------------------

#[test]
fn every_error_maps_to_a_disconnect_or_connack_code() {
    // Each error's reason code is one a server may send in DISCONNECT or in CONNACK.
    let errors = [
        Error::MalformedVarInt,
        Error::InvalidPacketType(0),
        Error::InvalidQoS,
        Error::Truncated,
        Error::TrailingBytes,
        Error::InvalidUtf8,
        Error::DuplicateProperty(1),
        Error::ZeroPacketId,
        Error::NoTopicFilters,
        Error::EmptyTopicName,
        Error::PacketTooLarge { size: 2, max: 1 },
        Error::InvalidProtocolName,
        Error::UnsupportedProtocolVersion(9),
        Error::TopicNameInvalid,
        Error::TopicFilterInvalid,
        Error::TopicAliasInvalid,
    ];
    for e in errors {
        let code = e.reason_code();
        assert!(code.is_error(), "{e}");
        assert!(
            code.is_valid_for(PacketType::Disconnect) || code.is_valid_for(PacketType::ConnAck),
            "{e}: {code:?}"
        );
    }
}
