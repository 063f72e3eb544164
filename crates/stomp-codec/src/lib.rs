//! Pure STOMP 1.0 / 1.1 / 1.2 codec, with RabbitMQ's parser rules where they differ from
//! the spec.
//!
//! Bytes in, typed frames out, and back: no I/O, no async, no broker types, so every
//! function here can be fuzzed on its own (`fuzz/` holds the cargo-fuzz target).
//!
//! # Layout
//! - [`command`]: the fifteen commands and the three protocol [`Version`]s, and which
//!   (command, version) pairs escape their headers.
//! - [`frame`]: [`Frame`] (command, ordered headers, body) and [`Decoded`] (a frame or a
//!   heart-beat).
//! - [`mod@decode`]: the incremental, resumable parser ([`Decoder`], and the one-shot [`decode()`]
//!   function) and its [`Limits`].
//! - [`mod@encode`]: the writer ([`encode()`], [`encode_with`], [`encode_head`] +
//!   [`encode_tail`], [`encode_heartbeat`]) with automatic `content-length`.
//! - [`escape`]: header escaping (`\r \n \c \\`) in both directions.
//! - [`negotiate`]: `accept-version` and `heart-beat` parsing and negotiation.
//! - [`error`]: decode and encode errors; decode errors name the limit or rule broken so
//!   the broker can say so in an ERROR frame.
//!
//! # Example
//! ```
//! use bytes::BytesMut;
//! use warren_stomp_codec::{encode, Command, Decoded, Decoder, Frame, Limits, Version};
//!
//! let mut decoder = Decoder::new(Version::V1_2, Limits::default());
//! let mut read_buf = BytesMut::from(&b"SEND\ndestination:/queue/a\n\nhello\0\n"[..]);
//! let Some(Decoded::Frame(send)) = decoder.decode(&mut read_buf)? else {
//!     unreachable!()
//! };
//! assert_eq!(send.header_str("destination"), Some("/queue/a"));
//! // The LF after the NUL is an EOL between frames: a heart-beat.
//! assert_eq!(decoder.decode(&mut read_buf)?, Some(Decoded::Heartbeat));
//! assert_eq!(decoder.decode(&mut read_buf)?, None);
//!
//! let message = Frame::new(Command::Message)
//!     .with_header("destination", "/queue/a")
//!     .with_header("message-id", "1")
//!     .with_body(send.body); // shared with the read buffer, not copied
//! let mut write_buf = BytesMut::new();
//! encode(&message, Version::V1_2, &mut write_buf)?;
//! assert!(write_buf.ends_with(b"content-length:5\n\nhello\0\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Zero copy
//! A decoded frame's body, and every header name and value without an escape sequence,
//! is a slice of the read buffer (`BytesMut::split_to(..).freeze()`): nothing is copied
//! out of the socket buffer on the publish path.
//!
//! # Where we follow RabbitMQ rather than the letter of the spec
//! The spec is the base; RabbitMQ's `rabbit_stomp_frame` wins where it is more lenient
//! (so clients that work against RabbitMQ work against us) or stricter (so we refuse
//! what RabbitMQ refuses). Each rule is written down next to the code that implements
//! it; in short:
//! - CR LF ends a line in every version, not only 1.2; a CR not followed by LF is an error.
//! - NUL octets between frames are skipped, like EOLs (but only EOLs are heart-beats).
//! - `\r` is a valid escape in 1.1 too, and header values may contain raw colons.
//! - Header names and values are octets, not necessarily UTF-8.
//! - Repeated headers: the first wins and later ones are dropped at decode time.
//! - A `content-length` that is not an integer is ignored (the body ends at the first
//!   NUL); a negative one is an error.
//! - Commands are at most 32 octets; an unknown command is reported after its whole frame
//!   is consumed, so the connection can answer with an ERROR frame and carry on.
//! - Encoded frames get `content-length` when the body is non-empty and a trailing LF
//!   after the NUL, as RabbitMQ writes them.

pub mod command;
pub mod decode;
pub mod encode;
pub mod error;
pub mod escape;
pub mod frame;
pub mod negotiate;

pub use command::{Command, Version};
pub use decode::{decode, Decoder, Limit, Limits, MAX_COMMAND_LEN};
pub use encode::{
    encode, encode_head, encode_heartbeat, encode_tail, encode_with, ContentLength, EncodeOptions,
};
pub use error::{EncodeError, Error};
pub use frame::{Decoded, Frame};
pub use negotiate::{
    negotiate_heartbeat, negotiate_version, HeartBeat, HeartBeatIntervals, InvalidHeartBeat,
};

/// Header names the codec itself reads or writes.
pub mod headers {
    pub const CONTENT_LENGTH: &str = "content-length";
    pub const ACCEPT_VERSION: &str = "accept-version";
    pub const HEART_BEAT: &str = "heart-beat";
    pub const VERSION: &str = "version";
}
