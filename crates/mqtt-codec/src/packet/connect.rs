//! CONNECT and CONNACK (sections 3.1, 3.2).
//!
//! CONNECT is the one packet decoded without knowing the protocol version: it carries the
//! version itself (protocol name + level), and everything after the level is read in the
//! version it names. CONNACK is the one packet whose 3.x and 5 codes differ; it holds an
//! MQTT 5 [`ReasonCode`] and translates at the wire (see [`crate::reason`]).

use bytes::{BufMut, Bytes, BytesMut};

use super::{expect_end, PacketType, QoS};
use crate::error::{EncodeError, Error, Result};
use crate::properties::{Properties, Scope};
use crate::reason::ReasonCode;
use crate::topic;
use crate::wire::{field_len, put_binary, read_binary, read_str, read_u16, read_u8, ByteStr};
use crate::ProtocolVersion;

/// A CONNECT packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The version this CONNECT was written in; the encoder writes this one, whatever
    /// version it is asked for.
    pub protocol_version: ProtocolVersion,
    /// Clean Start in MQTT 5, Clean Session in 3.x.
    pub clean_start: bool,
    /// Seconds; 0 turns keep alive off.
    pub keep_alive: u16,
    /// May be empty (3.1.1 and 5: the server assigns one; 3.1 requires 1 to 23 characters,
    /// which is the broker's check, answered with "identifier rejected").
    pub client_id: ByteStr,
    pub will: Option<Will>,
    pub username: Option<ByteStr>,
    pub password: Option<Bytes>,
    pub properties: Properties,
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Will {
    /// A topic name: no wildcards.
    pub topic: ByteStr,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// MQTT 5 will properties.
    pub properties: Properties,
}

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL_FLAG: u8 = 0x04;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

impl Connect {
    /// A CONNECT with the given version and client id, clean start, no keep alive, no will,
    /// no credentials.
    pub fn new(protocol_version: ProtocolVersion, client_id: impl Into<ByteStr>) -> Connect {
        Connect {
            protocol_version,
            clean_start: true,
            keep_alive: 0,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }
    }

