//! The remaining length: every boundary of the variable byte integer, the largest packet
//! MQTT can frame, the fifth byte that makes it malformed, and the size limit applied from
//! the fixed header alone.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use warren_mqtt_codec::{
    decode, encode, encoded_len, EncodeError, Error, Packet, Publish, MAX_PACKET_SIZE,
};

/// A QoS 0 PUBLISH to "t" (2 + 1 bytes of topic) whose remaining length is `remaining`.
fn publish_with_remaining(remaining: usize) -> Packet {
    Packet::Publish(Publish::new("t", Bytes::from(vec![0x5A; remaining - 3])))
}

fn check_boundary(remaining: usize, len_bytes: usize, header: &[u8]) {
    let p = publish_with_remaining(remaining);
    let mut buf = BytesMut::new();
    encode(&p, V3_1_1, &mut buf).unwrap();
    assert_eq!(buf.len(), 1 + len_bytes + remaining);
    assert_eq!(encoded_len(&p, V3_1_1).unwrap(), buf.len());
    assert_eq!(&buf[..1 + len_bytes], header, "{remaining}");
    // One byte short of the packet asks for more; the whole packet decodes.
    let last = buf.split_off(buf.len() - 1);
    assert_eq!(decode(&mut buf, V3_1_1, 0).unwrap(), None);
    buf.unsplit(last);
    let got = decode(&mut buf, V3_1_1, 0).unwrap().unwrap();
    assert!(buf.is_empty());
    let Packet::Publish(got) = got else { panic!() };
    assert_eq!(got.payload.len(), remaining - 3);
}

#[test]
fn one_byte() {
    check_boundary(3, 1, &[0x30, 0x03]);
    check_boundary(127, 1, &[0x30, 0x7F]);
}

#[test]
fn two_bytes() {
    check_boundary(128, 2, &[0x30, 0x80, 0x01]);
    check_boundary(16_383, 2, &[0x30, 0xFF, 0x7F]);
}

#[test]
fn three_bytes() {
    check_boundary(16_384, 3, &[0x30, 0x80, 0x80, 0x01]);
    check_boundary(2_097_151, 3, &[0x30, 0xFF, 0xFF, 0x7F]);
}

#[test]
fn four_bytes() {
    check_boundary(2_097_152, 4, &[0x30, 0x80, 0x80, 0x80, 0x01]);
}

#[test]
fn largest_packet() {
    // 268,435,455: the largest remaining length, a 256 MiB packet.
    check_boundary(268_435_455, 4, &[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert_eq!(MAX_PACKET_SIZE, 268_435_455 + 5);
}

#[test]
fn one_past_the_largest_cannot_be_encoded() {
    let p = Packet::Publish(Publish::new("t", Bytes::from(vec![0; 268_435_453])));
    assert_eq!(
        encoded_len(&p, V3_1_1),
        Err(EncodeError::PacketTooLarge {
            remaining_length: 268_435_456
        })
    );
    let mut buf = BytesMut::new();
    assert!(encode(&p, V3_1_1, &mut buf).is_err());
    assert!(buf.is_empty());
}

#[test]
fn fifth_byte_is_malformed() {
    for v in VERSIONS {
        // Known as soon as the fourth byte shows a continuation bit.
        let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF][..]);
        let e = decode(&mut buf, v, 0).unwrap_err();
        assert_eq!(e, Error::MalformedVarInt);
        assert!(e.is_malformed());
        let mut buf = BytesMut::from(&[0xC0, 0x80, 0x80, 0x80, 0x80, 0x01][..]);
        assert_eq!(decode(&mut buf, v, 0), Err(Error::MalformedVarInt));
    }
}

#[test]
fn incomplete_length_waits() {
    for prefix in [
        &[0x30][..],
        &[0x30, 0x80],
        &[0x30, 0xFF, 0xFF],
        &[0x30, 0xFF, 0xFF, 0xFF],
    ] {
        let mut buf = BytesMut::from(prefix);
        assert_eq!(decode(&mut buf, V3_1_1, 0), Ok(None));
        assert_eq!(buf.len(), prefix.len(), "nothing consumed");
    }
}

#[test]
fn size_limit_counts_the_fixed_header() {
    // Remaining length 127 takes one length byte: 1 + 1 + 127 = 129 bytes in all.
    let p = publish_with_remaining(127);
    let bytes = enc(&p, V3_1_1);
    assert_eq!(bytes.len(), 129);
    let mut ok = bytes.clone();
    assert!(decode(&mut ok, V3_1_1, 129).unwrap().is_some());
    let mut too_big = bytes.clone();
    let e = decode(&mut too_big, V3_1_1, 128).unwrap_err();
    assert_eq!(
        e,
        Error::PacketTooLarge {
            size: 129,
            max: 128
        }
    );
    assert_eq!(e.reason_code().0, 0x95);
}

#[test]
fn size_limit_applies_before_the_body_arrives() {
    // Only the fixed header of a 256 MiB packet: refused at once, nothing buffered.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    assert_eq!(
        decode(&mut buf, V5, 1 << 20),
        Err(Error::PacketTooLarge {
            size: MAX_PACKET_SIZE,
            max: 1 << 20
        })
    );
    assert!(buf.capacity() < 1 << 20);
}

#[test]
fn waiting_for_a_body_reserves_room_for_it() {
    let mut buf = BytesMut::from(&[0x30, 0x80, 0x08, 0, 1, b't'][..]);
    assert_eq!(decode(&mut buf, V3_1_1, 0), Ok(None));
    assert!(buf.capacity() >= 3 + 1024);
    assert_eq!(buf.len(), 6);
}
