//! Content headers and basic-class properties.
//!
//! The broker keeps a message's properties as the raw bytes that arrived (property flags
//! plus property list) and writes them back unchanged on delivery, so a message that is
//! only routed is never re-encoded. [`PropertiesView`] reads the few properties routing
//! and dispatch need straight from those bytes; [`BasicProperties`] is the full parsed form
//! for the places that change properties (dead-lettering, protocol adapters, the HTTP API).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{CodecError, Result};
use crate::table::FieldTable;
use crate::wire::{put_shortstr, Reader, ShortStr, Writer};

pub const BASIC_CLASS_ID: u16 = 60;

const F_CONTENT_TYPE: u16 = 1 << 15;
const F_CONTENT_ENCODING: u16 = 1 << 14;
const F_HEADERS: u16 = 1 << 13;
const F_DELIVERY_MODE: u16 = 1 << 12;
const F_PRIORITY: u16 = 1 << 11;
const F_CORRELATION_ID: u16 = 1 << 10;
const F_REPLY_TO: u16 = 1 << 9;
const F_EXPIRATION: u16 = 1 << 8;
const F_MESSAGE_ID: u16 = 1 << 7;
const F_TIMESTAMP: u16 = 1 << 6;
const F_TYPE: u16 = 1 << 5;
const F_USER_ID: u16 = 1 << 4;
const F_APP_ID: u16 = 1 << 3;
const F_CLUSTER_ID: u16 = 1 << 2;

/// A decoded content header frame. `properties` is the raw flags + property list.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHeader {
    pub class_id: u16,
    pub body_size: u64,
    pub properties: Bytes,
}

impl ContentHeader {
    pub fn decode(payload: &Bytes) -> Result<ContentHeader> {
        let mut r = Reader::new(payload);
        let class_id = r.short()?;
        let _weight = r.short()?;
        let body_size = r.longlong()?;
        let properties = r.rest();
        if properties.len() < 2 {
            return Err(CodecError::Truncated);
        }
        // Validate now so a malformed property list is a frame error at publish time,
        // not a surprise at delivery.
        PropertiesView::parse(&properties)?;
        Ok(ContentHeader {
            class_id,
            body_size,
            properties,
        })
    }

    /// Appends the header payload: class, weight 0, body size, raw properties.
    pub fn encode(class_id: u16, body_size: u64, properties: &[u8], buf: &mut BytesMut) {
        buf.put_u16(class_id);
        buf.put_u16(0);
        buf.put_u64(body_size);
        buf.put_slice(properties);
    }
}

/// The properties routing and dispatch need, read from raw property bytes without
/// allocating (strings and the headers table stay slices of the original buffer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropertiesView {
    pub flags: u16,
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub expiration: Option<ShortStr>,
    pub user_id: Option<ShortStr>,
    pub reply_to: Option<ShortStr>,
    /// The headers table's bytes (without the length prefix), unparsed.
    pub headers: Option<Bytes>,
}

impl PropertiesView {
    pub fn parse(raw: &Bytes) -> Result<PropertiesView> {
        let mut r = Reader::new(raw);
        let flags = r.short()?;
        if flags & 1 != 0 {
            // A continuation word: basic has only 14 properties, so this is malformed.
            return Err(CodecError::Truncated);
        }
        let mut v = PropertiesView {
            flags,
            ..Default::default()
        };
        if flags & F_CONTENT_TYPE != 0 {
            r.shortstr()?;
        }
        if flags & F_CONTENT_ENCODING != 0 {
            r.shortstr()?;
        }
        if flags & F_HEADERS != 0 {
            let raw = r.raw_table()?;
            // Validate the table once here; consumers of `headers` may then decode freely.
            FieldTable::decode(&raw)?;
            v.headers = Some(raw);
        }
        if flags & F_DELIVERY_MODE != 0 {
            v.delivery_mode = Some(r.octet()?);
        }
        if flags & F_PRIORITY != 0 {
            v.priority = Some(r.octet()?);
        }
        if flags & F_CORRELATION_ID != 0 {
            r.shortstr()?;
        }
        if flags & F_REPLY_TO != 0 {
            v.reply_to = Some(r.shortstr()?);
        }
        if flags & F_EXPIRATION != 0 {
            v.expiration = Some(r.shortstr()?);
        }
        if flags & F_MESSAGE_ID != 0 {
            r.shortstr()?;
        }
        if flags & F_TIMESTAMP != 0 {
            r.longlong()?;
        }
        if flags & F_TYPE != 0 {
            r.shortstr()?;
        }
        if flags & F_USER_ID != 0 {
            v.user_id = Some(r.shortstr()?);
        }
        if flags & F_APP_ID != 0 {
            r.shortstr()?;
        }
        if flags & F_CLUSTER_ID != 0 {
            r.shortstr()?;
        }
        Ok(v)
    }

    pub fn persistent(&self) -> bool {
        self.delivery_mode == Some(2)
    }

