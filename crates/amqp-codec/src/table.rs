//! Field tables and field values, with the type tags RabbitMQ uses (which differ from the
//! 0-9-1 spec text: RabbitMQ's errata, e.g. `s` is a signed 16-bit int, `x` a byte array).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{CodecError, Result};
use crate::wire::{put_shortstr, Reader, ShortStr};

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`
    Bool(bool),
    /// `b`
    I8(i8),
    /// `B`
    U8(u8),
    /// `s`
    I16(i16),
    /// `u`
    U16(u16),
    /// `I`
    I32(i32),
    /// `i`
    U32(u32),
    /// `l`
    I64(i64),
    /// `f`
    F32(f32),
    /// `d`
    F64(f64),
    /// `D`: scale, unscaled value
    Decimal(u8, u32),
    /// `S`
    LongStr(Bytes),
    /// `A`
    Array(Vec<FieldValue>),
    /// `T`
    Timestamp(u64),
    /// `F`
    Table(FieldTable),
    /// `V`
    Void,
    /// `x`
    ByteArray(Bytes),
}

impl FieldValue {
    /// The name RabbitMQ gives this type in error texts ("of type 'signedint'").
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldValue::Bool(_) => "bool",
            FieldValue::I8(_) => "byte",
            FieldValue::U8(_) => "unsignedbyte",
            FieldValue::I16(_) => "short",
            FieldValue::U16(_) => "unsignedshort",
            FieldValue::I32(_) => "signedint",
            FieldValue::U32(_) => "unsignedint",
            FieldValue::I64(_) => "long",
            FieldValue::F32(_) => "float",
            FieldValue::F64(_) => "double",
            FieldValue::Decimal(..) => "decimal",
            FieldValue::LongStr(_) => "longstr",
            FieldValue::Array(_) => "array",
            FieldValue::Timestamp(_) => "timestamp",
            FieldValue::Table(_) => "table",
            FieldValue::Void => "void",
            FieldValue::ByteArray(_) => "binary",
        }
    }

    /// The value as an integer, for any integer type (RabbitMQ accepts any of them for
    /// numeric arguments such as `x-message-ttl`).
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            FieldValue::I8(v) => v as i64,
            FieldValue::U8(v) => v as i64,
            FieldValue::I16(v) => v as i64,
            FieldValue::U16(v) => v as i64,
            FieldValue::I32(v) => v as i64,
            FieldValue::U32(v) => v as i64,
            FieldValue::I64(v) => v,
            FieldValue::Timestamp(v) => v as i64,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::LongStr(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            FieldValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<FieldValue> {
        let tag = r.octet()?;
        Ok(match tag {
            b't' => FieldValue::Bool(r.octet()? != 0),
            b'b' => FieldValue::I8(r.octet()? as i8),
            b'B' => FieldValue::U8(r.octet()?),
            b's' => FieldValue::I16(r.short()? as i16),
            b'u' => FieldValue::U16(r.short()?),
            b'I' => FieldValue::I32(r.long()? as i32),
            b'i' => FieldValue::U32(r.long()?),
            b'l' => FieldValue::I64(r.longlong()? as i64),
            b'f' => FieldValue::F32(f32::from_bits(r.long()?)),
            b'd' => FieldValue::F64(f64::from_bits(r.longlong()?)),
            b'D' => {
                let scale = r.octet()?;
                FieldValue::Decimal(scale, r.long()?)
            }
            b'S' => FieldValue::LongStr(r.longstr()?),
            b'A' => {
                let raw = r.longstr()?;
                let mut inner = Reader::new(&raw);
                let mut items = Vec::new();
                while inner.remaining() > 0 {
                    items.push(FieldValue::decode(&mut inner)?);
                }
                FieldValue::Array(items)
            }
            b'T' => FieldValue::Timestamp(r.longlong()?),
            b'F' => FieldValue::Table(r.table()?),
            b'V' => FieldValue::Void,
            b'x' => FieldValue::ByteArray(r.longstr()?),
            other => return Err(CodecError::UnknownFieldType(other)),
        })
    }

    fn encode(&self, buf: &mut BytesMut) {
        match self {
            FieldValue::Bool(v) => {
                buf.put_u8(b't');
                buf.put_u8(*v as u8);
            }
            FieldValue::I8(v) => {
                buf.put_u8(b'b');
                buf.put_i8(*v);
            }
            FieldValue::U8(v) => {
                buf.put_u8(b'B');
                buf.put_u8(*v);
            }
            FieldValue::I16(v) => {
                buf.put_u8(b's');
                buf.put_i16(*v);
            }
            FieldValue::U16(v) => {
                buf.put_u8(b'u');
                buf.put_u16(*v);
            }
            FieldValue::I32(v) => {
                buf.put_u8(b'I');
                buf.put_i32(*v);
            }
            FieldValue::U32(v) => {
                buf.put_u8(b'i');
                buf.put_u32(*v);
            }
            FieldValue::I64(v) => {
                buf.put_u8(b'l');
                buf.put_i64(*v);
            }
            FieldValue::F32(v) => {
                buf.put_u8(b'f');
                buf.put_u32(v.to_bits());
            }
            FieldValue::F64(v) => {
                buf.put_u8(b'd');
                buf.put_u64(v.to_bits());
            }
            FieldValue::Decimal(s, v) => {
                buf.put_u8(b'D');
                buf.put_u8(*s);
                buf.put_u32(*v);
            }
            FieldValue::LongStr(b) => {
                buf.put_u8(b'S');
                buf.put_u32(b.len() as u32);
                buf.put_slice(b);
            }
            FieldValue::Array(items) => {
                buf.put_u8(b'A');
                let at = buf.len();
                buf.put_u32(0);
                for i in items {
                    i.encode(buf);
                }
                let n = (buf.len() - at - 4) as u32;
                buf[at..at + 4].copy_from_slice(&n.to_be_bytes());
            }
            FieldValue::Timestamp(v) => {
                buf.put_u8(b'T');
                buf.put_u64(*v);
            }
            FieldValue::Table(t) => {
                buf.put_u8(b'F');
                t.encode(buf);
            }
            FieldValue::Void => buf.put_u8(b'V'),
            FieldValue::ByteArray(b) => {
                buf.put_u8(b'x');
                buf.put_u32(b.len() as u32);
                buf.put_slice(b);
            }
        }
    }
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> FieldValue {
        FieldValue::LongStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for FieldValue {
    fn from(s: String) -> FieldValue {
        FieldValue::LongStr(Bytes::from(s.into_bytes()))
    }
}

impl From<bool> for FieldValue {
    fn from(b: bool) -> FieldValue {
        FieldValue::Bool(b)
    }
}

/// A field table, keeping the order in which entries arrived (clients and RabbitMQ both
/// preserve it, and `x-death` style headers rely on it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldTable(pub Vec<(ShortStr, FieldValue)>);

impl FieldTable {
    pub fn new() -> FieldTable {
        FieldTable(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, replacing an existing entry in place.
    pub fn insert(&mut self, key: impl Into<ShortStr>, value: FieldValue) {
        let key = key.into();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.0.push((key, value));
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        let i = self.0.iter().position(|(k, _)| k.as_str() == key)?;
        Some(self.0.remove(i).1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ShortStr, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Decodes the inside of a table (without its 4-byte length prefix).
    pub fn decode(raw: &Bytes) -> Result<FieldTable> {
        let mut r = Reader::new(raw);
        let mut entries = Vec::new();
        while r.remaining() > 0 {
            let k = r.shortstr()?;
            let v = FieldValue::decode(&mut r)?;
            entries.push((k, v));
        }
        Ok(FieldTable(entries))
    }

    /// Encodes the table with its 4-byte length prefix.
    pub fn encode(&self, buf: &mut BytesMut) {
        let at = buf.len();
        buf.put_u32(0);
        self.encode_entries(buf);
        let n = (buf.len() - at - 4) as u32;
        buf[at..at + 4].copy_from_slice(&n.to_be_bytes());
    }

    /// Encodes the entries only, without a length prefix (AMQPLAIN responses use this form).
    pub fn encode_entries(&self, buf: &mut BytesMut) {
        for (k, v) in &self.0 {
            put_shortstr(buf, k);
            v.encode(buf);
        }
    }
}

impl FromIterator<(ShortStr, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (ShortStr, FieldValue)>>(it: I) -> FieldTable {
        FieldTable(it.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_type_round_trips() {
        let mut inner = FieldTable::new();
        inner.insert("x", FieldValue::I8(-3));
        let t: FieldTable = vec![
            ("t".into(), FieldValue::Bool(true)),
            ("b".into(), FieldValue::I8(-1)),
            ("B".into(), FieldValue::U8(200)),
            ("s".into(), FieldValue::I16(-300)),
            ("u".into(), FieldValue::U16(60000)),
            ("I".into(), FieldValue::I32(-70000)),
            ("i".into(), FieldValue::U32(4_000_000_000)),
            ("l".into(), FieldValue::I64(-5_000_000_000)),
            ("f".into(), FieldValue::F32(1.5)),
            ("d".into(), FieldValue::F64(-2.25)),
            ("D".into(), FieldValue::Decimal(2, 12345)),
            ("S".into(), FieldValue::from("hello")),
            (
                "A".into(),
                FieldValue::Array(vec![FieldValue::I32(1), FieldValue::from("two")]),
            ),
            ("T".into(), FieldValue::Timestamp(1_700_000_000)),
            ("F".into(), FieldValue::Table(inner)),
            ("V".into(), FieldValue::Void),
            (
                "x".into(),
                FieldValue::ByteArray(Bytes::from_static(b"\0\x01")),
            ),
        ]
        .into_iter()
        .collect();
        let mut buf = BytesMut::new();
        t.encode(&mut buf);
        let bytes = buf.freeze();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.table().unwrap(), t);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn unknown_type_tag_is_an_error() {
        let raw = Bytes::from_static(&[1, b'k', b'?']);
        assert_eq!(
            FieldTable::decode(&raw).unwrap_err(),
            CodecError::UnknownFieldType(b'?')
        );
    }
}
