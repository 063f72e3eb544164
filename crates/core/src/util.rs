//! Small helpers shared by the core: generated names and value formatting for error texts.

use base64::Engine;
use rand::RngCore;
use warren_amqp_codec::FieldValue;

/// A RabbitMQ-style generated name: `prefix` + '-' + 22 characters of url-safe base64 of
/// 16 random bytes ("amq.gen-JzTY20BRgKO-HjmUJj0wLg").
pub fn generated_name(prefix: &str) -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    format!(
        "{prefix}-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// Formats a field value the way RabbitMQ's error texts print it.
pub fn format_value(v: &FieldValue) -> String {
    match v {
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::LongStr(s) | FieldValue::ByteArray(s) => String::from_utf8_lossy(s).into(),
        FieldValue::F32(f) => f.to_string(),
        FieldValue::F64(f) => f.to_string(),
        FieldValue::Decimal(s, v) => format!("{{{s},{v}}}"),
        FieldValue::Void => "undefined".into(),
        FieldValue::Array(_) | FieldValue::Table(_) => format!("{v:?}"),
        other => other.as_i64().map(|i| i.to_string()).unwrap_or_default(),
    }
}
