//! Zero-copy frame scanning for the hot path.
//!
//! The codec's `decode_frame` splits each frame off the read buffer as a `Bytes` (a
//! refcount per frame) and `Method::decode` builds owned short strings. That is right for
//! a broker, which keeps what it reads, but a load generator only needs to *look*: a
//! delivery tag, a body size, the stamp in the first body bytes. So the worker peeks at
//! frames in place with [`peek`] and reads those few fields straight from the slice;
//! anything else (rare: `consume-ok`, `connection.blocked`, closes) goes through the
//! codec's full `Method::decode`. Frames are validated as the codec does (known type,
//! end octet).

use std::fmt;

use warren_amqp_codec::{FrameType, FRAME_END};

/// A byte stream that is not AMQP frames (any more): nothing after it can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    UnknownType(u8),
    BadEnd(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::UnknownType(t) => write!(f, "unknown frame type {t}"),
            FrameError::BadEnd(b) => write!(f, "bad frame end marker {b:#04x}"),
        }
    }
}

/// A frame still lying in the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame<'a> {
    pub kind: FrameType,
    pub channel: u16,
    pub payload: &'a [u8],
}

/// The frame at the front of `buf` and its total length on the wire, or `None` if it is
/// not all there yet.
#[inline]
pub fn peek(buf: &[u8]) -> Result<Option<(RawFrame<'_>, usize)>, FrameError> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let kind = match buf[0] {
        1 => FrameType::Method,
        2 => FrameType::Header,
        3 => FrameType::Body,
        8 => FrameType::Heartbeat,
        t => return Err(FrameError::UnknownType(t)),
    };
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    let total = 7 + size + 1;
    if buf.len() < total {
        return Ok(None);
    }
    if buf[total - 1] != FRAME_END {
        return Err(FrameError::BadEnd(buf[total - 1]));
    }
    Ok(Some((
        RawFrame {
            kind,
            channel,
            payload: &buf[7..7 + size],
        },
        total,
    )))
}

/// Total wire length of the frame at the front of `buf` once its header is in, so the
/// reader can make room for a frame larger than its buffer.
pub fn wanted(buf: &[u8]) -> Option<usize> {
    (buf.len() >= 7).then(|| 8 + u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize)
}

/// (class id, method id) of a method frame payload.
#[inline]
pub fn method_ids(payload: &[u8]) -> (u16, u16) {
    if payload.len() < 4 {
        return (0, 0);
    }
    (
        u16::from_be_bytes([payload[0], payload[1]]),
        u16::from_be_bytes([payload[2], payload[3]]),
    )
}

pub const BASIC_DELIVER: (u16, u16) = (60, 60);
pub const BASIC_ACK: (u16, u16) = (60, 80);
pub const BASIC_NACK: (u16, u16) = (60, 120);

/// (delivery tag, redelivered) of a `basic.deliver` payload: the tag follows the
/// consumer tag, and the bit octet after it holds `redelivered`.
#[inline]
pub fn deliver_fields(payload: &[u8]) -> Option<(u64, bool)> {
    let tag_len = *payload.get(4)? as usize;
    let at = 5 + tag_len;
    let tag = u64::from_be_bytes(payload.get(at..at + 8)?.try_into().ok()?);
    Some((tag, payload.get(at + 8)? & 1 != 0))
}

/// (delivery tag, multiple) of a `basic.ack` or `basic.nack` payload: both start with the
/// tag, then a bit octet whose lowest bit is `multiple`.
#[inline]
pub fn ack_fields(payload: &[u8]) -> Option<(u64, bool)> {
    let tag = u64::from_be_bytes(payload.get(4..12)?.try_into().ok()?);
    Some((tag, payload.get(12)? & 1 != 0))
}

/// The body size of a content header payload.
#[inline]
pub fn body_size(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(4..12)?.try_into().ok()?))
}

