//! Header escaping by version and command: `\r \n \c \\` in 1.1 and 1.2, nothing in 1.0,
//! nothing in CONNECT / STOMP / CONNECTED; undefined sequences are errors.

mod common;

use bytes::BytesMut;
use common::{error, frame, header};
use warren_stomp_codec::{
    encode_with, Command, ContentLength, EncodeError, EncodeOptions, Error, Frame, Version,
};

fn encode(f: &Frame, v: Version) -> Result<Vec<u8>, EncodeError> {
    let mut buf = BytesMut::new();
    let opts = EncodeOptions {
        content_length: ContentLength::AsGiven,
        trailing_eol: false,
    };
    encode_with(f, v, &opts, &mut buf).map(|()| buf.to_vec())
}

#[test]
fn escapes_are_decoded_in_1_1_and_1_2() {
    for v in [Version::V1_1, Version::V1_2] {
        let f = frame(b"MESSAGE\nfoo\\cbar:a\\nb\\\\c\\cd\\re\n\n\0", v);
        assert_eq!(f.headers, vec![("foo:bar".into(), "a\nb\\c:d\re".into())]);
    }
}

#[test]
fn cr_escape_is_accepted_in_1_1() {
    // \r is a 1.2 addition; RabbitMQ accepts it whatever the version.
    let f = frame(b"SEND\na:x\\ry\n\n\0", Version::V1_1);
    assert_eq!(header(&f, "a"), Some(&b"x\ry"[..]));
}

#[test]
fn no_escaping_in_1_0() {
    let f = frame(b"SEND\na\\c:b\\n\\t\n\n\0", Version::V1_0);
    assert_eq!(f.headers, vec![("a\\c".into(), "b\\n\\t".into())]);
}

#[test]
fn connect_stomp_and_connected_are_never_unescaped() {
    for v in Version::ALL {
        for c in ["CONNECT", "STOMP", "CONNECTED"] {
            let input = format!("{c}\nlogin:guest\npasscode:a\\b\\c\n\n\0");
            let f = frame(input.as_bytes(), v);
            assert_eq!(header(&f, "passcode"), Some(&b"a\\b\\c"[..]), "{c} {v}");
        }
    }
}

#[test]
fn undefined_escape_is_an_error() {
    assert_eq!(
        error(b"SEND\na:b\\tc\n\n\0", Version::V1_2),
        Error::InvalidEscape(b't')
    );
    assert_eq!(
        error(b"SEND\na\\x:b\n\n\0", Version::V1_1),
        Error::InvalidEscape(b'x')
    );
    // A backslash right before the separating colon, or at the end of the line.
    assert_eq!(
        error(b"SEND\na\\:b\n\n\0", Version::V1_2),
        Error::InvalidEscape(b':')
    );
    assert_eq!(
        error(b"SEND\na:b\\\n\n\0", Version::V1_2),
        Error::InvalidEscape(b'\n')
    );
    assert_eq!(
        error(b"SEND\na:b\\\r\n\n\0", Version::V1_2),
        Error::InvalidEscape(b'\r')
    );
}

#[test]
fn bad_escape_fails_before_the_body_arrives() {
    let out = common::run(b"SEND\na:\\q\n\nbody still coming", Version::V1_2);
    assert_eq!(out.error, Some(Error::InvalidEscape(b'q')));
}

#[test]
fn escaped_content_length_value_is_unescaped_before_reading() {
    // An escaped LF is whitespace around the number, which is trimmed.
    let f = frame(b"SEND\ncontent-length:\\n2\n\n\0\0\0", Version::V1_2);
    assert_eq!(f.body.as_ref(), b"\0\0");
}

#[test]
fn escaped_colon_does_not_split_the_header() {
    let f = frame(b"SEND\na\\cb:c\n\n\0", Version::V1_2);
    assert_eq!(f.headers, vec![("a:b".into(), "c".into())]);
}

#[test]
fn encode_escapes_names_and_values_in_1_1_and_1_2() {
    let f = Frame::new(Command::Message).with_header("a:b\\", "x\ny\rz:w");
    for v in [Version::V1_1, Version::V1_2] {
        assert_eq!(
            encode(&f, v).unwrap(),
            b"MESSAGE\na\\cb\\\\:x\\ny\\rz\\cw\n\n\0"
        );
        assert_eq!(frame(&encode(&f, v).unwrap(), v), f);
    }
}

#[test]
fn encode_does_not_escape_in_1_0() {
    let f = Frame::new(Command::Message).with_header("a\\b", "c:d\\n");
    assert_eq!(
        encode(&f, Version::V1_0).unwrap(),
        b"MESSAGE\na\\b:c:d\\n\n\n\0"
    );
    assert_eq!(frame(&encode(&f, Version::V1_0).unwrap(), Version::V1_0), f);
}

#[test]
fn encode_does_not_escape_connect_or_connected() {
    let f = Frame::new(Command::Connected)
        .with_header("version", "1.2")
        .with_header("server", "Warren/0.1 (a\\b:c)");
    let wire = encode(&f, Version::V1_2).unwrap();
    assert_eq!(
        wire,
        b"CONNECTED\nversion:1.2\nserver:Warren/0.1 (a\\b:c)\n\n\0"
    );
    assert_eq!(frame(&wire, Version::V1_2), f);

    let f = Frame::new(Command::Connect).with_header("passcode", "p\\c");
    assert_eq!(
        encode(&f, Version::V1_2).unwrap(),
        b"CONNECT\npasscode:p\\c\n\n\0"
    );
}

#[test]
fn encode_refuses_what_cannot_be_written_unescaped() {
    let cases = [
        (Command::Send, "a", "line\nbreak"),
        (Command::Send, "a", "carriage\rreturn"),
        (Command::Send, "a:b", "colon in name"),
        (Command::Send, "a\nb", "v"),
    ];
    for (c, n, v) in cases {
        let f = Frame::new(c).with_header(n, v);
        assert_eq!(
            encode(&f, Version::V1_0),
            Err(EncodeError::Unescapable {
                name: n.as_bytes().to_vec().into(),
                version: Version::V1_0
            })
        );
        let f = Frame::new(Command::Connect).with_header(n, v);
        assert!(encode(&f, Version::V1_2).is_err());
    }
    // Nothing was written on error.
    let mut buf = BytesMut::from(&b"before"[..]);
    let f = Frame::new(Command::Send).with_header("a", "b\nc");
    assert!(warren_stomp_codec::encode(&f, Version::V1_0, &mut buf).is_err());
    assert_eq!(&buf[..], b"before");
}
