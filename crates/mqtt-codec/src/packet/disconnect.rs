//! DISCONNECT and AUTH (sections 3.14, 3.15).
//!
//! In MQTT 3.x DISCONNECT is an empty packet sent by the client. In MQTT 5 either side
//! sends it, with an optional reason code and properties; AUTH has the same shape and
//! exists only in MQTT 5. Both use the shortest encoding: nothing after the fixed header
//! when the code is Success and there are no properties.

use bytes::{Bytes, BytesMut};

use super::publish::{
    decode_reason_and_properties, reason_and_properties_len, write_reason_and_properties,
};
use super::{expect_end, PacketType};
use crate::error::{EncodeError, Result};
use crate::properties::Properties;
use crate::reason::ReasonCode;
use crate::ProtocolVersion;

/// A DISCONNECT packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// Normal disconnection in MQTT 3.x.
    pub reason_code: ReasonCode,
    pub properties: Properties,
}

impl Disconnect {
    pub fn new(reason_code: ReasonCode) -> Disconnect {
        Disconnect {
            reason_code,
            properties: Properties::default(),
        }
    }

    pub(crate) fn decode(mut b: Bytes, version: ProtocolVersion) -> Result<Disconnect> {
        let (reason_code, properties) = if version == ProtocolVersion::V5 {
            decode_reason_and_properties(PacketType::Disconnect, &mut b)?
        } else {
            (ReasonCode::NORMAL_DISCONNECTION, Properties::default())
        };
        expect_end(&b)?;
        Ok(Disconnect {
            reason_code,
            properties,
        })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
    ) -> std::result::Result<usize, EncodeError> {
        if version == ProtocolVersion::V5 {
            reason_and_properties_len(self.reason_code, &self.properties)
        } else {
            Ok(0)
        }
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        if version == ProtocolVersion::V5 {
            write_reason_and_properties(self.reason_code, &self.properties, buf);
        }
    }
}

/// An AUTH packet (MQTT 5 enhanced authentication).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// Success, Continue authentication or Re-authenticate.
    pub reason_code: ReasonCode,
    pub properties: Properties,
}

impl Auth {
    pub(crate) fn decode(mut b: Bytes) -> Result<Auth> {
        // The spec only describes omitting both the code and the properties (remaining
        // length 0); a code without properties is accepted as DISCONNECT's rules allow.
        let (reason_code, properties) = decode_reason_and_properties(PacketType::Auth, &mut b)?;
        expect_end(&b)?;
        Ok(Auth {
            reason_code,
            properties,
        })
    }

    pub(crate) fn body_len(&self) -> std::result::Result<usize, EncodeError> {
        reason_and_properties_len(self.reason_code, &self.properties)
    }

    pub(crate) fn write(&self, buf: &mut BytesMut) {
        write_reason_and_properties(self.reason_code, &self.properties, buf);
    }
}
