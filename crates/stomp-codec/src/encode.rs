//! The frame writer.
//!
//! Frames are written as RabbitMQ writes them: command, headers in the order given,
//! `content-length` last (when the body is non-empty), blank line, body, NUL, and one
//! trailing LF (RabbitMQ added it for clients that read line by line; readers treat it
//! as a heart-beat, which is harmless). Headers are escaped when the (command, version)
//! pair calls for it (see [`crate::Command::escapes_headers`]); a header that cannot be written
//! in an unescaped frame is refused rather than written so that it would corrupt the
//! stream.

use bytes::{BufMut, BytesMut};

use crate::command::Version;
use crate::error::EncodeError;
use crate::escape;
use crate::frame::{declared_length, DeclaredLength, Frame};
use crate::headers::CONTENT_LENGTH;

/// Who writes the `content-length` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentLength {
    /// The encoder: any `content-length` in the frame is dropped and, if the body is
    /// non-empty, the right one is written after the other headers (RabbitMQ's rule).
    /// Bodies containing NUL are always safe.
    Auto,
    /// The frame: headers are written exactly as given. The encoder checks that the
    /// reader will find the body's end: a `content-length` must match the body, and
    /// without one the body must not contain NUL.
    AsGiven,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    pub content_length: ContentLength,
    /// Write an LF after the NUL, as RabbitMQ does.
    pub trailing_eol: bool,
}

impl Default for EncodeOptions {
    fn default() -> EncodeOptions {
        EncodeOptions {
            content_length: ContentLength::Auto,
            trailing_eol: true,
        }
    }
}

/// Writes `frame` with the default options (automatic `content-length`, trailing LF).
pub fn encode(frame: &Frame, version: Version, buf: &mut BytesMut) -> Result<(), EncodeError> {
    encode_with(frame, version, &EncodeOptions::default(), buf)
}

/// Writes `frame`. On error nothing is written.
pub fn encode_with(
    frame: &Frame,
    version: Version,
    options: &EncodeOptions,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_head(frame, version, options, buf)?;
    buf.reserve(frame.body.len() + 2);
    buf.put_slice(&frame.body);
    encode_tail(options, buf);
    Ok(())
}

/// Writes everything before the body: command, headers, blank line (`content-length`
/// counted from `frame.body`). For writers that send a large body straight from its own
/// buffer (a vectored write) instead of copying it; they follow the body with
/// [`encode_tail`]. On error nothing is written.
pub fn encode_head(
    frame: &Frame,
    version: Version,
    options: &EncodeOptions,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let escaping = frame.command.escapes_headers(version);
    let auto = options.content_length == ContentLength::Auto;
    let is_content_length = |name: &[u8]| name == CONTENT_LENGTH.as_bytes();

    // Validate everything before writing anything.
    if !escaping {
        for (name, value) in &frame.headers {
            if auto && is_content_length(name) {
                continue;
            }
            if name.iter().any(|&b| matches!(b, b':' | b'\r' | b'\n'))
                || value.iter().any(|&b| matches!(b, b'\r' | b'\n'))
            {
                return Err(EncodeError::Unescapable {
                    name: name.clone(),
                    version,
                });
            }
        }
    }
    if !auto {
        let declared = frame.header(CONTENT_LENGTH);
        match declared_length(declared.map(|v| v.as_ref())) {
            DeclaredLength::Length(n) if n == frame.body.len() as u64 => {}
            DeclaredLength::Length(_) | DeclaredLength::Negative => {
                return Err(EncodeError::ContentLengthMismatch {
                    declared: declared.cloned().unwrap_or_default(),
                    actual: frame.body.len(),
                })
            }
            DeclaredLength::Absent if frame.body.contains(&0) => {
                return Err(EncodeError::BodyContainsNul)
            }
            DeclaredLength::Absent => {}
        }
    }

    let command = frame.command.as_str().as_bytes();
    let headers_len: usize = frame
        .headers
        .iter()
        .map(|(n, v)| {
            if escaping {
                escape::escaped_len(n) + escape::escaped_len(v) + 2
            } else {
                n.len() + v.len() + 2
            }
        })
        .sum();
    buf.reserve(command.len() + headers_len + 40);
    buf.put_slice(command);
    buf.put_u8(b'\n');
    for (name, value) in &frame.headers {
        if auto && is_content_length(name) {
            continue;
        }
        if escaping {
            escape::escape_into(name, buf);
            buf.put_u8(b':');
            escape::escape_into(value, buf);
        } else {
            buf.put_slice(name);
            buf.put_u8(b':');
            buf.put_slice(value);
        }
        buf.put_u8(b'\n');
    }
    if auto && !frame.body.is_empty() {
        buf.put_slice(CONTENT_LENGTH.as_bytes());
        buf.put_u8(b':');
        put_decimal(frame.body.len() as u64, buf);
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
    Ok(())
}

/// Writes what follows the body: NUL, and the trailing LF if the options ask for it.
pub fn encode_tail(options: &EncodeOptions, buf: &mut BytesMut) {
    buf.put_u8(0);
    if options.trailing_eol {
        buf.put_u8(b'\n');
    }
}

/// A heart-beat: one LF, as RabbitMQ sends.
pub fn encode_heartbeat(buf: &mut BytesMut) {
    buf.put_u8(b'\n');
}

fn put_decimal(mut n: u64, buf: &mut BytesMut) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(n: u64) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_decimal(n, &mut b);
        b.to_vec()
    }

    #[test]
    fn decimals() {
        assert_eq!(put(0), b"0");
        assert_eq!(put(7), b"7");
        assert_eq!(put(1234567890), b"1234567890");
        assert_eq!(put(u64::MAX), u64::MAX.to_string().as_bytes());
    }
}