    pub fn headers_table(&self) -> Option<FieldTable> {
        self.headers
            .as_ref()
            .and_then(|raw| FieldTable::decode(raw).ok())
    }
}

/// Raw properties with a `long` (signed 64-bit) entry added to the headers table, spliced
/// into the bytes: nothing else is decoded or re-encoded, so this costs one copy of the
/// properties. Used on hot paths (a stream stamping each message with its offset) where a
/// full decode and re-encode would cost several times more. The caller makes sure `key`
/// is not in the table already. `None` if the properties are malformed.
pub fn with_long_header(raw: &[u8], key: &str, value: i64) -> Option<Bytes> {
    let flags = u16::from_be_bytes(raw.get(0..2)?.try_into().ok()?);
    if flags & 1 != 0 || key.len() > 255 {
        return None;
    }
    let mut pos = 2;
    for f in [F_CONTENT_TYPE, F_CONTENT_ENCODING] {
        if flags & f != 0 {
            pos += 1 + *raw.get(pos)? as usize;
        }
    }
    if pos > raw.len() {
        return None;
    }
    let entry_len = 1 + key.len() + 1 + 8;
    let mut out = BytesMut::with_capacity(raw.len() + entry_len + 4);
    let put_entry = |out: &mut BytesMut| {
        out.put_u8(key.len() as u8);
        out.put_slice(key.as_bytes());
        out.put_u8(b'l');
        out.put_i64(value);
    };
    if flags & F_HEADERS != 0 {
        let len = u32::from_be_bytes(raw.get(pos..pos + 4)?.try_into().ok()?) as usize;
        let end = pos + 4 + len;
        if end > raw.len() {
            return None;
        }
        out.put_slice(&raw[..pos]);
        out.put_u32((len + entry_len) as u32);
        out.put_slice(&raw[pos + 4..end]);
        put_entry(&mut out);
        out.put_slice(&raw[end..]);
    } else {
        out.put_u16(flags | F_HEADERS);
        out.put_slice(&raw[2..pos]);
        out.put_u32(entry_len as u32);
        put_entry(&mut out);
        out.put_slice(&raw[pos..]);
    }
    Some(out.freeze())
}

/// Fully parsed basic properties.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BasicProperties {
    pub content_type: Option<ShortStr>,
    pub content_encoding: Option<ShortStr>,
    pub headers: Option<FieldTable>,
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub correlation_id: Option<ShortStr>,
    pub reply_to: Option<ShortStr>,
    pub expiration: Option<ShortStr>,
    pub message_id: Option<ShortStr>,
    pub timestamp: Option<u64>,
    pub kind: Option<ShortStr>,
    pub user_id: Option<ShortStr>,
    pub app_id: Option<ShortStr>,
    pub cluster_id: Option<ShortStr>,
}

impl BasicProperties {
    pub fn decode(raw: &Bytes) -> Result<BasicProperties> {
        let mut r = Reader::new(raw);
        let flags = r.short()?;
        if flags & 1 != 0 {
            // As the view: a continuation word is malformed for basic (found by fuzzing;
            // the two used to disagree).
            return Err(CodecError::Truncated);
        }
        let mut p = BasicProperties::default();
        macro_rules! opt {
            ($flag:expr, $e:expr) => {
                if flags & $flag != 0 {
                    Some($e)
                } else {
                    None
                }
            };
        }
        p.content_type = opt!(F_CONTENT_TYPE, r.shortstr()?);
        p.content_encoding = opt!(F_CONTENT_ENCODING, r.shortstr()?);
        p.headers = opt!(F_HEADERS, r.table()?);
        p.delivery_mode = opt!(F_DELIVERY_MODE, r.octet()?);
        p.priority = opt!(F_PRIORITY, r.octet()?);
        p.correlation_id = opt!(F_CORRELATION_ID, r.shortstr()?);
        p.reply_to = opt!(F_REPLY_TO, r.shortstr()?);
        p.expiration = opt!(F_EXPIRATION, r.shortstr()?);
        p.message_id = opt!(F_MESSAGE_ID, r.shortstr()?);
        p.timestamp = opt!(F_TIMESTAMP, r.longlong()?);
        p.kind = opt!(F_TYPE, r.shortstr()?);
        p.user_id = opt!(F_USER_ID, r.shortstr()?);
        p.app_id = opt!(F_APP_ID, r.shortstr()?);
        p.cluster_id = opt!(F_CLUSTER_ID, r.shortstr()?);
        Ok(p)
    }

