//! Policies: named, prioritised settings applied by name pattern to a vhost's queues and
//! exchanges, live — setting or clearing one re-resolves every matching object.
//!
//! As in RabbitMQ, exactly one policy applies to an object: the highest-priority one whose
//! pattern matches its name and whose `apply-to` covers it.
//!
//! Validation errors are RabbitMQ's texts, which print the offending JSON as the Erlang
//! term RabbitMQ decodes it to ([`erlang_term`], Erlang's `~p` layout included).

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
    Streams,
    Exchanges,
}

impl ApplyTo {
    pub fn parse(s: &str) -> Option<ApplyTo> {
        Some(match s {
            "all" => ApplyTo::All,
            "queues" => ApplyTo::Queues,
            "classic_queues" => ApplyTo::ClassicQueues,
            "quorum_queues" => ApplyTo::QuorumQueues,
            "streams" => ApplyTo::Streams,
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
            ApplyTo::Streams => "streams",
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
            let prefix = "pattern should be regular expression but is invalid: ";
            let (what, at) = pcre_error(pattern, &e);
            let term = Term::Tuple(vec![Term::Str(what), Term::Int(at as i128)]);
            format!(
                "Validation failed\n\n{prefix}{}\n",
                term.print(prefix.chars().count() + 1)
            )
        })?;
        let apply_to = ApplyTo::parse(apply_to).ok_or_else(|| {
            format!(
                "Validation failed\n\napply-to '{apply_to}' unrecognised; should be 'queues', 'exchanges' or 'all'\n"
            )
        })?;
        if definition.is_empty() {
            return Err("Validation failed\n\nno policy provided\n".into());
        }
        // As RabbitMQ: the values of known keys first (in key order), then unknown keys.
        let mut keys: Vec<&String> = definition.keys().collect();
        keys.sort();
        for k in &keys {
            let v = &definition[k.as_str()];
            if let Some(what) = invalid_value(k, v) {
                return Err(format!(
                    "Validation failed\n\n{} is not a valid {what}\n",
                    erlang_term(v, 1)
                ));
            }
        }
        let unknown: Vec<Term> = keys
            .iter()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|k| {
                Term::Tuple(vec![
                    Term::Bin(k.to_string()),
                    Term::from_json(&definition[k.as_str()]),
                ])
            })
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "Validation failed\n\n{} are not recognised policy settings\n",
                Term::List(unknown).print(1)
            ));
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

    /// Whether the policy applies to queue `name` of type `kind` ("classic", "quorum",
    /// "stream").
    pub fn applies_to_queue(&self, name: &str, kind: &str) -> bool {
        let kind = match self.apply_to {
            ApplyTo::All | ApplyTo::Queues => true,
            ApplyTo::ClassicQueues => kind == "classic",
            ApplyTo::QuorumQueues => kind == "quorum",
            ApplyTo::Streams => kind == "stream",
            ApplyTo::Exchanges => false,
        };
        kind && self.regex.is_match(name)
    }

    pub fn applies_to_exchange(&self, name: &str) -> bool {
        matches!(self.apply_to, ApplyTo::All | ApplyTo::Exchanges) && self.regex.is_match(name)
    }
}

