//! Frame syntax: command line, headers, blank line, body, NUL; line ends; bodies with and
//! without `content-length`; repeated headers; malformed frames.

mod common;

use bytes::BytesMut;
use common::{error, frame, header, run};
use warren_stomp_codec::{decode, Command, Decoded, Error, Limits, Version};

const V12: Version = Version::V1_2;

#[test]
fn send_frame_with_headers_and_body() {
    let f = frame(b"SEND\ndestination:/queue/a\nreceipt:r1\n\nhello\0", V12);
    assert_eq!(f.command, Command::Send);
    assert_eq!(
        f.headers,
        vec![
            ("destination".into(), "/queue/a".into()),
            ("receipt".into(), "r1".into())
        ]
    );
    assert_eq!(f.body.as_ref(), b"hello");
}

#[test]
fn every_command_decodes() {
    for c in Command::ALL {
        let input = format!("{}\n\n\0", c.as_str());
        assert_eq!(frame(input.as_bytes(), V12).command, c);
    }
}

#[test]
fn crlf_line_endings() {
    let f = frame(
        b"MESSAGE\r\nsubscription:0\r\nmessage-id:007\r\n\r\nhi\0",
        V12,
    );
    assert_eq!(f.command, Command::Message);
    assert_eq!(header(&f, "subscription"), Some(&b"0"[..]));
    assert_eq!(header(&f, "message-id"), Some(&b"007"[..]));
    assert_eq!(f.body.as_ref(), b"hi");
}

#[test]
fn crlf_is_accepted_in_every_version() {
    // 1.0 and 1.1 only define LF; RabbitMQ accepts CR LF everywhere, so do we.
    for v in Version::ALL {
        let f = frame(b"SEND\r\na:b\r\n\r\n\0", v);
        assert_eq!(header(&f, "a"), Some(&b"b"[..]));
    }
}

#[test]
fn mixed_line_endings_in_one_frame() {
    let f = frame(b"SEND\na:1\r\nb:2\n\r\nx\0", V12);
    assert_eq!(header(&f, "a"), Some(&b"1"[..]));
    assert_eq!(header(&f, "b"), Some(&b"2"[..]));
    assert_eq!(f.body.as_ref(), b"x");
}

#[test]
fn bare_cr_is_an_error() {
    assert_eq!(error(b"SEND\rX\n\n\0", V12), Error::UnexpectedCr);
    assert_eq!(error(b"SEND\na:b\rc\n\n\0", V12), Error::UnexpectedCr);
    assert_eq!(error(b"SEND\n\rX\0", V12), Error::UnexpectedCr);
    assert_eq!(error(b"\rX", V12), Error::UnexpectedCr);
    // In 1.0 too: RabbitMQ's grammar has no bare CR in any version.
    assert_eq!(
        error(b"SEND\na:b\rc\n\n\0", Version::V1_0),
        Error::UnexpectedCr
    );
}

#[test]
fn cr_in_the_body_is_just_an_octet() {
    let f = frame(b"SEND\n\na\rb\r\0", V12);
    assert_eq!(f.body.as_ref(), b"a\rb\r");
}

#[test]
fn body_without_content_length_ends_at_first_nul() {
    let out = run(b"SEND\n\nab\0cd\0", V12);
    // "cd\0" is not a frame: after "ab\0" comes the command line "cd\0..." which has no
    // line end yet, so the decoder waits.
    assert_eq!(out.frames()[0].body.as_ref(), b"ab");
    assert_eq!(out.error, None);
    assert_eq!(out.left, 3);
}

#[test]
fn content_length_body_may_contain_nul() {
    let f = frame(b"SEND\ncontent-length:5\n\na\0b\0c\0", V12);
    assert_eq!(f.body.as_ref(), b"a\0b\0c");
    assert_eq!(f.content_length(), Some(5));
}

#[test]
fn content_length_zero() {
    let f = frame(b"SEND\ncontent-length:0\n\n\0", V12);
    assert!(f.body.is_empty());
}

