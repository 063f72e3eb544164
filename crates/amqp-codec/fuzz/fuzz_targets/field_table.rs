//! Field tables (headers, arguments): arbitrary bytes must decode or fail without a
//! panic, and what decodes must re-encode stably (bytes compared, since NaN floats are
//! not equal to themselves).

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use warren_amqp_codec::FieldTable;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = FieldTable::decode(&Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut once = BytesMut::new();
    t.encode_entries(&mut once);
    let once = once.freeze();
    let t2 = FieldTable::decode(&once).expect("re-encoded table decodes");
    let mut twice = BytesMut::new();
    t2.encode_entries(&mut twice);
    assert_eq!(once, twice.freeze());
});
