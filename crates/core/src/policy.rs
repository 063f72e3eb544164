//! Policies: named, prioritised settings applied by name pattern to a vhost's queues and
//! exchanges, live — setting or clearing one re-resolves every matching object.
//!
//! As in RabbitMQ, exactly one policy applies to an object: the highest-priority one whose
//! pattern matches its name and whose `apply-to` covers it.

use regex::Regex;
use serde_json::{Map, Value};

/// The definition keys a policy may set (RabbitMQ's names).
const KNOWN_KEYS: &[&str] = &[
    "message-ttl",
    "expires",
    "dead-letter-exchange",
    "dead-letter-routing-key",
    "max-length",
    "max-length-bytes",
    "overflow",
    "max-priority",
    "alternate-exchange",
    "delivery-limit",
    "consumer-timeout",
    "queue-mode",
    "queue-version",
    "max-age",
    "stream-max-segment-size-bytes",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyTo {
    All,
    Queues,
    ClassicQueues,
    QuorumQueues,
    Exchanges,
}

impl ApplyTo {
    pub fn parse(s: &str) -> Option<ApplyTo> {
        Some(match s {
            "all" => ApplyTo::All,
            "queues" => ApplyTo::Queues,
            "classic_queues" => ApplyTo::ClassicQueues,
            "quorum_queues" => ApplyTo::QuorumQueues,
            "exchanges" => ApplyTo::Exchanges,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ApplyTo::All => "all",
            ApplyTo::Queues => "queues",
            ApplyTo::ClassicQueues => "classic_queues",
            ApplyTo::QuorumQueues => "quorum_queues",
            ApplyTo::Exchanges => "exchanges",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    regex: Regex,
    pub apply_to: ApplyTo,
    pub priority: i64,
    pub definition: Map<String, Value>,
}

impl Policy {
    /// Validates a policy as RabbitMQ does; the error is the text its API returns.
    pub fn new(
        vhost: &str,
        name: &str,
        pattern: &str,
        apply_to: &str,
        priority: i64,
        definition: Map<String, Value>,
    ) -> Result<Policy, String> {
        let regex = Regex::new(pattern).map_err(|e| {
            format!(
                "Validation failed\n\n<<\"{pattern}\">> is not a valid regular expression: {e}\n"
            )
        })?;
        let apply_to = ApplyTo::parse(apply_to).ok_or_else(|| {
            format!("Validation failed\n\n<<\"{apply_to}\">> is not a valid apply-to value\n")
        })?;
        if definition.is_empty() {
            return Err("Validation failed\n\nno policy provided\n".into());
        }
        let unknown: Vec<&String> = definition
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(|k| format!("<<\"{k}\">>")).collect();
            return Err(format!(
                "Validation failed\n\n[{}] are not recognised policy settings\n",
                list.join(",")
            ));
        }
        for (k, v) in &definition {
            let ok = match k.as_str() {
                "dead-letter-exchange"
                | "dead-letter-routing-key"
                | "alternate-exchange"
                | "queue-mode"
                | "max-age" => v.is_string(),
                "overflow" => matches!(
                    v.as_str(),
                    Some("drop-head" | "reject-publish" | "reject-publish-dlx")
                ),
                "expires" => v.as_u64().is_some_and(|n| n > 0),
                _ => v.as_u64().is_some(),
            };
            if !ok {
                return Err(format!(
                    "Validation failed\n\n{v} is not a valid value for {k}\n"
                ));
            }
        }
        Ok(Policy {
            vhost: vhost.to_string(),
            name: name.to_string(),
            pattern: pattern.to_string(),
            regex,
            apply_to,
            priority,
            definition,
        })
    }

    pub fn applies_to_queue(&self, name: &str, quorum: bool) -> bool {
        let kind = match self.apply_to {
            ApplyTo::All | ApplyTo::Queues => true,
            ApplyTo::ClassicQueues => !quorum,
            ApplyTo::QuorumQueues => quorum,
            ApplyTo::Exchanges => false,
        };
        kind && self.regex.is_match(name)
    }

    pub fn applies_to_exchange(&self, name: &str) -> bool {
        matches!(self.apply_to, ApplyTo::All | ApplyTo::Exchanges) && self.regex.is_match(name)
    }
}

/// The policy that applies among `policies`: the highest priority; ties go to the one set
/// later, as in RabbitMQ.
pub fn pick(policies: &[Policy], applies: impl Fn(&Policy) -> bool) -> Option<&Policy> {
    policies
        .iter()
        .filter(|p| applies(p))
        .fold(None, |best: Option<&Policy>, p| match best {
            Some(b) if b.priority > p.priority => Some(b),
            _ => Some(p),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn validation_and_matching() {
        let p = Policy::new(
            "/",
            "ttl",
            "^ttl\\.",
            "queues",
            1,
            def(r#"{"message-ttl": 100}"#),
        )
        .unwrap();
        assert!(p.applies_to_queue("ttl.a", false));
        assert!(!p.applies_to_queue("x.ttl.a", false));
        assert!(!p.applies_to_exchange("ttl.a"));
        let e = Policy::new("/", "bad", ".*", "queues", 0, def(r#"{"foo": 1}"#)).unwrap_err();
        assert!(e.contains("are not recognised policy settings"), "{e}");
        assert!(Policy::new("/", "bad", "(", "queues", 0, def(r#"{"expires": 1}"#)).is_err());
        assert!(Policy::new(
            "/",
            "bad",
            ".*",
            "queues",
            0,
            def(r#"{"overflow": "nope"}"#)
        )
        .is_err());
    }

    #[test]
    fn highest_priority_wins() {
        let a = Policy::new("/", "a", ".*", "all", 1, def(r#"{"max-length": 1}"#)).unwrap();
        let b = Policy::new("/", "b", "^q", "queues", 5, def(r#"{"max-length": 2}"#)).unwrap();
        let ps = vec![a, b];
        assert_eq!(
            pick(&ps, |p| p.applies_to_queue("q1", false)).unwrap().name,
            "b"
        );
        assert_eq!(
            pick(&ps, |p| p.applies_to_queue("x", false)).unwrap().name,
            "a"
        );
    }
}
