//! Pure MQTT codec for MQTT 3.1, 3.1.1 and 5.0.
//!
//! Bytes in, typed packets out, and back: no I/O, no async, no broker types, so every
//! function here can be fuzzed on its own (see `fuzz/`).
//!
//! # Layout
//! - [`decode`], [`encode`], [`encoded_len`] (this file): the fixed header and the entry
//!   points. Decoding is incremental; encoding writes straight into the caller's buffer.
//! - [`packet`]: [`Packet`] and one file per packet family, each decoding and encoding
//!   its own packets: `connect` (CONNECT, CONNACK), `publish` (PUBLISH, PUBACK, PUBREC,
//!   PUBREL, PUBCOMP), `subscribe` (SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK),
//!   `disconnect` (DISCONNECT, AUTH). PINGREQ and PINGRESP have no body.
//! - [`properties`]: MQTT 5 properties, declared once in a table that generates the
//!   struct, the decoder and the encoder.
//! - [`reason`]: reason codes, and the translation to MQTT 3.x return codes.
//! - [`topic`]: topic name and filter validation, and matching as the spec defines it.
//! - [`wire`]: the data representations (variable byte integers, strings, binary) and
//!   [`ByteStr`], a `Bytes`-backed string so topics are shared with the read buffer.
//! - [`error`]: what can go wrong, and the reason code a broker answers it with.
//!
//! # Versions
//! The protocol version is a connection's state, so the caller passes it in. The one
//! exception is CONNECT, which names its version: it is always decoded in the version it
//! names, whatever the caller passed, so a broker can decode its first packet before it
//! knows the version. Encoding a packet in 3.x leaves out what 3.x does not have
//! (properties, MQTT 5 reason codes and subscription options).
//!
//! # Zero copy
//! A decoded packet's strings and binary fields, PUBLISH payloads included, are `Bytes`
//! slices of the read buffer: a decoded PUBLISH holds a reference to the buffer chunk it
//! came from, and no byte of it is copied.

pub mod error;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod topic;
pub mod wire;

use bytes::{Buf, BufMut, BytesMut};

use error::Result;

pub use error::{EncodeError, Error};
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PacketType, PubReply, Publish, QoS, RetainHandling,
    SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};
pub use properties::Properties;
pub use reason::ReasonCode;
pub use wire::ByteStr;

/// The MQTT protocol version, as the protocol level byte of CONNECT spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ProtocolVersion {
    /// MQTT 3.1, protocol name "MQIsdp".
    V3_1 = 3,
    /// MQTT 3.1.1, protocol name "MQTT".
    V3_1_1 = 4,
    /// MQTT 5.0, protocol name "MQTT".
    V5 = 5,
}

/// The largest packet MQTT can frame: one type byte, four remaining length bytes, and the
/// largest remaining length.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + wire::MAX_VAR_INT as usize;

/// Decodes one packet from the front of `buf`.
///
/// `Ok(None)` means `buf` does not hold a whole packet yet: nothing is consumed, and `buf`
/// has been grown to fit the packet once its size is known, so the caller's next read
/// lands in place. `Ok(Some(_))` consumes exactly that packet. After an error the
/// connection must be closed (MQTT cannot resynchronise); what `buf` holds is unspecified.
///
/// `max_packet_size` bounds the whole packet, fixed header included, as MQTT 5's Maximum
/// Packet Size does (0: no bound beyond the protocol's). An oversized packet is refused
/// from its fixed header, before its body is buffered. The first byte is checked as soon
/// as it arrives, so garbage is refused at once too.
///
/// `version` is the connection's; CONNECT ignores it (see the crate docs).
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<Packet>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet_type = packet::check_first_byte(first, version)?;
    let Some((remaining, len_len)) = wire::parse_var_int(&buf[1..])? else {
        return Ok(None);
    };
    let total = 1 + len_len + remaining as usize;
    if max_packet_size != 0 && total > max_packet_size as usize {
        return Err(Error::PacketTooLarge {
            size: total,
            max: max_packet_size,
        });
    }
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(1 + len_len);
    let body = buf.split_to(remaining as usize).freeze();
    packet::decode_body(packet_type, first & 0x0F, body, version).map(Some)
}

/// Appends `packet`, encoded for `version`, to `buf`. On error nothing is written.
///
/// CONNECT is written in its own `protocol_version`. The encoder trusts the packet: it
/// does not repeat the decoder's checks (a QoS 1 PUBLISH with packet id 0 is written as
/// such), it only refuses what the wire cannot represent.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> std::result::Result<(), EncodeError> {
    let remaining = remaining_length(packet, version)?;
    buf.reserve(1 + wire::var_int_len(remaining as u32) + remaining);
    buf.put_u8(packet::first_byte(packet));
    wire::put_var_int(buf, remaining as u32);
    let start = buf.len();
    packet::write_body(packet, version, buf);
    debug_assert_eq!(buf.len() - start, remaining, "{packet:?}");
    Ok(())
}

/// The size `packet` takes on the wire in `version`, fixed header included: what a broker
/// compares with the peer's Maximum Packet Size before sending.
pub fn encoded_len(
    packet: &Packet,
    version: ProtocolVersion,
) -> std::result::Result<usize, EncodeError> {
    let remaining = remaining_length(packet, version)?;
    Ok(1 + wire::var_int_len(remaining as u32) + remaining)
}

fn remaining_length(
    packet: &Packet,
    version: ProtocolVersion,
) -> std::result::Result<usize, EncodeError> {
    let remaining = packet::body_len(packet, version)?;
    if remaining > wire::MAX_VAR_INT as usize {
        return Err(EncodeError::PacketTooLarge {
            remaining_length: remaining,
        });
    }
    Ok(remaining)
}

/// The protocol version named by the CONNECT at the front of `buf`, if `buf` starts with
/// one and holds it up to the protocol level. `None` for anything else (not CONNECT, too
/// short, unknown name or level); nothing is consumed.
///
/// For a broker that wants to answer a CONNECT it cannot decode with a CONNACK in the
/// client's version (MQTT 5: 0x81 Malformed Packet rather than a bare close): it peeks
/// before decoding the first packet, since a failed decode leaves `buf` unspecified.
pub fn peek_connect_version(buf: &[u8]) -> Option<ProtocolVersion> {
    if buf.first()? >> 4 != PacketType::Connect as u8 {
        return None;
    }
    let (_, len_len) = wire::parse_var_int(buf.get(1..)?).ok()??;
    let b = buf.get(1 + len_len..)?;
    let name_len = usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?]));
    let name = b.get(2..2 + name_len)?;
    let level = *b.get(2 + name_len)?;
    match (name, level) {
        (b"MQIsdp", 3) => Some(ProtocolVersion::V3_1),
        (b"MQTT", 4) => Some(ProtocolVersion::V3_1_1),
        (b"MQTT", 5) => Some(ProtocolVersion::V5),
        _ => None,
    }
}