    /// Encodes flags + property list (the raw form the broker stores).
    pub fn encode(&self, buf: &mut BytesMut) {
        let mut flags = 0u16;
        let set = |f: &mut u16, bit: u16, present: bool| {
            if present {
                *f |= bit
            }
        };
        set(&mut flags, F_CONTENT_TYPE, self.content_type.is_some());
        set(
            &mut flags,
            F_CONTENT_ENCODING,
            self.content_encoding.is_some(),
        );
        set(&mut flags, F_HEADERS, self.headers.is_some());
        set(&mut flags, F_DELIVERY_MODE, self.delivery_mode.is_some());
        set(&mut flags, F_PRIORITY, self.priority.is_some());
        set(&mut flags, F_CORRELATION_ID, self.correlation_id.is_some());
        set(&mut flags, F_REPLY_TO, self.reply_to.is_some());
        set(&mut flags, F_EXPIRATION, self.expiration.is_some());
        set(&mut flags, F_MESSAGE_ID, self.message_id.is_some());
        set(&mut flags, F_TIMESTAMP, self.timestamp.is_some());
        set(&mut flags, F_TYPE, self.kind.is_some());
        set(&mut flags, F_USER_ID, self.user_id.is_some());
        set(&mut flags, F_APP_ID, self.app_id.is_some());
        set(&mut flags, F_CLUSTER_ID, self.cluster_id.is_some());
        buf.put_u16(flags);
        let s = |buf: &mut BytesMut, v: &Option<ShortStr>| {
            if let Some(v) = v {
                put_shortstr(buf, v)
            }
        };
        s(buf, &self.content_type);
        s(buf, &self.content_encoding);
        if let Some(h) = &self.headers {
            Writer::new(buf).table(h);
        }
        if let Some(d) = self.delivery_mode {
            buf.put_u8(d);
        }
        if let Some(p) = self.priority {
            buf.put_u8(p);
        }
        s(buf, &self.correlation_id);
        s(buf, &self.reply_to);
        s(buf, &self.expiration);
        s(buf, &self.message_id);
        if let Some(t) = self.timestamp {
            buf.put_u64(t);
        }
        s(buf, &self.kind);
        s(buf, &self.user_id);
        s(buf, &self.app_id);
        s(buf, &self.cluster_id);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(64);
        self.encode(&mut b);
        b.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::FieldValue;

    #[test]
    fn spliced_header_equals_a_full_re_encode() {
        let mut with = FieldTable::new();
        with.insert("a", FieldValue::from("x"));
        let cases = [
            BasicProperties::default(),
            BasicProperties {
                content_type: Some("text/plain".into()),
                content_encoding: Some("gzip".into()),
                delivery_mode: Some(2),
                message_id: Some("m1".into()),
                ..Default::default()
            },
            BasicProperties {
                content_type: Some("a".into()),
                headers: Some(with),
                priority: Some(3),
                ..Default::default()
            },
        ];
        for p in cases {
            let raw = p.to_bytes();
            let spliced = with_long_header(&raw, "x-stream-offset", -7).unwrap();
            let mut want = p.clone();
            want.headers
                .get_or_insert_with(FieldTable::new)
                .insert("x-stream-offset", FieldValue::I64(-7));
            assert_eq!(BasicProperties::decode(&spliced).unwrap(), want);
            PropertiesView::parse(&spliced).unwrap();
        }
        assert!(with_long_header(&[0x80, 0, 5, b'a'], "k", 1).is_none());
    }

    /// Regression (cargo fuzz, target `properties`): a continuation flag word was
    /// accepted by the decoder and refused by the view.
    #[test]
    fn continuation_flags_refused_by_decoder_and_view() {
        let raw = Bytes::from_static(&[0x08, 0x01, 0xf5, 0x52]);
        assert!(BasicProperties::decode(&raw).is_err());
        assert!(PropertiesView::parse(&raw).is_err());
    }

    #[test]
    fn full_properties_round_trip_and_view_agrees() {
        let mut headers = FieldTable::new();
        headers.insert("k", FieldValue::from("v"));
        let p = BasicProperties {
            content_type: Some("text/plain".into()),
            headers: Some(headers.clone()),
            delivery_mode: Some(2),
            priority: Some(5),
            reply_to: Some("amq.rabbitmq.reply-to".into()),
            expiration: Some("60000".into()),
            timestamp: Some(42),
            user_id: Some("guest".into()),
            cluster_id: Some("c".into()),
            ..Default::default()
        };
        let raw = p.to_bytes();
        assert_eq!(BasicProperties::decode(&raw).unwrap(), p);
        let v = PropertiesView::parse(&raw).unwrap();
        assert!(v.persistent());
        assert_eq!(v.priority, Some(5));
        assert_eq!(v.expiration.as_deref(), Some("60000"));
        assert_eq!(v.user_id.as_deref(), Some("guest"));
        assert_eq!(v.headers_table(), Some(headers));
    }

    #[test]
    fn truncated_properties_are_rejected() {
        let p = BasicProperties {
            message_id: Some("abc".into()),
            ..Default::default()
        };
        let raw = p.to_bytes();
        let cut = raw.slice(..raw.len() - 1);
        assert!(PropertiesView::parse(&cut).is_err());
    }
}
