//! The frame layer: `type:u8 channel:u16 size:u32 payload[size] 0xCE`, and the encoders the
//! broker uses to write frames straight into a connection's output buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{CodecError, Result};
use crate::methods::Method;
use crate::properties::ContentHeader;

/// The only protocol header we accept, and the one we answer a wrong header with.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
pub const FRAME_END: u8 = 0xCE;
/// Frame header (7) + frame end (1).
pub const FRAME_OVERHEAD: usize = 8;
/// The spec's minimum frame_max every peer must accept.
pub const FRAME_MIN_SIZE: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    Method = 1,
    Header = 2,
    Body = 3,
    Heartbeat = 8,
}

impl FrameType {
    fn from_u8(t: u8) -> Option<FrameType> {
        Some(match t {
            1 => FrameType::Method,
            2 => FrameType::Header,
            3 => FrameType::Body,
            8 => FrameType::Heartbeat,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub frame_type: u8,
    pub channel: u16,
    pub size: u32,
}

/// One frame, its payload a slice of the read buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub frame_type: FrameType,
    pub channel: u16,
    pub payload: Bytes,
}

impl Frame {
    pub fn method(&self) -> Result<Method> {
        Method::decode(&self.payload)
    }

    pub fn content_header(&self) -> Result<ContentHeader> {
        ContentHeader::decode(&self.payload)
    }
}

/// Decodes one frame from the front of `buf`, consuming it. `Ok(None)` means more bytes
/// are needed. A payload larger than `max_payload` is refused from the header alone
/// (0 means no limit): RabbitMQ accepts payloads up to frame_max itself, so callers pass
/// the negotiated frame_max here.
pub fn decode_frame(buf: &mut BytesMut, max_payload: u32) -> Result<Option<Frame>> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let header = FrameHeader {
        frame_type: buf[0],
        channel: u16::from_be_bytes([buf[1], buf[2]]),
        size: u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]),
    };
    if max_payload != 0 && header.size > max_payload {
        return Err(CodecError::FrameTooLarge {
            frame_type: header.frame_type,
            size: header.size,
            max: max_payload,
        });
    }
    let total = 7 + header.size as usize + 1;
    if buf.len() < total {
        if buf.capacity() < total {
            buf.reserve(total - buf.len());
        }
        return Ok(None);
    }
    let end = buf[total - 1];
    buf.advance(7);
    let payload = buf.split_to(header.size as usize).freeze();
    buf.advance(1);
    if end != FRAME_END {
        return Err(CodecError::BadFrameEnd {
            frame_type: header.frame_type,
            payload,
            end,
        });
    }
    let frame_type = match FrameType::from_u8(header.frame_type) {
        Some(FrameType::Heartbeat) if !payload.is_empty() => None,
        t => t,
    };
    let Some(frame_type) = frame_type else {
        return Err(CodecError::UnknownFrame {
            frame_type: header.frame_type,
            payload,
        });
    };
    Ok(Some(Frame {
        frame_type,
        channel: header.channel,
        payload,
    }))
}

/// Writes a frame header whose size is patched by [`finish_frame`].
#[inline]
fn start_frame(buf: &mut BytesMut, frame_type: FrameType, channel: u16) -> usize {
    buf.put_u8(frame_type as u8);
    buf.put_u16(channel);
    let at = buf.len();
    buf.put_u32(0);
    at
}

