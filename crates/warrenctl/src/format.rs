//! Output as rabbitmqctl prints it: an informational line (dropped by `-q`), then for
//! listings a tab-separated header row (dropped by `-s` and `--no-table-headers`, and
//! absent when there are no rows) and one row per object; or with `--formatter json`,
//! rabbitmqctl's JSON stream (`[`, one object per line, the next ones prefixed by `,`,
//! `]`) and `{"result":"ok"}`-style objects for other commands.
//!
//! Cells are rendered the way rabbitmqctl renders Erlang terms: lists as `[a, b]`,
//! key/value pairs as `[{k, v}]`, and AMQP tables (arguments, client properties) as
//! `[{"key","value"},{"n",1}]`; in JSON, AMQP tables become `[["key","type",value]]`.

use serde_json::Value;

/// How a column's value is rendered.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    /// Strings, numbers, booleans; lists and objects as Erlang lists and pairs.
    Plain,
    /// An AMQP field table (queue or consumer arguments, client properties).
    Table,
    /// A JSON document shown as its text (a policy definition).
    JsonText,
}

/// Where a column's value comes from in the API's object.
#[derive(Clone, Copy, Debug)]
pub enum Src {
    Key(&'static str),
    Nested(&'static str, &'static str),
    Fixed(&'static str),
}

#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub src: Src,
    pub kind: Kind,
}

impl Column {
    fn value(&self, row: &Value) -> Value {
        match self.src {
            Src::Key(k) => row.get(k).cloned().unwrap_or(Value::Null),
            Src::Nested(a, b) => row
                .get(a)
                .and_then(|o| o.get(b))
                .cloned()
                .unwrap_or(Value::Null),
            Src::Fixed(s) => Value::String(s.into()),
        }
    }

    pub fn cell(&self, row: &Value) -> String {
        let v = self.value(row);
        match self.kind {
            Kind::Plain => plain(&v),
            Kind::Table => erl_table(&v),
            Kind::JsonText => match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            },
        }
    }

    pub fn json(&self, row: &Value) -> Value {
        let v = self.value(row);
        match self.kind {
            // An absent value (no policy, no exclusive consumer) is '' to rabbitmqctl.
            Kind::Plain if v.is_null() => Value::from(""),
            Kind::Plain => v,
            Kind::Table => typed_table(&v),
            Kind::JsonText => match v {
                Value::String(_) | Value::Null => v,
                other => Value::String(other.to_string()),
            },
        }
    }
}

/// What the global options ask of the output.
pub struct Out {
    pub json: bool,
    /// Informational lines (`-q` and `-s` drop them).
    pub info: bool,
    /// The header row of tables (`-s` and `--no-table-headers` drop it).
    pub headers: bool,
}

impl Out {
    pub fn info(&self, line: &str) {
        if self.info && !self.json {
            println!("{line}");
        }
    }

    /// A listing: a table, or rabbitmqctl's JSON stream.
    pub fn rows(&self, columns: &[Column], rows: &[Value]) {
        print!("{}", self.render_rows(columns, rows));
    }

    pub fn render_rows(&self, columns: &[Column], rows: &[Value]) -> String {
        let mut s = String::new();
        if self.json {
            s.push_str("[\n");
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{}:{}", Value::from(c.name), c.json(row)))
                    .collect();
                s.push_str(&format!("{{{}}}\n", fields.join(",")));
            }
            s.push_str("]\n");
            return s;
        }
        if rows.is_empty() {
            return s;
        }
        if self.headers {
            let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
            s.push_str(&names.join("\t"));
            s.push('\n');
        }
        for row in rows {
            let cells: Vec<String> = columns.iter().map(|c| c.cell(row)).collect();
            s.push_str(&cells.join("\t"));
            s.push('\n');
        }
        s
    }
}