/// What a value is not, if it is not valid for a known policy key (RabbitMQ's words).
fn invalid_value(key: &str, v: &Value) -> Option<&'static str> {
    let int_at_least = |min: i64| match v.as_i64() {
        Some(n) => n >= min,
        // Beyond i64: a huge positive integer.
        None => v.is_u64(),
    };
    let (ok, what) = match key {
        "alternate-exchange" => (v.is_string(), "alternate exchange name"),
        "dead-letter-exchange" => (v.is_string(), "dead letter exchange name"),
        "dead-letter-routing-key" => (v.is_string(), "dead letter routing key"),
        "message-ttl" => (int_at_least(0), "message TTL"),
        "expires" => (int_at_least(1), "queue expiry"),
        "max-length" => (int_at_least(0), "maximum length"),
        "max-length-bytes" => (int_at_least(0), "maximum length in bytes"),
        "delivery-limit" => (int_at_least(0), "delivery limit"),
        "overflow" => (
            matches!(
                v.as_str(),
                Some("drop-head" | "reject-publish" | "reject-publish-dlx")
            ),
            "overflow value",
        ),
        "queue-mode" => (
            matches!(v.as_str(), Some("default" | "lazy")),
            "queue-mode value",
        ),
        "queue-version" => (matches!(v.as_i64(), Some(1 | 2)), "queue-version value"),
        "max-age" => (v.is_string(), "max age"),
        "stream-max-segment-size-bytes" => (int_at_least(0), "segment size"),
        // Warren's own (RabbitMQ 3.10 knows neither).
        "max-priority" => (
            v.as_i64().is_some_and(|n| (1..=255).contains(&n)),
            "max priority",
        ),
        "consumer-timeout" => (int_at_least(0), "consumer timeout"),
        _ => return None,
    };
    (!ok).then_some(what)
}

/// PCRE's words and offset for what Rust's regex engine refused (RabbitMQ compiles
/// patterns with PCRE and prints its `{Message, Offset}`); the common mistakes are
/// recognised, anything else keeps Rust's text.
fn pcre_error(pattern: &str, e: &regex::Error) -> (String, usize) {
    let text = e.to_string();
    let chars: Vec<char> = pattern.chars().collect();
    let end = chars.len();
    let first = |pred: &mut dyn FnMut(usize, char) -> bool| {
        chars
            .iter()
            .enumerate()
            .find(|(i, c)| pred(*i, **c))
            .map_or(end, |(i, _)| i)
    };
    let escaped = |i: usize| i > 0 && chars[i - 1] == '\\';
    if text.contains("unclosed group") {
        ("missing )".into(), end)
    } else if text.contains("unopened group") {
        // The first ')' with no '(' before it.
        let mut depth = 0i32;
        let at = first(&mut |i, c| {
            if escaped(i) {
                return false;
            }
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => return true,
                ')' => depth -= 1,
                _ => {}
            }
            false
        });
        ("unmatched parentheses".into(), at)
    } else if text.contains("unclosed character class") {
        ("missing terminating ] for character class".into(), end)
    } else if text.contains("repetition operator missing expression") {
        let at = first(&mut |i, c| matches!(c, '*' | '+' | '?' | '{') && !escaped(i));
        ("nothing to repeat".into(), at)
    } else if text.contains("invalid repetition count range") {
        let at = first(&mut |i, c| c == '}' && !escaped(i));
        ("numbers out of order in {} quantifier".into(), at)
    } else {
        let last = text.lines().last().unwrap_or("invalid pattern");
        let what = last.trim().trim_start_matches("error:").trim();
        (what.to_string(), end)
    }
}

/// `v` as RabbitMQ prints the term it decodes from this JSON (`~p`, starting at column
/// `col`, 1-based): `<<"text">>`, `#{<<"k">> => 1}`, `null`, `1.0e20`.
pub fn erlang_term(v: &Value, col: usize) -> String {
    Term::from_json(v).print(col)
}

