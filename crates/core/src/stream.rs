//! Stream queues (`x-queue-type: stream`): an append-only log that consumption never
//! empties, read by each consumer from its own offset.
//!
//! A stream queue is a [`Queue`](crate::queue::Queue) whose state holds a
//! [`StreamState`] instead of using its message store: publishing appends to the
//! [`StreamLog`], and each consumer has a cursor into it. Delivery follows RabbitMQ's
//! rules for streams over AMQP 0-9-1: consumers must set a prefetch and acknowledge, and
//! an ack only gives credit back (nothing is removed); `x-stream-offset` says where a
//! consumer starts; every delivery carries its offset in the `x-stream-offset` header,
//! written into the stored message once at append so replays cost no re-encoding.
//! `x-stream-filter-value` / `x-stream-filter` filter on the broker, exactly (RabbitMQ's
//! Bloom filter may let through extra messages that clients then drop; Warren sends only
//! matches).

use std::sync::Arc;

use warren_amqp_codec::{FieldTable, FieldValue, PropertiesView};
use warren_store::stream::{Appended, Cursor, Retention, Start, StreamLog};
use warren_store::{Envelope, Message};

use crate::consumer::Consumer;
use crate::error::BrokerError;

pub const OFFSET_HEADER: &str = "x-stream-offset";
pub const FILTER_VALUE_HEADER: &str = "x-stream-filter-value";

/// Whether declaration arguments make a stream.
pub fn is_stream_args(args: &FieldTable) -> bool {
    args.get("x-queue-type").and_then(|v| v.as_str()) == Some("stream")
}

/// RabbitMQ's age syntax (`x-max-age`, and interval offsets): a count and one of `Y`,
/// `M`, `D`, `h`, `m`, `s`. In milliseconds.
pub fn parse_age(s: &str) -> Option<u64> {
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        'Y' => 365 * 86_400,
        'M' => 30 * 86_400,
        'D' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    n.checked_mul(secs * 1000)
}

/// Retention and segment size from the arguments, with a policy's `max-length-bytes`,
/// `max-age` and `stream-max-segment-size-bytes` where the arguments say nothing.
pub fn settings(
    args: &FieldTable,
    policy: Option<&serde_json::Map<String, serde_json::Value>>,
) -> (Retention, u64) {
    let pol = |k: &str| policy.and_then(|p| p.get(k));
    let max_bytes = args
        .get("x-max-length-bytes")
        .and_then(|v| v.as_i64())
        .map(|n| n.max(0) as u64)
        .or_else(|| pol("max-length-bytes").and_then(|v| v.as_u64()));
    let max_age = args
        .get("x-max-age")
        .and_then(|v| v.as_str())
        .and_then(parse_age)
        .or_else(|| pol("max-age").and_then(|v| v.as_str()).and_then(parse_age));
    let segment = args
        .get("x-stream-max-segment-size-bytes")
        .and_then(|v| v.as_i64())
        .map(|n| n.max(0) as u64)
        .or_else(|| pol("stream-max-segment-size-bytes").and_then(|v| v.as_u64()))
        .unwrap_or(warren_store::stream::DEFAULT_STREAM_SEGMENT);
    (Retention { max_bytes, max_age }, segment)
}

/// Where a consumer starts, from its `x-stream-offset` argument (default: `next`).
pub fn parse_start(v: Option<&FieldValue>, now_ms: u64) -> Result<Start, String> {
    let Some(v) = v else { return Ok(Start::Next) };
    match v {
        FieldValue::Timestamp(secs) => Ok(Start::Timestamp(secs.saturating_mul(1000))),
        FieldValue::LongStr(_) => match v.as_str().unwrap_or("") {
            "first" => Ok(Start::First),
            "last" => Ok(Start::Last),
            "next" => Ok(Start::Next),
            s => parse_age(s)
                .map(|age| Start::Timestamp(now_ms.saturating_sub(age)))
                .ok_or_else(|| format!("invalid x-stream-offset '{s}'")),
        },
        other => match other.as_i64() {
            Some(n) if n >= 0 => Ok(Start::Offset(n as u64)),
            _ => Err(format!(
                "invalid x-stream-offset of type '{}'",
                other.type_name()
            )),
        },
    }
}

/// A consumer's `x-stream-filter` (one value or a list) and `x-stream-match-unfiltered`.
#[derive(Debug, Clone)]
pub struct Filter {
    values: Vec<String>,
    match_unfiltered: bool,
}

