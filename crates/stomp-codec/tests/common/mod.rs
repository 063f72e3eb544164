//! Helpers shared by the test files: run a whole stream through a decoder, in one piece
//! or in chunks.

#![allow(dead_code)]

use bytes::BytesMut;
use warren_stomp_codec::{Decoded, Decoder, Error, Frame, Limits, Version};

/// Everything a stream decodes to: the items, then the error that stopped it (if any),
/// and how many octets were left undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub items: Vec<Decoded>,
    pub error: Option<Error>,
    pub left: usize,
}

impl Outcome {
    pub fn frames(&self) -> Vec<Frame> {
        self.items
            .iter()
            .filter_map(|d| match d {
                Decoded::Frame(f) => Some(f.clone()),
                Decoded::Heartbeat => None,
            })
            .collect()
    }

    pub fn heartbeats(&self) -> usize {
        self.items
            .iter()
            .filter(|d| matches!(d, Decoded::Heartbeat))
            .count()
    }
}

/// Feeds `input` to a decoder in the given chunk sizes (the last chunk takes the rest),
/// decoding after each chunk until it needs more. Stops at the first fatal error;
/// carries on after a recoverable one (an unknown command).
pub fn run_chunked(input: &[u8], chunks: &[usize], version: Version, limits: Limits) -> Outcome {
    let mut decoder = Decoder::new(version, limits);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut fed = 0;
    let mut chunk = chunks.iter();
    while fed < input.len() {
        let n = chunk
            .next()
            .copied()
            .unwrap_or(input.len() - fed)
            .min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(d)) => items.push(d),
                Ok(None) => break,
                Err(e) if !e.is_fatal() => items.push(unknown_marker(&e)),
                Err(e) => {
                    return Outcome {
                        items,
                        error: Some(e),
                        left: buf.len() + input.len() - fed,
                    }
                }
            }
        }
    }
    Outcome {
        items,
        error: None,
        left: buf.len(),
    }
}

/// The whole stream in one piece.
pub fn run(input: &[u8], version: Version) -> Outcome {
    run_chunked(input, &[], version, Limits::default())
}

pub fn run_limits(input: &[u8], version: Version, limits: Limits) -> Outcome {
    run_chunked(input, &[], version, limits)
}

/// Unknown commands are reported as an ERROR frame whose only header is the command, so
/// outcomes stay comparable with `==`.
fn unknown_marker(e: &Error) -> Decoded {
    let Error::UnknownCommand(c) = e else {
        unreachable!()
    };
    Decoded::Frame(
        Frame::new(warren_stomp_codec::Command::Error).with_header("unknown-command", c.clone()),
    )
}

/// The single frame `input` decodes to (panics otherwise).
pub fn frame(input: &[u8], version: Version) -> Frame {
    let out = run(input, version);
    assert_eq!(out.error, None, "decoding {input:?}");
    let frames = out.frames();
    assert_eq!(frames.len(), 1, "decoding {input:?}: {out:?}");
    frames.into_iter().next().unwrap()
}

/// The first error, fatal or not, that decoding `input` in one piece meets (panics if
/// there is none).
pub fn error(input: &[u8], version: Version) -> Error {
    let mut decoder = Decoder::new(version, Limits::default());
    let mut buf = BytesMut::from(input);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("{input:?} decoded without error"),
            Err(e) => return e,
        }
    }
}

pub fn header<'a>(f: &'a Frame, name: &str) -> Option<&'a [u8]> {
    f.header(name).map(|v| v.as_ref())
}