/// A value as rabbitmqctl's table formatter shows an Erlang term.
pub fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "[{}]",
            o.iter()
                .map(|(k, v)| format!("{{{k}, {}}}", plain(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// An AMQP table as rabbitmqctl shows one: binaries quoted, no spaces.
pub fn erl_table(v: &Value) -> String {
    match v {
        Value::Null => "undefined".into(),
        Value::String(s) => Value::from(s.as_str()).to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(erl_table).collect::<Vec<_>>().join(",")
        ),
        Value::Object(o) => format!(
            "[{}]",
            o.iter()
                .map(|(k, v)| format!("{{{},{}}}", Value::from(k.as_str()), erl_table(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// An AMQP table in rabbitmqctl's JSON: `[["key","type",value]]`, the types guessed
/// from the JSON values the API gives (as the API does when it takes arguments).
pub fn typed_table(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Array(
            o.iter()
                .map(|(k, v)| {
                    let (t, v) = typed(v);
                    Value::Array(vec![Value::from(k.as_str()), Value::from(t), v])
                })
                .collect(),
        ),
        Value::Null => Value::Array(vec![]),
        other => other.clone(),
    }
}

fn typed(v: &Value) -> (&'static str, Value) {
    match v {
        Value::Null => ("void", Value::Null),
        Value::Bool(_) => ("bool", v.clone()),
        Value::Number(n) if n.is_f64() => ("double", v.clone()),
        Value::Number(_) => ("long", v.clone()),
        Value::String(_) => ("longstr", v.clone()),
        Value::Object(_) => ("table", typed_table(v)),
        Value::Array(a) => (
            "array",
            Value::Array(
                a.iter()
                    .map(|x| {
                        let (t, v) = typed(x);
                        Value::Array(vec![Value::from(t), v])
                    })
                    .collect(),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn col(name: &'static str, kind: Kind) -> Column {
        Column {
            name,
            src: Src::Key(name),
            kind,
        }
    }

    #[test]
    fn cells_render_as_rabbitmqctl_shows_erlang_terms() {
        assert_eq!(
            plain(&json!(["monitoring", "policymaker"])),
            "[monitoring, policymaker]"
        );
        assert_eq!(plain(&json!({"n@h": "running"})), "[{n@h, running}]");
        assert_eq!(plain(&json!(null)), "");
        assert_eq!(
            erl_table(
                &json!({"x-dead-letter-exchange": "dlx", "x-message-ttl": 1000, "x-sac": true})
            ),
            r#"[{"x-dead-letter-exchange","dlx"},{"x-message-ttl",1000},{"x-sac",true}]"#
        );
        assert_eq!(erl_table(&json!({})), "[]");
    }

    #[test]
    fn tables_have_a_header_only_when_there_are_rows() {
        let cols = [col("name", Kind::Plain), col("arguments", Kind::Table)];
        let rows = [json!({"name": "q", "arguments": {"x-max-length": 3}})];
        let out = |headers, json| Out {
            json,
            info: true,
            headers,
        };
        assert_eq!(
            out(true, false).render_rows(&cols, &rows),
            "name\targuments\nq\t[{\"x-max-length\",3}]\n"
        );
        assert_eq!(
            out(false, false).render_rows(&cols, &rows),
            "q\t[{\"x-max-length\",3}]\n"
        );
        assert_eq!(out(true, false).render_rows(&cols, &[]), "");
        assert_eq!(
            out(true, true).render_rows(&cols, &[rows[0].clone(), json!({"name": "r"})]),
            "[\n{\"name\":\"q\",\"arguments\":[[\"x-max-length\",\"long\",3]]}\n,{\"name\":\"r\",\"arguments\":[]}\n]\n"
        );
        assert_eq!(out(true, true).render_rows(&cols, &[]), "[\n]\n");
    }

    #[test]
    fn policy_definitions_are_shown_as_json_text() {
        let c = col("definition", Kind::JsonText);
        let row = json!({"definition": {"max-length": 3}});
        assert_eq!(c.cell(&row), r#"{"max-length":3}"#);
        assert_eq!(c.json(&row), json!(r#"{"max-length":3}"#));
    }
}