    pub(crate) fn decode(header_flags: u8, mut b: Bytes) -> Result<Connect> {
        let name = read_binary(&mut b)?;
        let level = read_u8(&mut b)?;
        let version = match (&name[..], level) {
            (b"MQIsdp", 3) => ProtocolVersion::V3_1,
            (b"MQTT", 4) => ProtocolVersion::V3_1_1,
            (b"MQTT", 5) => ProtocolVersion::V5,
            (b"MQIsdp" | b"MQTT", _) => return Err(Error::UnsupportedProtocolVersion(level)),
            _ => return Err(Error::InvalidProtocolName),
        };
        // The flags rule of the fixed header, which could not be applied before the
        // version was known (3.1 has no reserved-flag rule).
        if version != ProtocolVersion::V3_1 && header_flags != 0 {
            return Err(Error::InvalidHeaderFlags {
                packet_type: PacketType::Connect,
                flags: header_flags,
            });
        }
        let flags = read_u8(&mut b)?;
        if flags & RESERVED != 0 && version != ProtocolVersion::V3_1 {
            return Err(Error::InvalidConnectFlags(flags));
        }
        let will_flag = flags & WILL_FLAG != 0;
        let will_qos =
            QoS::from_u8((flags >> 3) & 0b11).ok_or(Error::InvalidConnectFlags(flags))?;
        let will_retain = flags & WILL_RETAIN != 0;
        if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(Error::InvalidConnectFlags(flags));
        }
        // MQTT 5 allows a password without a user name (for tokens); 3.x does not.
        if version != ProtocolVersion::V5 && flags & PASSWORD != 0 && flags & USERNAME == 0 {
            return Err(Error::PasswordWithoutUsername);
        }
        let keep_alive = read_u16(&mut b)?;
        let properties = if version == ProtocolVersion::V5 {
            Properties::decode(&mut b, Scope::Packet(PacketType::Connect))?
        } else {
            Properties::default()
        };
        let client_id = read_str(&mut b)?;
        let will = if will_flag {
            let properties = if version == ProtocolVersion::V5 {
                Properties::decode(&mut b, Scope::Will)?
            } else {
                Properties::default()
            };
            let topic = read_str(&mut b)?;
            if !topic::is_valid_topic_name(&topic) {
                return Err(Error::TopicNameInvalid);
            }
            let payload = read_binary(&mut b)?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if flags & USERNAME != 0 {
            Some(read_str(&mut b)?)
        } else {
            None
        };
        let password = if flags & PASSWORD != 0 {
            Some(read_binary(&mut b)?)
        } else {
            None
        };
        expect_end(&b)?;
        Ok(Connect {
            protocol_version: version,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    fn protocol_name(&self) -> &'static [u8] {
        match self.protocol_version {
            ProtocolVersion::V3_1 => b"MQIsdp",
            _ => b"MQTT",
        }
    }

    pub(crate) fn body_len(&self) -> std::result::Result<usize, EncodeError> {
        let v5 = self.protocol_version == ProtocolVersion::V5;
        let mut n = 2 + self.protocol_name().len() + 1 + 1 + 2;
        if v5 {
            n += self.properties.encoded_len()?;
        }
        n += field_len(self.client_id.len())?;
        if let Some(w) = &self.will {
            if v5 {
                n += w.properties.encoded_len()?;
            }
            n += field_len(w.topic.len())? + field_len(w.payload.len())?;
        }
        if let Some(u) = &self.username {
            n += field_len(u.len())?;
        }
        if let Some(p) = &self.password {
            n += field_len(p.len())?;
        }
        Ok(n)
    }

    pub(crate) fn write(&self, buf: &mut BytesMut) {
        let v5 = self.protocol_version == ProtocolVersion::V5;
        put_binary(buf, self.protocol_name());
        buf.put_u8(self.protocol_version as u8);
        let mut flags = 0;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(w) = &self.will {
            flags |= WILL_FLAG | ((w.qos as u8) << 3);
            if w.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        buf.put_u8(flags);
        buf.put_u16(self.keep_alive);
        if v5 {
            self.properties.write(buf);
        }
        put_binary(buf, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            if v5 {
                w.properties.write(buf);
            }
            put_binary(buf, w.topic.as_bytes());
            put_binary(buf, &w.payload);
        }
        if let Some(u) = &self.username {
            put_binary(buf, u.as_bytes());
        }
        if let Some(p) = &self.password {
            put_binary(buf, p);
        }
    }
}

/// A CONNACK packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAck {
    /// Always false in MQTT 3.1, which has no such flag.
    pub session_present: bool,
    /// An MQTT 5 code. For 3.x it is written as the nearest return code
    /// ([`ReasonCode::to_v3_connack`]) and a 3.x return code reads back as its MQTT 5
    /// equivalent ([`ReasonCode::from_v3_connack`]).
    pub code: ReasonCode,
    pub properties: Properties,
}

impl ConnAck {
    pub(crate) fn decode(mut b: Bytes, version: ProtocolVersion) -> Result<ConnAck> {
        let flags = read_u8(&mut b)?;
        // In 3.1 this byte was "reserved" (topic name compression, never used).
        let session_present = match version {
            ProtocolVersion::V3_1 => false,
            _ if flags & 0xFE != 0 => return Err(Error::InvalidConnAckFlags(flags)),
            _ => flags & 1 != 0,
        };
        let raw = read_u8(&mut b)?;
        let invalid = Error::InvalidReasonCode {
            packet_type: PacketType::ConnAck,
            code: raw,
        };
        let (code, properties) = if version == ProtocolVersion::V5 {
            let code = ReasonCode(raw);
            if !code.is_valid_for(PacketType::ConnAck) {
                return Err(invalid);
            }
            let props = Properties::decode(&mut b, Scope::Packet(PacketType::ConnAck))?;
            (code, props)
        } else {
            let code = ReasonCode::from_v3_connack(raw).ok_or(invalid)?;
            (code, Properties::default())
        };
        expect_end(&b)?;
        Ok(ConnAck {
            session_present,
            code,
            properties,
        })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
    ) -> std::result::Result<usize, EncodeError> {
        Ok(match version {
            ProtocolVersion::V5 => 2 + self.properties.encoded_len()?,
            _ => 2,
        })
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        let flags = match version {
            ProtocolVersion::V3_1 => 0,
            _ => u8::from(self.session_present),
        };
        buf.put_u8(flags);
        match version {
            ProtocolVersion::V5 => {
                buf.put_u8(self.code.0);
                self.properties.write(buf);
            }
            _ => buf.put_u8(self.code.to_v3_connack()),
        }
    }
}
