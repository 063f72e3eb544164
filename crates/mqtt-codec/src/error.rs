//! Decoding and encoding errors.
//!
//! A decoding error always ends the connection (MQTT has no way to skip a bad packet), so
//! what matters is *which* reason code the broker sends before closing. Each variant names
//! the rule that was broken, and [`Error::reason_code`] maps it to the MQTT 5 code: the
//! spec's own split between Malformed Packet (0x81, "cannot be parsed") and Protocol Error
//! (0x82, "parsed, but not allowed"), plus the few errors that have a code of their own
//! (packet too large, unsupported protocol version, invalid topic name / filter / alias).
//! MQTT 3.x has no reason codes outside CONNACK; a 3.x broker just closes the connection.

use std::fmt;

use crate::packet::PacketType;
use crate::reason::ReasonCode;

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // --- Malformed Packet (0x81) -------------------------------------------------------
    /// A variable byte integer (the remaining length, a property length, a subscription
    /// identifier) whose fourth byte still has its continuation bit set.
    MalformedVarInt,
    /// Packet type 0, or 15 (AUTH) before MQTT 5.
    InvalidPacketType(u8),
    /// The low nibble of the first byte is not what the packet type requires (0b0010 for
    /// PUBREL, SUBSCRIBE, UNSUBSCRIBE; 0 for the others), or DUP is set on a QoS 0 PUBLISH.
    InvalidHeaderFlags { packet_type: PacketType, flags: u8 },
    /// QoS 3, in a PUBLISH header, a CONNECT will, or an MQTT 3.x subscription.
    InvalidQoS,
    /// A field runs past the end of the packet (or of its property block).
    Truncated,
    /// Bytes left over after a packet's last field.
    TrailingBytes,
    /// A UTF-8 string that is not well-formed UTF-8 or contains U+0000.
    InvalidUtf8,
    /// CONNECT flags with the reserved bit set, a will QoS of 3, or will QoS / will retain
    /// set without the will flag.
    InvalidConnectFlags(u8),
    /// CONNACK acknowledge flags with a reserved bit set.
    InvalidConnAckFlags(u8),
    /// Subscription options with a reserved bit set.
    ReservedSubscriptionBits(u8),
    /// A property identifier the spec does not define.
    UnknownProperty(u32),
    /// A property that is defined, but not for this packet (or not for a will).
    PropertyNotAllowed {
        property: u8,
        packet_type: PacketType,
    },

    // --- Protocol Error (0x82) ---------------------------------------------------------
    /// A property that may appear at most once appeared twice.
    DuplicateProperty(u8),
    /// A property value the spec forbids: a 0/1 byte that is neither, Receive Maximum or
    /// Maximum Packet Size or Subscription Identifier of 0, Maximum QoS of 2, a Response
    /// Topic that is not a valid topic name, Authentication Data without a method.
    InvalidPropertyValue(u8),
    /// A packet identifier of 0 where one is required.
    ZeroPacketId,
    /// A reason code that is not one of those listed for this packet type.
    InvalidReasonCode { packet_type: PacketType, code: u8 },
    /// MQTT 3.x: the password flag set without the username flag.
    PasswordWithoutUsername,
    /// MQTT 5 subscription options with Maximum QoS 3, Retain Handling 3, or No Local on a
    /// shared subscription.
    InvalidSubscriptionOptions(u8),
    /// SUBSCRIBE or UNSUBSCRIBE without a single topic filter.
    NoTopicFilters,
    /// SUBACK or UNSUBACK (MQTT 5) without a single reason code.
    NoReasonCodes,
    /// A PUBLISH with an empty topic name (and, in MQTT 5, no topic alias).
    EmptyTopicName,

    // --- Errors with a reason code of their own ----------------------------------------
    /// The packet (fixed header included) is larger than the limit the caller set.
    /// Detected from the fixed header alone, before the body is buffered. 0x95.
    PacketTooLarge { size: usize, max: u32 },
    /// CONNECT with a protocol name other than "MQTT" or "MQIsdp". 0x84.
    InvalidProtocolName,
    /// CONNECT with a protocol level this codec does not speak, or a level that does not
    /// go with the protocol name (only "MQIsdp" 3, "MQTT" 4 and "MQTT" 5 exist). 0x84.
    UnsupportedProtocolVersion(u8),
    /// A PUBLISH topic name or will topic containing a wildcard. 0x90.
    TopicNameInvalid,
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter that breaks the `+` / `#` / `$share` rules.
    /// 0x8F.
    TopicFilterInvalid,
    /// A Topic Alias of 0. 0x94.
    TopicAliasInvalid,
}

