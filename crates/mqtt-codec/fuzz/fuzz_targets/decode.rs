//! Feeds arbitrary bytes to the decoder in every protocol version, as a stream of packets,
//! and checks that it never panics, consumes exactly one whole packet per success, and
//! that every packet it accepts re-encodes to bytes that decode to the same packet.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_mqtt_codec::{decode, encode, encoded_len, wire::parse_var_int, ProtocolVersion};

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

fuzz_target!(|data: &[u8]| {
    for version in VERSIONS {
        // With no size limit and with a small one, so both paths of the check run.
        for max in [0, 64] {
            decode_stream(data, version, max);
        }
    }
});

fn decode_stream(data: &[u8], version: ProtocolVersion, max: u32) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        let header = parse_var_int(buf.get(1..).unwrap_or(&[]));
        match decode(&mut buf, version, max) {
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                return;
            }
            Err(_) => return,
            Ok(Some(packet)) => {
                let (remaining, len_len) = header.unwrap().unwrap();
                assert_eq!(before - buf.len(), 1 + len_len + remaining as usize);
                let mut out = BytesMut::new();
                encode(&packet, version, &mut out).expect("a decoded packet encodes");
                assert_eq!(out.len(), encoded_len(&packet, version).unwrap());
                let again = decode(&mut out, version, 0)
                    .expect("a re-encoded packet decodes")
                    .expect("a re-encoded packet is whole");
                assert!(out.is_empty());
                assert_eq!(again, packet);
            }
        }
    }
}
