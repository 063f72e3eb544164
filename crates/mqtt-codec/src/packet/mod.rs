//! The packet layer: [`Packet`], the fixed header, and the dispatch to one file per packet
//! family (connect, publish, subscribe, disconnect), each of which decodes and encodes its
//! own packets.
//!
//! A fixed header is one byte of type and flags followed by the remaining length, a
//! variable byte integer. The first byte is checked as soon as it arrives, before the
//! body is buffered: a peer that starts with garbage is refused at once.

pub mod connect;
pub mod disconnect;
pub mod publish;
pub mod subscribe;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{EncodeError, Error, Result};
use crate::ProtocolVersion;

pub use connect::{ConnAck, Connect, Will};
pub use disconnect::{Auth, Disconnect};
pub use publish::{PubReply, Publish};
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};

/// The control packet type, the high nibble of the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    /// MQTT 5 only.
    Auth = 15,
}

impl PacketType {
    pub fn from_u8(t: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match t {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }
}

/// Quality of service. Ordered, so a granted QoS is `requested.min(maximum)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    /// `None` for 3, which every packet that carries a QoS treats as an error.
    pub fn from_u8(q: u8) -> Option<QoS> {
        Some(match q {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            2 => QoS::ExactlyOnce,
            _ => return None,
        })
    }
}

/// One MQTT control packet.
///
/// CONNECT is boxed: it is by far the largest variant (two property sets) and arrives
/// once per connection, while every other packet moves by value on the hot path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubReply),
    PubRec(PubReply),
    PubRel(PubReply),
    PubComp(PubReply),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }
}

/// Checks the first byte of a fixed header: a known packet type, and the flags the type
/// requires (2.1.3: anything else is a Malformed Packet).
///
/// MQTT 3.1 predates the reserved-flag rule: its clients set DUP and QoS 1 on retried
/// SUBSCRIBE, UNSUBSCRIBE and PUBREL, so for 3.1 only PUBLISH's QoS is checked. CONNECT's
/// flags are checked by its decoder, once the protocol level is known.
pub(crate) fn check_first_byte(first: u8, version: ProtocolVersion) -> Result<PacketType> {
    let t = first >> 4;
    let flags = first & 0x0F;
    let packet_type = match PacketType::from_u8(t) {
        Some(PacketType::Auth) if version != ProtocolVersion::V5 => None,
        p => p,
    }
    .ok_or(Error::InvalidPacketType(t))?;
    let ok = match packet_type {
        PacketType::Publish => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(Error::InvalidQoS);
            }
            // DUP must be 0 on QoS 0 (3.3.1.1); treated like any other flag violation.
            qos != 0 || flags & 0b1000 == 0 || version == ProtocolVersion::V3_1
        }
        PacketType::Connect => true,
        _ if version == ProtocolVersion::V3_1 => true,
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => flags == 0b0010,
        _ => flags == 0,
    };
    if !ok {
        return Err(Error::InvalidHeaderFlags { packet_type, flags });
    }
    Ok(packet_type)
}

/// Decodes a packet body (everything after the remaining length).
pub(crate) fn decode_body(
    packet_type: PacketType,
    flags: u8,
    body: Bytes,
    version: ProtocolVersion,
) -> Result<Packet> {
    use PacketType as T;
    Ok(match packet_type {
        T::Connect => Packet::Connect(Box::new(Connect::decode(flags, body)?)),
        T::ConnAck => Packet::ConnAck(ConnAck::decode(body, version)?),
        T::Publish => Packet::Publish(Publish::decode(flags, body, version)?),
        T::PubAck => Packet::PubAck(PubReply::decode(packet_type, body, version)?),
        T::PubRec => Packet::PubRec(PubReply::decode(packet_type, body, version)?),
        T::PubRel => Packet::PubRel(PubReply::decode(packet_type, body, version)?),
        T::PubComp => Packet::PubComp(PubReply::decode(packet_type, body, version)?),
        T::Subscribe => Packet::Subscribe(Subscribe::decode(body, version)?),
        T::SubAck => Packet::SubAck(SubAck::decode(body, version)?),
        T::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(body, version)?),
        T::UnsubAck => Packet::UnsubAck(UnsubAck::decode(body, version)?),
        T::PingReq | T::PingResp => {
            expect_end(&body)?;
            if packet_type == T::PingReq {
                Packet::PingReq
            } else {
                Packet::PingResp
            }
        }
        T::Disconnect => Packet::Disconnect(Disconnect::decode(body, version)?),
        T::Auth => Packet::Auth(Auth::decode(body)?),
    })
}

/// The first byte of the fixed header for `packet`.
pub(crate) fn first_byte(packet: &Packet) -> u8 {
    let t = packet.packet_type() as u8;
    let flags = match packet {
        Packet::Publish(p) => (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain),
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    (t << 4) | flags
}

/// The remaining length of `packet` in `version`, refusing what cannot be encoded.
pub(crate) fn body_len(
    packet: &Packet,
    version: ProtocolVersion,
) -> std::result::Result<usize, EncodeError> {
    Ok(match packet {
        Packet::Connect(c) => c.body_len()?,
        Packet::ConnAck(c) => c.body_len(version)?,
        Packet::Publish(p) => p.body_len(version)?,
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            r.body_len(version)?
        }
        Packet::Subscribe(s) => s.body_len(version)?,
        Packet::SubAck(s) => s.body_len(version)?,
        Packet::Unsubscribe(u) => u.body_len(version)?,
        Packet::UnsubAck(u) => u.body_len(version)?,
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => d.body_len(version)?,
        Packet::Auth(a) => {
            if version != ProtocolVersion::V5 {
                return Err(EncodeError::NotInVersion {
                    packet_type: PacketType::Auth,
                });
            }
            a.body_len()?
        }
    })
}

/// Writes the body of a packet that [`body_len`] accepted.
pub(crate) fn write_body(packet: &Packet, version: ProtocolVersion, buf: &mut BytesMut) {
    match packet {
        Packet::Connect(c) => c.write(buf),
        Packet::ConnAck(c) => c.write(version, buf),
        Packet::Publish(p) => p.write(version, buf),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            r.write(version, buf)
        }
        Packet::Subscribe(s) => s.write(version, buf),
        Packet::SubAck(s) => s.write(version, buf),
        Packet::Unsubscribe(u) => u.write(version, buf),
        Packet::UnsubAck(u) => u.write(version, buf),
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => d.write(version, buf),
        Packet::Auth(a) => a.write(buf),
    }
}

/// Fails with [`Error::TrailingBytes`] unless the packet has been read to its end.
#[inline]
pub(crate) fn expect_end(b: &Bytes) -> Result<()> {
    if b.is_empty() {
        Ok(())
    } else {
        Err(Error::TrailingBytes)
    }
}

/// Writes a packet identifier.
#[inline]
pub(crate) fn put_packet_id(buf: &mut BytesMut, id: u16) {
    buf.put_u16(id);
}
