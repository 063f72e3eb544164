//! The incremental frame parser.
//!
//! ```text
//! frame-stream = *( noise | frame )
//! noise        = NUL | EOL                 ; an EOL is reported as a heart-beat
//! frame        = command EOL *( header EOL ) EOL body NUL
//! EOL          = LF | CR LF                ; in every version, as in RabbitMQ
//! header       = name ":" value            ; split at the first raw colon
//! body         = content-length octets, or everything up to the first NUL
//! ```
//!
//! [`Decoder`] is resumable: it remembers how far into the buffered partial frame it has
//! scanned, so a frame that arrives in many reads is scanned once in total, not once per
//! read (a 100 MiB body without `content-length`, or a slow-loris sending one octet at a
//! time, would otherwise cost quadratic time). The caller must only append to the buffer
//! between calls, which is what every socket read loop does. [`decode()`] is the
//! stateless form: always correct, but it rescans a partial frame from its start.
//!
//! Every limit is checked as early as the bytes allow, and so that the outcome does not
//! depend on how the stream was split into reads: an over-long line fails as soon as it
//! is longer than the limit, whether or not its end has arrived; a declared
//! `content-length` over the body limit fails before the body is read.

use std::collections::HashSet;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use crate::command::{Command, Version};
use crate::error::Error;
use crate::escape;
use crate::frame::{declared_length, DeclaredLength, Decoded, Frame};
use crate::headers::CONTENT_LENGTH;

/// The longest command line accepted, in octets. The longest command is 11 ("UNSUBSCRIBE");
/// RabbitMQ allows some headroom for unknown commands (which it answers with an ERROR
/// frame) and refuses anything longer, so a stream that is not STOMP fails fast.
pub const MAX_COMMAND_LEN: usize = 32;

/// Bounds on what one frame may hold, so that a peer cannot make us buffer without end.
/// The defaults are RabbitMQ's (`stomp.max_headers`, `stomp.max_header_length`,
/// `stomp.max_body_length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Header lines per frame, repeated names included (each one is parsed before it can
    /// be dropped; RabbitMQ counts distinct names only).
    pub max_headers: usize,
    /// Octets in one header line as sent (name, colon and value, still escaped, without
    /// the line end). RabbitMQ bounds the name and the value separately; one bound on the
    /// line is what the parser can check before the line is complete.
    pub max_header_line: usize,
    /// Octets in a body, declared by `content-length` or found by scanning for NUL.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_headers: 1000,
            max_header_line: 100 * 1024,
            max_body: 100 * 1024 * 1024,
        }
    }
}

/// Which of the [`Limits`] a frame exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Headers,
    HeaderLine,
    Body,
}

impl Limit {
    /// RabbitMQ's name for the setting (as in `stomp.max_headers`).
    pub fn name(self) -> &'static str {
        match self {
            Limit::Headers => "max_headers",
            Limit::HeaderLine => "max_header_length",
            Limit::Body => "max_body_length",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Limit::Headers => "too many headers",
            Limit::HeaderLine => "header line too long",
            Limit::Body => "body too large",
        }
    }
}

/// Decodes one frame or heart-beat from the front of `buf`, consuming it. `Ok(None)`
/// means more bytes are needed (inter-frame NULs may have been consumed meanwhile).
///
/// Stateless: a partial frame is rescanned on every call. Connections should keep a
/// [`Decoder`] instead.
pub fn decode(
    buf: &mut BytesMut,
    version: Version,
    limits: &Limits,
) -> Result<Option<Decoded>, Error> {
    Decoder::new(version, *limits).decode(buf)
}

/// A resumable decoder for one connection's byte stream.
#[derive(Debug, Clone)]
pub struct Decoder {
    version: Version,
    limits: Limits,
    p: Progress,
}

/// How far into the partial frame at the front of the buffer we have got. All offsets
/// are from the start of the buffer, which the decoder does not consume until the frame
/// is complete.
#[derive(Debug, Clone, Default)]
struct Progress {
    phase: Phase,
    /// Start of the line (command or header) being read.
    line_start: usize,
    /// Offset up to which the current line, or the NUL-terminated body, is known not to
    /// end.
    scan: usize,
    /// `None` once past the command line means an unknown command.
    command: Option<Command>,
    command_end: usize,
    headers: Vec<RawHeader>,
    body_start: usize,
    content_length: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    /// Between frames: skipping noise.
    #[default]
    Idle,
    Command,
    Headers,
    Body,
}

/// A header's name and value as they are on the wire (still escaped).
#[derive(Debug, Clone)]
struct RawHeader {
    name: Range<usize>,
    value: Range<usize>,
}

