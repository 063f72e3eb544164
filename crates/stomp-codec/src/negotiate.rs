//! Connection negotiation helpers: the protocol version from `accept-version`, and the
//! heart-beat intervals from the two `heart-beat` headers.

use std::fmt;
use std::time::Duration;

use crate::command::Version;

/// Picks the highest version both sides speak. `accept_version` is the CONNECT frame's
/// header value; a missing header means the client speaks 1.0 only (spec). Entries are
/// comma-separated; surrounding whitespace is ignored (RabbitMQ splits on "," alone, so
/// "1.1, 1.2" would give it 1.1 only) and unknown versions are skipped. `None` means no
/// common version: the broker answers with an ERROR frame listing `supported` (RabbitMQ:
/// "Version mismatch").
pub fn negotiate_version(accept_version: Option<&[u8]>, supported: &[Version]) -> Option<Version> {
    let Some(list) = accept_version else {
        return supported.contains(&Version::V1_0).then_some(Version::V1_0);
    };
    list.split(|&b| b == b',')
        .filter_map(|v| Version::from_bytes(v.trim_ascii()))
        .filter(|v| supported.contains(v))
        .max()
}

/// A `heart-beat` header: "send,receive" in milliseconds, 0 meaning "none". For the
/// frame's sender, `send_ms` is the smallest interval at which it can guarantee to send
/// heart-beats and `receive_ms` the interval at which it wants to receive them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct HeartBeat {
    pub send_ms: u64,
    pub receive_ms: u64,
}

/// A malformed `heart-beat` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHeartBeat;

impl fmt::Display for InvalidHeartBeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("heart-beat header must be two non-negative integers, \"x,y\"")
    }
}

impl std::error::Error for InvalidHeartBeat {}

impl HeartBeat {
    /// "0,0": no heart-beats either way; also what a missing header means.
    pub const NONE: HeartBeat = HeartBeat {
        send_ms: 0,
        receive_ms: 0,
    };

    pub fn new(send_ms: u64, receive_ms: u64) -> HeartBeat {
        HeartBeat {
            send_ms,
            receive_ms,
        }
    }

    /// Parses "x,y". Whitespace around each number is tolerated (RabbitMQ's
    /// `list_to_integer` would refuse it); anything else that is not two non-negative
    /// integers is an error, as it is in RabbitMQ, where the connection fails.
    pub fn parse(value: &[u8]) -> Result<HeartBeat, InvalidHeartBeat> {
        let mut parts = value.split(|&b| b == b',');
        let (Some(x), Some(y), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InvalidHeartBeat);
        };
        Ok(HeartBeat {
            send_ms: parse_ms(x)?,
            receive_ms: parse_ms(y)?,
        })
    }

    /// The header value, "x,y".
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }

    /// What RabbitMQ answers a client's heart-beat with in CONNECTED, and then uses as
    /// its own intervals: it sends as often as the client wants to receive, and expects
    /// as often as the client offers to send, each rounded down to whole seconds but at
    /// least one second if non-zero (`millis_to_seconds`). It does not apply the spec's
    /// `max` with a server preference of its own.
    pub fn rabbitmq_reply(client: HeartBeat) -> HeartBeat {
        fn whole_seconds(ms: u64) -> u64 {
            match ms {
                0 => 0,
                1..=999 => 1000,
                _ => ms / 1000 * 1000,
            }
        }
        HeartBeat {
            send_ms: whole_seconds(client.receive_ms),
            receive_ms: whole_seconds(client.send_ms),
        }
    }
}

impl fmt::Display for HeartBeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.send_ms, self.receive_ms)
    }
}

fn parse_ms(s: &[u8]) -> Result<u64, InvalidHeartBeat> {
    let s = s.trim_ascii();
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(InvalidHeartBeat);
    }
    s.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(InvalidHeartBeat)
    })
}

/// The agreed heart-beat intervals for one side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartBeatIntervals {
    /// Send something (a frame or an EOL) at least this often.
    pub send: Option<Duration>,
    /// The peer will send something at least this often. The spec suggests tolerating
    /// some margin before deeming it dead.
    pub receive: Option<Duration>,
}

/// The spec's negotiation, from either side: `ours` is the header we sent (or will send),
/// `theirs` the one we received. Heart-beats flow from A to B only if A can send them and
/// B wants them, at the slower of the two rates:
/// `0 if a.send == 0 || b.receive == 0, else max(a.send, b.receive)`.
pub fn negotiate_heartbeat(ours: HeartBeat, theirs: HeartBeat) -> HeartBeatIntervals {
    fn interval(send_ms: u64, receive_ms: u64) -> Option<Duration> {
        (send_ms != 0 && receive_ms != 0).then(|| Duration::from_millis(send_ms.max(receive_ms)))
    }
    HeartBeatIntervals {
        send: interval(ours.send_ms, theirs.receive_ms),
        receive: interval(theirs.send_ms, ours.receive_ms),
    }
}
