//! Decode and encode errors.
//!
//! Every decode error but one leaves the stream out of sync: the broker sends an ERROR
//! frame whose `message` is the error's `Display` and closes the connection, as RabbitMQ
//! does. The exception is [`Error::UnknownCommand`], returned only after the whole frame
//! has been consumed, so the connection can answer with an ERROR frame and read on
//! (RabbitMQ's processor does the same for an unknown command).

use std::fmt;

use bytes::Bytes;

use crate::command::Version;
use crate::decode::Limit;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A CR that is not followed by LF, anywhere a line ends. RabbitMQ:
    /// `unexpected_chars_*`.
    UnexpectedCr,
    /// The command line is longer than [`crate::MAX_COMMAND_LEN`] octets; it cannot be a
    /// command, and the stream is probably not STOMP at all.
    CommandTooLong,
    /// A well-formed frame with a command we do not know. The frame has been consumed and
    /// the stream is still in sync.
    UnknownCommand(Bytes),
    /// A header line without a colon; carries the line. RabbitMQ: `header_no_value`.
    HeaderWithoutColon(Bytes),
    /// A backslash followed by anything but `r`, `n`, `c` or `\`; carries that octet.
    InvalidEscape(u8),
    /// A negative `content-length`; carries the header value.
    InvalidContentLength(Bytes),
    /// The octet after a `content-length` body is not NUL. RabbitMQ:
    /// `missing_body_terminator`.
    MissingNul,
    /// A configured limit was exceeded; names it so the ERROR frame can say which.
    LimitExceeded { limit: Limit, max: usize },
}

impl Error {
    /// Whether the stream is out of sync after this error (all but `UnknownCommand`).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Error::UnknownCommand(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnexpectedCr => write!(f, "CR not followed by LF"),
            Error::CommandTooLong => write!(
                f,
                "command line longer than {} octets",
                crate::decode::MAX_COMMAND_LEN
            ),
            Error::UnknownCommand(c) => {
                write!(
                    f,
                    "could not interpret command {}",
                    String::from_utf8_lossy(c)
                )
            }
            Error::HeaderWithoutColon(line) => {
                write!(
                    f,
                    "header without a colon: {}",
                    String::from_utf8_lossy(line)
                )
            }
            Error::InvalidEscape(b) => {
                write!(
                    f,
                    "undefined escape sequence \\{}",
                    (*b as char).escape_default()
                )
            }
            Error::InvalidContentLength(v) => {
                write!(f, "invalid content-length {}", String::from_utf8_lossy(v))
            }
            Error::MissingNul => write!(f, "frame body not terminated by NUL"),
            Error::LimitExceeded { limit, max } => {
                write!(f, "{} ({} is {max})", limit.description(), limit.name())
            }
        }
    }
}

impl std::error::Error for Error {}

/// Why a frame could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A header that cannot be written without escaping, in a frame that is not escaped
    /// (any 1.0 frame, and CONNECT/STOMP/CONNECTED): a CR or LF anywhere, or a colon in
    /// the name. Carries the header name.
    Unescapable { name: Bytes, version: Version },
    /// With [`crate::ContentLength::AsGiven`], a body containing NUL and no
    /// `content-length` header that would let the reader find its end.
    BodyContainsNul,
    /// With [`crate::ContentLength::AsGiven`], a `content-length` header that does not
    /// match the body (or is negative); carries the header value.
    ContentLengthMismatch { declared: Bytes, actual: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Unescapable { name, version } => write!(
                f,
                "header {} cannot be written unescaped (STOMP {version})",
                String::from_utf8_lossy(name)
            ),
            EncodeError::BodyContainsNul => {
                write!(f, "body contains NUL and there is no content-length")
            }
            EncodeError::ContentLengthMismatch { declared, actual } => write!(
                f,
                "content-length {} does not match the body's {actual} octets",
                String::from_utf8_lossy(declared)
            ),
        }
    }
}

impl std::error::Error for EncodeError {}
