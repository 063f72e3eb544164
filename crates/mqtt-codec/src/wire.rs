//! The data representations of MQTT (section 1.5): two- and four-byte integers, variable
//! byte integers, UTF-8 strings, binary data; and [`ByteStr`], the string type every
//! decoded packet uses.
//!
//! Readers work on the packet body as a `Bytes` and advance it, so strings and binary
//! fields are sliced out of the read buffer (a reference count bump), never copied.
//! Every reader fails with [`Error::Truncated`] rather than reading past the end: the
//! remaining length bounds the packet, and a field that claims more is malformed.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{EncodeError, Error, Result};

/// Largest value a variable byte integer can hold (four bytes of seven bits).
pub const MAX_VAR_INT: u32 = 268_435_455;
/// Largest string or binary field: the length prefix is two bytes.
pub const MAX_FIELD_LEN: usize = 65_535;

/// An MQTT UTF-8 string, known to be well-formed UTF-8 without U+0000 when it came off the
/// wire, sharing the buffer it was read from.
///
/// The conversions from `&str` and `String` do not re-check for U+0000: the encoder writes
/// what it is given, so a broker building strings from other protocols' data (an AMQP
/// routing key may contain NUL) must filter them itself.
#[derive(Clone, Default)]
pub struct ByteStr(Bytes);

