//! Field tables as JSON, the way RabbitMQ's definitions and HTTP API write them: integers
//! become numbers, strings strings, tables objects, arrays arrays, void null. Reading back,
//! integers become `long` (RabbitMQ does the same; argument comparisons treat all integer
//! types as one class, so a restored `x-message-ttl` still equals a client's `signedint`).

use serde_json::{Map, Number, Value};
use warren_amqp_codec::{FieldTable, FieldValue};

pub fn value_to_json(v: &FieldValue) -> Value {
    match v {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::F32(f) => Number::from_f64(*f as f64).map_or(Value::Null, Value::Number),
        FieldValue::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        FieldValue::Decimal(scale, unscaled) => {
            let f = *unscaled as f64 / 10f64.powi(*scale as i32);
            Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        FieldValue::LongStr(b) | FieldValue::ByteArray(b) => {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        FieldValue::Array(items) => Value::Array(items.iter().map(value_to_json).collect()),
        FieldValue::Table(t) => table_to_json(t),
        FieldValue::Void => Value::Null,
        FieldValue::U32(n) => Value::Number((*n).into()),
        FieldValue::Timestamp(n) => Value::Number((*n).into()),
        other => Value::Number(other.as_i64().unwrap_or(0).into()),
    }
}

pub fn table_to_json(t: &FieldTable) -> Value {
    let mut m = Map::new();
    for (k, v) in t.iter() {
        m.insert(k.to_string(), value_to_json(v));
    }
    Value::Object(m)
}

pub fn json_to_value(v: &Value) -> FieldValue {
    match v {
        Value::Null => FieldValue::Void,
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => FieldValue::I64(i),
            (None, Some(u), _) => FieldValue::I64(u.min(i64::MAX as u64) as i64),
            (_, _, Some(f)) => FieldValue::F64(f),
            _ => FieldValue::Void,
        },
        Value::String(s) => FieldValue::from(s.as_str()),
        Value::Array(a) => FieldValue::Array(a.iter().map(json_to_value).collect()),
        Value::Object(_) => FieldValue::Table(json_to_table(v)),
    }
}

/// A JSON object as a field table (anything else is an empty table).
pub fn json_to_table(v: &Value) -> FieldTable {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.as_str().into(), json_to_value(v)))
            .collect(),
        _ => FieldTable::new(),
    }
}

/// The AMQP type tag of a top-level value whose JSON form would read back as another
/// type (`signedint` 1000 reads back as `long`), or `None` when JSON round-trips it.
fn type_tag(v: &FieldValue) -> Option<&'static str> {
    Some(match v {
        FieldValue::I8(_) => "b",
        FieldValue::U8(_) => "B",
        FieldValue::I16(_) => "s",
        FieldValue::U16(_) => "u",
        FieldValue::I32(_) => "I",
        FieldValue::U32(_) => "i",
        FieldValue::F32(_) => "f",
        FieldValue::Timestamp(_) => "T",
        FieldValue::ByteArray(_) => "x",
        _ => return None,
    })
}

/// The tags of a table's top-level values that JSON would not preserve (see
/// [`type_tag`]); `None` when there are none. Stored beside RabbitMQ-format arguments so
/// that Warren's own definitions restore argument types exactly (RabbitMQ keeps them in
/// its database, and error texts name them).
pub fn table_types(t: &FieldTable) -> Option<Value> {
    let mut m = Map::new();
    for (k, v) in t.iter() {
        if let Some(tag) = type_tag(v) {
            m.insert(k.to_string(), Value::String(tag.into()));
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// A JSON object as a field table, restoring the types recorded by [`table_types`].
pub fn json_to_table_typed(v: &Value, types: Option<&Value>) -> FieldTable {
    let mut t = json_to_table(v);
    let Some(Value::Object(types)) = types else {
        return t;
    };
    for (k, val) in t.0.iter_mut() {
        let Some(Value::String(tag)) = types.get(k.as_str()) else {
            continue;
        };
        let int = val.as_i64();
        let float = match val {
            FieldValue::F64(f) => Some(*f),
            _ => int.map(|i| i as f64),
        };
        let typed = match (tag.as_str(), int) {
            ("b", Some(i)) => FieldValue::I8(i as i8),
            ("B", Some(i)) => FieldValue::U8(i as u8),
            ("s", Some(i)) => FieldValue::I16(i as i16),
            ("u", Some(i)) => FieldValue::U16(i as u16),
            ("I", Some(i)) => FieldValue::I32(i as i32),
            ("i", Some(i)) => FieldValue::U32(i as u32),
            ("T", Some(i)) => FieldValue::Timestamp(i as u64),
            ("f", _) => match float {
                Some(f) => FieldValue::F32(f as f32),
                None => continue,
            },
            ("x", _) => match val {
                FieldValue::LongStr(b) => FieldValue::ByteArray(b.clone()),
                _ => continue,
            },
            _ => continue,
        };
        *val = typed;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_types_restore_exactly() {
        let t: FieldTable = vec![
            ("ttl".into(), FieldValue::I32(1000)),
            ("b".into(), FieldValue::U8(7)),
            ("l".into(), FieldValue::I64(5)),
            (
                "x".into(),
                FieldValue::ByteArray(bytes::Bytes::from_static(b"ab")),
            ),
        ]
        .into_iter()
        .collect();
        let types = table_types(&t);
        let mut back = json_to_table_typed(&table_to_json(&t), types.as_ref());
        let mut want = t.clone();
        back.0.sort_by(|a, b| a.0.cmp(&b.0));
        want.0.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back, want);
    }

    #[test]
    fn tables_round_trip_with_integers_as_long() {
        let mut inner = FieldTable::new();
        inner.insert("n", FieldValue::I8(3));
        let t: FieldTable = vec![
            ("x-message-ttl".into(), FieldValue::I32(1000)),
            ("s".into(), FieldValue::from("v")),
            ("b".into(), FieldValue::Bool(true)),
            ("a".into(), FieldValue::Array(vec![FieldValue::from("x")])),
            ("t".into(), FieldValue::Table(inner)),
            ("v".into(), FieldValue::Void),
        ]
        .into_iter()
        .collect();
        let back = json_to_table(&table_to_json(&t));
        assert_eq!(back.get("x-message-ttl"), Some(&FieldValue::I64(1000)));
        assert_eq!(back.get("s"), t.get("s"));
        assert_eq!(back.get("b"), t.get("b"));
        assert_eq!(back.get("a"), t.get("a"));
        assert_eq!(back.get("v"), Some(&FieldValue::Void));
        match back.get("t") {
            Some(FieldValue::Table(i)) => assert_eq!(i.get("n"), Some(&FieldValue::I64(3))),
            other => panic!("{other:?}"),
        }
    }
}