enum LineScan {
    /// The line's content ends at `end`; the next line starts at `next`.
    Line {
        end: usize,
        next: usize,
    },
    /// No line end yet; nothing before `scanned` is one.
    Incomplete {
        scanned: usize,
    },
    TooLong,
    BareCr,
}

impl Decoder {
    /// A decoder for a connection speaking `version`. Before CONNECT is answered, any
    /// version will do: CONNECT and STOMP frames are never escaped.
    pub fn new(version: Version, limits: Limits) -> Decoder {
        Decoder {
            version,
            limits,
            p: Progress::default(),
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Switches the version (after negotiation). A partial frame already buffered is
    /// rescanned under the new version's escaping rules.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
        self.reset();
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes one frame or heart-beat from the front of `buf`, consuming it. `Ok(None)`
    /// means more bytes are needed. After an error for which [`Error::is_fatal`] holds,
    /// the stream cannot be decoded further.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, Error> {
        let result = self.step(buf);
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        let mut headers = std::mem::take(&mut self.p.headers);
        headers.clear();
        // Keep the allocation for the next frame unless one frame blew it up.
        if headers.capacity() > 64 {
            headers = Vec::new();
        }
        self.p = Progress {
            headers,
            ..Progress::default()
        };
    }

    /// Whether this frame's headers are escaped. An unknown command is treated like any
    /// non-CONNECT command.
    fn escaping(&self) -> bool {
        match self.p.command {
            Some(c) => c.escapes_headers(self.version),
            None => self.version != Version::V1_0,
        }
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, Error> {
        if self.p.phase == Phase::Idle {
            // RabbitMQ skips NULs and EOLs between frames. Many clients end each frame
            // with "\0\n", so a heart-beat report after a frame is normal.
            loop {
                match buf.first() {
                    None => return Ok(None),
                    Some(0) => buf.advance(1),
                    Some(b'\n') => {
                        buf.advance(1);
                        return Ok(Some(Decoded::Heartbeat));
                    }
                    Some(b'\r') => match buf.get(1) {
                        None => return Ok(None),
                        Some(b'\n') => {
                            buf.advance(2);
                            return Ok(Some(Decoded::Heartbeat));
                        }
                        Some(_) => return Err(Error::UnexpectedCr),
                    },
                    Some(_) => break,
                }
            }
            self.p.phase = Phase::Command;
        }

        if self.p.phase == Phase::Command {
            match scan_line(buf, 0, self.p.scan, MAX_COMMAND_LEN) {
                LineScan::Incomplete { scanned } => {
                    self.p.scan = scanned;
                    return Ok(None);
                }
                LineScan::TooLong => return Err(Error::CommandTooLong),
                LineScan::BareCr => return Err(Error::UnexpectedCr),
                LineScan::Line { end, next } => {
                    self.p.command = Command::from_bytes(&buf[..end]);
                    self.p.command_end = end;
                    self.p.phase = Phase::Headers;
                    self.p.line_start = next;
                    self.p.scan = next;
                }
            }
        }

        while self.p.phase == Phase::Headers {
            let start = self.p.line_start;
            match buf.get(start) {
                None => return Ok(None),
                Some(b'\n' | b'\r') => {}
                Some(_) if self.p.headers.len() >= self.limits.max_headers => {
                    return Err(Error::LimitExceeded {
                        limit: Limit::Headers,
                        max: self.limits.max_headers,
                    });
                }
                Some(_) => {}
            }
            match scan_line(buf, start, self.p.scan, self.limits.max_header_line) {
                LineScan::Incomplete { scanned } => {
                    self.p.scan = scanned;
                    return Ok(None);
                }
                LineScan::TooLong => {
                    return Err(Error::LimitExceeded {
                        limit: Limit::HeaderLine,
                        max: self.limits.max_header_line,
                    })
                }
                LineScan::BareCr => return Err(Error::UnexpectedCr),
                LineScan::Line { end, next } if end == start => {
                    self.p.body_start = next;
                    self.p.scan = next;
                    self.p.content_length = self.content_length(buf)?;
                    self.p.phase = Phase::Body;
                }
                LineScan::Line { end, next } => {
                    let header =
                        parse_header_line(&buf[start..end], start, self.escaping(), buf[end])?;
                    self.p.headers.push(header);
                    self.p.line_start = next;
                    self.p.scan = next;
                }
            }
        }

        let body_start = self.p.body_start;
        let (body_end, frame_len) = match self.p.content_length {
            Some(n) => {
                let end = body_start.saturating_add(n);
                if buf.len() <= end {
                    // Make room for the rest of the frame, but do not let a declared length
                    // alone make us allocate much: past 1 MiB the buffer grows as bytes
                    // actually arrive.
                    let missing = end.saturating_add(1) - buf.len();
                    buf.reserve(missing.min(1 << 20));
                    return Ok(None);
                }
                if buf[end] != 0 {
                    return Err(Error::MissingNul);
                }
                (end, end + 1)
            }
            None => {
                let max = self.limits.max_body;
                let limit = buf
                    .len()
                    .min(body_start.saturating_add(max).saturating_add(1));
                let from = self.p.scan.max(body_start);
                let found = if from < limit {
                    buf[from..limit].iter().position(|&b| b == 0)
                } else {
                    None
                };
                match found {
                    Some(p) => (from + p, from + p + 1),
                    None if buf.len().saturating_sub(body_start) > max => {
                        return Err(Error::LimitExceeded {
                            limit: Limit::Body,
                            max,
                        })
                    }
                    None => {
                        self.p.scan = limit.max(from);
                        return Ok(None);
                    }
                }
            }
        };
        self.finish(buf, body_end, frame_len)
            .map(|f| Some(Decoded::Frame(f)))
    }

    /// Reads the first `content-length` header (first wins, as for every header).
    fn content_length(&self, buf: &[u8]) -> Result<Option<usize>, Error> {
        let Some(h) = self
            .p
            .headers
            .iter()
            .find(|h| &buf[h.name.clone()] == CONTENT_LENGTH.as_bytes())
        else {
            return Ok(None);
        };
        let raw = &buf[h.value.clone()];
        let unescaped;
        let value = if self.escaping() && escape::has_escapes(raw) {
            unescaped = escape::unescape(raw, b'\n').map_err(Error::InvalidEscape)?;
            &unescaped[..]
        } else {
            raw
        };
        match declared_length(Some(value)) {
            DeclaredLength::Absent => Ok(None),
            DeclaredLength::Negative => {
                Err(Error::InvalidContentLength(Bytes::copy_from_slice(value)))
            }
            DeclaredLength::Length(n) if n > self.limits.max_body as u64 => {
                Err(Error::LimitExceeded {
                    limit: Limit::Body,
                    max: self.limits.max_body,
                })
            }
            DeclaredLength::Length(n) => Ok(Some(n as usize)),
        }
    }

    /// Takes the complete frame off the buffer and slices it into headers and body.
    fn finish(
        &mut self,
        buf: &mut BytesMut,
        body_end: usize,
        frame_len: usize,
    ) -> Result<Frame, Error> {
        let escaping = self.escaping();
        let raw = buf.split_to(frame_len).freeze();
        let Some(command) = self.p.command else {
            return Err(Error::UnknownCommand(raw.slice(..self.p.command_end)));
        };
        // Repeated names: the first wins and the rest are dropped. A set only pays off
        // beyond a handful of headers.
        let mut seen = HashSet::new();
        let use_set = self.p.headers.len() > 16;
        let mut headers: Vec<(Bytes, Bytes)> = Vec::with_capacity(self.p.headers.len());
        for h in &self.p.headers {
            let name = field(&raw, h.name.clone(), escaping, b':')?;
            let repeated = if use_set {
                !seen.insert(name.clone())
            } else {
                headers.iter().any(|(n, _)| *n == name)
            };
            if repeated {
                continue;
            }
            let value = field(&raw, h.value.clone(), escaping, b'\n')?;
            headers.push((name, value));
        }
        Ok(Frame {
            command,
            headers,
            body: raw.slice(self.p.body_start..body_end),
        })
    }
}

/// A header name or value: a slice of the frame, or a fresh buffer if it had escapes.
fn field(raw: &Bytes, range: Range<usize>, escaping: bool, after: u8) -> Result<Bytes, Error> {
    let slice = &raw[range.clone()];
    if escaping && escape::has_escapes(slice) {
        // Validated when the line was read; the error arm is unreachable in practice.
        escape::unescape(slice, after)
            .map(Bytes::from)
            .map_err(Error::InvalidEscape)
    } else {
        Ok(raw.slice(range))
    }
}

/// Finds the end of the line starting at `start`, resuming the search at `from`. The
/// line may hold at most `max` octets before its end.
fn scan_line(buf: &[u8], start: usize, from: usize, max: usize) -> LineScan {
    // A line end may begin at any of start..=start+max.
    let limit = buf.len().min(start.saturating_add(max).saturating_add(1));
    let from = from.max(start);
    if from < limit {
        if let Some(p) = buf[from..limit]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let at = from + p;
            if buf[at] == b'\n' {
                return LineScan::Line {
                    end: at,
                    next: at + 1,
                };
            }
            return match buf.get(at + 1) {
                None => LineScan::Incomplete { scanned: at },
                Some(b'\n') => LineScan::Line {
                    end: at,
                    next: at + 2,
                },
                Some(_) => LineScan::BareCr,
            };
        }
    }
    if buf.len().saturating_sub(start) > max {
        LineScan::TooLong
    } else {
        LineScan::Incomplete {
            scanned: limit.max(from),
        }
    }
}

/// Splits a header line at its first raw colon and checks its escape sequences, so that
/// a bad escape fails as soon as its line is read rather than when the body arrives.
/// Colons after the first are part of the value (RabbitMQ allows them unescaped). The
/// name may be empty, as RabbitMQ allows.
fn parse_header_line(
    line: &[u8],
    offset: usize,
    escaping: bool,
    line_end: u8,
) -> Result<RawHeader, Error> {
    let colon = if escaping && escape::has_escapes(line) {
        let mut colon = None;
        let mut i = 0;
        while i < line.len() {
            match line[i] {
                b'\\' => {
                    let next = line.get(i + 1).copied().unwrap_or(line_end);
                    if !escape::is_escape_code(next) {
                        return Err(Error::InvalidEscape(next));
                    }
                    i += 2;
                }
                b':' if colon.is_none() => {
                    colon = Some(i);
                    i += 1;
                }
                _ => i += 1,
            }
        }
        colon
    } else {
        line.iter().position(|&b| b == b':')
    };
    let Some(colon) = colon else {
        return Err(Error::HeaderWithoutColon(Bytes::copy_from_slice(line)));
    };
    Ok(RawHeader {
        name: offset..offset + colon,
        value: offset + colon + 1..offset + line.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8], version: Version) -> Result<Option<Decoded>, Error> {
        decode(&mut BytesMut::from(input), version, &Limits::default())
    }

    #[test]
    fn scan_line_boundaries() {
        assert!(matches!(
            scan_line(b"abc\n", 0, 0, 3),
            LineScan::Line { end: 3, next: 4 }
        ));
        assert!(matches!(
            scan_line(b"abc\r\n", 0, 0, 3),
            LineScan::Line { end: 3, next: 5 }
        ));
        assert!(matches!(
            scan_line(b"abc\r", 0, 0, 3),
            LineScan::Incomplete { scanned: 3 }
        ));
        assert!(matches!(
            scan_line(b"abc", 0, 0, 3),
            LineScan::Incomplete { scanned: 3 }
        ));
        assert!(matches!(scan_line(b"abcd", 0, 0, 3), LineScan::TooLong));
        assert!(matches!(scan_line(b"abcd\n", 0, 0, 3), LineScan::TooLong));
        assert!(matches!(scan_line(b"a\rb\n", 0, 0, 3), LineScan::BareCr));
        assert!(matches!(
            scan_line(b"xx\nab\n", 3, 4, 3),
            LineScan::Line { end: 5, next: 6 }
        ));
    }

    #[test]
    fn header_line_splits_at_first_raw_colon() {
        let h = parse_header_line(b"a:b:c", 10, true, b'\n').unwrap();
        assert_eq!((h.name, h.value), (10..11, 12..15));
        let h = parse_header_line(b"a\\\\:b", 0, true, b'\n').unwrap();
        assert_eq!((h.name, h.value), (0..3, 4..5));
        assert_eq!(
            parse_header_line(b"a\\:b", 0, true, b'\n').unwrap_err(),
            Error::InvalidEscape(b':')
        );
        // Without escaping, a backslash is an ordinary octet.
        let h = parse_header_line(b"a\\:b", 0, false, b'\n').unwrap();
        assert_eq!((h.name, h.value), (0..2, 3..4));
    }

    #[test]
    fn minimal_frame_and_heartbeat() {
        assert_eq!(
            one(b"DISCONNECT\n\n\0", Version::V1_2).unwrap(),
            Some(Decoded::Frame(Frame::new(Command::Disconnect)))
        );
        assert_eq!(one(b"\n", Version::V1_2).unwrap(), Some(Decoded::Heartbeat));
        assert_eq!(one(b"", Version::V1_2).unwrap(), None);
    }

    #[test]
    fn decoder_keeps_header_allocation_modest() {
        let mut d = Decoder::new(Version::V1_2, Limits::default());
        let mut input = b"SEND\n".to_vec();
        for i in 0..200 {
            input.extend_from_slice(format!("h{i}:v\n").as_bytes());
        }
        input.extend_from_slice(b"\n\0");
        let mut buf = BytesMut::from(&input[..]);
        let Some(Decoded::Frame(f)) = d.decode(&mut buf).unwrap() else {
            panic!("expected a frame")
        };
        assert_eq!(f.headers.len(), 200);
        assert!(d.p.headers.capacity() <= 64);
    }
}
