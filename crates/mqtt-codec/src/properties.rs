//! MQTT 5 properties (section 2.2.2): one [`Properties`] struct for every packet, and the
//! table that says which identifier has which type and where it may appear.
//!
//! One struct rather than one per packet type keeps the API small and lets the whole
//! property set be declared once, in the `properties!` table below, which generates the
//! struct, the identifier constants, the decoder and the encoder. What a per-packet type
//! would have enforced by construction, the decoder enforces with the table's scopes: a
//! property outside its packet is a Malformed Packet (2.2.2.2), a second copy of a property
//! that may appear once is a Protocol Error. The encoder writes whatever is set and trusts
//! the caller to set only what the packet allows.
//!
//! Every property may appear at most once except User Property (any packet, repeatable,
//! order kept) and Subscription Identifier (repeatable in PUBLISH, once in SUBSCRIBE);
//! those two live in `Vec`s.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{EncodeError, Error, Result};
use crate::packet::{PacketType, QoS};
use crate::topic;
use crate::wire::{
    field_len, put_binary, put_var_int, read_str, read_u16, read_u32, read_u8, read_var_int,
    var_int_len, ByteStr,
};

/// Where a property block sits: in a packet's variable header, or in CONNECT's will.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Packet(PacketType),
    Will,
}

impl Scope {
    fn bit(self) -> u32 {
        match self {
            // Packet type 0 is reserved, so bit 0 is free for the will.
            Scope::Will => WILL,
            Scope::Packet(t) => 1 << (t as u8),
        }
    }

    fn packet_type(self) -> PacketType {
        match self {
            Scope::Will => PacketType::Connect,
            Scope::Packet(t) => t,
        }
    }
}

const WILL: u32 = 1;
const CONNECT: u32 = 1 << 1;
const CONNACK: u32 = 1 << 2;
const PUBLISH: u32 = 1 << 3;
const PUBACK: u32 = 1 << 4;
const PUBREC: u32 = 1 << 5;
const PUBREL: u32 = 1 << 6;
const PUBCOMP: u32 = 1 << 7;
const SUBSCRIBE: u32 = 1 << 8;
const SUBACK: u32 = 1 << 9;
const UNSUBSCRIBE: u32 = 1 << 10;
const UNSUBACK: u32 = 1 << 11;
const DISCONNECT: u32 = 1 << 14;
const AUTH: u32 = 1 << 15;
const ANY: u32 = WILL
    | CONNECT
    | CONNACK
    | PUBLISH
    | PUBACK
    | PUBREC
    | PUBREL
    | PUBCOMP
    | SUBSCRIBE
    | SUBACK
    | UNSUBSCRIBE
    | UNSUBACK
    | DISCONNECT
    | AUTH;

/// How one property type is read and written (the identifier is handled by the caller).
trait Value: Sized {
    fn read(b: &mut Bytes, id: u8) -> Result<Self>;
    fn encoded_len(&self) -> usize;
    /// Refuses a value the wire cannot carry (a string over 65,535 bytes).
    fn check(&self) -> std::result::Result<(), EncodeError> {
        Ok(())
    }
    fn write(&self, buf: &mut BytesMut);
}

/// Byte properties that are flags: the spec makes any value but 0 and 1 a Protocol Error.
impl Value for bool {
    fn read(b: &mut Bytes, id: u8) -> Result<bool> {
        match read_u8(b)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::InvalidPropertyValue(id)),
        }
    }
    fn encoded_len(&self) -> usize {
        1
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_u8(*self as u8);
    }
}

impl Value for u16 {
    fn read(b: &mut Bytes, _: u8) -> Result<u16> {
        read_u16(b)
    }
    fn encoded_len(&self) -> usize {
        2
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_u16(*self);
    }
}

impl Value for u32 {
    fn read(b: &mut Bytes, _: u8) -> Result<u32> {
        read_u32(b)
    }
    fn encoded_len(&self) -> usize {
        4
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_u32(*self);
    }
}

/// Only Maximum QoS has this type, and it may only say 0 or 1: a server that supports
/// QoS 2 omits the property.
impl Value for QoS {
    fn read(b: &mut Bytes, id: u8) -> Result<QoS> {
        match read_u8(b)? {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            _ => Err(Error::InvalidPropertyValue(id)),
        }
    }
    fn encoded_len(&self) -> usize {
        1
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_u8(*self as u8);
    }
}