impl ByteStr {
    pub const fn from_static(s: &'static str) -> ByteStr {
        ByteStr(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes after checking the MQTT string rules: well-formed UTF-8 (which excludes
    /// the surrogates U+D800..U+DFFF) and no U+0000.
    pub fn from_utf8(b: Bytes) -> Result<ByteStr> {
        let s = std::str::from_utf8(&b).map_err(|_| Error::InvalidUtf8)?;
        if s.as_bytes().contains(&0) {
            return Err(Error::InvalidUtf8);
        }
        Ok(ByteStr(b))
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checks (or starts from) valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for ByteStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for ByteStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ByteStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for ByteStr {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for ByteStr {}

impl PartialEq<str> for ByteStr {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl PartialEq<&str> for ByteStr {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

impl Hash for ByteStr {
    // Hashes like `str`, as `Borrow<str>` requires.
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl fmt::Debug for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ByteStr {
    fn from(s: &str) -> ByteStr {
        ByteStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for ByteStr {
    fn from(s: String) -> ByteStr {
        ByteStr(Bytes::from(s))
    }
}

// ---- reading -------------------------------------------------------------------------

#[inline]
pub(crate) fn read_u8(b: &mut Bytes) -> Result<u8> {
    if b.is_empty() {
        return Err(Error::Truncated);
    }
    Ok(b.get_u8())
}

#[inline]
pub(crate) fn read_u16(b: &mut Bytes) -> Result<u16> {
    if b.len() < 2 {
        return Err(Error::Truncated);
    }
    Ok(b.get_u16())
}

#[inline]
pub(crate) fn read_u32(b: &mut Bytes) -> Result<u32> {
    if b.len() < 4 {
        return Err(Error::Truncated);
    }
    Ok(b.get_u32())
}

/// Reads a variable byte integer from inside a packet, where running out of bytes means
/// the packet is malformed (unlike the remaining length, see [`parse_var_int`]).
pub(crate) fn read_var_int(b: &mut Bytes) -> Result<u32> {
    match parse_var_int(b)? {
        Some((value, len)) => {
            b.advance(len);
            Ok(value)
        }
        None => Err(Error::Truncated),
    }
}

/// Reads a packet identifier, which is never 0 where the spec requires one.
pub(crate) fn read_packet_id(b: &mut Bytes) -> Result<u16> {
    match read_u16(b)? {
        0 => Err(Error::ZeroPacketId),
        id => Ok(id),
    }
}

/// Reads two-byte-length-prefixed binary data, sliced from the packet.
pub(crate) fn read_binary(b: &mut Bytes) -> Result<Bytes> {
    let len = read_u16(b)? as usize;
    if b.len() < len {
        return Err(Error::Truncated);
    }
    Ok(b.split_to(len))
}

/// Reads a UTF-8 string, sliced from the packet.
pub(crate) fn read_str(b: &mut Bytes) -> Result<ByteStr> {
    ByteStr::from_utf8(read_binary(b)?)
}

/// Parses a variable byte integer at the front of `b` without consuming it: `Ok(None)`
/// when `b` ends before the integer does, otherwise the value and how many bytes it took.
/// A fourth byte with its continuation bit set is an error at once, without waiting for
/// a fifth byte that could never make it valid.
///
/// Non-minimal encodings (0x80 0x00 for 0) are accepted: the spec forbids them to
/// senders, and rejecting them would buy nothing.
pub fn parse_var_int(b: &[u8]) -> Result<Option<(u32, usize)>> {
    let mut value = 0u32;
    for i in 0..4 {
        let Some(&byte) = b.get(i) else {
            return Ok(None);
        };
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Err(Error::MalformedVarInt)
}

// ---- writing -------------------------------------------------------------------------

/// How many bytes `v` takes as a variable byte integer.
#[inline]
pub fn var_int_len(v: u32) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `v` as a variable byte integer. `v` must not exceed [`MAX_VAR_INT`].
pub fn put_var_int(buf: &mut BytesMut, mut v: u32) {
    debug_assert!(v <= MAX_VAR_INT);
    loop {
        let mut byte = (v & 0x7F) as u8;
        v >>= 7;
        if v != 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if v == 0 {
            break;
        }
    }
}

/// The encoded size of a string or binary field, refusing one too long for its prefix.
#[inline]
pub(crate) fn field_len(len: usize) -> std::result::Result<usize, EncodeError> {
    if len > MAX_FIELD_LEN {
        return Err(EncodeError::FieldTooLong { len });
    }
    Ok(2 + len)
}

/// Writes a length-prefixed string or binary field whose length was checked by
/// [`field_len`].
#[inline]
pub(crate) fn put_binary(buf: &mut BytesMut, b: &[u8]) {
    buf.put_u16(b.len() as u16);
    buf.put_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_int_boundaries() {
        for (v, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (MAX_VAR_INT, 4),
        ] {
            let mut buf = BytesMut::new();
            put_var_int(&mut buf, v);
            assert_eq!(buf.len(), len, "{v}");
            assert_eq!(var_int_len(v), len, "{v}");
            assert_eq!(parse_var_int(&buf).unwrap(), Some((v, len)), "{v}");
            // Every strict prefix asks for more bytes.
            for cut in 0..len {
                assert_eq!(parse_var_int(&buf[..cut]).unwrap(), None, "{v} cut {cut}");
            }
        }
    }

    #[test]
    fn var_int_spec_examples() {
        // Table 1.1 of the spec: first and last values of each length.
        assert_eq!(parse_var_int(&[0x00]).unwrap(), Some((0, 1)));
        assert_eq!(parse_var_int(&[0x7F]).unwrap(), Some((127, 1)));
        assert_eq!(parse_var_int(&[0x80, 0x01]).unwrap(), Some((128, 2)));
        assert_eq!(parse_var_int(&[0xFF, 0x7F]).unwrap(), Some((16_383, 2)));
        assert_eq!(
            parse_var_int(&[0x80, 0x80, 0x01]).unwrap(),
            Some((16_384, 3))
        );
        assert_eq!(
            parse_var_int(&[0xFF, 0xFF, 0x7F]).unwrap(),
            Some((2_097_151, 3))
        );
        assert_eq!(
            parse_var_int(&[0x80, 0x80, 0x80, 0x01]).unwrap(),
            Some((2_097_152, 4))
        );
        assert_eq!(
            parse_var_int(&[0xFF, 0xFF, 0xFF, 0x7F]).unwrap(),
            Some((MAX_VAR_INT, 4))
        );
    }

    #[test]
    fn var_int_fifth_byte_is_an_error() {
        assert_eq!(
            parse_var_int(&[0xFF, 0xFF, 0xFF, 0xFF]),
            Err(Error::MalformedVarInt)
        );
        assert_eq!(
            parse_var_int(&[0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(Error::MalformedVarInt)
        );
    }

    #[test]
    fn var_int_non_minimal_is_accepted() {
        assert_eq!(parse_var_int(&[0x80, 0x00]).unwrap(), Some((0, 2)));
    }

    #[test]
    fn strings_reject_nul_and_bad_utf8() {
        assert_eq!(
            ByteStr::from_utf8(Bytes::from_static(b"a\0b")),
            Err(Error::InvalidUtf8)
        );
        // A lone surrogate (U+D800 as CESU-style bytes) and an overlong encoding.
        assert_eq!(
            ByteStr::from_utf8(Bytes::from_static(b"\xED\xA0\x80")),
            Err(Error::InvalidUtf8)
        );
        assert_eq!(
            ByteStr::from_utf8(Bytes::from_static(b"\xC0\x80")),
            Err(Error::InvalidUtf8)
        );
        // U+FEFF is allowed and kept (the spec says it must not be skipped).
        let s = ByteStr::from_utf8(Bytes::from_static("\u{FEFF}a".as_bytes())).unwrap();
        assert_eq!(s, "\u{FEFF}a");
    }

    #[test]
    fn read_binary_truncated() {
        let mut b = Bytes::from_static(&[0x00, 0x03, b'a', b'b']);
        assert_eq!(read_binary(&mut b), Err(Error::Truncated));
        let mut b = Bytes::from_static(&[0x00]);
        assert_eq!(read_binary(&mut b), Err(Error::Truncated));
    }
}
