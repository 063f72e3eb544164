//! Basic properties (flags + property list, as clients send them): the full decoder and
//! the allocation-free view must agree, and decoded properties must re-encode stably.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use warren_amqp_codec::{BasicProperties, PropertiesView};

fuzz_target!(|data: &[u8]| {
    let raw = Bytes::copy_from_slice(data);
    let view = PropertiesView::parse(&raw);
    let Ok(p) = BasicProperties::decode(&raw) else {
        return;
    };
    let v = view.expect("the view parses what the decoder accepts");
    assert_eq!(v.priority, p.priority);
    assert_eq!(v.expiration, p.expiration);
    let once = p.to_bytes();
    let again = BasicProperties::decode(&once).expect("re-encoded properties decode");
    assert_eq!(again.to_bytes(), once);
});
