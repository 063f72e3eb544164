//! A std-only stand-in for the fuzz target (`fuzz/fuzz_targets/decode.rs`) that runs in
//! the normal test suite: tens of thousands of pseudo-random and mutated streams, each
//! decoded whole and in random pieces. Checks that nothing panics, that the outcome does
//! not depend on how the stream was split, and that every decoded frame re-encodes to
//! bytes that decode to the same frame.

mod common;

use bytes::{Bytes, BytesMut};
use common::{run_chunked, Outcome};
use warren_stomp_codec::{
    encode_with, Command, ContentLength, Decoded, Decoder, EncodeOptions, Frame, Limits, Version,
};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn piece(&mut self, pieces: &[&'static [u8]]) -> &'static [u8] {
        pieces[self.below(pieces.len())]
    }
}

/// Fragments that steer random streams into the interesting paths.
const PIECES: &[&[u8]] = &[
    b"SEND",
    b"MESSAGE",
    b"CONNECT",
    b"CONNECTED",
    b"STOMP",
    b"ERROR",
    b"ACK",
    b"XYZ",
    b"\n",
    b"\r\n",
    b"\r",
    b"\0",
    b":",
    b"\\",
    b"\\n",
    b"\\c",
    b"\\r",
    b"\\\\",
    b"\\t",
    b"content-length:",
    b"content-length:3",
    b"content-length:0",
    b"content-length:-1",
    b"content-length: 2 ",
    b"destination:/queue/a",
    b"a",
    b"b",
    b"0",
    b"7",
    b" ",
    b"\xff",
];

/// Frame-shaped streams (command, header lines, blank line, body, NUL) built from
/// [`PIECES`], so that most of them get deep into the parser, with raw noise between.
fn random_stream(rng: &mut Rng) -> Vec<u8> {
    const COMMANDS: &[&[u8]] = &[
        b"SEND",
        b"MESSAGE",
        b"CONNECT",
        b"CONNECTED",
        b"ACK",
        b"XYZ",
    ];
    const EOLS: &[&[u8]] = &[b"\n", b"\n", b"\r\n", b"\r"];
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        for _ in 0..rng.below(3) {
            out.extend_from_slice(rng.piece(PIECES));
        }
        out.extend_from_slice(rng.piece(COMMANDS));
        out.extend_from_slice(rng.piece(EOLS));
        for _ in 0..rng.below(5) {
            for _ in 0..1 + rng.below(4) {
                out.extend_from_slice(rng.piece(PIECES));
            }
            out.extend_from_slice(rng.piece(EOLS));
        }
        out.extend_from_slice(rng.piece(EOLS));
        for _ in 0..rng.below(6) {
            if rng.below(4) == 0 {
                out.push(rng.next() as u8);
            } else {
                out.extend_from_slice(rng.piece(PIECES));
            }
        }
        out.push(0);
    }
    out
}

fn random_frame(rng: &mut Rng) -> Frame {
    let mut f = Frame::new(*rng.pick(&Command::ALL));
    for _ in 0..rng.below(6) {
        let name_len = 1 + rng.below(6);
        let name = random_text(rng, name_len);
        let value_len = rng.below(8);
        let value = random_text(rng, value_len);
        f.push_header(name, value);
    }
    let len = rng.below(40);
    f.body = (0..len)
        .map(|_| rng.next() as u8)
        .collect::<Vec<_>>()
        .into();
    f
}

fn random_text(rng: &mut Rng, len: usize) -> Bytes {
    const ALPHABET: &[u8] = b"ab:\\\n\r\0 -x9";
    (0..len)
        .map(|_| *rng.pick(ALPHABET))
        .collect::<Vec<_>>()
        .into()
}

fn mutate(rng: &mut Rng, mut input: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let at = if input.is_empty() {
            0
        } else {
            rng.below(input.len())
        };
        match rng.below(4) {
            0 if !input.is_empty() => input[at] = rng.next() as u8,
            1 if !input.is_empty() => {
                input.remove(at);
            }
            2 => input.insert(at, *rng.pick(b"\n\r\0:\\")),
            _ => {
                let piece = rng.piece(PIECES);
                input.splice(at..at, piece.iter().copied());
            }
        }
    }
    input
}

