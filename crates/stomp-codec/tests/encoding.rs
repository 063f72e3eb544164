//! Encoding: frame layout, automatic `content-length`, frames written as given, and the
//! round trip through the decoder.

mod common;

use bytes::{Bytes, BytesMut};
use common::frame;
use warren_stomp_codec::{
    encode, encode_head, encode_tail, encode_with, Command, ContentLength, EncodeError,
    EncodeOptions, Frame, Version,
};

const V12: Version = Version::V1_2;

fn wire(f: &Frame, opts: EncodeOptions) -> Result<Vec<u8>, EncodeError> {
    let mut buf = BytesMut::new();
    encode_with(f, V12, &opts, &mut buf).map(|()| buf.to_vec())
}

const AS_GIVEN: EncodeOptions = EncodeOptions {
    content_length: ContentLength::AsGiven,
    trailing_eol: false,
};

#[test]
fn default_layout_matches_rabbitmq() {
    let f = Frame::new(Command::Message)
        .with_header("destination", "/queue/a")
        .with_header("message-id", "T_1@@session@@1")
        .with_body("hello");
    let mut buf = BytesMut::new();
    encode(&f, V12, &mut buf).unwrap();
    assert_eq!(
        &buf[..],
        b"MESSAGE\ndestination:/queue/a\nmessage-id:T_1@@session@@1\ncontent-length:5\n\nhello\0\n"
    );
}

#[test]
fn auto_content_length_replaces_any_given_and_skips_empty_bodies() {
    let f = Frame::new(Command::Send)
        .with_header("content-length", "99")
        .with_header("a", "b")
        .with_header("content-length", "1");
    assert_eq!(
        wire(&f, EncodeOptions::default()).unwrap(),
        b"SEND\na:b\n\n\0\n"
    );
    let f = f.with_body(&b"\0\0"[..]);
    assert_eq!(
        wire(&f, EncodeOptions::default()).unwrap(),
        b"SEND\na:b\ncontent-length:2\n\n\0\0\0\n"
    );
}

#[test]
fn auto_content_length_makes_nul_bodies_safe() {
    let body = Bytes::from_static(b"\0binary\0\xff");
    let f = Frame::new(Command::Send)
        .with_header("destination", "/queue/a")
        .with_body(body.clone());
    let back = frame(&wire(&f, EncodeOptions::default()).unwrap(), V12);
    assert_eq!(back.body, body);
    assert_eq!(back.header_str("content-length"), Some("9"));
}

#[test]
fn as_given_writes_headers_verbatim() {
    let f = Frame::new(Command::Send)
        .with_header("b", "2")
        .with_header("a", "1")
        .with_header("a", "dup")
        .with_body("xyz");
    assert_eq!(
        wire(&f, AS_GIVEN).unwrap(),
        b"SEND\nb:2\na:1\na:dup\n\nxyz\0"
    );
}

#[test]
fn as_given_checks_the_reader_can_find_the_body_end() {
    let nul_body = Frame::new(Command::Send).with_body(&b"a\0b"[..]);
    assert_eq!(wire(&nul_body, AS_GIVEN), Err(EncodeError::BodyContainsNul));
    assert!(wire(
        &nul_body.clone().with_header("content-length", "3"),
        AS_GIVEN
    )
    .is_ok());
    assert_eq!(
        wire(
            &nul_body.clone().with_header("content-length", "2"),
            AS_GIVEN
        ),
        Err(EncodeError::ContentLengthMismatch {
            declared: "2".into(),
            actual: 3
        })
    );
    assert!(wire(&nul_body.with_header("content-length", "-3"), AS_GIVEN).is_err());
    // A content-length that is not a number is ignored by readers, so the NUL rule
    // applies.
    let f = Frame::new(Command::Send)
        .with_header("content-length", "n/a")
        .with_body("ok");
    assert!(wire(&f, AS_GIVEN).is_ok());
}

#[test]
fn head_and_tail_frame_an_external_body() {
    let f = Frame::new(Command::Message)
        .with_header("subscription", "0")
        .with_body(vec![7u8; 1000]);
    let opts = EncodeOptions::default();
    let mut head = BytesMut::new();
    encode_head(&f, V12, &opts, &mut head).unwrap();
    let mut tail = BytesMut::new();
    encode_tail(&opts, &mut tail);
    let mut joined = head.to_vec();
    joined.extend_from_slice(&f.body);
    joined.extend_from_slice(&tail);
    let mut whole = BytesMut::new();
    encode(&f, V12, &mut whole).unwrap();
    assert_eq!(joined, whole.to_vec());
}

#[test]
fn decoded_frames_re_encode_to_the_same_frame() {
    let inputs: [&[u8]; 4] = [
        b"SEND\ndestination:/queue/a\\cb\ncontent-length:3\n\n\0\0\0\0",
        b"MESSAGE\nmessage-id:x\\\\y\\n\nfoo:bar:baz\n\nbody\0",
        b"CONNECT\naccept-version:1.2\npasscode:p\\q\n\n\0",
        b"ERROR\nmessage:bad\r\n\r\ndetails\0",
    ];
    for input in inputs {
        let f = frame(input, V12);
        let again = frame(&wire(&f, AS_GIVEN).unwrap(), V12);
        assert_eq!(again, f, "{input:?}");
    }
}

#[test]
fn frame_builder_and_accessors() {
    let mut f = Frame::new(Command::Subscribe);
    f.push_header("id", "0");
    f.push_header(String::from("ack"), String::from("client-individual"));
    assert_eq!(f.header_str("ack"), Some("client-individual"));
    assert_eq!(f.content_length(), None);
    assert!(f.command.is_client() && !f.command.allows_body());
}
