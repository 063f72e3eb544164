//! MQTT topics as AMQP routing keys, RabbitMQ's mapping (`rabbit_mqtt_util`):
//!
//! | MQTT | AMQP | |
//! |------|------|---|
//! | `/`  | `.`  | level separator |
//! | `+`  | `*`  | one level |
//! | `#`  | `#`  | any number of levels |
//!
//! Going the other way `.` becomes `/` and `*` becomes `+`. The mapping is not a
//! bijection, exactly as in RabbitMQ: an MQTT topic `a.b` is published with routing key
//! `a.b`, so it reaches subscribers of `a/b`, and an AMQP key `a.b` reaches MQTT
//! subscribers of `a/b` (which is what lets AMQP and MQTT clients share `amq.topic`).

use bytes::Bytes;
use warren_amqp_codec::ShortStr;

/// The AMQP routing (or binding) key for an MQTT topic name (or filter). `None` when the
/// key would exceed the 255 bytes an AMQP short string holds.
pub fn mqtt_to_amqp(topic: &Bytes) -> Option<ShortStr> {
    if topic.len() > 255 {
        return None;
    }
    if !topic.iter().any(|&b| b == b'/' || b == b'+') {
        // The common flat topic: shared with the packet, not copied.
        return ShortStr::from_bytes(topic.clone()).ok();
    }
    let mapped: Vec<u8> = topic
        .iter()
        .map(|&b| match b {
            b'/' => b'.',
            b'+' => b'*',
            other => other,
        })
        .collect();
    ShortStr::from_bytes(Bytes::from(mapped)).ok()
}

/// The MQTT topic name for an AMQP routing key.
pub fn amqp_to_mqtt(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '.' => '/',
            '*' => '+',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_as_rabbitmq() {
        let k = |s: &'static str| mqtt_to_amqp(&Bytes::from_static(s.as_bytes())).unwrap();
        assert_eq!(k("a/b/c").as_str(), "a.b.c");
        assert_eq!(k("a/+/#").as_str(), "a.*.#");
        assert_eq!(k("a.b").as_str(), "a.b");
        assert_eq!(amqp_to_mqtt("a.b.c"), "a/b/c");
        assert_eq!(amqp_to_mqtt("a.*.#"), "a/+/#");
        assert!(mqtt_to_amqp(&Bytes::from(vec![b'a'; 256])).is_none());
    }
}
