//! SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK (sections 3.8 to 3.11).
//!
//! Topic filters are validated here ([`crate::topic::is_valid_subscription_filter`]): an
//! invalid one fails the whole packet with [`Error::TopicFilterInvalid`] (0x8F, which is
//! also a DISCONNECT reason code). A broker that would rather refuse just that filter in
//! its SUBACK cannot, since the decoder stops at the first bad one; the spec allows either.

use bytes::{BufMut, Bytes, BytesMut};

use super::{expect_end, put_packet_id, PacketType, QoS};
use crate::error::{EncodeError, Error, Result};
use crate::properties::{Properties, Scope};
use crate::reason::ReasonCode;
use crate::topic;
use crate::wire::{field_len, put_binary, read_packet_id, read_str, read_u8, ByteStr};
use crate::ProtocolVersion;

/// MQTT 5 Retain Handling: when retained messages are sent for a new subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe (the only 3.x behaviour).
    #[default]
    SendAtSubscribe = 0,
    /// Send them only if the subscription did not already exist.
    SendIfNewSubscription = 1,
    /// Do not send them.
    DoNotSend = 2,
}

/// The options byte that follows each topic filter in SUBSCRIBE. MQTT 3.x has only the
/// QoS; the encoder leaves the other options out for 3.x.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// The maximum QoS the subscriber accepts.
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    pub fn new(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        }
    }

    fn decode(byte: u8, version: ProtocolVersion) -> Result<SubscriptionOptions> {
        if version != ProtocolVersion::V5 {
            if byte & 0xFC != 0 {
                return Err(Error::ReservedSubscriptionBits(byte));
            }
            let qos = QoS::from_u8(byte).ok_or(Error::InvalidQoS)?;
            return Ok(SubscriptionOptions::new(qos));
        }
        if byte & 0xC0 != 0 {
            return Err(Error::ReservedSubscriptionBits(byte));
        }
        // MQTT 5 calls QoS 3 and Retain Handling 3 Protocol Errors here (3.8.3.1), not
        // Malformed Packets as 3.1.1 did.
        let qos = QoS::from_u8(byte & 0b11).ok_or(Error::InvalidSubscriptionOptions(byte))?;
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNewSubscription,
            2 => RetainHandling::DoNotSend,
            _ => return Err(Error::InvalidSubscriptionOptions(byte)),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0b0100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        })
    }

    /// The options byte as `version` writes it.
    pub fn to_byte(self, version: ProtocolVersion) -> u8 {
        let mut b = self.qos as u8;
        if version == ProtocolVersion::V5 {
            b |= u8::from(self.no_local) << 2;
            b |= u8::from(self.retain_as_published) << 3;
            b |= (self.retain_handling as u8) << 4;
        }
        b
    }
}

/// One topic filter of a SUBSCRIBE, with its options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// A topic filter, possibly a shared one (`$share/{name}/{filter}`, MQTT 5).
    pub filter: ByteStr,
    pub options: SubscriptionOptions,
}

/// A SUBSCRIBE packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: u16,
    pub properties: Properties,
    /// At least one.
    pub subscriptions: Vec<Subscription>,
}

impl Subscribe {
    pub(crate) fn decode(mut b: Bytes, version: ProtocolVersion) -> Result<Subscribe> {
        let packet_id = read_packet_id(&mut b)?;
        let properties = read_properties(&mut b, PacketType::Subscribe, version)?;
        let mut subscriptions = Vec::new();
        while !b.is_empty() {
            let filter = read_filter(&mut b, version)?;
            let options = SubscriptionOptions::decode(read_u8(&mut b)?, version)?;
            // No Local on a shared subscription is a Protocol Error (3.8.3.1).
            if options.no_local && topic::parse_shared(&filter).is_some() {
                return Err(Error::InvalidSubscriptionOptions(options.to_byte(version)));
            }
            subscriptions.push(Subscription { filter, options });
        }
        if subscriptions.is_empty() {
            return Err(Error::NoTopicFilters);
        }
        Ok(Subscribe {
            packet_id,
            properties,
            subscriptions,
        })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
    ) -> std::result::Result<usize, EncodeError> {
        let mut n = 2 + properties_len(&self.properties, version)?;
        for s in &self.subscriptions {
            n += field_len(s.filter.len())? + 1;
        }
        Ok(n)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        put_packet_id(buf, self.packet_id);
        write_properties(&self.properties, version, buf);
        for s in &self.subscriptions {
            put_binary(buf, s.filter.as_bytes());
            buf.put_u8(s.options.to_byte(version));
        }
    }
}

/// A SUBACK packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: u16,
    pub properties: Properties,
    /// One per subscription, in order: the granted QoS (0x00..=0x02) or a failure. MQTT 3.x
    /// has a single failure code, 0x80, which every failure is written as.
    pub reason_codes: Vec<ReasonCode>,
}

