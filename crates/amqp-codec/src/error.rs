//! Decoding errors. Each maps to the reply code a RabbitMQ client expects to see.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The payload ended before the field being read (RabbitMQ: 502 SYNTAX_ERROR / frame error).
    Truncated,
    /// A frame's end octet was not 0xCE. The stream cannot be trusted after this.
    BadFrameEnd {
        frame_type: u8,
        payload: bytes::Bytes,
        end: u8,
    },
    /// A frame of a type we do not know, or a heartbeat with a payload. The stream is
    /// still in sync.
    UnknownFrame {
        frame_type: u8,
        payload: bytes::Bytes,
    },
    /// A frame whose header announces a payload larger than allowed. The stream cannot be
    /// trusted after this.
    FrameTooLarge { frame_type: u8, size: u32, max: u32 },
    /// Bytes left over after a method's last argument.
    TrailingBytes,
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
            CodecError::BadFrameEnd { end, .. } => write!(f, "bad frame end marker {end:#04x}"),
            CodecError::UnknownFrame { frame_type, .. } => {
                write!(f, "unknown frame type {frame_type}")
            }
            CodecError::FrameTooLarge { size, max, .. } => {
                write!(
                    f,
                    "frame payload of {size} bytes exceeds the limit of {max}"
                )
            }
            CodecError::TrailingBytes => write!(f, "trailing bytes after method arguments"),
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
