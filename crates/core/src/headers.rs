//! Headers-exchange matching, as RabbitMQ's `rabbit_exchange_type_headers` does it:
//! `x-match` is `all` (default), `any`, `all-with-x` or `any-with-x`; binding arguments
//! starting with `x-` are ignored unless the mode ends in `-with-x`; a void binding value
//! only asks for the header to be present; other values must be of the same type class
//! (any integer matches any integer of the same value) and equal.

use warren_amqp_codec::{FieldTable, FieldValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    All,
    Any,
}

fn mode(args: &FieldTable) -> (Mode, bool) {
    match args.get("x-match").and_then(|v| v.as_str()) {
        Some("any") => (Mode::Any, false),
        Some("any-with-x") => (Mode::Any, true),
        Some("all-with-x") => (Mode::All, true),
        _ => (Mode::All, false),
    }
}

/// Validates a headers binding's `x-match` as RabbitMQ does on bind.
pub fn validate_binding(args: &FieldTable) -> Result<(), String> {
    match args.get("x-match") {
        None => Ok(()),
        Some(FieldValue::LongStr(s))
            if matches!(&s[..], b"all" | b"any" | b"all-with-x" | b"any-with-x") =>
        {
            Ok(())
        }
        Some(FieldValue::LongStr(s)) => Err(format!(
            "Invalid x-match field value {}; expected all, any, all-with-x, or any-with-x",
            if s.is_empty() {
                "<<>>".to_string()
            } else {
                format!("<<\"{}\">>", String::from_utf8_lossy(s))
            }
        )),
        Some(other) => Err(format!(
            "Invalid x-match field type {} (value {}); expected longstr",
            other.type_name(),
            crate::util::format_value(other)
        )),
    }
}

/// Erlang `==` on decoded values: numbers compare by value whatever their width (and a
/// timestamp is a number), strings and byte arrays compare by bytes, and nested tables
/// and arrays compare exactly.
fn values_match(pattern: &FieldValue, data: &FieldValue) -> bool {
    fn num(v: &FieldValue) -> Option<f64> {
        match v {
            FieldValue::F32(f) => Some(*f as f64),
            FieldValue::F64(f) => Some(*f),
            _ => v.as_i64().map(|i| i as f64),
        }
    }
    fn bytes(v: &FieldValue) -> Option<&[u8]> {
        match v {
            FieldValue::LongStr(b) | FieldValue::ByteArray(b) => Some(b),
            _ => None,
        }
    }
    if let (Some(a), Some(b)) = (pattern.as_i64(), data.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (num(pattern), num(data)) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (bytes(pattern), bytes(data)) {
        return a == b;
    }
    pattern == data
}

/// Whether a message with `headers` matches a binding with `args`.
pub fn matches(args: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let (mode, with_x) = mode(args);
    let empty = FieldTable::new();
    let headers = headers.unwrap_or(&empty);
    let mut any = false;
    for (k, pv) in args.iter() {
        if k.as_str() == "x-match" || (!with_x && k.starts_with("x-")) {
            continue;
        }
        let hit = match headers.get(k) {
            None => false,
            Some(_) if matches!(pv, FieldValue::Void) => true,
            Some(dv) => values_match(pv, dv),
        };
        match (mode, hit) {
            (Mode::All, false) => return false,
            (Mode::Any, true) => return true,
            _ => any |= hit,
        }
    }
    match mode {
        Mode::All => true,
        Mode::Any => any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(entries: &[(&str, FieldValue)]) -> FieldTable {
        entries
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    #[test]
    fn all_and_any() {
        let all = t(&[("a", FieldValue::I32(1)), ("b", "x".into())]);
        let any = t(&[
            ("x-match", "any".into()),
            ("a", FieldValue::I32(1)),
            ("b", "x".into()),
        ]);
        let both = t(&[("a", FieldValue::I64(1)), ("b", "x".into())]);
        let one = t(&[("a", FieldValue::U8(1))]);
        assert!(matches(&all, Some(&both)));
        assert!(!matches(&all, Some(&one)));
        assert!(matches(&any, Some(&one)));
        assert!(!matches(&any, None));
        assert!(matches(&t(&[]), None));
    }

    #[test]
    fn void_means_presence_and_x_keys_need_with_x() {
        let presence = t(&[("a", FieldValue::Void)]);
        assert!(matches(&presence, Some(&t(&[("a", "anything".into())]))));
        let x = t(&[("x-k", "v".into())]);
        assert!(matches(&x, None)); // ignored: vacuously all
        let with_x = t(&[("x-match", "all-with-x".into()), ("x-k", "v".into())]);
        assert!(!matches(&with_x, None));
        assert!(matches(&with_x, Some(&t(&[("x-k", "v".into())]))));
    }
}