fn random_limits(rng: &mut Rng) -> Limits {
    if rng.below(2) == 0 {
        Limits::default()
    } else {
        Limits {
            max_headers: rng.below(8),
            max_header_line: rng.below(40),
            max_body: rng.below(50),
        }
    }
}

fn random_chunks(rng: &mut Rng, len: usize) -> Vec<usize> {
    (0..len).map(|_| rng.below(8)).collect()
}

/// The round-trip property, shared in spirit with the fuzz target: a decoded frame,
/// written as given, decodes to itself; written with automatic content-length, it
/// decodes to itself with content-length replaced.
fn check_round_trip(f: &Frame, version: Version) {
    let exact = EncodeOptions {
        content_length: ContentLength::AsGiven,
        trailing_eol: false,
    };
    assert_eq!(reencode(f, version, &exact), *f, "as given: {f:?}");

    let mut expected = f.clone();
    expected
        .headers
        .retain(|(n, _)| n.as_ref() != b"content-length");
    if !f.body.is_empty() {
        expected.push_header("content-length", f.body.len().to_string());
    }
    assert_eq!(
        reencode(f, version, &EncodeOptions::default()),
        expected,
        "auto: {f:?}"
    );
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

fn check(input: &[u8], rng: &mut Rng) -> Outcome {
    let version = *rng.pick(&Version::ALL);
    let limits = random_limits(rng);
    let whole = run_chunked(input, &[], version, limits);
    let chunks = random_chunks(rng, input.len());
    let pieces = run_chunked(input, &chunks, version, limits);
    assert_eq!(pieces, whole, "{input:?} in chunks {chunks:?}, {version}");
    for f in whole.frames() {
        if f.header("unknown-command").is_none() {
            check_round_trip(&f, version);
        }
    }
    whole
}

#[test]
fn random_streams_never_panic_and_split_consistently() {
    let mut rng = Rng(0x5eed_0000_0000_0001);
    let mut frames = 0;
    for _ in 0..20_000 {
        let input = random_stream(&mut rng);
        frames += check(&input, &mut rng).frames().len();
    }
    assert!(
        frames > 2000,
        "the generator should produce frames: {frames}"
    );
}

#[test]
fn mutated_valid_streams_never_panic_and_split_consistently() {
    let mut rng = Rng(0x5eed_0000_0000_0002);
    for _ in 0..10_000 {
        let mut valid = BytesMut::new();
        let version = *rng.pick(&Version::ALL);
        for _ in 0..1 + rng.below(3) {
            let mut f = random_frame(&mut rng);
            // Only escaped frames can carry every octet in a header.
            if !f.command.escapes_headers(version) {
                f.headers.clear();
            }
            encode_with(&f, version, &EncodeOptions::default(), &mut valid).unwrap();
        }
        let input = mutate(&mut rng, valid.to_vec());
        check(&input, &mut rng);
    }
}

#[test]
fn random_frames_round_trip() {
    let mut rng = Rng(0x5eed_0000_0000_0003);
    for _ in 0..10_000 {
        let version = *rng.pick(&Version::ALL);
        let mut f = random_frame(&mut rng);
        if !f.command.escapes_headers(version) {
            f.headers.clear();
        }
        // Decoding keeps the first of each name; make the expectation match.
        let mut expected = Frame::new(f.command);
        for (n, v) in &f.headers {
            if n.as_ref() != b"content-length" && expected.header_str_bytes(n).is_none() {
                expected.push_header(n.clone(), v.clone());
            }
        }
        if !f.body.is_empty() {
            expected.push_header("content-length", f.body.len().to_string());
        }
        expected.body = f.body.clone();
        assert_eq!(reencode(&f, version, &EncodeOptions::default()), expected);
    }
}

trait HeaderBytes {
    fn header_str_bytes(&self, name: &[u8]) -> Option<&Bytes>;
}

impl HeaderBytes for Frame {
    fn header_str_bytes(&self, name: &[u8]) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v)
    }
}
