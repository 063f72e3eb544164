//! PUBLISH and the four packets that acknowledge it: PUBACK, PUBREC, PUBREL, PUBCOMP
//! (sections 3.3 to 3.7).
//!
//! PUBLISH is the hot path. Its topic and payload are slices of the read buffer; nothing
//! is copied and, for MQTT 3.x, nothing is allocated. The decoder does not resolve topic
//! aliases (that needs per-connection state): a PUBLISH may come out with an empty topic
//! and `properties.topic_alias` set, and the broker fills the topic in.

use bytes::{BufMut, Bytes, BytesMut};

use super::{expect_end, put_packet_id, PacketType, QoS};
use crate::error::{EncodeError, Error, Result};
use crate::properties::{Properties, Scope};
use crate::reason::ReasonCode;
use crate::topic;
use crate::wire::{field_len, put_binary, read_packet_id, read_str, read_u8, ByteStr};
use crate::ProtocolVersion;

/// A PUBLISH packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// A topic name (no wildcards). Empty only in MQTT 5 with a topic alias.
    pub topic: ByteStr,
    /// 0 for QoS 0 (there is none on the wire); never 0 otherwise.
    pub packet_id: u16,
    pub properties: Properties,
    /// The application message, a slice of the read buffer.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0, non-retained PUBLISH.
    pub fn new(topic: impl Into<ByteStr>, payload: impl Into<Bytes>) -> Publish {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
            ..Publish::default()
        }
    }

    pub(crate) fn decode(flags: u8, mut b: Bytes, version: ProtocolVersion) -> Result<Publish> {
        // The QoS was checked with the first byte, before the body arrived.
        let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(Error::InvalidQoS)?;
        let topic = read_str(&mut b)?;
        if !topic.is_empty() && !topic::is_valid_topic_name(&topic) {
            return Err(Error::TopicNameInvalid);
        }
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            read_packet_id(&mut b)?
        };
        let properties = if version == ProtocolVersion::V5 {
            Properties::decode(&mut b, Scope::Packet(PacketType::Publish))?
        } else {
            Properties::default()
        };
        if topic.is_empty() && properties.topic_alias.is_none() {
            return Err(Error::EmptyTopicName);
        }
        Ok(Publish {
            dup: flags & 0b1000 != 0,
            qos,
            retain: flags & 1 != 0,
            topic,
            packet_id,
            properties,
            payload: b,
        })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
    ) -> std::result::Result<usize, EncodeError> {
        let mut n = field_len(self.topic.len())? + self.payload.len();
        if self.qos != QoS::AtMostOnce {
            n += 2;
        }
        if version == ProtocolVersion::V5 {
            n += self.properties.encoded_len()?;
        }
        Ok(n)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        put_binary(buf, self.topic.as_bytes());
        if self.qos != QoS::AtMostOnce {
            put_packet_id(buf, self.packet_id);
        }
        if version == ProtocolVersion::V5 {
            self.properties.write(buf);
        }
        buf.put_slice(&self.payload);
    }
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP, which share one shape: a packet identifier and, in
/// MQTT 5, a reason code and properties.
///
/// MQTT 5 lets the reason code be left out when it is Success and there are no properties,
/// and the properties when there are none; the encoder always takes the shortest form, so
/// the common case stays the 3.x four bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PubReply {
    pub packet_id: u16,
    /// Always Success in MQTT 3.x, which has no reason codes here.
    pub reason_code: ReasonCode,
    pub properties: Properties,
}

impl PubReply {
    /// A successful reply to `packet_id`.
    pub fn new(packet_id: u16) -> PubReply {
        PubReply {
            packet_id,
            ..PubReply::default()
        }
    }

    pub(crate) fn decode(
        packet_type: PacketType,
        mut b: Bytes,
        version: ProtocolVersion,
    ) -> Result<PubReply> {
        let packet_id = read_packet_id(&mut b)?;
        let (reason_code, properties) = if version == ProtocolVersion::V5 {
            decode_reason_and_properties(packet_type, &mut b)?
        } else {
            (ReasonCode::SUCCESS, Properties::default())
        };
        expect_end(&b)?;
        Ok(PubReply {
            packet_id,
            reason_code,
            properties,
        })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
    ) -> std::result::Result<usize, EncodeError> {
        let tail = if version == ProtocolVersion::V5 {
            reason_and_properties_len(self.reason_code, &self.properties)?
        } else {
            0
        };
        Ok(2 + tail)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        put_packet_id(buf, self.packet_id);
        if version == ProtocolVersion::V5 {
            write_reason_and_properties(self.reason_code, &self.properties, buf);
        }
    }
}

/// Reads the optional MQTT 5 tail shared by the PUBLISH replies, DISCONNECT and AUTH: a
/// reason code, then properties, each present only if bytes remain (3.4.2.1, 3.14.2.1,
/// 3.15.2.1). An absent reason code means Success.
pub(crate) fn decode_reason_and_properties(
    packet_type: PacketType,
    b: &mut Bytes,
) -> Result<(ReasonCode, Properties)> {
    if b.is_empty() {
        return Ok((ReasonCode::SUCCESS, Properties::default()));
    }
    let code = ReasonCode(read_u8(b)?);
    if !code.is_valid_for(packet_type) {
        return Err(Error::InvalidReasonCode {
            packet_type,
            code: code.0,
        });
    }
    let properties = if b.is_empty() {
        Properties::default()
    } else {
        Properties::decode(b, Scope::Packet(packet_type))?
    };
    Ok((code, properties))
}

/// Length of the shortest encoding of that tail.
pub(crate) fn reason_and_properties_len(
    code: ReasonCode,
    properties: &Properties,
) -> std::result::Result<usize, EncodeError> {
    Ok(if !properties.is_empty() {
        1 + properties.encoded_len()?
    } else if code != ReasonCode::SUCCESS {
        1
    } else {
        0
    })
}

pub(crate) fn write_reason_and_properties(
    code: ReasonCode,
    properties: &Properties,
    buf: &mut BytesMut,
) {
    if !properties.is_empty() {
        buf.put_u8(code.0);
        properties.write(buf);
    } else if code != ReasonCode::SUCCESS {
        buf.put_u8(code.0);
    }
}