#[inline]
fn finish_frame(buf: &mut BytesMut, size_at: usize) {
    let size = (buf.len() - size_at - 4) as u32;
    buf[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    buf.put_u8(FRAME_END);
}

/// Appends a method frame.
pub fn write_method(buf: &mut BytesMut, channel: u16, method: &Method) {
    let at = start_frame(buf, FrameType::Method, channel);
    method.encode(buf);
    finish_frame(buf, at);
}

/// Appends a content header frame carrying raw property bytes.
pub fn write_content_header(
    buf: &mut BytesMut,
    channel: u16,
    class_id: u16,
    body_size: u64,
    properties: &[u8],
) {
    let at = start_frame(buf, FrameType::Header, channel);
    ContentHeader::encode(class_id, body_size, properties, buf);
    finish_frame(buf, at);
}

/// Appends the body, split into as many body frames as `frame_max` requires.
pub fn write_body(buf: &mut BytesMut, channel: u16, body: &[u8], frame_max: u32) {
    let chunk = if frame_max == 0 {
        usize::MAX
    } else {
        frame_max as usize - FRAME_OVERHEAD
    };
    for part in body.chunks(chunk) {
        buf.reserve(part.len() + FRAME_OVERHEAD);
        buf.put_u8(FrameType::Body as u8);
        buf.put_u16(channel);
        buf.put_u32(part.len() as u32);
        buf.put_slice(part);
        buf.put_u8(FRAME_END);
    }
}

/// Appends a method, its content header and its body.
pub fn write_content(
    buf: &mut BytesMut,
    channel: u16,
    method: &Method,
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
) {
    write_method(buf, channel, method);
    write_content_header(buf, channel, 60, body.len() as u64, properties);
    write_body(buf, channel, body, frame_max);
}

/// Appends a `basic.deliver` method frame without building a [`Method`]: the hot path
/// writes straight from borrowed strings.
pub fn write_deliver(
    buf: &mut BytesMut,
    channel: u16,
    consumer_tag: &str,
    delivery_tag: u64,
    redelivered: bool,
    exchange: &str,
    routing_key: &str,
) {
    let at = start_frame(buf, FrameType::Method, channel);
    buf.put_u16(60);
    buf.put_u16(60);
    crate::wire::put_shortstr(buf, consumer_tag);
    buf.put_u64(delivery_tag);
    buf.put_u8(redelivered as u8);
    crate::wire::put_shortstr(buf, exchange);
    crate::wire::put_shortstr(buf, routing_key);
    finish_frame(buf, at);
}

pub fn write_heartbeat(buf: &mut BytesMut) {
    buf.put_slice(&[FrameType::Heartbeat as u8, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::{BasicDeliver, ConnectionTune};

    #[test]
    fn frames_round_trip_and_partial_input_waits() {
        let mut out = BytesMut::new();
        let m: Method = ConnectionTune {
            channel_max: 2047,
            frame_max: 131072,
            heartbeat: 60,
        }
        .into();
        write_method(&mut out, 0, &m);
        write_heartbeat(&mut out);
        let full = out.clone();
        let mut partial = BytesMut::from(&full[..5]);
        assert_eq!(decode_frame(&mut partial, 0).unwrap(), None);
        let f = decode_frame(&mut out, 131072).unwrap().unwrap();
        assert_eq!(f.frame_type, FrameType::Method);
        assert_eq!(f.method().unwrap(), m);
        let hb = decode_frame(&mut out, 131072).unwrap().unwrap();
        assert_eq!(hb.frame_type, FrameType::Heartbeat);
        assert!(out.is_empty());
    }

    #[test]
    fn oversized_bad_end_and_unknown_type_are_errors() {
        let mut out = BytesMut::new();
        write_body(&mut out, 1, &[0u8; 5000], 0);
        assert!(matches!(
            decode_frame(&mut out.clone(), 4096),
            Err(CodecError::FrameTooLarge { size: 5000, .. })
        ));
        assert!(decode_frame(&mut out.clone(), 5000).unwrap().is_some());
        let n = out.len();
        out[n - 1] = 0;
        assert!(matches!(
            decode_frame(&mut out, 0),
            Err(CodecError::BadFrameEnd { end: 0, .. })
        ));
        let mut bad = BytesMut::from(&[9u8, 0, 0, 0, 0, 0, 1, 7, 0xCE][..]);
        assert!(matches!(
            decode_frame(&mut bad, 0),
            Err(CodecError::UnknownFrame { frame_type: 9, .. })
        ));
        let mut hb = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 1, 7, 0xCE][..]);
        assert!(matches!(
            decode_frame(&mut hb, 0),
            Err(CodecError::UnknownFrame { frame_type: 8, .. })
        ));
    }

    #[test]
    fn fast_deliver_matches_generic_encoding() {
        let m = BasicDeliver {
            consumer_tag: "ctag".into(),
            delivery_tag: 77,
            redelivered: true,
            exchange: "ex".into(),
            routing_key: "rk".into(),
        };
        let mut a = BytesMut::new();
        write_method(&mut a, 3, &m.clone().into());
        let mut b = BytesMut::new();
        write_deliver(&mut b, 3, "ctag", 77, true, "ex", "rk");
        assert_eq!(a, b);
    }

    #[test]
    fn content_is_split_by_frame_max() {
        let mut out = BytesMut::new();
        let m: Method = BasicDeliver {
            consumer_tag: "c".into(),
            delivery_tag: 1,
            ..Default::default()
        }
        .into();
        write_content(&mut out, 1, &m, &[0, 0], &[7u8; 10000], 4096);
        let mut frames = Vec::new();
        while let Some(f) = decode_frame(&mut out, 4088).unwrap() {
            frames.push(f);
        }
        // method + header + ceil(10000 / 4088) bodies
        assert_eq!(frames.len(), 2 + 3);
        let body: usize = frames[2..].iter().map(|f| f.payload.len()).sum();
        assert_eq!(body, 10000);
    }
}