impl Value for ByteStr {
    fn read(b: &mut Bytes, _: u8) -> Result<ByteStr> {
        read_str(b)
    }
    fn encoded_len(&self) -> usize {
        2 + self.len()
    }
    fn check(&self) -> std::result::Result<(), EncodeError> {
        field_len(self.len()).map(drop)
    }
    fn write(&self, buf: &mut BytesMut) {
        put_binary(buf, self.as_bytes());
    }
}

impl Value for Bytes {
    fn read(b: &mut Bytes, _: u8) -> Result<Bytes> {
        crate::wire::read_binary(b)
    }
    fn encoded_len(&self) -> usize {
        2 + self.len()
    }
    fn check(&self) -> std::result::Result<(), EncodeError> {
        field_len(self.len()).map(drop)
    }
    fn write(&self, buf: &mut BytesMut) {
        put_binary(buf, self);
    }
}

macro_rules! properties {
    ($(
        $(#[$doc:meta])*
        $id:literal $name:ident => $field:ident: $ty:ty, in $($scope:ident)|+;
    )*) => {
        /// The properties of one MQTT 5 packet (or of a CONNECT's will). Empty for MQTT 3.x.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Properties {
            $( $(#[$doc])* pub $field: Option<$ty>, )*
            /// 0x0B Subscription Identifier (variable byte integer, 1..=268,435,455). In
            /// SUBSCRIBE at most one; in PUBLISH (server to client) one per matching
            /// subscription that had one.
            pub subscription_identifiers: Vec<u32>,
            /// 0x26 User Property (string pair), in any packet, repeatable, order kept.
            pub user_properties: Vec<(ByteStr, ByteStr)>,
        }

        /// Property identifiers.
        pub mod id {
            $( pub const $name: u8 = $id; )*
            pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
            pub const USER_PROPERTY: u8 = 0x26;
        }

        /// The scopes (bit set) where property `id` may appear; `None` if no such property.
        fn scopes(id: u32) -> Option<u32> {
            Some(match id {
                $( $id => $($scope)|+, )*
                0x0B => PUBLISH | SUBSCRIBE,
                0x26 => ANY,
                _ => return None,
            })
        }

        impl Properties {
            /// Whether no property is set (then the property block is one zero byte).
            pub fn is_empty(&self) -> bool {
                $( self.$field.is_none() && )*
                self.subscription_identifiers.is_empty() && self.user_properties.is_empty()
            }

            /// Reads one property whose identifier was checked against its scope.
            fn read_one(&mut self, id: u8, b: &mut Bytes, scope: Scope) -> Result<()> {
                match id {
                    $( $id => {
                        if self.$field.is_some() {
                            return Err(Error::DuplicateProperty(id));
                        }
                        self.$field = Some(<$ty as Value>::read(b, id)?);
                    } )*
                    0x0B => {
                        if scope == Scope::Packet(PacketType::Subscribe)
                            && !self.subscription_identifiers.is_empty()
                        {
                            return Err(Error::DuplicateProperty(id));
                        }
                        match read_var_int(b)? {
                            0 => return Err(Error::InvalidPropertyValue(id)),
                            v => self.subscription_identifiers.push(v),
                        }
                    }
                    _ => {
                        debug_assert_eq!(id, id::USER_PROPERTY);
                        let key = read_str(b)?;
                        let value = read_str(b)?;
                        self.user_properties.push((key, value));
                    }
                }
                Ok(())
            }

            /// Length of the properties without the property length prefix.
            fn body_len(&self) -> usize {
                let mut n = 0;
                $( if let Some(v) = &self.$field {
                    n += 1 + v.encoded_len();
                } )*
                for &v in &self.subscription_identifiers {
                    n += 1 + var_int_len(v);
                }
                for (k, v) in &self.user_properties {
                    n += 1 + 2 + k.len() + 2 + v.len();
                }
                n
            }

            fn check(&self) -> std::result::Result<(), EncodeError> {
                $( if let Some(v) = &self.$field {
                    v.check()?;
                } )*
                for (k, v) in &self.user_properties {
                    field_len(k.len())?;
                    field_len(v.len())?;
                }
                Ok(())
            }

            fn write_body(&self, buf: &mut BytesMut) {
                $( if let Some(v) = &self.$field {
                    buf.put_u8($id);
                    v.write(buf);
                } )*
                for &v in &self.subscription_identifiers {
                    buf.put_u8(id::SUBSCRIPTION_IDENTIFIER);
                    put_var_int(buf, v);
                }
                for (k, v) in &self.user_properties {
                    buf.put_u8(id::USER_PROPERTY);
                    put_binary(buf, k.as_bytes());
                    put_binary(buf, v.as_bytes());
                }
            }
        }
    };
}

properties! {
    /// 0x01 Payload Format Indicator: `true` means the payload is UTF-8 character data.
    0x01 PAYLOAD_FORMAT_INDICATOR => payload_format_indicator: bool, in PUBLISH | WILL;
    /// 0x02 Message Expiry Interval, seconds.
    0x02 MESSAGE_EXPIRY_INTERVAL => message_expiry_interval: u32, in PUBLISH | WILL;
    /// 0x03 Content Type.
    0x03 CONTENT_TYPE => content_type: ByteStr, in PUBLISH | WILL;
    /// 0x08 Response Topic (a topic name: no wildcards).
    0x08 RESPONSE_TOPIC => response_topic: ByteStr, in PUBLISH | WILL;
    /// 0x09 Correlation Data.
    0x09 CORRELATION_DATA => correlation_data: Bytes, in PUBLISH | WILL;
    /// 0x11 Session Expiry Interval, seconds.
    0x11 SESSION_EXPIRY_INTERVAL => session_expiry_interval: u32, in CONNECT | CONNACK | DISCONNECT;
    /// 0x12 Assigned Client Identifier.
    0x12 ASSIGNED_CLIENT_IDENTIFIER => assigned_client_identifier: ByteStr, in CONNACK;
    /// 0x13 Server Keep Alive, seconds.
    0x13 SERVER_KEEP_ALIVE => server_keep_alive: u16, in CONNACK;
    /// 0x15 Authentication Method.
    0x15 AUTHENTICATION_METHOD => authentication_method: ByteStr, in CONNECT | CONNACK | AUTH;
    /// 0x16 Authentication Data (only together with a method).
    0x16 AUTHENTICATION_DATA => authentication_data: Bytes, in CONNECT | CONNACK | AUTH;
    /// 0x17 Request Problem Information.
    0x17 REQUEST_PROBLEM_INFORMATION => request_problem_information: bool, in CONNECT;
    /// 0x18 Will Delay Interval, seconds.
    0x18 WILL_DELAY_INTERVAL => will_delay_interval: u32, in WILL;
    /// 0x19 Request Response Information.
    0x19 REQUEST_RESPONSE_INFORMATION => request_response_information: bool, in CONNECT;
    /// 0x1A Response Information.
    0x1A RESPONSE_INFORMATION => response_information: ByteStr, in CONNACK;
    /// 0x1C Server Reference.
    0x1C SERVER_REFERENCE => server_reference: ByteStr, in CONNACK | DISCONNECT;
    /// 0x1F Reason String.
    0x1F REASON_STRING => reason_string: ByteStr,
        in CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | SUBACK | UNSUBACK | DISCONNECT | AUTH;
    /// 0x21 Receive Maximum (never 0).
    0x21 RECEIVE_MAXIMUM => receive_maximum: u16, in CONNECT | CONNACK;
    /// 0x22 Topic Alias Maximum.
    0x22 TOPIC_ALIAS_MAXIMUM => topic_alias_maximum: u16, in CONNECT | CONNACK;
    /// 0x23 Topic Alias (never 0).
    0x23 TOPIC_ALIAS => topic_alias: u16, in PUBLISH;
    /// 0x24 Maximum QoS (0 or 1; absent means 2).
    0x24 MAXIMUM_QOS => maximum_qos: QoS, in CONNACK;
    /// 0x25 Retain Available.
    0x25 RETAIN_AVAILABLE => retain_available: bool, in CONNACK;
    /// 0x27 Maximum Packet Size, bytes (never 0).
    0x27 MAXIMUM_PACKET_SIZE => maximum_packet_size: u32, in CONNECT | CONNACK;
    /// 0x28 Wildcard Subscription Available.
    0x28 WILDCARD_SUBSCRIPTION_AVAILABLE => wildcard_subscription_available: bool, in CONNACK;
    /// 0x29 Subscription Identifier Available.
    0x29 SUBSCRIPTION_IDENTIFIER_AVAILABLE => subscription_identifier_available: bool, in CONNACK;
    /// 0x2A Shared Subscription Available.
    0x2A SHARED_SUBSCRIPTION_AVAILABLE => shared_subscription_available: bool, in CONNACK;
}

impl Properties {
    /// Reads a property block (length prefix included) and checks it against `scope`.
    pub(crate) fn decode(b: &mut Bytes, scope: Scope) -> Result<Properties> {
        Self::decode_in(b, scope.bit(), scope)
    }

    /// [`Self::decode`] with the allowed scopes spelt out, so tests can read every
    /// property at once.
    fn decode_in(b: &mut Bytes, allowed_scopes: u32, scope: Scope) -> Result<Properties> {
        let len = read_var_int(b)? as usize;
        if b.len() < len {
            return Err(Error::Truncated);
        }
        let mut block = b.split_to(len);
        let mut props = Properties::default();
        while !block.is_empty() {
            // The identifier is a variable byte integer; every defined one fits in a byte.
            let id = read_var_int(&mut block)?;
            let allowed = scopes(id).ok_or(Error::UnknownProperty(id))?;
            let id = id as u8;
            if allowed & allowed_scopes == 0 {
                return Err(Error::PropertyNotAllowed {
                    property: id,
                    packet_type: scope.packet_type(),
                });
            }
            props.read_one(id, &mut block, scope)?;
        }
        props.validate()?;
        Ok(props)
    }

    /// The value rules that need the whole block (or that the spec words per property).
    fn validate(&self) -> Result<()> {
        if self.receive_maximum == Some(0) {
            return Err(Error::InvalidPropertyValue(id::RECEIVE_MAXIMUM));
        }
        if self.maximum_packet_size == Some(0) {
            return Err(Error::InvalidPropertyValue(id::MAXIMUM_PACKET_SIZE));
        }
        if self.topic_alias == Some(0) {
            return Err(Error::TopicAliasInvalid);
        }
        if let Some(t) = &self.response_topic {
            if !topic::is_valid_topic_name(t) {
                return Err(Error::InvalidPropertyValue(id::RESPONSE_TOPIC));
            }
        }
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(Error::InvalidPropertyValue(id::AUTHENTICATION_DATA));
        }
        Ok(())
    }

    /// Size on the wire, property length prefix included, refusing over-long strings.
    pub(crate) fn encoded_len(&self) -> std::result::Result<usize, EncodeError> {
        self.check()?;
        let body = self.body_len();
        if body > crate::wire::MAX_VAR_INT as usize {
            return Err(EncodeError::PacketTooLarge {
                remaining_length: body,
            });
        }
        Ok(var_int_len(body as u32) + body)
    }

    /// Writes the property block, length prefix included. [`Self::encoded_len`] must have
    /// accepted it.
    pub(crate) fn write(&self, buf: &mut BytesMut) {
        put_var_int(buf, self.body_len() as u32);
        self.write_body(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], scope: Scope) -> Result<Properties> {
        let mut b = Bytes::copy_from_slice(bytes);
        let p = Properties::decode(&mut b, scope)?;
        assert!(b.is_empty());
        Ok(p)
    }

    const PUBLISH: Scope = Scope::Packet(PacketType::Publish);
    const CONNECT: Scope = Scope::Packet(PacketType::Connect);

    #[test]
    fn every_property_round_trips() {
        let full = Properties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(60),
            content_type: Some("text/plain".into()),
            response_topic: Some("reply/to".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            session_expiry_interval: Some(0xFFFF_FFFF),
            assigned_client_identifier: Some("auto-1".into()),
            server_keep_alive: Some(30),
            authentication_method: Some("SCRAM-SHA-1".into()),
            authentication_data: Some(Bytes::from_static(b"data")),
            request_problem_information: Some(false),
            will_delay_interval: Some(5),
            request_response_information: Some(true),
            response_information: Some("resp".into()),
            server_reference: Some("other:1883".into()),
            reason_string: Some("because".into()),
            receive_maximum: Some(10),
            topic_alias_maximum: Some(5),
            topic_alias: Some(3),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(1024),
            wildcard_subscription_available: Some(true),
            subscription_identifier_available: Some(true),
            shared_subscription_available: Some(false),
            subscription_identifiers: vec![1, 268_435_455],
            user_properties: vec![("k".into(), "v".into()), ("k".into(), "v2".into())],
        };
        let mut buf = BytesMut::new();
        full.write(&mut buf);
        assert_eq!(buf.len(), full.encoded_len().unwrap());
        let mut b = buf.freeze();
        assert_eq!(Properties::decode_in(&mut b, ANY, PUBLISH).unwrap(), full);
        assert!(b.is_empty());
    }

    #[test]
    fn properties_must_be_in_scope() {
        // Topic Alias in CONNECT.
        assert_eq!(
            decode(&[3, 0x23, 0, 1], CONNECT),
            Err(Error::PropertyNotAllowed {
                property: 0x23,
                packet_type: PacketType::Connect
            })
        );
        // Will Delay Interval in the will is fine, in CONNECT itself is not.
        assert!(decode(&[5, 0x18, 0, 0, 0, 1], Scope::Will).is_ok());
        assert!(matches!(
            decode(&[5, 0x18, 0, 0, 0, 1], CONNECT),
            Err(Error::PropertyNotAllowed { .. })
        ));
    }

    #[test]
    fn unknown_property_is_malformed() {
        let e = decode(&[2, 0x04, 0], PUBLISH).unwrap_err();
        assert_eq!(e, Error::UnknownProperty(4));
        assert!(e.is_malformed());
        // A two-byte identifier (0x80 0x01 = 128).
        assert_eq!(
            decode(&[3, 0x80, 0x01, 0], PUBLISH),
            Err(Error::UnknownProperty(128))
        );
    }

    #[test]
    fn duplicates_are_protocol_errors() {
        let e = decode(&[6, 0x23, 0, 1, 0x23, 0, 2], PUBLISH).unwrap_err();
        assert_eq!(e, Error::DuplicateProperty(0x23));
        assert_eq!(e.reason_code().0, 0x82);
        // User properties repeat freely.
        let p = decode(
            &[12, 0x26, 0, 1, b'a', 0, 0, 0x26, 0, 1, b'a', 0, 0],
            PUBLISH,
        )
        .unwrap();
        assert_eq!(p.user_properties.len(), 2);
        // Subscription identifiers repeat in PUBLISH, not in SUBSCRIBE.
        let twice = [4, 0x0B, 1, 0x0B, 2];
        assert_eq!(
            decode(&twice, PUBLISH).unwrap().subscription_identifiers,
            vec![1, 2]
        );
        assert_eq!(
            decode(&twice, Scope::Packet(PacketType::Subscribe)),
            Err(Error::DuplicateProperty(0x0B))
        );
    }

    #[test]
    fn value_rules() {
        // Flag bytes other than 0/1.
        assert_eq!(
            decode(&[2, 0x01, 2], PUBLISH),
            Err(Error::InvalidPropertyValue(0x01))
        );
        assert_eq!(
            decode(&[2, 0x17, 2], CONNECT),
            Err(Error::InvalidPropertyValue(0x17))
        );
        // Receive Maximum 0, Maximum Packet Size 0.
        assert_eq!(
            decode(&[3, 0x21, 0, 0], CONNECT),
            Err(Error::InvalidPropertyValue(0x21))
        );
        assert_eq!(
            decode(&[5, 0x27, 0, 0, 0, 0], CONNECT),
            Err(Error::InvalidPropertyValue(0x27))
        );
        // Maximum QoS 2.
        assert_eq!(
            decode(&[2, 0x24, 2], Scope::Packet(PacketType::ConnAck)),
            Err(Error::InvalidPropertyValue(0x24))
        );
        // Subscription Identifier 0.
        assert_eq!(
            decode(&[2, 0x0B, 0], PUBLISH),
            Err(Error::InvalidPropertyValue(0x0B))
        );
        // Topic Alias 0 has its own reason code.
        let e = decode(&[3, 0x23, 0, 0], PUBLISH).unwrap_err();
        assert_eq!(e, Error::TopicAliasInvalid);
        assert_eq!(e.reason_code().0, 0x94);
        // Response Topic with a wildcard.
        assert_eq!(
            decode(&[5, 0x08, 0, 2, b'a', b'#'], PUBLISH),
            Err(Error::InvalidPropertyValue(0x08))
        );
        // Authentication Data without Authentication Method.
        assert_eq!(
            decode(&[4, 0x16, 0, 1, 9], CONNECT),
            Err(Error::InvalidPropertyValue(0x16))
        );
    }

    #[test]
    fn block_bounds() {
        // A property running past the property length.
        assert_eq!(decode(&[2, 0x23, 0], PUBLISH), Err(Error::Truncated));
        // A property length running past the packet.
        assert_eq!(decode(&[9, 0x23, 0, 1], PUBLISH), Err(Error::Truncated));
        // Strings in properties follow the string rules.
        assert_eq!(
            decode(&[5, 0x03, 0, 2, b'a', 0], PUBLISH),
            Err(Error::InvalidUtf8)
        );
    }
}