impl Filter {
    pub fn from_args(args: &FieldTable) -> Result<Option<Filter>, String> {
        let values = match args.get("x-stream-filter") {
            None => return Ok(None),
            Some(FieldValue::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .ok_or("x-stream-filter values must be strings")?,
            Some(v) => vec![v
                .as_str()
                .ok_or("x-stream-filter must be a string or a list of strings")?
                .to_string()],
        };
        let match_unfiltered = args
            .get("x-stream-match-unfiltered")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        Ok(Some(Filter {
            values,
            match_unfiltered,
        }))
    }

    /// Whether a message with these raw properties passes the filter.
    fn accepts(&self, properties: &[u8]) -> bool {
        let value = PropertiesView::parse(&bytes::Bytes::copy_from_slice(properties))
            .ok()
            .and_then(|v| v.headers_table())
            .and_then(|h| {
                h.get(FILTER_VALUE_HEADER)
                    .and_then(|v| v.as_str().map(String::from))
            });
        match value {
            Some(v) => self.values.contains(&v),
            None => self.match_unfiltered,
        }
    }
}

struct Reader {
    consumer: Arc<Consumer>,
    cursor: Cursor,
    filter: Option<Filter>,
}

/// A stream queue's state: its log and its consumers' positions.
pub struct StreamState {
    pub log: StreamLog,
    readers: Vec<Reader>,
    /// Round-robin start, so no consumer always goes first.
    turn: usize,
    /// What deliveries read back from the log carry as their message: their frames are
    /// written from the log itself, and nothing settles a stream by content.
    placeholder: Arc<Message>,
}

/// A stream's figures for management.
#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    pub first_offset: u64,
    /// The offset the next message will get.
    pub next_offset: u64,
    pub segments: usize,
    pub bytes: u64,
    /// (consumer tag, connection, channel, the next offset it will be sent).
    pub readers: Vec<(String, crate::ConnectionId, u16, u64)>,
}

impl StreamState {
    pub fn new(log: StreamLog) -> StreamState {
        StreamState {
            log,
            readers: Vec::new(),
            turn: 0,
            placeholder: Arc::new(Message::new(
                Default::default(),
                Default::default(),
                Default::default(),
                &Default::default(),
                Default::default(),
            )),
        }
    }

    /// The message as the stream stores it: stamped with its offset.
    pub fn stamp(&self, msg: &Message) -> Message {
        let offset = self.log.next_offset() as i64;
        let clash = PropertiesView::parse(&msg.properties)
            .ok()
            .and_then(|v| v.headers)
            .is_some_and(|h| {
                h.windows(OFFSET_HEADER.len())
                    .any(|w| w == OFFSET_HEADER.as_bytes())
            });
        let props = if clash {
            None
        } else {
            warren_amqp_codec::properties::with_long_header(&msg.properties, OFFSET_HEADER, offset)
        };
        match props {
            Some(props) => Message {
                exchange: msg.exchange.clone(),
                routing_key: msg.routing_key.clone(),
                properties: props,
                body: msg.body.clone(),
                persistent: msg.persistent,
                priority: msg.priority,
                ttl: msg.ttl,
                may_have_cc: msg.may_have_cc,
                bcc: msg.bcc.clone(),
            },
            // A client-set header of that name (or odd properties): the slow path.
            None => crate::message::with_headers(msg, |h| {
                h.insert(OFFSET_HEADER, FieldValue::I64(offset));
            }),
        }
    }

    pub fn add_reader(&mut self, consumer: Arc<Consumer>, start: Start, filter: Option<Filter>) {
        let cursor = self.log.cursor(start);
        self.readers.push(Reader {
            consumer,
            cursor,
            filter,
        });
    }

    pub fn remove_reader(&mut self, c: &Arc<Consumer>) {
        self.readers.retain(|r| !Arc::ptr_eq(&r.consumer, c));
    }

    pub fn info(&self) -> StreamInfo {
        StreamInfo {
            first_offset: self.log.first_offset(),
            next_offset: self.log.next_offset(),
            segments: self.log.segment_count(),
            bytes: self.log.bytes(),
            readers: self
                .readers
                .iter()
                .map(|r| {
                    (
                        r.consumer.tag.to_string(),
                        r.consumer.connection,
                        r.consumer.channel,
                        r.cursor.next,
                    )
                })
                .collect(),
        }
    }

