//! Primitive field encodings of AMQP 0-9-1 and the reader/writer that handle bit packing.
//!
//! The reader works on a `Bytes` so that short and long strings are sliced out of the frame
//! payload (a reference count bump), never copied.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{CodecError, Result};
use crate::table::FieldTable;

/// An AMQP short string (at most 255 bytes), known to be valid UTF-8, sharing the buffer it
/// was read from.
#[derive(Clone, Default)]
pub struct ShortStr(Bytes);

impl ShortStr {
    pub const fn from_static(s: &'static str) -> ShortStr {
        ShortStr(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes after checking they are UTF-8.
    pub fn from_bytes(b: Bytes) -> Result<ShortStr> {
        std::str::from_utf8(&b).map_err(|_| CodecError::InvalidUtf8)?;
        Ok(ShortStr(b))
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checks (or starts from) valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Deref for ShortStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for ShortStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ShortStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for ShortStr {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for ShortStr {}

impl PartialEq<str> for ShortStr {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}
impl PartialEq<&str> for ShortStr {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

impl PartialOrd for ShortStr {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ShortStr {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

impl Hash for ShortStr {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // Must hash like `str` so `HashMap<ShortStr, _>::get(&str)` works.
        self.as_str().hash(h)
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ShortStr {
    fn from(s: &str) -> ShortStr {
        ShortStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for ShortStr {
    fn from(s: String) -> ShortStr {
        ShortStr(Bytes::from(s.into_bytes()))
    }
}

impl From<&String> for ShortStr {
    fn from(s: &String) -> ShortStr {
        ShortStr::from(s.as_str())
    }
}

/// Sequential reader over a frame payload, with AMQP's bit packing: consecutive `bit`
/// fields share one octet, and any other field ends the run.
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    bits: u8,
    bit_idx: u8,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a Bytes) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            bits: 0,
            bit_idx: 8,
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        self.bit_idx = 8;
        if self.remaining() < n {
            return Err(CodecError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn slice(&mut self, n: usize) -> Result<Bytes> {
        self.bit_idx = 8;
        if self.remaining() < n {
            return Err(CodecError::Truncated);
        }
        let s = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(s)
    }

    pub fn octet(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn short(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn long(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(b.try_into().unwrap()))
    }

    pub fn longlong(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().unwrap()))
    }

    pub fn bit(&mut self) -> Result<bool> {
        if self.bit_idx >= 8 {
            if self.remaining() < 1 {
                return Err(CodecError::Truncated);
            }
            self.bits = self.buf[self.pos];
            self.pos += 1;
            self.bit_idx = 0;
        }
        let v = self.bits & (1 << self.bit_idx) != 0;
        self.bit_idx += 1;
        Ok(v)
    }

    pub fn shortstr(&mut self) -> Result<ShortStr> {
        let n = self.octet()? as usize;
        ShortStr::from_bytes(self.slice(n)?)
    }

    pub fn longstr(&mut self) -> Result<Bytes> {
        let n = self.long()? as usize;
        self.slice(n)
    }

    pub fn table(&mut self) -> Result<FieldTable> {
        let raw = self.longstr()?;
        FieldTable::decode(&raw)
    }

    /// The bytes of a field table, unparsed (for skimming).
    pub fn raw_table(&mut self) -> Result<Bytes> {
        self.longstr()
    }

    pub fn bytes(&mut self, n: usize) -> Result<Bytes> {
        self.slice(n)
    }

    pub fn rest(&mut self) -> Bytes {
        let s = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        s
    }
}

/// Sequential writer with the same bit packing as [`Reader`].
pub struct Writer<'a> {
    buf: &'a mut BytesMut,
    bit_pos: Option<(usize, u8)>,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut BytesMut) -> Writer<'a> {
        Writer { buf, bit_pos: None }
    }

    pub fn octet(&mut self, v: u8) {
        self.bit_pos = None;
        self.buf.put_u8(v);
    }

    pub fn short(&mut self, v: u16) {
        self.bit_pos = None;
        self.buf.put_u16(v);
    }

    pub fn long(&mut self, v: u32) {
        self.bit_pos = None;
        self.buf.put_u32(v);
    }

    pub fn longlong(&mut self, v: u64) {
        self.bit_pos = None;
        self.buf.put_u64(v);
    }

    pub fn bit(&mut self, v: bool) {
        let (at, idx) = match self.bit_pos {
            Some((at, idx)) if idx < 8 => (at, idx),
            _ => {
                self.buf.put_u8(0);
                (self.buf.len() - 1, 0)
            }
        };
        if v {
            self.buf[at] |= 1 << idx;
        }
        self.bit_pos = Some((at, idx + 1));
    }

    /// Writes a short string. Longer than 255 bytes is cut at 255 (on a char boundary):
    /// callers validate names before they get here; this only guards reply texts.
    pub fn shortstr(&mut self, s: &str) {
        self.bit_pos = None;
        put_shortstr(self.buf, s);
    }

    pub fn longstr(&mut self, b: &[u8]) {
        self.bit_pos = None;
        self.buf.put_u32(b.len() as u32);
        self.buf.put_slice(b);
    }

    pub fn table(&mut self, t: &FieldTable) {
        self.bit_pos = None;
        t.encode(self.buf);
    }
}

pub fn put_shortstr(buf: &mut BytesMut, s: &str) {
    let mut n = s.len().min(255);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    buf.put_u8(n as u8);
    buf.put_slice(&s.as_bytes()[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_pack_into_one_octet_and_reset_on_other_fields() {
        let mut b = BytesMut::new();
        let mut w = Writer::new(&mut b);
        w.bit(true);
        w.bit(false);
        w.bit(true);
        w.short(7);
        w.bit(true);
        assert_eq!(&b[..], &[0b101, 0, 7, 1]);
        let bytes = b.freeze();
        let mut r = Reader::new(&bytes);
        assert!(r.bit().unwrap());
        assert!(!r.bit().unwrap());
        assert!(r.bit().unwrap());
        assert_eq!(r.short().unwrap(), 7);
        assert!(r.bit().unwrap());
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn shortstr_rejects_invalid_utf8_and_truncation() {
        let bytes = Bytes::from_static(&[2, 0xff, 0xfe]);
        assert_eq!(
            Reader::new(&bytes).shortstr().unwrap_err(),
            CodecError::InvalidUtf8
        );
        let bytes = Bytes::from_static(&[5, b'a']);
        assert_eq!(
            Reader::new(&bytes).shortstr().unwrap_err(),
            CodecError::Truncated
        );
    }
}