/// An Erlang term, as far as JSON and RabbitMQ's errors need.
#[derive(Debug, Clone)]
enum Term {
    Atom(&'static str),
    Int(i128),
    Float(f64),
    /// A binary (a JSON string).
    Bin(String),
    /// A list of characters (an Erlang string).
    Str(String),
    List(Vec<Term>),
    Tuple(Vec<Term>),
    Map(Vec<(Term, Term)>),
    /// Text already laid out (a map's `Key => Value`).
    Raw(String),
}

/// Erlang's line length for `~p`.
const LINE: usize = 80;

/// `~p` prints a list of small integers that are all printable characters as a string.
fn printable(c: i128) -> bool {
    matches!(c, 32..=126 | 160..=255 | 8..=13 | 27)
}

/// Erlang's shortest float notation: positional unless the exponent form is shorter
/// (and only below 2^53 where trailing zeros would be added).
fn erlang_float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let len = digits.len() as i64;
    // The decimal point sits `place` digits in: value = 0.digits * 10^place.
    let place = exp + 1;
    let sign = if f < 0.0 { "-" } else { "" };
    let exponent = |digits: &str| {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{first}.{rest}e{}", place - 1)
    };
    let body = if place > 0 && place < len {
        format!(
            "{}.{}",
            &digits[..place as usize],
            &digits[place as usize..]
        )
    } else if place == 0 {
        format!("0.{digits}")
    } else {
        let exp_len = (place - 1).to_string().len() as i64;
        let cost = exp_len + 1 + if len == 1 { 2 } else { 1 };
        if place < 0 {
            if 2 - place <= cost {
                format!("0.{}{digits}", "0".repeat((-place) as usize))
            } else {
                exponent(&digits)
            }
        } else if place - len + 2 <= cost && f.abs() < (1u64 << 53) as f64 {
            format!("{digits}{}.0", "0".repeat((place - len) as usize))
        } else {
            exponent(&digits)
        }
    };
    format!("{sign}{body}")
}

fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Term {
    fn from_json(v: &Value) -> Term {
        match v {
            Value::Null => Term::Atom("null"),
            Value::Bool(true) => Term::Atom("true"),
            Value::Bool(false) => Term::Atom("false"),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Term::Int(i as i128),
                (None, Some(u)) => Term::Int(u as i128),
                _ => Term::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Term::Bin(s.clone()),
            Value::Array(a) => Term::List(a.iter().map(Term::from_json).collect()),
            // serde_json's maps are ordered by key, as Erlang orders binary keys.
            Value::Object(m) => Term::Map(
                m.iter()
                    .map(|(k, v)| (Term::Bin(k.clone()), Term::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Written on one line (`io_lib:write`, with `~p`'s strings).
    fn flat(&self) -> String {
        let join = |items: &[Term]| items.iter().map(Term::flat).collect::<Vec<_>>().join(",");
        match self {
            Term::Atom(a) => a.to_string(),
            Term::Int(i) => i.to_string(),
            Term::Float(f) => erlang_float(*f),
            Term::Bin(s) if s.chars().all(|c| printable(c as i128) || c as u32 > 255) => {
                format!("<<{}>>", quoted(s))
            }
            Term::Bin(s) => format!(
                "<<{}>>",
                s.bytes()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Term::Str(s) => quoted(s),
            Term::Raw(s) => s.clone(),
            Term::List(items) => match self.as_string() {
                Some(s) => quoted(&s),
                None => format!("[{}]", join(items)),
            },
            Term::Tuple(items) => format!("{{{}}}", join(items)),
            Term::Map(pairs) => format!(
                "#{{{}}}",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{} => {}", k.flat(), v.flat()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    /// A non-empty list of printable character codes, as the string `~p` shows.
    fn as_string(&self) -> Option<String> {
        let Term::List(items) = self else { return None };
        if items.is_empty() {
            return None;
        }
        items
            .iter()
            .map(|t| match t {
                Term::Int(c) if printable(*c) => char::from_u32(*c as u32),
                _ => None,
            })
            .collect()
    }

    /// Printed on one line in `~p`'s layout, i.e. not a list, tuple or map to break.
    fn atomic(&self) -> bool {
        match self {
            Term::List(_) => self.as_string().is_some(),
            Term::Tuple(items) => items.is_empty(),
            Term::Map(pairs) => pairs.is_empty(),
            _ => true,
        }
    }

    fn len(&self) -> usize {
        self.flat().chars().count()
    }

    /// `~p` at column `col` (1-based): on one line if it fits, else broken as Erlang's
    /// `io_lib_pretty` breaks it.
    fn print(&self, col: usize) -> String {
        let col = col.max(1);
        if self.len() + col < LINE {
            return self.flat();
        }
        self.pp(col, col - 1, 0)
    }

    /// Erlang's `pp`: `ind` is the indentation of continuation lines, `ld` the number of
    /// closing brackets that follow on the last line.
    fn pp(&self, col: usize, ind: usize, ld: usize) -> String {
        if self.len() + col + ld < LINE || self.atomic() {
            return self.flat();
        }
        match self {
            Term::List(items) => format!("[{}]", pp_list(items, col + 1, ind + 1, ld)),
            Term::Tuple(items) => format!("{{{}}}", pp_list(items, col + 1, ind + 1, ld)),
            Term::Map(pairs) => {
                let items: Vec<Term> = pairs
                    .iter()
                    .map(|(k, v)| Term::Raw(format!("{} => {}", k.flat(), v.flat())))
                    .collect();
                format!("#{{{}}}", pp_list(&items, col + 2, ind + 2, ld))
            }
            _ => self.flat(),
        }
    }
}

/// Erlang's `last_depth`: closing brackets after an element (only the last has any).
fn last_depth(rest: &[Term], ld: usize) -> usize {
    if rest.is_empty() {
        ld + 1
    } else {
        0
    }
}

/// Erlang's `pp_element`: the text and how much of the line it used (the whole line
/// when it was broken, which forces the next element onto a new line).
fn pp_element(e: &Term, col: usize, ind: usize, ld: usize) -> (String, usize) {
    let len = e.len();
    if e.atomic() && len + col + ld < LINE {
        (e.flat(), len)
    } else {
        (e.pp(col, ind, ld), LINE)
    }
}

/// Erlang's `pp_list` with `pp_tail`: atomic elements share lines while they fit, others
/// get a line each.
fn pp_list(items: &[Term], col0: usize, ind: usize, ld: usize) -> String {
    let Some((first, rest)) = items.split_first() else {
        return String::new();
    };
    let (mut out, w) = pp_element(first, col0, ind, last_depth(rest, ld));
    let mut col = col0 + w;
    for (i, e) in rest.iter().enumerate() {
        let ld1 = last_depth(&rest[i + 1..], ld);
        let elen = 1 + e.len();
        let fits = if ld1 == 0 {
            elen + 1 + col < LINE
        } else {
            elen + col + ld1 < LINE
        };
        if fits && e.atomic() {
            out.push(',');
            out.push_str(&e.flat());
            col += elen;
        } else {
            let (es, we) = pp_element(e, col0, ind, ld1);
            out.push_str(",\n");
            out.push_str(&" ".repeat(ind));
            out.push_str(&es);
            col = col0 + we;
        }
    }
    out
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
        assert!(p.applies_to_queue("ttl.a", "classic"));
        assert!(!p.applies_to_queue("x.ttl.a", "classic"));
        assert!(!p.applies_to_exchange("ttl.a"));
        let e = Policy::new("/", "bad", ".*", "queues", 0, def(r#"{"foo": 1}"#)).unwrap_err();
        assert_eq!(
            e,
            "Validation failed\n\n[{<<\"foo\">>,1}] are not recognised policy settings\n"
        );
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

    /// Texts taken from RabbitMQ 3.10.8's answers.
    #[test]
    fn errors_print_terms_as_rabbitmq() {
        let err = |json: &str| {
            Policy::new("/", "p", ".*", "all", 0, def(json))
                .unwrap_err()
                .trim_start_matches("Validation failed\n\n")
                .trim_end_matches('\n')
                .to_string()
        };
        assert_eq!(
            err(r#"{"nope":1,"zz":"s","b":true,"f":1.5,"l":[1,"a"],"o":{"k":"v"}}"#),
            "[{<<\"b\">>,true},\n {<<\"f\">>,1.5},\n {<<\"l\">>,[1,<<\"a\">>]},\n \
             {<<\"nope\">>,1},\n {<<\"o\">>,#{<<\"k\">> => <<\"v\">>}},\n \
             {<<\"zz\">>,<<\"s\">>}] are not recognised policy settings"
        );
        let a = "a".repeat(25);
        let b30 = "b".repeat(30);
        let b31 = "b".repeat(31);
        assert_eq!(
            err(&format!(r#"{{"{a}":1,"{b30}":2}}"#)),
            format!("[{{<<\"{a}\">>,1}},{{<<\"{b30}\">>,2}}] are not recognised policy settings")
        );
        assert_eq!(
            err(&format!(r#"{{"{a}":1,"{b31}":2}}"#)),
            format!(
                "[{{<<\"{a}\">>,1}},\n {{<<\"{b31}\">>,2}}] are not recognised policy settings"
            )
        );
        let long = "b".repeat(90);
        assert_eq!(
            err(&format!(r#"{{"x":"{long}","y":1}}"#)),
            format!(
                "[{{<<\"x\">>,\n  <<\"{long}\">>}},\n {{<<\"y\">>,1}}] are not recognised policy settings"
            )
        );
        let nums: Vec<String> = (1..=32).map(|n| n.to_string()).collect();
        assert_eq!(
            err(&format!(r#"{{"x":[{}]}}"#, nums.join(","))),
            format!(
                "[{{<<\"x\">>,\n  [{},\n   {}]}}] are not recognised policy settings",
                nums[..28].join(","),
                nums[28..].join(",")
            )
        );
        assert_eq!(
            err(r#"{"message-ttl":"zz"}"#),
            "<<\"zz\">> is not a valid message TTL"
        );
        assert_eq!(err(r#"{"expires":0}"#), "0 is not a valid queue expiry");
        assert_eq!(
            err(r#"{"max-length":true}"#),
            "true is not a valid maximum length"
        );
        assert_eq!(
            err(r#"{"expires":null}"#),
            "null is not a valid queue expiry"
        );
        assert_eq!(
            err(r#"{"dead-letter-exchange":-1}"#),
            "-1 is not a valid dead letter exchange name"
        );
        // Known keys' values are checked before unknown keys are reported.
        assert_eq!(
            err(r#"{"aaa":1,"message-ttl":"a"}"#),
            "<<\"a\">> is not a valid message TTL"
        );
        assert_eq!(
            err(r#"{"message-ttl":"a","max-length":"b"}"#),
            "<<\"b\">> is not a valid maximum length"
        );
        let e = Policy::new("/", "p", "(", "all", 0, def(r#"{"expires":1}"#)).unwrap_err();
        assert_eq!(
            e,
            "Validation failed\n\npattern should be regular expression but is invalid: {\"missing )\",1}\n"
        );
        let e = Policy::new("/", "p", "[a", "all", 0, def(r#"{"expires":1}"#)).unwrap_err();
        assert_eq!(
            e,
            format!(
                "Validation failed\n\npattern should be regular expression but is invalid: \
                 {{\"missing terminating ] for character class\",\n{}2}}\n",
                " ".repeat(54)
            )
        );
        let e = Policy::new("/", "p", ".*", "bogus", 0, def(r#"{"expires":1}"#)).unwrap_err();
        assert_eq!(
            e,
            "Validation failed\n\napply-to 'bogus' unrecognised; should be 'queues', 'exchanges' or 'all'\n"
        );
    }

    #[test]
    fn floats_print_as_erlang_does() {
        for (f, want) in [
            (1e15, "1.0e15"),
            (1e16, "1.0e16"),
            (123456.7, "123456.7"),
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (1e-5, "1.0e-5"),
            (-2.5, "-2.5"),
            (1e21, "1.0e21"),
            (12345678901234567.0, "1.2345678901234568e16"),
            (100.0, "100.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e20, "1.0e20"),
        ] {
            assert_eq!(erlang_float(f), want, "{f}");
        }
    }

    #[test]
    fn highest_priority_wins() {
        let a = Policy::new("/", "a", ".*", "all", 1, def(r#"{"max-length": 1}"#)).unwrap();
        let b = Policy::new("/", "b", "^q", "queues", 5, def(r#"{"max-length": 2}"#)).unwrap();
        let ps = vec![a, b];
        assert_eq!(
            pick(&ps, |p| p.applies_to_queue("q1", "classic"))
                .unwrap()
                .name,
            "b"
        );
        assert_eq!(
            pick(&ps, |p| p.applies_to_queue("x", "classic"))
                .unwrap()
                .name,
            "a"
        );
    }
}