    /// Hands the just-appended `msg` to readers waiting at the end of the log, without
    /// reading it back; then lets every reader catch up.
    pub fn dispatch_appended(
        &mut self,
        queue: &Arc<crate::Queue>,
        msg: &Arc<Message>,
        a: &Appended,
    ) -> u64 {
        let mut sent = 0;
        for r in &mut self.readers {
            if !r.consumer.can_take() || !self.log.take_appended(&mut r.cursor, a) {
                continue;
            }
            if r.filter
                .as_ref()
                .is_some_and(|f| !f.accepts(&msg.properties))
            {
                continue;
            }
            if send(&r.consumer, queue, envelope(a.offset, msg.clone()), None) {
                sent += 1;
            }
        }
        sent + self.dispatch(queue)
    }

    /// Sends every reader what it has credit for. Returns how many deliveries went out.
    pub fn dispatch(&mut self, queue: &Arc<crate::Queue>) -> u64 {
        let n = self.readers.len();
        let mut sent = 0;
        for k in 0..n {
            let i = (self.turn + k) % n;
            let r = &mut self.readers[i];
            // Frames go straight from the log: no message is built.
            while r.consumer.can_take() {
                let Some(view) = self.log.read_view(&mut r.cursor) else {
                    break;
                };
                if r.filter
                    .as_ref()
                    .is_some_and(|f| !f.accepts(view.properties))
                {
                    continue;
                }
                let env = envelope(view.seq, self.placeholder.clone());
                if !send(&r.consumer, queue, env, Some(&view)) {
                    break;
                }
                sent += 1;
            }
        }
        if n > 0 {
            self.turn = (self.turn + 1) % n;
        }
        sent
    }
}

/// A stream delivery: never redelivered (nothing goes back into a stream), no expiry.
fn envelope(seq: u64, msg: Arc<Message>) -> Envelope {
    Envelope {
        seq,
        msg,
        redelivered: false,
        expires_at: None,
        loc: Default::default(),
        delivery_count: 0,
    }
}

/// One delivery (written from `view` when given); false if the consumer's channel is
/// closing.
fn send(
    c: &Arc<Consumer>,
    queue: &Arc<crate::Queue>,
    env: Envelope,
    view: Option<&warren_store::segment::RecordView<'_>>,
) -> bool {
    c.credit.take();
    c.channel_credit.take();
    let sent = match view {
        Some(v) => c.sink.deliver_view(c, queue, env, v),
        None => c.sink.deliver(c, queue, env),
    };
    if sent.is_err() {
        c.settled(1);
    }
    sent.is_ok()
}

/// RabbitMQ's refusal of an operation streams do not support (a connection error).
pub fn unsupported(what: &str, queue: &str, vhost: &str) -> BrokerError {
    BrokerError::not_implemented(format!(
        "{what} not supported by stream queues queue '{queue}' in vhost '{vhost}'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_offsets_parse_as_rabbitmq_writes_them() {
        assert_eq!(parse_age("7D"), Some(7 * 86_400_000));
        assert_eq!(parse_age("12h"), Some(12 * 3_600_000));
        assert_eq!(parse_age("30m"), Some(1_800_000));
        assert_eq!(parse_age("10s"), Some(10_000));
        assert_eq!(parse_age("1Y"), Some(365 * 86_400_000));
        for bad in ["", "s", "7X", "-1s", "1.5h", "h1"] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
        let now = 1_000_000;
        assert_eq!(parse_start(None, now), Ok(Start::Next));
        assert_eq!(parse_start(Some(&"first".into()), now), Ok(Start::First));
        assert_eq!(parse_start(Some(&"last".into()), now), Ok(Start::Last));
        assert_eq!(
            parse_start(Some(&FieldValue::I64(5)), now),
            Ok(Start::Offset(5))
        );
        assert_eq!(
            parse_start(Some(&FieldValue::I32(5)), now),
            Ok(Start::Offset(5))
        );
        assert_eq!(
            parse_start(Some(&FieldValue::Timestamp(3)), now),
            Ok(Start::Timestamp(3000))
        );
        assert_eq!(
            parse_start(Some(&"10s".into()), now),
            Ok(Start::Timestamp(990_000))
        );
        assert!(parse_start(Some(&"bogus".into()), now).is_err());
        assert!(parse_start(Some(&FieldValue::I64(-1)), now).is_err());
    }
}
