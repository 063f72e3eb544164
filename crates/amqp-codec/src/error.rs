//! Decoding errors. Each maps to the reply code a RabbitMQ client expects to see.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The payload ended before the field being read (RabbitMQ: 502 SYNTAX_ERROR / frame error).
    Truncated,
    /// A frame's end octet was not 0xCE.
    BadFrameEnd(u8),
    /// A frame type octet we do not know.
    UnknownFrameType(u8),
    /// A frame larger than the negotiated frame_max.
    FrameTooLarge { size: u32, max: u32 },
    /// A class/method pair that no spec defines.
    UnknownMethod { class_id: u16, method_id: u16 },
    /// A field table value with an unknown type tag.
    UnknownFieldType(u8),
    /// A short string that is not valid UTF-8.
    InvalidUtf8,
    /// A content header for a class other than basic.
    UnknownContentClass(u16),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Truncated => write!(f, "truncated payload"),
            CodecError::BadFrameEnd(b) => write!(f, "bad frame end marker {b:#04x}"),
            CodecError::UnknownFrameType(t) => write!(f, "unknown frame type {t}"),
            CodecError::FrameTooLarge { size, max } => {
                write!(f, "frame size {size} exceeds frame_max {max}")
            }
            CodecError::UnknownMethod {
                class_id,
                method_id,
            } => write!(f, "unknown method {class_id}/{method_id}"),
            CodecError::UnknownFieldType(t) => write!(f, "unknown field type {:?}", *t as char),
            CodecError::InvalidUtf8 => write!(f, "short string is not valid UTF-8"),
            CodecError::UnknownContentClass(c) => write!(f, "unknown content class {c}"),
        }
    }
}

impl std::error::Error for CodecError {}

pub type Result<T> = std::result::Result<T, CodecError>;
