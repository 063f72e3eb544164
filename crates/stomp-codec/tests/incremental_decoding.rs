//! Incremental decoding: a stream split at any point, or fed one octet at a time, decodes
//! to exactly what it decodes to in one piece; the stateless `decode` function agrees with
//! the resumable `Decoder`.

mod common;

use bytes::BytesMut;
use common::{run, run_chunked, Outcome};
use warren_stomp_codec::{decode, Decoded, Limits, Version};

/// A stream exercising every path: noise, heart-beats (LF and CR LF), CRLF frames,
/// escapes, repeated headers, content-length bodies holding NULs, NUL-terminated bodies,
/// CONNECT (unescaped), an unknown command, empty bodies.
const SAMPLE: &[u8] =
    b"\0\nCONNECT\r\naccept-version:1.1,1.2\r\nhost:/\r\npasscode:a\\b\r\n\r\n\0\n\
SEND\ndestination:/queue/a\ncontent-length:5\nreceipt:1\nreceipt:2\n\na\0b\0c\0\n\r\n\
SUBSCRIBE\r\nid:0\r\ndestination:/topic/x\\cy\r\nack:client\r\n\r\n\0\
MESSAGE\nsubscription:0\nmessage-id:m\\n1\n\nno length here\0\0\0\
BOGUS\nx:y\n\nignored\0\
ACK\nid:m\\n1\n\n\0\
SEND\ndestination:/queue/b\ncontent-length:0\n\n\0\n\
DISCONNECT\nreceipt:77\n\n\0\n";

fn whole() -> Outcome {
    let out = run(SAMPLE, Version::V1_2);
    assert_eq!(out.error, None);
    assert_eq!(out.left, 0);
    out
}

#[test]
fn sample_decodes_as_expected() {
    let out = whole();
    let frames = out.frames();
    let commands: Vec<&str> = frames.iter().map(|f| f.command.as_str()).collect();
    // The unknown command shows up as the test helper's ERROR marker.
    assert_eq!(
        commands,
        [
            "CONNECT",
            "SEND",
            "SUBSCRIBE",
            "MESSAGE",
            "ERROR",
            "ACK",
            "SEND",
            "DISCONNECT"
        ]
    );
    assert_eq!(frames[0].header_str("passcode"), Some("a\\b"));
    assert_eq!(frames[1].body.as_ref(), b"a\0b\0c");
    assert_eq!(frames[1].header_str("receipt"), Some("1"));
    assert_eq!(frames[2].header_str("destination"), Some("/topic/x:y"));
    assert_eq!(frames[3].header_str("message-id"), Some("m\n1"));
    assert_eq!(frames[3].body.as_ref(), b"no length here");
    assert_eq!(frames[4].header_str("unknown-command"), Some("BOGUS"));
    assert_eq!(out.heartbeats(), 6);
}

#[test]
fn every_single_split_point() {
    let expected = whole();
    for at in 0..=SAMPLE.len() {
        assert_eq!(
            run_chunked(SAMPLE, &[at], Version::V1_2, Limits::default()),
            expected,
            "split at {at}"
        );
    }
}

#[test]
fn every_pair_of_split_points() {
    let expected = whole();
    for a in 0..=SAMPLE.len() {
        for b in 0..=SAMPLE.len() - a {
            assert_eq!(
                run_chunked(SAMPLE, &[a, b], Version::V1_2, Limits::default()),
                expected,
                "splits at {a} and {}",
                a + b
            );
        }
    }
}

#[test]
fn one_octet_at_a_time() {
    let chunks = vec![1; SAMPLE.len()];
    assert_eq!(
        run_chunked(SAMPLE, &chunks, Version::V1_2, Limits::default()),
        whole()
    );
}

#[test]
fn stateless_decode_agrees_with_the_decoder() {
    // Feed one octet at a time to the stateless function, which rescans from the start
    // of the partial frame each call.
    let limits = Limits::default();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for &b in SAMPLE {
        buf.extend_from_slice(&[b]);
        loop {
            match decode(&mut buf, Version::V1_2, &limits) {
                Ok(Some(d)) => items.push(d),
                Ok(None) => break,
                Err(e) => {
                    assert!(!e.is_fatal(), "{e}");
                }
            }
        }
    }
    assert!(buf.is_empty());
    let expected: Vec<Decoded> = whole()
        .items
        .into_iter()
        .filter(|d| !matches!(d, Decoded::Frame(f) if f.header("unknown-command").is_some()))
        .collect();
    assert_eq!(items, expected);
}

#[test]
fn version_change_mid_frame_rescans() {
    use warren_stomp_codec::Decoder;
    let mut d = Decoder::new(Version::V1_0, Limits::default());
    let mut buf = BytesMut::from(&b"SEND\na:x\\ny\n"[..]);
    assert_eq!(d.decode(&mut buf), Ok(None));
    d.set_version(Version::V1_2);
    buf.extend_from_slice(b"\n\0");
    let Some(Decoded::Frame(f)) = d.decode(&mut buf).unwrap() else {
        panic!()
    };
    assert_eq!(f.header_str("a"), Some("x\ny"));
}

#[test]
fn large_body_arriving_in_many_reads_is_scanned_once() {
    // Not a timing test: checks that a 4 MiB NUL-terminated body fed in 1 KiB reads
    // decodes correctly (the resumable scan is what keeps this fast).
    let mut input = b"SEND\ndestination:/queue/big\n\n".to_vec();
    input.resize(input.len() + (4 << 20), b'x');
    input.push(0);
    let chunks = vec![1024; input.len() / 1024 + 1];
    let out = run_chunked(&input, &chunks, Version::V1_2, Limits::default());
    assert_eq!(out.error, None);
    assert_eq!(out.frames()[0].body.len(), 4 << 20);
}
