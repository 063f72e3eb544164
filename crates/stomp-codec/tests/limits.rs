//! Frame limits: header count, header line length, body size. Each is enforced as soon as
//! the bytes show it is exceeded, and the error names the limit.

mod common;

use common::{run, run_chunked, run_limits};
use warren_stomp_codec::{Error, Limit, Limits, Version};

const V12: Version = Version::V1_2;

fn limits(max_headers: usize, max_header_line: usize, max_body: usize) -> Limits {
    Limits {
        max_headers,
        max_header_line,
        max_body,
    }
}

fn exceeded(limit: Limit, max: usize) -> Option<Error> {
    Some(Error::LimitExceeded { limit, max })
}

#[test]
fn defaults_are_rabbitmqs() {
    assert_eq!(
        Limits::default(),
        limits(1000, 100 * 1024, 100 * 1024 * 1024)
    );
}

#[test]
fn header_count() {
    let l = limits(2, 100, 100);
    assert_eq!(run_limits(b"SEND\na:1\nb:2\n\n\0", V12, l).error, None);
    assert_eq!(
        run_limits(b"SEND\na:1\nb:2\nc:3\n\n\0", V12, l).error,
        exceeded(Limit::Headers, 2)
    );
    // Repeated names count: each line has to be parsed before it can be dropped.
    assert_eq!(
        run_limits(b"SEND\na:1\na:2\na:3\n\n\0", V12, l).error,
        exceeded(Limit::Headers, 2)
    );
    // Fails on the first octet of the third header line, before the rest arrives.
    assert_eq!(
        run_limits(b"SEND\na:1\nb:2\nc", V12, l).error,
        exceeded(Limit::Headers, 2)
    );
}

#[test]
fn header_line_length() {
    let l = limits(10, 5, 100);
    // "ab:cd" is exactly 5 octets; the line end does not count.
    assert_eq!(run_limits(b"SEND\nab:cd\n\n\0", V12, l).error, None);
    assert_eq!(run_limits(b"SEND\nab:cd\r\n\r\n\0", V12, l).error, None);
    assert_eq!(
        run_limits(b"SEND\nab:cde\n\n\0", V12, l).error,
        exceeded(Limit::HeaderLine, 5)
    );
    // An over-long line fails before its end arrives.
    assert_eq!(
        run_limits(b"SEND\nabcdef", V12, l).error,
        exceeded(Limit::HeaderLine, 5)
    );
    // ... but not before it is over-long: 5 octets and a CR may still be fine.
    let out = run_limits(b"SEND\nab:cd\r", V12, l);
    assert_eq!((out.error, out.left), (None, 11));
    // The limit is on the line as sent, escapes included.
    assert_eq!(
        run_limits(b"SEND\na:\\n\\n\n\n\0", V12, l).error,
        exceeded(Limit::HeaderLine, 5)
    );
}

#[test]
fn body_with_content_length_fails_before_the_body_arrives() {
    let l = limits(10, 100, 4);
    assert_eq!(
        run_limits(b"SEND\ncontent-length:4\n\nabcd\0", V12, l).error,
        None
    );
    assert_eq!(
        run_limits(b"SEND\ncontent-length:5\n\n", V12, l).error,
        exceeded(Limit::Body, 4)
    );
    assert_eq!(
        run_limits(b"SEND\ncontent-length:999999999999999999999999\n\n", V12, l).error,
        exceeded(Limit::Body, 4)
    );
}

#[test]
fn body_without_content_length() {
    let l = limits(10, 100, 4);
    assert_eq!(run_limits(b"SEND\n\nabcd\0", V12, l).error, None);
    assert_eq!(
        run_limits(b"SEND\n\nabcde\0", V12, l).error,
        exceeded(Limit::Body, 4)
    );
    // Fails as soon as more than 4 octets are buffered without a NUL.
    assert_eq!(
        run_limits(b"SEND\n\nabcde", V12, l).error,
        exceeded(Limit::Body, 4)
    );
    let out = run_limits(b"SEND\n\nabcd", V12, l);
    assert_eq!((out.error, out.left), (None, 10));
}

#[test]
fn limit_errors_are_the_same_however_the_stream_is_split() {
    let l = limits(3, 8, 6);
    let inputs: [&[u8]; 4] = [
        b"SEND\nabc:defgh\n\n\0",
        b"SEND\na:1\nb:2\nc:3\nd:4\n\n\0",
        b"SEND\n\n0123456789\0",
        b"SEND\ncontent-length:7\n\n0123456\0",
    ];
    for input in inputs {
        let whole = run_limits(input, V12, l).error;
        assert!(whole.is_some(), "{input:?}");
        for size in 1..input.len() {
            let chunks = vec![size; input.len()];
            assert_eq!(
                run_chunked(input, &chunks, V12, l).error,
                whole,
                "{input:?} in chunks of {size}"
            );
        }
    }
}

#[test]
fn limit_errors_say_which_limit() {
    let e = run_limits(b"SEND\na:1\nb:1\n\n\0", V12, limits(1, 10, 10))
        .error
        .unwrap();
    assert_eq!(e.to_string(), "too many headers (max_headers is 1)");
    assert_eq!(Limit::HeaderLine.name(), "max_header_length");
    assert_eq!(Limit::Body.name(), "max_body_length");
    assert!(e.is_fatal());
}

#[test]
fn command_line_has_its_own_fixed_limit() {
    assert_eq!(run(&[b'A'; 40], V12).error, Some(Error::CommandTooLong));
}
