//! RabbitMQ's STOMP destinations (`rabbit_routing_util`), parsed from a `destination`
//! or `reply-to` header and formatted back for a MESSAGE.
//!
//! | destination | SUBSCRIBE | SEND |
//! |---|---|---|
//! | `/queue/<q>` | declares `q` (durable by default), consumes | declares `q`, publishes to it |
//! | `/topic/<key>` | a server-named queue bound to `amq.topic` with `key` | `amq.topic`, `key` |
//! | `/exchange/<x>[/<key>]` | a server-named queue bound to `x` | `x`, `key` |
//! | `/amq/queue/<q>` | consumes the existing `q` | publishes to `q` |
//! | `/temp-queue/<id>` | (only in `reply-to`) | (only in `reply-to`) |
//! | `/reply-queue/<q>` | | publishes to `q` |
//! | `<q>` (no slash) | as `/queue/<q>` | as `/queue/<q>` |
//!
//! `%2F` in a name stands for `/`.

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Queue(String),
    Topic(String),
    Exchange(String, Option<String>),
    AmqQueue(String),
    TempQueue(String),
    ReplyQueue(String),
}

/// Why a destination header is refused; the texts are RabbitMQ's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// `{invalid_destination, Type, Content}`
    Invalid { kind: &'static str, content: String },
    /// `{unknown_destination, Content}`
    Unknown(String),
}

/// The prefixes named in RabbitMQ's "Unknown destination" error.
pub const ALL_PREFIXES: &str = "/temp-queue, /exchange, /topic, /queue, /amq/queue, /reply-queue/";

fn unescape(s: &str) -> String {
    s.replace("%2F", "/")
}

fn to_url(rest: &[&str]) -> String {
    if rest.is_empty() {
        String::new()
    } else {
        format!("/{}", rest.join("/"))
    }
}

/// Parses a destination as RabbitMQ's `parse_endpoint` does.
pub fn parse(dest: &str) -> Result<Destination, Invalid> {
    let parts: Vec<&str> = dest.split('/').collect();
    let invalid = |kind: &'static str, rest: &[&str]| Invalid::Invalid {
        kind,
        content: to_url(rest),
    };
    match parts.as_slice() {
        [name] => Ok(Destination::Queue(unescape(name))),
        ["", kind @ ("exchange" | "queue" | "topic" | "temp-queue"), rest @ ..] => {
            let (k, rest) = (*kind, rest);
            match (k, rest) {
                ("exchange", ["", ..]) => Err(invalid("exchange", rest)),
                ("exchange", [name]) => Ok(Destination::Exchange(unescape(name), None)),
                ("exchange", [name, pattern]) => Ok(Destination::Exchange(
                    unescape(name),
                    Some(unescape(pattern)),
                )),
                (_, [name]) if !name.is_empty() => Ok(match k {
                    "queue" => Destination::Queue(unescape(name)),
                    "topic" => Destination::Topic(unescape(name)),
                    _ => Destination::TempQueue(unescape(name)),
                }),
                _ => Err(invalid(
                    match k {
                        "exchange" => "exchange",
                        "queue" => "queue",
                        "topic" => "topic",
                        _ => "temp_queue",
                    },
                    rest,
                )),
            }
        }
        ["", "amq", "queue", rest @ ..] => match rest {
            [name] if !name.is_empty() => Ok(Destination::AmqQueue(unescape(name))),
            _ => Err(invalid("amqqueue", rest)),
        },
        ["", "reply-queue", _, ..] => {
            let name = &dest["/reply-queue/".len()..];
            if name.is_empty() {
                return Err(Invalid::Unknown(dest.to_string()));
            }
            Ok(Destination::ReplyQueue(name.to_string()))
        }
        _ => Err(Invalid::Unknown(dest.to_string())),
    }
}

impl Destination {
    /// The exchange and routing key a SEND to this destination publishes with (and a
    /// subscription binds with).
    pub fn routing(&self) -> (String, String) {
        match self {
            Destination::Queue(n)
            | Destination::AmqQueue(n)
            | Destination::ReplyQueue(n)
            | Destination::TempQueue(n) => (String::new(), n.clone()),
            Destination::Topic(k) => ("amq.topic".into(), k.clone()),
            Destination::Exchange(x, k) => (x.clone(), k.clone().unwrap_or_default()),
        }
    }
}

/// The `destination` header of a MESSAGE delivered from `exchange` with `key`.
pub fn format(exchange: &str, key: &str) -> String {
    match (exchange, key) {
        ("", k) => format!("/queue/{}", escape(k)),
        ("amq.topic", k) => format!("/topic/{}", escape(k)),
        (x, "") => format!("/exchange/{}", escape(x)),
        (x, k) => format!("/exchange/{}/{}", escape(x), escape(k)),
    }
}

/// RabbitMQ's `escape/1`: `/` as `%2F`, `%` as `%25`, and octets outside 32..=127
/// as `%XX`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'/' => out.push_str("%2F"),
            b'%' => out.push_str("%25"),
            b if !(32..=127).contains(&b) => out.push_str(&format!("%{b:X}")),
            b => out.push(b as char),
        }
    }
    out
}

/// The prefixes a `reply-to` value may start with unchanged; anything else is a queue
/// name and gets `/reply-queue/` in front (RabbitMQ's `headers_post_process`).
pub fn is_destination(v: &str) -> bool {
    [
        "/exchange",
        "/topic",
        "/queue",
        "/amq/queue",
        "/reply-queue/",
    ]
    .iter()
    .any(|p| v.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_rabbitmq() {
        assert_eq!(parse("/queue/a"), Ok(Destination::Queue("a".into())));
        assert_eq!(parse("a"), Ok(Destination::Queue("a".into())));
        assert_eq!(parse("/queue/a%2Fb"), Ok(Destination::Queue("a/b".into())));
        assert_eq!(parse("/topic/a.b"), Ok(Destination::Topic("a.b".into())));
        assert_eq!(
            parse("/exchange/x"),
            Ok(Destination::Exchange("x".into(), None))
        );
        assert_eq!(
            parse("/exchange/x/k.#"),
            Ok(Destination::Exchange("x".into(), Some("k.#".into())))
        );
        assert_eq!(parse("/amq/queue/q"), Ok(Destination::AmqQueue("q".into())));
        assert_eq!(
            parse("/temp-queue/t"),
            Ok(Destination::TempQueue("t".into()))
        );
        assert_eq!(
            parse("/reply-queue/amq.gen-1/x"),
            Ok(Destination::ReplyQueue("amq.gen-1/x".into()))
        );
        assert_eq!(
            parse("/queue/"),
            Err(Invalid::Invalid {
                kind: "queue",
                content: "/".into()
            })
        );
        assert_eq!(
            parse("/queue"),
            Err(Invalid::Invalid {
                kind: "queue",
                content: "".into()
            })
        );
        assert_eq!(parse("/foo/bar"), Err(Invalid::Unknown("/foo/bar".into())));
    }

    #[test]
    fn formats_as_rabbitmq() {
        assert_eq!(format("", "q"), "/queue/q");
        assert_eq!(format("amq.topic", "a.b"), "/topic/a.b");
        assert_eq!(format("x", ""), "/exchange/x");
        assert_eq!(format("x", "a/b%"), "/exchange/x/a%2Fb%25");
    }
}
