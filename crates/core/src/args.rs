//! Queue declaration arguments: validation with RabbitMQ's error texts, and the
//! redeclaration equivalence check.

use warren_amqp_codec::{FieldTable, FieldValue};

use crate::error::BrokerError;
use crate::util::format_value;

/// Arguments whose values must match on redeclaration (RabbitMQ's `declare_args`).
pub const EQUIVALENT_QUEUE_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
];

/// Queue arguments a stream refuses (RabbitMQ: "of queue type rabbit_stream_queue").
const STREAM_REFUSED: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-message-deduplication",
];

/// RabbitMQ's largest timer value (ms) for TTLs and expiries.
const MAX_EXPIRY: i64 = 4_294_967_295 * 1000;

enum Check {
    /// A number (any integer type) that must be >= 0.
    NonNegInt,
    /// A TTL: a non-negative integer within the timer range.
    Expiry,
    /// `x-expires`: positive.
    PositiveExpiry,
    MaxPriority,
    Overflow,
    QueueMode,
    Bool,
    QueueType,
    MaxAge,
    Ignore,
}

fn check_for(key: &str) -> Check {
    match key {
        "x-expires" => Check::PositiveExpiry,
        "x-message-ttl" => Check::Expiry,
        "x-max-length"
        | "x-max-length-bytes"
        | "x-max-in-memory-length"
        | "x-max-in-memory-bytes"
        | "x-stream-max-segment-size-bytes"
        | "x-delivery-limit"
        | "x-consumer-timeout"
        | "x-cache-size"
        | "x-cache-ttl"
        | "x-quorum-initial-group-size"
        | "x-initial-cluster-size" => Check::NonNegInt,
        "x-max-priority" => Check::MaxPriority,
        "x-overflow" => Check::Overflow,
        "x-queue-mode" => Check::QueueMode,
        "x-single-active-consumer" | "x-message-deduplication" => Check::Bool,
        "x-queue-type" => Check::QueueType,
        "x-max-age" => Check::MaxAge,
        _ => Check::Ignore,
    }
}

fn int_of(v: &FieldValue) -> Result<i64, String> {
    match v {
        FieldValue::Timestamp(_) => Err(format!("\"expected integer, got {}\"", v.type_name())),
        _ => v
            .as_i64()
            .ok_or_else(|| format!("\"expected integer, got {}\"", v.type_name())),
    }
}

fn check_value(check: Check, v: &FieldValue) -> Result<(), String> {
    match check {
        Check::Ignore => Ok(()),
        Check::NonNegInt => {
            let n = int_of(v)?;
            if n < 0 {
                return Err(format!("{{value_negative,{n}}}"));
            }
            Ok(())
        }
        Check::Expiry | Check::PositiveExpiry => {
            let n = int_of(v)?;
            if matches!(check, Check::PositiveExpiry) && n == 0 {
                return Err("{value_zero,0}".into());
            }
            if n < 0 {
                return Err(format!("{{value_negative,{n}}}"));
            }
            if n > MAX_EXPIRY {
                return Err(format!("{{value_too_large,{n}}}"));
            }
            Ok(())
        }
        Check::MaxPriority => {
            let n = int_of(v)?;
            if n < 0 {
                return Err(format!("{{value_negative,{n}}}"));
            }
            if n > 255 {
                return Err(format!("{{max_value_exceeded,{n}}}"));
            }
            Ok(())
        }
        Check::Overflow => match v.as_str() {
            Some("drop-head" | "reject-publish" | "reject-publish-dlx") => Ok(()),
            Some(_) => Err("invalid_overflow".into()),
            None => Err(format!("{{unacceptable_type,{}}}", v.type_name())),
        },
        Check::QueueMode => match v.as_str() {
            Some("default" | "lazy") => Ok(()),
            Some(m) => Err(format!("\"unsupported queue mode '{m}'\"")),
            None => Err(format!("{{unacceptable_type,{}}}", v.type_name())),
        },
        Check::Bool => match v {
            FieldValue::Bool(_) => Ok(()),
            _ => Err(format!("{{unacceptable_type,{}}}", v.type_name())),
        },
        Check::MaxAge => match v.as_str().and_then(crate::stream::parse_age) {
            Some(_) => Ok(()),
            None => Err("invalid_max_age".into()),
        },
        Check::QueueType => match v.as_str() {
            Some("classic" | "quorum" | "stream") => Ok(()),
            Some(t) => Err(format!("\"unsupported queue type '{t}'\"")),
            None => Err(format!("{{unacceptable_type,{}}}", v.type_name())),
        },
    }
}

