//! The publish hot path: every message a producer sends is the same three frames
//! (`basic.publish`, content header, body) except for the 16-byte stamp, so they are
//! encoded once with the codec into a template, and each publish is one `memcpy` of the
//! template into the connection's write buffer plus a 16-byte patch.

use bytes::BytesMut;
use warren_amqp_codec::frame::{write_content, FRAME_OVERHEAD};
use warren_amqp_codec::methods::BasicPublish;
use warren_amqp_codec::{BasicProperties, Method};

use crate::payload::{write_stamp, STAMP_LEN};

pub struct PublishTemplate {
    bytes: Vec<u8>,
    /// Offset of the body's first byte, when the body is long enough for a stamp.
    stamp_at: Option<usize>,
}

impl PublishTemplate {
    pub fn new(
        channel: u16,
        exchange: &str,
        routing_key: &str,
        size: usize,
        persistent: bool,
        frame_max: u32,
    ) -> PublishTemplate {
        let method: Method = BasicPublish {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            ..Default::default()
        }
        .into();
        let props = BasicProperties {
            delivery_mode: persistent.then_some(2),
            ..Default::default()
        }
        .to_bytes();
        let body = vec![0u8; size];
        let mut buf = BytesMut::new();
        write_content(&mut buf, channel, &method, &props, &body, frame_max);
        // The first body frame ends the buffer minus the other body frames; it starts
        // `size` bytes (plus one frame overhead per extra frame) before the end.
        let stamp_at = (size >= STAMP_LEN).then(|| {
            let chunk = if frame_max == 0 {
                size
            } else {
                frame_max as usize - FRAME_OVERHEAD
            };
            let frames = size.div_ceil(chunk).max(1);
            buf.len() - size - frames * FRAME_OVERHEAD + 7
        });
        PublishTemplate {
            bytes: buf.to_vec(),
            stamp_at,
        }
    }

    /// Wire size of one publish.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends one publish stamped with `ts_ns` and `seq`.
    #[inline]
    pub fn write(&self, out: &mut BytesMut, ts_ns: u64, seq: u64) {
        let at = out.len();
        out.extend_from_slice(&self.bytes);
        if let Some(s) = self.stamp_at {
            write_stamp(&mut out[at + s..at + s + STAMP_LEN], ts_ns, seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::read_stamp;
    use bytes::Bytes;
    use warren_amqp_codec::frame::decode_frame;
    use warren_amqp_codec::{ContentHeader, FrameType, PropertiesView};

    fn decode_all(mut buf: BytesMut, frame_max: u32) -> Vec<warren_amqp_codec::Frame> {
        let mut v = Vec::new();
        while let Some(f) = decode_frame(&mut buf, frame_max).unwrap() {
            v.push(f);
        }
        assert!(buf.is_empty());
        v
    }

    #[test]
    fn template_is_a_valid_publish_with_the_stamp_in_the_body() {
        for (size, frame_max, bodies) in [(100, 131072, 1), (10_000, 4096, 3), (16, 0, 1)] {
            let t = PublishTemplate::new(5, "ex", "rk", size, true, frame_max);
            let mut out = BytesMut::new();
            t.write(&mut out, 0xAABB, 0xCCDD);
            t.write(&mut out, 1, 2);
            assert_eq!(out.len(), 2 * t.len());
            let frames = decode_all(out, frame_max);
            assert_eq!(frames.len(), 2 * (2 + bodies));
            let m = frames[0].method().unwrap();
            assert!(
                matches!(m, Method::BasicPublish(ref p) if p.exchange == "ex" && p.routing_key == "rk")
            );
            assert_eq!(frames[0].channel, 5);
            let h = ContentHeader::decode(&frames[1].payload).unwrap();
            assert_eq!(h.body_size, size as u64);
            assert!(PropertiesView::parse(&h.properties).unwrap().persistent());
            assert_eq!(frames[2].frame_type, FrameType::Body);
            assert_eq!(read_stamp(&frames[2].payload), Some((0xAABB, 0xCCDD)));
            let second: Bytes = frames[2 + bodies + 2].payload.clone();
            assert_eq!(read_stamp(&second), Some((1, 2)));
        }
    }

    #[test]
    fn tiny_bodies_have_no_stamp() {
        let t = PublishTemplate::new(1, "", "q", 4, false, 131072);
        let mut out = BytesMut::new();
        t.write(&mut out, 9, 9);
        let frames = decode_all(out, 131072);
        assert_eq!(&frames[2].payload[..], &[0, 0, 0, 0]);
        let h = ContentHeader::decode(&frames[1].payload).unwrap();
        assert_eq!(&h.properties[..], &[0, 0]);
    }
}
