//! The frame type: a command, an ordered header list and a body, all `Bytes` so that a
//! decoded frame shares the read buffer instead of copying it.

use bytes::Bytes;

use crate::command::Command;
use crate::headers::CONTENT_LENGTH;

/// What one call to the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Frame(Frame),
    /// A bare EOL ("\n" or "\r\n") between frames. The broker uses it to track the peer's
    /// liveness; note that any received octet is proof of life (RabbitMQ's heart-beat
    /// monitor watches the socket's receive counter), so a reader may prefer to count
    /// bytes instead.
    Heartbeat,
}

/// One STOMP frame.
///
/// Headers keep their wire order. A decoded frame never holds two headers of the same
/// name: the spec says the first occurrence is the one that counts, and like RabbitMQ we
/// drop the rest at decode time so no consumer of the frame can get it wrong. A frame
/// built for encoding may repeat a name; it is written as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: Command,
    pub headers: Vec<(Bytes, Bytes)>,
    pub body: Bytes,
}

impl Frame {
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Builder form of [`Frame::push_header`].
    pub fn with_header(mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> Frame {
        self.push_header(name, value);
        self
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Frame {
        self.body = body.into();
        self
    }

    /// Appends a header (after any existing one of the same name, which therefore wins).
    pub fn push_header(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.headers.push((name.into(), value.into()));
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_ref() == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// [`Frame::header`] as text; `None` if absent or not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The body length the first `content-length` header declares, read as the decoder
    /// reads it: surrounding whitespace and a `+` are allowed; a value that is not a
    /// non-negative integer gives `None`.
    pub fn content_length(&self) -> Option<u64> {
        match declared_length(self.header(CONTENT_LENGTH).map(|v| v.as_ref())) {
            DeclaredLength::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Strips leading spaces from every header value. STOMP 1.0 clients often write
    /// `name: value`; RabbitMQ applies exactly this transformation to every frame of a
    /// connection that negotiated 1.0 (its `trim_headers`), and 1.1+ forbids the padding,
    /// so the broker calls this for 1.0 sessions only.
    pub fn trim_value_leading_spaces(&mut self) {
        for (_, value) in &mut self.headers {
            let n = value.iter().take_while(|&&b| b == b' ').count();
            if n > 0 {
                *value = value.slice(n..);
            }
        }
    }
}

/// How a `content-length` header value is read. RabbitMQ reads it with
/// `binary_to_integer(string:trim(V))` inside a `catch`: surrounding whitespace is
/// ignored, a sign is allowed, a value that is not an integer is treated as if the header
/// were absent, and a negative one is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeclaredLength {
    /// No header, or a value that is not an integer: the body ends at the first NUL.
    Absent,
    /// Saturates at `u64::MAX`, which any body limit refuses.
    Length(u64),
    Negative,
}

pub(crate) fn declared_length(value: Option<&[u8]>) -> DeclaredLength {
    let Some(value) = value else {
        return DeclaredLength::Absent;
    };
    let v = value.trim_ascii();
    let (negative, digits) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, v),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return DeclaredLength::Absent;
    }
    let n = digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    if negative && n != 0 {
        DeclaredLength::Negative
    } else {
        DeclaredLength::Length(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_header_wins_on_lookup() {
        let f = Frame::new(Command::Send)
            .with_header("a", "1")
            .with_header("a", "2");
        assert_eq!(f.header("a").unwrap().as_ref(), b"1");
        assert_eq!(f.header_str("a"), Some("1"));
        assert_eq!(f.header("b"), None);
    }

    #[test]
    fn declared_lengths_read_like_rabbitmq() {
        use DeclaredLength::*;
        assert_eq!(declared_length(None), Absent);
        assert_eq!(declared_length(Some(b"5")), Length(5));
        assert_eq!(declared_length(Some(b" 5 ")), Length(5));
        assert_eq!(declared_length(Some(b"\t+12\r")), Length(12));
        assert_eq!(declared_length(Some(b"007")), Length(7));
        assert_eq!(declared_length(Some(b"-0")), Length(0));
        assert_eq!(declared_length(Some(b"-3")), Negative);
        assert_eq!(declared_length(Some(b"")), Absent);
        assert_eq!(declared_length(Some(b"5x")), Absent);
        assert_eq!(declared_length(Some(b"1 2")), Absent);
        assert_eq!(declared_length(Some(b"+")), Absent);
        assert_eq!(
            declared_length(Some(b"99999999999999999999999999")),
            Length(u64::MAX)
        );
    }

    #[test]
    fn trims_leading_spaces_only() {
        let mut f = Frame::new(Command::Send)
            .with_header("destination", "  /queue/a ")
            .with_header("x", "\tb");
        f.trim_value_leading_spaces();
        assert_eq!(f.header_str("destination"), Some("/queue/a "));
        assert_eq!(f.header_str("x"), Some("\tb"));
    }
}
