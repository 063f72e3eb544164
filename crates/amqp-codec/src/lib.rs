//! Pure AMQP 0-9-1 codec, with RabbitMQ's extensions.
//!
//! Bytes in, typed frames out, and back: no I/O, no async, no broker types, so every
//! function here can be fuzzed on its own.
//!
//! # Layout
//! - [`frame`]: the frame layer (type, channel, size, payload, frame-end) and the protocol
//!   header.
//! - [`wire`]: primitive field encodings (octet ... longstr) and [`ShortStr`], a `Bytes`-backed
//!   string so names sliced from a read buffer are shared, not copied.
//! - [`table`]: field tables and field values with RabbitMQ's type tags.
//! - [`methods`]: every method of the 0-9-1 spec (66 with RabbitMQ's extensions), decoded
//!   and encoded by one table-driven macro so no method is written twice.
//! - [`properties`]: the content header. [`properties::BasicProperties`] is the full parsed
//!   form; [`properties::PropertiesView`] skims the raw bytes without allocating, which is
//!   what the publish hot path uses: the broker keeps the raw property bytes and writes them
//!   back out unchanged on delivery.
//!
//! Bodies are never copied by the codec: a body frame's payload is a slice of the read buffer.

pub mod error;
pub mod frame;
pub mod methods;
pub mod properties;
pub mod table;
pub mod wire;

pub use error::CodecError;
pub use frame::{Frame, FrameHeader, FrameType, FRAME_END, FRAME_MIN_SIZE, PROTOCOL_HEADER};
pub use methods::Method;
pub use properties::{BasicProperties, ContentHeader, PropertiesView};
pub use table::{FieldTable, FieldValue};
pub use wire::ShortStr;

/// AMQP reply codes (spec constants) used by the broker.
pub mod reply {
    pub const REPLY_SUCCESS: u16 = 200;
    pub const CONTENT_TOO_LARGE: u16 = 311;
    pub const NO_ROUTE: u16 = 312;
    pub const NO_CONSUMERS: u16 = 313;
    pub const CONNECTION_FORCED: u16 = 320;
    pub const INVALID_PATH: u16 = 402;
    pub const ACCESS_REFUSED: u16 = 403;
    pub const NOT_FOUND: u16 = 404;
    pub const RESOURCE_LOCKED: u16 = 405;
    pub const PRECONDITION_FAILED: u16 = 406;
    pub const FRAME_ERROR: u16 = 501;
    pub const SYNTAX_ERROR: u16 = 502;
    pub const COMMAND_INVALID: u16 = 503;
    pub const CHANNEL_ERROR: u16 = 504;
    pub const UNEXPECTED_FRAME: u16 = 505;
    pub const RESOURCE_ERROR: u16 = 506;
    pub const NOT_ALLOWED: u16 = 530;
    pub const NOT_IMPLEMENTED: u16 = 540;
    pub const INTERNAL_ERROR: u16 = 541;

    /// The symbolic name RabbitMQ prefixes to reply texts ("NOT_FOUND - no queue ...").
    pub fn name(code: u16) -> &'static str {
        match code {
            200 => "OK",
            311 => "CONTENT_TOO_LARGE",
            312 => "NO_ROUTE",
            313 => "NO_CONSUMERS",
            320 => "CONNECTION_FORCED",
            402 => "INVALID_PATH",
            403 => "ACCESS_REFUSED",
            404 => "NOT_FOUND",
            405 => "RESOURCE_LOCKED",
            406 => "PRECONDITION_FAILED",
            501 => "FRAME_ERROR",
            502 => "SYNTAX_ERROR",
            503 => "COMMAND_INVALID",
            504 => "CHANNEL_ERROR",
            505 => "UNEXPECTED_FRAME",
            506 => "RESOURCE_ERROR",
            530 => "NOT_ALLOWED",
            540 => "NOT_IMPLEMENTED",
            541 => "INTERNAL_ERROR",
            _ => "UNKNOWN",
        }
    }

    /// Whether a reply code is a connection exception (as opposed to a channel exception).
    pub fn is_connection_error(code: u16) -> bool {
        matches!(code, 320 | 402 | 501..=505 | 530 | 540 | 541)
    }
}