/// The `x-stream-offset` header of a content header payload, as stream queues stamp on
/// each delivery. Found by its key (length octet and name) rather than by decoding the
/// whole table: the key cannot occur in our own properties otherwise, and this runs
/// once per delivery.
#[inline]
pub fn stream_offset(payload: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\x0fx-stream-offset";
    // class, weight, body size, flags: the properties start at 14.
    let props = payload.get(14..)?;
    let at = props.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let v = props.get(at + 1..)?;
    let n = match props.get(at)? {
        b'l' => i64::from_be_bytes(v.get(..8)?.try_into().ok()?),
        b'I' => i64::from(i32::from_be_bytes(v.get(..4)?.try_into().ok()?)),
        _ => return None,
    };
    u64::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use warren_amqp_codec::frame::{write_content, write_method};
    use warren_amqp_codec::methods::{BasicAck, BasicDeliver, BasicNack};
    use warren_amqp_codec::Method;

    #[test]
    fn reads_what_the_codec_wrote() {
        let mut buf = BytesMut::new();
        let deliver: Method = BasicDeliver {
            consumer_tag: "amq.ctag-xyz".into(),
            delivery_tag: 123_456_789,
            redelivered: true,
            exchange: "".into(),
            routing_key: "q".into(),
        }
        .into();
        write_content(&mut buf, 7, &deliver, &[0, 0], &[9u8; 5000], 4096);
        write_method(
            &mut buf,
            2,
            &BasicAck {
                delivery_tag: 77,
                multiple: true,
            }
            .into(),
        );
        write_method(
            &mut buf,
            2,
            &BasicNack {
                delivery_tag: 78,
                multiple: false,
                requeue: true,
            }
            .into(),
        );

        let mut at = 0;
        let mut frames = Vec::new();
        while let Some((f, n)) = peek(&buf[at..]).unwrap() {
            frames.push((f.kind, f.channel, f.payload.to_vec()));
            at += n;
        }
        assert_eq!(at, buf.len());
        // method, header, two body frames (5000 > 4088), ack, nack
        assert_eq!(frames.len(), 6);
        assert_eq!(method_ids(&frames[0].2), BASIC_DELIVER);
        assert_eq!(deliver_fields(&frames[0].2), Some((123_456_789, true)));
        assert_eq!(frames[1].0, FrameType::Header);
        assert_eq!(body_size(&frames[1].2), Some(5000));
        assert_eq!(frames[2].2.len() + frames[3].2.len(), 5000);
        assert_eq!(method_ids(&frames[4].2), BASIC_ACK);
        assert_eq!(ack_fields(&frames[4].2), Some((77, true)));
        assert_eq!(method_ids(&frames[5].2), BASIC_NACK);
        assert_eq!(ack_fields(&frames[5].2), Some((78, false)));
    }

    #[test]
    fn partial_and_malformed_frames() {
        let mut buf = BytesMut::new();
        write_method(&mut buf, 1, &BasicAck::default().into());
        let n = buf.len();
        assert_eq!(peek(&buf[..n - 1]).unwrap(), None);
        assert_eq!(wanted(&buf[..7]), Some(n));
        buf[n - 1] = 0;
        assert_eq!(peek(&buf).unwrap_err(), FrameError::BadEnd(0));
        assert_eq!(
            peek(b"AMQP\x00\x00\x09\x01").unwrap_err(),
            FrameError::UnknownType(b'A')
        );
        assert_eq!(deliver_fields(&[0, 60, 0, 60, 200]), None);
    }

    #[test]
    fn finds_the_stream_offset_header() {
        use warren_amqp_codec::{BasicProperties, FieldTable, FieldValue};
        let header = |headers: Option<FieldTable>| {
            let props = BasicProperties {
                content_type: Some("text/plain".into()),
                headers,
                ..Default::default()
            }
            .to_bytes();
            let mut buf = BytesMut::new();
            let deliver: Method = BasicDeliver::default().into();
            write_content(&mut buf, 1, &deliver, &props, b"x", 4096);
            let mut frames = Vec::new();
            let mut at = 0;
            while let Some((f, n)) = peek(&buf[at..]).unwrap() {
                frames.push(f.payload.to_vec());
                at += n;
            }
            frames[1].clone()
        };
        let mut t = FieldTable::new();
        t.insert("a", FieldValue::from("b"));
        t.insert("x-stream-offset", FieldValue::I64(1_234_567_890_123));
        assert_eq!(stream_offset(&header(Some(t))), Some(1_234_567_890_123));
        let mut t = FieldTable::new();
        t.insert("x-stream-offset", FieldValue::I32(7));
        assert_eq!(stream_offset(&header(Some(t))), Some(7));
        assert_eq!(stream_offset(&header(None)), None);
        let mut t = FieldTable::new();
        t.insert("x-stream-offset", FieldValue::from("first"));
        assert_eq!(stream_offset(&header(Some(t))), None);
    }
}
