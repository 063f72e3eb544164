//! Feeds arbitrary bytes to the frame decoder as a stream, with the negotiated and the
//! minimum frame size, and every method frame it accepts to the method decoder: nothing
//! may panic, and every method that decodes must re-encode to a payload that decodes to
//! the same method. Content headers go through the header and property decoders.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use warren_amqp_codec::frame::decode_frame;
use warren_amqp_codec::{BasicProperties, ContentHeader, FrameType, Method, PropertiesView};

fuzz_target!(|data: &[u8]| {
    for max in [131_072, 4096] {
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            match decode_frame(&mut buf, max) {
                Ok(Some(f)) => {
                    assert!(buf.len() < before, "a frame that consumed nothing");
                    match f.frame_type {
                        FrameType::Method => {
                            if let Ok(m) = Method::decode(&f.payload) {
                                let mut out = BytesMut::new();
                                m.encode(&mut out);
                                let again = Method::decode(&out.freeze()).expect("re-encoded method decodes");
                                assert_eq!(again, m);
                            }
                        }
                        FrameType::Header => {
                            if let Ok(h) = ContentHeader::decode(&f.payload) {
                                properties(&h.properties);
                            }
                        }
                        _ => {}
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    // The method decoder on its own, for inputs no frame wraps.
    let _ = Method::decode(&Bytes::copy_from_slice(data));
});

fn properties(raw: &Bytes) {
    let view = PropertiesView::parse(raw);
    if let Ok(p) = BasicProperties::decode(raw) {
        let v = view.expect("the view parses what the decoder accepts");
        assert_eq!(v.priority, p.priority);
        assert_eq!(v.persistent(), p.delivery_mode == Some(2));
    }
}
