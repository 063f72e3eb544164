//! Arbitrary bytes never panic the decoder; the outcome does not depend on how the bytes
//! are split into reads; every decoded frame re-encodes to bytes that decode to the same
//! frame (written as given), or to the same frame with `content-length` recomputed
//! (written with automatic content-length).
//!
//! The first input octet picks the version, the limits and the read size; the rest is
//! the stream. `tests/no_panic.rs` runs the same checks on pseudo-random input in the
//! normal test suite.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_stomp_codec::{
    encode_with, ContentLength, Decoded, Decoder, EncodeOptions, Error, Frame, Limits, Version,
};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let version = Version::ALL[usize::from(control % 3)];
    let limits = if control & 0x04 == 0 {
        Limits::default()
    } else {
        Limits {
            max_headers: 4,
            max_header_line: 32,
            max_body: 64,
        }
    };
    let read_size = 1 + usize::from(control >> 3);

    let whole = run(input, version, limits, input.len().max(1));
    let pieces = run(input, version, limits, read_size);
    assert_eq!(whole, pieces, "outcome depends on read size {read_size}");

    for item in &whole.items {
        if let Ok(Decoded::Frame(f)) = item {
            round_trip(f, version);
        }
    }
});

#[derive(Debug, PartialEq)]
struct Outcome {
    /// Everything decoded, in order, up to and including the first fatal error.
    items: Vec<Result<Decoded, Error>>,
    /// Octets left undecoded.
    left: usize,
}

fn run(input: &[u8], version: Version, limits: Limits, read_size: usize) -> Outcome {
    let mut decoder = Decoder::new(version, limits);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut fed = 0;
    for read in input.chunks(read_size) {
        buf.extend_from_slice(read);
        fed += read.len();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(d)) => items.push(Ok(d)),
                Ok(None) => break,
                Err(e) => {
                    let fatal = e.is_fatal();
                    items.push(Err(e));
                    if fatal {
                        // What was not yet fed counts as left over too.
                        return Outcome {
                            items,
                            left: buf.len() + input.len() - fed,
                        };
                    }
                }
            }
        }
    }
    Outcome {
        items,
        left: buf.len(),
    }
}

fn round_trip(f: &Frame, version: Version) {
    let exact = EncodeOptions {
        content_length: ContentLength::AsGiven,
        trailing_eol: false,
    };
    assert_eq!(&reencode(f, version, &exact), f);

    let mut expected = f.clone();
    expected
        .headers
        .retain(|(n, _)| n.as_ref() != b"content-length");
    if !f.body.is_empty() {
        expected.push_header("content-length", f.body.len().to_string());
    }
    assert_eq!(reencode(f, version, &EncodeOptions::default()), expected);
}

fn reencode(f: &Frame, version: Version, options: &EncodeOptions) -> Frame {
    let mut buf = BytesMut::new();
    encode_with(f, version, options, &mut buf).expect("a decoded frame always encodes");
    let mut decoder = Decoder::new(version, Limits::default());
    let Ok(Some(Decoded::Frame(back))) = decoder.decode(&mut buf) else {
        panic!("re-encoded frame did not decode: {f:?} as {buf:?}");
    };
    if options.trailing_eol {
        assert_eq!(decoder.decode(&mut buf), Ok(Some(Decoded::Heartbeat)));
    }
    assert!(buf.is_empty());
    back
}
