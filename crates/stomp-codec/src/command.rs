//! STOMP commands and protocol versions, and the one rule that ties them together: which
//! frames escape their headers.

use std::fmt;

/// A STOMP protocol version. Ordered, so the highest common version is a `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V1_0,
    V1_1,
    V1_2,
}

impl Version {
    /// Every version, lowest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The version as it appears in `accept-version` and `version` headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Parses "1.0", "1.1" or "1.2" exactly.
    pub fn from_bytes(s: &[u8]) -> Option<Version> {
        match s {
            b"1.0" => Some(Version::V1_0),
            b"1.1" => Some(Version::V1_1),
            b"1.2" => Some(Version::V1_2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fifteen commands of STOMP 1.2: eleven sent by clients, four by servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    // Client commands.
    Connect,
    /// The 1.1+ name for CONNECT; it is CONNECT in every respect, escaping included.
    Stomp,
    Send,
    Subscribe,
    Unsubscribe,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
    Disconnect,
    // Server commands.
    Connected,
    Message,
    Receipt,
    Error,
}

impl Command {
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The command line as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Commands are case-sensitive, as in the spec and in RabbitMQ: "send" is unknown.
    pub fn from_bytes(s: &[u8]) -> Option<Command> {
        Some(match s {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"DISCONNECT" => Command::Disconnect,
            b"CONNECTED" => Command::Connected,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// Sent by clients (CONNECT ... DISCONNECT).
    pub fn is_client(self) -> bool {
        !self.is_server()
    }

    /// Sent by servers (CONNECTED, MESSAGE, RECEIPT, ERROR).
    pub fn is_server(self) -> bool {
        matches!(
            self,
            Command::Connected | Command::Message | Command::Receipt | Command::Error
        )
    }

    /// Whether the spec allows this frame a body (SEND, MESSAGE, ERROR). The codec does
    /// not enforce this, like RabbitMQ, which ignores bodies on other frames; the broker
    /// may.
    pub fn allows_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }

    /// Whether the frame's header names and values are escaped on the wire. Never in 1.0,
    /// which has no escaping; never in CONNECT/STOMP/CONNECTED, which the spec leaves
    /// unescaped so that 1.0 peers can read them (the version is not yet agreed when they
    /// are sent). RabbitMQ unescapes every frame; we follow the spec here, so a backslash
    /// in a CONNECT passcode is a backslash.
    pub fn escapes_headers(self, version: Version) -> bool {
        version != Version::V1_0 && !self.is_connect_family()
    }

    fn is_connect_family(self) -> bool {
        matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips_through_its_name() {
        for c in Command::ALL {
            assert_eq!(Command::from_bytes(c.as_str().as_bytes()), Some(c));
        }
        assert_eq!(Command::from_bytes(b"send"), None);
        assert_eq!(Command::from_bytes(b"SEND "), None);
        assert_eq!(Command::from_bytes(b""), None);
    }

    #[test]
    fn client_and_server_commands() {
        let servers: Vec<_> = Command::ALL.into_iter().filter(|c| c.is_server()).collect();
        assert_eq!(
            servers,
            [
                Command::Connected,
                Command::Message,
                Command::Receipt,
                Command::Error
            ]
        );
        assert_eq!(Command::ALL.iter().filter(|c| c.is_client()).count(), 11);
    }

    #[test]
    fn escaping_depends_on_command_and_version() {
        assert!(!Command::Send.escapes_headers(Version::V1_0));
        assert!(Command::Send.escapes_headers(Version::V1_1));
        assert!(Command::Message.escapes_headers(Version::V1_2));
        for v in Version::ALL {
            assert!(!Command::Connect.escapes_headers(v));
            assert!(!Command::Stomp.escapes_headers(v));
            assert!(!Command::Connected.escapes_headers(v));
        }
    }

    #[test]
    fn versions_are_ordered_and_parse_exactly() {
        assert!(Version::V1_0 < Version::V1_1 && Version::V1_1 < Version::V1_2);
        for v in Version::ALL {
            assert_eq!(Version::from_bytes(v.as_str().as_bytes()), Some(v));
        }
        assert_eq!(Version::from_bytes(b"1.3"), None);
        assert_eq!(Version::from_bytes(b" 1.2"), None);
    }
}
