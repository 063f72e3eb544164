//! Topic names, topic filters and how they match (section 4.7; shared subscriptions 4.8.2).
//!
//! A topic name is what a PUBLISH is sent to: one or more levels separated by `/`, no
//! wildcards. A topic filter is what a SUBSCRIBE asks for: the same, plus `+` (exactly one
//! level) and `#` (any number of levels, including none, and only as the last level). Both
//! are case-sensitive, at least one character long, and may have empty levels (`a//b`,
//! `/a`). Topics starting with `$` are the server's: a filter starting with a wildcard
//! does not match them.
//!
//! The broker routes through `amq.topic` rather than through [`matches()`]; this module is
//! the spec's definition, used for validation and as the reference to test that routing
//! against.

use crate::wire::MAX_FIELD_LEN;
use crate::ProtocolVersion;

/// The prefix of an MQTT 5 shared subscription filter.
pub const SHARED_PREFIX: &str = "$share/";

fn is_valid_topic(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_FIELD_LEN && !s.contains('\0')
}

/// Whether `name` is a valid topic name: non-empty, no wildcard, no U+0000.
pub fn is_valid_topic_name(name: &str) -> bool {
    is_valid_topic(name) && !name.contains(['+', '#'])
}

/// Whether `filter` is a valid topic filter: non-empty, no U+0000, `+` only as a whole
/// level, `#` only as the whole last level.
pub fn is_valid_topic_filter(filter: &str) -> bool {
    if !is_valid_topic(filter) {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "#" => return levels.peek().is_none(),
            "+" => {}
            l if l.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// Splits a shared subscription filter `$share/{share name}/{filter}` into its share name
/// and topic filter, without validating either (`$share/x` gives `("x", "")`). `None` if
/// `filter` does not start with `$share/`.
pub fn parse_shared(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix(SHARED_PREFIX)?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// Whether `filter` is valid in a SUBSCRIBE or UNSUBSCRIBE of `version`. In MQTT 5 a
/// filter starting with `$share/` must be a well-formed shared subscription: a share name
/// of at least one character without `/`, `+` or `#`, then `/` and a valid topic filter.
/// Before MQTT 5 it is an ordinary filter.
pub fn is_valid_subscription_filter(filter: &str, version: ProtocolVersion) -> bool {
    if version == ProtocolVersion::V5 {
        if let Some((share_name, topic_filter)) = parse_shared(filter) {
            return !share_name.is_empty()
                && !share_name.contains(['+', '#'])
                && is_valid_topic_filter(topic_filter);
        }
    }
    is_valid_topic_filter(filter)
}

/// Whether topic name `topic` matches topic filter `filter` (both assumed valid; for a
/// shared subscription pass the filter part of [`parse_shared`]).
///
/// `#` also matches the parent level (`sport/#` matches `sport`), `+` matches an empty
/// level (`+/+` matches `/finance`), and a filter starting with `+` or `#` never matches
/// a topic starting with `$` (4.7.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in [
            "a",
            "/",
            "a/b",
            "/a",
            "a/",
            "a//b",
            "$SYS/x",
            " ",
            "sport/tennis",
        ] {
            assert!(is_valid_topic_name(ok), "{ok:?}");
        }
        for bad in ["", "a/+", "+", "#", "a/#", "a+b", "a#", "a\0b"] {
            assert!(!is_valid_topic_name(bad), "{bad:?}");
        }
        assert!(is_valid_topic_name(&"a".repeat(65_535)));
        assert!(!is_valid_topic_name(&"a".repeat(65_536)));
    }

    #[test]
    fn topic_filters() {
        // Examples of 4.7.1.2 and 4.7.1.3.
        for ok in [
            "sport/tennis/player1/#",
            "sport/#",
            "#",
            "+",
            "+/tennis/#",
            "sport/+/player1",
            "/+",
            "+/+",
            "a//b",
            "/",
            "$SYS/#",
            "a/+/+/#",
        ] {
            assert!(is_valid_topic_filter(ok), "{ok:?}");
        }
        for bad in [
            "",
            "sport/tennis#",
            "sport/tennis/#/ranking",
            "sport+",
            "#/",
            "a/#/b",
            "a/b+",
            "+a",
            "##",
            "a\0",
        ] {
            assert!(!is_valid_topic_filter(bad), "{bad:?}");
        }
    }

    #[test]
    fn shared_filters() {
        use ProtocolVersion::*;
        assert_eq!(parse_shared("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(parse_shared("$share/g"), Some(("g", "")));
        assert_eq!(parse_shared("$sharex/g/a"), None);
        assert!(is_valid_subscription_filter("$share/g/a/#", V5));
        assert!(is_valid_subscription_filter("$share/g/+", V5));
        for bad in [
            "$share/g",
            "$share/g/",
            "$share//a",
            "$share/+/a",
            "$share/#/a",
        ] {
            assert!(!is_valid_subscription_filter(bad, V5), "{bad:?}");
        }
        // Before MQTT 5 these are ordinary filters.
        assert!(is_valid_subscription_filter("$share/g", V3_1_1));
        assert!(is_valid_subscription_filter("$share/+/a", V3_1_1));
        assert!(!is_valid_subscription_filter("$share/g#", V3_1_1));
        // Not shared without the slash.
        assert!(is_valid_subscription_filter("$share", V5));
    }

    #[test]
    fn matching_spec_examples() {
        // 4.7.1.2: multi-level wildcard.
        for t in [
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
        ] {
            assert!(matches("sport/tennis/player1/#", t), "{t}");
        }
        assert!(matches("sport/#", "sport"));
        assert!(matches("#", "anything/at/all"));
        assert!(matches("#", "/"));
        // 4.7.1.3: single-level wildcard.
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(matches("sport/tennis/+", "sport/tennis/player2"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(matches("+/tennis/#", "sport/tennis"));
        assert!(matches("sport/+/player1", "sport/tennis/player1"));
        // Exact match, case sensitivity, empty levels.
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "A/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(matches("a//b", "a//b"));
        assert!(matches("a/+/b", "a//b"));
        assert!(!matches("a/b", "a/b/"));
    }

    #[test]
    fn dollar_topics() {
        // 4.7.2: wildcards at the start do not match $-topics; explicit prefixes do.
        assert!(!matches("#", "$SYS/broker/clients"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
        assert!(matches("$SYS", "$SYS"));
        // A $ anywhere but the start of the topic is ordinary.
        assert!(matches("#", "a/$SYS"));
        assert!(matches("+/x", "a$/x"));
    }
}