impl SubAck {
    pub(crate) fn decode(mut b: Bytes, version: ProtocolVersion) -> Result<SubAck> {
        let packet_id = read_packet_id(&mut b)?;
        let properties = read_properties(&mut b, PacketType::SubAck, version)?;
        let mut reason_codes = Vec::with_capacity(b.len());
        for &raw in b.iter() {
            let code = ReasonCode(raw);
            let valid = match version {
                ProtocolVersion::V5 => code.is_valid_for(PacketType::SubAck),
                _ => matches!(raw, 0x00..=0x02 | 0x80),
            };
            if !valid {
                return Err(Error::InvalidReasonCode {
                    packet_type: PacketType::SubAck,
                    code: raw,
                });
            }
            reason_codes.push(code);
        }
        if reason_codes.is_empty() {
            return Err(Error::NoReasonCodes);
        }
        Ok(SubAck {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
    ) -> std::result::Result<usize, EncodeError> {
        Ok(2 + properties_len(&self.properties, version)? + self.reason_codes.len())
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        put_packet_id(buf, self.packet_id);
        write_properties(&self.properties, version, buf);
        for &code in &self.reason_codes {
            let raw = match version {
                ProtocolVersion::V5 => code.0,
                _ if code.is_error() => 0x80,
                _ => code.0,
            };
            buf.put_u8(raw);
        }
    }
}

/// An UNSUBSCRIBE packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: u16,
    pub properties: Properties,
    /// At least one.
    pub filters: Vec<ByteStr>,
}

impl Unsubscribe {
    pub(crate) fn decode(mut b: Bytes, version: ProtocolVersion) -> Result<Unsubscribe> {
        let packet_id = read_packet_id(&mut b)?;
        let properties = read_properties(&mut b, PacketType::Unsubscribe, version)?;
        let mut filters = Vec::new();
        while !b.is_empty() {
            filters.push(read_filter(&mut b, version)?);
        }
        if filters.is_empty() {
            return Err(Error::NoTopicFilters);
        }
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
    ) -> std::result::Result<usize, EncodeError> {
        let mut n = 2 + properties_len(&self.properties, version)?;
        for f in &self.filters {
            n += field_len(f.len())?;
        }
        Ok(n)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        put_packet_id(buf, self.packet_id);
        write_properties(&self.properties, version, buf);
        for f in &self.filters {
            put_binary(buf, f.as_bytes());
        }
    }
}

/// An UNSUBACK packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: u16,
    pub properties: Properties,
    /// MQTT 5: one per filter, in order. MQTT 3.x has none (empty when decoded, ignored
    /// when encoded).
    pub reason_codes: Vec<ReasonCode>,
}

impl UnsubAck {
    pub(crate) fn decode(mut b: Bytes, version: ProtocolVersion) -> Result<UnsubAck> {
        let packet_id = read_packet_id(&mut b)?;
        if version != ProtocolVersion::V5 {
            expect_end(&b)?;
            return Ok(UnsubAck {
                packet_id,
                ..UnsubAck::default()
            });
        }
        let properties = Properties::decode(&mut b, Scope::Packet(PacketType::UnsubAck))?;
        let mut reason_codes = Vec::with_capacity(b.len());
        for &raw in b.iter() {
            let code = ReasonCode(raw);
            if !code.is_valid_for(PacketType::UnsubAck) {
                return Err(Error::InvalidReasonCode {
                    packet_type: PacketType::UnsubAck,
                    code: raw,
                });
            }
            reason_codes.push(code);
        }
        if reason_codes.is_empty() {
            return Err(Error::NoReasonCodes);
        }
        Ok(UnsubAck {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
    ) -> std::result::Result<usize, EncodeError> {
        Ok(match version {
            ProtocolVersion::V5 => 2 + self.properties.encoded_len()? + self.reason_codes.len(),
            _ => 2,
        })
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        put_packet_id(buf, self.packet_id);
        if version == ProtocolVersion::V5 {
            self.properties.write(buf);
            for &code in &self.reason_codes {
                buf.put_u8(code.0);
            }
        }
    }
}

fn read_filter(b: &mut Bytes, version: ProtocolVersion) -> Result<ByteStr> {
    let filter = read_str(b)?;
    if !topic::is_valid_subscription_filter(&filter, version) {
        return Err(Error::TopicFilterInvalid);
    }
    Ok(filter)
}

/// Properties that exist only in MQTT 5 and are always present there.
fn read_properties(
    b: &mut Bytes,
    packet_type: PacketType,
    version: ProtocolVersion,
) -> Result<Properties> {
    if version == ProtocolVersion::V5 {
        Properties::decode(b, Scope::Packet(packet_type))
    } else {
        Ok(Properties::default())
    }
}

fn properties_len(
    properties: &Properties,
    version: ProtocolVersion,
) -> std::result::Result<usize, EncodeError> {
    if version == ProtocolVersion::V5 {
        properties.encoded_len()
    } else {
        Ok(0)
    }
}

fn write_properties(properties: &Properties, version: ProtocolVersion, buf: &mut BytesMut) {
    if version == ProtocolVersion::V5 {
        properties.write(buf);
    }
}
