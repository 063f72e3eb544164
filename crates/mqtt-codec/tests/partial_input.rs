//! Incremental decoding: a stream of packets cut at every byte, or fed a byte at a time,
//! decodes to the same packets as the whole stream, and nothing is consumed until a whole
//! packet is there.

mod common;

use bytes::BytesMut;
use common::*;
use warren_mqtt_codec::{decode, encode, Packet, ProtocolVersion};

fn sample_stream(v: ProtocolVersion) -> (Vec<Packet>, Vec<u8>) {
    let mut packets = sample_packets(v, true);
    packets.extend(sample_packets(v, false));
    let mut buf = BytesMut::new();
    for p in &packets {
        encode(p, v, &mut buf).unwrap();
    }
    (packets, buf.to_vec())
}

/// Decodes everything `buf` holds, checking that an `Ok(None)` consumes nothing.
fn drain(buf: &mut BytesMut, v: ProtocolVersion, out: &mut Vec<Packet>) {
    loop {
        let before = buf.len();
        match decode(buf, v, 0).unwrap() {
            Some(p) => out.push(p),
            None => {
                assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                return;
            }
        }
    }
}

#[test]
fn every_split_point() {
    for v in VERSIONS {
        let (packets, stream) = sample_stream(v);
        for cut in 0..=stream.len() {
            let mut buf = BytesMut::from(&stream[..cut]);
            let mut got = Vec::new();
            drain(&mut buf, v, &mut got);
            buf.extend_from_slice(&stream[cut..]);
            drain(&mut buf, v, &mut got);
            assert!(buf.is_empty(), "{v:?} cut at {cut}");
            assert_eq!(got, packets, "{v:?} cut at {cut}");
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    for v in VERSIONS {
        let (packets, stream) = sample_stream(v);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in &stream {
            buf.extend_from_slice(&[b]);
            drain(&mut buf, v, &mut got);
        }
        assert!(buf.is_empty());
        assert_eq!(got, packets, "{v:?}");
    }
}

#[test]
fn each_packet_alone_at_every_prefix() {
    // Every strict prefix of a packet is "need more", never an error: the decoder must not
    // judge a field it has not fully received.
    for v in VERSIONS {
        for p in sample_packets(v, true) {
            let bytes = enc(&p, v);
            for cut in 0..bytes.len() {
                let mut buf = BytesMut::from(&bytes[..cut]);
                assert_eq!(decode(&mut buf, v, 0), Ok(None), "{p:?} cut at {cut}");
            }
        }
    }
}
