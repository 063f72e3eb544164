//! What a queue does, from its declaration arguments and the policy that applies to it.
//!
//! RabbitMQ's precedence: for numeric limits (`message-ttl`, `expires`, `max-length`,
//! `max-length-bytes`, `delivery-limit`) the lower of argument and policy applies; for the
//! rest (`dead-letter-exchange`, `dead-letter-routing-key`, `overflow`, ...) the argument
//! wins over the policy. Settings are recomputed whenever policies change.

use serde_json::{Map, Value};
use warren_amqp_codec::FieldTable;

use crate::deadletter::DeadLetterTarget;

/// What a queue does when a publish would take it over its length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    #[default]
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

impl Overflow {
    fn parse(s: &str) -> Option<Overflow> {
        Some(match s {
            "drop-head" => Overflow::DropHead,
            "reject-publish" => Overflow::RejectPublish,
            "reject-publish-dlx" => Overflow::RejectPublishDlx,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSettings {
    pub max_length: Option<u64>,
    pub max_bytes: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter: Option<DeadLetterTarget>,
    /// ms
    pub message_ttl: Option<u64>,
    /// Delete the queue after this long unused (ms).
    pub expires: Option<u64>,
    /// Dead-letter a message returned more than this many times.
    pub delivery_limit: Option<u64>,
    /// Add `x-delivery-count` to redeliveries (quorum-queue semantics).
    pub count_deliveries: bool,
    pub single_active_consumer: bool,
    /// ms; `None`: the broker-wide consumer timeout.
    pub consumer_timeout: Option<u64>,
    /// `x-message-deduplication`: drop messages whose `x-deduplication-header` was seen.
    pub dedup: Option<Dedup>,
    /// Stream queues: retention (`x-max-length-bytes`, `x-max-age`) and segment size.
    pub stream_retention: warren_store::stream::Retention,
    pub stream_segment: u64,
}

/// The deduplication cache's bounds (`x-cache-size` entries, `x-cache-ttl` ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dedup {
    pub cache_size: usize,
    pub cache_ttl: Option<u64>,
}

/// Entries kept when `x-cache-size` is not given: the cache is always bounded.
pub const DEFAULT_DEDUP_CACHE: usize = 65_536;

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl QueueSettings {
    /// Settings from declaration arguments, with `policy` (a policy definition) applied.
    pub fn resolve(args: &FieldTable, policy: Option<&Map<String, Value>>) -> QueueSettings {
        let arg_num = |k: &str| {
            args.get(k)
                .and_then(|v| v.as_i64())
                .map(|n| n.max(0) as u64)
        };
        let arg_str = |k: &str| args.get(k).and_then(|v| v.as_str()).map(String::from);
        let pol = |k: &str| policy.and_then(|p| p.get(k));
        let pol_num = |k: &str| pol(k).and_then(|v| v.as_u64());
        let pol_str = |k: &str| pol(k).and_then(|v| v.as_str()).map(String::from);

        let dlx = arg_str("x-dead-letter-exchange").or_else(|| pol_str("dead-letter-exchange"));
        let dlrk =
            arg_str("x-dead-letter-routing-key").or_else(|| pol_str("dead-letter-routing-key"));
        let quorum = args.get("x-queue-type").and_then(|v| v.as_str()) == Some("quorum");
        let delivery_limit = min_opt(arg_num("x-delivery-limit"), pol_num("delivery-limit"));
        let (stream_retention, stream_segment) = crate::stream::settings(args, policy);
        QueueSettings {
            stream_retention,
            stream_segment,
            max_length: min_opt(arg_num("x-max-length"), pol_num("max-length")),
            max_bytes: min_opt(arg_num("x-max-length-bytes"), pol_num("max-length-bytes")),
            overflow: arg_str("x-overflow")
                .or_else(|| pol_str("overflow"))
                .and_then(|s| Overflow::parse(&s))
                .unwrap_or_default(),
            dead_letter: dlx.map(|exchange| DeadLetterTarget {
                exchange,
                routing_key: dlrk,
            }),
            message_ttl: min_opt(arg_num("x-message-ttl"), pol_num("message-ttl")),
            expires: min_opt(arg_num("x-expires"), pol_num("expires")),
            delivery_limit,
            count_deliveries: quorum || delivery_limit.is_some(),
            single_active_consumer: args
                .get("x-single-active-consumer")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            consumer_timeout: min_opt(arg_num("x-consumer-timeout"), pol_num("consumer-timeout")),
            dedup: args
                .get("x-message-deduplication")
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
                .then(|| Dedup {
                    cache_size: arg_num("x-cache-size")
                        .map(|n| n as usize)
                        .unwrap_or(DEFAULT_DEDUP_CACHE),
                    cache_ttl: arg_num("x-cache-ttl"),
                }),
        }
    }

    pub fn is_full(&self, ready: u64, ready_bytes: u64, size: u64) -> bool {
        self.max_length.is_some_and(|m| ready >= m)
            || self.max_bytes.is_some_and(|m| ready_bytes + size > m)
    }

    pub fn is_over(&self, ready: u64, ready_bytes: u64) -> bool {
        self.max_length.is_some_and(|m| ready > m)
            || self.max_bytes.is_some_and(|m| ready_bytes > m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_amqp_codec::FieldValue;

    #[test]
    fn numeric_limits_take_the_lower_and_arguments_win_otherwise() {
        let args: FieldTable = vec![
            ("x-max-length".into(), FieldValue::I32(10)),
            ("x-message-ttl".into(), FieldValue::I32(5000)),
            ("x-dead-letter-exchange".into(), FieldValue::from("arg-dlx")),
        ]
        .into_iter()
        .collect();
        let policy: Map<String, Value> = serde_json::from_str(
            r#"{"max-length": 20, "message-ttl": 1000, "dead-letter-exchange": "pol-dlx",
                "dead-letter-routing-key": "k", "overflow": "reject-publish", "expires": 60000}"#,
        )
        .unwrap();
        let s = QueueSettings::resolve(&args, Some(&policy));
        assert_eq!(s.max_length, Some(10));
        assert_eq!(s.message_ttl, Some(1000));
        assert_eq!(s.expires, Some(60000));
        assert_eq!(s.overflow, Overflow::RejectPublish);
        let dl = s.dead_letter.unwrap();
        assert_eq!(
            (dl.exchange.as_str(), dl.routing_key.as_deref()),
            ("arg-dlx", Some("k"))
        );
    }
}