impl Error {
    /// The MQTT 5 reason code a broker sends (in CONNACK before the connection is
    /// accepted, in DISCONNECT after) when it refuses a packet for this error.
    pub fn reason_code(&self) -> ReasonCode {
        use Error::*;
        match self {
            MalformedVarInt
            | InvalidPacketType(_)
            | InvalidHeaderFlags { .. }
            | InvalidQoS
            | Truncated
            | TrailingBytes
            | InvalidUtf8
            | InvalidConnectFlags(_)
            | InvalidConnAckFlags(_)
            | ReservedSubscriptionBits(_)
            | UnknownProperty(_)
            | PropertyNotAllowed { .. } => ReasonCode::MALFORMED_PACKET,
            DuplicateProperty(_)
            | InvalidPropertyValue(_)
            | ZeroPacketId
            | InvalidReasonCode { .. }
            | PasswordWithoutUsername
            | InvalidSubscriptionOptions(_)
            | NoTopicFilters
            | NoReasonCodes
            | EmptyTopicName => ReasonCode::PROTOCOL_ERROR,
            PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            InvalidProtocolName | UnsupportedProtocolVersion(_) => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            TopicNameInvalid => ReasonCode::TOPIC_NAME_INVALID,
            TopicFilterInvalid => ReasonCode::TOPIC_FILTER_INVALID,
            TopicAliasInvalid => ReasonCode::TOPIC_ALIAS_INVALID,
        }
    }

    /// Whether the spec calls this a Malformed Packet (as opposed to a Protocol Error or
    /// one of the errors with a code of their own).
    pub fn is_malformed(&self) -> bool {
        self.reason_code() == ReasonCode::MALFORMED_PACKET
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            MalformedVarInt => write!(f, "variable byte integer longer than 4 bytes"),
            InvalidPacketType(t) => write!(f, "invalid packet type {t}"),
            InvalidHeaderFlags { packet_type, flags } => {
                write!(
                    f,
                    "invalid fixed header flags {flags:#06b} for {packet_type:?}"
                )
            }
            InvalidQoS => write!(f, "QoS 3 is not a QoS level"),
            Truncated => write!(f, "field runs past the end of the packet"),
            TrailingBytes => write!(f, "trailing bytes after the last field"),
            InvalidUtf8 => write!(f, "string is not well-formed UTF-8 or contains U+0000"),
            InvalidConnectFlags(b) => write!(f, "invalid CONNECT flags {b:#010b}"),
            InvalidConnAckFlags(b) => write!(f, "invalid CONNACK flags {b:#010b}"),
            ReservedSubscriptionBits(b) => {
                write!(f, "reserved bits set in subscription options {b:#010b}")
            }
            UnknownProperty(id) => write!(f, "unknown property {id:#04x}"),
            PropertyNotAllowed {
                property,
                packet_type,
            } => write!(f, "property {property:#04x} not allowed in {packet_type:?}"),
            DuplicateProperty(id) => write!(f, "property {id:#04x} included more than once"),
            InvalidPropertyValue(id) => write!(f, "invalid value for property {id:#04x}"),
            ZeroPacketId => write!(f, "packet identifier 0"),
            InvalidReasonCode { packet_type, code } => {
                write!(f, "reason code {code:#04x} not allowed in {packet_type:?}")
            }
            PasswordWithoutUsername => write!(f, "password flag set without username flag"),
            InvalidSubscriptionOptions(b) => write!(f, "invalid subscription options {b:#010b}"),
            NoTopicFilters => write!(f, "no topic filters"),
            NoReasonCodes => write!(f, "no reason codes"),
            EmptyTopicName => write!(f, "empty topic name"),
            PacketTooLarge { size, max } => {
                write!(f, "packet of {size} bytes exceeds the limit of {max}")
            }
            InvalidProtocolName => write!(f, "invalid protocol name"),
            UnsupportedProtocolVersion(v) => write!(f, "unsupported protocol level {v}"),
            TopicNameInvalid => write!(f, "invalid topic name"),
            TopicFilterInvalid => write!(f, "invalid topic filter"),
            TopicAliasInvalid => write!(f, "topic alias 0"),
        }
    }
}

impl std::error::Error for Error {}

/// Why a packet could not be encoded. The encoder trusts the caller on everything else
/// (it does not re-check what the decoder checks), but it never writes a packet whose
/// lengths it cannot represent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The remaining length would exceed 268,435,455 bytes.
    PacketTooLarge { remaining_length: usize },
    /// A string or binary field longer than 65,535 bytes.
    FieldTooLong { len: usize },
    /// A packet type the protocol version does not have (AUTH before MQTT 5).
    NotInVersion { packet_type: PacketType },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::PacketTooLarge { remaining_length } => {
                write!(f, "remaining length {remaining_length} exceeds 268435455")
            }
            EncodeError::FieldTooLong { len } => {
                write!(f, "field of {len} bytes exceeds 65535")
            }
            EncodeError::NotInVersion { packet_type } => {
                write!(f, "{packet_type:?} does not exist in this protocol version")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

pub type Result<T> = std::result::Result<T, Error>;