/// Validates queue-declare arguments as RabbitMQ does, before anything is created.
pub fn validate_queue_args(
    vhost: &str,
    queue: &str,
    args: &FieldTable,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
) -> Result<(), BrokerError> {
    let invalid = |k: &str, detail: String| {
        BrokerError::precondition_failed(format!(
            "invalid arg '{k}' for queue '{queue}' in vhost '{vhost}': {detail}"
        ))
    };
    for (k, v) in args.iter() {
        check_value(check_for(k), v).map_err(|d| invalid(k, d))?;
    }
    match args.get("x-dead-letter-exchange") {
        Some(FieldValue::LongStr(_)) => {}
        Some(other) => {
            return Err(BrokerError::precondition_failed(format!(
                "invalid type '{}' for arg 'x-dead-letter-exchange' in queue '{queue}' in vhost '{vhost}'",
                other.type_name()
            )))
        }
        None => {
            if args.contains_key("x-dead-letter-routing-key") {
                return Err(invalid(
                    "x-dead-letter-routing-key",
                    "routing_key_but_no_dlx_defined".into(),
                ));
            }
        }
    }
    let kind = args.get("x-queue-type").and_then(|v| v.as_str());
    if kind == Some("stream") {
        if let Some(k) = STREAM_REFUSED.iter().find(|k| args.contains_key(k)) {
            return Err(BrokerError::precondition_failed(format!(
                "invalid arg '{k}' for queue '{queue}' in vhost '{vhost}' of queue type rabbit_stream_queue"
            )));
        }
    }
    if matches!(kind, Some("quorum" | "stream")) {
        let bad = if !durable {
            Some("non-durable")
        } else if exclusive {
            // RabbitMQ's words differ between the two types.
            Some(if kind == Some("stream") {
                "exclusive-owner"
            } else {
                "exclusive"
            })
        } else if auto_delete {
            Some("auto-delete")
        } else {
            None
        };
        if let Some(p) = bad {
            return Err(BrokerError::precondition_failed(format!(
                "invalid property '{p}' for queue '{queue}' in vhost '{vhost}'"
            )));
        }
    }
    Ok(())
}

fn describe(v: Option<&FieldValue>) -> String {
    match v {
        None => "none".into(),
        Some(v) => format!(
            "the value '{}' of type '{}'",
            format_value(v),
            v.type_name()
        ),
    }
}

/// RabbitMQ's comparison of argument values: every integer type is one class (a `long`
/// restored from definitions equals a client's `signedint`), floats are another, the
/// rest compare exactly.
pub fn same_class_and_value(a: Option<&FieldValue>, b: Option<&FieldValue>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            let int =
                |v: &FieldValue| !matches!(v, FieldValue::Timestamp(_)) && v.as_i64().is_some();
            if int(x) && int(y) {
                return x.as_i64() == y.as_i64();
            }
            match (x, y) {
                (FieldValue::F32(p), FieldValue::F64(q))
                | (FieldValue::F64(q), FieldValue::F32(p)) => (*p as f64) == *q,
                _ => x == y,
            }
        }
        _ => false,
    }
}

/// Checks the arguments RabbitMQ compares on redeclaration. Both present: compared by
/// type and value, reported by value only; one absent: reported with its type. An absent
/// `x-queue-type` equals `classic`.
pub fn assert_equivalent(
    what: &str,
    name: &str,
    vhost: &str,
    keys: &[&str],
    current: &FieldTable,
    requested: &FieldTable,
) -> Result<(), BrokerError> {
    let classic = FieldValue::from("classic");
    for k in keys {
        // An absent type equals `classic`; against another type it reads as absent.
        let other_side_classic = |t: &FieldTable| {
            *k == "x-queue-type"
                && t.get(k)
                    .and_then(|v| v.as_str())
                    .is_none_or(|v| v == "classic")
        };
        let norm = |t: &FieldTable, other: &FieldTable| -> Option<FieldValue> {
            match t.get(k) {
                None if other_side_classic(other) && *k == "x-queue-type" => Some(classic.clone()),
                v => v.cloned(),
            }
        };
        let (cur, got) = (norm(current, requested), norm(requested, current));
        if same_class_and_value(cur.as_ref(), got.as_ref()) {
            continue;
        }
        let detail = match (&got, &cur) {
            (Some(g), Some(c)) => format!(
                "received '{}' but current is '{}'",
                format_value(g),
                format_value(c)
            ),
            _ => format!(
                "received {} but current is {}",
                describe(got.as_ref()),
                describe(cur.as_ref())
            ),
        };
        return Err(BrokerError::precondition_failed(format!(
            "inequivalent arg '{k}' for {what} '{name}' in vhost '{vhost}': {detail}"
        )));
    }
    Ok(())
}