#[test]
fn content_length_is_honoured_on_every_command() {
    // RabbitMQ only reads it on SEND; the spec (and a client decoding MESSAGE frames
    // with binary bodies) needs it everywhere.
    let f = frame(b"MESSAGE\ncontent-length:3\n\n\0\0\0\0", V12);
    assert_eq!(f.body.as_ref(), b"\0\0\0");
    let f = frame(b"ERROR\ncontent-length:1\n\n\0\0", V12);
    assert_eq!(f.body.as_ref(), b"\0");
}

#[test]
fn content_length_with_whitespace_and_sign_is_read() {
    let f = frame(b"SEND\ncontent-length: +2 \n\n\0\0\0", V12);
    assert_eq!(f.body.as_ref(), b"\0\0");
}

#[test]
fn content_length_that_is_not_a_number_is_ignored() {
    // RabbitMQ: integer_header/3 catches the parse failure and the body ends at NUL.
    let f = frame(b"SEND\ncontent-length:lots\n\nabc\0", V12);
    assert_eq!(f.body.as_ref(), b"abc");
    assert_eq!(header(&f, "content-length"), Some(&b"lots"[..]));
    assert_eq!(f.content_length(), None);
}

#[test]
fn negative_content_length_is_an_error() {
    assert_eq!(
        error(b"SEND\ncontent-length:-1\n\n\0", V12),
        Error::InvalidContentLength("-1".into())
    );
}

#[test]
fn byte_after_content_length_body_must_be_nul() {
    assert_eq!(
        error(b"SEND\ncontent-length:2\n\nabc\0", V12),
        Error::MissingNul
    );
}

#[test]
fn missing_nul_terminator_waits_for_more() {
    // Without content-length, a body is open until its NUL arrives.
    let mut buf = BytesMut::from(&b"SEND\n\nno terminator yet"[..]);
    assert_eq!(decode(&mut buf, V12, &Limits::default()), Ok(None));
    assert_eq!(buf.len(), 23, "nothing consumed while waiting");
    buf.extend_from_slice(b"\0");
    let Some(Decoded::Frame(f)) = decode(&mut buf, V12, &Limits::default()).unwrap() else {
        panic!()
    };
    assert_eq!(f.body.as_ref(), b"no terminator yet");
    assert!(buf.is_empty());

    // With content-length, the decoder waits for body + NUL, then checks the NUL.
    let mut buf = BytesMut::from(&b"SEND\ncontent-length:3\n\nabc"[..]);
    assert_eq!(decode(&mut buf, V12, &Limits::default()), Ok(None));
    buf.extend_from_slice(b"X");
    assert_eq!(
        decode(&mut buf, V12, &Limits::default()),
        Err(Error::MissingNul)
    );
}

#[test]
fn repeated_headers_first_wins_and_later_are_dropped() {
    let f = frame(
        b"MESSAGE\nfoo:World\nfoo:Hello\nbar:1\nfoo:again\n\n\0",
        V12,
    );
    assert_eq!(
        f.headers,
        vec![("foo".into(), "World".into()), ("bar".into(), "1".into())]
    );
}

#[test]
fn repeated_content_length_first_wins() {
    let f = frame(b"SEND\ncontent-length:1\ncontent-length:3\n\n\0\0", V12);
    assert_eq!(f.body.as_ref(), b"\0");
    assert_eq!(header(&f, "content-length"), Some(&b"1"[..]));
}

#[test]
fn many_repeated_headers_are_deduplicated_too() {
    let mut input = b"SEND\n".to_vec();
    for i in 0..40 {
        input.extend_from_slice(format!("h{}:{i}\n", i % 7).as_bytes());
    }
    input.extend_from_slice(b"\n\0");
    let f = frame(&input, V12);
    assert_eq!(f.headers.len(), 7);
    for i in 0..7 {
        assert_eq!(f.header_str(&format!("h{i}")), Some(i.to_string().as_str()));
    }
}

#[test]
fn header_values_may_contain_colons_and_be_empty() {
    let f = frame(b"SEND\nurl:http://x:80/\nempty:\n\n\0", V12);
    assert_eq!(header(&f, "url"), Some(&b"http://x:80/"[..]));
    assert_eq!(header(&f, "empty"), Some(&b""[..]));
}

#[test]
fn header_whitespace_is_kept() {
    // 1.1+ values are taken as they are; trimming is the 1.0 transformer's job.
    let mut f = frame(b"SEND\n a : b \n\n\0", Version::V1_0);
    assert_eq!(f.headers, vec![(" a ".into(), " b ".into())]);
    f.trim_value_leading_spaces();
    assert_eq!(f.headers, vec![(" a ".into(), "b ".into())]);
}

#[test]
fn empty_header_name_is_accepted() {
    // The spec wants at least one octet; RabbitMQ accepts an empty name.
    let f = frame(b"SEND\n:v\n\n\0", V12);
    assert_eq!(f.headers, vec![("".into(), "v".into())]);
}

#[test]
fn header_names_and_values_need_not_be_utf8() {
    let f = frame(b"SEND\n\xff\xfe:\x80\n\n\0", V12);
    assert_eq!(
        f.headers,
        vec![(b"\xff\xfe"[..].into(), b"\x80"[..].into())]
    );
    assert_eq!(f.header_str("\u{fffd}"), None);
}

#[test]
fn header_without_colon_is_an_error() {
    assert_eq!(
        error(b"SEND\ndestination\n\n\0", V12),
        Error::HeaderWithoutColon("destination".into())
    );
}

#[test]
fn unknown_command_is_consumed_and_reported() {
    let mut buf = BytesMut::from(&b"FOO\na:b\ncontent-length:2\n\n\0\0\0SEND\n\n\0"[..]);
    let limits = Limits::default();
    match decode(&mut buf, V12, &limits) {
        Err(e @ Error::UnknownCommand(_)) => {
            assert_eq!(e, Error::UnknownCommand("FOO".into()));
            assert!(!e.is_fatal());
        }
        other => panic!("{other:?}"),
    }
    // The stream is still in sync.
    let Some(Decoded::Frame(f)) = decode(&mut buf, V12, &limits).unwrap() else {
        panic!()
    };
    assert_eq!(f.command, Command::Send);
    assert!(buf.is_empty());
}

#[test]
fn commands_are_case_sensitive() {
    assert_eq!(
        error(b"send\n\n\0", V12),
        Error::UnknownCommand("send".into())
    );
    assert_eq!(
        error(b"SEND \n\n\0", V12),
        Error::UnknownCommand("SEND ".into())
    );
}

#[test]
fn over_long_command_line_fails_fast() {
    // 33 octets and no line end: not STOMP, no need to wait for more.
    assert_eq!(error(&[b'G'; 33], V12), Error::CommandTooLong);
    assert_eq!(
        error(b"GET /index.html HTTP/1.1 and then some\r\n", V12),
        Error::CommandTooLong
    );
    // 32 octets is still a (unknown) command.
    let mut input = vec![b'X'; 32];
    input.extend_from_slice(b"\n\n\0");
    assert!(matches!(error(&input, V12), Error::UnknownCommand(c) if c.len() == 32));
}

#[test]
fn nul_octets_between_frames_are_skipped() {
    let out = run(b"\0\0SEND\n\n\0\0\0\0RECEIPT\nreceipt-id:1\n\n\0", V12);
    assert_eq!(out.error, None);
    assert_eq!(out.heartbeats(), 0);
    let frames = out.frames();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].command, Command::Receipt);
}

#[test]
fn body_and_headers_share_the_read_buffer() {
    let mut buf = BytesMut::from(&b"SEND\ndestination:/queue/a\n\npayload\0"[..]);
    let start = buf.as_ptr() as usize;
    let Some(Decoded::Frame(f)) = decode(&mut buf, V12, &Limits::default()).unwrap() else {
        panic!()
    };
    let within = |p: *const u8| (start..start + 36).contains(&(p as usize));
    assert!(within(f.body.as_ptr()), "body is a slice of the input");
    assert!(
        within(f.headers[0].1.as_ptr()),
        "value is a slice of the input"
    );
}

#[test]
fn octets_after_a_frame_stay_in_the_buffer() {
    let mut buf = BytesMut::from(&b"SEND\n\n\0SUBSCRIBE\nid:1"[..]);
    let limits = Limits::default();
    assert!(matches!(
        decode(&mut buf, V12, &limits),
        Ok(Some(Decoded::Frame(_)))
    ));
    assert_eq!(&buf[..], b"SUBSCRIBE\nid:1");
    assert_eq!(decode(&mut buf, V12, &limits), Ok(None));
}
